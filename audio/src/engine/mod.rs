//! The engine runs the installed program frame by frame, swaps in new
//! programs, and protects the output.
//!
//! It is split like kira's managers: an [`Engine`] that lives where audio is
//! processed and never allocates, frees or locks there, and an
//! [`EngineHandle`] on a normal thread that compiles patches, sends
//! [`Command`]s, and receives [`Report`]s and retired programs (which it frees:
//! `tcc_delete` must not run on the audio thread, nor while code may still run).
//!
//! A swap is an equal-power crossfade (see [`swap`]): the old program keeps running on a
//! *copy* of the state (the shadow) while the new one continues on the live
//! state, so each oscillator still advances once per frame and call sites that
//! survived the edit keep their phase.

mod denormals;
pub mod swap;

pub use denormals::FlushDenormals;

use rtrb::{Consumer, Producer, RingBuffer};

use crate::builtins::api::{ClockView, Ctx, FaultKind, Params, MAX_CHANNELS};
use crate::clock::{Bpm, Meter, TempoClock};
use crate::patch::sites::{SiteId, SiteRegistry};
use crate::patch::{self, CompileOptions, PatchError, PatchSource, Prepared};
use crate::protect::{ProtectEvent, Protection};
use crate::state::{DelayPool, Extent, Integrity, OwnedHeap, StateMemory, HEAP_EXTENTS};
use crate::voices::{NoteEvent, Release, VoiceAllocator, VoiceCount};
use crate::Frames;
use swap::Fade;

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub sample_rate: f64,
    /// Output channels (1..=16).
    pub channels: usize,
    /// Input channels (0..=16).
    pub inputs: usize,
    /// Length of the equal-power crossfade on a swap (0 = switch at once).
    pub crossfade: Frames,
    /// Seed of the random builtins.
    pub seed: u64,
    /// The interval-bar tree patches read (`_bar_freq`, `_bar_gate`): each
    /// bar's note in Hz and whether it is touched. Empty: no tree.
    pub bars: Vec<(f32, bool)>,
    /// The tempo clock's tempo and meter (`_bpm`, `_beat`, `_bar`).
    pub bpm: Bpm,
    pub meter: Meter,
    /// How many voices MIDI notes are spread over, and how long a released
    /// note rings (`_voices`, `_gate`).
    pub voices: VoiceCount,
    pub release: Release,
}

impl EngineConfig {
    pub fn new(sample_rate: f64, channels: usize) -> EngineConfig {
        EngineConfig {
            sample_rate,
            channels,
            inputs: 0,
            crossfade: Frames::from_seconds(0.010, sample_rate),
            seed: 0,
            bars: Vec::new(),
            bpm: Bpm::DEFAULT,
            meter: Meter::DEFAULT,
            voices: VoiceCount::DEFAULT,
            release: Release::DEFAULT,
        }
    }
}

/// Invalid engine configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("sample rate {0} Hz is out of range (8000..=384000)")]
    SampleRate(f64),
    #[error("{0} output channels requested; 1 to {MAX_CHANNELS} are supported")]
    Channels(usize),
    #[error("{0} input channels requested; at most {MAX_CHANNELS} are supported")]
    Inputs(usize),
}

/// A parameter a patch reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Param {
    /// `_p(n)`
    P(u8, f32),
    /// `_i(n)`
    I(u8, i32),
    /// `_cc(n)`, 0..1
    Cc(u8, f32),
    /// The tempo clock's tempo (`_bpm()`); `_beat()` bends to it from the next block.
    Tempo(Bpm),
    /// A MIDI note, bend or pedal event for the voices, at the next block.
    Note(NoteEvent),
}

/// What the handle asks of the engine.
pub enum Command {
    Install(Box<Prepared>),
    SetParam(Param),
    SetCrossfade(Frames),
}

/// What the engine tells the handle. All variants are plain data: sent from the audio thread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Report {
    /// The program sent as install number `serial` started playing at `at`.
    Installed {
        serial: u64,
        at: Frames,
    },
    /// A patch fault, first occurrence since the program was installed.
    Fault {
        kind: FaultKind,
        detail: i64,
        at: Frames,
    },
    Protect(ProtectEvent),
}

/// A program the engine no longer runs, handed back for freeing.
pub struct Retired {
    pub program: Box<Prepared>,
    /// Sites whose state the engine freed when this program stopped.
    pub freed: Vec<SiteId>,
}

const COMMANDS: usize = 64;
const REPORTS: usize = 256;
const RETIRED: usize = 16;

