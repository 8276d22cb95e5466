//! What a frame is made of, before the GPU sees it: the views add shapes to a
//! [`Canvas`] (lines, rectangles, text), the renderer draws them in order in
//! one instanced call. Pure CPU, so layouts are testable without a device.

mod color;
mod geometry;
mod shape;
mod text;

pub use color::Color;
pub use geometry::{vec2, Rect, Vec2};
pub use shape::{Shape, ShapeKind};
pub use text::{Align, GlyphAtlas, ATLAS_SIZE};

/// A position in a canvas' shapes and fills (see [`Canvas::mark`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CanvasMark {
    pub shapes: usize,
    pub fills: usize,
}

/// One frame's shapes, plus the glyph atlas that lives across frames.
/// Reuse one canvas frame after frame: `begin` keeps the allocations.
///
/// Two layers: opaque pixel fills ([`fill`](Self::fill), [`panel`](Self::panel),
/// [`hline`](Self::hline)) are drawn first, in the order given, then every
/// shaded shape in the order given. Fills are GPU clears that run no shader;
/// keeping them in one batch before the draws matters because a clear in the
/// middle of the draws makes a software rasteriser flush its binned work.
pub struct Canvas {
    fills: Vec<Shape>,
    shapes: Vec<Shape>,
    width: u32,
    height: u32,
    background: Color,
    atlas: GlyphAtlas,
}

impl Canvas {
    pub fn new(width: u32, height: u32) -> Canvas {
        Canvas {
            fills: Vec::with_capacity(4 * 1024),
            shapes: Vec::with_capacity(16 * 1024),
            width,
            height,
            background: Color::rgb(0, 0, 0),
            atlas: GlyphAtlas::new(),
        }
    }

    /// Where the next fill and shape will go: two marks bracket what a view
    /// added, for a [`crate::ui::CanvasPane`].
    pub fn mark(&self) -> CanvasMark {
        CanvasMark { shapes: self.shapes.len(), fills: self.fills.len() }
    }

    /// What was added since `from`.
    pub fn pane_since(&self, from: CanvasMark) -> crate::ui::CanvasPane {
        crate::ui::CanvasPane { shapes: from.shapes..self.shapes.len(), fills: from.fills..self.fills.len() }
    }

    /// Starts a new frame of this size on this background.
    pub fn begin(&mut self, width: u32, height: u32, background: Color) {
        self.fills.clear();
        self.shapes.clear();
        self.width = width;
        self.height = height;
        self.background = background;
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }
    pub fn bounds(&self) -> Rect {
        Rect::new(0.0, 0.0, self.width as f32, self.height as f32)
    }
    pub fn background(&self) -> Color {
        self.background
    }
    /// The shaded shapes, drawn over the fills.
    pub fn shapes(&self) -> &[Shape] {
        &self.shapes
    }
    /// The opaque fills (`ShapeKind::Solid`), drawn first.
    pub fn fills(&self) -> &[Shape] {
        &self.fills
    }
    pub fn atlas(&self) -> &GlyphAtlas {
        &self.atlas
    }
    pub fn atlas_mut(&mut self) -> &mut GlyphAtlas {
        &mut self.atlas
    }

    /// A segment `width` pixels wide with round caps.
    pub fn line(&mut self, a: Vec2, b: Vec2, width: f32, color: Color) {
        if !(a.x.is_finite() && a.y.is_finite() && b.x.is_finite() && b.y.is_finite()) {
            return;
        }
        self.shapes.push(Shape {
            a: [a.x, a.y, b.x, b.y],
            b: [width * 0.5, 0.0, 0.0, 0.0],
            color: color.0,
            kind: ShapeKind::Segment as u32,
        });
    }

    /// Connected segments through `points` (round joins come from the caps).
    pub fn polyline(&mut self, points: impl IntoIterator<Item = Vec2>, width: f32, color: Color) {
        let mut prev: Option<Vec2> = None;
        for p in points {
            if let Some(q) = prev {
                self.line(q, p, width, color);
            }
            prev = Some(p);
        }
    }

    /// A filled rectangle with rounded corners.
    pub fn rect(&mut self, r: Rect, radius: f32, color: Color) {
        self.push_rect(r, radius, 0.0, color);
    }

    /// An opaque rectangle snapped to whole pixels, filled without a shader
    /// beneath every shaded shape (for large areas: panels, bars, fills).
    /// `color`'s alpha is ignored.
    pub fn fill(&mut self, r: Rect, color: Color) {
        let (w, h) = (self.width as f32, self.height as f32);
        let x0 = r.min.x.round().clamp(0.0, w);
        let y0 = r.min.y.round().clamp(0.0, h);
        let x1 = r.max.x.round().clamp(0.0, w);
        let y1 = r.max.y.round().clamp(0.0, h);
        if !(x1 > x0 && y1 > y0) {
            return;
        }
        self.fills.push(Shape { a: [x0, y0, x1, y1], b: [0.0; 4], color: color.0, kind: ShapeKind::Solid as u32 });
    }

