//! The control thread of the live engine: it owns the idle workers, turns
//! submitted sources into installed versions (prepare → compile → test run →
//! install), replaces failed workers, and tells the outside world what happened.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtrb::{Consumer, Producer, RingBuffer};

use super::arena::{ArenaTable, ArenaView, Extent as ArenaExtent, SampleArena, NO_SAMPLES};
use super::futex;
use super::process::{Spawn, WorkerProcess};
use super::resume::{Decision, ResumePolicy};
use super::rt::{
    FromAudio, LiveProcessor, Meters, ProcessorParts, Recovery, SilenceCause, ToAudio, Worker, WorkerFault,
};
use super::shm::{Memory, Shm, ShmError, WORKERS};
use super::slot::{get_string, put_bytes, RequestKind, Slot, Status};
use crate::builtins::api::FaultKind;
use crate::clock::{Bpm, Meter, Quant, TempoClock};
use crate::engine::Param;
use crate::params::ParamTable;
use crate::patch::sites::{SiteId, SiteRegistry};
use crate::patch::{self, CompileOptions, Diagnostic, PatchSource};
use crate::protect::ProtectEvent;
use crate::samples::{MemoryBudget, SampleSource};
use crate::state::{Extent, ExtentSet, HEAP_EXTENTS};
use crate::Frames;

#[derive(Debug, Clone)]
pub struct LiveConfig {
    pub sample_rate: f64,
    pub channels: usize,
    pub inputs: usize,
    pub crossfade: Frames,
    pub seed: u64,
    /// The `clavm` executable (run as `clavm __worker ...`).
    pub worker_exe: PathBuf,
    /// Frames of the test run every new version must pass.
    pub test_frames: usize,
    pub compile_timeout: Duration,
    pub test_timeout: Duration,
    /// Hold a PM QoS request for zero CPU wake-up latency while running (as
    /// realtime audio set-ups do): idle cores poll instead of halting, which
    /// takes a sleeping worker's wake-up from ~200 µs to ~5 µs at p99 on a VM.
    /// Costs idle power; needs write access to /dev/cpu_dma_latency.
    pub latency_qos: bool,
    /// Workers enter their sandbox (always, but for `clavm bench --live`,
    /// which measures what the sandbox costs against workers without it).
    pub sandbox: bool,
    /// The tempo clock (`_bpm`, `_beat`, `_bar`, quantised swaps).
    pub bpm: Bpm,
    pub meter: Meter,
    /// Where a submit without its own quant lands (0: the next block).
    pub quant: Quant,
    /// Samples every version plays (`--sample N=FILE`); a patch's
    /// `#pragma clavm sample` adds its own, these win for the same number.
    pub samples: Vec<SampleSource>,
    /// The sample arena's size in MiB (`--sample-memory`).
    pub sample_memory_mib: u64,
}

