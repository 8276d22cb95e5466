//! End-to-end: the real `clavm` binary's visual output, `snapshot` (PNG) and
//! `record` (H.264 + AAC through ffmpeg), checked by decoding what it wrote.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::Dir;

/// The theme's colours (render/src/views/theme.rs).
const BACKGROUND: [u8; 3] = [0x0b, 0x0d, 0x12];
const METER_LOW: [u8; 3] = [0x3e, 0xcf, 0x6e];
const METER_MID: [u8; 3] = [0xe8, 0xc5, 0x47];
const METER_HIGH: [u8; 3] = [0xf0, 0x58, 0x4a];

const SINE: &str = "void play(void) { float s = 0.8f * Cycle(100.0f); _out(0, s); _out(1, s); }\n";

/// Silent until t = 0.49 s (sample 23520 at 48 kHz), then a loud 440 Hz sine.
const STEP: &str = "void play(void) {
    float s = _time() >= 0.49 ? 0.8f * Cycle(440.0f) : 0.0f;
    _out(0, s);
    _out(1, s);
}
";

fn clavm(args: &[&str]) -> Output {
    clavm_env(args, &[])
}

fn clavm_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_clavm"));
    cmd.args(args).current_dir(std::env::temp_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run clavm")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// An RGBA image.
struct Image {
    width: usize,
    height: usize,
    rgba: Vec<u8>,
}

impl Image {
    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 4;
        [self.rgba[i], self.rgba[i + 1], self.rgba[i + 2]]
    }
    fn count(&self, pred: impl Fn([u8; 3]) -> bool) -> usize {
        self.rgba.chunks_exact(4).filter(|p| pred([p[0], p[1], p[2]])).count()
    }
}

/// Decodes a PNG, insisting on 8-bit RGBA.
fn read_png(p: &Path) -> Image {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(p).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgba, "{}", p.display());
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "{}", p.display());
    buf.truncate(info.buffer_size());
    Image { width: info.width as usize, height: info.height as usize, rgba: buf }
}

/// Largest per-channel difference.
fn diff(a: [u8; 3], b: [u8; 3]) -> u8 {
    (0..3).map(|i| a[i].abs_diff(b[i])).max().unwrap()
}

fn near(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    diff(a, b) <= tolerance
}

/// The left channel's teal (#4fd6c8), or its anti-aliased edge blended into the panel or
/// the orange right channel drawn under it (not the spectrum's blue, the
/// meters' green or the grey text).
fn tealish(c: [u8; 3]) -> bool {
    let [r, g, b] = c.map(i32::from);
    g >= 140 && b >= 120 && r + 40 <= g && b <= g + 10
}

/// Runs `clavm snapshot` and decodes the PNG it wrote.
fn snapshot(dir: &Dir, patch: &Path, name: &str, args: &[&str]) -> Image {
    let out = dir.path(name);
    let mut all = vec!["snapshot", s(patch), "-o", s(&out)];
    all.extend_from_slice(args);
    let o = clavm(&all);
    assert!(o.status.success(), "snapshot {args:?} failed: {}", stderr(&o));
    read_png(&out)
}

/// The fraction of pixels that differ by more than `tolerance` in some channel.
fn fraction_differing(a: &Image, b: &Image, tolerance: u8) -> f64 {
    assert_eq!((a.width, a.height), (b.width, b.height));
    let n = a
        .rgba
        .chunks_exact(4)
        .zip(b.rgba.chunks_exact(4))
        .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > tolerance))
        .count();
    n as f64 / (a.width * a.height) as f64
}

fn ffprobe_streams(p: &Path) -> Vec<serde_json::Value> {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type,width,height,nb_frames,duration", "-of", "json"])
        .arg(p)
        .output()
        .expect("run ffprobe");
    assert!(o.status.success(), "ffprobe: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["streams"].as_array().unwrap().clone()
}

/// A number that ffprobe may print as a string.
fn num(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::String(s) => s.parse().unwrap(),
        v => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
    }
}

fn ffmpeg_decode(p: &Path, args: &[&str]) -> Vec<u8> {
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(p)
        .args(args)
        .arg("-")
        .output()
        .expect("run ffmpeg");
    assert!(o.status.success(), "ffmpeg: {}", stderr(&o));
    o.stdout
}

