//! The live engine end to end: real worker processes (this crate's `clavm`
//! binary), shared memory and futexes, driven block by block as an audio
//! callback would, without a sound card.

use std::time::{Duration, Instant};

use clavm_audio::live::{LiveConfig, LiveEngine, LiveEvent, LiveProcessor, Recovery};
use clavm_audio::PatchSource;

const SR: f64 = 48000.0;
const BLOCK: usize = 128;

fn start() -> (LiveEngine, LiveProcessor) {
    realtime();
    let cfg = LiveConfig::new(SR, 1, env!("CARGO_BIN_EXE_clavm").into());
    LiveEngine::start(cfg).expect("live engine starts")
}

/// Makes the calling thread realtime (SCHED_FIFO), as an audio callback's
/// thread is; silently stays normal where that is not permitted.
fn realtime() {
    // SAFETY: sched_setscheduler on the calling thread with a valid param.
    unsafe {
        let param = libc::sched_param { sched_priority: 60 };
        libc::sched_setscheduler(0, libc::SCHED_FIFO, &param);
    }
}

/// Runs blocks in real time (one every 2.67 ms) for `seconds`, collecting output.
fn run(p: &mut LiveProcessor, seconds: f64) -> Vec<f32> {
    let blocks = (seconds * SR / BLOCK as f64).round() as usize;
    let mut out = vec![0.0f32; blocks * BLOCK];
    let period = Duration::from_secs_f64(BLOCK as f64 / SR);
    let mut next = Instant::now();
    for b in out.chunks_mut(BLOCK) {
        p.process(&[], b);
        next += period;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    out
}

/// Submits and waits until the version plays (processing blocks meanwhile).
fn submit_and_play(e: &LiveEngine, p: &mut LiveProcessor, name: &str, text: &str) -> (Vec<LiveEvent>, Vec<f32>) {
    e.submit(PatchSource::from_text(name, text));
    let mut events = Vec::new();
    let mut out = Vec::new();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        out.extend(run(p, 0.01));
        while let Some(ev) = e.next_event(Duration::ZERO) {
            let done =
                matches!(ev, LiveEvent::Playing { .. } | LiveEvent::Rejected { .. } | LiveEvent::TestFailed { .. });
            events.push(ev);
            if done {
                return (events, out);
            }
        }
    }
    panic!("no outcome for {name}: {events:?}");
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

#[test]
fn a_patch_plays_through_a_worker_and_a_segfault_falls_back_to_the_previous_version() {
    let (engine, mut p) = start();
    let (ev, _) = submit_and_play(&engine, &mut p, "sine.c", "void play(void) { _out(0, 0.5f * Cycle(440)); }");
    assert!(ev.iter().any(|e| matches!(e, LiveEvent::Playing { version: 1, .. })), "{ev:?}");
    let x = run(&mut p, 0.2);
    assert!((rms(&x) - 0.5 / 2f64.sqrt()).abs() < 0.01, "rms {}", rms(&x));

    // Version 2 passes its test run, then crashes after 0.1 s of playing.
    let crash = "void play(void) { if (_time() > *_double(0) + 0.1) { int *p = 0; *p = 1; } _out(0, 0.5f * Cycle(440)); }\nvoid compiled(void) { *_double(0) = _time(); }";
    let (ev, _) = submit_and_play(&engine, &mut p, "crash.c", crash);
    assert!(ev.iter().any(|e| matches!(e, LiveEvent::Playing { version: 2, .. })), "{ev:?}");
    let x = run(&mut p, 0.5);
    let mut failed = None;
    while let Some(e) = engine.next_event(Duration::from_millis(100)) {
        if let LiveEvent::WorkerFailed { recovery, now_playing, ref fault, detected, fallback, .. } = e {
            eprintln!("detected after {detected:?}, fallback {fallback:?}");
            failed = Some((recovery, now_playing, fault.describe()));
        }
        if matches!(e, LiveEvent::WorkerReplaced { .. }) {
            break;
        }
    }
    let (recovery, now_playing, what) = failed.expect("the crash is reported");
    eprintln!("fault: {what} recovery {recovery:?}");
    assert_eq!(recovery, Recovery::FilledByBackup);
    assert_eq!(now_playing, Some(1));
    assert!(what.contains("play() crashed: SIGSEGV"), "{what}");
    // No gap: every 10 ms window of the output still carries the sine.
    for w in x.chunks(480) {
        assert!(rms(w) > 0.3, "a gap in the sound: rms {}", rms(w));
    }
    engine.shutdown();
}
