//! Points and rectangles in pixels (y down), and the splits the layouts use.

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Vec2 {
    pub x: f32,
    pub y: f32,
}

pub const fn vec2(x: f32, y: f32) -> Vec2 {
    Vec2 { x, y }
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rect {
    pub min: Vec2,
    pub max: Vec2,
}

impl Rect {
    pub fn new(x: f32, y: f32, w: f32, h: f32) -> Rect {
        Rect { min: vec2(x, y), max: vec2(x + w.max(0.0), y + h.max(0.0)) }
    }
    pub fn width(&self) -> f32 {
        self.max.x - self.min.x
    }
    pub fn height(&self) -> f32 {
        self.max.y - self.min.y
    }
    pub fn center(&self) -> Vec2 {
        vec2((self.min.x + self.max.x) * 0.5, (self.min.y + self.max.y) * 0.5)
    }
    /// Shrunk by `d` on every side (never inside out).
    pub fn inset(&self, d: f32) -> Rect {
        self.inset_xy(d, d)
    }
    pub fn inset_xy(&self, dx: f32, dy: f32) -> Rect {
        let dx = dx.min(self.width() * 0.5);
        let dy = dy.min(self.height() * 0.5);
        Rect { min: vec2(self.min.x + dx, self.min.y + dy), max: vec2(self.max.x - dx, self.max.y - dy) }
    }
    /// The left part `w` wide and the rest, `gap` between them.
    pub fn split_left(&self, w: f32, gap: f32) -> (Rect, Rect) {
        let w = w.clamp(0.0, self.width());
        let left = Rect { min: self.min, max: vec2(self.min.x + w, self.max.y) };
        let right = Rect { min: vec2((self.min.x + w + gap).min(self.max.x), self.min.y), max: self.max };
        (left, right)
    }
    /// The top part `h` high and the rest, `gap` between them.
    pub fn split_top(&self, h: f32, gap: f32) -> (Rect, Rect) {
        let h = h.clamp(0.0, self.height());
        let top = Rect { min: self.min, max: vec2(self.max.x, self.min.y + h) };
        let bottom = Rect { min: vec2(self.min.x, (self.min.y + h + gap).min(self.max.y)), max: self.max };
        (top, bottom)
    }
    /// Point at fractions (0..1, 0..1) of the rectangle.
    pub fn at(&self, fx: f32, fy: f32) -> Vec2 {
        vec2(self.min.x + fx * self.width(), self.min.y + fy * self.height())
    }
}
