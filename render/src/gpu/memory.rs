//! Buffers and images with their memory, from gpu-allocator (a maintained
//! sub-allocator: one `vkAllocateMemory` per block, not per resource, which
//! matters on drivers with a low allocation limit). Each frees itself on drop
//! and holds the `Gpu`, so it can never outlive the device.

use std::sync::Arc;

use ash::vk;
use gpu_allocator::vulkan::{Allocation, AllocationCreateDesc, AllocationScheme};
use gpu_allocator::MemoryLocation;

use super::Gpu;
use crate::error::{RenderError, VkContext};

/// A buffer and its memory. The caller must not drop it while the GPU may
/// still use it (the renderer waits on the frame's fence first).
pub struct Buffer {
    gpu: Arc<Gpu>,
    buffer: vk::Buffer,
    allocation: Option<Allocation>,
    size: u64,
}

impl Buffer {
    /// `location`: `CpuToGpu` for data written each frame, `GpuToCpu` for
    /// read-back (cached for fast CPU reads where the device offers it).
    pub fn new(
        gpu: &Arc<Gpu>,
        name: &str,
        size: u64,
        usage: vk::BufferUsageFlags,
        location: MemoryLocation,
    ) -> Result<Buffer, RenderError> {
        let device = gpu.device();
        let info =
            vk::BufferCreateInfo::default().size(size.max(1)).usage(usage).sharing_mode(vk::SharingMode::EXCLUSIVE);
        // SAFETY: valid create info; the buffer is destroyed in Drop (or below on error).
        let buffer = unsafe { device.create_buffer(&info, None) }.vk("create_buffer")?;
        // SAFETY: the buffer was just created on this device.
        let requirements = unsafe { device.get_buffer_memory_requirements(buffer) };
        let allocation = gpu.allocator().allocate(&AllocationCreateDesc {
            name,
            requirements,
            location,
            linear: true,
            allocation_scheme: AllocationScheme::GpuAllocatorManaged,
        });
        let allocation = match allocation {
            Ok(a) => a,
            Err(e) => {
                // SAFETY: unused, unbound buffer of ours.
                unsafe { device.destroy_buffer(buffer, None) };
                return Err(e.into());
            }
        };
        let mut me = Buffer { gpu: gpu.clone(), buffer, allocation: Some(allocation), size };
        let a = me.allocation.as_ref().expect("just set");
        // SAFETY: memory sized by the buffer's requirements, bound once.
        unsafe { device.bind_buffer_memory(buffer, a.memory(), a.offset()) }.vk("bind_buffer_memory")?;
        me.size = size;
        Ok(me)
    }

    pub fn handle(&self) -> vk::Buffer {
        self.buffer
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    /// The mapped bytes of a host-visible buffer.
    pub fn mapped(&self) -> &[u8] {
        let a = self.allocation.as_ref().expect("allocation lives until drop");
        &a.mapped_slice().expect("host-visible buffer")[..self.size as usize]
    }
    pub fn mapped_mut(&mut self) -> &mut [u8] {
        let size = self.size as usize;
        let a = self.allocation.as_mut().expect("allocation lives until drop");
        &mut a.mapped_slice_mut().expect("host-visible buffer")[..size]
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: the owner guarantees the GPU is done with it (see type doc).
        unsafe { self.gpu.device().destroy_buffer(self.buffer, None) };
        if let Some(a) = self.allocation.take() {
            let _ = self.gpu.allocator().free(a);
        }
    }
}

/// A 2D image with one mip level, its view and memory.
pub struct Image {
    gpu: Arc<Gpu>,
    image: vk::Image,
    view: vk::ImageView,
    allocation: Option<Allocation>,
    extent: vk::Extent2D,
    format: vk::Format,
}

impl Image {
    pub fn new(
        gpu: &Arc<Gpu>,
        name: &str,
        extent: vk::Extent2D,
        format: vk::Format,
        usage: vk::ImageUsageFlags,
    ) -> Result<Image, RenderError> {
        gpu.check_size(extent.width, extent.height)?;
        let device = gpu.device();
        let info = vk::ImageCreateInfo::default()
            .image_type(vk::ImageType::TYPE_2D)
            .format(format)
            .extent(vk::Extent3D { width: extent.width, height: extent.height, depth: 1 })
            .mip_levels(1)
            .array_layers(1)
            .samples(vk::SampleCountFlags::TYPE_1)
            .tiling(vk::ImageTiling::OPTIMAL)
            .usage(usage)
            .sharing_mode(vk::SharingMode::EXCLUSIVE)
            .initial_layout(vk::ImageLayout::UNDEFINED);
        // SAFETY: valid create info; destroyed in Drop or below.
        let image = unsafe { device.create_image(&info, None) }.vk("create_image")?;
        // SAFETY: image of this device.
        let requirements = unsafe { device.get_image_memory_requirements(image) };
        let allocation = gpu.allocator().allocate(&AllocationCreateDesc {
            name,
            requirements,
            location: MemoryLocation::GpuOnly,
            linear: false,
            allocation_scheme: AllocationScheme::GpuAllocatorManaged,
        });
        let allocation = match allocation {
            Ok(a) => a,
            Err(e) => {
                // SAFETY: unused image of ours.
                unsafe { device.destroy_image(image, None) };
                return Err(e.into());
            }
        };
        let mut me = Image {
            gpu: gpu.clone(),
            image,
            view: vk::ImageView::null(),
            allocation: Some(allocation),
            extent,
            format,
        };
        let a = me.allocation.as_ref().expect("just set");
        // SAFETY: memory sized by the image's requirements, bound once.
        unsafe { device.bind_image_memory(image, a.memory(), a.offset()) }.vk("bind_image_memory")?;
        let view_info = vk::ImageViewCreateInfo::default()
            .image(image)
            .view_type(vk::ImageViewType::TYPE_2D)
            .format(format)
            .subresource_range(color_range());
        // SAFETY: the image is bound; the view is destroyed before it in Drop.
        me.view = unsafe { device.create_image_view(&view_info, None) }.vk("create_image_view")?;
        Ok(me)
    }

