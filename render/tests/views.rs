//! The views rendered on a real Vulkan device (lavapipe on CI) from known
//! signals, checked by their pixels. Validation is on; any error fails.
//! The PNGs land in target/tmp/ to be looked at.

use std::f64::consts::TAU;
use std::sync::Arc;

use clavm_render::analysis::{column_of_freq, Analysis};
use clavm_render::draw::Canvas;
use clavm_render::gpu::{Gpu, GpuOptions, Validation};
use clavm_render::target::Offscreen;
use clavm_render::views::{ViewKind, Visuals, DB_BOTTOM, DB_TOP, F_HI, F_LO, SCOPE_HEADROOM, XY_HEADROOM};
use clavm_render::Renderer;

const RATE: f64 = 48000.0;

struct Frame {
    w: u32,
    rgba: Vec<u8>,
}

impl Frame {
    fn px(&self, x: u32, y: u32) -> [u8; 3] {
        let i = ((y * self.w + x) * 4) as usize;
        [self.rgba[i], self.rgba[i + 1], self.rgba[i + 2]]
    }
}

struct Bench {
    gpu: Arc<Gpu>,
    renderer: Renderer,
    target: Offscreen,
    canvas: Canvas,
    visuals: Visuals,
    size: (u32, u32),
}

impl Bench {
    fn new(w: u32, h: u32) -> Bench {
        let gpu = Gpu::new(&GpuOptions { validation: Validation::Required, ..Default::default() }).expect("Vulkan");
        Bench {
            renderer: Renderer::new(&gpu).unwrap(),
            target: Offscreen::new(&gpu, w, h).unwrap(),
            canvas: Canvas::new(w, h),
            visuals: Visuals::default(),
            gpu,
            size: (w, h),
        }
    }

    fn draw(&mut self, a: &mut Analysis, kind: ViewKind, png: &str) -> Frame {
        self.visuals.draw(&mut self.canvas, a, kind);
        let t = self.renderer.render(&mut self.canvas, &self.target).unwrap();
        self.renderer.finish(t).unwrap();
        let rgba = self.target.pixels(t.slot).to_vec();
        save_png(png, self.size.0, self.size.1, &rgba);
        assert_eq!(self.gpu.validation().errors(), 0, "{:#?}", self.gpu.validation().messages());
        Frame { w: self.size.0, rgba }
    }
}

fn save_png(name: &str, w: u32, h: u32, rgba: &[u8]) {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let f = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(rgba).unwrap();
}

/// Feeds `seconds` of `f(t) -> (left, right)` from frame `from` on, in 128-frame blocks.
fn feed(a: &mut Analysis, from: u64, seconds: f64, f: impl Fn(f64) -> (f32, f32)) -> u64 {
    let frames = (seconds * RATE) as u64;
    let mut block = Vec::new();
    let mut n = from;
    while n < from + frames {
        block.clear();
        let end = (n + 128).min(from + frames);
        for k in n..end {
            let (l, r) = f(k as f64 / RATE);
            block.extend([l, r]);
        }
        a.push(n, &block);
        n = end;
    }
    n
}

/// Teal, the colour of channel 0's trace (#4fd6c8), at any brightness of the glow's core.
fn is_teal(p: [u8; 3]) -> bool {
    p[1] > 150 && p[2] > 140 && p[0] < 140
}

