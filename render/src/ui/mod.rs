//! egui, painted by our renderer into the same frame as the visuals: its
//! meshes with their textures (`textures.rs`, `pipeline.rs`), and its paint
//! callbacks, which say where a range of the canvas' shapes goes
//! ([`CanvasPane`]), so panes, popups and tooltips stack in egui's order.
//!
//! Our own painter rather than `egui-ash-renderer`: that crate follows egui
//! one release behind (0.13 is egui 0.36) and brings its own allocator
//! wiring and render-pass set-up; ours is ~400 lines on the same pipeline
//! scaffolding, device, allocator and frame slots as the visuals, and draws
//! the callbacks in egui's order within one pass.

mod pipeline;
pub(crate) mod textures;

use std::ops::Range;

pub(crate) use pipeline::{UiPipeline, UiPush};
pub(crate) use textures::UiTextures;

/// What egui produced for one frame. The renderer consumes the texture
/// changes (they must be applied exactly once: egui checks).
pub struct UiFrame<'a> {
    pub primitives: &'a [epaint::ClippedPrimitive],
    pub textures: &'a mut epaint::textures::TexturesDelta,
    pub pixels_per_point: f32,
}

/// The same, borrowed for recording.
pub(crate) struct UiRecord<'a> {
    pub primitives: &'a [epaint::ClippedPrimitive],
    pub textures: &'a epaint::textures::TexturesDelta,
    pub pixels_per_point: f32,
}

/// The payload of an egui `PaintCallback` that draws part of the canvas:
/// the fills and shapes a view added between two [`crate::draw::Canvas::mark`]s,
/// clipped to the callback's rectangle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanvasPane {
    pub shapes: Range<usize>,
    pub fills: Range<usize>,
}
