//! The audio thread's half of the live engine: each block it asks the active
//! worker for audio through its slot, waits at most until its deadline, and
//! recovers from a failed worker within the same block if it can.
//!
//! Realtime rules: no allocation, no locks, no I/O; the only syscalls are
//! futex wake/wait (with a timeout) and reading the clock. Messages to and
//! from the control thread go over rtrb rings; vectors travel through them by
//! move, never allocated or freed here.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtrb::{Consumer, Producer};

use super::futex;
use super::shm::{Memory, Shm, WORKERS};
use super::slot::{RequestKind, Slot, Status, MAX_BLOCK};
use crate::builtins::api::{ClockView, FaultKind, Params, MAX_CHANNELS};
use crate::clock::{BeatTimeline, ClockMeter, ClockReading, Quant, TempoClock};
use crate::engine::swap::{Crossfade, FadeIn};
use crate::engine::FlushDenormals;
use crate::params::ParamTable;
use crate::patch::sites::SiteId;
use crate::protect::{ProtectEvent, Protection};
use crate::state::{Extent, ExtentSet, Integrity};
use crate::Frames;

/// A worker the audio thread owns, and the patch version it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Worker {
    pub slot: usize,
    pub version: u64,
    /// The heap extent the version allocates in (see `state::heap`).
    pub heap: Extent,
}

/// Control thread → audio thread.
pub enum ToAudio {
    /// `worker` holds a compiled, test-run version: play it from the next block.
    Install {
        worker: Worker,
        removed: Vec<SiteId>,
        sent: Instant,
        /// Play it from the next block (0) or from the next boundary of so many beats.
        quant: Quant,
    },
    Crossfade(Frames),
    /// `worker` holds the version playing now: keep it as the backup (after a failure used it up).
    Backup(Worker),
    /// The worker in `slot` is dead (killed and reaped): it can no longer write the state.
    Killed {
        slot: usize,
    },
}

/// Why a worker failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerFault {
    Crashed {
        signal: i32,
        stack_overflow: bool,
        in_compiled: bool,
    },
    /// No answer by the deadline (a hang, or a death without a report).
    Deadline {
        limit: Duration,
        in_compiled: bool,
    },
    /// The worker answered nonsense (a patch corrupted its slot?).
    BadResponse,
}

impl WorkerFault {
    pub fn describe(&self) -> String {
        let f = |c: bool| if c { "compiled()" } else { "play()" };
        match *self {
            WorkerFault::Crashed { signal, stack_overflow, in_compiled } => {
                let what = match signal {
                    libc::SIGSEGV if stack_overflow => "stack overflow (runaway recursion?)".to_string(),
                    libc::SIGSEGV => "SIGSEGV (invalid memory access)".to_string(),
                    libc::SIGBUS => "SIGBUS (invalid memory access)".to_string(),
                    libc::SIGFPE => "SIGFPE (integer division by zero?)".to_string(),
                    libc::SIGILL => "SIGILL (illegal instruction)".to_string(),
                    libc::SIGABRT => "SIGABRT (aborted)".to_string(),
                    libc::SIGSYS => "SIGSYS (forbidden system call)".to_string(),
                    libc::SIGXCPU => "ran 10 ms at realtime priority without a break: infinite loop?".to_string(),
                    s => format!("signal {s}"),
                };
                format!("{} crashed: {what}", f(in_compiled))
            }
            WorkerFault::Deadline { limit, in_compiled } => {
                format!("{} exceeded its {:.1} ms deadline: infinite loop?", f(in_compiled), limit.as_secs_f64() * 1e3)
            }
            WorkerFault::BadResponse => {
                "the worker answered nonsense (did the patch overwrite its memory?)".to_string()
            }
        }
    }
}

/// How a failed block was filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The previous version (the backup worker) rendered the block in time.
    FilledByBackup,
    /// No audio could be had in time: the last output faded to silence.
    FadedOut,
}

/// Audio thread → control thread.
#[derive(Debug)]
pub enum FromAudio {
    /// The version's first block was rendered at `at` (`sent` is when control sent it).
    Installed {
        worker: Worker,
        at: Frames,
        sent: Instant,
        played: Instant,
    },
    /// The crossfade to `version` is over; `freed` site ids may be reused.
    Swapped {
        version: u64,
        freed: Vec<SiteId>,
    },
    /// A quantised install waits until frame `at` (beat `beat`).
    Waiting {
        version: u64,
        at: Frames,
        beat: f64,
    },
    /// An install that failed: its removed-site list, returned unused.
    Abandoned {
        removed: Vec<SiteId>,
    },
    /// The slot is the control thread's again (an old backup).
    Retired {
        slot: usize,
    },
    /// The worker answered after its deadline (the block was covered) and plays on.
    Late {
        worker: Worker,
        late_by: Duration,
        at: Frames,
    },
    /// The worker failed; the control thread must kill and replace it.
    Failed {
        worker: Worker,
        fault: WorkerFault,
        at: Frames,
        recovery: Recovery,
        now_playing: Option<u64>,
        /// When, after the block started, the failure was known.
        detected: Duration,
        /// How the fallback went: how long it took, or why it failed.
        fallback: Option<Result<Duration, WorkerFault>>,
    },
    Fault {
        kind: FaultKind,
        detail: i64,
        at: Frames,
        version: u64,
    },
    /// Frames `from` to `from + frames` were faded out or silent, for `cause`
    /// (sent when sound comes back; the report every dropout owes the user).
    Silence {
        from: Frames,
        frames: Frames,
        cause: SilenceCause,
    },
    /// The output fades to silence from frame `from`, for `cause` (said at once;
    /// `Silence` follows when sound returns).
    SilenceBegan {
        from: Frames,
        cause: SilenceCause,
    },
    Protect(ProtectEvent),
}