impl LiveConfig {
    pub fn new(sample_rate: f64, channels: usize, worker_exe: PathBuf) -> LiveConfig {
        LiveConfig {
            sample_rate,
            channels,
            inputs: 0,
            crossfade: Frames::from_seconds(0.010, sample_rate),
            seed: 0,
            worker_exe,
            test_frames: 256,
            compile_timeout: Duration::from_secs(2),
            test_timeout: Duration::from_millis(100),
            latency_qos: true,
            sandbox: true,
            bpm: Bpm::DEFAULT,
            meter: Meter::DEFAULT,
            quant: Quant::NEXT_BLOCK,
            samples: Vec::new(),
            sample_memory_mib: crate::samples::DEFAULT_MEMORY_MIB,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Shm(#[from] ShmError),
    #[error("cannot start a worker process ({exe}): {source}")]
    Spawn { exe: String, source: std::io::Error },
    #[error("a worker process did not start: {0}")]
    WorkerStart(String),
    #[error("{0}")]
    Config(String),
}

/// What happened, for the performer (and tests).
#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// A version compiled and passed its test run; it plays from the next block.
    Compiled {
        submit: SubmitId,
        version: u64,
        name: String,
        compile: Duration,
        test: Duration,
        warnings: Vec<Diagnostic>,
    },
    /// The version's first block was rendered `swap` after it was handed to the audio thread.
    Playing {
        version: u64,
        swap: Duration,
        at: Frames,
        /// When the first block of the version was rendered.
        played: Instant,
    },
    /// The source was refused; the old code keeps playing.
    Rejected {
        submit: SubmitId,
        name: String,
        diagnostics: Vec<Diagnostic>,
    },
    /// The new version failed its test run (or could not be installed); the old code keeps playing.
    TestFailed {
        submit: SubmitId,
        name: String,
        reason: String,
    },
    /// A worker failed while playing.
    WorkerFailed {
        version: u64,
        fault: WorkerFault,
        recovery: Recovery,
        now_playing: Option<u64>,
        at: Frames,
        /// When, after its block started, the failure was known.
        detected: Duration,
        /// How long the backup took to fill the block, or why it could not.
        fallback: Option<Result<Duration, WorkerFault>>,
    },
    /// A quantised submit waits for its boundary: `version` will start at
    /// frame `at`, on beat `beat` (bar `bar`, counting from 1).
    Waiting {
        version: u64,
        at: Frames,
        beat: f64,
        bar: u64,
        meter: u32,
    },
    /// A worker answered `late_by` after its block started, past its deadline;
    /// the block was covered and it plays on (the machine was busy, not the patch stuck).
    WorkerLate {
        version: u64,
        late_by: Duration,
        at: Frames,
    },
    /// `of` had stopped with nothing else to play (the machine stalled
    /// past the hang limit); it was compiled, tested and installed again as
    /// `version`, handed to the audio thread `after` it stopped (`Playing`
    /// follows).
    Resumed {
        version: u64,
        of: u64,
        after: Duration,
    },
    /// `version` stopped with nothing else to play and is not brought back:
    /// silence until the next submit.
    NotResumed {
        version: u64,
        reason: String,
    },
    /// The output was silence (faded out) for `frames` from `from`, for
    /// `cause`: every dropout is reported, when the sound comes back.
    Silence {
        from: Frames,
        frames: Frames,
        cause: SilenceCause,
    },
    /// After a failure, `version` (playing on) has a backup again, `after` the
    /// failure reached the control thread: the next failure is covered too.
    BackupReady {
        version: u64,
        after: Duration,
    },
    /// The output fades to silence from `from`, for `cause` (said at once;
    /// `Silence` with its length follows when the sound returns).
    SilenceBegan {
        from: Frames,
        cause: SilenceCause,
    },
    /// A worker was replaced by a fresh process, ready after `startup`.
    WorkerReplaced {
        slot: usize,
        startup: Duration,
    },
    Fault {
        version: u64,
        kind: FaultKind,
        detail: i64,
        at: Frames,
    },
    Protect(ProtectEvent),
    /// Something went wrong in the engine itself.
    Error(String),
}

/// A beat number as a musician writes it: 3, or 2.5.
fn format_beat(b: f64) -> String {
    if (b - b.round()).abs() < 1e-9 {
        format!("{}", b.round() as i64)
    } else {
        format!("{b:.2}")
    }
}

impl LiveEvent {
    /// One line for the terminal.
    pub fn describe(&self, sample_rate: f64) -> String {
        match self {
            LiveEvent::Compiled { version, name, compile, test, warnings, .. } => {
                let mut s = format!(
                    "{name}: version {version} compiled in {:.2} ms, test run {:.2} ms",
                    compile.as_secs_f64() * 1e3,
                    test.as_secs_f64() * 1e3
                );
                for w in warnings {
                    s.push('\n');
                    s.push_str(&w.to_string());
                }
                s
            }
            LiveEvent::Playing { version, swap, at, .. } => format!(
                "t={:.3}s: version {version} playing (swap {:.2} ms after compile)",
                at.seconds(sample_rate),
                swap.as_secs_f64() * 1e3
            ),
            LiveEvent::Rejected { diagnostics, .. } => {
                diagnostics.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
            }
            LiveEvent::TestFailed { name, reason, .. } => {
                format!("{name}: {reason}; the old code keeps playing")
            }
            LiveEvent::WorkerFailed { version, fault, recovery, now_playing, at, .. } => {
                let after = match (recovery, now_playing) {
                    (Recovery::FilledByBackup, Some(v)) => {
                        format!("the previous version ({v}) filled in and plays on")
                    }
                    (_, Some(v)) => format!("faded out; version {v} plays on"),
                    (_, None) => "faded out; nothing else plays".to_string(),
                };
                format!("t={:.3}s: version {version}: {}; {after}", at.seconds(sample_rate), fault.describe())
            }
            LiveEvent::Waiting { version, at, beat, bar, meter } => {
                let in_bar = beat - (*bar - 1) as f64 * *meter as f64;
                let when = if in_bar.abs() < 1e-9 {
                    format!("bar {bar}")
                } else {
                    format!("beat {} of bar {bar}", format_beat(in_bar + 1.0))
                };
                format!("version {version} waiting for {when} (t={:.3}s)", at.seconds(sample_rate))
            }
            LiveEvent::WorkerLate { version, late_by, at } => format!(
                "t={:.3}s: version {version} answered {:.1} ms late (the system was busy); it plays on",
                at.seconds(sample_rate),
                late_by.as_secs_f64() * 1e3
            ),
            LiveEvent::Resumed { version, of, after } => format!(
                "version {of} comes back as version {version}, {:.0} ms after it stopped (it had played for a while: the system stalled, not the patch)",
                after.as_secs_f64() * 1e3
            ),
            LiveEvent::NotResumed { version, reason } => {
                format!("version {version} is not brought back: {reason}; silence until the next submit")
            }
            LiveEvent::Silence { from, frames, cause } => format!(
                "t={:.3}s: {:.1} ms of silence: {}",
                from.seconds(sample_rate),
                frames.seconds(sample_rate) * 1e3,
                cause.describe()
            ),
            LiveEvent::SilenceBegan { from, cause } => {
                format!("t={:.3}s: silence: {}", from.seconds(sample_rate), cause.describe())
            }
            LiveEvent::BackupReady { version, after } => {
                format!("version {version} has a backup again ({:.1} ms after the failure)", after.as_secs_f64() * 1e3)
            }
            LiveEvent::WorkerReplaced { slot, startup } => {
                format!("worker {slot} replaced (ready in {:.1} ms)", startup.as_secs_f64() * 1e3)
            }
            LiveEvent::Fault { version, kind, detail, at } => {
                format!("t={:.3}s: version {version}: {}", at.seconds(sample_rate), kind.describe(*detail))
            }
            LiveEvent::Protect(e) => e.describe(sample_rate),
            LiveEvent::Error(e) => format!("engine error: {e}"),
        }
    }
}

/// Which submit an outcome answers: [`LiveEngine::submit`] returns it, and the
/// one event that ends the submit (`Compiled`, `Rejected` or `TestFailed`) carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubmitId(pub u64);

/// Submits patches to the engine from any thread.
#[derive(Clone)]
pub struct Submitter {
    tx: Sender<ControlMsg>,
    submits: Arc<AtomicU64>,
    doorbell: Arc<AtomicU32>,
}

/// How long the control thread sleeps at most without its doorbell ringing.
const DOORBELL_SAFETY_NET: Duration = Duration::from_millis(100);

/// Wakes the control thread (from any thread, the audio thread included: one
/// atomic add and a futex wake, which never blocks).
pub(super) fn ring(doorbell: &AtomicU32) {
    doorbell.fetch_add(1, Ordering::Release);
    futex::wake(doorbell);
}

impl Submitter {
    /// As [`LiveEngine::submit`].
    pub fn submit(&self, source: PatchSource) -> SubmitId {
        self.submit_quantised(source, None)
    }

    /// As [`LiveEngine::submit`], landing on the next `quant` boundary
    /// (None: the engine's default quant).
    pub fn submit_quantised(&self, source: PatchSource, quant: Option<Quant>) -> SubmitId {
        let id = SubmitId(self.submits.fetch_add(1, Ordering::Relaxed) + 1);
        self.send(ControlMsg::Submit(id, source, quant));
        id
    }

    fn send(&self, m: ControlMsg) {
        let _ = self.tx.send(m);
        ring(&self.doorbell);
    }
}

type Subscribers = Arc<std::sync::Mutex<Vec<Sender<LiveEvent>>>>;

enum ControlMsg {
    Submit(SubmitId, PatchSource, Option<Quant>),
    Crossfade(Frames),
    Shutdown,
}

/// The live engine's non-realtime handle. Dropping it stops the workers.
pub struct LiveEngine {
    /// The open PM QoS request (released when closed), if we could make one.
    latency_qos: Option<std::fs::File>,
    submitter: Submitter,
    param_table: Arc<ParamTable>,
    subscribers: Subscribers,
    events: Receiver<LiveEvent>,
    thread: Option<JoinHandle<()>>,
    meters: Arc<Meters>,
    sample_rate: f64,
}

impl LiveEngine {
    /// Creates the shared memory, starts the workers, and returns the engine
    /// and the processor to move into the audio callback.
    pub fn start(config: LiveConfig) -> Result<(LiveEngine, LiveProcessor), LiveError> {
        if !(1..=crate::builtins::api::MAX_CHANNELS).contains(&config.channels) {
            return Err(LiveError::Config(format!("{} channels: 1 to 16 are supported", config.channels)));
        }
        if config.inputs > crate::builtins::api::MAX_CHANNELS {
            return Err(LiveError::Config(format!("{} inputs: 0 to 16 are supported", config.inputs)));
        }
        if !(1000.0..=1_000_000.0).contains(&config.sample_rate) {
            return Err(LiveError::Config(format!(
                "sample rate {}: 1000 to 1000000 Hz are supported",
                config.sample_rate
            )));
        }
        let shm = Arc::new(Shm::create(config.sample_rate, config.channels, config.inputs, config.seed)?);
        let arena = SampleArena::create((config.sample_memory_mib.min(crate::samples::MAX_MEMORY_MIB) << 20) as usize)?;
        let (to_audio_tx, to_audio_rx) = RingBuffer::new(64);
        let (from_audio_tx, from_audio_rx) = RingBuffer::new(1024);
        let meters = Arc::new(Meters::default());
        let param_table = Arc::new(ParamTable::default());
        let subscribers: Subscribers = Arc::default();
        let doorbell: Arc<AtomicU32> = Arc::default();
        let processor = LiveProcessor::new(ProcessorParts {
            shm: shm.clone(),
            sample_rate: config.sample_rate,
            channels: config.channels,
            inputs: config.inputs,
            crossfade: config.crossfade,
            clock: TempoClock::new(config.sample_rate, config.bpm, config.meter),
            to_audio: to_audio_rx,
            from_audio: from_audio_tx,
            meters: meters.clone(),
            param_table: param_table.clone(),
            doorbell: doorbell.clone(),
        });
        let mut control = Control {
            workers: std::array::from_fn(|_| None),
            idle: Vec::new(),
            dead: Vec::new(),
            registry: SiteRegistry::default(),
            version: 0,
            to_audio: to_audio_tx,
            from_audio: from_audio_rx,
            events: mpsc::channel().0,
            config: config.clone(),
            shm,
            versions: std::collections::HashMap::new(),
            registries: std::collections::HashMap::new(),
            heaps: std::collections::HashMap::new(),
            playing: None,
            audio_owns: [false; WORKERS],
            meters: meters.clone(),
            subscribers: subscribers.clone(),
            doorbell: doorbell.clone(),
            resume: ResumePolicy::default(),
            arena,
            loaded: Vec::new(),
            version_samples: std::collections::HashMap::new(),
        };
        for slot in 0..WORKERS {
            control.spawn(slot)?;
            control.idle.push(slot);
        }
        let (tx, rx) = mpsc::channel();
        let (ev_tx, ev_rx) = mpsc::channel();
        control.events = ev_tx;
        let thread = std::thread::Builder::new()
            .name("clavm-control".into())
            .spawn(move || control.run(rx))
            .map_err(|e| LiveError::WorkerStart(e.to_string()))?;
        let latency_qos = if config.latency_qos { request_zero_wakeup_latency() } else { None };
        let engine = LiveEngine {
            latency_qos,
            submitter: Submitter { tx, submits: Arc::default(), doorbell },
            param_table,
            subscribers,
            events: ev_rx,
            thread: Some(thread),
            meters,
            sample_rate: config.sample_rate,
        };
        Ok((engine, processor))
    }

    /// Compiles, test-runs and installs `source`; the outcome arrives as events.
    pub fn submit(&self, source: PatchSource) -> SubmitId {
        self.submitter.submit(source)
    }

    /// Submits `source` to land on the next `quant` boundary (None: the engine's default).
    pub fn submit_quantised(&self, source: PatchSource, quant: Option<Quant>) -> SubmitId {
        self.submitter.submit_quantised(source, quant)
    }

    /// The tempo from the next block on; `_beat()` bends to it without a jump.
    pub fn set_bpm(&self, bpm: Bpm) {
        self.param_table.set_bpm(bpm);
    }

    /// A handle that submits from another thread (a submit server).
    pub fn submitter(&self) -> Submitter {
        self.submitter.clone()
    }

    /// Sets a live parameter; `play()` sees it from the next block (no control thread in between).
    pub fn set_param(&self, p: Param) {
        self.param_table.set(p);
    }

    /// The parameter table, for inputs on other threads (OSC, MIDI, the param channel).
    pub fn params(&self) -> Arc<ParamTable> {
        self.param_table.clone()
    }

    /// Another receiver of every event from now on (dropped receivers are forgotten).
    pub fn subscribe(&self) -> Receiver<LiveEvent> {
        let (tx, rx) = mpsc::channel();
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
        rx
    }

    /// Crossfade length for the following swaps (0 = switch at once).
    pub fn set_crossfade(&self, f: Frames) {
        self.submitter.send(ControlMsg::Crossfade(f));
    }

    /// Hands the event stream to a caller that waits on it (a UI's
    /// forwarding thread); [`next_event`](Self::next_event) returns nothing
    /// afterwards.
    pub fn take_events(&mut self) -> Receiver<LiveEvent> {
        std::mem::replace(&mut self.events, mpsc::channel().1)
    }

    /// Waits up to `timeout` for the next event.
    pub fn next_event(&self, timeout: Duration) -> Option<LiveEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Whether the engine holds the zero-wake-up-latency request (see `LiveConfig::latency_qos`).
    pub fn has_latency_qos(&self) -> bool {
        self.latency_qos.is_some()
    }

    pub fn meters(&self) -> &Meters {
        &self.meters
    }

    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// Stops the control thread and every worker (killed and reaped).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.submitter.send(ControlMsg::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LiveEngine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Asks the kernel to keep CPU wake-up latency at zero for as long as the file stays open.
fn request_zero_wakeup_latency() -> Option<std::fs::File> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).open("/dev/cpu_dma_latency").ok()?;
    f.write_all(&0i32.to_ne_bytes()).ok()?;
    Some(f)
}

struct Control {
    workers: [Option<WorkerProcess>; WORKERS],
    /// Slots the control thread owns, with a ready worker.
    idle: Vec<usize>,
    /// Slots whose worker was killed and not started again yet: replacements
    /// are started after the spare has taken over (see `replace`).
    dead: Vec<usize>,
    registry: SiteRegistry,
    version: u64,
    to_audio: Producer<ToAudio>,
    from_audio: Consumer<FromAudio>,
    events: Sender<LiveEvent>,
    config: LiveConfig,
    shm: Arc<Shm>,
    /// Installed versions' sources (the rewritten text workers compile), to
    /// load a version again into a fresh worker as the backup.
    versions: std::collections::HashMap<u64, (PatchSource, String)>,
    /// The call-site registry as each version committed it: after a failure the
    /// version playing on is what the next edit must be diffed against.
    registries: std::collections::HashMap<u64, SiteRegistry>,
    /// Each version's heap extent (see `state::heap`): kept while the version
    /// may still run (kept to be loaded again, or playing); an extent is
    /// reused only once its version is gone.
    heaps: std::collections::HashMap<u64, Extent>,
    /// The version playing, as the audio thread last said (its heap and
    /// samples are kept however old it is).
    playing: Option<u64>,
    /// Who owns each slot, as far as the messages say (checked on every message).
    audio_owns: [bool; WORKERS],
    meters: Arc<Meters>,
    subscribers: Subscribers,
    /// Rung by commands and by the audio thread's messages; the control thread sleeps on it.
    doorbell: Arc<AtomicU32>,
    /// Whether a version that stopped with nothing else to play comes back.
    resume: ResumePolicy,
    /// Every sample the workers can play (see `arena.rs`).
    arena: SampleArena,
    /// The samples in the arena, by file (a file changed on disk is loaded again).
    loaded: Vec<Loaded>,
    /// Each kept version's samples: sent with its compile request, again for
    /// a backfill or a resume. An extent no entry refers to is freed.
    version_samples: std::collections::HashMap<u64, ArenaTable>,
}

/// A tested version about to be installed: what it is (to load it again)
/// and what it holds in shared memory (its heap extent and its samples).
struct NewVersion {
    source: PatchSource,
    body: String,
    heap: Extent,
    samples: ArenaTable,
}

/// A sample in the arena: which file (and which state of it), and where.
struct Loaded {
    path: std::path::PathBuf,
    stamp: Option<(std::time::SystemTime, u64)>,
    extent: ArenaExtent,
    view: ArenaView,
}

/// Why a version's samples could not be made ready.
enum SampleFailure {
    /// A malformed pragma: the patch's own error, at its line.
    Pragma(Diagnostic),
    /// A file that cannot be played: `FILE: error: ...`.
    File(String),
}

impl Control {
    /// Slot `i`, not tied to a borrow of `self` (the mapping lives as long as
    /// `self.shm`, which outlives every use here).
    fn slot<'a>(&self, i: usize) -> &'a mut Slot {
        // SAFETY: the control thread only touches slots it owns (idle, or being
        // replaced), and the mapping stays alive as long as `self`.
        unsafe { &mut *self.shm.slot(i) }
    }

