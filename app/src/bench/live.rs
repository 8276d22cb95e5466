//! `clavm bench --live`: what the worker processes cost and how fast the live
//! engine reacts, each against a reference measured in the same run.
//!
//! A. Block round trip: the same patch rendered by the live engine (through a
//!    worker) and by the in-process engine, 128-frame blocks alternating on one
//!    paced thread; the difference is the worker's overhead.
//! B. Submit to sound: from `submit()` to the first rendered block of the new
//!    version, while a paced audio thread plays.
//! C. Fault recovery: a version that segfaults and one that hangs; when the
//!    failure was known, how long the backup took to fill the block, and how
//!    soon a fresh worker was ready.
//! D. Resume after a stall: every worker stopped (SIGSTOP) for 80 ms, so the
//!    active version and its backup are both declared hung and killed; how
//!    long until the version plays again by itself, against a plain submit
//!    to sound measured in the same runs.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clavm_audio::engine::{self, EngineConfig};
use clavm_audio::live::{LiveConfig, LiveEngine, LiveEvent, LiveProcessor, Recovery};
use clavm_audio::{Frames, PatchSource};

use super::stats::Percentiles;

const SR: f64 = 48000.0;
const BLOCK: usize = 128;

fn budget() -> Duration {
    Duration::from_secs_f64(BLOCK as f64 / SR)
}

fn realtime() -> bool {
    // SAFETY: sched_setscheduler on the calling thread with a valid param.
    unsafe {
        let param = libc::sched_param { sched_priority: 60 };
        libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0
    }
}

pub(super) fn start() -> anyhow::Result<(LiveEngine, LiveProcessor)> {
    let exe = std::env::current_exe()?;
    Ok(LiveEngine::start(LiveConfig::new(SR, 2, exe))?)
}

/// Processes blocks until `version` plays (or 5 s pass).
pub(super) fn play_until(e: &LiveEngine, p: &mut LiveProcessor, version: u64) -> anyhow::Result<()> {
    let mut out = vec![0.0f32; BLOCK * 2];
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        p.process(&[], &mut out);
        while let Some(ev) = e.next_event(Duration::ZERO) {
            match ev {
                LiveEvent::Playing { version: v, .. } if v == version => return Ok(()),
                LiveEvent::Rejected { .. } | LiveEvent::TestFailed { .. } => bail!("{}", ev.describe(SR)),
                _ => {}
            }
        }
        std::thread::sleep(budget());
    }
    bail!("version {version} never played")
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn pct(d: Duration) -> String {
    format!("{:.1}%", d.as_secs_f64() / budget().as_secs_f64() * 100.0)
}

/// A. One patch: p50/p99 per block of (live, live without the sandbox, in-process),
/// interleaved block by block so that all three see the same machine.
fn round_trip(source: &PatchSource, seconds: f64) -> anyhow::Result<[Percentiles; 3]> {
    let (live, mut p) = start()?;
    let exe = std::env::current_exe()?;
    let (bare, mut p_bare) = LiveEngine::start(LiveConfig { sandbox: false, ..LiveConfig::new(SR, 2, exe) })?;
    live.submit(source.clone());
    play_until(&live, &mut p, 1)?;
    bare.submit(source.clone());
    play_until(&bare, &mut p_bare, 1)?;
    let (mut eng, mut handle) = engine::engine(EngineConfig::new(SR, 2))?;
    let prepared = handle.compile(source).map_err(|e| anyhow::anyhow!("{e}"))?;
    handle.install(prepared).map_err(|e| anyhow::anyhow!("{e}"))?;
    let blocks = (seconds * SR / BLOCK as f64) as usize;
    let mut times: [Vec<Duration>; 3] = std::array::from_fn(|_| Vec::with_capacity(blocks));
    let mut out = vec![0.0f32; BLOCK * 2];
    let mut next = Instant::now();
    for b in 0..blocks {
        // Rotate which goes first, so none always finds the caches warm.
        for k in 0..3 {
            let which = (b + k) % 3;
            let t = Instant::now();
            match which {
                0 => p.process(&[], &mut out),
                1 => p_bare.process(&[], &mut out),
                _ => eng.process(&[], &mut out),
            }
            times[which].push(t.elapsed());
        }
        handle.collect();
        while live.next_event(Duration::ZERO).is_some() {}
        while bare.next_event(Duration::ZERO).is_some() {}
        next += budget();
        if let Some(w) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
    }
    drop(eng);
    handle.collect();
    live.shutdown();
    bare.shutdown();
    Ok(times.map(|mut t| Percentiles::of(&mut t)))
}