/// Why the engine played silence (faded out) instead of a version's sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceCause {
    /// `version` missed its deadline and nothing could stand in (no backup,
    /// or the backup missed too): the machine was busy, or the patch hung.
    Late { version: u64 },
    /// `version` failed and nothing could stand in.
    Failed { version: u64 },
    /// A version had played and none is left (it was stopped, or is being brought back).
    Stopped,
}

impl SilenceCause {
    fn of(w: Worker, fault: WorkerFault) -> SilenceCause {
        match fault {
            WorkerFault::Deadline { .. } => SilenceCause::Late { version: w.version },
            _ => SilenceCause::Failed { version: w.version },
        }
    }

    pub fn describe(&self) -> String {
        match self {
            SilenceCause::Late { version } => format!("version {version} missed its deadline with no stand-in"),
            SilenceCause::Failed { version } => format!("version {version} failed with no stand-in"),
            SilenceCause::Stopped => "nothing was left to play".to_string(),
        }
    }
}

/// DSP load and xruns, readable from any thread.
#[derive(Debug, Default)]
pub struct Meters {
    /// Average of process time / block time, as f32 bits (an exponential average over ~1 s).
    load_avg: AtomicU32,
    /// Peak since the last `take_peak`, as f32 bits.
    load_peak: AtomicU32,
    pub xruns: AtomicU64,
    pub blocks: AtomicU64,
    /// Frames processed.
    pub frames: AtomicU64,
    /// The SCHED_FIFO priority workers serve the audio thread at (0 until the
    /// first callback, or when the audio thread is not realtime).
    pub worker_priority: std::sync::atomic::AtomicI32,
    /// The process serving each slot (0 while there is none): for tools
    /// that watch or disturb the workers (tests, `clavm bench`).
    pub worker_pids: [AtomicU32; super::shm::WORKERS],
    /// The tempo clock at the last block (the transport display; Link's phase).
    pub clock: ClockMeter,
}

impl Meters {
    /// The pids of the worker processes now running.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.worker_pids.iter().map(|p| p.load(Ordering::Relaxed)).filter(|&p| p != 0).collect()
    }

    pub fn load_avg(&self) -> f32 {
        f32::from_bits(self.load_avg.load(Ordering::Relaxed))
    }

    /// The peak load since the previous call.
    pub fn take_peak(&self) -> f32 {
        f32::from_bits(self.load_peak.swap(0, Ordering::Relaxed))
    }
}

/// The audio thread's processor. Create with `LiveEngine::start`; move into the audio callback.
pub struct LiveProcessor {
    shm: Arc<Shm>,
    slots: [*mut Slot; WORKERS],
    sample_rate: f64,
    channels: usize,
    inputs: usize,
    active: Option<Worker>,
    backup: Option<Worker>,
    fade: Option<(Worker, Crossfade)>,
    /// Sound starting again after nothing played rises from silence.
    fade_in: Option<FadeIn>,
    /// The active worker has not yet run `compiled()` on the live state.
    pending_compiled: bool,
    installing: Option<(Instant, Vec<SiteId>)>,
    crossfade_len: Frames,
    /// Beats and bars (`_beat()`), and where quantised swaps land.
    clock: TempoClock,
    /// A quantised install waiting for its beat.
    scheduled: Option<Scheduled>,
    /// A shared beat timeline the clock follows (Ableton Link), if joined.
    timeline: Option<Box<dyn BeatTimeline>>,
    /// From the start of a callback until its first frame is heard (the
    /// output's latency, as the backend reports it).
    output_latency: Duration,
    /// Tempo requests seen (see `ParamTable::tempo_request`).
    tempo_requests_seen: u64,
    params: Params,
    /// Where parameter changes come from (any thread), and the generation last copied.
    param_table: Arc<ParamTable>,
    params_seen: u64,
    /// MIDI notes on voices (`_gate`, `_hz`, ...), from the table's note ring.
    voices: crate::voices::live::LiveVoices,
    /// Where every played block is published (the scope, recording), if anyone asked.
    tap: Option<super::tap::Tap>,
    /// The control thread's doorbell, rung at the end of a block that sent it messages.
    doorbell: Arc<AtomicU32>,
    sent_this_block: bool,
    protection: Protection,
    frame: u64,
    compiled_epoch: u64,
    last_frame: [f32; MAX_CHANNELS],
    to_audio: Consumer<ToAudio>,
    from_audio: Producer<FromAudio>,
    meters: Arc<Meters>,
    last_callback: Option<Instant>,
    last_block: Duration,
    /// The share of a block's duration the workers may take.
    deadline_share: f64,
    dropped_reports: u64,
    fallback_deadline: Instant,
    /// The SCHED_FIFO priority for workers serving us: one below our own
    /// (learnt at the first block), or 0 if we are not realtime.
    worker_priority: i32,
    priority_known: bool,
    block_start: Instant,
    fallback: Option<Result<Duration, WorkerFault>>,
    /// Workers that missed their deadline but may only have been held up
    /// (at most two: the active and the backup that stood in for it).
    late: [Option<Late>; 2],
    /// A worker that missed its deadline on LIVE and may still be writing it.
    /// Until it answers or is confirmed dead, everything runs on SHADOW (a copy).
    live_tainted_by: Option<usize>,
    /// An install that arrived while LIVE was tainted (SHADOW is in use).
    deferred_install: Option<(Worker, Vec<SiteId>, Instant)>,
    /// Must-arrive messages waiting for room in the ring.
    held: [Option<FromAudio>; HELD],
    /// Since which frame, and why, the output has been silence (reported when sound returns).
    silence: Option<(u64, SilenceCause)>,
    /// Whether any version has played yet (silence before the first is no dropout).
    ever_played: bool,
}

/// An install that waits for the first frame of beat `beat`.
struct Scheduled {
    worker: Worker,
    removed: Vec<SiteId>,
    sent: Instant,
    beat: f64,
}

