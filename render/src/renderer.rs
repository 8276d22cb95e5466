//! Draws a [`Canvas`] (and egui's output, when there is a UI) into a
//! [`FrameTarget`]: the canvas' fills as clears, its shapes as instanced
//! draws, egui's meshes in their order with the canvas' panes where egui's
//! callbacks put them. Two frames in flight: frame N+1 is recorded while the
//! GPU still works on frame N; each slot has its own command buffer, fence
//! and buffers, reused only after its fence.

use std::sync::Arc;

use ash::vk;
use gpu_allocator::MemoryLocation;

use crate::draw::{Canvas, Shape, ShapeKind, ATLAS_SIZE};
use crate::error::{RenderError, VkContext};
use crate::gpu::{layout_change, rows_copy, Access, Buffer, Gpu, Image};
use crate::pipeline::{Push, ShapePipeline};
use crate::target::FrameTarget;
use crate::ui::{textures::ensure_staging, CanvasPane, UiFrame, UiPipeline, UiPush, UiRecord, UiTextures};

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
    ui_vertices: Option<Buffer>,
    ui_indices: Option<Buffer>,
    ui_staging: Option<Buffer>,
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
    ui_pipelines: Vec<UiPipeline>,
    ui_textures: Option<UiTextures>,
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
            ui_pipelines: Vec::new(),
            ui_textures: None,
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
            me.slots.push(Slot {
                cmd,
                fence,
                instances: None,
                ui_vertices: None,
                ui_indices: None,
                ui_staging: None,
                pending: None,
            });
        }
        Ok(me)
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// Records and submits one frame of `canvas` into `target`, after the
    /// frame that last used this slot has finished. Returns at once.
    pub fn render(&mut self, canvas: &mut Canvas, target: &dyn FrameTarget) -> Result<FrameTicket, RenderError> {
        self.render_frame(canvas, None, target)
    }

    /// As [`render`](Self::render), with egui's output: its meshes in order,
    /// and the canvas drawn only where egui's paint callbacks put
    /// [`CanvasPane`]s.
    pub fn render_with_ui(
        &mut self,
        canvas: &mut Canvas,
        ui: UiFrame<'_>,
        target: &dyn FrameTarget,
    ) -> Result<FrameTicket, RenderError> {
        // Taken here, so the deltas count as applied even if this frame fails
        // (egui would re-send a lost texture only if told; a failed frame is
        // followed by a rebuilt renderer, which starts from egui's full state).
        let mut textures = std::mem::take(ui.textures);
        let record = UiRecord { primitives: ui.primitives, textures: &textures, pixels_per_point: ui.pixels_per_point };
        let result = self.render_frame(canvas, Some(&record), target);
        textures.clear();
        result
    }

    fn render_frame(
        &mut self,
        canvas: &mut Canvas,
        ui: Option<&UiRecord<'_>>,
        target: &dyn FrameTarget,
    ) -> Result<FrameTicket, RenderError> {
        let extent = target.extent();
        let slot_index = self.next_slot;
        self.wait_slot(slot_index)?;
        self.serial += 1;
        let serial = self.serial;
        // Every frame up to this one's predecessor on the slot has finished.
        if let Some(t) = &mut self.ui_textures {
            t.collect(serial.saturating_sub(FRAMES_IN_FLIGHT as u64));
        }

        let pipeline_index = self.pipeline_for(target.format())?;
        let ui_pipeline_index = match ui {
            Some(_) => Some(self.ui_pipeline_for(target.format())?),
            None => None,
        };
        let upload = self.stage_atlas(canvas)?;
        self.fill_instances(slot_index, canvas.shapes())?;
        let meshes = match ui {
            Some(ui) => {
                let bytes = UiTextures::staging_bytes(ui.textures);
                if bytes > 0 {
                    ensure_staging(&self.gpu, &mut self.slots[slot_index].ui_staging, bytes)?;
                }
                self.fill_ui_buffers(slot_index, ui.primitives)?
            }
            None => Vec::new(),
        };

        let device = self.gpu.device();
        let slot = &mut self.slots[slot_index];
        let cmd = slot.cmd;
        let (image, view) = target.image(slot_index);
        let clear = vk::ClearValue { color: vk::ClearColorValue { float32: canvas.background().to_f32() } };
        let area = vk::Rect2D { offset: vk::Offset2D::default(), extent };
        let full = Clip::full(extent);
        // SAFETY: the slot's fence has signalled, so its command buffer and
        // buffers are free to reuse; every handle recorded lives until the
        // fence signals again (the target and canvas are borrowed by the
        // caller, who must keep the target until `finish`).
        unsafe {
            device.reset_command_buffer(cmd, vk::CommandBufferResetFlags::empty()).vk("reset_command_buffer")?;
            device
                .begin_command_buffer(
                    cmd,
                    &vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
                )
                .vk("begin_command_buffer")?;
            if let Some(rows) = upload {
                record_atlas_upload(device, &self.atlas, cmd, rows);
            }
            if let (Some(ui), Some(staging)) = (ui, slot.ui_staging.as_mut()) {
                let textures = match &mut self.ui_textures {
                    Some(t) => t,
                    None => self.ui_textures.insert(UiTextures::new(&self.gpu)?),
                };
                textures.upload(cmd, ui.textures, staging, serial)?;
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
            device.cmd_begin_rendering(
                cmd,
                &vk::RenderingInfo::default()
                    .render_area(area)
                    .layer_count(1)
                    .color_attachments(std::slice::from_ref(&attachment)),
            );
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
            let mut pass = Pass {
                device,
                cmd,
                extent,
                shapes: canvas.shapes(),
                fills: canvas.fills(),
                shape_pipeline: &self.pipelines[pipeline_index],
                instances: slot.instances.as_ref().map(|b| b.handle()),
                scratch: &mut self.clear_rects,
                bound: Bound::Nothing,
            };
            match ui {
                None => {
                    pass.fills(0..canvas.fills().len(), full);
                    pass.shapes(0..canvas.shapes().len(), full);
                }
                Some(ui) => {
                    let ui_pipeline = &self.ui_pipelines[ui_pipeline_index.expect("made above")];
                    let textures = self.ui_textures.as_ref().expect("made above");
                    let (vertices, indices) =
                        (slot.ui_vertices.as_ref().map(|b| b.handle()), slot.ui_indices.as_ref().map(|b| b.handle()));
                    let mut meshes = meshes.iter();
                    for prim in ui.primitives {
                        let Some(clip) = Clip::of(prim.clip_rect, ui.pixels_per_point, extent) else {
                            if matches!(prim.primitive, epaint::Primitive::Mesh(_)) {
                                meshes.next();
                            }
                            continue;
                        };
                        match &prim.primitive {
                            epaint::Primitive::Mesh(mesh) => {
                                let Some(&(first_index, vertex_offset)) = meshes.next() else { continue };
                                let (Some(set), Some(vb), Some(ib)) =
                                    (textures.set_of(mesh.texture_id), vertices, indices)
                                else {
                                    continue;
                                };
                                pass.ui_mesh(
                                    ui_pipeline,
                                    ui.pixels_per_point,
                                    vb,
                                    ib,
                                    set,
                                    clip,
                                    mesh.indices.len() as u32,
                                    first_index,
                                    vertex_offset,
                                );
                            }
                            epaint::Primitive::Callback(cb) => {
                                // A pane draws inside its own rectangle, within egui's clip.
                                let Some(pane_clip) =
                                    Clip::of(cb.rect.intersect(prim.clip_rect), ui.pixels_per_point, extent)
                                else {
                                    continue;
                                };
                                if let Some(pane) = cb.callback.downcast_ref::<CanvasPane>() {
                                    pass.fills(pane.fills.clone(), pane_clip);
                                    pass.shapes(pane.shapes.clone(), pane_clip);
                                }
                            }
                        }
                    }
                }
            }
            device.cmd_end_rendering(cmd);
            target.record_after(device, cmd, slot_index);
            device.end_command_buffer(cmd).vk("end_command_buffer")?;
            let cmds = [vk::CommandBufferSubmitInfo::default().command_buffer(cmd)];
            // A shared target's semaphores: whoever still reads its image
            // (waited before anything runs), and the frame's completion.
            let semaphore = |s: vk::Semaphore| {
                vk::SemaphoreSubmitInfo::default().semaphore(s).stage_mask(vk::PipelineStageFlags2::ALL_COMMANDS)
            };
            let wait = target.wait_semaphore(slot_index).map(semaphore);
            let signal = target.signal_semaphore(slot_index).map(semaphore);
            let submit = vk::SubmitInfo2::default()
                .wait_semaphore_infos(wait.as_slice())
                .command_buffer_infos(&cmds)
                .signal_semaphore_infos(signal.as_slice());
            device.queue_submit2(self.gpu.queue(), &[submit], slot.fence).vk("queue_submit2")?;
        }
        if upload.is_some() {
            self.atlas.fresh = false;
        }
        if let (Some(ui), Some(t)) = (ui, &mut self.ui_textures) {
            t.free(ui.textures, serial);
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

    /// Whether the frame is done on the GPU, without waiting (a swapchain
    /// frees a buffer's resources once its last frame is done).
    pub fn is_done(&self, ticket: FrameTicket) -> Result<bool, RenderError> {
        let slot = &self.slots[ticket.slot];
        if slot.pending != Some(ticket.serial) {
            return Ok(true);
        }
        // SAFETY: the fence is ours and was submitted.
        unsafe { self.gpu.device().get_fence_status(slot.fence) }.vk("get_fence_status")
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

    /// The egui pipeline for `format`, built on first use (with the
    /// texture set that owns its descriptor layout).
    fn ui_pipeline_for(&mut self, format: vk::Format) -> Result<usize, RenderError> {
        if let Some(i) = self.ui_pipelines.iter().position(|p| p.format == format) {
            return Ok(i);
        }
        let textures = match &mut self.ui_textures {
            Some(t) => t,
            None => self.ui_textures.insert(UiTextures::new(&self.gpu)?),
        };
        self.ui_pipelines.push(UiPipeline::new(&self.gpu, format, textures.set_layout)?);
        Ok(self.ui_pipelines.len() - 1)
    }

    /// Writes egui's meshes into the slot's vertex and index buffers; returns
    /// each mesh's (first index, vertex offset) in order.
    fn fill_ui_buffers(
        &mut self,
        slot: usize,
        primitives: &[epaint::ClippedPrimitive],
    ) -> Result<Vec<(u32, i32)>, RenderError> {
        let meshes = || {
            primitives.iter().filter_map(|p| match &p.primitive {
                epaint::Primitive::Mesh(m) => Some(m),
                epaint::Primitive::Callback(_) => None,
            })
        };
        let vertex_bytes: u64 =
            meshes().map(|m| (m.vertices.len() * std::mem::size_of::<epaint::Vertex>()) as u64).sum();
        let index_bytes: u64 = meshes().map(|m| (m.indices.len() * 4) as u64).sum();
        let s = &mut self.slots[slot];
        grow(&self.gpu, &mut s.ui_vertices, vertex_bytes, vk::BufferUsageFlags::VERTEX_BUFFER, "egui vertices")?;
        grow(&self.gpu, &mut s.ui_indices, index_bytes, vk::BufferUsageFlags::INDEX_BUFFER, "egui indices")?;
        let (vb, ib) = (s.ui_vertices.as_mut().expect("grown"), s.ui_indices.as_mut().expect("grown"));
        let (mut v_at, mut i_at) = (0usize, 0usize);
        let mut out = Vec::new();
        for m in meshes() {
            let v: &[u8] = bytemuck::cast_slice(&m.vertices);
            let i: &[u8] = bytemuck::cast_slice(&m.indices);
            vb.mapped_mut()[v_at..v_at + v.len()].copy_from_slice(v);
            ib.mapped_mut()[i_at..i_at + i.len()].copy_from_slice(i);
            out.push(((i_at / 4) as u32, (v_at / std::mem::size_of::<epaint::Vertex>()) as i32));
            v_at += v.len();
            i_at += i.len();
        }
        Ok(out)
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

    /// Writes the shapes into the slot's instance buffer, growing it (to the
    /// next power of two) when the frame has more shapes than ever before.
    fn fill_instances(&mut self, slot: usize, shapes: &[Shape]) -> Result<(), RenderError> {
        let bytes: &[u8] = bytemuck::cast_slice(shapes);
        let s = &mut self.slots[slot];
        grow(&self.gpu, &mut s.instances, bytes.len() as u64, vk::BufferUsageFlags::VERTEX_BUFFER, "shape instances")?;
        let buffer = s.instances.as_mut().expect("made above");
        buffer.mapped_mut()[..bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
}

/// Records the copy of atlas rows from staging, with the layout changes.
///
/// # Safety
/// `cmd` is recording.
unsafe fn record_atlas_upload(device: &ash::Device, atlas: &AtlasTexture, cmd: vk::CommandBuffer, rows: (u32, u32)) {
    let image = atlas.image.handle();
    let old = if atlas.fresh { vk::ImageLayout::UNDEFINED } else { vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL };
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
            atlas.staging.handle(),
            image,
            vk::ImageLayout::TRANSFER_DST_OPTIMAL,
            &[region],
        );
        device.cmd_pipeline_barrier2(cmd, &vk::DependencyInfo::default().image_memory_barriers(&[to_read]));
    }
}

/// A host-visible buffer of at least `bytes` (4 KiB at least, grown to a
/// power of two). The slot's fence has signalled, so the old one may go.
fn grow(
    gpu: &Arc<Gpu>,
    slot: &mut Option<Buffer>,
    bytes: u64,
    usage: vk::BufferUsageFlags,
    name: &str,
) -> Result<(), RenderError> {
    let needed = bytes.max(4096);
    if slot.as_ref().is_none_or(|b| b.size() < needed) {
        *slot = None;
        *slot = Some(Buffer::new(gpu, name, needed.next_power_of_two(), usage, MemoryLocation::CpuToGpu)?);
    }
    Ok(())
}

/// A scissor rectangle in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Clip {
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
}

impl Clip {
    fn full(extent: vk::Extent2D) -> Clip {
        Clip { x0: 0, y0: 0, x1: extent.width, y1: extent.height }
    }

    /// egui's clip rectangle (points) in pixels, inside the frame; `None` if empty.
    fn of(r: epaint::Rect, pixels_per_point: f32, extent: vk::Extent2D) -> Option<Clip> {
        let px = |v: f32, max: u32| ((v * pixels_per_point).round().max(0.0) as u32).min(max);
        let c = Clip {
            x0: px(r.min.x, extent.width),
            y0: px(r.min.y, extent.height),
            x1: px(r.max.x, extent.width),
            y1: px(r.max.y, extent.height),
        };
        (c.x1 > c.x0 && c.y1 > c.y0).then_some(c)
    }

    fn rect(&self) -> vk::Rect2D {
        vk::Rect2D {
            offset: vk::Offset2D { x: self.x0 as i32, y: self.y0 as i32 },
            extent: vk::Extent2D { width: self.x1 - self.x0, height: self.y1 - self.y0 },
        }
    }

    /// A fill's rectangle cut to this clip; `None` if nothing is left.
    fn cut(&self, r: vk::ClearRect) -> Option<vk::ClearRect> {
        let x0 = (r.rect.offset.x.max(0) as u32).max(self.x0);
        let y0 = (r.rect.offset.y.max(0) as u32).max(self.y0);
        let x1 = (r.rect.offset.x.max(0) as u32 + r.rect.extent.width).min(self.x1);
        let y1 = (r.rect.offset.y.max(0) as u32 + r.rect.extent.height).min(self.y1);
        // Lazily: a fill wholly outside the clip has x1 < x0 (a pane
        // narrower than its fills once the window shrinks).
        (x1 > x0 && y1 > y0).then(|| vk::ClearRect {
            rect: vk::Rect2D {
                offset: vk::Offset2D { x: x0 as i32, y: y0 as i32 },
                extent: vk::Extent2D { width: x1 - x0, height: y1 - y0 },
            },
            base_array_layer: 0,
            layer_count: 1,
        })
    }
}

/// What pipeline the pass has bound, so runs of one kind bind once.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bound {
    Nothing,
    Shape(ShapeKind),
    Ui,
}

/// One frame's rendering, inside `cmd_begin_rendering`: the helpers that
/// record the canvas' fills and shapes and egui's meshes, in the order called.
struct Pass<'a> {
    device: &'a ash::Device,
    cmd: vk::CommandBuffer,
    extent: vk::Extent2D,
    shapes: &'a [Shape],
    fills: &'a [Shape],
    shape_pipeline: &'a ShapePipeline,
    instances: Option<vk::Buffer>,
    scratch: &'a mut Vec<vk::ClearRect>,
    bound: Bound,
}

impl Pass<'_> {
    /// The fills `range`, cut to `clip`, as clears: one call per run of one colour.
    ///
    /// # Safety
    /// Inside the frame's rendering.
    unsafe fn fills(&mut self, range: std::ops::Range<usize>, clip: Clip) {
        let Some(fills) = self.fills.get(range) else { return };
        let mut start = 0;
        while start < fills.len() {
            let color = fills[start].color;
            let mut end = start + 1;
            while end < fills.len() && fills[end].color == color {
                end += 1;
            }
            self.scratch.clear();
            self.scratch.extend(fills[start..end].iter().filter_map(|f| clip.cut(solid_rect(f))));
            if !self.scratch.is_empty() {
                let clear = vk::ClearAttachment {
                    aspect_mask: vk::ImageAspectFlags::COLOR,
                    color_attachment: 0,
                    clear_value: vk::ClearValue {
                        color: vk::ClearColorValue { float32: crate::draw::Color(color).opaque().to_f32() },
                    },
                };
                // SAFETY: per the contract; the rectangles lie inside the frame.
                unsafe { self.device.cmd_clear_attachments(self.cmd, &[clear], self.scratch) };
            }
            start = end;
        }
    }

    /// The shapes `range`, clipped, each run of one kind with its pipeline.
    ///
    /// # Safety
    /// Inside the frame's rendering; the instance buffer holds the shapes.
    unsafe fn shapes(&mut self, range: std::ops::Range<usize>, clip: Clip) {
        let (Some(shapes), Some(buffer)) = (self.shapes.get(range.clone()), self.instances) else { return };
        if shapes.is_empty() {
            return;
        }
        let p = self.shape_pipeline;
        let (device, cmd) = (self.device, self.cmd);
        // SAFETY: per the contract; the pipeline's layout matches its set and push range.
        unsafe {
            device.cmd_set_scissor(cmd, 0, &[clip.rect()]);
            if !matches!(self.bound, Bound::Shape(_)) {
                device.cmd_bind_descriptor_sets(cmd, vk::PipelineBindPoint::GRAPHICS, p.layout, 0, &[p.set], &[]);
                let push = Push { viewport: [self.extent.width as f32, self.extent.height as f32] };
                device.cmd_push_constants(cmd, p.layout, vk::ShaderStageFlags::VERTEX, 0, bytemuck::bytes_of(&push));
                device.cmd_bind_vertex_buffers(cmd, 0, &[buffer], &[0]);
            }
            for (first, count, kind) in runs(shapes) {
                if self.bound != Bound::Shape(kind) {
                    device.cmd_bind_pipeline(cmd, vk::PipelineBindPoint::GRAPHICS, p.pipelines[kind as usize]);
                    self.bound = Bound::Shape(kind);
                }
                device.cmd_draw(cmd, 6, count, 0, range.start as u32 + first);
            }
        }
    }

    /// One egui mesh.
    ///
    /// # Safety
    /// Inside the frame's rendering; the buffers hold the mesh at the offsets.
    #[allow(clippy::too_many_arguments)]
    unsafe fn ui_mesh(
        &mut self,
        p: &UiPipeline,
        pixels_per_point: f32,
        vertices: vk::Buffer,
        indices: vk::Buffer,
        set: vk::DescriptorSet,
        clip: Clip,
        count: u32,
        first_index: u32,
        vertex_offset: i32,
    ) {
        let (device, cmd) = (self.device, self.cmd);
        // SAFETY: per the contract.
        unsafe {
            if self.bound != Bound::Ui {
                device.cmd_bind_pipeline(cmd, vk::PipelineBindPoint::GRAPHICS, p.pipeline);
                let push = UiPush {
                    screen_points: [
                        self.extent.width as f32 / pixels_per_point,
                        self.extent.height as f32 / pixels_per_point,
                    ],
                };
                device.cmd_push_constants(cmd, p.layout, vk::ShaderStageFlags::VERTEX, 0, bytemuck::bytes_of(&push));
                device.cmd_bind_vertex_buffers(cmd, 0, &[vertices], &[0]);
                device.cmd_bind_index_buffer(cmd, indices, 0, vk::IndexType::UINT32);
                self.bound = Bound::Ui;
            }
            device.cmd_set_scissor(cmd, 0, &[clip.rect()]);
            device.cmd_bind_descriptor_sets(cmd, vk::PipelineBindPoint::GRAPHICS, p.layout, 0, &[set], &[]);
            device.cmd_draw_indexed(cmd, count, 1, first_index, vertex_offset, 0);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(x: i32, y: i32, w: u32, h: u32) -> vk::ClearRect {
        vk::ClearRect {
            rect: vk::Rect2D { offset: vk::Offset2D { x, y }, extent: vk::Extent2D { width: w, height: h } },
            base_array_layer: 0,
            layer_count: 1,
        }
    }

    #[test]
    fn fills_are_cut_to_the_clip_and_those_outside_it_vanish() {
        let clip = Clip { x0: 100, y0: 50, x1: 400, y1: 300 };
        let cut = clip.cut(fill(50, 0, 100, 100)).unwrap();
        assert_eq!(
            (cut.rect.offset.x, cut.rect.offset.y, cut.rect.extent.width, cut.rect.extent.height),
            (100, 50, 50, 50)
        );
        // Wholly left of, right of, above and below the clip (a pane narrowed
        // under its fills when the window shrank): nothing, and no panic.
        assert!(clip.cut(fill(0, 60, 40, 10)).is_none());
        assert!(clip.cut(fill(500, 60, 40, 10)).is_none());
        assert!(clip.cut(fill(120, 0, 40, 10)).is_none());
        assert!(clip.cut(fill(120, 900, 40, 10)).is_none());
        assert!(clip.cut(fill(-80, -80, 40, 40)).is_none());
    }
}
