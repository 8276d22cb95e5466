//! The pipeline for egui's meshes: indexed triangles of egui's `Vertex`
//! (position in points, uv, premultiplied colour), one texture per draw.

use std::sync::Arc;

use ash::vk;

use crate::error::{RenderError, VkContext};
use crate::gpu::Gpu;
use crate::shaders;

/// Push constants: the screen size in points.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct UiPush {
    pub screen_points: [f32; 2],
}

pub(crate) struct UiPipeline {
    gpu: Arc<Gpu>,
    pub format: vk::Format,
    pub layout: vk::PipelineLayout,
    pub pipeline: vk::Pipeline,
}

impl UiPipeline {
    pub fn new(
        gpu: &Arc<Gpu>,
        format: vk::Format,
        set_layout: vk::DescriptorSetLayout,
    ) -> Result<UiPipeline, RenderError> {
        let device = gpu.device();
        let mut me =
            UiPipeline { gpu: gpu.clone(), format, layout: vk::PipelineLayout::null(), pipeline: vk::Pipeline::null() };
        let push = [vk::PushConstantRange {
            stage_flags: vk::ShaderStageFlags::VERTEX,
            offset: 0,
            size: std::mem::size_of::<UiPush>() as u32,
        }];
        let set_layouts = [set_layout];
        // SAFETY: the info lives across the call; destroyed in Drop.
        me.layout = unsafe {
            device.create_pipeline_layout(
                &vk::PipelineLayoutCreateInfo::default().set_layouts(&set_layouts).push_constant_ranges(&push),
                None,
            )
        }
        .vk("create_pipeline_layout")?;
        let vert = shaders::module(device, shaders::UI_VERT)?;
        let frag = match shaders::module(device, shaders::UI_FRAG) {
            Ok(f) => f,
            Err(e) => {
                // SAFETY: unused module of ours.
                unsafe { device.destroy_shader_module(vert, None) };
                return Err(e);
            }
        };
        let result = build(device, me.layout, format, vert, frag);
        // SAFETY: modules are only needed while the pipeline is created.
        unsafe {
            device.destroy_shader_module(vert, None);
            device.destroy_shader_module(frag, None);
        }
        me.pipeline = result?;
        Ok(me)
    }
}

fn build(
    device: &ash::Device,
    layout: vk::PipelineLayout,
    format: vk::Format,
    vert: vk::ShaderModule,
    frag: vk::ShaderModule,
) -> Result<vk::Pipeline, RenderError> {
    let stages = [
        vk::PipelineShaderStageCreateInfo::default().stage(vk::ShaderStageFlags::VERTEX).module(vert).name(c"main"),
        vk::PipelineShaderStageCreateInfo::default().stage(vk::ShaderStageFlags::FRAGMENT).module(frag).name(c"main"),
    ];
    let bindings = [vk::VertexInputBindingDescription {
        binding: 0,
        stride: std::mem::size_of::<epaint::Vertex>() as u32,
        input_rate: vk::VertexInputRate::VERTEX,
    }];
    let attr = |location, format, offset| vk::VertexInputAttributeDescription { location, binding: 0, format, offset };
    let attributes = [
        attr(0, vk::Format::R32G32_SFLOAT, 0),
        attr(1, vk::Format::R32G32_SFLOAT, 8),
        attr(2, vk::Format::R8G8B8A8_UNORM, 16),
    ];
    let vertex_input = vk::PipelineVertexInputStateCreateInfo::default()
        .vertex_binding_descriptions(&bindings)
        .vertex_attribute_descriptions(&attributes);
    // egui's colours are premultiplied; its alpha blends as egui's own painters do.
    let blend = vk::PipelineColorBlendAttachmentState::default()
        .blend_enable(true)
        .src_color_blend_factor(vk::BlendFactor::ONE)
        .dst_color_blend_factor(vk::BlendFactor::ONE_MINUS_SRC_ALPHA)
        .color_blend_op(vk::BlendOp::ADD)
        .src_alpha_blend_factor(vk::BlendFactor::ONE_MINUS_DST_ALPHA)
        .dst_alpha_blend_factor(vk::BlendFactor::ONE)
        .alpha_blend_op(vk::BlendOp::ADD)
        .color_write_mask(vk::ColorComponentFlags::RGBA);
    crate::pipeline::graphics_pipeline(
        device,
        layout,
        format,
        &stages,
        &vertex_input,
        blend,
        "create_graphics_pipelines (ui)",
    )
}

impl Drop for UiPipeline {
    fn drop(&mut self) {
        // SAFETY: the renderer waits for the device before dropping pipelines;
        // the set layout belongs to UiTextures.
        unsafe {
            self.gpu.device().destroy_pipeline(self.pipeline, None);
            self.gpu.device().destroy_pipeline_layout(self.layout, None);
        }
    }
}
