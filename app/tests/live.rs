//! The live engine end to end: real worker processes (this crate's `clavm`
//! binary), shared memory and futexes, driven block by block in real time as
//! an audio callback would, without a sound card.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use clavm_audio::live::shm::WORKERS;
use clavm_audio::live::{LiveConfig, LiveEngine, LiveEvent, LiveProcessor, Recovery, SilenceCause};
use clavm_audio::PatchSource;

/// The audio callback (`LiveProcessor::process`) runs under `assert_no_alloc`
/// in debug builds: with this allocator, an allocation or free there aborts
/// the test run. Every test below drives it, through swaps and faults.
#[cfg(debug_assertions)]
#[global_allocator]
static ALLOC_GUARD: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

mod common;

const SR: f64 = 48000.0;
const BLOCK: usize = 128;
const SINE: &str = "void play(void) { _out(0, 0.5f * Cycle(440)); }";

/// Live tests measure timing: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Makes the calling thread realtime (SCHED_FIFO), as an audio callback's
/// thread is; silently stays normal where that is not permitted.
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
}

impl Session {
    /// An engine playing a 440 Hz sine at 0.5 (version 1).
    fn with_sine() -> Session {
        Session::with("sine.c", SINE)
    }

    /// An engine playing `text` (version 1, with no backup).
    fn with(name: &str, text: &str) -> Session {
        Session::configured(name, text, |_| {})
    }

    /// As `with`, with the engine's configuration changed by `f` first.
    fn configured(name: &str, text: &str, f: impl FnOnce(&mut LiveConfig)) -> Session {
        realtime();
        let mut cfg = LiveConfig::new(SR, 1, env!("CARGO_BIN_EXE_clavm").into());
        f(&mut cfg);
        let (engine, p) = LiveEngine::start(cfg).expect("live engine starts");
        let mut s = Session { engine, p, events: Vec::new() };
        s.submit(name, text);
        assert!(s.has(|e| matches!(e, LiveEvent::Playing { version: 1, .. })), "{:?}", s.events);
        // Past the first version's fade in from silence (10 ms): from here on
        // the tests expect the sine at its level.
        s.play(0.02);
        s
    }

    /// Plays until `f` holds for an event (5 s at most), returning the sound.
    fn play_until(&mut self, f: impl Fn(&LiveEvent) -> bool) -> Vec<f32> {
        let mut out = Vec::new();
        let t0 = Instant::now();
        while !self.has(&f) && t0.elapsed() < Duration::from_secs(5) {
            out.extend(self.play(0.01));
        }
        out
    }

    /// The whole machine stalling, as the engine sees it: every worker
    /// stopped (SIGSTOP) for `seconds` while the audio thread plays on.
    fn stall_workers(&mut self, seconds: f64) -> Vec<f32> {
        let pids = self.engine.meters().worker_pids();
        assert_eq!(pids.len(), WORKERS, "every worker");
        let mut found = common::worker_pids(std::process::id());
        found.sort_unstable();
        let mut said = pids.clone();
        said.sort_unstable();
        assert_eq!(said, found, "the engine's list of its workers is /proc's");
        for &p in &pids {
            // SAFETY: kill(2) on our own children's pids with a valid signal.
            unsafe { libc::kill(p as i32, libc::SIGSTOP) };
        }
        let out = self.play(seconds);
        for &p in &pids {
            // SAFETY: as above (a pid already killed and reaped fails harmlessly).
            unsafe { libc::kill(p as i32, libc::SIGCONT) };
        }
        out
    }