    fn emit(&self, e: LiveEvent) {
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain(|s| s.send(e.clone()).is_ok());
        let _ = self.events.send(e);
    }

    fn run(mut self, rx: Receiver<ControlMsg>) {
        // A normal thread, whatever the thread that started the engine was.
        // SAFETY: sched_setscheduler on the calling thread with a valid param.
        unsafe {
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
        }
        // Sleep until the doorbell rings (a command, or a message from the audio
        // thread), not on a timer: a thread waking every millisecond beside
        // the audio threads was itself a source of late wake-ups. The long
        // timeout is only a safety net.
        'serve: loop {
            let seen = self.doorbell.load(Ordering::Acquire);
            self.poll_audio();
            loop {
                match rx.try_recv() {
                    Ok(ControlMsg::Submit(id, src, quant)) => self.submit(id, src, quant.unwrap_or(self.config.quant)),
                    Ok(ControlMsg::Crossfade(f)) => {
                        let _ = self.to_audio.push(ToAudio::Crossfade(f));
                    }
                    Ok(ControlMsg::Shutdown) | Err(TryRecvError::Disconnected) => break 'serve,
                    Err(TryRecvError::Empty) => break,
                }
            }
            // After the submits: a new version supersedes bringing an old one back.
            match self.resume.decide(Instant::now()) {
                Some(Decision::Resume { version, stopped }) => self.resume_version(version, stopped),
                Some(Decision::Leave { version, reason }) => self.emit(LiveEvent::NotResumed { version, reason }),
                None => {}
            }
            self.respawn_dead();
            futex::wait(&self.doorbell, seen, DOORBELL_SAFETY_NET);
        }
        self.kill_all();
    }

