//! The interval-bar tree as the physical instrument lies: each bar a thick
//! segment as long as its interval (log of its ratio), turning at right
//! angles at connectors, the root box marked, each bar's note and its cents
//! from equal temperament at its far end, touched bars lit.
//!
//! The view draws a [`BarDrawing`] (plain geometry and labels), so the
//! renderer does not depend on the bar model; the app builds the drawing
//! from the tree's layout.

use super::panel::panel;
use super::theme::Theme;
use crate::draw::{vec2, Align, Canvas, Color, Rect, Vec2};

/// One bar to draw, in the model's plane (y up, an octave bar 1.0 long).
#[derive(Clone, Debug, PartialEq)]
pub struct BarShape {
    pub from: [f32; 2],
    pub to: [f32; 2],
    /// Bar width in the same units.
    pub width: f32,
    /// "E5 +2.0c".
    pub label: String,
    pub touched: bool,
}

/// A whole tree to draw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BarDrawing {
    /// Where the root box's connector is.
    pub root: [f32; 2],
    /// "A4 440 Hz".
    pub root_label: String,
    pub bars: Vec<BarShape>,
}

#[derive(Default)]
pub struct BarsView {
    pub drawing: Option<BarDrawing>,
    /// The last fit: plane -> pixels (scale, offset), for pointing at bars.
    fit: Option<(f32, Vec2, f32)>,
}

impl BarsView {
    pub fn draw(&mut self, c: &mut Canvas, r: Rect, theme: &Theme) {
        let info = match &self.drawing {
            Some(d) => format!("{} bars · root {}", d.bars.len(), d.root_label),
            None => "no tree: --bars FILE.bars".to_string(),
        };
        let plot = panel(c, r, theme, "BARS", &info);
        let Some(d) = &self.drawing else {
            self.fit = None;
            return;
        };
        // Fit the tree's bounding box (with the root) into the plot, y up.
        let (mut lo, mut hi) = ([d.root[0], d.root[1]], [d.root[0], d.root[1]]);
        for b in &d.bars {
            for p in [b.from, b.to] {
                lo = [lo[0].min(p[0]), lo[1].min(p[1])];
                hi = [hi[0].max(p[0]), hi[1].max(p[1])];
            }
        }
        let margin = 0.25;
        let (w, h) = ((hi[0] - lo[0]).max(0.5) + 2.0 * margin, (hi[1] - lo[1]).max(0.5) + 2.0 * margin);
        let scale = (plot.width() / w).min(plot.height() / h);
        let centre = [(lo[0] + hi[0]) * 0.5, (lo[1] + hi[1]) * 0.5];
        let mid = plot.center();
        let to_px = |p: [f32; 2]| vec2(mid.x + (p[0] - centre[0]) * scale, mid.y - (p[1] - centre[1]) * scale);
        self.fit = Some((scale, vec2(mid.x - centre[0] * scale, mid.y + centre[1] * scale), 0.0));

        let idle = Color::hex(0x5b6b82);
        let lit = Color::hex(0xf2b84b);
        for b in &d.bars {
            let (a, z) = (to_px(b.from), to_px(b.to));
            let width = (b.width * scale).max(theme.px(3.0));
            let color = if b.touched { lit } else { idle };
            if b.touched {
                c.line(a, z, width * 2.2, lit.alpha(0.18));
            }
            c.line(a, z, width, color);
            // The joints: a dark dot at each end.
            c.line(a, a, width * 0.55, theme.panel);
            c.line(z, z, width * 0.55, theme.panel);
        }
        // Labels last, each on a dark tag so it reads over the bars.
        for b in &d.bars {
            let z = to_px(b.to);
            let color = if b.touched { Color::hex(0xffe3a3) } else { theme.text };
            let px = theme.label_px();
            let at = vec2(z.x + theme.px(8.0), z.y - theme.px(8.0));
            let w = c.atlas().measure(&b.label, px);
            let pad = theme.px(3.0);
            let tag = Rect::new(at.x - pad, at.y - px - pad * 0.5, w + 2.0 * pad, px + 2.0 * pad);
            c.rect(tag, theme.px(3.0), theme.background.alpha(0.85));
            c.text(at, px, color, Align::Left, &b.label);
        }
        let root = to_px(d.root);
        let s = theme.px(9.0);
        c.rect(Rect::new(root.x - s, root.y - s, 2.0 * s, 2.0 * s), theme.px(2.0), Color::hex(0xc9d1dc));
        c.text(vec2(root.x - s, root.y + s + theme.px(12.0)), theme.label_px(), theme.text, Align::Left, "ROOT");
    }

    /// Where bar `i`'s middle was drawn (pixels) in the last draw.
    pub fn bar_center(&self, i: usize) -> Option<Vec2> {
        let (scale, offset, _) = self.fit?;
        let b = self.drawing.as_ref()?.bars.get(i)?;
        let m = [(b.from[0] + b.to[0]) * 0.5, (b.from[1] + b.to[1]) * 0.5];
        Some(vec2(offset.x + m[0] * scale, offset.y - m[1] * scale))
    }

    /// The bar under pixel `p` of the last draw, if any (for touching bars).
    pub fn bar_at(&self, p: Vec2) -> Option<usize> {
        let (scale, offset, _) = self.fit?;
        let d = self.drawing.as_ref()?;
        let q = [(p.x - offset.x) / scale, (offset.y - p.y) / scale];
        d.bars
            .iter()
            .enumerate()
            .map(|(i, b)| (i, distance_to_segment(q, b.from, b.to) - b.width))
            .filter(|(_, d)| *d < 0.06)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }
}

fn distance_to_segment(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    let (ab, ap) = ([b[0] - a[0], b[1] - a[1]], [p[0] - a[0], p[1] - a[1]]);
    let len2 = ab[0] * ab[0] + ab[1] * ab[1];
    let t = if len2 > 0.0 { ((ap[0] * ab[0] + ap[1] * ab[1]) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (dx, dy) = (ap[0] - ab[0] * t, ap[1] - ab[1] * t);
    (dx * dx + dy * dy).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drawn_tree_can_be_pointed_at() {
        let mut v = BarsView {
            drawing: Some(BarDrawing {
                root: [0.0, 0.0],
                root_label: "A4 440 Hz".into(),
                bars: vec![
                    BarShape {
                        from: [0.0, 0.0],
                        to: [0.585, 0.0],
                        width: 0.08,
                        label: "E5 +2.0c".into(),
                        touched: false,
                    },
                    BarShape { from: [0.585, 0.0], to: [0.585, 0.32], width: 0.08, label: "G#5".into(), touched: true },
                ],
            }),
            fit: None,
        };
        let mut c = Canvas::new(400, 300);
        c.begin(400, 300, Color::rgb(0, 0, 0));
        let theme = Theme::with_scale(1.0);
        v.draw(&mut c, Rect::new(0.0, 0.0, 400.0, 300.0), &theme);
        assert!(c.shapes().len() > 6, "bars, joints, labels, root");
        let (scale, offset, _) = v.fit.unwrap();
        let px = |p: [f32; 2]| vec2(offset.x + p[0] * scale, offset.y - p[1] * scale);
        assert_eq!(v.bar_at(px([0.3, 0.0])), Some(0));
        assert_eq!(v.bar_at(px([0.585, 0.2])), Some(1));
        assert_eq!(v.bar_at(px([0.3, 0.3])), None);
    }
}
