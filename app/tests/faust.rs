//! Faust's generated C (issue 14, part 4): the shipped example, translated by
//! `faust -lang c` at test time, renders in CLAVM as it does compiled by gcc;
//! `clavm FILE.dsp` plays it; live, it plays, survives an edit and a crash of
//! its worker (the backup goes on with the same DSP state, which lives in the
//! state memory's heap), and `malloc` in `play()` is refused.
//!
//! Every test is skipped, with the reason printed, where `faust` or `gcc` is
//! not installed (scripts/setup.sh installs both).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clavm_audio::builtins::api::FaultKind;
use clavm_audio::engine::Param;
use clavm_audio::live::{LiveConfig, LiveEngine, LiveEvent, LiveProcessor};
use clavm_audio::PatchSource;

/// The audio callback runs under `assert_no_alloc` in debug builds, as in tests/live.rs.
#[cfg(debug_assertions)]
#[global_allocator]
static ALLOC_GUARD: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

const SR: f64 = 48000.0;
const BLOCK: usize = 128;
/// Live tests measure timing: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/faust/pluck_reverb.dsp")
}

fn installed(tool: &str) -> bool {
    let ok = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: `{tool}` is not installed (scripts/setup.sh installs it)");
    }
    ok
}

/// `faust -lang c -cn mydsp` of `dsp` into `dir/mydsp.c`.
fn faust(dsp: &Path, dir: &Path) {
    let out = Command::new("faust")
        .args(["-lang", "c", "-cn", "mydsp", "-o"])
        .arg(dir.join("mydsp.c"))
        .arg(dsp)
        .output()
        .expect("run faust");
    assert!(out.status.success(), "faust: {}", String::from_utf8_lossy(&out.stderr));
}

/// The usual few lines of wrapper (docs/PATCH_API.md, "Faust"), for
/// `channels` outputs; `extra` goes at the start of `play()`.
fn wrapper(channels: usize, extra: &str) -> String {
    let outs: String = (0..channels).map(|c| format!("    _out({c}, out[{c}]);\n")).collect();
    format!(
        "#define max(a, b) ((a) < (b) ? (b) : (a))\n\
         #define min(a, b) ((a) < (b) ? (a) : (b))\n\
         #include <faust/gui/CInterface.h>\n\
         #include \"mydsp.c\"\n\
         static mydsp *dsp;\n\
         void compiled(void) {{\n    dsp = newmydsp();\n    initmydsp(dsp, (int)_samplerate());\n}}\n\
         void play(void) {{\n{extra}    float out[16] = {{0}};\n    float *outs[16];\n\
         for (int i = 0; i < 16; i++) outs[i] = &out[i];\n    computemydsp(dsp, 1, 0, outs);\n{outs}}}\n"
    )
}

/// A tiny host for the same wrapper under gcc: the API it uses, then
/// `seconds` of frames written as raw interleaved floats to stdout.
const GCC_MAIN: &str = r#"
#include <stdio.h>
static float frame_out[16];
double _samplerate(void) { return 48000.0; }
void _out(int c, float v) { if (c >= 0 && c < 16) frame_out[c] += v; }
float _in(int c) { (void)c; return 0.0f; }
#include "wrapper.c"
int main(int argc, char **argv) {
    long frames = atol(argv[1]);
    int channels = atoi(argv[2]);
    compiled();
    for (long n = 0; n < frames; n++) {
        for (int c = 0; c < 16; c++) frame_out[c] = 0.0f;
        play();
        fwrite(frame_out, sizeof(float), channels, stdout);
    }
    return 0;
}
"#;

fn clavm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clavm")).args(args).env_remove("WAYLAND_DISPLAY").output().expect("run clavm")
}

fn wav(path: &Path) -> Vec<f32> {
    let mut r = hound::WavReader::open(path).unwrap();
    assert_eq!(r.spec().sample_rate, 48000);
    assert_eq!(r.spec().channels, 2);
    r.samples::<f32>().map(Result::unwrap).collect()
}

fn assert_matches(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let (at, diff) = got.iter().zip(want).map(|(a, b)| (a - b).abs()).enumerate().fold((0, 0.0f32), |m, (i, d)| {
        if d > m.1 {
            (i, d)
        } else {
            m
        }
    });
    let peak = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    eprintln!("{what}: largest difference {diff:e} at sample {at}, reference peak {peak}");
    assert!(peak > 0.05, "the reference makes sound");
    assert!(diff <= 1e-4, "{what}: differs from gcc by {diff} at sample {at}");
}

