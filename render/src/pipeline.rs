//! The shape pipeline: the instanced quad of `shaders/shape.*`, blending
//! premultiplied colour, drawing into any colour format with dynamic
//! rendering; plus its descriptor set (the text atlas and its sampler).

use std::sync::Arc;

use ash::vk;

use crate::draw::{Shape, ShapeKind};
use crate::error::{RenderError, VkContext};
use crate::gpu::Gpu;
use crate::shaders;

/// Push constants: the frame size in pixels.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Push {
    pub viewport: [f32; 2],
}

pub struct ShapePipeline {
    gpu: Arc<Gpu>,
    pub format: vk::Format,
    pub layout: vk::PipelineLayout,
    /// One pipeline per drawn [`ShapeKind`], indexed by its value (`Solid`
    /// is a clear, not a pipeline).
    pub pipelines: [vk::Pipeline; 4],
    set_layout: vk::DescriptorSetLayout,
    pool: vk::DescriptorPool,
    pub set: vk::DescriptorSet,
    sampler: vk::Sampler,
}

impl ShapePipeline {
    /// Builds the pipeline for frames of `format`, sampling `atlas` for text.
    pub fn new(gpu: &Arc<Gpu>, format: vk::Format, atlas: vk::ImageView) -> Result<ShapePipeline, RenderError> {
        let device = gpu.device();
        let mut me = ShapePipeline {
            gpu: gpu.clone(),
            format,
            layout: vk::PipelineLayout::null(),
            pipelines: [vk::Pipeline::null(); 4],
            set_layout: vk::DescriptorSetLayout::null(),
            pool: vk::DescriptorPool::null(),
            set: vk::DescriptorSet::null(),
            sampler: vk::Sampler::null(),
        };
        // Each step stores its handle in `me` at once, so an error half way
        // is cleaned up by Drop.
        let sampler_info = vk::SamplerCreateInfo::default()
            .mag_filter(vk::Filter::LINEAR)
            .min_filter(vk::Filter::LINEAR)
            .address_mode_u(vk::SamplerAddressMode::CLAMP_TO_EDGE)
            .address_mode_v(vk::SamplerAddressMode::CLAMP_TO_EDGE)
            .address_mode_w(vk::SamplerAddressMode::CLAMP_TO_EDGE);
        // SAFETY (this block and the ones below): create infos live across
        // each call; every handle is destroyed in Drop.
        me.sampler = unsafe { device.create_sampler(&sampler_info, None) }.vk("create_sampler")?;
        let bindings = [vk::DescriptorSetLayoutBinding::default()
            .binding(0)
            .descriptor_type(vk::DescriptorType::COMBINED_IMAGE_SAMPLER)
            .descriptor_count(1)
            .stage_flags(vk::ShaderStageFlags::FRAGMENT)];
        me.set_layout = unsafe {
            device.create_descriptor_set_layout(&vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings), None)
        }
        .vk("create_descriptor_set_layout")?;
        let sizes = [vk::DescriptorPoolSize { ty: vk::DescriptorType::COMBINED_IMAGE_SAMPLER, descriptor_count: 1 }];
        me.pool = unsafe {
            device.create_descriptor_pool(&vk::DescriptorPoolCreateInfo::default().max_sets(1).pool_sizes(&sizes), None)
        }
        .vk("create_descriptor_pool")?;
        let set_layouts = [me.set_layout];
        me.set = unsafe {
            device.allocate_descriptor_sets(
                &vk::DescriptorSetAllocateInfo::default().descriptor_pool(me.pool).set_layouts(&set_layouts),
            )
        }
        .vk("allocate_descriptor_sets")?[0];
        let image_info = [vk::DescriptorImageInfo {
            sampler: me.sampler,
            image_view: atlas,
            image_layout: vk::ImageLayout::SHADER_READ_ONLY_OPTIMAL,
        }];
        let write = vk::WriteDescriptorSet::default()
            .dst_set(me.set)
            .dst_binding(0)
            .descriptor_type(vk::DescriptorType::COMBINED_IMAGE_SAMPLER)
            .image_info(&image_info);
        // SAFETY: the set is not in use by any command buffer yet.
        unsafe { device.update_descriptor_sets(&[write], &[]) };

        let push = [vk::PushConstantRange {
            stage_flags: vk::ShaderStageFlags::VERTEX,
            offset: 0,
            size: std::mem::size_of::<Push>() as u32,
        }];
        me.layout = unsafe {
            device.create_pipeline_layout(
                &vk::PipelineLayoutCreateInfo::default().set_layouts(&set_layouts).push_constant_ranges(&push),
                None,
            )
        }
        .vk("create_pipeline_layout")?;