    /// Records a slot changing hands; a message that contradicts the record is a protocol bug.
    fn hand(&mut self, slot: usize, to_audio: bool, why: &str) {
        if self.audio_owns[slot] == to_audio {
            let owner = if to_audio { "audio" } else { "control" };
            tracing::error!(slot, why, "protocol violation: slot already owned by the {owner} thread");
            self.emit(LiveEvent::Error(format!("protocol violation: slot {slot} ({why}) already owned by {owner}")));
        }
        self.audio_owns[slot] = to_audio;
    }

    fn poll_audio(&mut self) {
        while let Ok(msg) = self.from_audio.pop() {
            match msg {
                FromAudio::Installed { worker, at, sent, played } => {
                    let swap = played.duration_since(sent);
                    self.resume.played(worker.version, played);
                    self.playing = Some(worker.version);
                    self.emit(LiveEvent::Playing { version: worker.version, swap, at, played });
                }
                FromAudio::Swapped { version, freed } => {
                    tracing::debug!(version, freed = freed.len(), "swap complete");
                    self.registry.release(&freed);
                }
                FromAudio::Retired { slot } => {
                    self.hand(slot, false, "retired");
                    self.idle.push(slot);
                }
                FromAudio::Abandoned { removed } => drop(removed),
                FromAudio::Waiting { version, at, beat } => {
                    let meter = self.config.meter.get();
                    let bar = (beat / meter as f64).floor().max(0.0) as u64 + 1;
                    self.emit(LiveEvent::Waiting { version, at, beat, bar, meter });
                }
                FromAudio::Failed { worker, fault, at, recovery, now_playing, detected, fallback } => {
                    let version = worker.version;
                    self.playing = now_playing;
                    self.resume.failed(
                        version,
                        now_playing,
                        Instant::now(),
                        matches!(fault, WorkerFault::Deadline { .. }),
                    );
                    self.hand(worker.slot, false, "failed");
                    self.emit(LiveEvent::WorkerFailed {
                        version,
                        fault,
                        recovery,
                        now_playing,
                        at,
                        detected,
                        fallback,
                    });
                    let failed_at = Instant::now();
                    self.replace(worker.slot);
                    self.revert_registry(worker.version, now_playing);
                    // The backup should be the version before the one playing:
                    // when that one (the old side of a fade, or the backup) only
                    // missed a deadline, it is loaded again; a twin of the version
                    // playing would share its bugs. Otherwise the version playing.
                    let late_previous = matches!(fault, WorkerFault::Deadline { .. })
                        && now_playing.is_some_and(|v| worker.version < v)
                        && self.versions.contains_key(&worker.version);
                    let backup = if late_previous { Some(worker.version) } else { now_playing };
                    if let Some(v) = backup {
                        if self.backfill(v) {
                            let after = failed_at.elapsed();
                            self.emit(LiveEvent::BackupReady { version: v, after });
                        }
                    }
                }
                FromAudio::Late { worker, late_by, at } => {
                    self.emit(LiveEvent::WorkerLate { version: worker.version, late_by, at })
                }
                FromAudio::Fault { kind, detail, at, version } => {
                    self.emit(LiveEvent::Fault { version, kind, detail, at })
                }
                FromAudio::Silence { from, frames, cause } => self.emit(LiveEvent::Silence { from, frames, cause }),
                FromAudio::SilenceBegan { from, cause } => self.emit(LiveEvent::SilenceBegan { from, cause }),
                FromAudio::Protect(e) => self.emit(LiveEvent::Protect(e)),
            }
        }
    }

