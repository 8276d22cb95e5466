//! End-to-end: every offline path runs patch code in a sandboxed child
//! (`clavm __offline`). The hostile corpus' escape patches (inline-asm system
//! calls) are rendered through `render`, `snapshot` and the headless
//! fallback; nothing may escape, and the sound must go on. A control runs
//! some of them in-process (unsandboxed) to show the attacks do work there.

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use clavm_audio::engine::{EngineConfig, Param};
use clavm_audio::render::{self, Progress, RenderSpec, Swap};
use clavm_audio::{Frames, PatchSource};

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

/// The paths a corpus patch aims at, made unique to this test run (they
/// still start with /tmp/clavm-escape, as the corpus' rule says).
struct Target {
    prefix: String,
}

impl Target {
    fn new(test: &str) -> Target {
        Target { prefix: format!("/tmp/clavm-escape-{}-{test}-", std::process::id()) }
    }
    fn path(&self, what: &str) -> PathBuf {
        PathBuf::from(format!("{}{what}", self.prefix))
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        for what in ["create", "unlink", "unlink.moved", "connect.sock", "passwd"] {
            let _ = std::fs::remove_file(self.path(what));
        }
    }
}

/// The corpus patch `escape-NAME.c`, aimed at `target`, written into `dir`.
fn corpus_patch(dir: &Dir, name: &str, target: &Target) -> PathBuf {
    let text = std::fs::read_to_string(format!("../assets/hostile/patches/escape-{name}.c")).unwrap();
    let lines: Vec<&str> = text.lines().take(2).collect();
    assert!(lines[0].starts_with("// finding: #12"), "{name}: {}", lines[0]);
    assert_eq!(lines[1], "// expect: denied", "{name}");
    // The header the corpus patches share, beside the copy.
    dir.file("raw_syscall.h", &std::fs::read_to_string("../assets/hostile/patches/raw_syscall.h").unwrap());
    dir.file(&format!("escape-{name}.c"), &text.replace("/tmp/clavm-escape-", &target.prefix))
}

/// Channels 0 and 1 of a stereo f32 WAV.
fn read_stereo(p: &Path) -> (Vec<f32>, Vec<f32>) {
    let r = hound::WavReader::open(p).unwrap();
    assert_eq!(r.spec().channels, 2);
    let x: Vec<f32> = r.into_samples::<f32>().map(|v| v.unwrap()).collect();
    (x.iter().step_by(2).copied().collect(), x.iter().skip(1).step_by(2).copied().collect())
}

/// The patch's own sound is there (0.2 * Cycle(440) on channel 0), and
/// channel 1, where the patch reports its attack, says it failed.
fn assert_sound_went_on_and_attack_failed(wav: &Path, seconds: f64) {
    let (left, right) = read_stereo(wav);
    assert_eq!(left.len(), (seconds * SR).round() as usize);
    let peak = left.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!((peak - 0.2).abs() < 0.01, "a 0.2 sine: peak {peak}");
    let rises = left.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count() as f64;
    assert!((rises / seconds - 440.0).abs() <= 3.0, "440 Hz: {} rises per second", rises / seconds);
    assert!(right.iter().all(|v| *v == 0.0), "channel 1 says the attack succeeded");
}

