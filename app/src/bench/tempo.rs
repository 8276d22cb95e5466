//! `clavm bench --tempo`: how exactly a live quantised swap lands on its
//! boundary, and how closely two engines on one Ableton Link session agree.
//!
//! Swaps: a real live engine (worker processes, the audio thread's
//! processor driven in real time as a callback would be) plays silence; a
//! version that outputs its own position in the bar is submitted with
//! `--quant 1`, and its first sample says how far from the beat it started.
//! The reference, from the same runs: where a swap that waits for the next
//! block start (no split) would have begun.
//!
//! Link: two engines in this process join one session inside a private
//! loopback-only network namespace (never a real interface); their beats at
//! the same moments, against one engine's beat read twice the same way (the
//! measurement's own floor).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clavm_audio::clock::timeline::monotonic_micros;
use clavm_audio::clock::{Bpm, Quant};
use clavm_audio::live::{LiveConfig, LiveEngine, LiveEvent, LiveProcessor};
use clavm_audio::PatchSource;

const SR: f64 = 48000.0;
const BLOCK: usize = 128;
/// 240 BPM: a beat is 12000 frames.
const BPM: f64 = 240.0;
const SWAPS: usize = 20;

/// Swap `i`'s patch: its number and where in the beat a frame is, as a
/// sample value, `0.02 (i + 1) + 0.01 fraction`. The number tells its
/// samples from a backup's (the previous swap's patch covers a late block of
/// the silence in between).
fn position(i: usize) -> String {
    format!("void play(void) {{ _out(0, {:.2}f + (float)(fmod(_beat(), 1.0) * 0.01)); }}", 0.02 * (i + 1) as f64)
}

/// Where in the beat swap `i`'s first sample is, in beats, if `v` is one of its.
fn fraction_of(i: usize, v: f32) -> Option<f64> {
    let base = 0.02 * (i + 1) as f64;
    let f = (v as f64 - base) / 0.01;
    (-0.01..1.0).contains(&f).then_some(f.max(0.0))
}
const SILENCE: &str = "void play(void) { _out(0, 0.0f); }";

/// Runs `p` in real time on a thread, keeping every output sample and the frame it came at.
struct Driven {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    out: Arc<std::sync::Mutex<Vec<(u64, f32)>>>,
}

impl Driven {
    fn start(mut p: LiveProcessor, keep: bool) -> Driven {
        let stop = Arc::new(AtomicBool::new(false));
        let out = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, o) = (stop.clone(), out.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0.0f32; BLOCK];
            let period = Duration::from_secs_f64(BLOCK as f64 / SR);
            let (mut next, mut frame) = (Instant::now(), 0u64);
            while !s.load(Ordering::Relaxed) {
                p.process(&[], &mut buf);
                if keep {
                    let mut o = o.lock().unwrap_or_else(|e| e.into_inner());
                    o.extend(buf.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(i, v)| (frame + i as u64, *v)));
                }
                frame += BLOCK as u64;
                next += period;
                match next.checked_duration_since(Instant::now()) {
                    Some(d) => std::thread::sleep(d),
                    None => next = Instant::now(),
                }
            }
        });
        Driven { stop, thread: Some(thread), out }
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn wait_for(engine: &LiveEngine, limit: Duration, f: impl Fn(&LiveEvent) -> bool) -> anyhow::Result<LiveEvent> {
    wait_seeing(engine, limit, f, &mut Vec::new())
}

/// As `wait_for`, keeping the events before the one waited for in `seen`.
fn wait_seeing(
    engine: &LiveEngine,
    limit: Duration,
    f: impl Fn(&LiveEvent) -> bool,
    seen: &mut Vec<LiveEvent>,
) -> anyhow::Result<LiveEvent> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if let Some(e) = engine.next_event(Duration::from_millis(20)) {
            if f(&e) {
                return Ok(e);
            }
            seen.push(e);
        }
    }
    bail!("the engine did not answer in {limit:?}")
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    (at(0.5), at(0.99))
}