    /// Processes blocks in real time for `seconds`, collecting output and events.
    fn play(&mut self, seconds: f64) -> Vec<f32> {
        let blocks = (seconds * SR / BLOCK as f64).round() as usize;
        let mut out = vec![0.0f32; blocks * BLOCK];
        let period = Duration::from_secs_f64(BLOCK as f64 / SR);
        let mut next = Instant::now();
        for b in out.chunks_mut(BLOCK) {
            self.p.process(&[], b);
            while let Some(e) = self.engine.next_event(Duration::ZERO) {
                let late = match &e {
                    LiveEvent::WorkerLate { .. } => true,
                    LiveEvent::WorkerFailed { detected, fallback, .. } => machine_was_late(*detected, fallback),
                    _ => false,
                };
                if late {
                    MACHINE_LATE.with(|l| l.set(true));
                }
                self.events.push(e);
            }
            next += period;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        out
    }

    /// Submits and plays until the outcome (playing, rejected or failed test) is known.
    fn submit(&mut self, name: &str, text: &str) -> Vec<f32> {
        let before = self.events.len();
        self.engine.submit(PatchSource::from_text(name, text));
        let mut out = Vec::new();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            out.extend(self.play(0.01));
            let outcome = self.events[before..].iter().any(|e| {
                matches!(e, LiveEvent::Playing { .. } | LiveEvent::Rejected { .. } | LiveEvent::TestFailed { .. })
            });
            if outcome {
                return out;
            }
        }
        panic!("no outcome for {name}: {:?}", &self.events[before..]);
    }

