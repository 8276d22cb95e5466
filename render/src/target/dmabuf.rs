//! Frames drawn straight into images another process can read: each image
//! has its own dedicated memory exported as a dmabuf, laid out with a DRM
//! format modifier both sides support (or LINEAR), so a Wayland compositor
//! can show it with no copy. The caller (the window's swapchain) decides
//! which image a frame draws into, from which buffers the compositor has
//! released; this type only makes, shares and synchronises the images.
//!
//! Synchronisation is implicit, through the dmabuf itself: after the submit
//! the frame's signal semaphore goes out as a sync file and is attached to
//! the dmabuf as a write fence (the compositor's reads wait for it); before
//! drawing into a released image, its readers' fences come out as a sync
//! file and the frame waits on them. Without the sync-file ioctls (Linux
//! before 6.0, or a device without VK_KHR_external_semaphore_fd) the caller
//! waits for the frame on the CPU before handing the buffer over.

use std::cell::Cell;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ash::vk;
use gpu_allocator::MemoryLocation;

use super::sync_file::{self, DMA_BUF_SYNC_WRITE};
use super::FrameTarget;
use crate::error::{RenderError, VkContext};
use crate::gpu::{color_range, layout_change, Access, Buffer, Gpu};
use crate::renderer::FRAMES_IN_FLIGHT;

/// Set once the CPU-wait fallback has been reported, so it is said once a run.
static CPU_WAIT_REPORTED: AtomicBool = AtomicBool::new(false);

/// How the images are laid out in memory, as negotiated with the compositor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DmabufLayout {
    /// DRM_FORMAT_MODIFIER_EXT tiling: the driver picks one of these
    /// (each one both sides support), and says which.
    Modifiers(Vec<u64>),
    /// LINEAR tiling, for when only LINEAR or the implicit modifier
    /// (`DRM_FORMAT_MOD_INVALID`) is common; `modifier` is what the
    /// compositor is told.
    Linear { modifier: u64 },
}

/// Where one memory plane of an image lies in its dmabuf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmabufPlane {
    pub offset: u64,
    pub stride: u64,
}

/// How a frame's completion reaches the compositor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Sync files attached to the dmabuf (no CPU wait).
    SyncFile,
    /// The caller waits for the frame's fence before handing the buffer over.
    CpuWait,
}

/// One exported image. Handles start null and are destroyed in `Drop`
/// whatever was made, so a failure half-way cleans up by dropping it.
struct Exported {
    gpu: Arc<Gpu>,
    image: vk::Image,
    view: vk::ImageView,
    memory: vk::DeviceMemory,
    /// Waited on by the next frame drawn into this image (a temporary
    /// import of the compositor's read fences).
    wait: vk::Semaphore,
    /// Whether `wait` holds an import the next submit must consume.
    armed: Cell<bool>,
    fd: Option<OwnedFd>,
    modifier: u64,
    planes: Vec<DmabufPlane>,
}

impl Drop for Exported {
    fn drop(&mut self) {
        let device = self.gpu.device();
        // SAFETY: the owner (the swapchain) drops an image only after the
        // fence of its last frame; null handles are ignored by Vulkan.
        unsafe {
            device.destroy_image_view(self.view, None);
            device.destroy_image(self.image, None);
            device.free_memory(self.memory, None);
            device.destroy_semaphore(self.wait, None);
        }
    }
}

/// A growing set of same-size images exported as dmabufs, with the
/// per-slot semaphores and (when recording) read-back buffers of the frames
/// drawn into them. Drop it only after every frame drawn into it finished.
pub struct DmabufImages {
    images: Vec<Exported>,
    /// Per frame slot, exportable as a sync file; empty in `CpuWait` mode.
    signal: Vec<vk::Semaphore>,
    /// Per frame slot, when the pixels are wanted back (a recording).
    readback: Vec<Buffer>,
    extent: vk::Extent2D,
    format: vk::Format,
    tiling: vk::ImageTiling,
    modifiers: Vec<u64>,
    linear_modifier: u64,
    sync: Cell<SyncMode>,
    gpu: Arc<Gpu>,
}

/// What the images are used for: drawn into, and copied out when recording.
const USAGE: vk::ImageUsageFlags = vk::ImageUsageFlags::from_raw(
    vk::ImageUsageFlags::COLOR_ATTACHMENT.as_raw() | vk::ImageUsageFlags::TRANSFER_SRC.as_raw(),
);
const DMA_BUF: vk::ExternalMemoryHandleTypeFlags = vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT;