/// Samples off the beat for live quantised swaps, and for a block-granular swap.
/// What the swaps measured: (p50, p99) frames off the beat for ours and for
/// the block-start reference, how many were within a frame, and how many of
/// the others had their worker reported late.
struct SwapAccuracy {
    ours: (f64, f64),
    blockwise: (f64, f64),
    exact: usize,
    late_off: usize,
}

fn swaps() -> anyhow::Result<SwapAccuracy> {
    let exe = std::env::current_exe().context("the clavm executable")?;
    let mut cfg = LiveConfig::new(SR, 1, exe);
    cfg.bpm = Bpm::new(BPM).map_err(|e| anyhow::anyhow!("{e}"))?;
    cfg.crossfade = clavm_audio::Frames(0);
    let (engine, p) = LiveEngine::start(cfg).context("starting the live engine")?;
    let driven = Driven::start(p, true);
    let beat = Quant::new(1.0).map_err(|e| anyhow::anyhow!("{e}"))?;
    let frames_per_beat = SR * 60.0 / BPM;
    let (mut ours, mut blockwise, mut late_off) = (Vec::new(), Vec::new(), 0);
    for i in 0..SWAPS {
        engine.submit(PatchSource::from_text("silence.c", SILENCE));
        wait_for(&engine, Duration::from_secs(5), |e| matches!(e, LiveEvent::Playing { .. }))?;
        std::thread::sleep(Duration::from_millis(20));
        driven.out.lock().unwrap_or_else(|e| e.into_inner()).clear();
        engine.submit_quantised(PatchSource::from_text(&format!("position-{i}.c"), &position(i)), Some(beat));
        let mut seen = Vec::new();
        let version = match wait_seeing(
            &engine,
            Duration::from_secs(5),
            |e| matches!(e, LiveEvent::Playing { .. }),
            &mut seen,
        )? {
            LiveEvent::Playing { version, .. } => version,
            _ => unreachable!("matched above"),
        };
        std::thread::sleep(Duration::from_millis(20));
        while let Some(e) = engine.next_event(Duration::ZERO) {
            seen.push(e);
        }
        let Some(boundary) = seen.iter().find_map(|e| match e {
            LiveEvent::Waiting { version: v, at, .. } if *v == version => Some(at.0),
            _ => None,
        }) else {
            bail!("swap {i}: no Waiting event for version {version}")
        };
        let late = seen.iter().any(|e| matches!(e, LiveEvent::WorkerLate { version: v, .. } if *v == version));
        let first = driven.out.lock().unwrap_or_else(|e| e.into_inner()).iter().find_map(|&(_, v)| fraction_of(i, v));
        let Some(fraction) = first else { bail!("swap {i}: the new version was never heard") };
        // Frames past the beat the first sample of the new version was.
        let past = fraction * frames_per_beat;
        let off = past.min(frames_per_beat - past);
        ours.push(off);
        if off >= 1.0 && late {
            late_off += 1;
        }
        // Without the split: the first block start at or after the boundary frame.
        blockwise.push(((BLOCK as u64 - boundary % BLOCK as u64) % BLOCK as u64) as f64);
        eprint!(".");
    }
    drop(driven);
    engine.shutdown();
    let exact = ours.iter().filter(|f| **f < 1.0).count();
    Ok(SwapAccuracy { ours: percentiles(ours), blockwise: percentiles(blockwise), exact, late_off })
}

/// An engine on a Link session, driven in real time.
fn link_member(bpm: f64) -> anyhow::Result<(LiveEngine, Driven)> {
    let exe = std::env::current_exe().context("the clavm executable")?;
    let mut cfg = LiveConfig::new(SR, 1, exe);
    let bpm = Bpm::new(bpm).map_err(|e| anyhow::anyhow!("{e}"))?;
    cfg.bpm = bpm;
    let (engine, mut p) = LiveEngine::start(cfg).context("starting the live engine")?;
    p.set_timeline(Box::new(clavm_audio::clock::link::LinkTimeline::join(bpm)));
    engine.submit(PatchSource::from_text("silence.c", SILENCE));
    Ok((engine, Driven::start(p, false)))
}

