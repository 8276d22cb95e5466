//! The Vulkan foundation: instance, validation, device choice, one graphics
//! queue, and the memory allocator. Everything else holds an `Arc<Gpu>`, so
//! the device outlives every resource made from it and is destroyed last.

mod memory;
mod select;
mod validation;

use std::ffi::{c_void, CStr};
use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex, MutexGuard};

use ash::vk;
use gpu_allocator::vulkan::{Allocator, AllocatorCreateDesc};

pub use memory::{color_range, layout_change, region_copy, rows_copy, Access, Buffer, Image};
pub use select::{choose, Candidate, DeviceKind, GpuChoice};
pub use validation::{Validation, ValidationLog};

use crate::error::{RenderError, VkContext};

const VALIDATION_LAYER: &CStr = c"VK_LAYER_KHRONOS_validation";

/// The format every frame is drawn in: 8-bit RGBA holding sRGB values,
/// blended as stored (like egui and most 2D UIs). An `_SRGB` format would
/// blend in linear light, but costs a third of lavapipe's fill rate, and a
/// window's shm buffers are plain 8-bit anyway.
pub const FRAME_FORMAT: vk::Format = vk::Format::R8G8B8A8_UNORM;

/// The same in BGRA order: Wayland's XRGB8888 in memory (a window's shm buffers).
pub const BGRA_FORMAT: vk::Format = vk::Format::B8G8R8A8_UNORM;

/// How to open the device.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    pub choice: GpuChoice,
    pub validation: Validation,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions { choice: GpuChoice::Auto, validation: Validation::from_env_or_build() }
    }
}

/// What was chosen, for logs and `clavm gpus`.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub name: String,
    pub kind: DeviceKind,
    pub api: (u32, u32),
    pub max_image_size: u32,
    /// The device's DRM nodes (VK_EXT_physical_device_drm), which a Wayland
    /// compositor's dmabuf feedback names; `None` when the device has none
    /// or does not say (lavapipe).
    pub drm: Option<DrmNodes>,
    /// Images can be exported as dmabufs (VK_KHR_external_memory_fd and
    /// VK_EXT_external_memory_dma_buf are enabled).
    pub dmabuf_export: bool,
    /// Explicit DRM format modifiers (VK_EXT_image_drm_format_modifier) are
    /// enabled; without them only LINEAR images can be shared.
    pub drm_modifiers: bool,
    /// Semaphores can be exported and imported as sync files
    /// (VK_KHR_external_semaphore_fd).
    pub sync_fd: bool,
}

/// A device's DRM primary and render nodes as (major, minor), the numbers
/// `stat` gives for /dev/dri/cardN and /dev/dri/renderDN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrmNodes {
    pub primary: Option<(u32, u32)>,
    pub render: Option<(u32, u32)>,
}

/// The extension loaders for sharing images and sync files with other
/// processes, present only when the device offers them (see `DeviceInfo`).
pub(crate) struct External {
    pub memory_fd: Option<ash::khr::external_memory_fd::Device>,
    pub modifiers: Option<ash::ext::image_drm_format_modifier::Device>,
    pub semaphore_fd: Option<ash::khr::external_semaphore_fd::Device>,
}

/// One DRM format modifier the device can render into, for a format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrmModifier {
    pub modifier: u64,
    /// Memory planes an image with this modifier has (1 for plain layouts,
    /// more with compression metadata).
    pub planes: u32,
}

/// The opened device. Drop order (see `Drop`): wait idle, allocator, device,
/// messenger, instance.
pub struct Gpu {
    allocator: ManuallyDrop<Mutex<Allocator>>,
    external: External,
    device: ash::Device,
    physical: vk::PhysicalDevice,
    queue: vk::Queue,
    queue_family: u32,
    info: DeviceInfo,
    messenger: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
    validation: Arc<ValidationLog>,
    instance: ash::Instance,
    _entry: ash::Entry,
}

