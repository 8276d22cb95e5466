//! The SPIR-V `build.rs` compiled from `shaders/`, embedded in the binary.

use std::io::Cursor;

use ash::vk;

use crate::error::{RenderError, VkContext};

pub const SHAPE_VERT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/shape.vert.spv"));
pub const SHAPE_FRAG: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/shape.frag.spv"));
pub const UI_VERT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ui.vert.spv"));
pub const UI_FRAG: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ui.frag.spv"));

/// A shader module from embedded SPIR-V (realigned to words by `read_spv`).
pub fn module(device: &ash::Device, spirv: &[u8]) -> Result<vk::ShaderModule, RenderError> {
    let words = ash::util::read_spv(&mut Cursor::new(spirv))
        .map_err(|_| RenderError::Vulkan { call: "read_spv", result: vk::Result::ERROR_INVALID_SHADER_NV })?;
    let info = vk::ShaderModuleCreateInfo::default().code(&words);
    // SAFETY: valid SPIR-V from glslangValidator; the caller destroys the module.
    unsafe { device.create_shader_module(&info, None) }.vk("create_shader_module")
}