/// The realtime half: owns the state and runs programs.
pub struct Engine {
    config: EngineConfig,
    live: Box<StateMemory>,
    shadow: Box<StateMemory>,
    /// Owned here; both contexts point into it.
    _delays: Box<DelayPool>,
    /// What `compiled()` allocates, shared by both contexts like the delay
    /// lines: each install allocates in its own extent, so the program fading
    /// out keeps its memory while the new one starts its own.
    _heap: OwnedHeap,
    params: Box<Params>,
    clock: TempoClock,
    voices: VoiceAllocator,
    live_ctx: Ctx,
    shadow_ctx: Ctx,
    current: Option<Box<Prepared>>,
    fade: Option<Fade>,
    /// A retired program waiting for room in the ring.
    limbo: Option<Retired>,
    protection: Protection,
    frame: u64,
    /// Epochs for `compiled()` calls count down from the top, never meeting frame epochs.
    compiled_epoch: u64,
    installs: u64,
    commands: Consumer<Command>,
    reports: Producer<Report>,
    retired: Producer<Retired>,
    dropped_reports: u64,
}

/// The non-realtime half: compiles, installs, and collects what the engine hands back.
pub struct EngineHandle {
    commands: Producer<Command>,
    reports: Consumer<Report>,
    retired: Consumer<Retired>,
    registry: SiteRegistry,
    options: CompileOptions,
    installs: u64,
    sample_rate: f64,
}

/// Creates an engine and its handle.
pub fn engine(config: EngineConfig) -> Result<(Engine, EngineHandle), ConfigError> {
    if !(8000.0..=384000.0).contains(&config.sample_rate) {
        return Err(ConfigError::SampleRate(config.sample_rate));
    }
    if !(1..=MAX_CHANNELS).contains(&config.channels) {
        return Err(ConfigError::Channels(config.channels));
    }
    if config.inputs > MAX_CHANNELS {
        return Err(ConfigError::Inputs(config.inputs));
    }
    let (cmd_tx, cmd_rx) = RingBuffer::new(COMMANDS);
    let (rep_tx, rep_rx) = RingBuffer::new(REPORTS);
    let (ret_tx, ret_rx) = RingBuffer::new(RETIRED);
    let mut live = StateMemory::new_boxed(config.seed);
    let mut shadow = StateMemory::new_boxed(config.seed);
    let mut delays = Box::new(DelayPool::new());
    let mut heap = OwnedHeap::new();
    let mut params = Box::<Params>::default();
    params.set_bars(config.bars.iter().copied());
    // SAFETY: the boxes are owned by the engine next to the contexts and never
    // move or drop while the contexts exist (heap addresses are stable).
    let (live_ctx, mut shadow_ctx) = unsafe {
        (
            Ctx::new(
                &mut *live,
                &mut *delays,
                heap.as_mut_ptr(),
                &*params,
                config.sample_rate,
                config.channels,
                config.inputs,
            ),
            Ctx::new(
                &mut *shadow,
                &mut *delays,
                heap.as_mut_ptr(),
                &*params,
                config.sample_rate,
                config.channels,
                config.inputs,
            ),
        )
    };
    shadow_ctx.may_take_lines = false;
    let sample_rate = config.sample_rate;
    let clock = TempoClock::new(config.sample_rate, config.bpm, config.meter);
    let voices = VoiceAllocator::new(config.voices, config.release, config.sample_rate);
    let engine = Engine {
        clock,
        voices,
        protection: Protection::new(config.sample_rate, config.channels),
        config,
        live,
        shadow,
        _delays: delays,
        _heap: heap,
        params,
        live_ctx,
        shadow_ctx,
        current: None,
        fade: None,
        limbo: None,
        frame: 0,
        compiled_epoch: u64::MAX,
        installs: 0,
        commands: cmd_rx,
        reports: rep_tx,
        retired: ret_tx,
        dropped_reports: 0,
    };
    let handle = EngineHandle {
        commands: cmd_tx,
        reports: rep_rx,
        retired: ret_rx,
        registry: SiteRegistry::default(),
        options: CompileOptions::default(),
        installs: 0,
        sample_rate,
    };
    Ok((engine, handle))
}

/// The command queue is full (the engine is not running, or is far behind).
#[derive(Debug, thiserror::Error)]
#[error("the engine is not taking commands (queue full)")]
pub struct QueueFull;

impl EngineHandle {
    /// Compiles `source` against the installed program's call sites (so state carries over).
    pub fn compile(&self, source: &PatchSource) -> Result<Box<Prepared>, PatchError> {
        patch::compile(source, &self.registry, &self.options).map(Box::new)
    }

    /// Sends a compiled program to the engine; it starts at the engine's next block
    /// (or frame, offline). Returns the install's serial number, as in [`Report::Installed`].
    pub fn install(&mut self, prepared: Box<Prepared>) -> Result<u64, QueueFull> {
        // Commit before sending: the next compile must diff against this program.
        let plan = prepared.plan.clone();
        self.commands.push(Command::Install(prepared)).map_err(|_| QueueFull)?;
        self.registry.commit(&plan);
        self.installs += 1;
        Ok(self.installs)
    }