#[test]
fn a_100hz_sine_on_the_scope_lies_where_it_should_and_stands_still() {
    let mut b = Bench::new(800, 400);
    let mut a = Analysis::new(RATE, 2);
    let sine = |t: f64| {
        let v = (0.8 * (TAU * 100.0 * t).sin()) as f32;
        (v, v)
    };
    let end = feed(&mut a, 0, 1.0, sine);
    let first = b.draw(&mut a, ViewKind::Scope, "scope-1.0s.png");
    let plot = b.visuals.scope.last_plot.unwrap();
    let w = b.visuals.scope.last_window.unwrap();
    assert!(w.triggered && (w.period.unwrap() - 480.0).abs() < 0.5, "{w:?}");

    // Two cycles across the plot: a rising zero at the left edge, the crest
    // at 1/8 of the width, zero at 1/4, the trough at 3/8.
    let half = plot.height() * 0.5 * SCOPE_HEADROOM;
    let centre = plot.center().y;
    let trace_y = |f: &Frame, x: f32| -> f32 {
        let x = x.round() as u32;
        let ys: Vec<u32> = (plot.min.y as u32..plot.max.y as u32).filter(|&y| is_teal(f.px(x, y))).collect();
        assert!(!ys.is_empty(), "no trace in column {x}");
        ys.iter().sum::<u32>() as f32 / ys.len() as f32
    };
    let at = |frac: f32| plot.min.x + frac * plot.width();
    for (frac, value) in [(0.125, 0.8), (0.25, 0.0), (0.375, -0.8), (0.625, 0.8), (0.875, -0.8)] {
        let y = trace_y(&first, at(frac));
        let want = centre - value * half;
        assert!((y - want).abs() <= 2.5, "at {frac} of the width: trace at y={y}, want {want}");
    }

    // 0.5 s later (50 whole cycles) and 13 ms later (1.3 cycles): same picture.
    for (more, name) in [(0.5, "scope-1.5s.png"), (0.013, "scope-1.513s.png")] {
        let end2 = feed(&mut a, end, more, sine);
        assert!(end2 > end);
        let again = b.draw(&mut a, ViewKind::Scope, name);
        let mut differ = 0;
        let mut total = 0;
        for y in plot.min.y as u32..plot.max.y as u32 {
            for x in plot.min.x as u32..plot.max.x as u32 {
                total += 1;
                let (p, q) = (first.px(x, y), again.px(x, y));
                if (0..3).any(|i| p[i].abs_diff(q[i]) > 24) {
                    differ += 1;
                }
            }
        }
        assert!(differ * 1000 < total, "{name}: {differ} of {total} pixels moved");
    }
}

#[test]
fn xy_of_a_sine_cosine_pair_is_a_circle() {
    let mut b = Bench::new(600, 600);
    let mut a = Analysis::new(RATE, 2);
    feed(&mut a, 0, 0.5, |t| ((0.8 * (TAU * 220.0 * t).sin()) as f32, (0.8 * (TAU * 220.0 * t).cos()) as f32));
    let f = b.draw(&mut a, ViewKind::Xy, "xy-circle.png");
    let plot = b.visuals.xy.last_plot.unwrap();
    let c = plot.center();
    let want = 0.8 * plot.width() * 0.5 * XY_HEADROOM;
    let mut radii = Vec::new();
    let mut octants = [0usize; 8];
    for y in plot.min.y as u32..plot.max.y as u32 {
        for x in plot.min.x as u32..plot.max.x as u32 {
            if is_teal(f.px(x, y)) {
                let (dx, dy) = (x as f32 + 0.5 - c.x, y as f32 + 0.5 - c.y);
                radii.push((dx * dx + dy * dy).sqrt());
                let angle = dy.atan2(dx).rem_euclid(std::f32::consts::TAU);
                octants[(angle / std::f32::consts::FRAC_PI_4) as usize % 8] += 1;
            }
        }
    }
    assert!(radii.len() > 500, "trace pixels: {}", radii.len());
    let mean = radii.iter().sum::<f32>() / radii.len() as f32;
    let worst = radii.iter().map(|r| (r - want).abs()).fold(0.0f32, f32::max);
    assert!((mean - want).abs() < 1.5, "mean radius {mean}, want {want}");
    assert!(worst < 4.0, "a trace pixel {worst} px off the circle");
    assert!(octants.iter().all(|&n| n > 20), "the circle is closed: {octants:?}");
}