/// `clavm render` of a corpus patch; asserts it ended well with the patch's sound.
fn render_denied(dir: &Dir, patch: &Path, extra: &[&str]) -> Output {
    let out = dir.path("out.wav");
    let mut args = vec!["render", s(patch), "-o", s(&out), "--seconds", "0.5"];
    args.extend_from_slice(extra);
    let o = clavm(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert_sound_went_on_and_attack_failed(&out, 0.5);
    o
}

/// The same patch rendered in this process, unsandboxed: what channel 1
/// says (0.5 when the attack got out).
fn in_process_escape_signal(patch: &Path, params: Vec<Param>) -> f32 {
    let spec = RenderSpec {
        patch: PatchSource::from_file(patch).unwrap(),
        length: Frames(256),
        config: EngineConfig::new(SR, 2),
        swaps: vec![],
        params,
        block: 64,
        input: None,
        samples: Vec::new(),
        notes: Vec::new(),
    };
    let r = render::render(&spec, &Progress::new()).unwrap();
    r.samples[r.samples.len() - 1]
}

#[test]
fn creating_a_file_is_denied_in_render_and_snapshot() {
    let d = Dir::new();
    let t = Target::new("create");
    let p = corpus_patch(&d, "create", &t);
    render_denied(&d, &p, &[]);
    assert!(!t.path("create").exists(), "render let the patch create a file");
    let png = d.path("x.png");
    let o = clavm(&["snapshot", s(&p), "--at", "0.5", "-o", s(&png), "--size", "64x64"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");
    assert!(!t.path("create").exists(), "snapshot let the patch create a file");
    // Control: unsandboxed, the same attack works.
    assert_eq!(in_process_escape_signal(&p, vec![]), 0.5);
    assert!(t.path("create").exists());
}

#[test]
fn deleting_a_file_is_denied() {
    let d = Dir::new();
    let t = Target::new("unlink");
    std::fs::write(t.path("unlink"), b"keep me").unwrap();
    let p = corpus_patch(&d, "unlink", &t);
    render_denied(&d, &p, &[]);
    assert_eq!(std::fs::read(t.path("unlink")).unwrap(), b"keep me");
    assert!(!t.path("unlink.moved").exists());
    assert_eq!(in_process_escape_signal(&p, vec![]), 0.5, "control");
    assert!(!t.path("unlink").exists(), "control");
}

#[test]
fn connecting_to_a_local_socket_is_denied() {
    let d = Dir::new();
    let t = Target::new("connect");
    let listener = UnixListener::bind(t.path("connect.sock")).unwrap();
    listener.set_nonblocking(true).unwrap();
    let p = corpus_patch(&d, "connect", &t);
    render_denied(&d, &p, &[]);
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the patch connected: {accepted:?}"
    );
    assert_eq!(in_process_escape_signal(&p, vec![]), 0.5, "control");
    assert!(listener.accept().is_ok(), "control");
}

#[test]
fn starting_a_program_is_denied_in_render_and_the_headless_fallback() {
    let d = Dir::new();
    let t = Target::new("exec");
    let p = corpus_patch(&d, "exec", &t);
    render_denied(&d, &p, &[]);
    let (wav, png) = (d.path("main.wav"), d.path("main.png"));
    let o = Command::new(env!("CARGO_BIN_EXE_clavm"))
        .args([s(&p), "-o", s(&wav), "--picture", s(&png), "--seconds", "0.5"])
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("headless fallback"), "{}", stderr(&o));
    assert_sound_went_on_and_attack_failed(&wav, 0.5);
}

#[test]
fn killing_another_process_is_denied() {
    let d = Dir::new();
    let t = Target::new("kill");
    let mut victim = Command::new("sleep").arg("60").spawn().unwrap();
    let p = corpus_patch(&d, "kill", &t);
    let pid = format!("0={}", victim.id());
    render_denied(&d, &p, &["--param", &pid]);
    assert!(victim.try_wait().unwrap().is_none(), "the victim was killed");
    // Control: unsandboxed, the victim dies.
    let param = vec![Param::P(0, victim.id() as f32)];
    assert_eq!(in_process_escape_signal(&p, param), 0.5, "control");
    let status = victim.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "control");
}

#[test]
fn copying_a_system_file_out_is_denied() {
    let d = Dir::new();
    let t = Target::new("passwd");
    let p = corpus_patch(&d, "passwd", &t);
    render_denied(&d, &p, &[]);
    assert!(!t.path("passwd").exists(), "the patch wrote a copy of /etc/passwd");
    assert_eq!(in_process_escape_signal(&p, vec![]), 0.5, "control");
    assert!(std::fs::read_to_string(t.path("passwd")).unwrap().contains("root:"), "control");
}