    pub fn set_param(&mut self, p: Param) -> Result<(), QueueFull> {
        self.commands.push(Command::SetParam(p)).map_err(|_| QueueFull)
    }

    pub fn set_crossfade(&mut self, f: Frames) -> Result<(), QueueFull> {
        self.commands.push(Command::SetCrossfade(f)).map_err(|_| QueueFull)
    }

    pub fn set_options(&mut self, options: CompileOptions) {
        self.options = options;
    }

    /// Frees programs the engine retired and returns what it reported since the last call.
    pub fn collect(&mut self) -> Vec<Report> {
        while let Ok(r) = self.retired.pop() {
            self.registry.release(&r.freed);
            drop(r.program);
        }
        let mut out = Vec::new();
        while let Ok(r) = self.reports.pop() {
            out.push(r);
        }
        out
    }

    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// A sentence for a report.
    pub fn describe(&self, r: &Report) -> String {
        match r {
            Report::Installed { serial, at } => {
                format!("t={:.4}s: install #{serial} playing", at.seconds(self.sample_rate))
            }
            Report::Fault { kind, detail, at } => {
                format!("t={:.4}s: {}", at.seconds(self.sample_rate), kind.describe(*detail))
            }
            Report::Protect(e) => e.describe(self.sample_rate),
        }
    }
}

impl Engine {
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Frames processed so far.
    pub fn position(&self) -> Frames {
        Frames(self.frame)
    }

    /// The live state (for inspection in tests and tools).
    pub fn state(&self) -> &StateMemory {
        &self.live
    }

    /// Applies a MIDI note event from the next block on (offline renders
    /// call this between blocks, which they split at every event's frame).
    pub fn note(&mut self, e: NoteEvent) {
        self.voices.apply(e);
    }

    /// Notes played and voices stolen so far.
    pub fn voice_counts(&self) -> crate::voices::VoiceCounts {
        self.voices.counts()
    }

    /// Whether a program is installed.
    pub fn is_playing(&self) -> bool {
        self.current.is_some()
    }

    /// Processes one block: `output` is interleaved, `channels` samples per
    /// frame; `input` is interleaved with `inputs` samples per frame (or empty).
    /// Runs patch code, so it can take as long as the patch does.
    pub fn process(&mut self, input: &[f32], output: &mut [f32]) {
        realtime(|| self.process_inner(input, output))
    }

    fn process_inner(&mut self, input: &[f32], output: &mut [f32]) {
        let _ftz = FlushDenormals::new();
        self.drain_commands();
        self.flush_limbo();
        self.params.clock = ClockView::of(&self.clock, self.frame);
        let ch = self.config.channels;
        let frames = output.len() / ch.max(1);
        self.voices.begin_block(self.frame, frames, &mut self.params.voices);
        let ins = self.config.inputs;
        for (n, out) in output.chunks_exact_mut(ch).enumerate() {
            let inp = if ins > 0 { input.get(n * ins..(n + 1) * ins).unwrap_or(&[]) } else { &[] };
            self.run_frame(inp, out);
            let at = self.frame;
            let reports = &mut self.reports;
            let dropped = &mut self.dropped_reports;
            self.protection.process(out, at, &mut |e| {
                if reports.push(Report::Protect(e)).is_err() {
                    *dropped += 1;
                }
            });
            self.frame += 1;
        }
        self.report_faults();
    }

    fn run_frame(&mut self, input: &[f32], out: &mut [f32]) {
        let frame = self.frame;
        let Some(current) = self.current.as_deref() else {
            out.fill(0.0);
            return;
        };
        // During a fade the old program runs first: delay lines are shared, and
        // the new program's writes must be the ones that stay.
        if let Some(fade) = &self.fade {
            let sh = &mut self.shadow_ctx;
            prepare_ctx(sh, frame, input);
            // SAFETY: the context is entered; the fading program is alive until retired.
            sh.enter(|| unsafe { fade.old.program.play() });
        }
        let ctx = &mut self.live_ctx;
        prepare_ctx(ctx, frame, input);
        // SAFETY: the context is entered; the program is installed and alive.
        ctx.enter(|| unsafe { current.program.play() });
        match &mut self.fade {
            None => out.copy_from_slice(&ctx.out[..out.len()]),
            Some(fade) => {
                fade.mix(&self.shadow_ctx.out, &ctx.out, out);
                if fade.advance() {
                    self.finish_fade();
                }
            }
        }
    }

    fn drain_commands(&mut self) {
        while let Ok(cmd) = self.commands.pop() {
            match cmd {
                Command::Install(p) => self.install(p),
                Command::SetParam(p) => self.set_param(p),
                Command::SetCrossfade(f) => self.config.crossfade = f,
            }
        }
    }