#[test]
fn a_1khz_sine_peaks_in_the_spectrums_1khz_column() {
    let mut b = Bench::new(1000, 400);
    let mut a = Analysis::new(RATE, 2);
    feed(&mut a, 0, 0.5, |t| {
        let v = (0.5 * (TAU * 1000.0 * t).sin()) as f32;
        (v, v)
    });
    let f = b.draw(&mut a, ViewKind::Spectrum, "spectrum-1khz.png");
    let (plot, columns) = b.visuals.spectrum.last_plot.unwrap();
    let col_w = plot.width() / columns as f32;
    // The curve (blue, under the yellow peak-hold line) is the only bright
    // thing in the plot: grid, fill and panel are all dark. Find its top.
    let is_curve = |p: [u8; 3]| p.iter().any(|&c| c > 150);
    let mut best = (0u32, u32::MAX);
    for x in plot.min.x as u32..plot.max.x as u32 {
        if let Some(y) = (plot.min.y as u32..plot.max.y as u32).find(|&y| is_curve(f.px(x, y))) {
            if y < best.1 {
                best = (x, y);
            }
        }
    }
    let x_1k = plot.min.x + (column_of_freq(1000.0, columns, F_LO, F_HI.min(24000.0)) + 0.5) * col_w;
    assert!((best.0 as f32 - x_1k).abs() <= 1.5 * col_w + 1.0, "peak at x={}, 1 kHz at x={x_1k}", best.0);
    // Amplitude 0.5 is -6 dB.
    let y_6db = plot.min.y + (DB_TOP + 6.02) / (DB_TOP - DB_BOTTOM) * plot.height();
    assert!((best.1 as f32 - y_6db).abs() < 3.0, "peak at y={}, -6 dB at y={y_6db}", best.1);
    // A decade away the curve is far below.
    let x_100 = plot.min.x + (column_of_freq(100.0, columns, F_LO, F_HI) + 0.5) * col_w;
    let y_100 =
        (plot.min.y as u32..plot.max.y as u32).find(|&y| is_curve(f.px(x_100 as u32, y))).unwrap_or(plot.max.y as u32);
    let y_minus_60 = plot.min.y + (DB_TOP + 60.0) / (DB_TOP - DB_BOTTOM) * plot.height();
    assert!(y_100 as f32 > y_minus_60, "100 Hz reads above -60 dB: y={y_100}");
}

#[test]
fn the_full_view_draws_every_panel_at_two_sizes() {
    for (w, h) in [(1280, 720), (1920, 1080)] {
        let mut b = Bench::new(w, h);
        let mut a = Analysis::new(RATE, 2);
        feed(&mut a, 0, 2.5, |t| {
            let l = 0.5 * (TAU * 220.0 * t).sin() + 0.2 * (TAU * 3300.0 * t).sin();
            let r = 0.5 * (TAU * 220.0 * t + 0.7).sin();
            (l as f32, r as f32)
        });
        let f = b.draw(&mut a, ViewKind::All, &format!("all-{w}x{h}.png"));
        let l = b.visuals.last_layout;
        for (name, r) in
            [("scope", l.scope), ("xy", l.xy), ("waves", l.waves), ("spectrum", l.spectrum), ("meters", l.meters)]
        {
            let r = r.unwrap_or_else(|| panic!("{name} has a place"));
            assert!(r.width() > 50.0 && r.height() > 50.0, "{name}: {r:?}");
            // Panel colour (#12161e) just inside the panel's top-left, past the corner.
            assert_eq!(f.px(r.min.x as u32 + 12, r.min.y as u32 + 4), [0x12, 0x16, 0x1e], "{name} panel");
        }
        let m = l.meters.unwrap();
        let green = (m.min.y as u32..m.max.y as u32)
            .flat_map(|y| (m.min.x as u32..m.max.x as u32).map(move |x| (x, y)))
            .filter(|&(x, y)| f.px(x, y) == [0x3e, 0xcf, 0x6e] || f.px(x, y) == [0xe8, 0xc5, 0x47])
            .count();
        assert!(green > 1000, "meter bars drawn: {green} px");
    }
}
