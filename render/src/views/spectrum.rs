//! The spectrum: a 4096-point FFT on a log-frequency axis in dBFS, filled
//! under the curve, with a falling peak-hold line above it.

use super::panel::panel;
use super::theme::Theme;
use crate::analysis::{column_of_freq, freq_of_column, Analysis};
use crate::draw::{vec2, Align, Canvas, Rect, Vec2};

/// The axis the view shows.
pub const F_LO: f32 = 20.0;
pub const F_HI: f32 = 20_000.0;
pub const DB_TOP: f32 = 6.0;
pub const DB_BOTTOM: f32 = -100.0;

pub struct SpectrumView {
    /// Pixels per spectrum column.
    pub column_px: f32,
    values: Vec<f32>,
    peaks: Vec<f32>,
    points: Vec<Vec2>,
    /// The plot rectangle and column count of the last draw (for tests and
    /// for pointing at a frequency).
    pub last_plot: Option<(Rect, usize)>,
}

impl Default for SpectrumView {
    fn default() -> Self {
        SpectrumView { column_px: 2.0, values: Vec::new(), peaks: Vec::new(), points: Vec::new(), last_plot: None }
    }
}

impl SpectrumView {
    pub fn draw(&mut self, c: &mut Canvas, r: Rect, a: &mut Analysis, theme: &Theme) {
        let f_hi = F_HI.min((a.sample_rate() / 2.0) as f32);
        // The title names the loudest column, so columns come first; the
        // plot's width is the panel's less its padding and the dB labels.
        let columns = (((r.width() - theme.px(50.0)) / theme.px(self.column_px)).max(1.0)) as usize;
        a.update_spectrum();
        let peaks = a.spectrum_columns(columns, F_LO, f_hi, &mut self.values);
        self.peaks.clear();
        self.peaks.extend_from_slice(peaks);

        let loudest = self.values.iter().enumerate().fold((0, f32::MIN), |m, (i, &v)| if v > m.1 { (i, v) } else { m });
        let info = if loudest.1 > DB_BOTTOM {
            let f = freq_of_column(loudest.0 as f32 + 0.5, columns, F_LO, f_hi);
            format!("peak {} · {:.1} dB", hz(f), loudest.1)
        } else {
            "silence".to_string()
        };
        let plot = panel(c, r, theme, "SPECTRUM", &info);
        let plot = Rect {
            min: vec2(plot.min.x + theme.px(30.0), plot.min.y),
            max: vec2(plot.max.x, plot.max.y - theme.px(14.0)),
        };
        self.last_plot = Some((plot, columns));
        let col_w = plot.width() / columns as f32;
        let y_of = |db: f32| plot.min.y + (DB_TOP - db.clamp(DB_BOTTOM, DB_TOP)) / (DB_TOP - DB_BOTTOM) * plot.height();
        let thin = theme.px(1.0);

        // Fill under the curve, column by column, as opaque pixel fills of
        // the colour the translucent fill would give (no shader over the
        // area), then the grid over it, then the curve and the peaks.
        let fill = theme.panel.mix(theme.spectrum, 0.28);
        for (i, &db) in self.values.iter().enumerate() {
            let x0 = plot.min.x + i as f32 * col_w;
            let top = y_of(db);
            if top < plot.max.y {
                c.fill(Rect { min: vec2(x0, top), max: vec2(x0 + col_w, plot.max.y) }, fill);
            }
        }
        for db in (-100..=0).step_by(20) {
            let y = y_of(db as f32);
            c.hline(y, plot.min.x, plot.max.x, thin, if db == 0 { theme.grid_strong } else { theme.grid });
            c.label(
                vec2(plot.min.x - theme.px(4.0), y),
                theme.label_px(),
                theme.text_dim,
                Align::Right,
                &db.to_string(),
            );
        }
        for f in [20.0f32, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0] {
            if f > f_hi {
                continue;
            }
            let x = plot.min.x + column_of_freq(f, columns, F_LO, f_hi) * col_w;
            let strong = matches!(f as u32, 100 | 1000 | 10000);
            c.vline(x, plot.min.y, plot.max.y, thin, if strong { theme.grid_strong } else { theme.grid });
        }
        // Labels that would touch one already drawn are left out, the decades
        // first, so a narrow pane keeps 100, 1k and 10k; the grid lines stay.
        let mut drawn: Vec<(f32, f32)> = Vec::new();
        for f in [100.0f32, 1000.0, 10000.0, 20.0, 50.0, 200.0, 500.0, 2000.0, 5000.0, 20000.0] {
            if f > f_hi {
                continue;
            }
            let x = plot.min.x + column_of_freq(f, columns, F_LO, f_hi) * col_w;
            let label = hz(f);
            let half = c.atlas().measure(&label, theme.label_px()) * 0.5 + theme.px(3.0);
            if drawn.iter().any(|&(a, b)| x - half < b && x + half > a) {
                continue;
            }
            drawn.push((x - half, x + half));
            c.text(vec2(x, plot.max.y + theme.px(12.0)), theme.label_px(), theme.text_dim, Align::Center, &label);
        }

        self.points.clear();
        self.points.extend(
            self.values.iter().enumerate().map(|(i, &db)| vec2(plot.min.x + (i as f32 + 0.5) * col_w, y_of(db))),
        );
        c.polyline(self.points.iter().copied(), theme.px(1.6), theme.spectrum);
        self.points.clear();
        self.points.extend(
            self.peaks.iter().enumerate().map(|(i, &db)| vec2(plot.min.x + (i as f32 + 0.5) * col_w, y_of(db))),
        );
        c.polyline(self.points.iter().copied(), theme.px(1.0), theme.peak_hold.alpha(0.7));
    }
}

/// "50", "1k", "2.5k", "20k".
fn hz(f: f32) -> String {
    if f >= 1000.0 {
        let k = f / 1000.0;
        if (k - k.round()).abs() < 0.05 {
            format!("{}k", k.round())
        } else {
            format!("{k:.1}k")
        }
    } else {
        format!("{}", f.round())
    }
}