    fn set_param(&mut self, p: Param) {
        match p {
            Param::Tempo(bpm) => self.clock.set_bpm(Frames(self.frame), bpm),
            Param::Note(e) => self.voices.apply(e),
            p => self.params.apply(p),
        }
    }

    fn install(&mut self, new: Box<Prepared>) {
        if self.fade.is_some() {
            self.finish_fade();
        }
        let old = self.current.take();
        match old {
            Some(old) if self.config.crossfade.0 > 0 => {
                // The old program goes on, on a copy of the state, while it fades out.
                self.shadow.copy_from(&self.live);
                self.shadow_ctx.faults = self.live_ctx.faults;
                // SAFETY: the old program's samples live in it, and it lives
                // until retired, after the fade (the last use of this table).
                unsafe { self.shadow_ctx.set_samples(old.samples.table()) };
                self.fade = Some(Fade::new(old, self.config.crossfade));
                self.current = Some(new);
            }
            old => {
                self.current = Some(new);
                if let Some(old) = old {
                    self.retire(old);
                }
            }
        }
        self.installs += 1;
        self.live_ctx.faults = Default::default();
        let current = self.current.as_deref().expect("just installed");
        // SAFETY: the samples live in the installed program, which is retired
        // (and dropped off this thread) only after another install replaced
        // this table.
        unsafe { self.live_ctx.set_samples(current.samples.table()) };
        self.compiled_epoch -= 1;
        self.live_ctx.epoch = self.compiled_epoch;
        self.live_ctx.frame = self.frame;
        // One extent per install, in turn: only this one and the one fading out are alive.
        let extent = Extent::new(self.installs as usize % HEAP_EXTENTS).unwrap_or_default();
        // SAFETY: the context is entered; the program is installed and alive.
        self.live_ctx.enter_compiled(extent, || unsafe { current.program.compiled() });
        self.live_ctx.out = [0.0; MAX_CHANNELS];
        let r = Report::Installed { serial: self.installs, at: Frames(self.frame) };
        self.report(r);
    }

    fn finish_fade(&mut self) {
        if let Some(fade) = self.fade.take() {
            self.retire(fade.old);
        }
    }

    /// Frees the sites the *current* program's plan removed, and hands `old` back.
    fn retire(&mut self, old: Box<Prepared>) {
        let freed = match self.current.as_deref_mut() {
            Some(cur) => std::mem::take(&mut cur.plan.removed),
            None => Vec::new(),
        };
        if self.live.free_sites_and_rebuild(freed.iter().map(|id| id.0 as usize)) == Integrity::Repaired {
            self.report(Report::Fault { kind: FaultKind::StateCorrupt, detail: 0, at: Frames(self.frame) });
        }
        let r = Retired { program: old, freed };
        if let Err(rtrb::PushError::Full(r)) = self.retired.push(r) {
            // Never drop code here: keep it until the handle makes room.
            debug_assert!(self.limbo.is_none());
            self.limbo = Some(r);
        }
    }

    fn flush_limbo(&mut self) {
        if let Some(r) = self.limbo.take() {
            if let Err(rtrb::PushError::Full(r)) = self.retired.push(r) {
                self.limbo = Some(r);
            }
        }
    }

    fn report(&mut self, r: Report) {
        if self.reports.push(r).is_err() {
            self.dropped_reports += 1;
        }
    }

    fn report_faults(&mut self) {
        if self.live_ctx.faults.fresh == 0 {
            return;
        }
        let at = Frames(self.frame);
        let mut faults = self.live_ctx.faults;
        for (kind, detail) in faults.take_fresh() {
            self.report(Report::Fault { kind, detail, at });
        }
        self.live_ctx.faults.fresh = 0;
    }

    /// Reports that could not be queued because the handle was not reading.
    pub fn dropped_reports(&self) -> u64 {
        self.dropped_reports
    }
}

/// Runs one block of an audio callback. In debug builds (feature
/// `alloc-guard`) an allocation inside aborts, where the program installs
/// `assert_no_alloc`'s allocator (the tests do): the realtime rules, enforced.
#[inline]
pub fn realtime<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(all(feature = "alloc-guard", debug_assertions))]
    return assert_no_alloc::assert_no_alloc(f);
    #[cfg(not(all(feature = "alloc-guard", debug_assertions)))]
    f()
}

#[inline]
fn prepare_ctx(ctx: &mut Ctx, frame: u64, input: &[f32]) {
    ctx.frame = frame;
    ctx.epoch = frame + 1;
    ctx.out = [0.0; MAX_CHANNELS];
    for (d, s) in ctx.input.iter_mut().zip(input) {
        *d = *s;
    }
}

#[cfg(test)]
mod tests;
