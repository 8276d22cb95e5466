//! Meters: per channel RMS (the bar), peak (a bright line) and held peak
//! (a thin marker) on a dB scale, a clip light, and the DSP load.

use super::panel::panel;
use super::theme::Theme;
use crate::analysis::Analysis;
use crate::draw::{vec2, Align, Canvas, Color, Rect};

/// The scale, in dBFS.
pub const TOP_DB: f32 = 6.0;
pub const BOTTOM_DB: f32 = -60.0;

#[derive(Default)]
pub struct MetersView;

impl MetersView {
    pub fn draw(&mut self, c: &mut Canvas, r: Rect, a: &Analysis, theme: &Theme) {
        let plot = panel(c, r, theme, "LEVEL", "");
        let m = a.meters();
        let channels = a.channels().max(1);
        let load_h = theme.px(44.0);
        let (bars, load) = plot.split_top(plot.height() - load_h, theme.px(8.0));
        let scale_w = theme.px(26.0);
        let (scale, bars) = bars.split_left(scale_w, theme.px(2.0));
        let readout_h = theme.px(16.0);
        let clip_h = theme.px(8.0);
        let track_top = bars.min.y + clip_h + theme.px(4.0);
        let track_bottom = bars.max.y - readout_h;
        let y_of = |db: f32| {
            let t = (TOP_DB - db.clamp(BOTTOM_DB, TOP_DB)) / (TOP_DB - BOTTOM_DB);
            track_top + t * (track_bottom - track_top)
        };
        for db in [6, 0, -6, -12, -24, -36, -48, -60] {
            let y = y_of(db as f32);
            c.label(vec2(scale.max.x, y), theme.label_px(), theme.text_dim, Align::Right, &db.to_string());
            c.hline(y, bars.min.x, bars.max.x, theme.px(1.0), if db == 0 { theme.grid_strong } else { theme.grid });
        }
        let gap = theme.px(6.0);
        let bar_w = (bars.width() - gap * (channels - 1) as f32) / channels as f32;
        for ch in 0..channels {
            let x0 = bars.min.x + ch as f32 * (bar_w + gap);
            let track = Rect { min: vec2(x0, track_top), max: vec2(x0 + bar_w, track_bottom) };
            c.fill(track, track_color(theme));
            // The RMS bar, coloured by zone as on a hardware meter: green up
            // to -12 dB, yellow to -3 dB, red above.
            let rms = m.rms_db(ch);
            let top = y_of(rms);
            for (from, to, color) in
                [(BOTTOM_DB, -12.0, theme.meter_low), (-12.0, -3.0, theme.meter_mid), (-3.0, TOP_DB, theme.meter_high)]
            {
                if rms > from {
                    let y0 = top.max(y_of(to));
                    c.fill(Rect { min: vec2(track.min.x, y0), max: vec2(track.max.x, y_of(from)) }, color);
                }
            }
            let peak = m.peak_db(ch);
            if peak > BOTTOM_DB {
                let y = y_of(peak);
                c.line(
                    vec2(track.min.x + 1.0, y),
                    vec2(track.max.x - 1.0, y),
                    theme.px(2.0),
                    level_color(theme, peak).mix(Color::rgb(255, 255, 255), 0.35),
                );
            }
            let clip = Rect { min: vec2(x0, bars.min.y), max: vec2(x0 + bar_w, bars.min.y + clip_h) };
            c.rect(clip, theme.px(2.0), if m.clipped(ch) { theme.clip } else { theme.grid });
            let readout = if peak <= -119.0 { "-inf".to_string() } else { format!("{peak:.1}") };
            // Left out where the bar is narrower than its number.
            let fits = c.atlas().measure(&readout, theme.label_px()) <= bar_w + theme.px(2.0);
            if fits {
                c.text(
                    vec2(track.center().x, bars.max.y - theme.px(3.0)),
                    theme.label_px(),
                    theme.text,
                    Align::Center,
                    &readout,
                );
            }
        }

        let load_now = a.meters().dsp_load().clamp(0.0, 1.0);
        let load_held = a.meters().dsp_load_held().clamp(0.0, 1.0);
        let text_y = load.min.y + theme.px(12.0);
        c.text(vec2(load.min.x, text_y), theme.label_px(), theme.text_dim, Align::Left, "DSP");
        c.text(
            vec2(load.max.x, text_y),
            theme.label_px(),
            theme.text,
            Align::Right,
            &format!("{:.0}%", load_now * 100.0),
        );
        let track = Rect {
            min: vec2(load.min.x, load.min.y + theme.px(20.0)),
            max: vec2(load.max.x, load.min.y + theme.px(30.0)),
        };
        c.fill(track, track_color(theme));
        let color = if load_held > 0.8 {
            theme.meter_high
        } else if load_held > 0.5 {
            theme.meter_mid
        } else {
            theme.meter_low
        };
        if load_now > 0.0 {
            c.fill(Rect { min: track.min, max: vec2(track.min.x + track.width() * load_now, track.max.y) }, color);
        }
        let x = track.min.x + track.width() * load_held;
        c.line(vec2(x, track.min.y), vec2(x, track.max.y), theme.px(1.5), theme.text);
    }
}

/// The empty part of a meter: the background, a little lifted.
fn track_color(theme: &Theme) -> Color {
    theme.background.mix(theme.panel, 0.2)
}

fn level_color(theme: &Theme, db: f32) -> Color {
    if db > -3.0 {
        theme.meter_high
    } else if db > -12.0 {
        theme.meter_mid
    } else {
        theme.meter_low
    }
}