#[test]
fn the_faust_example_renders_as_gcc_compiles_it() {
    if !installed("faust") || !installed("gcc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    faust(&example(), dir.path());
    std::fs::write(dir.path().join("wrapper.c"), wrapper(2, "")).unwrap();
    std::fs::write(dir.path().join("main.c"), GCC_MAIN).unwrap();
    let exe = dir.path().join("reference");
    let cc = Command::new("gcc")
        .args(["-O0", "-ffp-contract=off", "-o"])
        .arg(&exe)
        .arg(dir.path().join("main.c"))
        .arg("-lm")
        .output()
        .unwrap();
    assert!(cc.status.success(), "gcc: {}", String::from_utf8_lossy(&cc.stderr));
    let frames = 3 * 48000;
    let raw = Command::new(&exe).args([frames.to_string(), "2".into()]).output().unwrap();
    assert!(raw.status.success());
    let want: Vec<f32> = raw.stdout.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    assert_eq!(want.len(), frames * 2);

    // The wrapper as a patch file, rendered by CLAVM (in its sandboxed child).
    let out = dir.path().join("clavm.wav");
    let patch = dir.path().join("wrapper.c");
    let r = clavm(&["render", patch.to_str().unwrap(), "-o", out.to_str().unwrap(), "--seconds", "3"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_matches("clavm render wrapper.c", &wav(&out), &want);

    // `clavm FILE.dsp` headless: translated, wrapped and rendered by the app itself.
    let out = dir.path().join("main.wav");
    let png = dir.path().join("main.png");
    let dsp = example();
    let r = clavm(&[
        dsp.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--picture",
        png.to_str().unwrap(),
        "--seconds",
        "3",
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{err}");
    assert!(err.contains("translated by faust"), "{err}");
    assert_matches("clavm FILE.dsp", &wav(&out), &want);
}

#[test]
fn a_dsp_without_faust_installed_is_one_line_saying_how_to_install_it() {
    let dsp = example();
    let r = Command::new(env!("CARGO_BIN_EXE_clavm"))
        .arg(&dsp)
        .env_remove("WAYLAND_DISPLAY")
        .env("CLAVM_FAUST", "/nonexistent/faust")
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(dsp.to_str().unwrap()) && err.contains("apt-get install faust"), "{err}");
}

#[test]
fn a_broken_dsp_is_one_line_naming_the_file() {
    if !installed("faust") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dsp = dir.path().join("broken.dsp");
    std::fs::write(&dsp, "process = +(;\n").unwrap();
    let r = clavm(&[dsp.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("clavm: {}: faust: ", dsp.display())), "{err}");
}

fn realtime() {
    // SAFETY: sched_setscheduler on the calling thread with a valid param.
    unsafe {
        let param = libc::sched_param { sched_priority: 60 };
        libc::sched_setscheduler(0, libc::SCHED_FIFO, &param);
    }
}

struct Session {
    engine: LiveEngine,
    p: LiveProcessor,
    events: Vec<LiveEvent>,
    dir: tempfile::TempDir,
}

impl Session {
    /// An engine (mono) with `mydsp.c` translated from `dsp` in its folder.
    fn new(dsp: &str) -> Session {
        realtime();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.dsp");
        std::fs::write(&file, dsp).unwrap();
        faust(&file, dir.path());
        let cfg = LiveConfig::new(SR, 1, env!("CARGO_BIN_EXE_clavm").into());
        let (engine, p) = LiveEngine::start(cfg).expect("live engine starts");
        Session { engine, p, events: Vec::new(), dir }
    }

    fn play(&mut self, seconds: f64) -> Vec<f32> {
        let blocks = (seconds * SR / BLOCK as f64).round() as usize;
        let mut out = vec![0.0f32; blocks * BLOCK];
        let period = Duration::from_secs_f64(BLOCK as f64 / SR);
        let mut next = Instant::now();
        for b in out.chunks_mut(BLOCK) {
            self.p.process(&[], b);
            while let Some(e) = self.engine.next_event(Duration::ZERO) {
                self.events.push(e);
            }
            next += period;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        out
    }

    /// Submits `text` (its includes resolved in the session's folder) and plays until `version` plays.
    fn submit(&mut self, text: &str, version: u64) {
        let source = PatchSource { name: "faust.c".into(), text: text.into(), dir: Some(self.dir.path().into()) };
        self.engine.submit(source);
        self.play_until(|e| matches!(e, LiveEvent::Playing { version: v, .. } if *v == version));
        assert!(self.has(|e| matches!(e, LiveEvent::Playing { version: v, .. } if *v == version)), "{}", self.all());
    }

    fn play_until(&mut self, f: impl Fn(&LiveEvent) -> bool) -> Vec<f32> {
        let mut out = Vec::new();
        let t0 = Instant::now();
        while !self.has(&f) && t0.elapsed() < Duration::from_secs(5) {
            out.extend(self.play(0.01));
        }
        out
    }

    fn has(&self, f: impl Fn(&LiveEvent) -> bool) -> bool {
        self.events.iter().any(f)
    }

    fn count(&self, f: impl Fn(&LiveEvent) -> bool) -> usize {
        self.events.iter().filter(|e| f(e)).count()
    }

    fn all(&self) -> String {
        self.events.iter().map(|e| e.describe(SR)).collect::<Vec<_>>().join("\n")
    }
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// A Faust sine: its phase is DSP state, in the heap `compiled()` allocated.
const OSC: &str = "import(\"stdfaust.lib\");\nprocess = os.oscsin(440) * 0.5;\n";

/// Crashes the worker once for each new value of `_i(0)` (the count it has
/// crashed for is kept in the state, so the version that covers does not).
const CRASH_ON_I0: &str = "    if (_i(0) > *_int(0)) { *_int(0) = _i(0); *(volatile int *)0 = 1; }\n";

#[test]
fn live_the_faust_patch_plays_survives_an_edit_and_a_crash_with_its_state() {
    if !installed("faust") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = Session::new(OSC);
    s.submit(&wrapper(1, CRASH_ON_I0), 1);
    s.play(0.05);
    let x = s.play(0.3);
    assert!((rms(&x) - 0.5 / 2f64.sqrt()).abs() < 0.02, "the Faust sine plays: rms {}\n{}", rms(&x), s.all());

    // An edit: a new version, its own DSP, crossfaded; the sound goes on.
    s.submit(&format!("// edited\n{}", wrapper(1, CRASH_ON_I0)), 2);
    let y = s.play(0.3);
    assert!(rms(&y) > 0.3, "the edited version plays: rms {}\n{}", rms(&y), s.all());

    // Its worker crashes: the backup (version 1) covers in the same block,
    // then a twin of version 1 is loaded as the new backup.
    s.engine.set_param(Param::I(0, 1));
    s.play_until(|e| matches!(e, LiveEvent::BackupReady { version: 1, .. }));
    assert!(s.has(|e| matches!(e, LiveEvent::WorkerFailed { version: 2, now_playing: Some(1), .. })), "{}", s.all());
    assert!(s.has(|e| matches!(e, LiveEvent::BackupReady { version: 1, .. })), "{}", s.all());
    s.play(0.1);

    // Version 1's worker crashes: the twin plays on from the DSP state in the
    // shared heap, so the sine goes on without a break in its phase.
    let failures = s.count(|e| matches!(e, LiveEvent::WorkerFailed { .. }));
    let before = s.play(0.05);
    s.engine.set_param(Param::I(0, 2));
    let mut z = before;
    z.extend(s.play(0.3));
    assert_eq!(s.count(|e| matches!(e, LiveEvent::WorkerFailed { .. })), failures + 1, "{}", s.all());
    assert!(s.has(|e| matches!(e, LiveEvent::WorkerFailed { version: 1, now_playing: Some(1), .. })), "{}", s.all());
    let max_step = 0.5 * std::f64::consts::TAU * 440.0 / SR * 1.05;
    let worst = z.windows(2).map(|w| (w[1] - w[0]).abs() as f64).fold(0.0, f64::max);
    assert!(worst <= max_step, "a step of {worst} (> {max_step}): the DSP restarted or stopped\n{}", s.all());
    assert!(rms(&z[z.len() / 2..]) > 0.3, "it plays on\n{}", s.all());
    s.engine.shutdown();
}

#[test]
fn live_malloc_in_play_is_refused_and_reported_while_the_sound_goes_on() {
    if !installed("faust") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = Session::new(OSC);
    let grab = "    float *p = malloc(4096);\n    if (p) p[0] = 1.0f;\n";
    s.submit(&wrapper(1, grab), 1);
    let x = s.play(0.3);
    let fault = |e: &LiveEvent| matches!(e, LiveEvent::Fault { kind: FaultKind::AllocInPlay, detail: 4096, .. });
    assert!(s.has(fault), "{}", s.all());
    assert!(rms(&x[x.len() / 2..]) > 0.3, "the sound goes on: rms {}", rms(&x));
    s.engine.shutdown();
}
