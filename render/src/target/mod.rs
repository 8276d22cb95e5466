//! Where frames go: the seam between drawing and delivering. The renderer
//! draws into the target's image for the frame, then the target records
//! what must follow on the GPU (a copy to memory for `Offscreen`; for a
//! window's dmabufs, the hand-over of the image to the compositor), and
//! names the semaphores the frame's submit waits on and signals.

mod dmabuf;
mod offscreen;
mod sync_file;

use ash::vk;

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