/// A worker set aside after missing its deadline: a hiccup if it answers
/// within `HANG_LIMIT`, a hang otherwise.
#[derive(Debug, Clone, Copy)]
struct Late {
    worker: Worker,
    seq: u32,
    /// It was the version's first block (with `compiled()`).
    first_block: bool,
    since: Instant,
    fault: WorkerFault,
    recovery: Recovery,
    /// When the deadline was missed (into its block), and how the block was covered.
    detected: Duration,
    fallback: Option<Result<Duration, WorkerFault>>,
    /// A new version late in its first block of a crossfade: where the fade
    /// stood, to carry on from there if it answers (the old version plays alone meanwhile).
    fade: Option<Crossfade>,
}

/// How long a late worker may take before it is declared hung and killed.
/// Virtual machines preempt for 1-4 ms at times: that is not a hang.
const HANG_LIMIT: Duration = Duration::from_millis(25);

/// Ring slots kept free of reports (Late, Fault, Protect) for must-arrive messages.
const RESERVED_SLOTS: usize = 64;
/// Must-arrive messages kept when even the reserve is full.
const HELD: usize = 16;

/// Share of a block's duration a fallback to the backup may still use.
const FALLBACK_SHARE: f64 = 0.85;

// SAFETY: the slot pointers point into `shm`, which the processor keeps alive;
// the protocol gives the audio thread exclusive use of the slots it owns.
unsafe impl Send for LiveProcessor {}

pub(super) struct ProcessorParts {
    pub shm: Arc<Shm>,
    pub sample_rate: f64,
    pub channels: usize,
    pub inputs: usize,
    pub crossfade: Frames,
    pub clock: TempoClock,
    pub to_audio: Consumer<ToAudio>,
    pub from_audio: Producer<FromAudio>,
    pub meters: Arc<Meters>,
    pub param_table: Arc<ParamTable>,
    pub doorbell: Arc<AtomicU32>,
}

/// This thread's SCHED_FIFO/SCHED_RR priority, if it is realtime.
fn own_realtime_priority() -> Option<i32> {
    // SAFETY: querying the calling thread's scheduling; no memory is shared.
    unsafe {
        let policy = libc::sched_getscheduler(0);
        let mut param = libc::sched_param { sched_priority: 0 };
        libc::sched_getparam(0, &mut param);
        (policy == libc::SCHED_FIFO || policy == libc::SCHED_RR).then_some(param.sched_priority)
    }
}

impl LiveProcessor {
    pub(super) fn new(p: ProcessorParts) -> LiveProcessor {
        let slots: [*mut Slot; WORKERS] = std::array::from_fn(|i| p.shm.slot(i));
        LiveProcessor {
            slots,
            sample_rate: p.sample_rate,
            channels: p.channels,
            inputs: p.inputs,
            active: None,
            backup: None,
            fade: None,
            fade_in: None,
            pending_compiled: false,
            installing: None,
            crossfade_len: p.crossfade,
            clock: p.clock,
            scheduled: None,
            timeline: None,
            output_latency: Duration::ZERO,
            tempo_requests_seen: 0,
            params: Params::default(),
            voices: crate::voices::live::LiveVoices::new(&p.param_table, p.sample_rate),
            param_table: p.param_table,
            params_seen: 0,
            tap: None,
            doorbell: p.doorbell,
            sent_this_block: false,
            protection: Protection::new(p.sample_rate, p.channels),
            frame: 0,
            compiled_epoch: u64::MAX,
            last_frame: [0.0; MAX_CHANNELS],
            to_audio: p.to_audio,
            from_audio: p.from_audio,
            meters: p.meters,
            last_callback: None,
            last_block: Duration::ZERO,
            deadline_share: 0.5,
            dropped_reports: 0,
            fallback_deadline: Instant::now(),
            worker_priority: 0,
            priority_known: false,
            block_start: Instant::now(),
            fallback: None,
            late: [None, None],
            held: Default::default(),
            silence: None,
            ever_played: false,
            live_tainted_by: None,
            deferred_install: None,
            shm: p.shm,
        }
    }

    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The deadline the workers have for `frames` frames.
    pub fn deadline_for(&self, frames: usize) -> Duration {
        Duration::from_secs_f64(frames as f64 / self.sample_rate * self.deadline_share)
    }

    /// Publishes every block played from now on (set before the audio starts).
    pub fn set_tap(&mut self, tap: super::tap::Tap) {
        self.tap = Some(tap);
    }

    /// Renders one device block: `output` interleaved with `channels` samples
    /// per frame, `input` with `inputs` (or empty). Never waits past the deadline.
    pub fn process(&mut self, input: &[f32], output: &mut [f32]) {
        crate::engine::realtime(|| self.process_inner(input, output))
    }

