//! The scrolling waveform: the last seconds of every channel in its own lane,
//! one column per pixel holding the min/max envelope of its samples (a
//! continuous line when zoomed in far enough).

use super::panel::panel;
use super::theme::Theme;
use crate::analysis::{Analysis, WaveColumns};
use crate::draw::{vec2, Align, Canvas, Rect};

pub struct WavesView {
    pub seconds: f32,
    columns: WaveColumns,
}

impl Default for WavesView {
    fn default() -> Self {
        WavesView { seconds: 2.0, columns: WaveColumns::default() }
    }
}

impl WavesView {
    pub fn draw(&mut self, c: &mut Canvas, r: Rect, a: &mut Analysis, theme: &Theme) {
        let info = format!("{:.1} s", self.seconds);
        let plot = panel(c, r, theme, "WAVEFORM", &info);
        let channels = a.channels().max(1);
        let gap = theme.px(6.0);
        let lane_h = (plot.height() - gap * (channels - 1) as f32) / channels as f32;
        let span = ((self.seconds as f64 * a.sample_rate()) as u64).max(1);
        let columns = plot.width().max(1.0) as usize;
        let thin = theme.px(1.0);
        for ch in 0..channels {
            let lane = Rect::new(plot.min.x, plot.min.y + ch as f32 * (lane_h + gap), plot.width(), lane_h);
            let mid = lane.center().y;
            let half = lane.height() * 0.5 * 0.9;
            c.hline(mid, lane.min.x, lane.max.x, thin, theme.grid_strong);
            for v in [-0.5f32, 0.5] {
                let y = mid - v * half;
                c.hline(y, lane.min.x, lane.max.x, thin, theme.grid);
            }
            // One second per tick, counted back from now (right edge).
            let whole = self.seconds.floor() as usize;
            for s in 1..=whole {
                let x = lane.max.x - lane.width() * s as f32 / self.seconds;
                c.vline(x, lane.min.y, lane.max.y, thin, theme.grid);
            }
            a.wave_columns(ch, span, columns, &mut self.columns);
            let color = theme.channel(ch);
            let y_of = |v: f32| mid - v.clamp(-1.1, 1.1) * half;
            let width = lane.width() / columns as f32;
            let (mut prev_lo, mut prev_hi) = (f32::NAN, f32::NAN);
            for i in 0..columns {
                let (lo, hi) = (self.columns.min[i], self.columns.max[i]);
                // Join each column to its neighbour so the trace has no gaps.
                let (lo2, hi2) = if prev_lo.is_nan() { (lo, hi) } else { (lo.min(prev_hi), hi.max(prev_lo)) };
                prev_lo = lo;
                prev_hi = hi;
                let x = lane.min.x + (i as f32 + 0.5) * width;
                let (top, bottom) = (y_of(hi2), y_of(lo2));
                if bottom - top >= 3.0 {
                    // A tall envelope column: an opaque fill, no shader (the
                    // fills are one batch beneath the shaded shapes).
                    c.fill(Rect { min: vec2(x - width * 0.5, top), max: vec2(x + width * 0.5, bottom) }, color);
                } else {
                    c.line(vec2(x, top), vec2(x, bottom), theme.px(1.2).max(width * 0.9), color);
                }
            }
            let name = match (channels, ch) {
                (2, 0) => "L".to_string(),
                (2, 1) => "R".to_string(),
                _ => format!("{}", ch + 1),
            };
            c.text(
                vec2(lane.min.x + theme.px(4.0), lane.min.y + theme.px(12.0)),
                theme.label_px(),
                theme.text_dim,
                Align::Left,
                &name,
            );
        }
    }
}