impl DmabufImages {
    /// An empty set for `width`x`height` frames in `format`; `grow` adds
    /// images. Fails, saying why, when the device cannot export such images.
    pub fn new(
        gpu: &Arc<Gpu>,
        width: u32,
        height: u32,
        format: vk::Format,
        layout: &DmabufLayout,
    ) -> Result<DmabufImages, RenderError> {
        let info = gpu.info();
        if !info.dmabuf_export || gpu.external().memory_fd.is_none() {
            return Err(RenderError::Dmabuf(format!(
                "{} lacks VK_KHR_external_memory_fd and VK_EXT_external_memory_dma_buf",
                info.name
            )));
        }
        gpu.check_size(width, height)?;
        let extent = vk::Extent2D { width, height };
        let (tiling, modifiers, linear_modifier) = match layout {
            DmabufLayout::Modifiers(list) => {
                if !info.drm_modifiers || gpu.external().modifiers.is_none() {
                    return Err(RenderError::Dmabuf(format!("{} lacks VK_EXT_image_drm_format_modifier", info.name)));
                }
                let mut why = Vec::new();
                let usable: Vec<u64> = list
                    .iter()
                    .copied()
                    .filter(|&m| {
                        match exportable(gpu, format, extent, vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT, Some(m)) {
                            Ok(()) => true,
                            Err(e) => {
                                why.push(format!("modifier {m:#x}: {e}"));
                                false
                            }
                        }
                    })
                    .collect();
                if usable.is_empty() {
                    return Err(RenderError::Dmabuf(if why.is_empty() {
                        "no modifier was offered".into()
                    } else {
                        why.join("; ")
                    }));
                }
                (vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT, usable, 0)
            }
            DmabufLayout::Linear { modifier } => {
                exportable(gpu, format, extent, vk::ImageTiling::LINEAR, None)
                    .map_err(|e| RenderError::Dmabuf(format!("LINEAR {format:?}: {e}")))?;
                (vk::ImageTiling::LINEAR, Vec::new(), *modifier)
            }
        };
        let mut me = DmabufImages {
            images: Vec::new(),
            signal: Vec::new(),
            readback: Vec::new(),
            extent,
            format,
            tiling,
            modifiers,
            linear_modifier,
            sync: Cell::new(SyncMode::CpuWait),
            gpu: gpu.clone(),
        };
        match sync_fd_semaphores(gpu) {
            Ok(()) => {
                for _ in 0..FRAMES_IN_FLIGHT {
                    let mut export = vk::ExportSemaphoreCreateInfo::default()
                        .handle_types(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
                    let info = vk::SemaphoreCreateInfo::default().push_next(&mut export);
                    // SAFETY: valid info; destroyed in Drop (also when `new` fails later).
                    let s = unsafe { gpu.device().create_semaphore(&info, None) }.vk("create_semaphore")?;
                    me.signal.push(s);
                }
                me.sync.set(SyncMode::SyncFile);
            }
            Err(why) => report_cpu_wait(&why),
        }
        Ok(me)
    }

    /// Adds one image (a buffer more for the swapchain); returns its index.
    pub fn grow(&mut self) -> Result<usize, RenderError> {
        let image = self.export_one()?;
        if self.images.is_empty() && self.sync.get() == SyncMode::SyncFile {
            // A kernel without the sync-file ioctls is found on the first image.
            if let Some(fd) = &image.fd {
                if let Err(e) = sync_file::export(fd.as_fd(), DMA_BUF_SYNC_WRITE) {
                    self.fall_back(e)?;
                }
            }
        }
        self.images.push(image);
        Ok(self.images.len() - 1)
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }
    pub fn extent(&self) -> vk::Extent2D {
        self.extent
    }
    pub fn sync_mode(&self) -> SyncMode {
        self.sync.get()
    }
    /// The dmabuf of image `i` (one fd for all its planes).
    pub fn fd(&self, i: usize) -> BorrowedFd<'_> {
        self.images[i].fd.as_ref().expect("exported in grow").as_fd()
    }
    /// The modifier image `i` was laid out with (what the compositor is told).
    pub fn modifier(&self, i: usize) -> u64 {
        self.images[i].modifier
    }
    /// Image `i`'s memory planes, in order.
    pub fn planes(&self, i: usize) -> &[DmabufPlane] {
        &self.images[i].planes
    }

