//! What can go wrong in the renderer, in kinds that tell the caller what to do
//! (as cpal does): no Vulkan at all, no usable device, a bad request, or a
//! device error in the middle of work.

use ash::vk;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The Vulkan loader (libvulkan.so.1) is missing or broken.
    #[error(
        "Vulkan is not available: {0}. Install the Vulkan loader and a driver (Debian: libvulkan1 mesa-vulkan-drivers)"
    )]
    NoVulkan(String),
    /// Vulkan loads but no device can be used; the text says why for each.
    #[error("no usable Vulkan device: {0}")]
    NoDevice(String),
    /// `--gpu` named a device that is not there or cannot be used.
    #[error("{0}")]
    DeviceChoice(String),
    /// Validation layers were required (tests) but are not installed.
    #[error("Vulkan validation layers are required but not installed (Debian: vulkan-validationlayers)")]
    NoValidationLayers,
    /// A frame size the device cannot render.
    #[error("frame size {width}x{height} is not possible: {why}")]
    BadSize { width: u32, height: u32, why: String },
    /// A Vulkan call failed.
    #[error("Vulkan {call} failed: {result}")]
    Vulkan { call: &'static str, result: vk::Result },
    /// Frames cannot be shared as dmabufs on this device; the text says why.
    #[error("cannot share frames as dmabufs: {0}")]
    Dmabuf(String),
    /// A system call on a shared buffer or sync file failed.
    #[error("{call} failed: {source}")]
    Os { call: &'static str, source: std::io::Error },
    /// Device memory could not be allocated.
    #[error("GPU memory: {0}")]
    Memory(#[from] gpu_allocator::AllocationError),
}

impl RenderError {
    /// True when retrying on this machine cannot help: no Vulkan or no device.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, RenderError::NoVulkan(_) | RenderError::NoDevice(_) | RenderError::NoValidationLayers)
    }
}

/// Names the failing call: `device.create_image(..).vk("create_image")?`.
pub(crate) trait VkContext<T> {
    fn vk(self, call: &'static str) -> Result<T, RenderError>;
}

impl<T> VkContext<T> for Result<T, vk::Result> {
    fn vk(self, call: &'static str) -> Result<T, RenderError> {
        self.map_err(|result| RenderError::Vulkan { call, result })
    }
}