    fn process_inner(&mut self, input: &[f32], output: &mut [f32]) {
        let t0 = Instant::now();
        let _ftz = FlushDenormals::new();
        if !self.priority_known {
            self.priority_known = true;
            self.worker_priority = own_realtime_priority().map_or(0, |p| (p - 1).max(1));
            self.meters.worker_priority.store(self.worker_priority, Ordering::Relaxed);
        }
        let frames = output.len() / self.channels;
        let block = Duration::from_secs_f64(frames as f64 / self.sample_rate);
        if let Some(prev) = self.last_callback {
            // A callback much later than the previous block's length means the device ran dry.
            if t0.duration_since(prev) > self.last_block.mul_f64(1.5) + Duration::from_micros(500) {
                self.meters.xruns.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.last_callback = Some(t0);
        self.last_block = block;
        self.flush_held();
        self.drain_commands();
        let deadline = t0 + self.deadline_for(frames);
        // A failed block may take longer to fill from the backup: rare, and
        // better than a gap, as long as the callback still returns in time.
        self.fallback_deadline = t0 + block.mul_f64(FALLBACK_SHARE);
        self.block_start = t0;
        self.follow_tempo();
        let ch = self.channels;
        let mut done = 0;
        while done < frames {
            let mut n = (frames - done).min(MAX_BLOCK);
            // A quantised swap starts on its boundary's sample: the block is split there.
            if let Some(to) = self.frames_to_scheduled() {
                n = n.min(to as usize);
            }
            let inp = if self.inputs > 0 {
                input.get(done * self.inputs..(done + n) * self.inputs).unwrap_or(&[])
            } else {
                &[]
            };
            self.render(inp, &mut output[done * ch..(done + n) * ch], deadline);
            done += n;
        }
        let elapsed = t0.elapsed().as_secs_f64() / block.as_secs_f64().max(1e-9);
        if let Some(tap) = &self.tap {
            tap.publish(self.frame - frames as u64, self.sample_rate, ch, output, input, elapsed as f32);
        }
        if std::mem::take(&mut self.sent_this_block) {
            super::control::ring(&self.doorbell);
        }
        self.meter(elapsed as f32, frames);
    }

    /// Tempo requests and the shared timeline (Link) move the clock, at block starts only.
    fn follow_tempo(&mut self) {
        let until_heard = self.output_latency;
        if let Some(bpm) = self.param_table.tempo_request(&mut self.tempo_requests_seen) {
            match &mut self.timeline {
                Some(t) => t.request_tempo(bpm, self.frame, until_heard),
                None => self.clock.set_bpm(Frames(self.frame), bpm),
            }
        }
        let meter = self.clock.meter();
        let placed = self.timeline.as_mut().and_then(|t| t.place(self.frame, until_heard, meter));
        if let Some(p) = placed {
            self.clock.align(Frames(self.frame), p.beat, p.bpm);
        }
        let heard_at_micros = placed.map_or_else(
            || super::super::clock::timeline::monotonic_micros() + until_heard.as_micros() as i64,
            |p| p.heard_at_micros,
        );
        self.meters.clock.publish(ClockReading {
            beat: self.clock.beat_at(Frames(self.frame)),
            bpm: self.clock.bpm().get(),
            heard_at_micros,
            peers: self.timeline.as_ref().map_or(0, |t| t.peers()),
        });
    }

    /// Follows `timeline` (Ableton Link) from the next block. Set before the audio starts.
    pub fn set_timeline(&mut self, timeline: Box<dyn BeatTimeline>) {
        self.timeline = Some(timeline);
    }

    /// How long after a callback starts its first frame is heard (the backend's
    /// output latency): a shared timeline places beats at that moment.
    pub fn set_output_latency(&mut self, latency: Duration) {
        self.output_latency = latency.min(Duration::from_secs(1));
    }

    fn meter(&mut self, load: f32, frames: usize) {
        let m = &self.meters;
        let avg = m.load_avg();
        let k = (frames as f32 / self.sample_rate as f32).min(1.0);
        m.load_avg.store((avg + (load - avg) * k).to_bits(), Ordering::Relaxed);
        if load > f32::from_bits(m.load_peak.load(Ordering::Relaxed)) {
            m.load_peak.store(load.to_bits(), Ordering::Relaxed);
        }
        m.blocks.fetch_add(1, Ordering::Relaxed);
        m.frames.store(self.frame, Ordering::Relaxed);
    }

    /// Sends a message the control thread must get (Failed, Retired, Swapped,
    /// Abandoned, Installed). If the ring is full it waits in `held` and is
    /// retried every block: never dropped (and never freed here: some carry vectors).
    fn send(&mut self, r: FromAudio) {
        self.sent_this_block = true;
        if !matches!(r, FromAudio::Late { .. } | FromAudio::Fault { .. } | FromAudio::Protect(_)) {
            if let Err(rtrb::PushError::Full(r)) = self.from_audio.push(r) {
                match self.held.iter_mut().find(|h| h.is_none()) {
                    Some(h) => *h = Some(r),
                    // More than HELD must-arrive messages while the control thread does not read:
                    // keep the message rather than free it here; it is lost, and counted.
                    None => {
                        self.dropped_reports += 1;
                        std::mem::forget(r);
                    }
                }
            }
            return;
        }
        // Reports may only use the ring while room for must-arrive messages remains.
        if self.from_audio.slots() > RESERVED_SLOTS {
            let _ = self.from_audio.push(r);
        } else {
            self.dropped_reports += 1;
        }
    }

    /// Retries held must-arrive messages, oldest first.
    fn flush_held(&mut self) {
        for i in 0..HELD {
            if let Some(r) = self.held[i].take() {
                if let Err(rtrb::PushError::Full(r)) = self.from_audio.push(r) {
                    self.held[i] = Some(r);
                    return;
                }
                self.sent_this_block = true;
            }
        }
    }

    fn drain_commands(&mut self) {
        while let Ok(cmd) = self.to_audio.pop() {
            match cmd {
                ToAudio::Install { worker, removed, sent, quant } if !quant.is_next_block() => {
                    // Waits for the boundary (a tempo change meanwhile moves the frame, not the beat).
                    let at = self.clock.next_boundary(Frames(self.frame), quant);
                    let beat = (self.clock.beat_at(at) / quant.beats()).round() * quant.beats();
                    self.supersede_scheduled();
                    self.send(FromAudio::Waiting { version: worker.version, at, beat });
                    self.scheduled = Some(Scheduled { worker, removed, sent, beat });
                }
                ToAudio::Install { worker, removed, sent, .. } => {
                    self.supersede_scheduled();
                    self.install_when_clean(worker, removed, sent);
                }
                ToAudio::Killed { slot } => {
                    if self.live_tainted_by == Some(slot) {
                        self.untaint();
                    }
                }
                ToAudio::Crossfade(f) => self.crossfade_len = f,
                ToAudio::Backup(w) => {
                    // The version playing, or the one before it (the control
                    // thread reloads a previous version that only ran late).
                    let current = self.active.map(|a| a.version);
                    if self.backup.is_none() && current.is_some_and(|c| w.version <= c) {
                        self.backup = Some(w);
                    } else {
                        // Not needed (any more): back to the control thread.
                        self.send(FromAudio::Retired { slot: w.slot });
                    }
                }
            }
        }
    }

    /// Installs now, or once LIVE is clean if a late worker may still write it.
    fn install_when_clean(&mut self, worker: Worker, removed: Vec<SiteId>, sent: Instant) {
        if self.live_tainted_by.is_some() {
            // SHADOW stands in for LIVE now: no fade can start; install when clean.
            if let Some((w, removed, _)) = self.deferred_install.replace((worker, removed, sent)) {
                self.send(FromAudio::Retired { slot: w.slot });
                self.send(FromAudio::Abandoned { removed });
            }
        } else {
            self.install(worker, removed, sent);
        }
    }

    /// A newer install replaces one still waiting for its beat, as in JITLib:
    /// the waiting version never plays and its worker goes back to the control thread.
    fn supersede_scheduled(&mut self) {
        if let Some(old) = self.scheduled.take() {
            self.send(FromAudio::Retired { slot: old.worker.slot });
            self.send(FromAudio::Abandoned { removed: old.removed });
        }
    }

    /// Frames until the waiting install's boundary, installing it if that is now.
    /// None: nothing waits.
    fn frames_to_scheduled(&mut self) -> Option<u64> {
        let beat = self.scheduled.as_ref()?.beat;
        let at = self.clock.first_frame_at(beat).0;
        if at > self.frame {
            return Some(at - self.frame);
        }
        let s = self.scheduled.take()?;
        self.install_when_clean(s.worker, s.removed, s.sent);
        None
    }

    fn install(&mut self, worker: Worker, removed: Vec<SiteId>, sent: Instant) {
        for i in 0..self.late.len() {
            if let Some(late) = self.late[i].take() {
                // A new version replaces whatever it was: stop waiting for it.
                self.failed_late(late);
            }
        }
        self.finish_fade();
        // During the fade the fallback is the version fading out: the backup
        // (two versions back) goes back to the control thread now, ready for
        // the next compile.
        if let Some(b) = self.backup.take() {
            self.send(FromAudio::Retired { slot: b.slot });
        }
        match self.active.take() {
            Some(old) if self.crossfade_len.0 > 0 => {
                // SAFETY: no worker runs on LIVE or SHADOW between our requests.
                // Only the old version runs on SHADOW: only its heap is copied.
                unsafe { self.shm.copy_memory(Memory::Shadow, Memory::Live, ExtentSet::NONE.with(Some(old.heap))) };
                self.fade = Some((old, Crossfade::new(self.crossfade_len)));
            }
            Some(old) => self.make_backup(old),
            None => self.fade_in = Some(FadeIn::new(self.crossfade_len)),
        }
        self.active = Some(worker);
        self.pending_compiled = true;
        self.compiled_epoch -= 1;
        self.abandon_install();
        self.installing = Some((sent, removed));
        if self.fade.is_none() {
            self.swapped();
        }
    }

    /// The version being installed failed: its list of removed sites goes back
    /// to the control thread unused (the version playing on still uses them).
    /// Moved, never dropped here: freeing is not for the audio thread.
    fn abandon_install(&mut self) {
        if let Some((_, removed)) = self.installing.take() {
            if removed.capacity() > 0 {
                self.send(FromAudio::Abandoned { removed });
            }
        }
    }

    /// The memory the playing version runs on: LIVE, or SHADOW while LIVE is tainted.
    fn live_memory(&self) -> Memory {
        if self.live_tainted_by.is_some() {
            Memory::Shadow
        } else {
            Memory::Live
        }
    }

    /// The heap extents of the versions this thread may run: copies between
    /// memories carry these and nothing else (the audio thread cannot afford
    /// copying whole heaps).
    fn held_heaps(&self) -> ExtentSet {
        let fading = self.fade.as_ref().map(|(w, _)| w.heap);
        let held = ExtentSet::NONE.with(self.active.map(|w| w.heap)).with(self.backup.map(|w| w.heap)).with(fading);
        self.late.iter().flatten().fold(held, |set, l| set.with(Some(l.worker.heap)))
    }

    /// `slot` missed its deadline on LIVE: from now on the others run on a copy.
    fn taint(&mut self, slot: usize, copy: bool) {
        if self.live_tainted_by.is_none() {
            if copy {
                // SAFETY: SHADOW is not in use (no fade); the late worker may be mid-write
                // on LIVE, so the copy may be torn in the cells it is writing: that is the fault's.
                unsafe { self.shm.copy_memory(Memory::Shadow, Memory::Live, self.held_heaps()) };
            }
            self.live_tainted_by = Some(slot);
        }
    }

    /// LIVE is ours again: carry on from the state the stand-ins kept on SHADOW.
    fn untaint(&mut self) {
        if self.live_tainted_by.take().is_some() {
            // SAFETY: the tainting worker has answered or is dead; nothing else runs now.
            unsafe { self.shm.copy_memory(Memory::Live, Memory::Shadow, self.held_heaps()) };
            if let Some((w, removed, sent)) = self.deferred_install.take() {
                self.install(w, removed, sent);
            }
        }
    }

    /// A worker that failed while covering for another: set aside if it may only be
    /// late (it still has a request running), reported failed otherwise.
    fn set_aside_or_fail(&mut self, w: Worker, fault: WorkerFault) {
        let free = self.late.iter().position(Option::is_none);
        match (fault, free) {
            (WorkerFault::Deadline { .. }, Some(i)) => {
                // SAFETY: the slot is still ours.
                let seq = unsafe { (*self.slots[w.slot]).request.load(Ordering::Relaxed) };
                let since = self.block_start;
                let detected = self.block_start.elapsed();
                let recovery = Recovery::FadedOut;
                self.late[i] = Some(Late {
                    worker: w,
                    seq,
                    first_block: false,
                    since,
                    fault,
                    recovery,
                    detected,
                    fallback: None,
                    fade: None,
                });
            }
            _ => self.failed_with(w, fault, Recovery::FadedOut, self.block_start.elapsed(), None),
        }
    }

    /// `old` becomes the backup; the previous backup goes back to the control thread.
    fn make_backup(&mut self, old: Worker) {
        if let Some(b) = self.backup.replace(old) {
            self.send(FromAudio::Retired { slot: b.slot });
        }
    }

    /// The swap is complete: free the sites the new version dropped.
    fn swapped(&mut self) {
        let Some(active) = self.active else { return };
        if let Some((_, removed)) = self.installing.as_mut() {
            let freed = std::mem::take(removed);
            // SAFETY: no worker runs on LIVE between our requests.
            let live = unsafe { &mut *self.shm.state(Memory::Live) };
            // Workers wrote this bookkeeping: it is checked and rebuilt, never followed blindly.
            if live.free_sites_and_rebuild(freed.iter().map(|id| id.0 as usize)) == Integrity::Repaired {
                let at = Frames(self.frame);
                self.send(FromAudio::Fault { kind: FaultKind::StateCorrupt, detail: 0, at, version: active.version });
            }
            self.send(FromAudio::Swapped { version: active.version, freed });
        }
    }

    fn finish_fade(&mut self) {
        if let Some((old, _)) = self.fade.take() {
            self.make_backup(old);
            self.swapped();
        }
    }

    /// Asks `w` for `out.len() / channels` frames on `memory`. Ok(()) with the
    /// audio in the slot's output, or the fault.
    fn request(
        &mut self,
        w: Worker,
        memory: Memory,
        input: &[f32],
        frames: usize,
        call_compiled: bool,
        deadline: Instant,
    ) -> Result<(), WorkerFault> {
        // SAFETY: the audio thread owns this slot (active or backup) while it holds `w`.
        let slot = unsafe { &mut *self.slots[w.slot] };
        let seq = slot.request.load(Ordering::Relaxed).wrapping_add(1);
        slot.req.kind = RequestKind::Run as u32;
        slot.req.memory = memory as u32;
        slot.req.call_compiled = call_compiled as u32;
        slot.req.frames = frames as u32;
        slot.req.frame = self.frame;
        slot.req.compiled_epoch = self.compiled_epoch;
        slot.req.priority = self.worker_priority;
        slot.req.heap_extent = w.heap.index() as u32;
        slot.req.params = self.params.clone();
        let want = (frames * self.inputs).min(slot.req.input.len());
        let n = want.min(input.len());
        slot.req.input[..n].copy_from_slice(&input[..n]);
        // Input the device did not bring is silence, not the previous block's samples.
        slot.req.input[n..want].fill(0.0);
        slot.resp.status = 0;
        slot.request.store(seq, Ordering::Release);
        futex::wake(&slot.request);
        let limit = deadline.saturating_duration_since(Instant::now());
        if !futex::wait_for(&slot.response, seq, deadline, Duration::from_micros(50)) {
            return Err(WorkerFault::Deadline {
                limit: self.deadline_for(frames).max(limit),
                in_compiled: call_compiled,
            });
        }
        match Status::from_u32(slot.resp.status) {
            Some(Status::Ok) => Ok(()),
            Some(Status::Crashed) => Err(WorkerFault::Crashed {
                signal: slot.resp.signal,
                stack_overflow: slot.resp.stack_overflow != 0,
                in_compiled: slot.resp.in_compiled != 0,
            }),
            _ => Err(WorkerFault::BadResponse),
        }
    }

    fn output_of(&self, w: Worker, frames: usize) -> &[f32] {
        // SAFETY: the slot is ours and its worker has answered.
        let slot = unsafe { &*self.slots[w.slot] };
        &slot.resp.output[..frames * self.channels]
    }

    fn forward_faults(&mut self, w: Worker) {
        // SAFETY: as in `output_of`.
        let faults = unsafe { (*self.slots[w.slot]).resp.faults };
        let fresh = faults.fresh;
        if fresh == 0 {
            return;
        }
        for kind in FaultKind::ALL {
            if fresh & (1 << kind as u8) != 0 {
                let detail = faults.detail[kind as usize];
                self.send(FromAudio::Fault { kind, detail, at: Frames(self.frame), version: w.version });
            }
        }
    }

    /// A late worker that has answered plays again; one late for too long is hung.
    fn check_late(&mut self) {
        for i in 0..self.late.len() {
            self.check_late_one(i);
        }
    }

    fn check_late_one(&mut self, i: usize) {
        let Some(late) = self.late[i] else { return };
        // SAFETY: the late worker's slot is still ours.
        let slot = unsafe { &*self.slots[late.worker.slot] };
        if slot.response.load(Ordering::Acquire) == late.seq {
            self.late[i] = None;
            let ok = Status::from_u32(slot.resp.status) == Some(Status::Ok);
            if ok && self.resume_fade(late) {
                return;
            }
            if self.live_tainted_by == Some(late.worker.slot) {
                // It is done writing LIVE: continue there from the stand-ins' state.
                self.untaint();
            }
            if ok {
                // A hiccup: the newest version plays, the other is the backup. (When
                // both the active and its stand-in were late, the older may answer last.)
                let (play, spare) = match self.active {
                    Some(a) if a.version > late.worker.version => (a, Some(late.worker)),
                    other => (late.worker, other),
                };
                if self.active.is_none() {
                    // Back from silence (the block it missed faded out).
                    self.fade_in = Some(FadeIn::new(self.crossfade_len));
                }
                self.active = Some(play);
                if let Some(spare) = spare {
                    if let Some(b) = self.backup.replace(spare) {
                        self.send(FromAudio::Retired { slot: b.slot });
                    }
                }
                if late.first_block {
                    self.installed_late(late);
                    if late.fade.is_some() {
                        // Its fade could not resume: the swap is complete now.
                        self.swapped();
                    }
                }
                let late_by = late.since.elapsed();
                self.send(FromAudio::Late { worker: late.worker, late_by, at: Frames(self.frame) });
            } else {
                // It crashed after its deadline had passed (a busy machine delays
                // the signal handler too): the crash is the cause, not the deadline.
                // (SIGXCPU is how a runaway loop is stopped: that is the hang the deadline saw.)
                let fault = match Status::from_u32(slot.resp.status) {
                    Some(Status::Crashed) if slot.resp.signal != libc::SIGXCPU => WorkerFault::Crashed {
                        signal: slot.resp.signal,
                        stack_overflow: slot.resp.stack_overflow != 0,
                        in_compiled: slot.resp.in_compiled != 0,
                    },
                    _ => late.fault,
                };
                self.failed_late(Late { fault, ..late });
            }
        } else if late.since.elapsed() >= HANG_LIMIT {
            self.late[i] = None;
            self.failed_late(late);
        }
    }

    /// A new version that was late in the first block of its crossfade has
    /// answered: if the version it was replacing still plays, the fade carries
    /// on where it stopped. LIVE holds the new version's state (its `compiled()`
    /// ran there), SHADOW the old one's, as in any fade: no copy either way.
    fn resume_fade(&mut self, late: Late) -> bool {
        let Some(xf) = late.fade else { return false };
        let resumable = self.fade.is_none()
            && self.live_tainted_by == Some(late.worker.slot)
            && self.active.is_some_and(|old| old.version < late.worker.version);
        let (true, Some(old)) = (resumable, self.active) else { return false };
        self.live_tainted_by = None;
        self.fade = Some((old, xf));
        self.active = Some(late.worker);
        self.installed_late(late);
        let late_by = late.since.elapsed();
        self.send(FromAudio::Late { worker: late.worker, late_by, at: Frames(self.frame) });
        if let Some((w, removed, sent)) = self.deferred_install.take() {
            self.install(w, removed, sent);
        }
        true
    }

    /// A version late in its first block (with `compiled()`) has answered: it is playing.
    fn installed_late(&mut self, late: Late) {
        if let Some((sent, _)) = self.installing {
            let played = Instant::now();
            self.send(FromAudio::Installed { worker: late.worker, at: Frames(self.frame), sent, played });
        }
    }

    fn render(&mut self, input: &[f32], out: &mut [f32], deadline: Instant) {
        self.check_late();
        let frames = out.len() / self.channels;
        self.params.begin_block(self.frame, frames);
        self.params.clock = ClockView::of(&self.clock, self.frame);
        self.param_table.read_into(&mut self.params_seen, &mut self.params);
        self.voices.begin_block(&self.param_table, self.frame, frames, &mut self.params.voices);
        let Some(active) = self.active else {
            if self.ever_played {
                self.note_silence(SilenceCause::Stopped);
            }
            self.fade_out(out);
            self.advance(out, frames);
            return;
        };
        // In a fade, the old version runs first, on SHADOW (delay lines are shared).
        let old_ok = match self.fade {
            Some((old, _)) => match self.request(old, Memory::Shadow, input, frames, false, deadline) {
                Ok(()) => true,
                Err(fault) => {
                    self.fade = None;
                    self.failed(old, fault, Recovery::FilledByBackup);
                    self.swapped();
                    false
                }
            },
            None => false,
        };
        let call_compiled = self.pending_compiled;
        // The half-block deadline keeps time for a backup to fill in. With no
        // backup, or in a fade (the old version's output already covers this
        // block), that reserve protects nothing, so the active worker may use it:
        // a healthy new version is not blamed for the time the old one took.
        let active_deadline =
            if self.backup.is_some() && self.fade.is_none() { deadline } else { self.fallback_deadline };
        let memory = self.live_memory();
        match self.request(active, memory, input, frames, call_compiled, active_deadline) {
            Ok(()) => {
                self.pending_compiled = false;
                if call_compiled {
                    if let Some((sent, _)) = self.installing {
                        self.send(FromAudio::Installed {
                            worker: active,
                            at: Frames(self.frame),
                            sent,
                            played: Instant::now(),
                        });
                    }
                }
                self.forward_faults(active);
                self.sound_back();
                let ch = self.channels;
                if let (true, Some((old, mut xf))) = (old_ok, self.fade.take()) {
                    let mut done = false;
                    for f in 0..frames {
                        let o = &self.output_of(old, frames)[f * ch..(f + 1) * ch];
                        let n = &self.output_of(active, frames)[f * ch..(f + 1) * ch];
                        let mut mixed = [0.0f32; MAX_CHANNELS];
                        xf.mix(o, n, &mut mixed[..ch]);
                        out[f * ch..(f + 1) * ch].copy_from_slice(&mixed[..ch]);
                        done = done || xf.advance();
                    }
                    self.fade = Some((old, xf));
                    if done {
                        self.finish_fade();
                    }
                } else {
                    out.copy_from_slice(self.output_of(active, frames));
                }
                self.apply_fade_in(out);
            }
            Err(fault) => {
                let was_fading = self.fade.is_some();
                if matches!(fault, WorkerFault::Deadline { .. }) && memory == Memory::Live {
                    // It may still be writing LIVE: stand-ins run on a copy until it answers or dies.
                    // In a fade, SHADOW already holds the old version's state: no copy.
                    self.taint(active.slot, !was_fading);
                }
                // The new version failed: fall back to what played before it.
                let fading = self.fade.take().filter(|_| old_ok);
                let fallback = match fading {
                    Some((old, _)) => Some((old, true)),
                    None => self.backup.take().map(|b| (b, false)),
                };
                self.active = None;
                // Whatever plays now has run its `compiled()` already.
                self.pending_compiled = false;
                let mut second: Option<(Worker, WorkerFault)> = None;
                let recovery = match fallback {
                    Some((w, already)) => {
                        let t = Instant::now();
                        let result = if already {
                            Ok(())
                        } else {
                            let memory = self.live_memory();
                            self.request(w, memory, input, frames, false, self.fallback_deadline)
                        };
                        self.fallback = Some(result.map(|()| t.elapsed()));
                        match result {
                            Ok(()) => {
                                self.active = Some(w);
                                self.sound_back();
                                out.copy_from_slice(self.output_of(w, frames));
                                self.apply_fade_in(out);
                                Recovery::FilledByBackup
                            }
                            Err(f2) => {
                                // The backup failed too: it must not be asked again while
                                // its request may still be running (one request at a time).
                                if matches!(f2, WorkerFault::Deadline { .. }) && memory == Memory::Live {
                                    // Like an active that missed on LIVE, it may still be writing it.
                                    self.taint(w.slot, true);
                                }
                                second = Some((w, f2));
                                self.note_silence(SilenceCause::of(active, fault));
                                self.fade_out(out);
                                Recovery::FadedOut
                            }
                        }
                    }
                    None => {
                        self.note_silence(SilenceCause::of(active, fault));
                        self.fade_out(out);
                        Recovery::FadedOut
                    }
                };
                // A missed deadline may be a busy machine rather than a hang, in a
                // fade as anywhere: the new version gets the same grace.
                let maybe_hiccup = matches!(fault, WorkerFault::Deadline { .. });
                let free = self.late.iter().position(Option::is_none);
                if let (true, Some(i)) = (maybe_hiccup, free) {
                    // Not proven hung: set it aside until it answers or HANG_LIMIT passes.
                    // SAFETY: the slot is still ours.
                    let seq = unsafe { (*self.slots[active.slot]).request.load(Ordering::Relaxed) };
                    let first_block = call_compiled;
                    let detected = self.block_start.elapsed();
                    let fallback = self.fallback.take();
                    let since = self.block_start;
                    let fade = fading.filter(|_| first_block).map(|(_, xf)| xf);
                    self.late[i] = Some(Late {
                        worker: active,
                        seq,
                        first_block,
                        since,
                        fault,
                        recovery,
                        detected,
                        fallback,
                        fade,
                    });
                } else {
                    self.abandon_install();
                    self.failed(active, fault, recovery);
                }
                if let Some((w, f2)) = second {
                    self.set_aside_or_fail(w, f2);
                }
            }
        }
        self.advance(out, frames);
    }

    /// The output is silence from this block on, for `cause` (the first cause is kept).
    fn note_silence(&mut self, cause: SilenceCause) {
        if self.silence.is_none() {
            self.silence = Some((self.frame, cause));
            self.send(FromAudio::SilenceBegan { from: Frames(self.frame), cause });
        }
    }

    /// A version's sound is in this block: a silence before it is reported now.
    fn sound_back(&mut self) {
        self.ever_played = true;
        if let Some((from, cause)) = self.silence.take() {
            let frames = Frames(self.frame.saturating_sub(from));
            self.send(FromAudio::Silence { from: Frames(from), frames, cause });
        }
    }

    fn failed(&mut self, w: Worker, fault: WorkerFault, recovery: Recovery) {
        let detected = self.block_start.elapsed();
        let fallback = self.fallback.take();
        self.failed_with(w, fault, recovery, detected, fallback);
    }

    /// A late worker declared hung: report what was measured when it missed its deadline.
    fn failed_late(&mut self, late: Late) {
        if late.first_block {
            // The version being installed never played: its removed sites stay in use.
            self.abandon_install();
        }
        self.failed_with(late.worker, late.fault, late.recovery, late.detected, late.fallback);
    }

    fn failed_with(
        &mut self,
        w: Worker,
        fault: WorkerFault,
        recovery: Recovery,
        detected: Duration,
        fallback: Option<Result<Duration, WorkerFault>>,
    ) {
        let now_playing = self.active.map(|a| a.version);
        self.send(FromAudio::Failed {
            worker: w,
            fault,
            at: Frames(self.frame),
            recovery,
            now_playing,
            detected,
            fallback,
        });
    }

    /// Scales `out` by the fade in from silence, while one runs.
    fn apply_fade_in(&mut self, out: &mut [f32]) {
        let Some(fade_in) = &mut self.fade_in else { return };
        for frame in out.chunks_exact_mut(self.channels) {
            if fade_in.apply(frame) {
                self.fade_in = None;
                return;
            }
        }
    }

    /// Fills `out` with the last output frame fading linearly to silence (no click).
    fn fade_out(&mut self, out: &mut [f32]) {
        let ch = self.channels;
        let frames = out.len() / ch;
        for f in 0..frames {
            let g = 1.0 - (f + 1) as f32 / frames as f32;
            for c in 0..ch {
                out[f * ch + c] = self.last_frame[c] * g;
            }
        }
    }

    /// Protection, then bookkeeping at the end of a chunk.
    fn advance(&mut self, out: &mut [f32], frames: usize) {
        let ch = self.channels;
        for f in 0..frames {
            let frame = &mut out[f * ch..(f + 1) * ch];
            let at = self.frame + f as u64;
            let reports = &mut self.from_audio;
            let dropped = &mut self.dropped_reports;
            self.protection.process(frame, at, &mut |e| {
                if reports.push(FromAudio::Protect(e)).is_err() {
                    *dropped += 1;
                }
            });
        }
        if frames > 0 {
            self.last_frame[..ch].copy_from_slice(&out[(frames - 1) * ch..frames * ch]);
        }
        self.frame += frames as u64;
    }

    /// Which worker plays now (for tests and meters).
    pub fn active(&self) -> Option<Worker> {
        self.active
    }
}
