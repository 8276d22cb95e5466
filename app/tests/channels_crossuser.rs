//! Channels against other users and against garbage, on real processes.
//!
//! - Another user (`nobody`, through `setpriv`; the tests run as root in CI
//!   and say so and skip otherwise) squats our names, leaves stale channels
//!   in our namespace, and tries to submit to, tap and set parameters of our
//!   engine: our engine starts in its own namespace, never touches theirs,
//!   refuses theirs by name, and they get nothing.
//! - A live engine whose `.submit` and `.param` files are scribbled over and
//!   truncated survives (no SIGBUS, no spinning thread), serves again, and
//!   Ctrl-C ends it within a second.
//! - A forged tap and a full param ring give one-line errors.
//!
//! Each test runs its own JACK server under a name of its own (dummy driver),
//! so it meets no other test's.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod common;

use clavm_channel::{Receiver, Sender};
use clavm_submit::protocol::{param_config, submit_config, ParamKind, ParamMsg};
use common::jack::Jackd;

/// One engine at a time: the machine is small.
static SERIAL: Mutex<()> = Mutex::new(());
const NOBODY: u32 = 65534;
const SQUAT: &str = "CLAVM_TEST_SQUAT";
const SINE: &str = "void play(void) { float s = 0.3f * Cycle(440); _out(0, s); _out(1, s); }\n";

fn uid() -> u32 {
    clavm_channel::uid()
}

fn shm(uid: u32, engine: &str, channel: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/clavm-{uid}-{engine}.{channel}"))
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A JACK server of our own (`common::jack::Jackd`, SIGTERM on drop).
struct Jack(Jackd);

impl Jack {
    fn start(tag: &str) -> Jack {
        Jack(Jackd::start_named(&format!("clavm-ch-{}-{tag}", std::process::id())))
    }

    /// `clavm play` on this server, its stderr collected by a thread.
    fn play(&self, patch: &Path, engine: &str, umask: Option<u32>) -> Engine {
        let mut c = Command::new(env!("CARGO_BIN_EXE_clavm"));
        c.args(["play", patch.to_str().unwrap(), "--host", "jack", "--engine", engine, "--no-osc", "--midi", "none"])
            .env("JACK_DEFAULT_SERVER", &self.0.name)
            .env("JACK_NO_START_SERVER", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(mask) = umask {
            // SAFETY: umask is async-signal-safe and touches only the child.
            unsafe {
                c.pre_exec(move || {
                    libc::umask(mask);
                    Ok(())
                });
            }
        }
        let mut child = c.spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(Mutex::new(String::new()));
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut l = l.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Engine { child, log }
    }
}

struct Engine {
    child: Child,
    log: std::sync::Arc<Mutex<String>>,
}

impl Engine {
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Ctrl-C; how long the engine took to exit, and whether it exited cleanly.
    fn interrupt(mut self) -> (Duration, bool, String) {
        let t0 = Instant::now();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50)); // the log thread's last lines
                return (t0.elapsed(), status.success(), self.log());
            }
            if t0.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return (t0.elapsed(), false, self.log());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// `clavm ARGS`, as us or (with `as_nobody`) as the other user.
fn clavm(args: &[&str], as_nobody: bool) -> Output {
    let mut c = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid", &NOBODY.to_string(), "--regid", &NOBODY.to_string(), "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_clavm"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_clavm"))
    };
    c.args(args).stdin(Stdio::null()).output().unwrap()
}

fn submit(engine: &str, patch: &Path, timeout: &str, as_nobody: bool) -> Output {
    clavm(&["submit", "--engine", engine, "--timeout", timeout, patch.to_str().unwrap()], as_nobody)
}

/// Waits until `engine` plays a submit (it answers once its channels exist).
fn wait_for(engine: &str, patch: &Path, e: &mut Engine) {
    let t0 = Instant::now();
    loop {
        let o = submit(engine, patch, "1", false);
        if o.status.code() == Some(0) {
            return;
        }
        assert!(e.alive(), "the engine exited: {}", e.log());
        assert!(t0.elapsed() < Duration::from_secs(30), "engine {engine} never answered: {}", text(&o));
    }
}

fn is_root() -> bool {
    uid() == 0
}