    pub fn handle(&self) -> vk::Image {
        self.image
    }
    pub fn view(&self) -> vk::ImageView {
        self.view
    }
    pub fn extent(&self) -> vk::Extent2D {
        self.extent
    }
    pub fn format(&self) -> vk::Format {
        self.format
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: the owner guarantees the GPU is done with it; view first.
        unsafe {
            if self.view != vk::ImageView::null() {
                self.gpu.device().destroy_image_view(self.view, None);
            }
            self.gpu.device().destroy_image(self.image, None);
        }
        if let Some(a) = self.allocation.take() {
            let _ = self.gpu.allocator().free(a);
        }
    }
}

/// The whole colour aspect of a one-level, one-layer image.
pub fn color_range() -> vk::ImageSubresourceRange {
    vk::ImageSubresourceRange {
        aspect_mask: vk::ImageAspectFlags::COLOR,
        base_mip_level: 0,
        level_count: 1,
        base_array_layer: 0,
        layer_count: 1,
    }
}

/// A pipeline stage and the accesses it makes: one side of a barrier.
#[derive(Clone, Copy, Debug)]
pub struct Access(pub vk::PipelineStageFlags2, pub vk::AccessFlags2);

/// The barrier moving a whole colour image from layout `old` (after `from`)
/// to `new` (before `to`).
pub fn layout_change(
    image: vk::Image,
    from: Access,
    to: Access,
    old: vk::ImageLayout,
    new: vk::ImageLayout,
) -> vk::ImageMemoryBarrier2<'static> {
    vk::ImageMemoryBarrier2::default()
        .src_stage_mask(from.0)
        .src_access_mask(from.1)
        .dst_stage_mask(to.0)
        .dst_access_mask(to.1)
        .old_layout(old)
        .new_layout(new)
        .image(image)
        .subresource_range(color_range())
}

/// A copy between tightly packed buffer rows (from `buffer_offset`) and the
/// rows `first_row..first_row + rows` of a colour image `width` wide.
pub fn rows_copy(buffer_offset: u64, width: u32, first_row: u32, rows: u32) -> vk::BufferImageCopy {
    region_copy(buffer_offset, [0, first_row], [width, rows])
}

/// A copy between tightly packed buffer rows (from `buffer_offset`) and the
/// `size` rectangle of a colour image at `at`.
pub fn region_copy(buffer_offset: u64, at: [u32; 2], size: [u32; 2]) -> vk::BufferImageCopy {
    vk::BufferImageCopy {
        buffer_offset,
        buffer_row_length: 0,
        buffer_image_height: 0,
        image_subresource: vk::ImageSubresourceLayers {
            aspect_mask: vk::ImageAspectFlags::COLOR,
            mip_level: 0,
            base_array_layer: 0,
            layer_count: 1,
        },
        image_offset: vk::Offset3D { x: at[0] as i32, y: at[1] as i32, z: 0 },
        image_extent: vk::Extent3D { width: size[0], height: size[1], depth: 1 },
    }
}