    /// Starts a worker process in `slot` and waits until it is ready.
    fn spawn(&mut self, slot: usize) -> Result<Duration, LiveError> {
        let t0 = Instant::now();
        // SAFETY: the slot's previous worker (if any) was killed and reaped.
        unsafe { self.shm.prepare_slot(slot) };
        let spawn = Spawn {
            exe: &self.config.worker_exe,
            slot,
            state_fd: self.shm.state_fd(),
            slot_fd: self.shm.slot_fd(slot),
            samples_fd: self.arena.ro_fd(),
            stderr: std::env::var_os("CLAVM_WORKER_STDERR").is_some(),
            sandbox: self.config.sandbox,
        };
        let child = WorkerProcess::spawn(&spawn)
            .map_err(|source| LiveError::Spawn { exe: self.config.worker_exe.display().to_string(), source })?;
        self.meters.worker_pids[slot].store(child.id(), Ordering::Relaxed);
        self.workers[slot] = Some(child);
        let deadline = t0 + Duration::from_secs(5);
        let s = self.slot(slot);
        while s.ready.load(Ordering::Acquire) == 0 {
            let exited = self.exited(slot);
            if exited || Instant::now() >= deadline {
                self.kill(slot);
                let why = if exited { "it exited" } else { "not within 5 s" };
                return Err(LiveError::WorkerStart(format!("worker {slot} did not become ready ({why})")));
            }
            futex::wait(&s.ready, 0, Duration::from_millis(10));
        }
        Ok(t0.elapsed())
    }

    fn exited(&mut self, slot: usize) -> bool {
        self.workers[slot].as_mut().is_none_or(|c| c.has_exited())
    }

    fn kill(&mut self, slot: usize) {
        self.meters.worker_pids[slot].store(0, Ordering::Relaxed);
        if let Some(mut c) = self.workers[slot].take() {
            c.kill_and_reap();
        }
    }

    /// Kills the worker in `slot` (failed, or hung); a fresh one is started in
    /// its slot by `respawn_dead`, after whatever must happen at once (the
    /// spare becoming the backup, a resume) has used the idle workers.
    fn replace(&mut self, slot: usize) {
        self.idle.retain(|s| *s != slot);
        self.kill(slot);
        // Dead and reaped: it can no longer write the state (the audio thread may be waiting for this).
        let _ = self.to_audio.push(ToAudio::Killed { slot });
        if !self.dead.contains(&slot) {
            self.dead.push(slot);
        }
    }

