//! The offscreen target: frames copied back to host memory.

use std::sync::Arc;

use ash::vk;
use gpu_allocator::MemoryLocation;

use super::{record_readback, FrameTarget};
use crate::error::RenderError;
use crate::gpu::{Buffer, Gpu, Image, FRAME_FORMAT};
use crate::renderer::FRAMES_IN_FLIGHT;

/// Frames drawn offscreen and copied back to memory as tightly packed rows
/// of sRGB values: RGBA for snapshots, video frames and tests; BGRA for a
/// window's shared-memory buffers (Wayland's XRGB8888 is BGRA in memory).
pub struct Offscreen {
    images: Vec<Image>,
    readback: Vec<Buffer>,
    extent: vk::Extent2D,
    format: vk::Format,
}

impl Offscreen {
    /// RGBA frames.
    pub fn new(gpu: &Arc<Gpu>, width: u32, height: u32) -> Result<Offscreen, RenderError> {
        Offscreen::with_format(gpu, width, height, FRAME_FORMAT)
    }

    /// Frames in `format` (8-bit, 4 channels: `R8G8B8A8_UNORM` or `B8G8R8A8_UNORM`).
    pub fn with_format(gpu: &Arc<Gpu>, width: u32, height: u32, format: vk::Format) -> Result<Offscreen, RenderError> {
        gpu.check_size(width, height)?;
        let extent = vk::Extent2D { width, height };
        let bytes = width as u64 * height as u64 * 4;
        let mut images = Vec::new();
        let mut readback = Vec::new();
        for slot in 0..FRAMES_IN_FLIGHT {
            images.push(Image::new(
                gpu,
                &format!("offscreen frame {slot}"),
                extent,
                format,
                vk::ImageUsageFlags::COLOR_ATTACHMENT | vk::ImageUsageFlags::TRANSFER_SRC,
            )?);
            readback.push(Buffer::new(
                gpu,
                &format!("offscreen readback {slot}"),
                bytes,
                vk::BufferUsageFlags::TRANSFER_DST,
                MemoryLocation::GpuToCpu,
            )?);
        }
        Ok(Offscreen { images, readback, extent, format })
    }

    /// The RGBA pixels of `slot`'s last frame. Only meaningful after the
    /// renderer has finished that frame (`Renderer::finish`).
    pub fn pixels(&self, slot: usize) -> &[u8] {
        self.readback[slot].mapped()
    }
}

impl FrameTarget for Offscreen {
    fn extent(&self) -> vk::Extent2D {
        self.extent
    }
    fn format(&self) -> vk::Format {
        self.format
    }
    fn image(&self, slot: usize) -> (vk::Image, vk::ImageView) {
        (self.images[slot].handle(), self.images[slot].view())
    }
    fn record_after(&self, device: &ash::Device, cmd: vk::CommandBuffer, slot: usize) {
        record_readback(device, cmd, self.images[slot].handle(), self.extent, &self.readback[slot]);
    }
}