#[test]
fn snapshot_writes_a_png_of_the_requested_size() {
    let d = Dir::new();
    let p = d.file("sine.c", SINE);
    let out = d.path("shot.png");
    let o = clavm(&["snapshot", s(&p), "--at", "1", "--size", "640x360", "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("640x360"), "{}", stdout(&o));
    let img = read_png(&out);
    assert_eq!((img.width, img.height), (640, 360));
    assert_eq!(img.rgba.len(), 640 * 360 * 4);
    for (x, y) in [(0, 0), (639, 0), (0, 359), (639, 359)] {
        assert!(near(img.rgb(x, y), BACKGROUND, 2), "corner ({x}, {y}) is {:?}", img.rgb(x, y));
    }
    // The left channel's colour: the scope trace and the XY line (about 5000
    // pixels here).
    let teal = img.count(tealish);
    assert!(teal > 1000, "{teal} teal pixels");
    // The scope panel (top-left, up to x = 400, y = 160 at this size) has its
    // share: two cycles across ~390 px with a 0.9 px line (about 770 pixels).
    let mut teal_scope = 0;
    for y in 0..160 {
        for x in 0..400 {
            teal_scope += tealish(img.rgb(x, y)) as usize;
        }
    }
    assert!(teal_scope > 500, "{teal_scope} teal pixels in the scope panel");
    // Nothing left beside the PNG (it was written through a temporary file).
    d.assert_holds(&["shot.png", "sine.c"]);
}

#[test]
fn scope_stands_still_between_two_snapshots() {
    let d = Dir::new();
    let p = d.file("sine.c", SINE);
    let at = |t: &str| snapshot(&d, &p, &format!("at{t}.png"), &["--at", t, "--view", "scope", "--size", "800x400"]);
    let a = at("1.0");
    assert_eq!((a.width, a.height), (800, 400));
    let teal = a.count(tealish);
    assert!(teal > 1000, "{teal} teal pixels: no trace to compare");
    // 1.5 s is a whole number (150) of periods later.
    let b = at("1.5");
    let f = fraction_differing(&a, &b, 24);
    assert!(f < 0.002, "1.0 s vs 1.5 s: {:.3}% of pixels differ", f * 100.0);
    // 1.013 s is 1.3 periods later.
    let c = at("1.013");
    let f = fraction_differing(&a, &c, 24);
    assert!(f < 0.002, "1.0 s vs 1.013 s: {:.3}% of pixels differ", f * 100.0);

    // At 100 Hz a period is a whole 480 samples, so the rising zero crossing
    // always falls at the same place between two samples. At 97.3 Hz (493.3
    // samples) it falls elsewhere each time: only a trigger that interpolates
    // the crossing keeps the trace still (a whole-sample one moves it by up to
    // 0.8 px, 1.6 px vertically where the sine is steepest).
    let p = d.file("odd.c", &SINE.replace("100.0f", "97.3f"));
    let at = |t: &str| snapshot(&d, &p, &format!("odd{t}.png"), &["--at", t, "--view", "scope", "--size", "800x400"]);
    let a = at("1.0");
    for t in ["1.013", "1.2371", "1.5"] {
        let f = fraction_differing(&a, &at(t), 24);
        assert!(f < 0.002, "97.3 Hz, 1.0 s vs {t} s: {:.3}% of pixels differ", f * 100.0);
    }
}

#[test]
fn record_writes_a_video_with_sound_of_the_right_shape() {
    let d = Dir::new();
    let p = d.file("sine.c", SINE);
    let out = d.path("out.mp4");
    let o = clavm(&["record", s(&p), "-o", s(&out), "--seconds", "1", "--size", "320x180", "--fps", "30"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let streams = ffprobe_streams(&out);
    let video: Vec<_> = streams.iter().filter(|s| s["codec_type"] == "video").collect();
    let audio: Vec<_> = streams.iter().filter(|s| s["codec_type"] == "audio").collect();
    assert_eq!((video.len(), audio.len()), (1, 1), "{streams:?}");
    let v = video[0];
    assert_eq!((num(&v["width"]), num(&v["height"])), (320.0, 180.0), "{v}");
    assert_eq!(num(&v["nb_frames"]), 30.0, "{v}");
    assert!((num(&v["duration"]) - 1.0).abs() <= 0.05, "{v}");
    let a = audio[0];
    assert!((num(&a["duration"]) - 1.0).abs() <= 0.05, "{a}");
    d.assert_holds(&["out.mp4", "sine.c"]);
}

#[test]
fn video_frames_and_audio_stay_in_sync() {
    let d = Dir::new();
    let p = d.file("step.c", STEP);
    let out = d.path("step.mp4");
    let o = clavm(&[
        "record",
        s(&p),
        "-o",
        s(&out),
        "--seconds",
        "1",
        "--fps",
        "30",
        "--view",
        "meters",
        "--size",
        "320x240",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // The frames: count pixels of the level bars' colours. The DSP load bar at
    // the bottom of the panel is green too, so only the top 3/4 (the dB scale
    // from +6 down to about -50) is counted.
    let (w, h) = (320, 240);
    let raw = ffmpeg_decode(&out, &["-f", "rawvideo", "-pix_fmt", "rgb24"]);
    assert_eq!(raw.len() % (w * h * 3), 0);
    let frames: Vec<usize> = raw
        .chunks_exact(w * h * 3)
        .map(|f| {
            f[..w * (h * 3 / 4) * 3]
                .chunks_exact(3)
                .filter(|p| {
                    let c = [p[0], p[1], p[2]];
                    near(c, METER_LOW, 40) || near(c, METER_MID, 40) || near(c, METER_HIGH, 40)
                })
                .count()
        })
        .collect();
    assert_eq!(frames.len(), 30, "{frames:?}");
    // Frame k shows the audio before k/30 s: frame 14 (0.467 s) is silent,
    // frame 15 (0.5 s) holds 10 ms of the sine: a 300 ms RMS of about -20 dB.
    for (k, &n) in frames.iter().enumerate() {
        if k <= 14 {
            assert!(n < 50, "frame {k} (t = {:.4} s) shows a level: {n} pixels; all: {frames:?}", k as f64 / 30.0);
        } else {
            assert!(n > 2000, "frame {k} (t = {:.4} s) shows no level: {n} pixels; all: {frames:?}", k as f64 / 30.0);
        }
    }

    // The sound: the onset at 0.49 s (within 5 ms, the AAC coder smears it a little).
    let raw = ffmpeg_decode(&out, &["-f", "f32le", "-ac", "1", "-ar", "48000"]);
    let x: Vec<f32> = raw.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    assert!((x.len() as f64 / 48000.0 - 1.0).abs() <= 0.05, "{} samples", x.len());
    let onset = x.iter().position(|v| v.abs() > 0.05).expect("no sound at all") as f64 / 48000.0;
    assert!((onset - 0.49).abs() <= 0.005, "onset at {onset:.4} s");
    // And it is really the sine that follows, not a click.
    let loud = x[(0.6 * 48000.0) as usize..(0.9 * 48000.0) as usize].iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(loud > 0.5, "peak {loud} after the onset");
}

/// A failed command: exit `code`, `expect` in stderr, and the directory holds
/// only `left` afterwards.
fn assert_fails(o: &Output, code: i32, expect: &[&str], d: &Dir, left: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {e}");
    assert!(expect.iter().any(|x| e.contains(x)), "{expect:?} not in stderr: {e}");
    d.assert_holds(left);
}

#[test]
fn a_broken_patch_names_its_line_and_writes_nothing() {
    let d = Dir::new();
    let bad = d.file("bad.c", "void play(void) {\n  _out(0, yy);\n}\n");
    let out = d.path("out.png");
    let o = clavm(&["snapshot", s(&bad), "--size", "320x180", "-o", s(&out)]);
    assert_fails(&o, 1, &["bad.c:2:"], &d, &["bad.c"]);
    assert!(stderr(&o).contains("error"), "{}", stderr(&o));
    let out = d.path("out.mp4");
    let o = clavm(&["record", s(&bad), "--seconds", "1", "--size", "320x180", "-o", s(&out)]);
    assert_fails(&o, 1, &["bad.c:2:"], &d, &["bad.c"]);
}

#[test]
fn a_patch_that_crashes_or_hangs_mid_render_leaves_nothing_behind() {
    let d = Dir::new();
    let at_start = d.file("crash0.c", "void play(void) {\n  int *p = 0; *p = 1;\n  _out(0, Cycle(220));\n}\n");
    let later = d.file(
        "crash.c",
        "void play(void) {\n  if (_time() > 0.3) { int *p = 0; *p = 1; }\n  _out(0, Cycle(220));\n}\n",
    );
    let hang = d.file("hang.c", "void play(void) {\n  if (_time() > 0.3) { for (;;) {} }\n  _out(0, Cycle(220));\n}\n");
    let all = ["crash.c", "crash0.c", "hang.c"];
    for (patch, why) in [(&at_start, "crashed"), (&later, "crashed"), (&hang, "no progress")] {
        let out = d.path("out.mp4");
        let o = clavm(&["record", s(patch), "--seconds", "1", "--size", "320x180", "--timeout", "1", "-o", s(&out)]);
        // ffmpeg was killed with the process: nothing re-creates a file later.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_fails(&o, 1, &[why], &d, &all);
        let out = d.path("out.png");
        let o = clavm(&["snapshot", s(patch), "--at", "1", "--size", "320x180", "--timeout", "1", "-o", s(&out)]);
        assert_fails(&o, 1, &[why], &d, &all);
    }
}

#[test]
fn no_vulkan_is_a_clear_error() {
    let d = Dir::new();
    let p = d.file("sine.c", SINE);
    let env = [("VK_ICD_FILENAMES", "/nonexistent.json"), ("VK_DRIVER_FILES", "/nonexistent.json")];
    let out = d.path("out.png");
    let o = clavm_env(&["snapshot", s(&p), "--size", "320x180", "-o", s(&out)], &env);
    assert_fails(&o, 1, &["Vulkan"], &d, &["sine.c"]);
    let out = d.path("out.mp4");
    let o = clavm_env(&["record", s(&p), "--seconds", "1", "--size", "320x180", "-o", s(&out)], &env);
    assert_fails(&o, 1, &["Vulkan"], &d, &["sine.c"]);
}

#[test]
fn an_unwritable_output_path_is_a_clear_error() {
    let d = Dir::new();
    let p = d.file("sine.c", SINE);
    let o = clavm(&["snapshot", s(&p), "--size", "320x180", "-o", "/nonexistent-dir/x.png"]);
    assert_fails(&o, 1, &["cannot write"], &d, &["sine.c"]);
    assert!(stderr(&o).contains("/nonexistent-dir/x.png"), "{}", stderr(&o));
    assert!(!Path::new("/nonexistent-dir").exists());
}

#[test]
fn impossible_sizes_are_refused_by_the_argument_parser() {
    let d = Dir::new();
    let p = d.file("sine.c", SINE);
    let out = d.path("out.png");
    for size in ["0x10", "100000x10"] {
        let o = clavm(&["snapshot", s(&p), "--size", size, "-o", s(&out)]);
        assert_fails(&o, 2, &["--size"], &d, &["sine.c"]);
        assert!(stderr(&o).contains(size), "{}", stderr(&o));
    }
    let out = d.path("out.mp4");
    for size in ["0x10", "100000x10"] {
        let o = clavm(&["record", s(&p), "--seconds", "1", "--size", size, "-o", s(&out)]);
        assert_fails(&o, 2, &["--size"], &d, &["sine.c"]);
    }
}

#[test]
fn a_missing_ffmpeg_is_a_clear_error() {
    let d = Dir::new();
    let p = d.file("sine.c", SINE);
    let out = d.path("out.mp4");
    let o = clavm_env(
        &["record", s(&p), "--seconds", "1", "--size", "320x180", "-o", s(&out)],
        &[("CLAVM_FFMPEG", "/nonexistent")],
    );
    assert_fails(&o, 1, &["ffmpeg"], &d, &["sine.c"]);
}

#[test]
fn an_odd_record_size_is_refused() {
    let d = Dir::new();
    let p = d.file("sine.c", SINE);
    let out = d.path("out.mp4");
    let o = clavm(&["record", s(&p), "--seconds", "1", "--size", "321x180", "-o", s(&out)]);
    // A usage error: exit status 2 (README, "Exit status").
    assert_fails(&o, 2, &["even"], &d, &["sine.c"]);
    assert!(stderr(&o).contains("321"), "{}", stderr(&o));
}

#[test]
fn gpus_lists_the_devices_and_the_automatic_choice() {
    let o = clavm(&["gpus"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.lines().any(|l| l.starts_with("0: ") && l.contains("Vulkan 1.")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("auto: ")), "{out}");
}

#[test]
fn an_unknown_gpu_lists_the_devices() {
    let d = Dir::new();
    let p = d.file("sine.c", SINE);
    let out = d.path("out.png");
    let o = clavm(&["snapshot", s(&p), "--size", "320x180", "--gpu", "nonexistent-gpu-name", "-o", s(&out)]);
    assert_fails(&o, 1, &["llvmpipe", "devices are"], &d, &["sine.c"]);
    assert!(stderr(&o).contains("nonexistent-gpu-name"), "{}", stderr(&o));
}

#[test]
fn the_bar_tree_is_drawn_with_its_touched_bars_lit() {
    let d = Dir::new();
    let tree = d.file("t.bars", "base 440\nfifth 3/2 root W touched\nmaj3 5/4 fifth.S N\nmin3 6/5 fifth.E W\n");
    let patch = d.file("p.c", "void play(void) { _out(0, 0.0f); }\n");
    let out = d.path("bars.png");
    let o = clavm(&["snapshot", s(&patch), "--bars", s(&tree), "--view", "bars", "--size", "640x400", "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let img = read_png(&out);
    let lit = img.count(|c| near(c, [0xf2, 0xb8, 0x4b], 12));
    let idle = img.count(|c| near(c, [0x5b, 0x6b, 0x82], 12));
    assert!(lit > 500, "the touched bar is lit: {lit} px");
    assert!(idle > 500, "the others are drawn too: {idle} px");
    // A bad tree is refused with its line, and nothing is written.
    let bad = d.file("bad.bars", "base 440\nx 3/2 nowhere.S N\n");
    let out2 = d.path("no.png");
    let o = clavm(&["snapshot", s(&patch), "--bars", s(&bad), "--view", "bars", "-o", s(&out2)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.bars") && stderr(&o).contains("line 2"), "{}", stderr(&o));
    assert!(!out2.exists());
}
