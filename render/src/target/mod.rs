//! Where frames go: the seam between drawing and delivering. The renderer
//! draws into the target's image for the frame, then the target records
//! what must follow on the GPU (a copy to memory for `Offscreen`; for a
//! window's dmabufs, the hand-over of the image to the compositor), and
//! names the semaphores the frame's submit waits on and signals.

mod dmabuf;
mod offscreen;
mod sync_file;

use ash::vk;

use crate::gpu::{layout_change, rows_copy, Access, Buffer};

pub use dmabuf::{DmabufFrame, DmabufImages, DmabufLayout, DmabufPlane, SyncMode};
pub use offscreen::Offscreen;

/// A destination for frames, one image per frame slot (or per acquired
/// buffer) so a frame can be drawn while the one before is still being read
/// or shown.
pub trait FrameTarget {
    fn extent(&self) -> vk::Extent2D;
    fn format(&self) -> vk::Format;
    /// The image (and view) frame slot `slot` draws into. The renderer moves
    /// it from UNDEFINED (its old content is not kept) to colour attachment.
    fn image(&self, slot: usize) -> (vk::Image, vk::ImageView);
    /// Records what follows the drawing, in the same command buffer. The
    /// image is in COLOR_ATTACHMENT_OPTIMAL, written at
    /// COLOR_ATTACHMENT_OUTPUT.
    fn record_after(&self, device: &ash::Device, cmd: vk::CommandBuffer, slot: usize);
    /// A semaphore the frame's submit waits on before anything in it runs
    /// (another process still reading the image). None for private images.
    fn wait_semaphore(&self, _slot: usize) -> Option<vk::Semaphore> {
        None
    }
    /// A semaphore the frame's submit signals when it completes (exported
    /// for another process). None when only the frame's fence is needed.
    fn signal_semaphore(&self, _slot: usize) -> Option<vk::Semaphore> {
        None
    }
}

/// Records the copy of a drawn frame (in COLOR_ATTACHMENT_OPTIMAL, written
/// at COLOR_ATTACHMENT_OUTPUT) into `readback` as tightly packed rows, made
/// visible to the host. The image is left in TRANSFER_SRC_OPTIMAL.
pub(crate) fn record_readback(
    device: &ash::Device,
    cmd: vk::CommandBuffer,
    image: vk::Image,
    extent: vk::Extent2D,
    readback: &Buffer,
) {
    let to_transfer = layout_change(
        image,
        Access(vk::PipelineStageFlags2::COLOR_ATTACHMENT_OUTPUT, vk::AccessFlags2::COLOR_ATTACHMENT_WRITE),
        Access(vk::PipelineStageFlags2::COPY, vk::AccessFlags2::TRANSFER_READ),
        vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL,
        vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
    );
    let to_host = vk::BufferMemoryBarrier2::default()
        .src_stage_mask(vk::PipelineStageFlags2::COPY)
        .src_access_mask(vk::AccessFlags2::TRANSFER_WRITE)
        .dst_stage_mask(vk::PipelineStageFlags2::HOST)
        .dst_access_mask(vk::AccessFlags2::HOST_READ)
        .buffer(readback.handle())
        .offset(0)
        .size(vk::WHOLE_SIZE);
    // SAFETY: `cmd` is recording; image and buffer are the caller's and
    // sized for the copy; the barriers order draw -> copy -> host read.
    unsafe {
        device.cmd_pipeline_barrier2(
            cmd,
            &vk::DependencyInfo::default().image_memory_barriers(std::slice::from_ref(&to_transfer)),
        );
        device.cmd_copy_image_to_buffer(
            cmd,
            image,
            vk::ImageLayout::TRANSFER_SRC_OPTIMAL,
            readback.handle(),
            &[rows_copy(0, extent.width, 0, extent.height)],
        );
        device.cmd_pipeline_barrier2(
            cmd,
            &vk::DependencyInfo::default().buffer_memory_barriers(std::slice::from_ref(&to_host)),
        );
    }
}