    /// Starts a fresh worker in every slot whose worker was killed.
    fn respawn_dead(&mut self) {
        for slot in std::mem::take(&mut self.dead) {
            match self.spawn(slot) {
                Ok(startup) => {
                    self.idle.push(slot);
                    self.emit(LiveEvent::WorkerReplaced { slot, startup });
                }
                Err(e) => {
                    self.emit(LiveEvent::Error(e.to_string()));
                    self.dead.push(slot);
                }
            }
        }
    }

    /// After `failed` was replaced by `playing` (or by silence), the next edit
    /// is diffed against what plays. Ids only the failed version used stay
    /// reserved, never handed out again: their state is not freed.
    fn revert_registry(&mut self, failed: u64, playing: Option<u64>) {
        let newest = self.version;
        if failed != newest {
            return; // an older version failed: the registry already describes a newer one
        }
        let snapshot = playing.and_then(|v| self.registries.get(&v)).cloned();
        let mut restored = snapshot.unwrap_or_default();
        restored.reserve_unknown(&self.registry);
        self.registry = restored;
    }

    /// Loads `version` (playing now) into an idle worker and offers it to the
    /// audio thread as the backup, so the next failure is covered too.
    /// True if the backup was handed over.
    fn backfill(&mut self, version: u64) -> bool {
        let Some((source, body)) = self.versions.get(&version).cloned() else { return false };
        let Some(&heap) = self.heaps.get(&version) else { return false };
        let table = self.version_samples.get(&version).copied().unwrap_or(NO_SAMPLES);
        // The spare, if one is idle; otherwise a replacement started now.
        if self.idle.is_empty() {
            self.respawn_dead();
        }
        let Some(slot) = self.idle.pop() else { return false };
        if self.load(slot, &source, &body, &table) != Some(Status::Ok) {
            self.replace(slot);
            return false;
        }
        // Its `compiled()` runs once here, on TEST, in the version's extent:
        // it sets what the patch keeps in statics (a Faust DSP pointer) to
        // the addresses the version's first block gave them on LIVE, whose
        // heap holds the state it plays on (see `state::heap`).
        if self.test_run(slot, heap).is_err() {
            return false;
        }
        self.make_realtime(slot);
        if self.to_audio.push(ToAudio::Backup(Worker { slot, version, heap })).is_err() {
            self.idle.push(slot);
            false
        } else {
            self.hand(slot, true, "backup");
            true
        }
    }

    /// Raises an idle worker to the audio thread's worker priority before
    /// handing it over, so it sleeps, and wakes for its first block, as a
    /// realtime thread. (It serves compiles at normal priority and would
    /// otherwise wake for that block at normal priority, behind whatever the
    /// machine is compiling: a first block late by tens of milliseconds.)
    fn make_realtime(&self, slot: usize) {
        let priority = self.meters.worker_priority.load(Ordering::Relaxed);
        let Some(child) = &self.workers[slot] else { return };
        if priority > 0 {
            let param = libc::sched_param { sched_priority: priority };
            // SAFETY: sched_setscheduler on our own child process with a valid param.
            let r = unsafe { libc::sched_setscheduler(child.id() as i32, libc::SCHED_FIFO, &param) };
            if r != 0 {
                tracing::debug!(slot, "cannot raise the worker's priority: {}", std::io::Error::last_os_error());
            }
        }
    }

    /// Sends a compile request for `source` (already rewritten as `body`,
    /// playing `samples`) to an idle slot.
    fn load(&mut self, slot: usize, source: &PatchSource, body: &str, samples: &ArenaTable) -> Option<Status> {
        let s = self.slot(slot);
        s.req.kind = RequestKind::Compile as u32;
        s.req.samples = *samples;
        s.req.priority = 0;
        s.text.name_len = put_bytes(&mut s.text.name, source.name.as_bytes());
        let dir = source.dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default();
        s.text.dir_len = put_bytes(&mut s.text.dir, dir.as_bytes());
        s.text.source_len = put_bytes(&mut s.text.source, source.text.as_bytes());
        s.text.body_len = put_bytes(&mut s.text.body, body.as_bytes());
        self.request(slot, self.config.compile_timeout)
    }

    fn kill_all(&mut self) {
        for slot in 0..WORKERS {
            self.kill(slot);
        }
    }

    /// One request on an idle slot, waited for up to `timeout`. None on timeout.
    fn request(&mut self, slot: usize, timeout: Duration) -> Option<Status> {
        let s = self.slot(slot);
        let seq = s.request.load(Ordering::Relaxed).wrapping_add(1);
        s.resp.status = 0;
        s.request.store(seq, Ordering::Release);
        futex::wake(&s.request);
        if futex::wait_for(&s.response, seq, Instant::now() + timeout, Duration::from_micros(20)) {
            Some(Status::from_u32(s.resp.status).unwrap_or(Status::BadRequest))
        } else {
            None
        }
    }