impl Gpu {
    pub fn new(options: &GpuOptions) -> Result<Arc<Gpu>, RenderError> {
        // SAFETY: loading libvulkan runs its initialisers; nothing else in
        // the process is bound to it.
        let entry = unsafe { ash::Entry::load() }.map_err(|e| RenderError::NoVulkan(e.to_string()))?;
        let validation = Arc::new(ValidationLog::default());
        let layers_on = match options.validation {
            Validation::Off => false,
            v => {
                // SAFETY: plain query on a loaded entry.
                let layers = unsafe { entry.enumerate_instance_layer_properties() }.unwrap_or_default();
                let have = layers.iter().any(|l| l.layer_name_as_c_str() == Ok(VALIDATION_LAYER));
                match (have, v) {
                    (false, Validation::Required) => return Err(RenderError::NoValidationLayers),
                    (false, _) => {
                        tracing::warn!(
                            "Vulkan validation layers not installed (vulkan-validationlayers): running without"
                        );
                        false
                    }
                    (true, _) => true,
                }
            }
        };

        let app = vk::ApplicationInfo::default()
            .application_name(c"clavm")
            .engine_name(c"clavm-render")
            .api_version(vk::API_VERSION_1_3);
        let layer_names = [VALIDATION_LAYER.as_ptr()];
        let extension_names = [ash::ext::debug_utils::NAME.as_ptr()];
        let mut messenger_info = vk::DebugUtilsMessengerCreateInfoEXT::default()
            .message_severity(
                vk::DebugUtilsMessageSeverityFlagsEXT::ERROR | vk::DebugUtilsMessageSeverityFlagsEXT::WARNING,
            )
            .message_type(
                vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                    | vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                    | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
            )
            .pfn_user_callback(Some(validation::on_message))
            .user_data(Arc::as_ptr(&validation) as *mut c_void);
        let mut create = vk::InstanceCreateInfo::default().application_info(&app);
        if layers_on {
            // Chained so instance creation and destruction are validated too.
            create = create
                .enabled_layer_names(&layer_names)
                .enabled_extension_names(&extension_names)
                .push_next(&mut messenger_info);
        }
        // SAFETY: the create info and everything it points to live until the call returns.
        let instance = unsafe { entry.create_instance(&create, None) }.map_err(|e| match e {
            vk::Result::ERROR_INCOMPATIBLE_DRIVER => RenderError::NoDevice(no_driver_hint()),
            e => RenderError::NoVulkan(format!("vkCreateInstance: {e}")),
        })?;
        let messenger = if layers_on {
            let utils = ash::ext::debug_utils::Instance::new(&entry, &instance);
            // SAFETY: the instance enables VK_EXT_debug_utils; the user data
            // (the ValidationLog) outlives the messenger, destroyed in Drop.
            match unsafe { utils.create_debug_utils_messenger(&messenger_info, None) } {
                Ok(m) => Some((utils, m)),
                Err(e) => {
                    // SAFETY: nothing was created from the instance yet.
                    unsafe { instance.destroy_instance(None) };
                    return Err(RenderError::Vulkan { call: "create_debug_utils_messenger", result: e });
                }
            }
        } else {
            None
        };

        // From here on a failure must destroy what exists, newest first.
        let opened = open_device(&instance, &options.choice);
        let (device, physical, queue_family, info, wanted) = match opened {
            Ok(d) => d,
            Err(e) => {
                // SAFETY: no device was made; the messenger and instance are ours.
                unsafe {
                    if let Some((utils, m)) = &messenger {
                        utils.destroy_debug_utils_messenger(*m, None);
                    }
                    instance.destroy_instance(None);
                }
                return Err(e);
            }
        };
        // SAFETY: family index from the device's own list, queue 0 was created.
        let queue = unsafe { device.get_device_queue(queue_family, 0) };
        let allocator = Allocator::new(&AllocatorCreateDesc {
            instance: instance.clone(),
            device: device.clone(),
            physical_device: physical,
            debug_settings: Default::default(),
            buffer_device_address: false,
            allocation_sizes: Default::default(),
        });
        let allocator = match allocator {
            Ok(a) => a,
            Err(e) => {
                // SAFETY: nothing was created from the device.
                unsafe {
                    device.destroy_device(None);
                    if let Some((utils, m)) = &messenger {
                        utils.destroy_debug_utils_messenger(*m, None);
                    }
                    instance.destroy_instance(None);
                }
                return Err(e.into());
            }
        };
        tracing::info!(
            "Vulkan device: {} ({}, Vulkan {}.{}){}{}",
            info.name,
            info.kind,
            info.api.0,
            info.api.1,
            if layers_on { ", validation on" } else { "" },
            if info.dmabuf_export { ", dmabuf export" } else { "" }
        );
        let has = |name: &CStr| wanted.contains(&name);
        let external = External {
            memory_fd: has(ash::khr::external_memory_fd::NAME)
                .then(|| ash::khr::external_memory_fd::Device::new(&instance, &device)),
            modifiers: has(ash::ext::image_drm_format_modifier::NAME)
                .then(|| ash::ext::image_drm_format_modifier::Device::new(&instance, &device)),
            semaphore_fd: has(ash::khr::external_semaphore_fd::NAME)
                .then(|| ash::khr::external_semaphore_fd::Device::new(&instance, &device)),
        };
        Ok(Arc::new(Gpu {
            allocator: ManuallyDrop::new(Mutex::new(allocator)),
            external,
            device,
            physical,
            queue,
            queue_family,
            info,
            messenger,
            validation,
            instance,
            _entry: entry,
        }))
    }

