//! egui's textures on the GPU: created, patched and freed as each frame's
//! `TexturesDelta` says. Uploads go through the frame slot's staging buffer
//! in the frame's own command buffer; a freed texture is destroyed only once
//! every frame that could sample it has finished.

use std::collections::HashMap;
use std::sync::Arc;

use ash::vk;
use epaint::textures::{TextureFilter, TextureWrapMode, TexturesDelta};
use epaint::TextureId;
use gpu_allocator::MemoryLocation;

use crate::error::{RenderError, VkContext};
use crate::gpu::{layout_change, region_copy, Access, Buffer, Gpu, Image};

/// How many textures may live at once (egui uses a handful).
const MAX_TEXTURES: u32 = 512;

struct UiTexture {
    image: Image,
    set: vk::DescriptorSet,
    /// Still UNDEFINED (never uploaded).
    fresh: bool,
}

pub(crate) struct UiTextures {
    gpu: Arc<Gpu>,
    pub set_layout: vk::DescriptorSetLayout,
    pool: vk::DescriptorPool,
    samplers: HashMap<(TextureFilter, TextureFilter, TextureWrapMode), vk::Sampler>,
    textures: HashMap<TextureId, UiTexture>,
    /// Textures egui freed or replaced, with the serial of the last frame that may use them.
    retired: Vec<(u64, UiTexture)>,
}