#[test]
fn isolated_and_in_process_renders_are_identical_to_the_bit() {
    let patch = |name: &str| PatchSource::from_file(Path::new(&format!("../assets/patches/{name}"))).unwrap();
    let mut config = EngineConfig::new(SR, 2);
    config.seed = 7;
    let spec = RenderSpec {
        patch: patch("params.c"),
        length: Frames::from_seconds(1.5, SR),
        config,
        swaps: vec![
            Swap { at: Frames::from_seconds(0.5, SR), patch: patch("default.c") },
            Swap {
                at: Frames(40_001),
                patch: PatchSource::from_text("broken.c", "void play(void) { _out(0, nope); }"),
            },
            Swap { at: Frames::from_seconds(1.0, SR), patch: patch("dust_drums.c") },
        ],
        params: vec![Param::P(0, 0.3), Param::I(1, 2), Param::Cc(3, 0.75)],
        block: 64,
        input: None,
        samples: Vec::new(),
        notes: Vec::new(),
    };
    let direct = render::render(&spec, &Progress::new()).unwrap();
    let (mut samples, mut blocks) = (Vec::new(), Vec::new());
    let progress = Progress::new();
    let exe = Path::new(env!("CARGO_BIN_EXE_clavm"));
    let summary = render::render_isolated(exe, Duration::from_secs(10), &spec, &progress, &mut |b| {
        samples.extend_from_slice(b);
        blocks.push(b.len());
        Ok(())
    })
    .unwrap();
    assert_eq!(samples.len(), direct.samples.len());
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert!(bits(&samples) == bits(&direct.samples), "the isolated render differs");
    assert!(samples.iter().any(|v| *v != 0.0));
    // The blocks are render_with's: 64 frames, cut at the swaps.
    assert!(blocks.iter().all(|n| *n > 0 && *n <= 128 && n % 2 == 0));
    assert!(blocks.len() > (spec.length.0 / 64) as usize);
    assert_eq!(format!("{:?}", summary.events), format!("{:?}", direct.events));
    assert!(summary.events.iter().any(|e| matches!(e, render::RenderEvent::SwapFailed { .. })));
    assert_eq!(progress.frames.load(std::sync::atomic::Ordering::Relaxed), spec.length.0);
    assert_eq!(progress.patch.load(std::sync::atomic::Ordering::Relaxed), 3);
}

/// A patch that writes garbage over every descriptor it might find (the
/// protocol's among them): an error naming the patch, never a panic, no file.
#[test]
fn a_patch_that_garbles_the_stream_is_an_error_naming_it() {
    let d = Dir::new();
    let p = d.file(
        "garble.c",
        "static long sys(long n, long a, long b, long c) { long r; __asm__ volatile(\"syscall\" : \"=a\"(r) : \"a\"(n), \"D\"(a), \"S\"(b), \"d\"(c) : \"rcx\", \"r11\", \"memory\"); return r; }\n\
         void play(void) { int *n = _int(0); if (*n == 100) { int fd; for (fd = 3; fd < 16; fd++) sys(1, fd, (long)\"\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\", 8); } *n += 1; _out(0, 0.2f * Cycle(440)); }\n",
    );
    let out = d.path("out.wav");
    let o = clavm(&["render", s(&p), "-o", s(&out), "--seconds", "1"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("clavm: error: {}: the sandboxed render process failed: its output is garbled", s(&p))),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists());
    d.assert_holds(&["garble.c"]);
}

/// While a patch runs, its process is sandboxed (seccomp, no_new_privs) and
/// holds no descriptor but stdin/stdout on /dev/null, stderr, and its pipe.
#[test]
fn the_render_process_is_sandboxed_and_inherits_no_descriptor() {
    let d = Dir::new();
    let p = d.file("hang.c", "void play(void) { while (_time() > 0.05) {} _out(0, 0); }\n");
    let out = d.path("out.wav");
    let parent = Command::new(env!("CARGO_BIN_EXE_clavm"))
        .args(["render", s(&p), "-o", s(&out), "--seconds", "1", "--timeout", "3"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ppid = parent.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(3);
    let child = loop {
        let found = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|pid| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
                args.len() > 2 && args[1] == b"__offline" && args[2] == ppid.as_bytes()
            });
        if let Some(pid) = found {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            // Wait until it is in the patch (sandbox entered before that).
            if status.contains("Seccomp:\t2") {
                break pid;
            }
        }
        assert!(Instant::now() < deadline, "no sandboxed __offline child of {ppid}");
        std::thread::sleep(Duration::from_millis(10));
    };
    let status = std::fs::read_to_string(format!("/proc/{child}/status")).unwrap();
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    let fds: Vec<(String, String)> = std::fs::read_dir(format!("/proc/{child}/fd"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read_link(e.path()).unwrap().display().to_string())
        })
        .collect();
    let link = |n: &str| fds.iter().find(|(f, _)| f == n).map(|(_, l)| l.as_str());
    assert_eq!(link("0"), Some("/dev/null"), "{fds:?}");
    assert_eq!(link("1"), Some("/dev/null"), "{fds:?}");
    assert!(link("2").is_some(), "{fds:?}");
    let others: Vec<_> = fds.iter().filter(|(f, _)| !["0", "1", "2"].contains(&f.as_str())).collect();
    assert_eq!(others.len(), 1, "only the protocol pipe: {fds:?}");
    assert!(others[0].1.starts_with("pipe:"), "{fds:?}");
    let o = parent.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("clavm: error: {}: the patch made no progress at t=0.049s", s(&p)))
            && err.contains("infinite loop"),
        "{err}"
    );
    assert!(!out.exists());
}