/// The other user's side, run as `nobody` by re-running this test binary:
/// `squat:ENGINE:live|stale` makes a real, valid submit channel and moves it
/// under *root's* name for ENGINE; live ones then report anything they receive.
#[test]
fn squatter_entry() {
    let Ok(job) = std::env::var(SQUAT) else { return };
    let mut parts = job.split(':');
    let (engine, how) = (parts.next().unwrap(), parts.next().unwrap());
    let mut rx = Receiver::create(engine, "submit", submit_config()).unwrap();
    std::fs::rename(shm(uid(), engine, "submit"), shm(0, engine, "submit")).unwrap();
    println!("ready");
    if how == "stale" {
        std::process::exit(0);
    }
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if let Ok(m) = rx.recv_bytes(clavm_channel::Wait::Sleep, Duration::from_millis(100)) {
            println!("STOLEN {} bytes: {}", m.len(), String::from_utf8_lossy(&m));
        }
    }
}

/// Starts a squatter as `nobody` and waits until its file is in place.
fn squatter(engine: &str, how: &str) -> Child {
    let mut c = Command::new("setpriv")
        .args(["--reuid", &NOBODY.to_string(), "--regid", &NOBODY.to_string(), "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "squatter_entry", "--nocapture", "--test-threads=1"])
        .env(SQUAT, format!("{engine}:{how}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(c.stdout.take().unwrap());
    let mut line = String::new();
    while !line.trim_end().ends_with("ready") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the squatter exited before it was ready");
    }
    c.stdout = Some(out.into_inner());
    c
}

/// Runs `script` with `sh` as `nobody` under `umask 000`.
fn sh_as_nobody(script: &str) -> Output {
    Command::new("setpriv")
        .args(["--reuid", &NOBODY.to_string(), "--regid", &NOBODY.to_string(), "--clear-groups", "sh", "-c"])
        .arg(format!("umask 000; {script}"))
        .output()
        .unwrap()
}

fn owner_and_mode(p: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.permissions().mode() & 0o7777)
}

#[test]
fn another_user_can_neither_squat_nor_reach_our_engine() {
    if !is_root() {
        eprintln!("skipped: the cross-user test needs root (to act as the user nobody through setpriv)");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let jack = Jack::start("xu");
    let dir = tempfile::tempdir().unwrap();
    // Nobody may look into the directory (to read theirs.c), not read the 0600 secret.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let patch = dir.path().join("live.c");
    std::fs::write(&patch, SINE).unwrap();
    let secret = dir.path().join("secret.c");
    std::fs::write(&secret, format!("/* SECRET-{} */\n{SINE}", std::process::id())).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pid = std::process::id();
    let (e, squatted, stale) = (format!("xu{pid}"), format!("xs{pid}"), format!("xt{pid}"));

    // The other user's files: the old name of our engine, and our engine's name in their own
    // namespace, world-writable (umask 000).
    let old_name = PathBuf::from(format!("/dev/shm/clavm-{e}.submit"));
    let theirs = shm(NOBODY, &e, "submit");
    let o = sh_as_nobody(&format!("printf squat > {}; printf squat > {}", old_name.display(), theirs.display()));
    assert!(o.status.success(), "{}", text(&o));

    // A live squatter holding a valid channel under our name for another engine: our client
    // refuses it by its owner's name and never sends the secret into it.
    let mut live = squatter(&squatted, "live");
    let o = submit(&squatted, &secret, "1", false);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let msg = text(&o);
    assert!(msg.contains("belongs to user nobody (uid 65534): not ours"), "{msg}");
    assert_eq!(msg.trim_end().lines().count(), 1, "one line: {msg}");
    // Our engine of that name refuses to start, names the owner, and leaves the file alone.
    let mut refused = jack.play(&patch, &squatted, None);
    let status = refused.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(!status.success());
    assert!(refused.log().contains("belongs to user nobody (uid 65534): not ours"), "{}", refused.log());
    assert_eq!(owner_and_mode(&shm(0, &squatted, "submit")).0, NOBODY, "their file is still there, still theirs");
    // A stale one (its owner exited): still theirs, still refused, still not removed.
    let mut gone = squatter(&stale, "stale");
    gone.wait().unwrap();
    let mut blocked = jack.play(&patch, &stale, None);
    assert!(!blocked.child.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(100));
    assert!(blocked.log().contains("not ours"), "{}", blocked.log());
    assert_eq!(owner_and_mode(&shm(0, &stale, "submit")).0, NOBODY);

    // Our engine under umask 000: starts in our namespace, every file 0600 and ours.
    let mut engine = jack.play(&patch, &e, Some(0));
    wait_for(&e, &patch, &mut engine);
    for ch in ["submit", "param", "tap"] {
        assert_eq!(owner_and_mode(&shm(0, &e, ch)), (0, 0o600), "{ch}");
    }
    assert_eq!(std::fs::read(&old_name).unwrap(), b"squat", "the old name was never touched");
    assert_eq!(std::fs::read(&theirs).unwrap(), b"squat", "their namespace was never touched");

    // The other user cannot reach it: not by submit, tap or param (their names are theirs),
    // and not by opening our files directly.
    let mine = dir.path().join("theirs.c");
    std::fs::write(&mine, SINE.replace("440", "330")).unwrap();
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = submit(&e, &mine, "1", true);
    assert_ne!(o.status.code(), Some(0), "nobody submitted to root's engine: {}", text(&o));
    let wav = format!("/tmp/clavm-escape-tap-{pid}.wav");
    let o = clavm(&["tap", "--engine", &e, "--seconds", "0.2", "-o", &wav], true);
    assert!(!o.status.success(), "nobody tapped root's engine: {}", text(&o));
    assert!(!Path::new(&wav).exists());
    let o = clavm(&["param", "--engine", &e, "0", "0.5"], true);
    assert!(!o.status.success(), "nobody set a parameter of root's engine: {}", text(&o));
    let o = sh_as_nobody(&format!("cat {} > /dev/null", shm(0, &e, "submit").display()));
    assert!(!o.status.success(), "nobody read root's submit channel");
    assert!(!engine.log().contains("theirs.c"), "{}", engine.log());
    // Our own submits go on.
    let o = submit(&e, &secret, "2", false);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let (_, clean, log) = engine.interrupt();
    assert!(clean, "{log}");
    assert!(!shm(0, &e, "submit").exists(), "our engine removes its own channels");
    // Nothing of ours ever reached the squatter.
    // SAFETY: signalling our own child (setpriv exec'd the squatter in place).
    unsafe { libc::kill(live.id() as i32, libc::SIGKILL) };
    let out = {
        let mut s = String::new();
        std::io::Read::read_to_string(live.stdout.as_mut().unwrap(), &mut s).unwrap();
        s
    };
    live.wait().unwrap();
    assert!(!out.contains("STOLEN"), "{out}");
    for p in [old_name, theirs, shm(0, &squatted, "submit"), shm(0, &stale, "submit")] {
        let _ = std::fs::remove_file(p);
    }
}

/// Writes `n` random bytes at random places from `from` on (a small xorshift: reproducible by seed).
fn scribble(path: &Path, from: u64, n: usize, seed: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let len = f.metadata().unwrap().len();
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..n / 16 {
        let at = from + next() % (len - from).max(1);
        let bytes: Vec<u8> = (0..16).map(|_| next() as u8).collect();
        f.write_all_at(&bytes, at.min(len.saturating_sub(16))).unwrap();
    }
}

/// Random bytes over a ring's counters (the header after its identity line)
/// and over the 16-byte header of each of its `slots` slots.
fn scribble_ring(path: &Path, slots: u64, stride: u64, seed: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut x = seed | 1;
    let mut bytes = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    f.write_all_at(&bytes(256), 64).unwrap();
    for i in 0..slots {
        f.write_all_at(&bytes(16), 320 + i * stride).unwrap();
    }
}

#[test]
fn an_engine_survives_scribbled_and_truncated_channels_and_ctrl_c_ends_it_within_a_second() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let jack = Jack::start("hz");
    let dir = tempfile::tempdir().unwrap();
    let patch = dir.path().join("live.c");
    std::fs::write(&patch, SINE).unwrap();
    let e = format!("hz{}", std::process::id());
    let mut engine = jack.play(&patch, &e, None);
    wait_for(&e, &patch, &mut engine);
    let (submit_path, param_path) = (shm(uid(), &e, "submit"), shm(uid(), &e, "param"));

    // One bad sequence number in the next producer's slot: the client keeps its deadline
    // (and gets through once the engine has reset the ring).
    let tx = Sender::open(&e, "submit").unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&submit_path).unwrap();
    let stride = (16 + submit_config().slot_size).next_multiple_of(64) as u64;
    let head = tx.stats().sent; // every submit so far was one position
    let slot = 320 + (head % 4) * stride;
    f.write_all_at(&(1u64 << 40).to_ne_bytes(), slot).unwrap();
    let t0 = Instant::now();
    let o = submit(&e, &patch, "2", false);
    assert!(t0.elapsed() < Duration::from_secs(4), "submit --timeout 2 took {:?}", t0.elapsed());
    assert!(matches!(o.status.code(), Some(0 | 2)), "{}", text(&o));
    wait_for(&e, &patch, &mut engine);
    assert!(engine.log().contains("the submit channel held garbage: reset"), "{}", engine.log());
    drop(tx);

    // Random bytes over the header's counters and every slot header of both rings.
    let param_stride = (16 + param_config().slot_size).next_multiple_of(64) as u64;
    for (i, (p, slots, stride)) in
        [(&submit_path, 4, stride), (&param_path, 1024, param_stride)].into_iter().enumerate()
    {
        scribble_ring(p, slots, stride, 0x9e37_79b9 + i as u64);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(engine.alive(), "the engine died of random slot bytes: {}", engine.log());
    wait_for(&e, &patch, &mut engine);
    let o = clavm(&["param", "--engine", &e, "0", "0.5"], false);
    assert!(o.status.success(), "{}", text(&o));
    assert!(engine.log().contains("the param channel held garbage: reset"), "{}", engine.log());

    // Truncated under the running engine: no SIGBUS; the engine replaces the files and serves on.
    for (p, len) in [(&param_path, 100), (&submit_path, 0)] {
        std::fs::OpenOptions::new().write(true).open(p).unwrap().set_len(len).unwrap();
    }
    std::thread::sleep(Duration::from_millis(600));
    assert!(engine.alive(), "the engine died of a truncated channel: {}", engine.log());
    wait_for(&e, &patch, &mut engine);
    let o = clavm(&["param", "--engine", &e, "0", "0.25"], false);
    assert!(o.status.success(), "{}", text(&o));
    let log = engine.log();
    assert!(log.contains("the submit channel's file was cut or changed: replaced by a new one"), "{log}");
    assert!(log.contains("the param channel's file was cut or changed: replaced by a new one"), "{log}");

    // Garbage again, then Ctrl-C: over within a second, cleanly.
    for (i, p) in [&submit_path, &param_path].into_iter().enumerate() {
        scribble(p, 0, 8192, 0x1234_5678 + i as u64);
    }
    std::thread::sleep(Duration::from_millis(300));
    let (took, clean, log) = engine.interrupt();
    assert!(took < Duration::from_secs(1), "Ctrl-C took {took:?}: {log}");
    assert!(clean, "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_forged_tap_and_a_full_param_ring_end_in_one_line() {
    let e = format!("fg{}", std::process::id());
    // A tap whose header claims a NaN rate, then one with no channels.
    let header = |rate: f64, channels: u32| clavm_audio::live::tap::TapHeader {
        frame: 0,
        sample_rate: rate,
        published_ns: 0,
        channels,
        frames: 0,
        dsp_load: 0.0,
        inputs: 0,
    };
    for (rate, channels, says) in [(f64::NAN, 2, "NaN Hz"), (0.0, 2, "0 Hz"), (48000.0, 0, "0 channels")] {
        let tx = Sender::create(&e, "tap", clavm_audio::live::tap::tap_config(2, 0)).unwrap();
        let feeder = std::thread::spawn(move || {
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(3) {
                let _ = tx.try_send(&header(rate, channels));
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let wav = std::env::temp_dir().join(format!("clavm-forged-{e}.wav"));
        let o = clavm(&["tap", "--engine", &e, "--seconds", "0.5", "-o", wav.to_str().unwrap()], false);
        feeder.join().unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says) && !err.contains("panicked"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }

    // A param ring nobody drains: full, and said so.
    let _rx = Receiver::create(&e, "param", param_config()).unwrap();
    let tx = Sender::open(&e, "param").unwrap();
    while tx.try_send(&ParamMsg::new(ParamKind::P, 0, 0.5)).is_ok() {}
    let o = clavm(&["param", "--engine", &e, "0", "0.5"], false);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("parameter queue is full"), "{}", text(&o));
}