    /// A horizontal grid line `thickness` pixels high (at least one), as a
    /// fill: axis-aligned lines on whole pixels need no anti-aliasing.
    pub fn hline(&mut self, y: f32, x0: f32, x1: f32, thickness: f32, color: Color) {
        let t = thickness.round().max(1.0);
        let top = (y - t * 0.5).round();
        self.fill(Rect { min: vec2(x0, top), max: vec2(x1, top + t) }, color);
    }

    /// A vertical grid line, as [`hline`](Self::hline).
    pub fn vline(&mut self, x: f32, y0: f32, y1: f32, thickness: f32, color: Color) {
        let t = thickness.round().max(1.0);
        let left = (x - t * 0.5).round();
        self.fill(Rect { min: vec2(left, y0), max: vec2(left + t, y1) }, color);
    }

    /// An opaque panel with rounded corners: a [`fill`](Self::fill) whose
    /// four corners are masked back to `behind` (the colour around it).
    pub fn panel(&mut self, r: Rect, radius: f32, color: Color, behind: Color) {
        let r = Rect { min: vec2(r.min.x.round(), r.min.y.round()), max: vec2(r.max.x.round(), r.max.y.round()) };
        self.fill(r, color);
        let k = radius.min(r.width() * 0.5).min(r.height() * 0.5).ceil();
        if k <= 0.0 {
            return;
        }
        let corners = [
            (r.min.x, r.min.y, 3.0), // top-left square: centre at its bottom-right
            (r.max.x - k, r.min.y, 2.0),
            (r.min.x, r.max.y - k, 1.0),
            (r.max.x - k, r.max.y - k, 0.0),
        ];
        for (x, y, centre) in corners {
            self.shapes.push(Shape {
                a: [x, y, x + k, y + k],
                b: [k, 0.0, centre, 0.0],
                color: behind.0,
                kind: ShapeKind::Corner as u32,
            });
        }
    }

    /// The outline of a rectangle, `border` pixels wide, inside `r`.
    pub fn rect_outline(&mut self, r: Rect, radius: f32, border: f32, color: Color) {
        self.push_rect(r, radius, border.max(0.01), color);
    }

    fn push_rect(&mut self, r: Rect, radius: f32, border: f32, color: Color) {
        if r.width() <= 0.0 || r.height() <= 0.0 || !(r.min.x.is_finite() && r.max.y.is_finite()) {
            return;
        }
        self.shapes.push(Shape {
            a: [r.min.x, r.min.y, r.max.x, r.max.y],
            b: [radius, border, 0.0, 0.0],
            color: color.0,
            kind: ShapeKind::Rect as u32,
        });
    }

    /// One line of text, baseline at `at.y`.
    pub fn text(&mut self, at: Vec2, px: f32, color: Color, align: Align, text: &str) {
        let shapes = &mut self.shapes;
        self.atlas.layout(text, at.x, at.y, px, align, |q| {
            shapes.push(Shape {
                a: [q.min[0], q.min[1], q.max[0], q.max[1]],
                b: [q.uv_min[0], q.uv_min[1], q.uv_max[0], q.uv_max[1]],
                color: color.0,
                kind: ShapeKind::Glyph as u32,
            })
        });
    }

    /// Text centred vertically on `at.y` (labels beside ticks).
    pub fn label(&mut self, at: Vec2, px: f32, color: Color, align: Align, text: &str) {
        let half = self.atlas.cap_height(px) * 0.5;
        self.text(vec2(at.x, at.y + half), px, color, align, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_keep_their_order_and_skip_what_cannot_be_drawn() {
        let mut c = Canvas::new(100, 50);
        c.begin(100, 50, Color::hex(0x101218));
        c.rect(Rect::new(0.0, 0.0, 10.0, 10.0), 2.0, Color::rgb(1, 2, 3));
        c.polyline([vec2(0.0, 0.0), vec2(5.0, 5.0), vec2(10.0, 0.0)], 1.5, Color::rgb(4, 5, 6));
        c.line(vec2(f32::NAN, 0.0), vec2(1.0, 1.0), 1.0, Color::rgb(0, 0, 0));
        c.rect(Rect::new(0.0, 0.0, 0.0, 10.0), 0.0, Color::rgb(0, 0, 0));
        c.text(vec2(1.0, 20.0), 12.0, Color::rgb(9, 9, 9), Align::Left, "Hz");
        let kinds: Vec<_> = c.shapes().iter().map(|s| s.kind()).collect();
        assert_eq!(
            kinds,
            [ShapeKind::Rect, ShapeKind::Segment, ShapeKind::Segment, ShapeKind::Glyph, ShapeKind::Glyph]
        );
        assert_eq!(c.shapes()[1].b[0], 0.75, "half width");
        c.begin(100, 50, Color::hex(0));
        assert!(c.shapes().is_empty());
    }
}
