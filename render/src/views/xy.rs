//! XY mode: left against right, like a vectorscope in its plain (unrotated)
//! form. A sine/cosine pair draws a circle, mono a diagonal line. The trail
//! brightens towards the newest sample.

use super::panel::panel;
use super::theme::Theme;
use crate::analysis::{xy_points, Analysis};
use crate::draw::{vec2, Align, Canvas, Rect, Vec2};

pub struct XyView {
    /// How much audio the trail shows.
    pub seconds: f32,
    pairs: Vec<[f32; 2]>,
    points: Vec<Vec2>,
    /// The square plot of the last draw (tests read it).
    pub last_plot: Option<Rect>,
}

impl Default for XyView {
    fn default() -> Self {
        XyView {
            seconds: 1.0 / 30.0,
            pairs: Vec::with_capacity(8192),
            points: Vec::with_capacity(8192),
            last_plot: None,
        }
    }
}

/// Full scale reaches this fraction of the half side.
pub const XY_HEADROOM: f32 = 0.85;

impl XyView {
    pub fn draw(&mut self, c: &mut Canvas, r: Rect, a: &Analysis, theme: &Theme) {
        let inner = panel(c, r, theme, "XY", "L → x · R → y");
        let side = inner.width().min(inner.height());
        let center = inner.center();
        let plot = Rect::new(center.x - side * 0.5, center.y - side * 0.5, side, side);
        self.last_plot = Some(plot);
        let half = side * 0.5 * XY_HEADROOM;
        let thin = theme.px(1.0);
        c.hline(center.y, plot.min.x, plot.max.x, thin, theme.grid_strong);
        c.vline(center.x, plot.min.y, plot.max.y, thin, theme.grid_strong);
        for radius in [0.5f32, 1.0] {
            let steps = 96;
            c.polyline(
                (0..=steps).map(|i| {
                    let t = i as f32 / steps as f32 * std::f32::consts::TAU;
                    vec2(center.x + t.cos() * radius * half, center.y + t.sin() * radius * half)
                }),
                thin,
                theme.grid,
            );
        }
        c.label(
            vec2(center.x + half + theme.px(3.0), center.y - theme.px(8.0)),
            theme.label_px(),
            theme.text_dim,
            Align::Left,
            "L",
        );
        c.label(
            vec2(center.x + theme.px(4.0), center.y - half - theme.px(6.0)),
            theme.label_px(),
            theme.text_dim,
            Align::Left,
            "R",
        );

        let frames = ((self.seconds as f64 * a.sample_rate()) as usize).clamp(2, 1 << 15);
        xy_points(a.history(), frames, &mut self.pairs);
        // At most 600 points: every k-th pair (the trail's shape survives,
        // the primitive count stays bounded at any sample rate).
        let step = self.pairs.len().div_ceil(600).max(1);
        self.points.clear();
        self.points.extend(
            self.pairs
                .iter()
                .step_by(step)
                .map(|&[l, r]| vec2(center.x + l.clamp(-1.1, 1.1) * half, center.y - r.clamp(-1.1, 1.1) * half)),
        );
        // Eight stretches, older ones fainter; each starts where the last ended.
        let color = theme.channel(0);
        let n = self.points.len();
        let pieces = 8;
        for p in 0..pieces {
            let from = n * p / pieces;
            let to = (n * (p + 1) / pieces + 1).min(n);
            let alpha = 0.25 + 0.75 * (p + 1) as f32 / pieces as f32;
            let slice = &self.points[from..to];
            c.polyline(slice.iter().copied(), theme.px(5.0), color.alpha(0.08 * alpha));
            c.polyline(slice.iter().copied(), theme.px(1.6), color.alpha(alpha));
        }
    }
}