    /// Every device the loader lists, with what each lacks (for `clavm gpus`).
    pub fn list() -> Result<Vec<Candidate>, RenderError> {
        // SAFETY: see Gpu::new.
        let entry = unsafe { ash::Entry::load() }.map_err(|e| RenderError::NoVulkan(e.to_string()))?;
        let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_3);
        // SAFETY: create info lives across the call; destroyed below.
        let instance =
            unsafe { entry.create_instance(&vk::InstanceCreateInfo::default().application_info(&app), None) }
                .map_err(|e| RenderError::NoVulkan(format!("vkCreateInstance: {e}")))?;
        let list = candidates(&instance).map(|c| c.into_iter().map(|(c, _)| c).collect());
        // SAFETY: nothing else was created from it.
        unsafe { instance.destroy_instance(None) };
        list
    }

    pub fn device(&self) -> &ash::Device {
        &self.device
    }
    pub fn queue(&self) -> vk::Queue {
        self.queue
    }
    pub fn queue_family(&self) -> u32 {
        self.queue_family
    }
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }
    pub(crate) fn instance(&self) -> &ash::Instance {
        &self.instance
    }
    pub(crate) fn physical(&self) -> vk::PhysicalDevice {
        self.physical
    }
    pub(crate) fn external(&self) -> &External {
        &self.external
    }

    /// The DRM format modifiers the device can draw `format` into (colour
    /// attachment and transfer source), in the driver's order, which lists
    /// its fastest first. Empty without VK_EXT_image_drm_format_modifier.
    pub fn drm_modifiers(&self, format: vk::Format) -> Vec<DrmModifier> {
        if !self.info.drm_modifiers {
            return Vec::new();
        }
        let needed = vk::FormatFeatureFlags::COLOR_ATTACHMENT | vk::FormatFeatureFlags::TRANSFER_SRC;
        let mut list = vk::DrmFormatModifierPropertiesListEXT::default();
        // SAFETY: first call only counts (null array); the struct lives across it.
        unsafe {
            let mut props = vk::FormatProperties2::default().push_next(&mut list);
            self.instance.get_physical_device_format_properties2(self.physical, format, &mut props);
        }
        let mut entries = vec![vk::DrmFormatModifierPropertiesEXT::default(); list.drm_format_modifier_count as usize];
        let mut list = vk::DrmFormatModifierPropertiesListEXT::default().drm_format_modifier_properties(&mut entries);
        // SAFETY: the array holds the count the driver gave; it outlives the call.
        unsafe {
            let mut props = vk::FormatProperties2::default().push_next(&mut list);
            self.instance.get_physical_device_format_properties2(self.physical, format, &mut props);
        }
        let n = list.drm_format_modifier_count as usize;
        entries[..n.min(entries.len())]
            .iter()
            .filter(|e| e.drm_format_modifier_tiling_features.contains(needed))
            .map(|e| DrmModifier { modifier: e.drm_format_modifier, planes: e.drm_format_modifier_plane_count })
            .collect()
    }
    /// What the validation layers reported so far (empty counts when off).
    pub fn validation(&self) -> &ValidationLog {
        &self.validation
    }
    pub fn validation_enabled(&self) -> bool {
        self.messenger.is_some()
    }
    pub(crate) fn allocator(&self) -> MutexGuard<'_, Allocator> {
        // A panic while allocating leaves the allocator consistent (it is
        // bookkeeping); keep going rather than poison every later frame.
        self.allocator.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks a frame size against the device before anything is allocated.
    pub fn check_size(&self, width: u32, height: u32) -> Result<(), RenderError> {
        let max = self.info.max_image_size;
        let why = if width == 0 || height == 0 {
            Some("width and height must be at least 1".to_string())
        } else if width > max || height > max {
            Some(format!("{} allows at most {max} pixels a side", self.info.name))
        } else {
            None
        };
        match why {
            Some(why) => Err(RenderError::BadSize { width, height, why }),
            None => Ok(()),
        }
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        // SAFETY: every resource holds an Arc<Gpu>, so none is left; waiting
        // idle covers work submitted by resources already dropped. The
        // allocator frees its blocks before the device goes, the messenger
        // before the instance.
        unsafe {
            let _ = self.device.device_wait_idle();
            ManuallyDrop::drop(&mut self.allocator);
            self.device.destroy_device(None);
            if let Some((utils, m)) = self.messenger.take() {
                utils.destroy_debug_utils_messenger(m, None);
            }
            self.instance.destroy_instance(None);
        }
    }
}