    /// Keeps (or drops) a host copy of each frame, for a recording.
    pub fn set_readback(&mut self, on: bool) -> Result<(), RenderError> {
        if !on {
            self.readback.clear();
        } else if self.readback.is_empty() {
            let bytes = self.extent.width as u64 * self.extent.height as u64 * 4;
            for slot in 0..FRAMES_IN_FLIGHT {
                self.readback.push(Buffer::new(
                    &self.gpu,
                    &format!("dmabuf readback {slot}"),
                    bytes,
                    vk::BufferUsageFlags::TRANSFER_DST,
                    MemoryLocation::GpuToCpu,
                )?);
            }
        }
        Ok(())
    }

    /// The pixels (tightly packed rows in `format`) of slot `slot`'s last
    /// frame, when read-back is on; valid once the frame has finished.
    pub fn pixels(&self, slot: usize) -> Option<&[u8]> {
        self.readback.get(slot).map(|b| b.mapped())
    }

    /// Before drawing into image `i` again: the fences of whoever still
    /// reads it (the compositor) become the next frame's wait. The caller
    /// has finished the last frame drawn into it.
    pub fn prepare(&self, i: usize) -> Result<(), RenderError> {
        if self.sync.get() != SyncMode::SyncFile {
            return Ok(());
        }
        let image = &self.images[i];
        let fences = match sync_file::export(self.fd(i), DMA_BUF_SYNC_WRITE) {
            Ok(f) => f,
            Err(e) => return self.fall_back(e),
        };
        let semaphore_fd = self.gpu.external().semaphore_fd.as_ref().expect("SyncFile mode has the loader");
        let raw = fences.into_raw_fd();
        let import = vk::ImportSemaphoreFdInfoKHR::default()
            .semaphore(image.wait)
            .flags(vk::SemaphoreImportFlags::TEMPORARY)
            .handle_type(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD)
            .fd(raw);
        // SAFETY: the semaphore is ours and idle (the last frame that waited
        // on it has finished, the caller's contract); on success Vulkan owns `raw`.
        if let Err(e) = unsafe { semaphore_fd.import_semaphore_fd(&import) } {
            // SAFETY: the import failed, so `raw` is still ours to close.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
            return Err(RenderError::Vulkan { call: "import_semaphore_fd", result: e });
        }
        image.armed.set(true);
        Ok(())
    }

