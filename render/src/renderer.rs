//! Draws a [`Canvas`] into a [`FrameTarget`]: one instanced draw of its
//! shapes, two frames in flight (frame N+1 is recorded while the GPU still
//! works on frame N; each slot has its own command buffer, fence and
//! instance buffer, reused only after its fence).

use std::sync::Arc;

use ash::vk;
use gpu_allocator::MemoryLocation;

use crate::draw::{Canvas, Shape, ShapeKind, ATLAS_SIZE};
use crate::error::{RenderError, VkContext};
use crate::gpu::{layout_change, rows_copy, Access, Buffer, Gpu, Image};
use crate::pipeline::{Push, ShapePipeline};
use crate::target::FrameTarget;

/// Frames the CPU may run ahead of the GPU.
pub const FRAMES_IN_FLIGHT: usize = 2;

/// How long a frame may take before the device is declared stuck.
const FRAME_TIMEOUT_NS: u64 = 10_000_000_000;

/// A submitted frame: which slot it used. Pass it to [`Renderer::finish`]
/// before reading the target's slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "finish the frame before reading its target"]
pub struct FrameTicket {
    pub slot: usize,
    serial: u64,
}

struct Slot {
    cmd: vk::CommandBuffer,
    fence: vk::Fence,
    instances: Option<Buffer>,
    /// The serial of the frame in flight on this slot, if any.
    pending: Option<u64>,
}

/// The text atlas on the GPU and the staging buffer it is uploaded through.
struct AtlasTexture {
    image: Image,
    staging: Buffer,
    /// Still UNDEFINED: the first upload copies it whole.
    fresh: bool,
}

pub struct Renderer {
    // Field order is drop order: pipelines and buffers before the pool,
    // everything before `gpu`.
    pipelines: Vec<ShapePipeline>,
    atlas: AtlasTexture,
    slots: Vec<Slot>,
    /// Scratch for `Solid` runs (kept across frames).
    clear_rects: Vec<vk::ClearRect>,
    pool: vk::CommandPool,
    next_slot: usize,
    serial: u64,
    gpu: Arc<Gpu>,
}