/// Why the loader found no driver: the environment may point it elsewhere.
fn no_driver_hint() -> String {
    for var in ["VK_ICD_FILENAMES", "VK_DRIVER_FILES"] {
        if let Some(v) = std::env::var_os(var) {
            return format!("the Vulkan loader found no driver where {var}={} points", v.to_string_lossy());
        }
    }
    "no Vulkan driver is installed (Debian: mesa-vulkan-drivers)".into()
}

/// The loader's devices as candidates, each with its graphics queue family.
fn candidates(instance: &ash::Instance) -> Result<Vec<(Candidate, Option<u32>)>, RenderError> {
    // SAFETY: plain queries on a live instance.
    let physicals = unsafe { instance.enumerate_physical_devices() }.vk("enumerate_physical_devices")?;
    Ok(physicals
        .iter()
        .enumerate()
        .map(|(index, &pd)| {
            // SAFETY: `pd` comes from this instance.
            let (props, families, f13, format) = unsafe {
                let mut f13 = vk::PhysicalDeviceVulkan13Features::default();
                let mut f2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut f13);
                let props = instance.get_physical_device_properties(pd);
                if props.api_version >= vk::API_VERSION_1_1 {
                    instance.get_physical_device_features2(pd, &mut f2);
                }
                let (dr, s2) = (f13.dynamic_rendering, f13.synchronization2);
                (
                    props,
                    instance.get_physical_device_queue_family_properties(pd),
                    (dr, s2),
                    instance.get_physical_device_format_properties(pd, FRAME_FORMAT),
                )
            };
            let name = props.device_name_as_c_str().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let kind = match props.device_type {
                vk::PhysicalDeviceType::DISCRETE_GPU => DeviceKind::Discrete,
                vk::PhysicalDeviceType::INTEGRATED_GPU => DeviceKind::Integrated,
                vk::PhysicalDeviceType::VIRTUAL_GPU => DeviceKind::Virtual,
                vk::PhysicalDeviceType::CPU => DeviceKind::Software,
                _ => DeviceKind::Other,
            };
            let api = (vk::api_version_major(props.api_version), vk::api_version_minor(props.api_version));
            let family =
                families.iter().position(|f| f.queue_flags.contains(vk::QueueFlags::GRAPHICS)).map(|i| i as u32);
            let mut missing = Vec::new();
            if props.api_version < vk::API_VERSION_1_3 {
                missing.push(format!("Vulkan 1.3 (has {}.{})", api.0, api.1));
            } else {
                if f13.0 == vk::FALSE {
                    missing.push("dynamic rendering".into());
                }
                if f13.1 == vk::FALSE {
                    missing.push("synchronization2".into());
                }
            }
            if family.is_none() {
                missing.push("a graphics queue".into());
            }
            let needed = vk::FormatFeatureFlags::COLOR_ATTACHMENT_BLEND | vk::FormatFeatureFlags::TRANSFER_SRC;
            if !format.optimal_tiling_features.contains(needed) {
                missing.push("blending into R8G8B8A8_UNORM".into());
            }
            (Candidate { index, name, kind, api, missing }, family)
        })
        .collect())
}

type Opened = (ash::Device, vk::PhysicalDevice, u32, DeviceInfo, Vec<&'static CStr>);

/// Extensions enabled when the device offers them: sharing images as
/// dmabufs (with explicit modifiers) and frames' completion as sync files.
/// Their dependencies are Vulkan 1.1/1.2 core, which 1.3 includes.
const OPTIONAL_EXTENSIONS: [&CStr; 4] = [
    ash::khr::external_memory_fd::NAME,
    ash::ext::external_memory_dma_buf::NAME,
    ash::ext::image_drm_format_modifier::NAME,
    ash::khr::external_semaphore_fd::NAME,
];

/// The optional extensions `offered` contains, in a fixed order (the dma_buf
/// one only with external_memory_fd, which it requires).
fn wanted_extensions(offered: &[&CStr]) -> Vec<&'static CStr> {
    let mut out: Vec<&'static CStr> = OPTIONAL_EXTENSIONS.iter().copied().filter(|e| offered.contains(e)).collect();
    if !out.contains(&ash::khr::external_memory_fd::NAME) {
        out.retain(|e| *e != ash::ext::external_memory_dma_buf::NAME);
    }
    out
}