    /// The target for one frame drawn into image `i`.
    pub fn frame(&self, i: usize) -> DmabufFrame<'_> {
        DmabufFrame { images: self, index: i }
    }

    /// After the frame drawn into image `i` on slot `slot` was submitted:
    /// attaches its completion to the dmabuf. Returns true when that was not
    /// possible and the caller must wait for the frame before handing the
    /// buffer to the compositor.
    pub fn publish(&self, i: usize, slot: usize) -> Result<bool, RenderError> {
        let Some(&signal) = self.signal.get(slot).filter(|_| self.sync.get() == SyncMode::SyncFile) else {
            return Ok(true);
        };
        let semaphore_fd = self.gpu.external().semaphore_fd.as_ref().expect("SyncFile mode has the loader");
        let get = vk::SemaphoreGetFdInfoKHR::default()
            .semaphore(signal)
            .handle_type(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
        // SAFETY: the semaphore has a pending signal (the frame's submit);
        // exporting a sync file resets it for the slot's next frame.
        let raw = unsafe { semaphore_fd.get_semaphore_fd(&get) }.vk("get_semaphore_fd")?;
        // SAFETY: a new fd nothing else owns; -1 means "already signalled".
        let done = (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw) });
        if let Some(done) = done {
            if let Err(e) = sync_file::import(self.fd(i), done.as_fd(), DMA_BUF_SYNC_WRITE) {
                self.fall_back(e)?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Switches to CPU waits when `e` says the kernel lacks the ioctls;
    /// any other error is returned.
    fn fall_back(&self, e: RenderError) -> Result<(), RenderError> {
        if !sync_file::unsupported(&e) {
            return Err(e);
        }
        self.sync.set(SyncMode::CpuWait);
        for image in &self.images {
            image.armed.set(false);
        }
        report_cpu_wait(&format!("{e} (the sync-file ioctls need Linux 6.0)"));
        Ok(())
    }

    fn export_one(&self) -> Result<Exported, RenderError> {
        let gpu = &self.gpu;
        let device = gpu.device();
        let mut me = Exported {
            gpu: gpu.clone(),
            image: vk::Image::null(),
            view: vk::ImageView::null(),
            memory: vk::DeviceMemory::null(),
            wait: vk::Semaphore::null(),
            armed: Cell::new(false),
            fd: None,
            modifier: self.linear_modifier,
            planes: Vec::new(),
        };
        let mut external = vk::ExternalMemoryImageCreateInfo::default().handle_types(DMA_BUF);
        let mut list = vk::ImageDrmFormatModifierListCreateInfoEXT::default().drm_format_modifiers(&self.modifiers);
        let mut info = vk::ImageCreateInfo::default()
            .image_type(vk::ImageType::TYPE_2D)
            .format(self.format)
            .extent(vk::Extent3D { width: self.extent.width, height: self.extent.height, depth: 1 })
            .mip_levels(1)
            .array_layers(1)
            .samples(vk::SampleCountFlags::TYPE_1)
            .tiling(self.tiling)
            .usage(USAGE)
            .sharing_mode(vk::SharingMode::EXCLUSIVE)
            .initial_layout(vk::ImageLayout::UNDEFINED)
            .push_next(&mut external);
        if self.tiling == vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT {
            info = info.push_next(&mut list);
        }
        // SAFETY: the format, tiling and modifiers were checked exportable in
        // `new`; the chained structs outlive the call; destroyed in Drop.
        me.image = unsafe { device.create_image(&info, None) }.vk("create_image (dmabuf)")?;
        // SAFETY: an image of this device.
        let requirements = unsafe { device.get_image_memory_requirements(me.image) };
        let memory_type = memory_type(gpu, requirements.memory_type_bits)
            .ok_or_else(|| RenderError::Dmabuf("no memory type can hold an exported image".into()))?;
        let mut dedicated = vk::MemoryDedicatedAllocateInfo::default().image(me.image);
        let mut export = vk::ExportMemoryAllocateInfo::default().handle_types(DMA_BUF);
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(requirements.size)
            .memory_type_index(memory_type)
            .push_next(&mut dedicated)
            .push_next(&mut export);
        // SAFETY: sized and typed by the image's requirements; freed in Drop.
        me.memory = unsafe { device.allocate_memory(&alloc, None) }.vk("allocate_memory (dmabuf)")?;
        // SAFETY: dedicated memory for this image, bound once at offset 0.
        unsafe { device.bind_image_memory(me.image, me.memory, 0) }.vk("bind_image_memory (dmabuf)")?;
        let view_info = vk::ImageViewCreateInfo::default()
            .image(me.image)
            .view_type(vk::ImageViewType::TYPE_2D)
            .format(self.format)
            .subresource_range(color_range());
        // SAFETY: the image is bound; the view is destroyed before it.
        me.view = unsafe { device.create_image_view(&view_info, None) }.vk("create_image_view (dmabuf)")?;
        // SAFETY: plain semaphore, destroyed in Drop.
        me.wait =
            unsafe { device.create_semaphore(&vk::SemaphoreCreateInfo::default(), None) }.vk("create_semaphore")?;

        let memory_fd = gpu.external().memory_fd.as_ref().expect("checked in new");
        let get = vk::MemoryGetFdInfoKHR::default().memory(me.memory).handle_type(DMA_BUF);
        // SAFETY: the memory was allocated exportable as a dmabuf.
        let raw = unsafe { memory_fd.get_memory_fd(&get) }.vk("get_memory_fd")?;
        // SAFETY: a new fd that nothing else owns.
        me.fd = Some(unsafe { OwnedFd::from_raw_fd(raw) });

        let plane_count = if self.tiling == vk::ImageTiling::DRM_FORMAT_MODIFIER_EXT {
            let modifiers = gpu.external().modifiers.as_ref().expect("checked in new");
            let mut props = vk::ImageDrmFormatModifierPropertiesEXT::default();
            // SAFETY: the image has DRM_FORMAT_MODIFIER_EXT tiling; `props` lives across the call.
            unsafe { modifiers.get_image_drm_format_modifier_properties(me.image, &mut props) }
                .vk("get_image_drm_format_modifier_properties")?;
            me.modifier = props.drm_format_modifier;
            gpu.drm_modifiers(self.format).iter().find(|m| m.modifier == me.modifier).map_or(1, |m| m.planes)
        } else {
            1
        };
        const PLANES: [vk::ImageAspectFlags; 4] = [
            vk::ImageAspectFlags::MEMORY_PLANE_0_EXT,
            vk::ImageAspectFlags::MEMORY_PLANE_1_EXT,
            vk::ImageAspectFlags::MEMORY_PLANE_2_EXT,
            vk::ImageAspectFlags::MEMORY_PLANE_3_EXT,
        ];
        if plane_count as usize > PLANES.len() {
            return Err(RenderError::Dmabuf(format!("modifier {:#x} has {plane_count} planes", me.modifier)));
        }
        for &plane in &PLANES[..plane_count as usize] {
            let aspect_mask = if self.tiling == vk::ImageTiling::LINEAR { vk::ImageAspectFlags::COLOR } else { plane };
            let sub = vk::ImageSubresource { aspect_mask, mip_level: 0, array_layer: 0 };
            // SAFETY: a plane the image's modifier has (or COLOR of a linear image).
            let layout = unsafe { device.get_image_subresource_layout(me.image, sub) };
            me.planes.push(DmabufPlane { offset: layout.offset, stride: layout.row_pitch });
        }
        Ok(me)
    }
}

impl Drop for DmabufImages {
    fn drop(&mut self) {
        // SAFETY: the owner drops the set only after every frame drawn into
        // it finished (see the type's doc), so no submit uses these.
        unsafe {
            for &s in &self.signal {
                self.gpu.device().destroy_semaphore(s, None);
            }
        }
    }
}

/// One frame's view of a `DmabufImages`: the image the swapchain acquired
/// (not the frame slot's), and the semaphores of the slot's submit.
pub struct DmabufFrame<'a> {
    images: &'a DmabufImages,
    index: usize,
}

