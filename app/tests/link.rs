//! Ableton Link between two engines on one machine, over loopback only: in
//! a private network namespace (so no multicast leaves the machine), two
//! live engines join one session; when one changes tempo the other follows
//! within a second, and their beat phases agree within a millisecond.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clavm_audio::clock::link::LinkTimeline;
use clavm_audio::clock::timeline::monotonic_micros;
use clavm_audio::clock::{Bpm, ClockReading};
use clavm_audio::live::{LiveConfig, LiveEngine};
use clavm_audio::PatchSource;

/// The audio callback (`LiveProcessor::process`, Link's capture included)
/// runs under `assert_no_alloc` in debug builds.
#[cfg(debug_assertions)]
#[global_allocator]
static ALLOC_GUARD: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

const SR: f64 = 48000.0;
const BLOCK: usize = 128;

/// Moves this thread (and what it starts from now on) into a new network
/// namespace with only loopback, up and able to multicast.
fn private_loopback() -> Result<(), String> {
    // SAFETY: unshare(2) on the calling thread; no memory is shared.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!("unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error()));
    }
    for args in [
        &["link", "set", "lo", "up"][..],
        &["link", "set", "lo", "multicast", "on"],
        &["route", "add", "224.0.0.0/4", "dev", "lo"],
    ] {
        let o = std::process::Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
        if !o.status.success() {
            return Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr)));
        }
    }
    Ok(())
}

/// An engine on a Link session, its audio callback driven in real time on a thread.
struct Member {
    engine: LiveEngine,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Member {
    fn join(bpm: f64) -> Member {
        let mut cfg = LiveConfig::new(SR, 1, env!("CARGO_BIN_EXE_clavm").into());
        cfg.bpm = Bpm::new(bpm).unwrap();
        let (engine, mut p) = LiveEngine::start(cfg).expect("engine starts");
        p.set_timeline(Box::new(LinkTimeline::join(Bpm::new(bpm).unwrap())));
        engine.submit(PatchSource::from_text("beat.c", "void play(void) { _out(0, (float)(_beat() / 1e4)); }"));
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut out = vec![0.0f32; BLOCK];
            let period = Duration::from_secs_f64(BLOCK as f64 / SR);
            let mut next = Instant::now();
            while !s.load(Ordering::Relaxed) {
                p.process(&[], &mut out);
                next += period;
                match next.checked_duration_since(Instant::now()) {
                    Some(wait) => std::thread::sleep(wait),
                    None => next = Instant::now(),
                }
            }
        });
        Member { engine, stop, thread: Some(thread) }
    }

    fn clock(&self) -> ClockReading {
        self.engine.meters().clock.read().expect("the engine has played")
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

#[test]
fn two_engines_share_tempo_and_beat_phase_over_loopback() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // A private network namespace needs root; CI runs as root. Link is
        // never run on a real interface by the tests.
        eprintln!("skipped: Link's test needs a private network namespace (root)");
        return;
    }
    private_loopback().expect("a private loopback network");
    let a = Member::join(120.0);
    let b = Member::join(100.0);
    let joined = wait_until(Duration::from_secs(10), || a.clock().peers >= 1 && b.clock().peers >= 1);
    assert!(joined.is_some(), "never saw each other: {:?} {:?}", a.clock(), b.clock());
    // Joined: one tempo (the session's).
    // (Link keeps tempo as microseconds per beat: equal within a thousandth of a BPM.)
    let same = |x: f64, y: f64| (x - y).abs() < 1e-3;
    assert!(wait_until(Duration::from_secs(3), || same(a.clock().bpm, b.clock().bpm)).is_some());

    // A changes tempo: B follows within a second.
    a.engine.set_bpm(Bpm::new(90.0).unwrap());
    let followed = wait_until(Duration::from_secs(3), || same(b.clock().bpm, 90.0));
    let took = followed.unwrap_or_else(|| panic!("B did not follow: {:?}", b.clock()));
    eprintln!("B followed A's tempo change in {:.0} ms", took.as_secs_f64() * 1e3);
    assert!(took < Duration::from_secs(1), "B took {took:?}");

    // Beat phases: the beat each engine plays at the same moment, in ms at the tempo.
    std::thread::sleep(Duration::from_millis(300));
    let mut errors: Vec<f64> = (0..200)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(7));
            let (ra, rb) = (a.clock(), b.clock());
            let now = monotonic_micros();
            (ra.beat_at_micros(now) - rb.beat_at_micros(now)) * 60_000.0 / ra.bpm
        })
        .collect();
    errors.sort_by(|x, y| x.abs().total_cmp(&y.abs()));
    let p50 = errors[errors.len() / 2].abs();
    let p99 = errors[errors.len() * 99 / 100].abs();
    eprintln!("beat phase difference: p50 {p50:.3} ms, p99 {p99:.3} ms");
    assert!(p50 < 1.0, "p50 phase difference {p50:.3} ms");
}