    /// Frames the engine has processed so far.
    fn frame(&self) -> u64 {
        self.engine.meters().frames.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn has(&self, f: impl Fn(&LiveEvent) -> bool) -> bool {
        self.events.iter().any(f)
    }

    fn describe_all(&self) -> String {
        self.events.iter().map(|e| e.describe(SR)).collect::<Vec<_>>().join("\n")
    }

    /// Plays until a failed worker has been replaced (3 s at most).
    fn wait_for_replacement(&mut self) {
        let t0 = Instant::now();
        while !self.has(|e| matches!(e, LiveEvent::WorkerReplaced { .. })) && t0.elapsed() < Duration::from_secs(3) {
            self.play(0.01);
        }
    }

    /// The one worker failure so far, after waiting for its replacement.
    fn failure(&mut self) -> (Recovery, Option<u64>, String) {
        self.wait_for_replacement();
        let failures: Vec<_> = self
            .events
            .iter()
            .filter_map(|e| match e {
                LiveEvent::WorkerFailed { recovery, now_playing, fault, .. } => {
                    Some((*recovery, *now_playing, fault.describe()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(failures.len(), 1, "{}", self.describe_all());
        assert!(self.has(|e| matches!(e, LiveEvent::WorkerReplaced { .. })), "{}", self.describe_all());
        failures[0].clone()
    }
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// Every 10 ms window of `x` (which starts at engine frame `f0`) still carries
/// the 0.5 sine (RMS 0.354), except where the engine reported that a worker
/// answered late (the VM preempted it: the machine, not the engine or the patch).
fn assert_no_gap(x: &[f32], f0: u64, events: &[LiveEvent]) {
    assert_no_gap_below(x, f0, events, 0.3);
}

/// As `assert_no_gap`, for any sound whose every 10 ms has an RMS over `min_rms`.
fn assert_no_gap_below(x: &[f32], f0: u64, events: &[LiveEvent], min_rms: f64) {
    let late = late_frames(events);
    for (i, w) in x.chunks(480).enumerate() {
        // A short last piece can fall near a zero crossing of the sine: too short to judge.
        if rms(w) > min_rms || w.len() < 240 {
            continue;
        }
        let (start, end) = (f0 + i as u64 * 480, f0 + (i as u64 + 1) * 480);
        let explained = late.iter().any(|&at| at + 2 * BLOCK as u64 >= start && at <= end + 2 * BLOCK as u64);
        let said: Vec<String> = events.iter().map(|e| e.describe(SR)).collect();
        assert!(explained, "a gap at frame {start}: rms {} with no late worker reported:\n{}", rms(w), said.join("\n"));
        eprintln!("a block lost at frame {start} to a late worker (reported)");
    }
}

/// Engine frames at which the engine reported a worker late, and every
/// block of a silence it reported for a late worker or for nothing left to play.
fn late_frames(events: &[LiveEvent]) -> Vec<u64> {
    let mut frames = Vec::new();
    for e in events {
        match e {
            LiveEvent::WorkerLate { at, .. } => frames.push(at.0),
            LiveEvent::Silence { from, frames: n, cause: SilenceCause::Late { .. } | SilenceCause::Stopped } => {
                frames.extend((from.0..=from.0 + n.0).step_by(BLOCK));
            }
            // A silence still going on when the recording ended: said, with its cause, at its start.
            LiveEvent::SilenceBegan { from, cause: SilenceCause::Late { .. } | SilenceCause::Stopped }
                if !events.iter().any(|e| matches!(e, LiveEvent::Silence { from: f, .. } if f == from)) =>
            {
                frames.extend((from.0..=from.0 + 48000).step_by(BLOCK));
            }
            _ => {}
        }
    }
    frames
}

/// No sample-to-sample step of `x` (which starts at engine frame `f0`) is
/// bigger than `max_step`, except next to a block the engine reported as
/// covered for a late worker (the VM held it, perhaps after it had written
/// part of the state: the machine, not the engine).
fn assert_no_step(x: &[f32], f0: u64, max_step: f64, s: &Session) {
    let late = late_frames(&s.events);
    for n in 1..x.len() {
        let step = (x[n] - x[n - 1]).abs() as f64;
        let frame = f0 + n as u64;
        if late.iter().any(|&at| at <= frame + BLOCK as u64 && frame <= at + 2 * BLOCK as u64) {
            continue;
        }
        assert!(step <= max_step, "a step of {step} at frame {frame}, no late worker reported: {}", s.describe_all());
    }
}

/// A version that plays like the sine for 0.1 s, then does `fault`.
fn faulty(fault: &str) -> String {
    format!(
        "void compiled(void) {{ *_double(0) = _time(); }}\n\
         void play(void) {{\n  if (_time() > *_double(0) + 0.1) {{ {fault} }}\n  _out(0, 0.5f * Cycle(440));\n}}\n"
    )
}

thread_local! {
    /// Whether the engine reported the machine late in this thread's
    /// current attempt (a worker answered past its deadline, or a failure
    /// was noticed well past it).
    static MACHINE_LATE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs a live test again (up to `FAULT_ATTEMPTS` times) when an attempt
/// failed after the engine itself reported that the machine ran late: a VM
/// preempting a realtime thread for milliseconds is the machine, not the
/// engine. A failure without such a report fails at once.
fn tolerating_a_late_machine(body: impl Fn()) {
    for attempt in 1..=FAULT_ATTEMPTS {
        MACHINE_LATE.with(|l| l.set(false));
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&body)) {
            Ok(()) => return,
            Err(_) if MACHINE_LATE.with(|l| l.get()) && attempt < FAULT_ATTEMPTS => {
                eprintln!("attempt {attempt} failed after the engine reported the machine late: again");
            }
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// How many times a fault case may be tried when the machine, not the
/// engine, spoiled an attempt (see `machine_was_late`).
const FAULT_ATTEMPTS: usize = 3;

fn fault_case(fault: &str, expect: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut spoiled = Vec::new();
    for attempt in 1..=FAULT_ATTEMPTS {
        match fault_attempt(fault, expect) {
            Ok(()) => return,
            Err(Attempt::MachineLate(why)) => {
                eprintln!("attempt {attempt}: the machine was late, not the engine: {why}");
                spoiled.push(why);
            }
            Err(Attempt::Wrong(why)) => panic!("{why}"),
        }
    }
    panic!("every attempt was spoiled by a late machine:\n{}", spoiled.join("\n"));
}

/// Why an attempt did not pass.
enum Attempt {
    /// The engine did the right thing for a machine that ran late (the audio
    /// thread saw the fault well past its deadline, or the backup's request
    /// missed its own): it faded out instead of filling, or a crash that
    /// takes time (the stack overflow) was caught by the deadline first.
    MachineLate(String),
    /// The engine did the wrong thing.
    Wrong(String),
}

/// Slack past the 1.33 ms deadline within which a timely audio thread notices.
const NOTICE_SLACK: Duration = Duration::from_micros(250);

/// Whether the failure report shows the machine itself ran late.
fn machine_was_late(detected: Duration, fallback: &Option<Result<Duration, clavm_audio::live::WorkerFault>>) -> bool {
    let deadline = Duration::from_secs_f64(BLOCK as f64 / SR / 2.0);
    detected > deadline + NOTICE_SLACK || matches!(fallback, Some(Err(clavm_audio::live::WorkerFault::Deadline { .. })))
}

fn fault_attempt(fault: &str, expect: &str) -> Result<(), Attempt> {
    let mut s = Session::with_sine();
    // Frames of a kilobyte: the 2 MB stack overflows within microseconds,
    // long before the deadline, so the crash (not a hang) is what is seen.
    let helpers =
        "int depth(int n) { volatile char pad[1024]; pad[0] = (char)n; return n > 0 ? depth(n + 1) + pad[0] : 0; }\n";
    s.submit("faulty.c", &format!("{helpers}{}", faulty(fault)));
    assert!(s.has(|e| matches!(e, LiveEvent::Playing { version: 2, .. })), "{}", s.describe_all());
    let f0 = s.frame();
    let x = s.play(0.6);
    s.wait_for_replacement();
    let mut late = false;
    let mut failures = Vec::new();
    for e in &s.events {
        if let LiveEvent::WorkerFailed { detected, fallback, recovery, now_playing, fault, .. } = e {
            eprintln!("{}: detected {detected:?} into the block, fallback {fallback:?}", fault.describe());
            late |= machine_was_late(*detected, fallback);
            failures.push((*recovery, *now_playing, fault.describe()));
        }
    }
    if failures.len() != 1 {
        // A second failure of the version that covered (a deadline, the
        // machine late again) is the machine's; anything else is wrong.
        let why = format!("{} failures, not one:\n{}", failures.len(), s.describe_all());
        s.engine.shutdown();
        return Err(if late { Attempt::MachineLate(why) } else { Attempt::Wrong(why) });
    }
    let (recovery, now_playing, what) = failures.remove(0);
    let result = (|| {
        if !what.contains(expect) {
            return Err(format!("expected '{expect}' in: {what}"));
        }
        if now_playing != Some(1) {
            return Err(format!("the previous version should play on, not {now_playing:?}"));
        }
        if recovery != Recovery::FilledByBackup {
            return Err(format!("{what}: recovery {recovery:?}, not filled by the backup"));
        }
        Ok(())
    })();
    if let Err(why) = result {
        s.engine.shutdown();
        return Err(if late { Attempt::MachineLate(why) } else { Attempt::Wrong(why) });
    }
    assert_no_gap(&x, f0, &s.events);
    // And it keeps playing after the replacement.
    let f1 = s.frame();
    let y = s.play(0.2);
    assert_no_gap(&y, f1, &s.events);
    s.engine.shutdown();
    Ok(())
}

#[test]
fn segfault_in_play() {
    fault_case("int *p = 0; *p = 1;", "play() crashed: SIGSEGV");
}

#[test]
fn division_by_zero_in_play() {
    fault_case("volatile int z = _i(100); _out(0, (float)(7 / z));", "play() crashed: SIGFPE");
}

#[test]
fn stack_overflow_in_play() {
    fault_case("_out(0, (float)depth(1));", "stack overflow");
}

#[test]
fn infinite_loop_in_play() {
    fault_case("for (;;) {}", "exceeded its 1.3 ms deadline: infinite loop?");
}

#[test]
fn wild_write_next_to_the_state_memory() {
    // Far below slot 0 of _float: the guard pages around the state memory.
    fault_case("float *p = _float(0); p[-300000] = 1.0f;", "play() crashed: SIGSEGV");
}

/// Versions that never reach the speakers: the sine plays on without a glitch.
fn refused_case(text: &str, expect: &str) -> Session {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = Session::with_sine();
    let f0 = s.frame();
    let x = s.submit("bad.c", text);
    let f1 = s.frame();
    let x2 = s.play(0.2);
    let said = s.describe_all();
    assert!(said.contains(expect), "expected '{expect}' in:\n{said}");
    assert!(!s.has(|e| matches!(e, LiveEvent::Playing { version: 2, .. })), "{said}");
    assert!(!s.has(|e| matches!(e, LiveEvent::WorkerFailed { .. })), "{said}");
    assert_no_gap(&x, f0, &s.events);
    assert_no_gap(&x2, f1, &s.events);
    s
}

#[test]
fn a_compile_error_is_reported_at_its_line_and_column() {
    tolerating_a_late_machine(|| {
        let s = refused_case("void play(void) {\n  _out(0, x);\n}\n", "bad.c:2:11: error: 'x' undeclared");
        s.engine.shutdown();
    });
}

#[test]
fn an_infinite_loop_in_compiled_never_reaches_the_speakers() {
    tolerating_a_late_machine(|| {
        let mut s = refused_case("void compiled(void) { for (;;) {} }\nvoid play(void) {}", "infinite loop");
        // The hung worker was killed and replaced.
        let t0 = Instant::now();
        while !s.has(|e| matches!(e, LiveEvent::WorkerReplaced { .. })) && t0.elapsed() < Duration::from_secs(3) {
            s.play(0.01);
        }
        assert!(s.has(|e| matches!(e, LiveEvent::WorkerReplaced { .. })));
        s.engine.shutdown();
    });
}

#[test]
fn nan_output_never_reaches_the_speakers() {
    tolerating_a_late_machine(|| {
        let s = refused_case("void play(void) { _out(0, 0.0f / 0.0f); }", "NaN/Inf");
        s.engine.shutdown();
    });
}

#[test]
fn a_crash_in_the_test_run_never_reaches_the_speakers() {
    tolerating_a_late_machine(|| {
        let s = refused_case("void play(void) { int *p = 0; _out(0, (float)*p); }", "test run crashed");
        s.engine.shutdown();
    });
}

#[test]
fn system_fork_and_exit_are_blocked_and_reported_while_the_sound_goes_on() {
    tolerating_a_late_machine(|| {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = Session::with_sine();
        let text = "#include <stdlib.h>\n#include <unistd.h>\n\
                    void play(void) { system(\"rm -rf /tmp/clavm-nothing\"); fork(); exit(1); abort(); _out(0, 0.5f * Cycle(440)); }";
        s.submit("evil.c", text);
        let f0 = s.frame();
        let x = s.play(0.3);
        let said = s.describe_all();
        assert!(s.has(|e| matches!(e, LiveEvent::Playing { version: 2, .. })), "{said}");
        assert!(said.contains("called system(): blocked"), "{said}");
        assert!(!s.has(|e| matches!(e, LiveEvent::WorkerFailed { .. })), "{said}");
        assert_no_gap(&x, f0, &s.events);
        s.engine.shutdown();
    });
}

#[test]
fn an_edit_keeps_phase_across_workers() {
    tolerating_a_late_machine(|| {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = Session::with_sine();
        let f0 = s.frame();
        let mut x = s.play(0.1);
        // Same oscillator, a line added, a silent new one: the output must stay one continuous sine.
        x.extend(s.submit(
            "edit.c",
            "// edited\nvoid play(void) {\n  float l = Cycle(3) * 0.0f;\n  _out(0, 0.5f * Cycle(440) + l);\n}",
        ));
        x.extend(s.play(0.1));
        assert!(s.has(|e| matches!(e, LiveEvent::Playing { version: 2, .. })));
        let max_step = 0.5 * std::f64::consts::TAU * 440.0 / SR;
        // Only a block the engine reported as covered for a late worker (the
        // VM preempted it: the machine, not the swap) may break the sine.
        assert_no_step(&x, f0, max_step * 1.05, &s);
        s.engine.shutdown();
    });
}

#[test]
fn shutdown_leaves_no_worker_process_behind() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = Session::with_sine();
    s.play(0.05);
    assert_eq!(common::workers_of(std::process::id()), WORKERS, "every worker while playing");
    s.engine.shutdown();
    assert_eq!(common::workers_of(std::process::id()), 0);
}

#[test]
fn a_patch_that_touches_gigabytes_is_stopped_and_the_sound_goes_on() {
    tolerating_a_late_machine(|| {
        // 3 GB of static memory, touched a page at a time while playing: the worker
        // is bounded (4 GB of address space), so this ends as a hang or a crash of
        // that worker, covered by the previous version, never as the machine's OOM.
        let text = "static char big[3000000000u];\n\
                    void compiled(void) { *_double(0) = _time(); }\n\
                    void play(void) {\n\
                      if (_time() > *_double(0) + 0.05) for (long i = 0; i < 3000000000L; i += 4096) big[i] = 1;\n\
                      _out(0, 0.5f * Cycle(440));\n}\n";
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = Session::with_sine();
        s.submit("big.c", text);
        let f0 = s.frame();
        let x = s.play(0.5);
        let said = s.describe_all();
        if s.has(|e| matches!(e, LiveEvent::Playing { version: 2, .. })) {
            let (_, now_playing, _) = s.failure();
            assert_eq!(now_playing, Some(1), "{said}");
        } else {
            assert!(s.has(|e| matches!(e, LiveEvent::Rejected { .. } | LiveEvent::TestFailed { .. })), "{said}");
        }
        assert_no_gap(&x, f0, &s.events);
        s.engine.shutdown();
    });
}

#[test]
fn a_patch_that_floods_stdout_with_raw_syscalls_is_contained() {
    tolerating_a_late_machine(|| {
        // `printf` does not link, but inline assembly can still call write(2).
        // Workers' stdout is /dev/null; the flood is so slow that the worker misses
        // its deadline, is covered by the previous version, and is replaced.
        let text = "void compiled(void) { *_double(0) = _time(); }\n\
                    void play(void) {\n\
                      if (_time() > *_double(0) + 0.05)\n\
                        for (int i = 0; i < 1000000; i++) {\n\
                          long r;\n\
                          __asm__ volatile (\"syscall\" : \"=a\"(r) : \"a\"(1L), \"D\"(1L), \"S\"(\"flood\\n\"), \"d\"(6L) : \"rcx\", \"r11\", \"memory\");\n\
                        }\n\
                      _out(0, 0.5f * Cycle(440));\n}\n";
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = Session::with_sine();
        s.submit("flood.c", text);
        let said = s.describe_all();
        assert!(s.has(|e| matches!(e, LiveEvent::Playing { version: 2, .. })), "{said}");
        let f0 = s.frame();
        let x = s.play(0.5);
        let (_, now_playing, what) = s.failure();
        assert!(what.contains("deadline"), "{what}");
        assert_eq!(now_playing, Some(1));
        assert_no_gap(&x, f0, &s.events);
        s.engine.shutdown();
    });
}

#[test]
fn after_a_stall_that_killed_a_version_and_its_backup_the_version_comes_back_by_itself() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The stall makes the machine late by design; a busy machine may add a
    // late block of its own before it, which changes who fails first: again.
    tolerating_a_late_machine(after_a_stall_attempt);
}

fn after_a_stall_attempt() {
    let mut s = Session::with_sine();
    // Version 2 plays with version 1 as its backup. The same sine at the same
    // level: a block the backup covers for a VM hiccup is seamless.
    s.submit("edit.c", "// edited\nvoid play(void) { _out(0, 0.5f * Cycle(440)); }");
    assert!(s.has(|e| matches!(e, LiveEvent::Playing { version: 2, .. })), "{}", s.describe_all());
    let f0 = s.frame();
    let mut x = s.play(1.2);
    // Both miss their deadlines and stay silent past the hang limit: both are
    // declared hung and killed, and nothing is left to play.
    x.extend(s.stall_workers(0.08));
    x.extend(s.play_until(|e| matches!(e, LiveEvent::Playing { version: 3, .. })));
    let said = s.describe_all();
    assert!(s.has(|e| matches!(e, LiveEvent::WorkerFailed { version: 2, now_playing: None, .. })), "{said}");
    assert!(s.has(|e| matches!(e, LiveEvent::Resumed { version: 3, of: 2, .. })), "{said}");
    assert!(s.has(|e| matches!(e, LiveEvent::Playing { version: 3, .. })), "{said}");
    x.extend(s.play(0.3));
    // The sine is back at its level (RMS 0.354) in every 10 ms, except where the
    // engine reported the machine late again after the resume.
    let tail = x.len() - 9600;
    assert_no_gap(&x[tail..], f0 + tail as u64, &s.events);
    let peak = x[tail..].iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(peak < 0.51, "peak {peak} after the resume: {said}");
    // No click on the way down or back up: the sound fades out and in. Only
    // a block covered for a worker the engine reported late may break the sine.
    let max_step = 0.5 * std::f64::consts::TAU * 440.0 / SR;
    assert_no_step(&x, f0, max_step * 1.2, &s);
    s.engine.shutdown();
}

#[test]
fn a_version_stuck_by_its_own_state_is_not_brought_back() {
    tolerating_a_late_machine(a_version_stuck_by_its_own_state_attempt);
}

fn a_version_stuck_by_its_own_state_attempt() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Counts its own time in the state memory and loops for ever after 1.2 s:
    // the state kept for a resume would make it loop again at once.
    let text = "void play(void) {\n\
                  double *t = _double(0);\n\
                  *t += 1.0 / 48000.0;\n\
                  if (*t > 1.2) for (;;) {}\n\
                  _out(0, 0.5f * Cycle(440));\n}\n";
    let mut s = Session::with("stuck.c", text);
    let mut x = s.play(1.3);
    x.extend(s.play_until(|e| matches!(e, LiveEvent::NotResumed { .. } | LiveEvent::Resumed { .. })));
    let said = s.describe_all();
    assert!(s.has(|e| matches!(e, LiveEvent::WorkerFailed { version: 1, now_playing: None, .. })), "{said}");
    // Its test run on the kept state hangs (within the test run's timeout,
    // never on the speakers): it is not brought back.
    assert!(
        s.has(|e| matches!(e, LiveEvent::NotResumed { version: 1, reason } if reason.contains("test run"))),
        "{said}"
    );
    x.extend(s.play(0.2));
    assert!(!s.has(|e| matches!(e, LiveEvent::Playing { version: 2, .. })), "{said}");
    assert!(rms(&x[x.len() - 4800..]) < 1e-6, "silence until the next submit: {said}");
    s.engine.shutdown();
}

#[test]
fn every_silent_block_is_reported_with_its_cause() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Version 1 has no backup: when its worker is held past its deadline
    // (as a busy machine does), the engine can only fade out until it answers.
    let mut s = Session::with_sine();
    s.play(0.1);
    let f0 = s.frame();
    let mut x = s.stall_workers(0.012);
    x.extend(s.play(0.2));
    let spans: Vec<(u64, u64, SilenceCause)> = s
        .events
        .iter()
        .filter_map(|e| match e {
            LiveEvent::Silence { from, frames, cause } => Some((from.0, from.0 + frames.0, *cause)),
            _ => None,
        })
        .collect();
    assert!(!spans.is_empty(), "the held worker's silence is reported: {}", s.describe_all());
    assert!(spans.iter().all(|(_, _, c)| *c == SilenceCause::Late { version: 1 }), "{spans:?}");
    // Every silent block lies inside a reported span (give or take the block
    // that fades out into it and the fade in after it).
    for (i, b) in x.chunks(BLOCK).enumerate() {
        let start = f0 + (i * BLOCK) as u64;
        if rms(b) < 0.05 {
            let covered = spans.iter().any(|&(a, z, _)| a <= start + BLOCK as u64 && start <= z + 2 * BLOCK as u64);
            assert!(covered, "silent block at frame {start} not reported: {}", s.describe_all());
        }
    }
    assert!(s.describe_all().contains("of silence: version 1 missed its deadline"), "{}", s.describe_all());
    s.engine.shutdown();
}

#[test]
fn a_stall_right_after_the_engine_starts_does_not_leave_a_benign_version_silent() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Version 1 has just started (no backup, well under the 1 s a crash needs
    // before it is taken for the machine): a stall past the hang limit kills
    // it, and its test run on the kept state shows it is not stuck.
    let mut s = Session::with_sine();
    s.stall_workers(0.06);
    s.play_until(|e| matches!(e, LiveEvent::Playing { version: 2, .. }));
    let said = s.describe_all();
    assert!(s.has(|e| matches!(e, LiveEvent::WorkerFailed { version: 1, now_playing: None, .. })), "{said}");
    assert!(s.has(|e| matches!(e, LiveEvent::Resumed { version: 2, of: 1, .. })), "{said}");
    assert!(!s.has(|e| matches!(e, LiveEvent::NotResumed { .. })), "{said}");
    // The silence was reported, with its cause.
    assert!(s.has(|e| matches!(e, LiveEvent::Silence { cause: SilenceCause::Late { version: 1 }, .. })), "{said}");
    // The sine is back at its level in every 10 ms, except where the engine
    // reported the machine late again after the resume (past its 10 ms fade in).
    s.play(0.02);
    let f0 = s.frame();
    let x = s.play(0.3);
    assert_no_gap(&x, f0, &s.events);
    let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(peak < 0.51, "peak {peak} after the resume: {said}");
    s.engine.shutdown();
}

/// A new version whose `compiled()` takes 5 ms: past the block's deadline
/// (a busy machine holds a worker this long), well within the hang limit.
#[cfg(target_arch = "x86_64")]
const SLOW_TO_START: &str = r#"
static void nap(long ns) {
    long ts[2];
    long r;
    ts[0] = 0;
    ts[1] = ns;
    __asm__ __volatile__("syscall" : "=a"(r) : "a"(35L), "D"(ts), "S"(0L) : "rcx", "r11", "memory");
}
void compiled(void) { nap(5000000L); }
void play(void) { _out(0, 0.4f * Cycle(440)); }
"#;

#[cfg(target_arch = "x86_64")]
#[test]
fn a_new_version_late_in_its_first_block_of_a_crossfade_plays_when_it_answers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    tolerating_a_late_machine(|| {
        let mut s = Session::with_sine();
        let f0 = s.frame();
        let mut x = s.submit("slow.c", SLOW_TO_START);
        x.extend(s.play_until(|e| matches!(e, LiveEvent::Playing { version: 2, .. })));
        x.extend(s.play(0.2));
        let said = s.describe_all();
        // Late, not failed: the old version played alone meanwhile, then the fade went on.
        assert!(s.has(|e| matches!(e, LiveEvent::Playing { version: 2, .. })), "{said}");
        assert!(s.has(|e| matches!(e, LiveEvent::WorkerLate { version: 2, .. })), "{said}");
        assert!(!s.has(|e| matches!(e, LiveEvent::WorkerFailed { version: 2, .. })), "{said}");
        // No gap: the sine (0.5, then 0.4) carries through every 10 ms,
        // except where the engine reported the machine late.
        assert_no_gap_below(&x, f0, &s.events, 0.25);
        let level = rms(&x[x.len() - 4800..]);
        assert!((level - 0.4 / 2f64.sqrt()).abs() < 0.01, "rms {level}: the new version plays: {said}");
        s.engine.shutdown();
    });
}

/// The engine's output of a patch that plays `_beat()` scaled: 1/16 per beat.
const BEAT_RAMP: &str = "void play(void) { _out(0, (float)(_beat() / 16.0)); }";

#[test]
fn a_quantised_submit_waits_for_the_next_bar_and_starts_on_its_first_sample() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    tolerating_a_late_machine(|| {
        // 240 BPM: a beat is 12000 frames, a bar of four 48000 (one second).
        let mut s = Session::configured("sine.c", SINE, |c| {
            c.bpm = clavm_audio::clock::Bpm::new(240.0).unwrap();
            c.crossfade = clavm_audio::Frames(0);
        });
        let quant = clavm_audio::clock::Quant::new(4.0).unwrap();
        s.engine.submit_quantised(PatchSource::from_text("dc.c", "void play(void) { _out(0, 0.25f); }"), Some(quant));
        let f0 = s.frame();
        let x = s.play_until(|e| matches!(e, LiveEvent::Playing { version: 2, .. }));
        let said = s.describe_all();
        assert!(said.contains("version 2 waiting for bar 2"), "{said}");
        let at = s
            .events
            .iter()
            .find_map(|e| match e {
                LiveEvent::Playing { version: 2, at, .. } => Some(at.0),
                _ => None,
            })
            .unwrap();
        assert_eq!(at, 48000, "the first frame of bar 2: {said}");
        // The sine plays up to the boundary, the new version from its first sample.
        let k = (at - f0) as usize;
        assert!(x.len() > k, "{said}");
        assert_eq!(x[k], 0.25, "{said}");
        assert!(x[k - 1] != 0.25, "{said}");
        s.engine.shutdown();
    });
}

#[test]
fn a_tempo_change_bends_beat_without_a_jump() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    tolerating_a_late_machine(|| {
        let mut s = Session::configured("beat.c", BEAT_RAMP, |c| c.crossfade = clavm_audio::Frames(0));
        let mut x = s.play(0.1);
        s.engine.set_bpm(clavm_audio::clock::Bpm::new(60.0).unwrap());
        x.extend(s.play(0.1));
        let before = 120.0 / 60.0 / SR / 16.0;
        let after = 60.0 / 60.0 / SR / 16.0;
        let mut changed = false;
        for (n, w) in x.windows(2).enumerate() {
            let step = (w[1] - w[0]) as f64;
            let ok = (step - before).abs() < 1e-6 || (step - after).abs() < 1e-6;
            assert!(ok, "a step of {step} at {n}: {}", s.describe_all());
            changed |= (step - after).abs() < 1e-7;
        }
        assert!(changed, "the tempo changed");
        s.engine.shutdown();
    });
}