impl FrameTarget for DmabufFrame<'_> {
    fn extent(&self) -> vk::Extent2D {
        self.images.extent
    }
    fn format(&self) -> vk::Format {
        self.images.format
    }
    fn image(&self, _slot: usize) -> (vk::Image, vk::ImageView) {
        let e = &self.images.images[self.index];
        (e.image, e.view)
    }
    fn wait_semaphore(&self, _slot: usize) -> Option<vk::Semaphore> {
        let e = &self.images.images[self.index];
        // Consumed by this submit: a temporary import is waited on once.
        e.armed.replace(false).then_some(e.wait)
    }
    fn signal_semaphore(&self, slot: usize) -> Option<vk::Semaphore> {
        match self.images.sync.get() {
            SyncMode::SyncFile => self.images.signal.get(slot).copied(),
            SyncMode::CpuWait => None,
        }
    }
    fn record_after(&self, device: &ash::Device, cmd: vk::CommandBuffer, slot: usize) {
        let image = self.images.images[self.index].image;
        let mut layout = vk::ImageLayout::COLOR_ATTACHMENT_OPTIMAL;
        let mut after =
            Access(vk::PipelineStageFlags2::COLOR_ATTACHMENT_OUTPUT, vk::AccessFlags2::COLOR_ATTACHMENT_WRITE);
        if let Some(readback) = self.images.readback.get(slot) {
            super::record_readback(device, cmd, image, self.images.extent, readback);
            layout = vk::ImageLayout::TRANSFER_SRC_OPTIMAL;
            after = Access(vk::PipelineStageFlags2::COPY, vk::AccessFlags2::TRANSFER_READ);
        }
        // The release half of a queue family ownership transfer to the
        // compositor's device (FOREIGN), in GENERAL as external users expect.
        let release = layout_change(
            image,
            after,
            Access(vk::PipelineStageFlags2::NONE, vk::AccessFlags2::NONE),
            layout,
            vk::ImageLayout::GENERAL,
        )
        .src_queue_family_index(self.images.gpu.queue_family())
        .dst_queue_family_index(vk::QUEUE_FAMILY_FOREIGN_EXT);
        // SAFETY: `cmd` is recording; the image is ours and in `layout`.
        unsafe {
            device.cmd_pipeline_barrier2(
                cmd,
                &vk::DependencyInfo::default().image_memory_barriers(std::slice::from_ref(&release)),
            );
        }
    }
}