impl UiTextures {
    pub fn new(gpu: &Arc<Gpu>) -> Result<UiTextures, RenderError> {
        let device = gpu.device();
        let mut me = UiTextures {
            gpu: gpu.clone(),
            set_layout: vk::DescriptorSetLayout::null(),
            pool: vk::DescriptorPool::null(),
            samplers: HashMap::new(),
            textures: HashMap::new(),
            retired: Vec::new(),
        };
        let bindings = [vk::DescriptorSetLayoutBinding::default()
            .binding(0)
            .descriptor_type(vk::DescriptorType::COMBINED_IMAGE_SAMPLER)
            .descriptor_count(1)
            .stage_flags(vk::ShaderStageFlags::FRAGMENT)];
        // SAFETY (both): infos live across the calls; destroyed in Drop.
        me.set_layout = unsafe {
            device.create_descriptor_set_layout(&vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings), None)
        }
        .vk("create_descriptor_set_layout (ui)")?;
        let sizes =
            [vk::DescriptorPoolSize { ty: vk::DescriptorType::COMBINED_IMAGE_SAMPLER, descriptor_count: MAX_TEXTURES }];
        me.pool = unsafe {
            device.create_descriptor_pool(
                &vk::DescriptorPoolCreateInfo::default()
                    .flags(vk::DescriptorPoolCreateFlags::FREE_DESCRIPTOR_SET)
                    .max_sets(MAX_TEXTURES)
                    .pool_sizes(&sizes),
                None,
            )
        }
        .vk("create_descriptor_pool (ui)")?;
        Ok(me)
    }

    /// The descriptor set of a live texture.
    pub fn set_of(&self, id: TextureId) -> Option<vk::DescriptorSet> {
        self.textures.get(&id).filter(|t| !t.fresh).map(|t| t.set)
    }

    /// Bytes the staging buffer needs for `delta`.
    pub fn staging_bytes(delta: &TexturesDelta) -> u64 {
        delta.set.values().flat_map(|ds| ds.iter()).map(|d| (d.image.width() * d.image.height() * 4) as u64).sum()
    }

    /// Records the uploads of `delta` (frame `serial`) through `staging`,
    /// before the frame's rendering begins.
    ///
    /// # Safety
    /// `cmd` is recording, outside rendering; `staging` is this slot's and
    /// free (its fence has signalled) and at least `staging_bytes` long.
    pub unsafe fn upload(
        &mut self,
        cmd: vk::CommandBuffer,
        delta: &TexturesDelta,
        staging: &mut Buffer,
        serial: u64,
    ) -> Result<(), RenderError> {
        let mut offset = 0usize;
        for (id, d) in delta.set.iter().flat_map(|(id, ds)| ds.iter().map(move |d| (id, d))) {
            let [w, h] = d.image.size();
            if w == 0 || h == 0 {
                continue;
            }
            let epaint::ImageData::Color(image) = &d.image;
            let bytes: &[u8] = bytemuck::cast_slice(&image.pixels);
            staging.mapped_mut()[offset..offset + bytes.len()].copy_from_slice(bytes);
            let at = match d.pos {
                None => {
                    let sampler = self.sampler(d.options.magnification, d.options.minification, d.options.wrap_mode)?;
                    let new = self.create(w as u32, h as u32, sampler)?;
                    if let Some(old) = self.textures.insert(*id, new) {
                        self.retired.push((serial, old));
                    }
                    [0, 0]
                }
                Some(pos) => pos,
            };
            let Some(tex) = self.textures.get_mut(id) else {
                tracing::warn!("egui patched texture {id:?}, which does not exist");
                continue;
            };
            let image = tex.image.handle();
            let old = if tex.fresh { vk::ImageLayout::UNDEFINED } else { vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL };
            let to_dst = layout_change(
                image,
                Access(vk::PipelineStageFlags2::FRAGMENT_SHADER, vk::AccessFlags2::SHADER_SAMPLED_READ),
                Access(vk::PipelineStageFlags2::COPY, vk::AccessFlags2::TRANSFER_WRITE),
                old,
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            );
            let region = region_copy(offset as u64, [at[0] as u32, at[1] as u32], [w as u32, h as u32]);
            let to_read = layout_change(
                image,
                Access(vk::PipelineStageFlags2::COPY, vk::AccessFlags2::TRANSFER_WRITE),
                Access(vk::PipelineStageFlags2::FRAGMENT_SHADER, vk::AccessFlags2::SHADER_SAMPLED_READ),
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
            );
            let device = self.gpu.device();
            // SAFETY: per the contract; the region lies inside the image
            // (egui patches within the texture it allocated).
            unsafe {
                device.cmd_pipeline_barrier2(cmd, &vk::DependencyInfo::default().image_memory_barriers(&[to_dst]));
                device.cmd_copy_buffer_to_image(
                    cmd,
                    staging.handle(),
                    image,
                    vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                    &[region],
                );
                device.cmd_pipeline_barrier2(cmd, &vk::DependencyInfo::default().image_memory_barriers(&[to_read]));
            }
            tex.fresh = false;
            offset += bytes.len();
        }
        Ok(())
    }

    /// Retires the textures egui freed after frame `serial`.
    pub fn free(&mut self, delta: &TexturesDelta, serial: u64) {
        for id in &delta.free {
            if let Some(t) = self.textures.remove(id) {
                self.retired.push((serial, t));
            }
        }
    }

    /// Destroys retired textures whose last frame has finished.
    pub fn collect(&mut self, finished: u64) {
        let (done, keep): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.retired).into_iter().partition(|(s, _)| *s <= finished);
        self.retired = keep;
        for (_, t) in done {
            self.destroy(t);
        }
    }

    fn destroy(&self, t: UiTexture) {
        // SAFETY: the set came from our pool (created with FREE_DESCRIPTOR_SET)
        // and no pending frame uses it (collect's contract).
        unsafe {
            let _ = self.gpu.device().free_descriptor_sets(self.pool, &[t.set]);
        }
        drop(t.image);
    }

    fn create(&self, width: u32, height: u32, sampler: vk::Sampler) -> Result<UiTexture, RenderError> {
        let image = Image::new(
            &self.gpu,
            "egui texture",
            vk::Extent2D { width, height },
            vk::Format::R8G8B8A8_UNORM,
            vk::ImageUsageFlags::SAMPLED | vk::ImageUsageFlags::TRANSFER_DST,
        )?;
        let layouts = [self.set_layout];
        // SAFETY: our pool and layout; freed in `destroy`.
        let set = unsafe {
            self.gpu.device().allocate_descriptor_sets(
                &vk::DescriptorSetAllocateInfo::default().descriptor_pool(self.pool).set_layouts(&layouts),
            )
        }
        .vk("allocate_descriptor_sets (ui texture)")?[0];
        let info = [vk::DescriptorImageInfo {
            sampler,
            image_view: image.view(),
            image_layout: vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
        }];
        let write = vk::WriteDescriptorSet::default()
            .dst_set(set)
            .dst_binding(0)
            .descriptor_type(vk::DescriptorType::COMBINED_IMAGE_SAMPLER)
            .image_info(&info);
        // SAFETY: the set is new, not in use.
        unsafe { self.gpu.device().update_descriptor_sets(&[write], &[]) };
        Ok(UiTexture { image, set, fresh: true })
    }

    fn sampler(
        &mut self,
        mag: TextureFilter,
        min: TextureFilter,
        wrap: TextureWrapMode,
    ) -> Result<vk::Sampler, RenderError> {
        if let Some(s) = self.samplers.get(&(mag, min, wrap)) {
            return Ok(*s);
        }
        let filter = |f| match f {
            TextureFilter::Nearest => vk::Filter::NEAREST,
            TextureFilter::Linear => vk::Filter::LINEAR,
        };
        let address = match wrap {
            TextureWrapMode::ClampToEdge => vk::SamplerAddressMode::CLAMP_TO_EDGE,
            TextureWrapMode::Repeat => vk::SamplerAddressMode::REPEAT,
            TextureWrapMode::MirroredRepeat => vk::SamplerAddressMode::MIRRORED_REPEAT,
        };
        let info = vk::SamplerCreateInfo::default()
            .mag_filter(filter(mag))
            .min_filter(filter(min))
            .address_mode_u(address)
            .address_mode_v(address)
            .address_mode_w(address);
        // SAFETY: valid info; destroyed in Drop.
        let s = unsafe { self.gpu.device().create_sampler(&info, None) }.vk("create_sampler (ui)")?;
        self.samplers.insert((mag, min, wrap), s);
        Ok(s)
    }
}

impl Drop for UiTextures {
    fn drop(&mut self) {
        // The renderer waited for the device: nothing is in use.
        let all: Vec<UiTexture> =
            self.textures.drain().map(|(_, t)| t).chain(self.retired.drain(..).map(|(_, t)| t)).collect();
        for t in all {
            self.destroy(t);
        }
        // SAFETY: no set is left; samplers and layout are unused.
        unsafe {
            let device = self.gpu.device();
            for s in self.samplers.values() {
                device.destroy_sampler(*s, None);
            }
            device.destroy_descriptor_pool(self.pool, None);
            device.destroy_descriptor_set_layout(self.set_layout, None);
        }
    }
}

/// A staging buffer big enough for `bytes` (grown to a power of two).
pub(crate) fn ensure_staging(gpu: &Arc<Gpu>, slot: &mut Option<Buffer>, bytes: u64) -> Result<(), RenderError> {
    if slot.as_ref().is_none_or(|b| b.size() < bytes) {
        *slot = None;
        *slot = Some(Buffer::new(
            gpu,
            "egui staging",
            bytes.next_power_of_two().max(64 * 1024),
            vk::BufferUsageFlags::TRANSFER_SRC,
            MemoryLocation::CpuToGpu,
        )?);
    }
    Ok(())
}