/// Beat phase differences in ms between two Link members, and one member against itself.
fn link_phase() -> anyhow::Result<((f64, f64), (f64, f64))> {
    // SAFETY: unshare(2) on this thread only; the Link threads started from it inherit it.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        bail!("needs a private network namespace (root): {}", std::io::Error::last_os_error());
    }
    for args in [
        &["link", "set", "lo", "up"][..],
        &["link", "set", "lo", "multicast", "on"],
        &["route", "add", "224.0.0.0/4", "dev", "lo"],
    ] {
        let ok = std::process::Command::new("ip").args(args).status().context("ip (iproute2)")?;
        anyhow::ensure!(ok.success(), "ip {}", args.join(" "));
    }
    let (a, da) = link_member(120.0)?;
    let (b, db) = link_member(100.0)?;
    let read = |e: &LiveEngine| e.meters().clock.read();
    let t0 = Instant::now();
    while !(read(&a).is_some_and(|c| c.peers > 0) && read(&b).is_some_and(|c| c.peers > 0)) {
        anyhow::ensure!(t0.elapsed() < Duration::from_secs(10), "the two engines never saw each other");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(500));
    let (mut between, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..500 {
        std::thread::sleep(Duration::from_millis(3));
        let (Some(ra), Some(rb)) = (read(&a), read(&b)) else { continue };
        let now = monotonic_micros();
        let us = |d: f64, bpm: f64| (d * 60_000_000.0 / bpm).abs();
        between.push(us(ra.beat_at_micros(now) - rb.beat_at_micros(now), ra.bpm));
        std::thread::sleep(Duration::from_micros(700));
        if let Some(ra2) = read(&a) {
            floor.push(us(ra.beat_at_micros(now) - ra2.beat_at_micros(now), ra.bpm));
        }
    }
    drop((da, db));
    a.shutdown();
    b.shutdown();
    Ok((percentiles(between), percentiles(floor)))
}

pub fn run() -> anyhow::Result<String> {
    eprint!("quantised swaps");
    let SwapAccuracy { ours, blockwise, exact, late_off } = swaps()?;
    eprintln!(" done");
    let mut s = format!(
        "Live quantised swaps (`--quant 1` at {BPM} BPM, {SWAPS} swaps, a real live engine whose callback is driven in real time): frames between the beat and the new version's first sample, against where a swap waiting for the next block start ({BLOCK}-frame blocks, no split) would have begun, from the same swaps.\n\n| swap | p50 frames off the beat | p99 frames off the beat | within one frame |\n|---|---:|---:|---:|\n| clavm (the block split at the boundary) | {:.2} | {:.2} | {exact} of {SWAPS} |\n| reference: at the next block start | {:.0} | {:.0} | |\n\n{}",
        ours.0,
        ours.1,
        blockwise.0,
        blockwise.1,
        if exact < SWAPS {
            format!("Of the {} swaps more than a frame off, {late_off} had the new version's worker reported late (a busy machine: its first block was covered, and it started when it answered).\n\n", SWAPS - exact)
        } else {
            String::new()
        }
    );
    eprint!("Link");
    let link = std::thread::spawn(link_phase).join().map_err(|_| anyhow::anyhow!("the Link measurement panicked"))?;
    match link {
        Ok((between, floor)) => {
            eprintln!(" done");
            s.push_str(&format!(
                "Ableton Link: two engines in one session over loopback (a private network namespace), their beats compared at the same moments 500 times, in µs at the tempo; the reference is one engine's beat read twice the same way (the measurement's floor).\n\n| | p50 µs | p99 µs |\n|---|---:|---:|\n| engine A against engine B | {:.1} | {:.1} |\n| reference: engine A against itself | {:.1} | {:.1} |\n\n",
                between.0, between.1, floor.0, floor.1
            ));
        }
        Err(e) => {
            eprintln!(" skipped");
            s.push_str(&format!("Ableton Link: not measured ({e:#}).\n\n"));
        }
    }
    Ok(s)
}