        let vert = shaders::module(device, shaders::SHAPE_VERT)?;
        let frag = match shaders::module(device, shaders::SHAPE_FRAG) {
            Ok(f) => f,
            Err(e) => {
                unsafe { device.destroy_shader_module(vert, None) };
                return Err(e);
            }
        };
        let mut result = Ok(());
        for kind in [ShapeKind::Segment, ShapeKind::Rect, ShapeKind::Glyph, ShapeKind::Corner] {
            match build(device, me.layout, format, vert, frag, kind) {
                Ok(p) => me.pipelines[kind as usize] = p,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // SAFETY: modules are only needed while the pipelines are created.
        unsafe {
            device.destroy_shader_module(vert, None);
            device.destroy_shader_module(frag, None);
        }
        result.map(|()| me)
    }
}

fn build(
    device: &ash::Device,
    layout: vk::PipelineLayout,
    format: vk::Format,
    vert: vk::ShaderModule,
    frag: vk::ShaderModule,
    kind: ShapeKind,
) -> Result<vk::Pipeline, RenderError> {
    let kind_value = (kind as u32).to_ne_bytes();
    let entries = [vk::SpecializationMapEntry { constant_id: 0, offset: 0, size: 4 }];
    let specialization = vk::SpecializationInfo::default().map_entries(&entries).data(&kind_value);
    let stages = [
        vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::VERTEX)
            .module(vert)
            .name(c"main")
            .specialization_info(&specialization),
        vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::FRAGMENT)
            .module(frag)
            .name(c"main")
            .specialization_info(&specialization),
    ];
    let bindings = [vk::VertexInputBindingDescription {
        binding: 0,
        stride: std::mem::size_of::<Shape>() as u32,
        input_rate: vk::VertexInputRate::INSTANCE,
    }];
    let attr = |location, format, offset| vk::VertexInputAttributeDescription { location, binding: 0, format, offset };
    let attributes = [
        attr(0, vk::Format::R32G32B32A32_SFLOAT, 0),
        attr(1, vk::Format::R32G32B32A32_SFLOAT, 16),
        attr(2, vk::Format::R8G8B8A8_UNORM, 32),
    ];
    let vertex_input = vk::PipelineVertexInputStateCreateInfo::default()
        .vertex_binding_descriptions(&bindings)
        .vertex_attribute_descriptions(&attributes);
    // Premultiplied alpha, colour and coverage alike.
    let blend = vk::PipelineColorBlendAttachmentState::default()
        .blend_enable(true)
        .src_color_blend_factor(vk::BlendFactor::ONE)
        .dst_color_blend_factor(vk::BlendFactor::ONE_MINUS_SRC_ALPHA)
        .color_blend_op(vk::BlendOp::ADD)
        .src_alpha_blend_factor(vk::BlendFactor::ONE)
        .dst_alpha_blend_factor(vk::BlendFactor::ONE_MINUS_SRC_ALPHA)
        .alpha_blend_op(vk::BlendOp::ADD)
        .color_write_mask(vk::ColorComponentFlags::RGBA);
    graphics_pipeline(device, layout, format, &stages, &vertex_input, blend, "create_graphics_pipelines")
}

/// A triangle-list pipeline for dynamic rendering into one `format`
/// attachment, viewport and scissor dynamic, no culling, no depth: the state
/// every 2D pipeline here shares. `call` names it in errors.
pub(crate) fn graphics_pipeline(
    device: &ash::Device,
    layout: vk::PipelineLayout,
    format: vk::Format,
    stages: &[vk::PipelineShaderStageCreateInfo<'_>],
    vertex_input: &vk::PipelineVertexInputStateCreateInfo<'_>,
    blend: vk::PipelineColorBlendAttachmentState,
    call: &'static str,
) -> Result<vk::Pipeline, RenderError> {
    let assembly = vk::PipelineInputAssemblyStateCreateInfo::default().topology(vk::PrimitiveTopology::TRIANGLE_LIST);
    let viewport = vk::PipelineViewportStateCreateInfo::default().viewport_count(1).scissor_count(1);
    let raster = vk::PipelineRasterizationStateCreateInfo::default()
        .polygon_mode(vk::PolygonMode::FILL)
        .cull_mode(vk::CullModeFlags::NONE)
        .line_width(1.0);
    let multisample =
        vk::PipelineMultisampleStateCreateInfo::default().rasterization_samples(vk::SampleCountFlags::TYPE_1);
    let blend = [blend];
    let blend_state = vk::PipelineColorBlendStateCreateInfo::default().attachments(&blend);
    let dynamic = [vk::DynamicState::VIEWPORT, vk::DynamicState::SCISSOR];
    let dynamic_state = vk::PipelineDynamicStateCreateInfo::default().dynamic_states(&dynamic);
    let formats = [format];
    let mut rendering = vk::PipelineRenderingCreateInfo::default().color_attachment_formats(&formats);
    let info = vk::GraphicsPipelineCreateInfo::default()
        .stages(stages)
        .vertex_input_state(vertex_input)
        .input_assembly_state(&assembly)
        .viewport_state(&viewport)
        .rasterization_state(&raster)
        .multisample_state(&multisample)
        .color_blend_state(&blend_state)
        .dynamic_state(&dynamic_state)
        .layout(layout)
        .push_next(&mut rendering);
    // SAFETY: all state structs live across the call; the caller destroys the pipeline.
    unsafe { device.create_graphics_pipelines(vk::PipelineCache::null(), &[info], None) }
        .map(|p| p[0])
        .map_err(|(_, result)| RenderError::Vulkan { call, result })
}

impl Drop for ShapePipeline {
    fn drop(&mut self) {
        let device = self.gpu.device();
        // SAFETY: the renderer waits for the device before dropping its
        // pipelines; destroying null handles is a no-op.
        unsafe {
            for p in self.pipelines {
                device.destroy_pipeline(p, None);
            }
            device.destroy_pipeline_layout(self.layout, None);
            device.destroy_descriptor_pool(self.pool, None);
            device.destroy_descriptor_set_layout(self.set_layout, None);
            device.destroy_sampler(self.sampler, None);
        }
    }
}