/// Whether the device can make `format` images of `extent` with `tiling`
/// (and `modifier`) as colour attachments exported as dmabufs; why not.
fn exportable(
    gpu: &Gpu,
    format: vk::Format,
    extent: vk::Extent2D,
    tiling: vk::ImageTiling,
    modifier: Option<u64>,
) -> Result<(), String> {
    let mut external_info = vk::PhysicalDeviceExternalImageFormatInfo::default().handle_type(DMA_BUF);
    let mut modifier_info = vk::PhysicalDeviceImageDrmFormatModifierInfoEXT::default()
        .drm_format_modifier(modifier.unwrap_or(0))
        .sharing_mode(vk::SharingMode::EXCLUSIVE);
    let mut info = vk::PhysicalDeviceImageFormatInfo2::default()
        .format(format)
        .ty(vk::ImageType::TYPE_2D)
        .tiling(tiling)
        .usage(USAGE)
        .push_next(&mut external_info);
    if modifier.is_some() {
        info = info.push_next(&mut modifier_info);
    }
    let mut external_props = vk::ExternalImageFormatProperties::default();
    let mut props = vk::ImageFormatProperties2::default().push_next(&mut external_props);
    // SAFETY: plain query; every chained struct lives across the call.
    let r = unsafe { gpu.instance().get_physical_device_image_format_properties2(gpu.physical(), &info, &mut props) };
    match r {
        Ok(()) => {}
        Err(vk::Result::ERROR_FORMAT_NOT_SUPPORTED) => {
            return Err(format!("{format:?} cannot be a colour attachment exported as a dmabuf"))
        }
        Err(e) => return Err(format!("vkGetPhysicalDeviceImageFormatProperties2: {e}")),
    }
    let max = props.image_format_properties.max_extent;
    let features = external_props.external_memory_properties.external_memory_features;
    if !features.contains(vk::ExternalMemoryFeatureFlags::EXPORTABLE) {
        return Err("such images cannot be exported".into());
    }
    if extent.width > max.width || extent.height > max.height {
        return Err(format!("at most {}x{} pixels", max.width, max.height));
    }
    Ok(())
}

/// Whether frames' completion can go out as sync files; why not.
fn sync_fd_semaphores(gpu: &Gpu) -> Result<(), String> {
    if gpu.external().semaphore_fd.is_none() {
        return Err(format!("{} lacks VK_KHR_external_semaphore_fd", gpu.info().name));
    }
    let info =
        vk::PhysicalDeviceExternalSemaphoreInfo::default().handle_type(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
    let mut props = vk::ExternalSemaphoreProperties::default();
    // SAFETY: plain query; both structs live across the call.
    unsafe { gpu.instance().get_physical_device_external_semaphore_properties(gpu.physical(), &info, &mut props) };
    let needed = vk::ExternalSemaphoreFeatureFlags::EXPORTABLE | vk::ExternalSemaphoreFeatureFlags::IMPORTABLE;
    if props.external_semaphore_features.contains(needed) {
        Ok(())
    } else {
        Err("its semaphores cannot be exported or imported as sync files".into())
    }
}

/// The memory type for an exported image: device-local when allowed.
fn memory_type(gpu: &Gpu, allowed: u32) -> Option<u32> {
    // SAFETY: plain query on the device's physical device.
    let props = unsafe { gpu.instance().get_physical_device_memory_properties(gpu.physical()) };
    let types = &props.memory_types[..props.memory_type_count as usize];
    let ok = |i: usize| allowed & (1 << i) != 0;
    let local = |i: usize| types[i].property_flags.contains(vk::MemoryPropertyFlags::DEVICE_LOCAL);
    (0..types.len()).find(|&i| ok(i) && local(i)).or_else(|| (0..types.len()).find(|&i| ok(i))).map(|i| i as u32)
}

fn report_cpu_wait(why: &str) {
    if !CPU_WAIT_REPORTED.swap(true, Ordering::Relaxed) {
        tracing::warn!("dmabuf frames: the CPU waits for each frame before handing it over ({why})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::{GpuOptions, Validation, BGRA_FORMAT};

    /// On a device that cannot export (lavapipe here), making the images
    /// fails with a reason, never a panic or a half-made set.
    #[test]
    fn a_device_that_cannot_export_says_why() {
        let gpu = match Gpu::new(&GpuOptions { validation: Validation::Off, ..Default::default() }) {
            Ok(g) => g,
            Err(e) if e.is_unavailable() => return,
            Err(e) => panic!("{e}"),
        };
        let info = gpu.info().clone();
        let result = DmabufImages::new(&gpu, 64, 64, BGRA_FORMAT, &DmabufLayout::Linear { modifier: 0 });
        match result {
            Err(RenderError::Dmabuf(why)) => {
                eprintln!("as expected on {}: {why}", info.name);
                assert!(!info.dmabuf_export || why.contains("B8G8R8A8"), "{why}");
            }
            Err(e) => panic!("not a dmabuf error: {e}"),
            Ok(mut images) => {
                // A real GPU: one exported image with a plane and an fd.
                assert!(info.dmabuf_export);
                let i = images.grow().unwrap();
                assert_eq!(images.planes(i).len(), 1);
                assert!(images.planes(i)[0].stride >= 64 * 4);
                let _ = images.fd(i);
            }
        }
    }
}
