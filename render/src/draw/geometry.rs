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
        // Not clamp: it panics on a rectangle already inside out (a tiny picture).
        let w = w.min(self.width()).max(0.0);
        let left = Rect { min: self.min, max: vec2(self.min.x + w, self.max.y) };
        let right = Rect { min: vec2((self.min.x + w + gap).min(self.max.x), self.min.y), max: self.max };
        (left, right)
    }
    /// The top part `h` high and the rest, `gap` between them.
    pub fn split_top(&self, h: f32, gap: f32) -> (Rect, Rect) {
        let h = h.min(self.height()).max(0.0);
        let top = Rect { min: self.min, max: vec2(self.max.x, self.min.y + h) };
        let bottom = Rect { min: vec2(self.min.x, (self.min.y + h + gap).min(self.max.y)), max: self.max };
        (top, bottom)
    }
    /// Point at fractions (0..1, 0..1) of the rectangle.
    pub fn at(&self, fx: f32, fy: f32) -> Vec2 {
        vec2(self.min.x + fx * self.width(), self.min.y + fy * self.height())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_never_panics_on_a_rectangle_smaller_than_the_cut() {
        // What a 1x1 picture's layout makes of its panels: inside out.
        let inside_out = Rect { min: vec2(10.0, 10.0), max: vec2(4.0, 2.0) };
        let (top, _) = inside_out.split_top(18.0, 2.0);
        assert_eq!(top.height(), 0.0);
        let (left, _) = inside_out.split_left(18.0, 2.0);
        assert_eq!(left.width(), 0.0);
        let r = Rect::new(0.0, 0.0, 10.0, 10.0);
        let (t, b) = r.split_top(4.0, 1.0);
        assert_eq!((t.height(), b.min.y, b.height()), (4.0, 5.0, 5.0));
        let (l, _) = r.split_left(40.0, 1.0);
        assert_eq!(l.width(), 10.0);
    }
}
