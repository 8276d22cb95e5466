//! The oscilloscope: a few cycles (or a time window) from a rising zero
//! crossing of the left channel, so periodic signals stand still; both
//! channels overlaid with a soft glow.

use super::panel::panel;
use super::theme::Theme;
use crate::analysis::{scope_window, Analysis, ScopeSpan, ScopeWindow};
use crate::draw::{vec2, Align, Canvas, Rect, Vec2};

pub struct ScopeView {
    pub span: ScopeSpan,
    /// The channel the trigger follows (`None`: the mix).
    pub trigger: Option<usize>,
    points: Vec<Vec2>,
    /// The last window drawn and the plot it was drawn in (tests and the UI
    /// read them).
    pub last_window: Option<ScopeWindow>,
    pub last_plot: Option<Rect>,
}

impl Default for ScopeView {
    fn default() -> Self {
        ScopeView {
            span: ScopeSpan::Cycles(2.0),
            trigger: Some(0),
            points: Vec::with_capacity(4096),
            last_window: None,
            last_plot: None,
        }
    }
}

/// Vertical scale: full scale (±1) fills this fraction of the half height.
pub const SCOPE_HEADROOM: f32 = 0.85;

impl ScopeView {
    pub fn draw(&mut self, c: &mut Canvas, r: Rect, a: &Analysis, theme: &Theme) {
        let sr = a.sample_rate();
        let w = scope_window(a.history(), self.trigger, self.span, sr);
        self.last_window = Some(w);
        let info = match (w.triggered, w.period, self.span) {
            (true, Some(p), ScopeSpan::Cycles(n)) => format!("{n} cycles · {:.1} Hz · trig ↑", sr / p),
            (true, _, _) => format!("{:.1} ms · trig ↑", w.len / sr * 1000.0),
            (false, _, _) => format!("{:.1} ms · free", w.len / sr * 1000.0),
        };
        let plot = panel(c, r, theme, "SCOPE", &info);
        self.last_plot = Some(plot);
        self.grid(c, plot, theme, &w);
        let y_of = |v: f32| plot.center().y - v.clamp(-1.15, 1.15) * plot.height() * 0.5 * SCOPE_HEADROOM;
        // A point every two pixels: smooth at this line width, and each segment
        // is a primitive a software rasteriser pays for.
        let n = ((plot.width() / 2.0) as usize).clamp(2, 2048);
        for ch in (0..a.channels()).rev() {
            self.points.clear();
            for i in 0..n {
                let t = i as f64 / (n - 1) as f64;
                let v = a.history().interpolate(Some(ch), w.start + t * w.len);
                self.points.push(vec2(plot.min.x + t as f32 * plot.width(), y_of(v)));
            }
            let color = theme.channel(ch);
            c.polyline(self.points.iter().copied(), theme.px(4.5), color.alpha(0.10));
            c.polyline(self.points.iter().copied(), theme.px(1.8), color);
        }
    }

    fn grid(&self, c: &mut Canvas, plot: Rect, theme: &Theme, w: &ScopeWindow) {
        let thin = theme.px(1.0);
        // Vertical divisions: one per cycle when showing cycles, else ten.
        let divisions = match (self.span, w.period) {
            (ScopeSpan::Cycles(n), Some(_)) if (1.0..=16.0).contains(&n) => n.round() as usize * 2,
            _ => 10,
        };
        for i in 0..=divisions {
            let x = plot.min.x + plot.width() * i as f32 / divisions as f32;
            let color = if i % 2 == 0 { theme.grid_strong } else { theme.grid };
            c.vline(x, plot.min.y, plot.max.y, thin, color);
        }
        for v in [-1.0f32, -0.5, 0.0, 0.5, 1.0] {
            let y = plot.center().y - v * plot.height() * 0.5 * SCOPE_HEADROOM;
            let color = if v == 0.0 { theme.grid_strong } else { theme.grid };
            c.hline(y, plot.min.x, plot.max.x, thin, color);
            if v != 0.0 {
                c.label(
                    vec2(plot.min.x + theme.px(4.0), y),
                    theme.label_px(),
                    theme.text_dim,
                    Align::Left,
                    &format!("{v:+}"),
                );
            }
        }
    }
}