    /// An idle worker, waiting up to `patience` for the audio thread to return one.
    fn idle_worker(&mut self, patience: Duration) -> Option<usize> {
        let t0 = Instant::now();
        let mut respawned = false;
        loop {
            if let Some(slot) = self.idle.pop() {
                if self.audio_owns[slot] {
                    self.emit(LiveEvent::Error(format!("protocol violation: idle slot {slot} is the audio thread's")));
                    continue;
                }
                return Some(slot);
            }
            // Replacements are started once per wait: a worker that cannot start
            // (its executable gone) must not keep this thread spawning.
            if !respawned && !self.dead.is_empty() {
                respawned = true;
                self.respawn_dead();
                continue;
            }
            if t0.elapsed() >= patience {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
            self.poll_audio();
        }
    }

    fn crash_reason(&mut self, slot: usize, what: &str) -> String {
        let s = self.slot(slot);
        let fault = WorkerFault::Crashed {
            signal: s.resp.signal,
            stack_overflow: s.resp.stack_overflow != 0,
            in_compiled: s.resp.in_compiled != 0,
        };
        format!("{what}: {}", fault.describe())
    }

    fn submit(&mut self, submit: SubmitId, source: PatchSource, quant: Quant) {
        let name = source.name.clone();
        let t0 = Instant::now();
        let rewritten = match patch::prepare(&source, &self.registry, &CompileOptions::default()) {
            Ok(r) => r,
            Err(e) => return self.emit(LiveEvent::Rejected { submit, name, diagnostics: e.diagnostics().to_vec() }),
        };
        // The samples it plays, loaded here on the control thread (never by
        // the audio thread or a worker); a bad file keeps the old version.
        let samples = match self.sample_table(&source) {
            Ok(t) => t,
            Err(SampleFailure::Pragma(d)) => {
                return self.emit(LiveEvent::Rejected { submit, name, diagnostics: vec![d] })
            }
            Err(SampleFailure::File(reason)) => {
                self.collect_samples();
                return self.emit(LiveEvent::TestFailed { submit, name, reason });
            }
        };
        let outcome = self.submit_with(submit, source, rewritten, samples, quant, t0);
        // Whatever this version loaded and does not keep, and whatever no
        // kept version plays any more.
        self.collect_samples();
        if let Some(e) = outcome {
            self.emit(e);
        }
    }

    /// `submit` once its samples are in the arena: the event that ends it
    /// when it fails (`Compiled` is emitted here).
    fn submit_with(
        &mut self,
        submit: SubmitId,
        source: PatchSource,
        rewritten: patch::RewrittenSource,
        samples: ArenaTable,
        quant: Quant,
        t0: Instant,
    ) -> Option<LiveEvent> {
        let name = source.name.clone();
        let Some(slot) = self.idle_worker(Duration::from_millis(500)) else {
            let reason = "no idle worker to compile on (all busy or failed)".to_string();
            return Some(LiveEvent::TestFailed { submit, name, reason });
        };
        // Compile.
        let status = self.load(slot, &source, &rewritten.body, &samples);
        let compile = t0.elapsed();
        let s = self.slot(slot);
        let diag = get_string(&s.text.diag, s.text.diag_len);
        let mut messages: Vec<Diagnostic> = rewritten.warnings.clone();
        messages.extend(diag.lines().filter_map(Diagnostic::parse));
        match status {
            Some(Status::Ok) => {}
            Some(Status::CompileError) => {
                self.idle.push(slot);
                return Some(LiveEvent::Rejected { submit, name, diagnostics: messages });
            }
            Some(Status::Crashed) => {
                let reason = self.crash_reason(slot, "TinyCC crashed while compiling");
                self.replace(slot);
                return Some(LiveEvent::TestFailed { submit, name, reason });
            }
            _ => {
                self.replace(slot);
                let reason = format!("compiling took longer than {:.1} s", self.config.compile_timeout.as_secs_f64());
                return Some(LiveEvent::TestFailed { submit, name, reason });
            }
        }
        let heap = self.free_heap();
        let test = match self.test_run(slot, heap) {
            Ok(t) => t,
            Err(reason) => return Some(LiveEvent::TestFailed { submit, name, reason }),
        };
        if let Err(reason) = self.install(
            slot,
            NewVersion { source, body: rewritten.body.clone(), heap, samples },
            rewritten.plan.removed.clone(),
            quant,
        ) {
            return Some(LiveEvent::TestFailed { submit, name, reason });
        }
        self.resume.submitted();
        self.registry.commit(&rewritten.plan);
        self.registries.insert(self.version, self.registry.clone());
        self.emit(LiveEvent::Compiled { submit, version: self.version, name, compile, test, warnings: messages });
        None
    }

    /// The samples `source` plays: its pragmas, then the command line's.
    fn sample_table(&mut self, source: &PatchSource) -> Result<ArenaTable, SampleFailure> {
        let pragmas = crate::patch::pragma::sample_pragmas(source).map_err(SampleFailure::Pragma)?;
        let mut table = NO_SAMPLES;
        for s in crate::samples::merge(&pragmas, &self.config.samples) {
            table[s.n] = self.sample(&s.path).map_err(SampleFailure::File)?;
        }
        Ok(table)
    }

    /// `path` in the arena: already there if the file has not changed since,
    /// otherwise decoded, resampled and copied in now.
    fn sample(&mut self, path: &std::path::Path) -> Result<ArenaView, String> {
        let stamp = std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
        if let Some(l) = self.loaded.iter().find(|l| l.path == path && stamp.is_some() && l.stamp == stamp) {
            return Ok(l.view);
        }
        let limit = self.arena.len() as u64;
        let mut budget = MemoryBudget { limit, used: limit - self.arena.largest_free() as u64 };
        let rate = self.config.sample_rate.round() as u32;
        let data = crate::samples::load(path, rate, &mut budget)
            .map_err(|e| format!("{}: error: {}", e.path.display(), e.problem))?;
        let (extent, view) = self.arena.store(&data).ok_or_else(|| {
            format!(
                "{}: error: it does not fit in what is left of the {} MiB sample memory (raise --sample-memory)",
                path.display(),
                limit >> 20
            )
        })?;
        self.loaded.push(Loaded { path: path.to_path_buf(), stamp, extent, view });
        Ok(view)
    }

    /// Frees the extents no kept version plays.
    fn collect_samples(&mut self) {
        let used: std::collections::HashSet<u64> =
            self.version_samples.values().flat_map(|t| t.iter().filter(|v| v.frames > 0).map(|v| v.offset)).collect();
        let (keep, gone): (Vec<Loaded>, Vec<Loaded>) =
            self.loaded.drain(..).partition(|l| used.contains(&(l.extent.offset as u64)));
        for l in gone {
            self.arena.release(l.extent);
        }
        self.loaded = keep;
    }

    /// A heap extent no version that may still run holds: not one kept to be
    /// loaded again, nor the one playing. (Six extents, at most four kept
    /// versions and the one playing: one is always free.)
    fn free_heap(&self) -> Extent {
        (0..HEAP_EXTENTS).filter_map(Extent::new).find(|e| !self.heaps.values().any(|h| h == e)).unwrap_or_default()
    }

    /// The test run of the version compiled on `slot`: `compiled()` (in heap
    /// extent `heap`) and one block on a copy of the live state. On failure
    /// the slot is back in `idle` (or replaced) and the reason returned.
    fn test_run(&mut self, slot: usize, heap: Extent) -> Result<Duration, String> {
        let t1 = Instant::now();
        // SAFETY: TEST is only used by test runs, which the control thread runs one at a time;
        // LIVE may be changing under the copy (the active worker runs): a torn copy is fine for a test.
        // No heap is copied: `compiled()` starts the version's extent afresh.
        unsafe { self.shm.copy_memory(Memory::Test, Memory::Live, ExtentSet::NONE) };
        let s = self.slot(slot);
        s.req.kind = RequestKind::Run as u32;
        s.req.heap_extent = heap.index() as u32;
        s.req.memory = Memory::Test as u32;
        s.req.call_compiled = 1;
        s.req.frames = self.config.test_frames as u32;
        s.req.compiled_epoch = u64::MAX - 1;
        // The test run happens now: `_time()` reads the engine's current time.
        s.req.frame = self.meters.frames.load(Ordering::Relaxed);
        s.req.priority = 0;
        let status = self.request(slot, self.config.test_timeout);
        let test = t1.elapsed();
        let s = self.slot(slot);
        let failure = match status {
            Some(Status::Ok) if s.resp.nonfinite > 0 => {
                Some(format!("its test run output {} NaN/Inf samples", s.resp.nonfinite))
            }
            Some(Status::Ok) => None,
            Some(Status::Crashed) => Some(self.crash_reason(slot, "its test run crashed")),
            Some(_) => Some("its test run failed (bad response)".to_string()),
            None => Some(format!(
                "its test run did not finish in {:.0} ms: an infinite loop in play() or compiled()?",
                self.config.test_timeout.as_secs_f64() * 1e3
            )),
        };
        match failure {
            None => Ok(test),
            Some(reason) => {
                if matches!(status, Some(Status::Ok)) {
                    self.idle.push(slot);
                } else {
                    self.replace(slot);
                }
                Err(reason)
            }
        }
    }

    /// Hands the tested version on `slot` to the audio thread as a new
    /// version number, and keeps its source to load it again.
    fn install(&mut self, slot: usize, version: NewVersion, removed: Vec<SiteId>, quant: Quant) -> Result<(), String> {
        let NewVersion { source, body, heap, samples } = version;
        let worker = Worker { slot, version: self.version + 1, heap };
        self.make_realtime(slot);
        if self.to_audio.push(ToAudio::Install { worker, removed, sent: Instant::now(), quant }).is_err() {
            self.idle.push(slot);
            return Err("the audio thread is not taking commands".to_string());
        }
        self.version += 1;
        self.hand(slot, true, "install");
        self.versions.insert(self.version, (source, body));
        self.heaps.insert(self.version, heap);
        self.version_samples.insert(self.version, samples);
        // Only the last few versions can still be asked back (and the one
        // playing keeps its heap and samples, however old).
        let newest = self.version;
        let playing = self.playing;
        self.versions.retain(|v, _| *v + 4 > newest);
        self.heaps.retain(|v, _| *v + 4 > newest || Some(*v) == playing);
        self.registries.retain(|v, _| *v + 4 > newest);
        self.version_samples.retain(|v, _| *v + 4 > newest || Some(*v) == playing);
        Ok(())
    }

    /// Brings back `version`, which stopped at `stopped` with nothing else to
    /// play: compiled again, test-run, and installed as a new version (see
    /// `resume.rs`). The registry goes back to the one it committed.
    fn resume_version(&mut self, version: u64, stopped: Instant) {
        let not = |reason: String| LiveEvent::NotResumed { version, reason };
        if version != self.version {
            return self.emit(not("a newer version was submitted since".into()));
        }
        let (Some((source, body)), Some(registry)) =
            (self.versions.get(&version).cloned(), self.registries.get(&version).cloned())
        else {
            return self.emit(not("its source is no longer kept".into()));
        };
        // Whatever stalled the two that were killed may hold the idle ones as
        // well (a stopped process group, a frozen cgroup): the replacements,
        // started now, are the workers known to run. (Nothing plays meanwhile,
        // so their start-up costs no protection.) They are the last pushed.
        self.respawn_dead();
        let Some(slot) = self.idle_worker(Duration::from_millis(500)) else {
            return self.emit(not("no worker is free to compile it".into()));
        };
        let samples = self.version_samples.get(&version).copied().unwrap_or(NO_SAMPLES);
        match self.load(slot, &source, &body, &samples) {
            Some(Status::Ok) => {}
            Some(Status::CompileError) => {
                self.idle.push(slot);
                return self.emit(not("it no longer compiles".into()));
            }
            _ => {
                self.replace(slot);
                return self.emit(not("compiling it again failed".into()));
            }
        }
        let heap = self.free_heap();
        if let Err(reason) = self.test_run(slot, heap) {
            return self.emit(not(reason));
        }
        // Bringing back what stopped does not wait for the beat: it is already late.
        if let Err(reason) =
            self.install(slot, NewVersion { source, body, heap, samples }, Vec::new(), Quant::NEXT_BLOCK)
        {
            return self.emit(not(reason));
        }
        let mut restored = registry;
        restored.reserve_unknown(&self.registry);
        self.registry = restored;
        self.registries.insert(self.version, self.registry.clone());
        self.emit(LiveEvent::Resumed { version: self.version, of: version, after: stopped.elapsed() });
    }
}