/// The device's DRM nodes, if it has VK_EXT_physical_device_drm and says.
fn drm_nodes(instance: &ash::Instance, physical: vk::PhysicalDevice) -> Option<DrmNodes> {
    let mut drm = vk::PhysicalDeviceDrmPropertiesEXT::default();
    // SAFETY: the caller checked the extension is offered; `drm` lives across the call.
    unsafe {
        let mut props = vk::PhysicalDeviceProperties2::default().push_next(&mut drm);
        instance.get_physical_device_properties2(physical, &mut props);
    }
    let node = |has: vk::Bool32, major: i64, minor: i64| (has == vk::TRUE).then_some((major as u32, minor as u32));
    let nodes = DrmNodes {
        primary: node(drm.has_primary, drm.primary_major, drm.primary_minor),
        render: node(drm.has_render, drm.render_major, drm.render_minor),
    };
    (nodes.primary.is_some() || nodes.render.is_some()).then_some(nodes)
}

fn open_device(instance: &ash::Instance, choice: &GpuChoice) -> Result<Opened, RenderError> {
    let list = candidates(instance)?;
    let cands: Vec<Candidate> = list.iter().map(|(c, _)| c.clone()).collect();
    let index = choose(&cands, choice)?;
    // SAFETY: plain query on a live instance.
    let physical = unsafe { instance.enumerate_physical_devices() }.vk("enumerate_physical_devices")?[index];
    let (cand, family) = &list[index];
    let family = family.ok_or_else(|| RenderError::NoDevice("no graphics queue".into()))?;
    // SAFETY: `physical` is from this instance.
    let props = unsafe { instance.get_physical_device_properties(physical) };
    let priorities = [1.0f32];
    let queues = [vk::DeviceQueueCreateInfo::default().queue_family_index(family).queue_priorities(&priorities)];
    // SAFETY: plain query on a device of this instance.
    let offered_props = unsafe { instance.enumerate_device_extension_properties(physical) }.unwrap_or_default();
    let offered: Vec<&CStr> = offered_props.iter().filter_map(|e| e.extension_name_as_c_str().ok()).collect();
    let wanted = wanted_extensions(&offered);
    let drm = offered.contains(&ash::ext::physical_device_drm::NAME).then(|| drm_nodes(instance, physical)).flatten();
    let names: Vec<*const std::ffi::c_char> = wanted.iter().map(|e| e.as_ptr()).collect();
    let mut f13 = vk::PhysicalDeviceVulkan13Features::default().dynamic_rendering(true).synchronization2(true);
    let create =
        vk::DeviceCreateInfo::default().queue_create_infos(&queues).enabled_extension_names(&names).push_next(&mut f13);
    // SAFETY: the features were checked in `candidates`, the extensions are
    // ones the device lists; infos live across the call.
    let device = unsafe { instance.create_device(physical, &create, None) }.vk("create_device")?;
    let info = DeviceInfo {
        name: cand.name.clone(),
        kind: cand.kind,
        api: cand.api,
        max_image_size: props.limits.max_image_dimension2_d,
        drm,
        dmabuf_export: wanted.contains(&ash::ext::external_memory_dma_buf::NAME),
        drm_modifiers: wanted.contains(&ash::ext::image_drm_format_modifier::NAME),
        sync_fd: wanted.contains(&ash::khr::external_semaphore_fd::NAME),
    };
    Ok((device, physical, family, info, wanted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_extensions_are_taken_only_when_offered_and_with_what_they_need() {
        let all: Vec<&CStr> = OPTIONAL_EXTENSIONS.to_vec();
        assert_eq!(wanted_extensions(&all), all);
        // lavapipe: external_memory_fd without dma_buf or modifiers.
        let lavapipe = [ash::khr::external_memory_fd::NAME, ash::khr::external_semaphore_fd::NAME, c"VK_KHR_swapchain"];
        assert_eq!(
            wanted_extensions(&lavapipe),
            vec![ash::khr::external_memory_fd::NAME, ash::khr::external_semaphore_fd::NAME]
        );
        // dma_buf alone would fail device creation: it requires external_memory_fd.
        assert!(wanted_extensions(&[ash::ext::external_memory_dma_buf::NAME]).is_empty());
    }
}
