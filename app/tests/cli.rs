//! End-to-end: the real `clavm` binary on real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use realfft::RealFftPlanner;

mod common;
use common::Dir;

const SR: f64 = 48000.0;

fn clavm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clavm")).args(args).output().expect("run clavm")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Renders `patch` mono for `seconds`; returns the samples.
fn render(dir: &Dir, patch: &Path, seconds: f64, extra: &[&str]) -> Vec<f32> {
    let out = dir.path("out.wav");
    let secs = seconds.to_string();
    let mut args = vec!["render", s(patch), "-o", s(&out), "--seconds", &secs, "--channels", "1"];
    args.extend_from_slice(extra);
    let o = clavm(&args);
    assert!(o.status.success(), "render failed: {}", stderr(&o));
    read_wav(&out)
}

fn read_wav(p: &Path) -> Vec<f32> {
    hound::WavReader::open(p).unwrap().samples::<f32>().map(|x| x.unwrap()).collect()
}

/// Frequency of the strongest FFT bin.
fn peak_hz(x: &[f32]) -> f64 {
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(x.len());
    let mut input: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(n, v)| {
            let w = 0.5 - 0.5 * (std::f64::consts::TAU * n as f64 / x.len() as f64).cos();
            *v as f64 * w
        })
        .collect();
    let mut spectrum = fft.make_output_vec();
    fft.process(&mut input, &mut spectrum).unwrap();
    let (bin, _) = spectrum.iter().enumerate().skip(1).max_by(|a, b| a.1.norm().total_cmp(&b.1.norm())).unwrap();
    bin as f64 * SR / x.len() as f64
}

#[test]
fn a_cycle_440_patch_peaks_at_440_hz() {
    let d = Dir::new();
    let p = d.file("a.c", "void play(void) { _out(0, 0.5f * Cycle(440)); }\n");
    let x = render(&d, &p, 1.0, &[]);
    assert_eq!(x.len(), 48000);
    assert!((peak_hz(&x) - 440.0).abs() <= 1.0, "{}", peak_hz(&x));
}

#[test]
fn renders_are_identical_to_the_byte_and_the_seed_matters() {
    let d = Dir::new();
    let p = d.file("n.c", "void play(void) { float h = Dust(30); _out(0, 0.3f * Uniform(1) * Onepole(h, 0.01f) + 0.2f * Normal(0.3f)); _out(1, Tri(3) * 0.1f); }\n");
    let bytes = |seed: &str, name: &str| {
        let out = d.path(name);
        let o = clavm(&["render", s(&p), "-o", s(&out), "--seconds", "1", "--seed", seed]);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(out).unwrap()
    };
    let a = bytes("7", "a.wav");
    assert_eq!(a, bytes("7", "b.wav"));
    assert_ne!(a, bytes("8", "c.wav"));
    // The default patch too (it uses delays, filters and many oscillators).
    let def = |name: &str| {
        let out = d.path(name);
        let o = clavm(&["render", "../assets/patches/default.c", "-o", s(&out), "--seconds", "2"]);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(out).unwrap()
    };
    assert_eq!(def("d1.wav"), def("d2.wav"));
}