/// A paced audio thread owning the processor, until dropped.
pub(super) struct AudioThread {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl AudioThread {
    pub(super) fn start(mut p: LiveProcessor) -> AudioThread {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            realtime();
            let mut out = vec![0.0f32; BLOCK * 2];
            let mut next = Instant::now();
            while !s.load(Ordering::Relaxed) {
                p.process(&[], &mut out);
                next += budget();
                if let Some(w) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(w);
                }
            }
        });
        AudioThread { stop, handle: Some(handle) }
    }
}

impl Drop for AudioThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Waits for an event matching `f`; on failure, says what the engine said last.
pub(super) fn wait_for(
    e: &LiveEngine,
    timeout: Duration,
    mut f: impl FnMut(&LiveEvent) -> bool,
) -> anyhow::Result<LiveEvent> {
    let t0 = Instant::now();
    let mut recent: Vec<String> = Vec::new();
    while t0.elapsed() < timeout {
        if let Some(ev) = e.next_event(Duration::from_millis(10)) {
            if f(&ev) {
                return Ok(ev);
            }
            if matches!(ev, LiveEvent::Rejected { .. } | LiveEvent::TestFailed { .. } | LiveEvent::Error(_)) {
                bail!("{}", ev.describe(SR));
            }
            recent.push(ev.describe(SR));
        }
    }
    let last = recent.iter().rev().take(6).rev().cloned().collect::<Vec<_>>().join("\n  ");
    bail!("timed out waiting for the engine; its last words:\n  {last}")
}

/// B. One patch: submit-to-first-new-block latencies, and compile+test times.
fn submit_to_sound(source: &PatchSource, n: usize) -> anyhow::Result<(Percentiles, Percentiles)> {
    let (live, p) = start()?;
    let audio = AudioThread::start(p);
    let mut latency = Vec::new();
    let mut compile = Vec::new();
    for i in 0..=n {
        // A comment change still makes a new version (and a real swap).
        let mut s = source.clone();
        s.text.push_str(&format!("\n// edit {i}\n"));
        let t0 = Instant::now();
        live.submit(s);
        let mut built = Duration::ZERO;
        let ev = wait_for(&live, Duration::from_secs(5), |ev| {
            if let LiveEvent::Compiled { compile, test, .. } = ev {
                built = *compile + *test;
            }
            matches!(ev, LiveEvent::Playing { .. })
        })?;
        if let (LiveEvent::Playing { played, .. }, true) = (ev, i > 0) {
            latency.push(played.duration_since(t0));
            compile.push(built);
        }
    }
    drop(audio);
    live.shutdown();
    Ok((Percentiles::of(&mut latency), Percentiles::of(&mut compile)))
}

struct FaultRow {
    name: &'static str,
    detected: Percentiles,
    fallback: Percentiles,
    filled: usize,
    runs: usize,
    replaced: Percentiles,
    covered: Percentiles,
}

/// C. Repeated failures of one kind while the previous version covers.
fn fault_recovery(name: &'static str, fault: &str, runs: usize) -> anyhow::Result<FaultRow> {
    let (live, p) = start()?;
    let audio = AudioThread::start(p);
    let sine = "void play(void) { _out(0, 0.5f * Cycle(440)); }";
    let faulty = format!(
        "void compiled(void) {{ *_double(0) = _time(); }}\n\
         void play(void) {{ if (_time() > *_double(0) + 0.05) {{ {fault} }} _out(0, 0.5f * Cycle(440)); }}"
    );
    let (mut detected, mut fallback, mut replaced, mut covered) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut filled = 0;
    for i in 0..runs {
        live.submit(PatchSource::from_text("sine.c", &format!("{sine}\n// {i}")));
        wait_for(&live, Duration::from_secs(5), |e| matches!(e, LiveEvent::Playing { .. }))?;
        live.submit(PatchSource::from_text("faulty.c", &faulty));
        let ev = wait_for(&live, Duration::from_secs(5), |e| matches!(e, LiveEvent::WorkerFailed { .. }))?;
        if let LiveEvent::WorkerFailed { detected: d, fallback: f, recovery, .. } = ev {
            detected.push(d);
            if let Some(Ok(f)) = f {
                fallback.push(f);
            }
            filled += (recovery == Recovery::FilledByBackup) as usize;
        }
        if let LiveEvent::BackupReady { after, .. } =
            wait_for(&live, Duration::from_secs(5), |e| matches!(e, LiveEvent::BackupReady { .. }))?
        {
            covered.push(after);
        }
        if let LiveEvent::WorkerReplaced { startup, .. } =
            wait_for(&live, Duration::from_secs(5), |e| matches!(e, LiveEvent::WorkerReplaced { .. }))?
        {
            replaced.push(startup);
        }
        // Let the backfill settle before the next round.
        std::thread::sleep(Duration::from_millis(50));
        while live.next_event(Duration::ZERO).is_some() {}
    }
    drop(audio);
    live.shutdown();
    Ok(FaultRow {
        name,
        detected: Percentiles::of(&mut detected),
        fallback: Percentiles::of(&mut fallback),
        filled,
        runs,
        replaced: Percentiles::of(&mut replaced),
        covered: Percentiles::of(&mut covered),
    })
}