impl Renderer {
    pub fn new(gpu: &Arc<Gpu>) -> Result<Renderer, RenderError> {
        let device = gpu.device();
        let atlas = AtlasTexture {
            image: Image::new(
                gpu,
                "text atlas",
                vk::Extent2D { width: ATLAS_SIZE, height: ATLAS_SIZE },
                vk::Format::R8_UNORM,
                vk::ImageUsageFlags::SAMPLED | vk::ImageUsageFlags::TRANSFER_DST,
            )?,
            staging: Buffer::new(
                gpu,
                "text atlas staging",
                ATLAS_SIZE as u64 * ATLAS_SIZE as u64,
                vk::BufferUsageFlags::TRANSFER_SRC,
                MemoryLocation::CpuToGpu,
            )?,
            fresh: true,
        };
        let pool_info = vk::CommandPoolCreateInfo::default()
            .queue_family_index(gpu.queue_family())
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
        // SAFETY: valid info; destroyed in Drop.
        let pool = unsafe { device.create_command_pool(&pool_info, None) }.vk("create_command_pool")?;
        let mut me = Renderer {
            pipelines: Vec::new(),
            atlas,
            slots: Vec::new(),
            clear_rects: Vec::new(),
            pool,
            next_slot: 0,
            serial: 0,
            gpu: gpu.clone(),
        };
        let alloc = vk::CommandBufferAllocateInfo::default()
            .command_pool(pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(FRAMES_IN_FLIGHT as u32);
        // SAFETY: from our pool; freed with it.
        let cmds = unsafe { device.allocate_command_buffers(&alloc) }.vk("allocate_command_buffers")?;
        for cmd in cmds {
            // SAFETY: unsignalled fence, destroyed in Drop.
            let fence = unsafe { device.create_fence(&vk::FenceCreateInfo::default(), None) }.vk("create_fence")?;
            me.slots.push(Slot { cmd, fence, instances: None, pending: None });
        }
        Ok(me)
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// Records and submits one frame of `canvas` into `target`, after the
    /// frame that last used this slot has finished. Returns at once.
    pub fn render(&mut self, canvas: &mut Canvas, target: &dyn FrameTarget) -> Result<FrameTicket, RenderError> {
        let extent = target.extent();
        let slot_index = self.next_slot;
        self.wait_slot(slot_index)?;
        self.serial += 1;
        let serial = self.serial;

        let pipeline_index = self.pipeline_for(target.format())?;
        let upload = self.stage_atlas(canvas)?;
        let shapes = canvas.shapes();
        self.fill_instances(slot_index, shapes)?;

        let device = self.gpu.device();
        let slot = &self.slots[slot_index];
        let cmd = slot.cmd;
        let (image, view) = target.image(slot_index);
        let clear = vk::ClearValue { color: vk::ClearColorValue { float32: canvas.background().to_f32() } };
        // SAFETY: the slot's fence has signalled, so its command buffer is
        // free to reset; every handle recorded lives until the fence signals
        // again (the target and canvas are borrowed by the caller, who must
        // keep the target until `finish`).
        unsafe {
            device.reset_command_buffer(cmd, vk::CommandBufferResetFlags::empty()).vk("reset_command_buffer")?;
            device
                .begin_command_buffer(
                    cmd,
                    &vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
                )
                .vk("begin_command_buffer")?;
            if let Some(rows) = upload {
                self.record_atlas_upload(cmd, rows);
            }
            let to_attachment = layout_change(
                image,
                Access(vk::PipelineStageFlags2::ALL_COMMANDS, vk::AccessFlags2::empty()),
                Access(vk::PipelineStageFlags2::COLOR_ATTACHMENT_OUTPUT, vk::AccessFlags2::COLOR_ATTACHMENT_WRITE),
                vk::ImageLayout::UNDEFINED,
                vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
            );
            device.cmd_pipeline_barrier2(
                cmd,
                &vk::DependencyInfo::default().image_memory_barriers(std::slice::from_ref(&to_attachment)),
            );
            let attachment = vk::RenderingAttachmentInfo::default()
                .image_view(view)
                .image_layout(vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL)
                .load_op(vk::AttachmentLoadOp::CLEAR)
                .store_op(vk::AttachmentStoreOp::STORE)
                .clear_value(clear);
            let area = vk::Rect2D { offset: vk::Offset2D::default(), extent };
            device.cmd_begin_rendering(
                cmd,
                &vk::RenderingInfo::default()
                    .render_area(area)
                    .layer_count(1)
                    .color_attachments(std::slice::from_ref(&attachment)),
            );
            record_fills(device, cmd, canvas.fills(), &mut self.clear_rects);
            if !shapes.is_empty() {
                let pipeline = &self.pipelines[pipeline_index];
                device.cmd_set_viewport(
                    cmd,
                    0,
                    &[vk::Viewport {
                        x: 0.0,
                        y: 0.0,
                        width: extent.width as f32,
                        height: extent.height as f32,
                        min_depth: 0.0,
                        max_depth: 1.0,
                    }],
                );
                device.cmd_set_scissor(cmd, 0, &[area]);
                device.cmd_bind_descriptor_sets(
                    cmd,
                    vk::PipelineBindPoint::GRAPHICS,
                    pipeline.layout,
                    0,
                    &[pipeline.set],
                    &[],
                );
                let push = Push { viewport: [extent.width as f32, extent.height as f32] };
                device.cmd_push_constants(
                    cmd,
                    pipeline.layout,
                    vk::ShaderStageFlags::VERTEX,
                    0,
                    bytemuck::bytes_of(&push),
                );
                let buffer = slot.instances.as_ref().expect("filled above").handle();
                device.cmd_bind_vertex_buffers(cmd, 0, &[buffer], &[0]);
                // Shapes draw in order; each run of one kind is one draw with
                // that kind's pipeline.
                let mut bound = None;
                for (first, count, kind) in runs(shapes) {
                    if bound != Some(kind) {
                        device.cmd_bind_pipeline(
                            cmd,
                            vk::PipelineBindPoint::GRAPHICS,
                            pipeline.pipelines[kind as usize],
                        );
                        bound = Some(kind);
                    }
                    device.cmd_draw(cmd, 6, count, 0, first);
                }
            }
            device.cmd_end_rendering(cmd);
            target.record_after(device, cmd, slot_index);
            device.end_command_buffer(cmd).vk("end_command_buffer")?;
            let cmds = [vk::CommandBufferSubmitInfo::default().command_buffer(cmd)];
            let submit = vk::SubmitInfo2::default().command_buffer_infos(&cmds);
            device.queue_submit2(self.gpu.queue(), &[submit], slot.fence).vk("queue_submit2")?;
        }
        if upload.is_some() {
            self.atlas.fresh = false;
        }
        self.slots[slot_index].pending = Some(serial);
        self.next_slot = (slot_index + 1) % FRAMES_IN_FLIGHT;
        Ok(FrameTicket { slot: slot_index, serial })
    }

    /// Waits until the frame is done on the GPU; then its target slot can be read.
    pub fn finish(&mut self, ticket: FrameTicket) -> Result<(), RenderError> {
        match self.slots[ticket.slot].pending {
            Some(s) if s == ticket.serial => self.wait_slot(ticket.slot),
            // A later frame reused the slot, so this one finished long ago
            // (its pixels are gone, which the caller's ticket order prevents).
            _ => Ok(()),
        }
    }

    /// Waits for every frame in flight.
    pub fn finish_all(&mut self) -> Result<(), RenderError> {
        for i in 0..self.slots.len() {
            self.wait_slot(i)?;
        }
        Ok(())
    }

    fn wait_slot(&mut self, i: usize) -> Result<(), RenderError> {
        if self.slots[i].pending.is_none() {
            return Ok(());
        }
        let device = self.gpu.device();
        let fence = self.slots[i].fence;
        // SAFETY: the fence is ours and was submitted.
        unsafe {
            match device.wait_for_fences(&[fence], true, FRAME_TIMEOUT_NS) {
                Ok(()) => {}
                Err(vk::Result::TIMEOUT) => {
                    return Err(RenderError::Vulkan { call: "wait_for_fences (10 s)", result: vk::Result::TIMEOUT })
                }
                Err(e) => return Err(RenderError::Vulkan { call: "wait_for_fences", result: e }),
            }
            device.reset_fences(&[fence]).vk("reset_fences")?;
        }
        self.slots[i].pending = None;
        Ok(())
    }

    /// The pipeline for `format`, built on first use (a window's format may
    /// differ from the offscreen one).
    fn pipeline_for(&mut self, format: vk::Format) -> Result<usize, RenderError> {
        if let Some(i) = self.pipelines.iter().position(|p| p.format == format) {
            return Ok(i);
        }
        self.pipelines.push(ShapePipeline::new(&self.gpu, format, self.atlas.image.view())?);
        Ok(self.pipelines.len() - 1)
    }

    /// Copies the canvas' new glyphs to the staging buffer; returns the rows
    /// to upload. The staging buffer is shared by the slots, so this waits
    /// for the frames in flight first (glyphs are new only in the first frames).
    fn stage_atlas(&mut self, canvas: &mut Canvas) -> Result<Option<(u32, u32)>, RenderError> {
        let rows = match (canvas.atlas_mut().take_dirty(), self.atlas.fresh) {
            (_, true) => (0, ATLAS_SIZE),
            (Some(r), false) => r,
            (None, false) => return Ok(None),
        };
        self.finish_all()?;
        let from = rows.0 as usize * ATLAS_SIZE as usize;
        let to = rows.1 as usize * ATLAS_SIZE as usize;
        self.atlas.staging.mapped_mut()[from..to].copy_from_slice(&canvas.atlas().pixels()[from..to]);
        Ok(Some(rows))
    }

    /// Records the copy of atlas rows from staging, with the layout changes.
    ///
    /// # Safety
    /// `cmd` is recording.
    unsafe fn record_atlas_upload(&self, cmd: vk::CommandBuffer, rows: (u32, u32)) {
        let device = self.gpu.device();
        let image = self.atlas.image.handle();
        let old = if self.atlas.fresh { vk::ImageLayout::UNDEFINED } else { vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL };
        let to_dst = layout_change(
            image,
            Access(vk::PipelineStageFlags2::FRAGMENT_SHADER, vk::AccessFlags2::SHADER_SAMPLED_READ),
            Access(vk::PipelineStageFlags2::COPY, vk::AccessFlags2::TRANSFER_WRITE),
            old,
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
        );
        let region = rows_copy(rows.0 as u64 * ATLAS_SIZE as u64, ATLAS_SIZE, rows.0, rows.1 - rows.0);
        let to_read = layout_change(
            image,
            Access(vk::PipelineStageFlags2::COPY, vk::AccessFlags2::TRANSFER_WRITE),
            Access(vk::PipelineStageFlags2::FRAGMENT_SHADER, vk::AccessFlags2::SHADER_SAMPLED_READ),
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
        );
        // SAFETY: per the function contract; staging holds the rows (stage_atlas).
        unsafe {
            device.cmd_pipeline_barrier2(cmd, &vk::DependencyInfo::default().image_memory_barriers(&[to_dst]));
            device.cmd_copy_buffer_to_image(
                cmd,
                self.atlas.staging.handle(),
                image,
                vk::ImageLayout::TRANSFER_DST_OPTIMAL,
                &[region],
            );
            device.cmd_pipeline_barrier2(cmd, &vk::DependencyInfo::default().image_memory_barriers(&[to_read]));
        }
    }

    /// Writes the shapes into the slot's instance buffer, growing it (to the
    /// next power of two) when the frame has more shapes than ever before.
    fn fill_instances(&mut self, slot: usize, shapes: &[Shape]) -> Result<(), RenderError> {
        let bytes: &[u8] = bytemuck::cast_slice(shapes);
        let needed = (bytes.len() as u64).max(4096);
        let s = &mut self.slots[slot];
        if s.instances.as_ref().is_none_or(|b| b.size() < needed) {
            s.instances = None; // the slot's fence has signalled: free to drop
            s.instances = Some(Buffer::new(
                &self.gpu,
                "shape instances",
                needed.next_power_of_two(),
                vk::BufferUsageFlags::VERTEX_BUFFER,
                MemoryLocation::CpuToGpu,
            )?);
        }
        let buffer = s.instances.as_mut().expect("made above");
        buffer.mapped_mut()[..bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
}

/// Records the canvas' opaque fills as clears, one call per run of one
/// colour (inside the rendering, before any draw).
///
/// # Safety
/// `cmd` is recording, inside `cmd_begin_rendering` of the frame.
unsafe fn record_fills(
    device: &ash::Device,
    cmd: vk::CommandBuffer,
    fills: &[Shape],
    scratch: &mut Vec<vk::ClearRect>,
) {
    let mut start = 0;
    while start < fills.len() {
        let color = fills[start].color;
        let mut end = start + 1;
        while end < fills.len() && fills[end].color == color {
            end += 1;
        }
        scratch.clear();
        scratch.extend(fills[start..end].iter().map(solid_rect));
        let clear = vk::ClearAttachment {
            aspect_mask: vk::ImageAspectFlags::COLOR,
            color_attachment: 0,
            clear_value: vk::ClearValue {
                color: vk::ClearColorValue { float32: crate::draw::Color(color).opaque().to_f32() },
            },
        };
        // SAFETY: per the function contract; the rectangles lie inside the
        // frame (`Canvas::fill` clamps them).
        unsafe { device.cmd_clear_attachments(cmd, &[clear], scratch) };
        start = end;
    }
}

/// A `Solid` shape's whole-pixel rectangle (`Canvas::fill` clamps it to the frame).
fn solid_rect(s: &Shape) -> vk::ClearRect {
    let [x0, y0, x1, y1] = s.a;
    vk::ClearRect {
        rect: vk::Rect2D {
            offset: vk::Offset2D { x: x0 as i32, y: y0 as i32 },
            extent: vk::Extent2D { width: (x1 - x0) as u32, height: (y1 - y0) as u32 },
        },
        base_array_layer: 0,
        layer_count: 1,
    }
}

/// Consecutive shapes of one kind: (first index, count, kind).
fn runs(shapes: &[Shape]) -> impl Iterator<Item = (u32, u32, ShapeKind)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let kind = shapes.get(i)?.kind();
        let first = i;
        while i < shapes.len() && shapes[i].kind() == kind {
            i += 1;
        }
        Some((first as u32, (i - first) as u32, kind))
    })
}

impl Drop for Renderer {
    fn drop(&mut self) {
        // SAFETY: wait for the device, so nothing recorded here is in use;
        // then fences and the pool (its buffers with it). Buffers, images
        // and pipelines drop after this body, before the Gpu (field order).
        unsafe {
            let device = self.gpu.device();
            let _ = device.device_wait_idle();
            for s in &self.slots {
                device.destroy_fence(s.fence, None);
            }
            device.destroy_command_pool(self.pool, None);
        }
    }
}