#[test]
fn check_prints_gcc_style_diagnostics_and_sets_the_exit_status() {
    let d = Dir::new();
    let bad = d.file("bad.c", "void play(void) {\n  float x = 1;\n  _out(0, x + yy);\n}\n");
    let o = clavm(&["check", s(&bad)]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).trim(), format!("{}:3:15: error: 'yy' undeclared", s(&bad)));
    let good = d.file("good.c", "void play(void) { _out(0, Cycle(1)); }\n");
    let o = clavm(&["check", s(&good)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ok (1 stateful call sites"));
}

/// A bad patch: `check` and `render` both fail cleanly, with `expect` in the message, and write nothing.
fn assert_rejected(name: &str, bytes: &[u8], expect: &str) {
    let d = Dir::new();
    let p = d.path(name);
    std::fs::write(&p, bytes).unwrap();
    for cmd in ["check", "render"] {
        let out = d.path("out.wav");
        let o =
            if cmd == "check" { clavm(&[cmd, s(&p)]) } else { clavm(&[cmd, s(&p), "-o", s(&out), "--seconds", "0.5"]) };
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{name} {cmd}: {err}");
        assert!(err.contains(expect), "{name} {cmd}: expected '{expect}' in:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
        let first = err.lines().next().unwrap_or("");
        assert!(first.starts_with(&format!("{}:", s(&p))) || first.starts_with("clavm: error:"), "{first}");
        assert!(!out.exists(), "{name}: no output file for a failed render");
    }
}

#[test]
fn bad_patches_get_clear_errors_and_a_nonzero_exit() {
    assert_rejected("empty.c", b"", "the patch is empty");
    assert_rejected("garbage.c", &[0x7f, b'E', b'L', b'F', 0, 0, 0x90, 0xff], "not C source text");
    assert_rejected("huge.c", "int x;\n".repeat(1_500_000).as_bytes(), "10.5 MB");
    assert_rejected("noplay.c", b"void compiled(void) {}\n", "defines no `void play(void)`");
    assert_rejected("sig.c", b"int play(int x) { return x; }\n", "sig.c:1:5: error");
    assert_rejected(
        "undef.c",
        b"void play(void) { _out(0, wobble(3)); }\n",
        "undef.c:1:27: error: undefined symbol 'wobble'",
    );
    assert_rejected("inc.c", b"#include \"nowhere.h\"\nvoid play(void) {}\n", "include file 'nowhere.h' not found");
    assert_rejected("dev.c", b"#include \"/dev/urandom\"\nvoid play(void) {}\n", "not a regular file");
    assert_rejected(
        "arity.c",
        b"void play(void) {\n  _out(0, Phasor());\n}\n",
        "arity.c:2:11: error: Phasor() takes 1 argument (freq), 0 given",
    );
    assert_rejected(
        "deep.c",
        format!("void play(void) {{ _out(0, {}1{}); }}\n", "(".repeat(50_000), ")".repeat(50_000)).as_bytes(),
        "nested more than",
    );
}

#[test]
fn a_patch_that_recurses_forever_crashes_with_a_message_not_a_core_dump() {
    let d = Dir::new();
    let p = d.file(
        "rec.c",
        "float f(float x) { return f(x + 1) + 1; }\nvoid play(void) { _out(0, _time() > 0.25 ? f(0) : 0); }\n",
    );
    let out = d.path("out.wav");
    let o = clavm(&["render", s(&p), "-o", s(&out), "--seconds", "1"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("stack overflow: runaway recursion?"), "{err}");
    assert!(err.contains("t=0.2"), "names the time: {err}");
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(d.0.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "only the patch remains, no partial file: {leftovers:?}");
}

#[test]
fn a_patch_that_loops_forever_is_stopped_by_the_watchdog() {
    let d = Dir::new();
    let p = d.file("hang.c", "void play(void) { while (_time() > 0.1) {} _out(0, 0); }\n");
    let out = d.path("out.wav");
    let o = clavm(&["render", s(&p), "-o", s(&out), "--seconds", "1", "--timeout", "1"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("made no progress") && err.contains("infinite loop"), "{err}");
    assert!(!out.exists());
}

#[test]
fn an_edit_through_swap_keeps_phase_and_adds_no_step() {
    let d = Dir::new();
    let a = d.file("a.c", "void play(void) {\n  _out(0, 0.5f * Cycle(220));\n}\n");
    // Same oscillator, a line added above, a new (silent) oscillator, a constant changed.
    let b = d.file(
        "b.c",
        "// edited\nvoid play(void) {\n  float lfo = Cycle(3) * 0.0f;\n  _out(0, 0.5f * Cycle(220) + lfo);\n}\n",
    );
    let x = render(&d, &a, 1.0, &["--swap", &format!("0.5:{}", s(&b))]);
    for (n, y) in x.iter().enumerate() {
        let want = 0.5 * (std::f64::consts::TAU * 220.0 * n as f64 / SR).cos();
        assert!((*y as f64 - want).abs() < 1e-4, "frame {n}: {y} vs {want}");
    }
    // A pitch edit: the oscillator continues from its phase; no step larger than the new sine's slope.
    let c = d.file("c.c", "void play(void) {\n  _out(0, 0.5f * Cycle(330));\n}\n");
    let max_step = 0.5 * std::f64::consts::TAU * 330.0 / SR;
    let steepest = |x: &[f32]| (1..x.len()).map(|n| (x[n] - x[n - 1]).abs() as f64).fold(0.0, f64::max);
    // Without a fade the new pitch starts from the old phase: no step beyond the new sine's slope.
    let x = render(&d, &a, 1.0, &["--crossfade", "0", "--swap", &format!("0.5:{}", s(&c))]);
    assert!(steepest(&x) <= max_step * 1.01, "{}", steepest(&x));
    assert!((peak_hz(&x[24000..]) - 330.0).abs() < 4.0);
    // With the default fade, two pitches overlap for 10 ms; their sum may be up
    // to sqrt(2) as steep, far from a click (a jump to a random phase is a step of ~0.5).
    let x = render(&d, &a, 1.0, &["--swap", &format!("0.5:{}", s(&c))]);
    assert!(steepest(&x) <= max_step * 1.42, "{}", steepest(&x));
}

#[test]
fn a_broken_swap_keeps_the_old_sound_and_reports() {
    let d = Dir::new();
    let a = d.file("a.c", "void play(void) { _out(0, 0.5f * Cycle(440)); }\n");
    let b = d.file("b.c", "void play(void) { _out(0, Cycle(440) }\n");
    let out = d.path("out.wav");
    let o = clavm(&[
        "render",
        s(&a),
        "-o",
        s(&out),
        "--seconds",
        "1",
        "--channels",
        "1",
        "--swap",
        &format!("0.5:{}", s(&b)),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains(&format!("{}:1:", s(&b))) && err.contains("the previous patch kept playing"), "{err}");
    let x = read_wav(&out);
    assert!((peak_hz(&x[24000..]) - 440.0).abs() < 2.0);
    assert!(x[30000..].iter().any(|v| v.abs() > 0.4));
}

#[test]
fn output_stays_within_full_scale_and_nan_is_silenced_and_reported() {
    let d = Dir::new();
    let loud = d.file("loud.c", "void play(void) { _out(0, 1.7f * Cycle(100) * (0.5f + 0.5f * Cycle(0.5f))); }\n");
    let x = render(&d, &loud, 2.0, &[]);
    assert!(x.iter().all(|v| v.abs() <= 0.98), "max {}", x.iter().fold(0.0f32, |m, v| m.max(v.abs())));
    assert!(x.iter().fold(0.0f32, |m, v| m.max(v.abs())) > 0.9);

    let nan = d.file("nan.c", "void play(void) { _out(0, _time() >= 0.1 ? 0.0f / 0.0f : 0.25f * Cycle(200)); }\n");
    let out = d.path("nan.wav");
    let o = clavm(&["render", s(&nan), "-o", s(&out), "--seconds", "0.5", "--channels", "1"]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("t=0.1000s channel 0: NaN/Inf output silenced"), "{}", stderr(&o));
    let x = read_wav(&out);
    assert!(x[4799] != 0.0 && x[4800..].iter().all(|v| *v == 0.0));
}

#[test]
fn system_calls_from_a_patch_are_blocked_and_reported() {
    let d = Dir::new();
    let victim = d.file("victim.txt", "keep me");
    let p =
        d.file("rm.c", &format!("#include <stdio.h>\nvoid play(void) {{ remove(\"{}\"); _out(0, 0); }}\n", s(&victim)));
    let o = clavm(&["render", s(&p), "-o", s(&d.path("o.wav")), "--seconds", "0.1"]);
    assert!(o.status.success());
    assert!(victim.exists());
    assert!(stderr(&o).contains("called remove(): blocked"), "{}", stderr(&o));
}

#[test]
fn every_command_has_help() {
    for cmd in [vec!["--help"], vec!["render", "--help"], vec!["check", "--help"], vec!["bench", "--help"]] {
        let o = clavm(&cmd);
        assert!(o.status.success());
        assert!(String::from_utf8_lossy(&o.stdout).contains("Usage"));
    }
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let d = Dir::new();
    let p = d.file("a.c", "void play(void) {}\n");
    let o = d.path("o.wav");
    // Usage errors: status 2 (app/tests/bad_input.rs runs the whole table).
    for (args, expect) in [
        (vec!["--seconds", "0"], "invalid value '0' for '--seconds <SECONDS>': out of range (allowed: 0 < x <= 3600"),
        (vec!["--rate", "100"], "out of range (allowed: 8000..=384000)"),
        (vec!["--channels", "99"], "out of range (allowed: 1..=16)"),
        (vec!["--swap", "later:x.c"], "T must be a time"),
        (vec!["--param", "300=1"], "N must be 0..=127"),
    ] {
        let mut a = vec!["render", s(&p), "-o", s(&o)];
        a.extend(args);
        let out = clavm(&a);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains(expect), "{}", stderr(&out));
    }
    let out = clavm(&["render", s(&p), "-o", "/nonexistent-dir/x.wav", "--seconds", "0.1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot write /nonexistent-dir/x.wav"), "{}", stderr(&out));
}

#[test]
fn the_main_job_without_a_display_falls_back_to_a_render_and_says_why() {
    let d = Dir::new();
    let out = d.path("main.wav");
    let picture = d.path("main.png");
    let o = Command::new(env!("CARGO_BIN_EXE_clavm"))
        .args(["-o", s(&out), "--picture", s(&picture), "--seconds", "1"])
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no Wayland display"), "{}", stderr(&o));
    assert!(stderr(&o).contains("headless fallback"));
    assert_eq!(read_wav(&out).len(), 2 * 48000);
    // And a picture of the visuals at the end (a PNG of 1280x720).
    let png = std::fs::read(&picture).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 1280);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 720);
}

#[test]
fn every_example_patch_compiles_cleanly_and_renders_at_a_sane_level() {
    let d = Dir::new();
    let mut patches: Vec<PathBuf> = std::fs::read_dir("../assets/patches")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    patches.sort();
    assert!(patches.len() >= 11, "at least ten examples and the default: {patches:?}");
    for p in &patches {
        let o = clavm(&["check", s(p)]);
        assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
        assert!(stderr(&o).is_empty(), "{} has warnings:\n{}", p.display(), stderr(&o));
        let out = d.path("x.wav");
        let mut args = vec!["render", s(p), "-o", s(&out), "--seconds", "4"];
        // The bar patch plays a tree: give it one with a touched bar.
        if p.file_name().is_some_and(|n| n == "bars.c") {
            args.extend(["--bars", "../assets/bars/a-major-scale.bars"]);
        }
        // The polyphonic patch plays MIDI notes: give it the example chords.
        if p.file_name().is_some_and(|n| n == "poly.c") {
            args.extend(["--midi", "../assets/midi/chords.mid"]);
        }
        let o = clavm(&args);
        assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
        // No fault, no protection event: the examples must not lean on the safety net.
        assert!(stderr(&o).is_empty(), "{}:\n{}", p.display(), stderr(&o));
        let x = read_wav(&out);
        let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let rms = (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
        let mean = x.iter().map(|v| *v as f64).sum::<f64>() / x.len() as f64;
        assert!((0.05..0.95).contains(&peak), "{}: peak {peak}", p.display());
        assert!(rms > 0.01, "{}: rms {rms}", p.display());
        assert!(mean.abs() < 0.02, "{}: DC {mean}", p.display());
    }
}

#[test]
fn bench_prints_its_table_with_the_gcc_ratio() {
    let o =
        clavm(&["bench", "--patches", "../assets/patches", "--filter", "sine", "--compiles", "5", "--frames", "2000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    let row = table.lines().find(|l| l.starts_with("| sine.c")).unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells.len(), 11, "{row}");
    assert!(cells[9].ends_with('x'), "a TinyCC/gcc ratio: {row}");
    assert!(table.contains("Target: recompile under 1 ms p50"));
}

#[test]
fn a_crash_after_a_swap_names_the_patch_that_crashed() {
    let d = Dir::new();
    let ok = d.file("ok.c", "void play(void) { _out(0, 0.1f * Cycle(100)); }\n");
    let bad = d.file("crash.c", "void play(void) { int *p = 0; _out(0, (float)*p); }\n");
    let o =
        clavm(&["render", s(&ok), "-o", s(&d.path("o.wav")), "--seconds", "2", "--swap", &format!("1:{}", s(&bad))]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains(&format!("{}: the patch crashed at t=1.000s (SIGSEGV", s(&bad))), "{err}");
}

#[test]
fn check_warns_about_state_that_will_not_survive_a_recompile() {
    let d = Dir::new();
    let p = d.file(
        "g.c",
        "float level = 0.5f;\nvoid play(void) {\n  static int n;\n  _out(0, level * Cycle(100 + n));\n}\n",
    );
    let o = clavm(&["check", s(&p)]);
    assert!(o.status.success());
    let err = stderr(&o);
    let want = format!("{}:1:7: warning: global variable 'level' restarts at every recompile", s(&p));
    assert!(err.contains(&want), "{err}");
    assert!(err.contains(&format!("{}:3:3: warning: a static variable restarts", s(&p))), "{err}");
}

/// The amplitude of the `hz` component of `x` (a single-bin DFT).
fn amplitude_at(x: &[f32], hz: f64) -> f64 {
    let (mut re, mut im) = (0.0, 0.0);
    for (n, v) in x.iter().enumerate() {
        let w = std::f64::consts::TAU * hz * n as f64 / SR;
        re += *v as f64 * w.cos();
        im += *v as f64 * w.sin();
    }
    2.0 * (re * re + im * im).sqrt() / x.len() as f64
}

#[test]
fn the_bar_patch_plays_the_touched_bars_of_a_tree_and_bad_trees_are_refused() {
    let d = Dir::new();
    let tree = d.file("t.bars", "base 440\nfifth 3/2 root W touched\nmaj3 5/4 fifth.S N\nmin3 6/5 fifth.E W touched\n");
    let x = render(&d, Path::new("../assets/patches/bars.c"), 1.0, &["--bars", s(&tree)]);
    let x = &x[4800..]; // past the attack
    let (e5, g5, gs5) = (amplitude_at(x, 660.0), amplitude_at(x, 792.0), amplitude_at(x, 825.0));
    assert!(e5 > 0.05 && g5 > 0.05, "touched bars sound: 660 Hz {e5}, 792 Hz {g5}");
    assert!(gs5 < e5 / 20.0, "an untouched bar is silent: 825 Hz {gs5}");
    // No tree: the patch is silent, not broken.
    let x = render(&d, Path::new("../assets/patches/bars.c"), 0.5, &[]);
    assert!(x.iter().all(|v| v.abs() < 1e-6));
    let bad = d.file("bad.bars", "base 440\nloop 3/2 loop.S N\n");
    let out = d.path("x.wav");
    let o = clavm(&["render", "../assets/patches/bars.c", "-o", s(&out), "--bars", s(&bad)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad.bars") && stderr(&o).contains("line"), "{}", stderr(&o));
}

/// The names in `d` of temporary files for `out.wav`.
fn partials(d: &Dir) -> Vec<String> {
    d.names().into_iter().filter(|n| n.starts_with(".out.wav.partial-")).collect()
}

/// Starts a long, cheap render (10 minutes of silence at 8 kHz, 16-bit mono:
/// at most 9.6 MB) and waits until its temporary file has samples in it.
fn start_long_render(d: &Dir, patch: &Path) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let out = d.path("out.wav");
    let mut child = Command::new(env!("CARGO_BIN_EXE_clavm"))
        // Its own process group, as a shell's job: Ctrl-C signals the group.
        .process_group(0)
        .args(["render", s(patch), "-o", s(&out), "--seconds", "600", "--rate", "8000", "--channels", "1"])
        .args(["--format", "s16"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start clavm");
    // Bounded wait (not a timing assertion): the file must show up.
    for _ in 0..600 {
        let growing = partials(d).iter().any(|n| std::fs::metadata(d.path(n)).is_ok_and(|m| m.len() > 4096));
        if growing {
            return child;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("no temporary file appeared in {:?}", d.names());
}

#[test]
fn an_interrupted_render_leaves_nothing_and_dies_of_its_signal() {
    use std::os::unix::process::ExitStatusExt;
    // (signal, to the whole group as Ctrl-C at a terminal does, or to clavm alone as `kill` does)
    for (sig, group) in [(libc::SIGINT, true), (libc::SIGINT, false), (libc::SIGTERM, false)] {
        let d = Dir::new();
        let p = d.file("p.c", "void play(void) { _out(0, 0.2f * Cycle(440)); }\n");
        let mut child = start_long_render(&d, &p);
        let pid = child.id() as i32;
        // SAFETY: kill(2) on our own child (or its group, which it leads), still
        // running: not yet waited for.
        assert_eq!(unsafe { libc::kill(if group { -pid } else { pid }, sig) }, 0);
        let status = child.wait().unwrap();
        // Killed by the same signal, as the shell expects (it shows 130 / 143).
        assert_eq!(status.signal(), Some(sig), "{status:?}");
        d.assert_holds(&["p.c"]);
    }
}

#[test]
fn after_a_sigkill_the_next_render_of_the_same_output_removes_the_leftover() {
    let d = Dir::new();
    let p = d.file("p.c", "void play(void) { _out(0, 0.2f * Cycle(440)); }\n");
    let mut child = start_long_render(&d, &p);
    child.kill().unwrap();
    child.wait().unwrap();
    let left = partials(&d);
    assert_eq!(left.len(), 1, "SIGKILL cannot be handled: the file stays until the next run: {left:?}");
    // Another file of the same shape whose process is alive (ours) is kept.
    let alive = format!(".out.wav.partial-{}-abcdef.wav", std::process::id());
    std::fs::write(d.path(&alive), b"").unwrap();
    let out = d.path("out.wav");
    let o = clavm(&["render", s(&p), "-o", s(&out), "--seconds", "0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    d.assert_holds(&[&alive, "out.wav", "p.c"]);
}

#[test]
fn planted_links_are_never_written_through() {
    let d = Dir::new();
    let p = d.file("p.c", "void play(void) { _out(0, 0.2f * Cycle(440)); }\n");
    let victim = d.file("victim", "precious");
    // The old predictable names, for the next pids the system will hand out.
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid").unwrap().trim().parse().unwrap();
    for pid in last + 1..last + 200 {
        std::os::unix::fs::symlink(&victim, d.path(&format!(".out.wav.partial-{pid}"))).unwrap();
    }
    // And the output itself: a link to the victim is replaced, not followed.
    let out = d.path("out.wav");
    std::os::unix::fs::symlink(&victim, &out).unwrap();
    let o = clavm(&["render", s(&p), "-o", s(&out), "--seconds", "0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(&out).unwrap().file_type().is_file());
    assert_eq!(read_wav(&out).len(), 9600);
    // A dangling link at the output creates nothing where it points.
    let out2 = d.path("out2.wav");
    std::os::unix::fs::symlink(d.path("created-through-link"), &out2).unwrap();
    let o = clavm(&["render", s(&p), "-o", s(&out2), "--seconds", "0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!d.path("created-through-link").exists());
    assert!(std::fs::symlink_metadata(&out2).unwrap().file_type().is_file());
}

/// Makes a FIFO at `p`.
fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(s(p)).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

fn is_fifo(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(p).unwrap().file_type().is_fifo()
}

#[test]
fn devices_fifos_and_stdout_are_streamed_to_never_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let d = Dir::new();
    let p = d.file("p.c", "void play(void) { _out(0, 0.5f); }\n");
    // A FIFO: a player on the other end gets the WAV, the FIFO stays one.
    let fifo = d.path("fifo");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let o = clavm(&["render", s(&p), "-o", s(&fifo), "--seconds", "0.5", "--channels", "1", "--format", "s16"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = reader.join().unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[36..44], b"data\xff\xff\xff\xff", "the length is left open");
    assert_eq!(bytes.len(), 44 + 24000 * 2);
    let s16 = i16::from_le_bytes([bytes[44], bytes[45]]);
    assert_eq!(s16, (0.5f32 * 32767.0).round() as i16);
    assert!(is_fifo(&fifo));
    // stdout: the WAV alone, the summary on stderr.
    let o = clavm(&["render", s(&p), "-o", "-", "--seconds", "0.25", "--channels", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout.len(), 46 + 12000 * 2 * 4, "float WAV header and samples only");
    assert!(stderr(&o).contains("-: 0.250 s"), "{}", stderr(&o));
    // /dev/stdout when stdout is a regular file: written there, and the link
    // in /dev stays (a rename would have replaced it).
    let captured = d.path("captured.wav");
    let o = Command::new(env!("CARGO_BIN_EXE_clavm"))
        .args(["render", s(&p), "-o", "/dev/stdout", "--seconds", "0.25", "--channels", "1"])
        .stdout(std::fs::File::create(&captured).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&captured).unwrap().len(), 46 + 12000 * 4);
    assert!(std::fs::symlink_metadata("/dev/stdout").unwrap().file_type().is_symlink());
    std::fs::remove_file(&captured).unwrap();
    // /dev/null, if it is the device here (never write to a broken one).
    let null = Path::new("/dev/null");
    if std::fs::metadata(null).unwrap().file_type().is_char_device() {
        let o = clavm(&["render", s(&p), "-o", "/dev/null", "--seconds", "0.1"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(std::fs::metadata(null).unwrap().file_type().is_char_device(), "/dev/null is still the device");
    }
    // A video needs seeking: refused, and the FIFO is left alone.
    let o = clavm(&["record", s(&p), "-o", s(&fifo), "--seconds", "0.1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let fifo_mp4 = d.path("fifo.mp4");
    mkfifo(&fifo_mp4);
    let o = clavm(&["record", s(&p), "-o", s(&fifo_mp4), "--seconds", "0.1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("it is a FIFO, and a video is written with seeking"), "{}", stderr(&o));
    assert!(is_fifo(&fifo_mp4));
    d.assert_holds(&["fifo", "fifo.mp4", "p.c"]);
}

#[test]
fn an_output_that_is_an_input_is_refused_before_anything_is_written() {
    let d = Dir::new();
    let text = "void play(void) { _out(0, 0.5f); }\n";
    let p = d.file("p.c", text);
    let q = d.file("q.c", text);
    let tree = d.file("t.bars", "base 440\n");
    let link = d.path("link.wav");
    std::os::unix::fs::symlink(&p, &link).unwrap();
    for args in [
        vec!["render", s(&p), "-o", s(&p)],
        vec!["render", s(&p), "-o", s(&link)],
        vec!["render", s(&p), "-o", s(&q), "--swap", &format!("0.1:{}", s(&q))],
        vec!["render", s(&p), "-o", s(&tree), "--bars", s(&tree)],
        vec!["snapshot", s(&p), "-o", s(&p)],
        vec!["record", s(&p), "-o", s(&p)],
    ] {
        let o = clavm(&args);
        let err = stderr(&o);
        assert!(matches!(o.status.code(), Some(1) | Some(2)), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("same file as the input") || err.contains(".mp4, .mkv or .mov"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
    assert_eq!(std::fs::read_to_string(&q).unwrap(), text);
    assert_eq!(std::fs::read_to_string(&tree).unwrap(), "base 440\n");
    d.assert_holds(&["link.wav", "p.c", "q.c", "t.bars"]);
}

#[test]
fn in_a_shared_sticky_folder_another_users_links_and_files_are_left_alone() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let d = Dir::new();
    let p = d.file("p.c", "void play(void) { _out(0, 0.2f * Cycle(440)); }\n");
    let victim = d.file("victim", "precious");
    let shared = d.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    // SAFETY: geteuid(2) cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    // As root the planted files belong to `nobody`, as another user's would.
    let plant = |path: &Path| {
        if root {
            let c = std::ffi::CString::new(s(path)).unwrap();
            // SAFETY: lchown(2) with a valid path; changes the link itself.
            assert_eq!(unsafe { libc::lchown(c.as_ptr(), 65534, 65534) }, 0);
        }
    };
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid").unwrap().trim().parse().unwrap();
    for pid in last + 1..last + 100 {
        let link = shared.join(format!(".out.wav.partial-{pid}"));
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        plant(&link);
    }
    let out = shared.join("out.wav");
    std::os::unix::fs::symlink(&victim, &out).unwrap();
    plant(&out);
    // A look-alike leftover of a dead process (no pid can be 2^22 + 1).
    let lookalike = shared.join(".out.wav.partial-4194305-abcdef.wav");
    std::fs::write(&lookalike, b"").unwrap();
    plant(&lookalike);
    let o = clavm(&["render", s(&p), "-o", s(&out), "--seconds", "0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let meta = std::fs::symlink_metadata(&out).unwrap();
    assert!(meta.file_type().is_file());
    // SAFETY: geteuid(2) cannot fail.
    assert_eq!(meta.uid(), unsafe { libc::geteuid() });
    assert_eq!(read_wav(&out).len(), 9600);
    // Another user's file is never removed; one of ours, of a dead run, is.
    assert_eq!(lookalike.exists(), root, "root: nobody's file kept; otherwise our own leftover removed");
}

#[test]
fn pictures_of_any_allowed_size_are_drawn_without_a_panic() {
    // The layout once panicked below about 50x50 (issue 13: no CLI input
    // reaches a panic). Lavapipe draws them: no GPU needed.
    let d = Dir::new();
    let p = d.file("p.c", "void play(void) { _out(0, 0.2f * Cycle(440)); }\n");
    for size in ["1x1", "8x8", "48x48", "100x20", "20x100"] {
        let out = d.path("x.png");
        let o = clavm(&["snapshot", s(&p), "--at", "0.1", "--size", size, "-o", s(&out)]);
        let err = stderr(&o);
        assert!(o.status.success(), "{size}: {err}");
        assert!(!err.contains("panicked"), "{size}: {err}");
        assert_eq!(&std::fs::read(&out).unwrap()[1..4], b"PNG");
    }
}