struct ResumeRow {
    /// From the stall's start to the resumed version's first block.
    silence: Percentiles,
    /// From the failure being declared to the version handed over again.
    resumed_after: Percentiles,
    /// A plain submit to sound, the reference.
    submit: Percentiles,
    resumed: usize,
    runs: usize,
}

/// Sends `signal` to each of our worker processes.
fn signal_all(pids: &[u32], signal: i32) {
    for &pid in pids {
        // SAFETY: kill(2) on our own worker processes with a valid signal; a
        // pid already killed and reaped fails harmlessly.
        unsafe { libc::kill(pid as i32, signal) };
    }
}

/// D. Stalls that kill the active worker and its backup.
fn resume_after_stall(runs: usize) -> anyhow::Result<ResumeRow> {
    const STALL: Duration = Duration::from_millis(80);
    let (live, p) = start()?;
    let audio = AudioThread::start(p);
    let (mut silence, mut resumed_after, mut submit) = (Vec::new(), Vec::new(), Vec::new());
    let mut resumed = 0;
    for i in 0..runs {
        for name in ["sine.c", "edit.c"] {
            let t0 = Instant::now();
            live.submit(PatchSource::from_text(
                name,
                &format!("void play(void) {{ _out(0, 0.5f * Cycle(440)); }}\n// {name} {i}"),
            ));
            if let LiveEvent::Playing { played, .. } =
                wait_for(&live, Duration::from_secs(5), |e| matches!(e, LiveEvent::Playing { .. }))?
            {
                submit.push(played.duration_since(t0));
            }
        }
        // Long enough to count as having played (see audio/src/live/resume.rs).
        std::thread::sleep(Duration::from_millis(1200));
        while live.next_event(Duration::ZERO).is_some() {}
        let pids = live.meters().worker_pids();
        let stalled = Instant::now();
        signal_all(&pids, libc::SIGSTOP);
        std::thread::sleep(STALL);
        signal_all(&pids, libc::SIGCONT);
        let mut after = None;
        let ev = wait_for(&live, Duration::from_secs(5), |e| {
            if let LiveEvent::Resumed { after: a, .. } = e {
                after = Some(*a);
            }
            after.is_some() && matches!(e, LiveEvent::Playing { .. })
        })?;
        if let (LiveEvent::Playing { played, .. }, Some(a)) = (ev, after) {
            silence.push(played.duration_since(stalled));
            resumed_after.push(a);
            resumed += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
        while live.next_event(Duration::ZERO).is_some() {}
    }
    drop(audio);
    live.shutdown();
    Ok(ResumeRow {
        silence: Percentiles::of(&mut silence),
        resumed_after: Percentiles::of(&mut resumed_after),
        submit: Percentiles::of(&mut submit),
        resumed,
        runs,
    })
}

pub fn run(patches: &Path, filter: Option<&str>) -> anyhow::Result<String> {
    let rt = realtime();
    let files = super::patch_files(patches, filter)?;
    let mut s = format!(
        "128-frame blocks at 48 kHz (budget {} ms), the measuring thread {}.\n\n",
        ms(budget()),
        if rt { "SCHED_FIFO" } else { "not realtime (no permission)" }
    );
    s.push_str("### A. Block round trip: through a worker vs in-process\n\n");
    s.push_str("Each block is rendered three ways in turn: through a sandboxed worker (as always), through a worker without its sandbox (no seccomp, no Landlock: what the allow-list costs), and in-process. Times in ms.\n\n");
    s.push_str("| patch | in-process p50 | p99 | through a worker p50 | p99 | overhead p50 | p99 (of the budget) | unsandboxed worker p50 | p99 |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut worst = Duration::ZERO;
    let (mut sandboxed_p99, mut bare_p99) = (Vec::new(), Vec::new());
    for f in &files {
        eprint!("{:<18} round trip...", f.file_name().unwrap_or_default().to_string_lossy());
        let src = PatchSource::from_file(f).map_err(|e| anyhow::anyhow!("{e}"))?;
        let [live, bare, inproc] = round_trip(&src, 1.5)?;
        let (o50, o99) = (live.p50.saturating_sub(inproc.p50), live.p99.saturating_sub(inproc.p99));
        worst = worst.max(o99);
        sandboxed_p99.push(live.p99);
        bare_p99.push(bare.p99);
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            f.file_name().unwrap_or_default().to_string_lossy(),
            ms(inproc.p50),
            ms(inproc.p99),
            ms(live.p50),
            ms(live.p99),
            pct(o50),
            pct(o99),
            ms(bare.p50),
            ms(bare.p99)
        ));
        eprintln!(" done");
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let (ms_sb, ms_bare) = (median(&mut sandboxed_p99), median(&mut bare_p99));
    s.push_str(&format!(
        "\nThe sandbox's cost: median over the patches of the p99 round trip, {} ms sandboxed against {} ms without ({:+.1}% of the budget).\n",
        ms(ms_sb),
        ms(ms_bare),
        (ms_sb.as_secs_f64() - ms_bare.as_secs_f64()) / budget().as_secs_f64() * 100.0
    ));
    s.push_str(&format!(
        "\nTarget: overhead under 5% of the budget at p99. Worst here: {} ({}).\n\n",
        pct(worst),
        if worst < budget().mul_f64(0.05) { "met" } else { "NOT met" }
    ));

    s.push_str("### B. Submit to sound\n\n");
    s.push_str("From `submit()` to the first rendered block of the new version (10 swaps per patch; includes the wait for the next block boundary, up to one block).\n\n");
    s.push_str("| patch | compile + test run p50 | submit to sound p50 | p99 |\n|---|---:|---:|---:|\n");
    let mut worst_b = Duration::ZERO;
    for f in &files {
        eprint!("{:<18} submit to sound...", f.file_name().unwrap_or_default().to_string_lossy());
        let src = PatchSource::from_file(f).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (lat, build) = submit_to_sound(&src, 10)?;
        worst_b = worst_b.max(lat.p50);
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            f.file_name().unwrap_or_default().to_string_lossy(),
            ms(build.p50),
            ms(lat.p50),
            ms(lat.p99)
        ));
        eprintln!(" done");
    }
    let target = Duration::from_millis(2) + budget();
    s.push_str(&format!(
        "\nTarget: p50 under 2 ms plus the wait for the block boundary ({} ms in all). Worst p50 here: {} ms ({}).\n\n",
        ms(target),
        ms(worst_b),
        if worst_b < target { "met" } else { "NOT met" }
    ));

    s.push_str("### C. Fault recovery\n\n");
    s.push_str("A version that fails 50 ms after it starts, while the previous one is the backup (5 runs each).\n\n");
    s.push_str("| fault | known after (p50 / max) | backup filled the block | backup took (p50 / max) | backup again, from the spare (p50 / max) | fresh worker ready (p50 / max) |\n|---|---:|---:|---:|---:|---:|\n");
    for (name, fault) in [("segfault", "int *p = 0; *p = 1;"), ("infinite loop", "for (;;) {}")] {
        eprint!("{name:<18} fault recovery...");
        let r = fault_recovery(name, fault, 5)?;
        s.push_str(&format!(
            "| {} | {} / {} ms | {} of {} | {} / {} ms | {} / {} ms | {} / {} ms |\n",
            r.name,
            ms(r.detected.p50),
            ms(r.detected.p99),
            r.filled,
            r.runs,
            ms(r.fallback.p50),
            ms(r.fallback.p99),
            ms(r.covered.p50),
            ms(r.covered.p99),
            ms(r.replaced.p50),
            ms(r.replaced.p99)
        ));
        eprintln!(" done");
    }
    s.push_str(
        "\nA hang is known at the block deadline, but declared only after 25 ms without an answer (a late worker \
         is not a dead one): its 'known after' counts from the start of the block that declared it. 'Backup again': \
         from the failure reaching the control thread to the playing version loaded into the idle spare and handed \
         to the audio thread as its backup (the next failure is covered from then on); the killed worker's \
         replacement starts after that, and its start-up is the last column.\n",
    );
    s.push_str("\n### D. Resume after a stall\n\n");
    s.push_str("Every worker stopped for 80 ms (SIGSTOP) while a version plays with its backup: both are declared hung after 25 ms and killed; the control thread compiles, tests and installs the version again by itself (5 runs). Reference: a plain submit to sound in the same runs.\n\n");
    s.push_str("| resumed | stall start to sound back (p50 / max) | failure declared to version handed over (p50 / max) | plain submit to sound (p50 / max) |\n|---:|---:|---:|---:|\n");
    eprint!("{:<18} resume after a stall...", "sine");
    let r = resume_after_stall(5)?;
    s.push_str(&format!(
        "| {} of {} | {} / {} ms | {} / {} ms | {} / {} ms |\n",
        r.resumed,
        r.runs,
        ms(r.silence.p50),
        ms(r.silence.p99),
        ms(r.resumed_after.p50),
        ms(r.resumed_after.p99),
        ms(r.submit.p50),
        ms(r.submit.p99)
    ));
    eprintln!(" done");
    s.push_str(
        "\nThe sound stops at the first missed deadline; the 25 ms hang limit, killing and replacing the two workers, \
         and the compile and test run come before it is back, faded in over 10 ms.\n",
    );
    let _ = Frames(0);
    Ok(s)
}
