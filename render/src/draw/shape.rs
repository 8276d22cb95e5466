//! The one primitive the GPU draws: an instanced quad whose fragment shader
//! computes coverage from a signed distance (`shaders/shape.*`). The layout
//! here and the vertex attributes in `pipeline.rs` must match the shader.

/// Which signed distance the fragment shader evaluates.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapeKind {
    /// A line segment with round caps.
    Segment = 0,
    /// A rounded rectangle, filled or outlined.
    Rect = 1,
    /// A glyph quad sampling the text atlas.
    Glyph = 2,
    /// The outside of a quarter circle in a square: rounds the corner of a
    /// `Solid` panel. `a` is the square, `b.x` the radius, `b.z` which of
    /// the square's corners is the circle's centre (0 top-left, 1 top-right,
    /// 2 bottom-left, 3 bottom-right).
    Corner = 3,
    /// An opaque pixel-aligned rectangle, filled by the GPU's clear (no
    /// shader runs: large areas cost next to nothing on a software
    /// rasteriser). `a` holds whole-pixel corners.
    Solid = 4,
}

/// One instance (40 bytes). Pixel coordinates, y down, origin top-left.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Shape {
    /// Segment: p0, p1. Rect and glyph: min corner, max corner.
    pub a: [f32; 4],
    /// Segment: half width. Rect: corner radius, border width (0 = filled).
    /// Glyph: atlas uv of the min and max corners.
    pub b: [f32; 4],
    /// sRGB colour with straight alpha.
    pub color: [u8; 4],
    pub kind: u32,
}

impl Shape {
    pub fn kind(&self) -> ShapeKind {
        match self.kind {
            0 => ShapeKind::Segment,
            1 => ShapeKind::Rect,
            2 => ShapeKind::Glyph,
            3 => ShapeKind::Corner,
            _ => ShapeKind::Solid,
        }
    }
}
