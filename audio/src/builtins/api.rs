//! The C side of the patch API: the functions a patch calls, the context they
//! work in, and the one table from which the TinyCC prelude, the symbol
//! bindings and the gcc reference prelude (for benchmarks) are all generated.
//!
//! The context reaches the functions through a thread-local pointer that the
//! engine sets around each `play()`/`compiled()` call (one TLS load, no lock).
//! Called outside that window, every function is a harmless no-op.

use std::cell::Cell as StdCell;
use std::ffi::{c_void, CStr};

use super::{Builtin, SplitMix64, COS_TABLE_LEN};
use crate::samples::{SampleTable, SampleView, SLOTS as SAMPLE_SLOTS};
use crate::state::{
    heap, DelayPool, Extent, StateMemory, DOUBLE_SLOTS, FLOAT_SLOTS, HEAP_EXTENT_BYTES, INT_SLOTS, MAX_CELLS, MAX_SITES,
};

/// Most output (and input) channels a patch can address.
pub const MAX_CHANNELS: usize = 16;
/// Parameters `_p(0..128)`, `_i(0..128)` and MIDI CCs `_cc(0..128)`.
pub const PARAMS: usize = 128;
/// Interval bars a patch can read (`_bar_freq(0.._bars())`): the tree's
/// 255 bars at most, and the root.
pub const MAX_BARS: usize = 256;

/// Live parameters a patch reads (`_p`, `_i`, `_cc`). Plain data: it travels
/// to worker processes in shared memory.
#[repr(C)]
#[derive(Clone, Debug, bytemuck::Zeroable)]
pub struct Params {
    pub p: [f32; PARAMS],
    pub i: [i32; PARAMS],
    pub cc: [f32; PARAMS],
    /// The values at the start of the block: `_p` and `_cc` ramp linearly from
    /// these to `p`/`cc` over the block, so a jump does not click. `_i` steps.
    pub p_from: [f32; PARAMS],
    pub cc_from: [f32; PARAMS],
    /// The block the ramp spans: its first frame and its length.
    pub ramp_start: u64,
    pub ramp_len: u32,
    /// The interval-bar tree the patch plays (`_bars`, `_bar_freq`,
    /// `_bar_gate`): how many bars, each one's note in Hz and touch gate.
    pub bars: u32,
    pub bar_freq: [f32; MAX_BARS],
    pub bar_gate: [f32; MAX_BARS],
    /// The tempo clock for this block (`_bpm`, `_beat`, `_bar`).
    pub clock: ClockView,
    /// The MIDI voices for this block (`_voices`, `_note`, `_hz`, `_gate`, `_velocity`).
    pub voices: crate::voices::VoiceView,
}

/// The tempo clock as a block sees it: the beat at the block's first frame
/// and how far each frame advances it (the tempo only changes between blocks).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Zeroable)]
pub struct ClockView {
    pub frame0: u64,
    pub beat0: f64,
    pub beats_per_frame: f64,
    pub bpm: f64,
    pub meter: f64,
}

impl ClockView {
    /// The view of `clock` for a block starting at `frame`.
    pub fn of(clock: &crate::clock::TempoClock, frame: u64) -> ClockView {
        ClockView {
            frame0: frame,
            beat0: clock.beat_at(crate::Frames(frame)),
            beats_per_frame: clock.beats_per_frame(),
            bpm: clock.bpm().get(),
            meter: clock.meter().get() as f64,
        }
    }

    fn beat(&self, frame: u64) -> f64 {
        self.beat0 + frame.wrapping_sub(self.frame0) as f64 * self.beats_per_frame
    }
}

impl Params {
    /// Sets one parameter (`_cc` values are clamped to 0..1, indices to the table).
    pub fn apply(&mut self, p: crate::engine::Param) {
        use crate::engine::Param;
        let i = |n: u8| (n as usize).min(PARAMS - 1);
        match p {
            Param::P(n, v) => self.p[i(n)] = v,
            Param::I(n, v) => self.i[i(n)] = v,
            Param::Cc(n, v) => self.cc[i(n)] = v.clamp(0.0, 1.0),
            // The clock and the voices are the engine's, not values in this table.
            Param::Tempo(_) | Param::Note(_) => {}
        }
    }
}

impl Params {
    /// Sets the bar tree the patch reads: each bar's note (Hz) and gate (0 or 1).
    /// More than [`MAX_BARS`] are cut; non-finite frequencies read 0.
    pub fn set_bars(&mut self, bars: impl IntoIterator<Item = (f32, bool)>) {
        let mut n = 0;
        for (i, (f, g)) in bars.into_iter().take(MAX_BARS).enumerate() {
            self.bar_freq[i] = if f.is_finite() { f } else { 0.0 };
            self.bar_gate[i] = if g { 1.0 } else { 0.0 };
            n = i + 1;
        }
        self.bars = n as u32;
    }

    /// Starts a block at `frame`: what was the target is where the ramp starts.
    pub fn begin_block(&mut self, frame: u64, frames: usize) {
        self.p_from = self.p;
        self.cc_from = self.cc;
        self.ramp_start = frame;
        self.ramp_len = frames as u32;
    }

    /// Parameter `n` of `to` at `frame`, on the ramp from `from`.
    fn ramped(&self, from: &[f32; PARAMS], to: &[f32; PARAMS], n: usize, frame: u64) -> f32 {
        let (a, b) = (from[n], to[n]);
        if a == b {
            return b;
        }
        let t = (frame.wrapping_sub(self.ramp_start).saturating_add(1)) as f32 / self.ramp_len.max(1) as f32;
        a + (b - a) * t.clamp(0.0, 1.0)
    }
}

impl Default for Params {
    fn default() -> Self {
        bytemuck::Zeroable::zeroed()
    }
}

/// Something a patch did wrong at run time; each kind is reported once per installed program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FaultKind {
    FloatSlot,
    DoubleSlot,
    IntSlot,
    OutChannel,
    InChannel,
    Param,
    DelayTooLong,
    DelayLinesExhausted,
    CellsExhausted,
    BadSite,
    /// The state memory's bookkeeping (cell counts, links, free lists) held
    /// values no builtin writes: the patch wrote past its own state. The
    /// engine cut what was wrong and rebuilt the free lists.
    StateCorrupt,
    /// The patch called a function that starts programs, ends the process or deletes files.
    Blocked,
    /// `malloc`/`calloc`/`realloc` called from `play()` (detail: bytes asked):
    /// refused with NULL, allocation is for `compiled()`.
    AllocInPlay,
    /// `compiled()` asked for more than its heap extent holds (detail: bytes asked): NULL.
    HeapExhausted,
    /// A `Sample*` builtin named a number with no sample loaded (or outside 0..64).
    NoSample,
    /// `_note`/`_hz`/`_gate`/`_velocity` of a voice that is not there.
    Voice,
}

impl FaultKind {
    pub const COUNT: usize = 16;
    pub const ALL: [FaultKind; Self::COUNT] = [
        FaultKind::FloatSlot,
        FaultKind::DoubleSlot,
        FaultKind::IntSlot,
        FaultKind::OutChannel,
        FaultKind::InChannel,
        FaultKind::Param,
        FaultKind::DelayTooLong,
        FaultKind::DelayLinesExhausted,
        FaultKind::CellsExhausted,
        FaultKind::BadSite,
        FaultKind::StateCorrupt,
        FaultKind::Blocked,
        FaultKind::AllocInPlay,
        FaultKind::HeapExhausted,
        FaultKind::NoSample,
        FaultKind::Voice,
    ];

    /// A sentence for the performer, given the detail recorded with the first occurrence.
    pub fn describe(self, detail: i64) -> String {
        use crate::state::{DELAY_LINES, DELAY_LINE_LEN, MAX_CELLS};
        match self {
            FaultKind::FloatSlot => format!("_float({detail}): the index must be 0 to {}; it reads and writes a scratch slot", FLOAT_SLOTS - 1),
            FaultKind::DoubleSlot => format!("_double({detail}): the index must be 0 to {}; it reads and writes a scratch slot", DOUBLE_SLOTS - 1),
            FaultKind::IntSlot => format!("_int({detail}): the index must be 0 to {}; it reads and writes a scratch slot", INT_SLOTS - 1),
            FaultKind::OutChannel => format!("_out({detail}, ...) names a channel this output does not have; ignored"),
            FaultKind::InChannel => format!("_in({detail}) names an input channel that does not exist; it reads 0"),
            FaultKind::Param => format!("parameter index {detail} must be 0 to {}; it reads 0", PARAMS - 1),
            FaultKind::DelayTooLong => format!("Delay of {detail} samples is longer than a delay line ({} samples); clamped", DELAY_LINE_LEN - 2),
            FaultKind::DelayLinesExhausted => format!("more than {DELAY_LINES} Delay lines at once; the extra ones output 0"),
            FaultKind::CellsExhausted => format!("more than {MAX_CELLS} builtin states at once (a loop calling builtins too often?); the extra calls output 0"),
            FaultKind::BadSite => format!("call-site id {detail} is invalid (was the call site rewritten by hand?); the call outputs 0"),
            FaultKind::StateCorrupt => "the patch wrote over the state memory's bookkeeping (a pointer or index past its own state?); the engine cut what was wrong, and the builtins it hit output 0".to_string(),
            FaultKind::NoSample => format!(
                "sample {detail} is not loaded (numbers run 0 to {}; load one with --sample N=FILE or #pragma clavm sample N \"FILE\"); it plays 0",
                crate::samples::SLOTS - 1
            ),
            FaultKind::Voice => format!("voice {detail} is not one of the voices (0 to _voices() - 1); it reads 0"),
            FaultKind::Blocked => format!(
                "the patch called {}(): blocked (patches may not start programs, end the process or delete files)",
                BLOCKED.get(detail as usize).map_or("a forbidden function", |b| b.0)
            ),
            FaultKind::AllocInPlay => format!(
                "play() asked to allocate {detail} bytes: refused (NULL); allocate in compiled(), which runs once per version"
            ),
            FaultKind::HeapExhausted => format!(
                "compiled() asked for {detail} bytes, more than is left of its {} MiB heap: NULL",
                HEAP_EXTENT_BYTES >> 20
            ),
        }
    }
}

/// First-occurrence records of faults since the engine last looked. Plain
/// data: workers send it back in shared memory (where it is not trusted: see `FaultKind::from_bits`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Zeroable)]
pub struct Faults {
    /// Kinds seen since the program was installed (bit per `FaultKind`).
    pub seen: u32,
    /// Kinds seen for the first time and not yet reported.
    pub fresh: u32,
    pub detail: [i64; FaultKind::COUNT],
}

impl Faults {
    #[inline]
    fn raise(&mut self, kind: FaultKind, detail: i64) {
        let bit = 1u32 << kind as u8;
        if self.seen & bit == 0 {
            self.seen |= bit;
            self.fresh |= bit;
            self.detail[kind as usize] = detail;
        }
    }

    /// Clears the record (a new program).
    pub fn clear(&mut self) {
        *self = Faults::default();
    }

    /// Takes the fresh faults: (kind, detail) pairs, first occurrence each.
    pub fn take_fresh(&mut self) -> impl Iterator<Item = (FaultKind, i64)> + '_ {
        let fresh = std::mem::take(&mut self.fresh);
        FaultKind::ALL.into_iter().filter(move |k| fresh & (1 << *k as u8) != 0).map(|k| (k, self.detail[k as usize]))
    }
}

/// Everything the API functions need while one program runs one frame.
pub struct Ctx {
    mem: *mut StateMemory,
    delays: *mut DelayPool,
    /// The heap beside `mem` (`state::heap`), `HEAP_BYTES` long.
    heap: *mut u8,
    /// Where `compiled()` allocates; `None` outside `compiled()`, where
    /// allocation is refused.
    alloc_in: Option<Extent>,
    params: *const Params,
    table: &'static [f32; COS_TABLE_LEN + 1],
    /// The samples of the program running (see [`Ctx::set_samples`]).
    samples: *const SampleTable,
    /// Distinguishes one `play()` call from the next (site occurrence counting).
    pub epoch: u64,
    pub frame: u64,
    pub sample_rate: f64,
    pub inv_sr: f64,
    pub out: [f32; MAX_CHANNELS],
    pub channels: usize,
    pub input: [f32; MAX_CHANNELS],
    pub inputs: usize,
    /// Whether this context may take new delay lines (false while an old
    /// program fades out on a copy of the state: lines are shared memory).
    pub may_take_lines: bool,
    pub faults: Faults,
    scratch_f: f32,
    scratch_d: f64,
    scratch_i: i32,
}

// SAFETY: the raw pointers are owned by the engine, which moves the context
// together with what they point to; nothing else shares them.
unsafe impl Send for Ctx {}

impl Ctx {
    /// # Safety
    /// The four pointers must stay valid for as long as the context is used
    /// (`heap` for `HEAP_BYTES`), and nothing else may touch what they point
    /// to during `enter`.
    pub unsafe fn new(
        mem: *mut StateMemory,
        delays: *mut DelayPool,
        heap: *mut u8,
        params: *const Params,
        sample_rate: f64,
        channels: usize,
        inputs: usize,
    ) -> Ctx {
        Ctx {
            mem,
            delays,
            heap,
            alloc_in: None,
            params,
            table: super::cos_table(),
            samples: SampleTable::empty(),
            epoch: 0,
            frame: 0,
            sample_rate,
            inv_sr: 1.0 / sample_rate,
            out: [0.0; MAX_CHANNELS],
            channels: channels.min(MAX_CHANNELS),
            input: [0.0; MAX_CHANNELS],
            inputs: inputs.min(MAX_CHANNELS),
            may_take_lines: true,
            faults: Faults::default(),
            scratch_f: 0.0,
            scratch_d: 0.0,
            scratch_i: 0,
        }
    }

    /// Runs `f` (a call into patch code) with this context installed for the API functions.
    #[inline]
    pub fn enter<R>(&mut self, f: impl FnOnce() -> R) -> R {
        CURRENT.with(|c| c.set(self as *mut Ctx));
        let r = f();
        CURRENT.with(|c| c.set(std::ptr::null_mut()));
        r
    }

    /// Runs `f` (a call of the patch's `compiled()`) with allocation on:
    /// `calloc`/`malloc` bump within `extent`, which starts empty again, so
    /// the same calls give the same addresses in every run (see `state::heap`).
    pub fn enter_compiled<R>(&mut self, extent: Extent, f: impl FnOnce() -> R) -> R {
        // SAFETY: `mem` is valid for the context's life (see `new`).
        unsafe { (*self.mem).heap_used[extent.index()] = 0 };
        self.alloc_in = Some(extent);
        let r = self.enter(f);
        self.alloc_in = None;
        r
    }

    /// Makes the `Sample*` builtins read `table` (each program version has
    /// its own; the engine sets it before running that version).
    ///
    /// # Safety
    /// `table` and every view in it must stay valid and unwritten for as long
    /// as this context runs programs with it (until the next `set_samples`).
    pub unsafe fn set_samples(&mut self, table: *const SampleTable) {
        self.samples = table;
    }

    pub fn state(&self) -> &StateMemory {
        // SAFETY: `mem` is valid for the context's life (see `new`).
        unsafe { &*self.mem }
    }
}

thread_local! {
    static CURRENT: StdCell<*mut Ctx> = const { StdCell::new(std::ptr::null_mut()) };
}

#[inline]
fn with_ctx<R>(default: R, f: impl FnOnce(&mut Ctx) -> R) -> R {
    let p = CURRENT.with(|c| c.get());
    if p.is_null() {
        return default;
    }
    // SAFETY: set by `Ctx::enter` for the duration of a patch call on this
    // thread; the patch is single-threaded and calls us re-entrantly only
    // through this function, never while another borrow is live.
    f(unsafe { &mut *p })
}

/// Finds (or creates) the cell of this occurrence of call site `site` in the current `play()`.
#[inline]
fn cell_for(ctx: &mut Ctx, site: i32, builtin: Builtin) -> Option<usize> {
    if !(0..MAX_SITES as i32).contains(&site) {
        ctx.faults.raise(FaultKind::BadSite, site as i64);
        return None;
    }
    // SAFETY: `mem` is valid and exclusively ours while the context is entered.
    let mem = unsafe { &mut *ctx.mem };
    let s = &mut mem.sites[site as usize];
    if s.epoch != ctx.epoch {
        // First call of this site in this play(): start again at the first occurrence.
        s.epoch = ctx.epoch;
        s.cursor = 0;
        s.count = 0;
    }
    let (cursor, occurrence) = (s.cursor, s.count);
    // Every link below was written in this process, by code the patch can
    // overwrite: an index out of range is reported, never followed.
    let next = if cursor == 0 {
        s.first
    } else {
        match mem.cells.get((cursor - 1) as usize) {
            Some(c) => c.next,
            None => {
                ctx.faults.raise(FaultKind::StateCorrupt, site as i64);
                return None;
            }
        }
    };
    let idx = if next != 0 {
        if next as usize > MAX_CELLS {
            ctx.faults.raise(FaultKind::StateCorrupt, site as i64);
            return None;
        }
        next - 1
    } else {
        // A new occurrence: take a cell and link it after the previous one.
        let Some(idx) = mem.alloc_cell() else {
            ctx.faults.raise(FaultKind::CellsExhausted, site as i64);
            return None;
        };
        if cursor == 0 {
            mem.sites[site as usize].first = idx + 1;
        } else {
            mem.cells[(cursor - 1) as usize].next = idx + 1;
        }
        if builtin.is_random() {
            let key = ((site as u64) << 32) | occurrence as u64;
            mem.cells[idx as usize].u = SplitMix64::mix(mem.seed ^ SplitMix64::mix(key));
        }
        idx
    };
    let s = &mut mem.sites[site as usize];
    s.cursor = idx + 1;
    s.count = occurrence + 1;
    Some(idx as usize)
}

macro_rules! with_cell {
    ($site:expr, $builtin:expr, |$ctx:ident, $cell:ident| $body:expr) => {
        with_ctx(0.0, |$ctx| match cell_for($ctx, $site, $builtin) {
            // SAFETY: `mem` is valid while the context is entered; the index is in range.
            Some(i) => {
                let $cell = unsafe { &mut (*$ctx.mem).cells[i] };
                $body
            }
            None => 0.0,
        })
    };
}

extern "C" fn api_phasor(site: i32, freq: f32) -> f32 {
    with_cell!(site, Builtin::Phasor, |ctx, c| super::phasor(c, freq, ctx.inv_sr))
}
extern "C" fn api_cycle(site: i32, freq: f32) -> f32 {
    with_cell!(site, Builtin::Cycle, |ctx, c| super::cycle(c, freq, ctx.inv_sr, ctx.table))
}
extern "C" fn api_tri(site: i32, freq: f32) -> f32 {
    with_cell!(site, Builtin::Tri, |ctx, c| super::tri(c, freq, ctx.inv_sr))
}
extern "C" fn api_pulse(site: i32, freq: f32, width: f32) -> f32 {
    with_cell!(site, Builtin::Pulse, |ctx, c| super::pulse(c, freq, width, ctx.inv_sr))
}
extern "C" fn api_onepole(site: i32, x: f32, coef: f32) -> f32 {
    with_cell!(site, Builtin::Onepole, |ctx, c| super::onepole(c, x, coef, ctx.sample_rate))
}
extern "C" fn api_history(site: i32, x: f32) -> f32 {
    with_cell!(site, Builtin::History, |_ctx, c| super::history(c, x))
}
extern "C" fn api_delay(site: i32, x: f32, samples: f32) -> f32 {
    with_cell!(site, Builtin::Delay, |ctx, c| {
        if c.line == 0 {
            // SAFETY: as in `with_cell!`.
            let mem = unsafe { &mut *ctx.mem };
            match ctx.may_take_lines.then(|| mem.alloc_line()).flatten() {
                Some(line) => c.line = line + 1,
                None => {
                    if ctx.may_take_lines {
                        ctx.faults.raise(FaultKind::DelayLinesExhausted, site as i64);
                    }
                    return 0.0;
                }
            }
        }
        // SAFETY: the pool outlives the context and is only used from this thread.
        let ring = unsafe { (*ctx.delays).line(c.line - 1) };
        let (y, clamped) = super::delay(c, ring, x, samples);
        if clamped {
            ctx.faults.raise(FaultKind::DelayTooLong, samples as i64);
        }
        y
    })
}
extern "C" fn api_dust(site: i32, density: f32) -> f32 {
    with_cell!(site, Builtin::Dust, |ctx, c| super::dust(c, density, ctx.inv_sr))
}
extern "C" fn api_uniform(site: i32, x: f32) -> f32 {
    with_cell!(site, Builtin::Uniform, |_ctx, c| super::uniform(c, x))
}
extern "C" fn api_normal(site: i32, x: f32) -> f32 {
    with_cell!(site, Builtin::Normal, |_ctx, c| super::normal(c, x))
}

/// Sample `n`'s view; out of range or empty, `None` and (when `report`) a fault.
#[inline]
fn sample_view(ctx: &mut Ctx, n: i32, report: bool) -> Option<SampleView> {
    // SAFETY: `samples` is valid while the context runs programs (see `set_samples`).
    let table = unsafe { &*ctx.samples };
    match table.views.get(n as usize) {
        Some(v) if !v.is_empty() => Some(*v),
        Some(_) if !report => None,
        _ => {
            ctx.faults.raise(FaultKind::NoSample, n as i64);
            None
        }
    }
}

/// A `Sample*` call: its view and cell, or 0 (a missing sample keeps no state).
macro_rules! with_sample {
    ($site:expr, $builtin:expr, $n:expr, |$v:ident, $cell:ident| $body:expr) => {
        with_ctx(0.0, |ctx| {
            let Some($v) = sample_view(ctx, $n, true) else { return 0.0 };
            match cell_for(ctx, $site, $builtin) {
                Some(i) => {
                    // SAFETY: `mem` is valid while the context is entered; the index is in range.
                    let $cell = unsafe { &mut (*ctx.mem).cells[i] };
                    $body
                }
                None => 0.0,
            }
        })
    };
}

extern "C" fn api_sample(site: i32, n: i32, speed: f32, trigger: f32) -> f32 {
    with_sample!(site, Builtin::Sample, n, |v, c| super::sample(c, &v, None, speed, trigger))
}
extern "C" fn api_sample_ch(site: i32, n: i32, ch: i32, speed: f32, trigger: f32) -> f32 {
    with_sample!(site, Builtin::SampleCh, n, |v, c| super::sample(c, &v, Some(ch), speed, trigger))
}
extern "C" fn api_sample_loop(site: i32, n: i32, speed: f32) -> f32 {
    with_sample!(site, Builtin::SampleLoop, n, |v, c| super::sample_loop(c, &v, None, speed))
}
extern "C" fn api_sample_loop_ch(site: i32, n: i32, ch: i32, speed: f32) -> f32 {
    with_sample!(site, Builtin::SampleLoopCh, n, |v, c| super::sample_loop(c, &v, Some(ch), speed))
}
/// Seconds of sample `n` at the engine's rate; 0 for an empty number (a
/// patch may ask whether a sample is there), a fault outside 0..64.
extern "C" fn api_sample_seconds(n: i32) -> f32 {
    with_ctx(0.0, |ctx| {
        if !(0..SAMPLE_SLOTS as i32).contains(&n) {
            ctx.faults.raise(FaultKind::NoSample, n as i64);
            return 0.0;
        }
        sample_view(ctx, n, false).map_or(0.0, |v| (v.frames as f64 / ctx.sample_rate) as f32)
    })
}
/// Channels of sample `n`; 0 for an empty number, as `_sample_seconds`.
extern "C" fn api_sample_channels(n: i32) -> i32 {
    with_ctx(0, |ctx| {
        if !(0..SAMPLE_SLOTS as i32).contains(&n) {
            ctx.faults.raise(FaultKind::NoSample, n as i64);
            return 0;
        }
        sample_view(ctx, n, false).map_or(0, |v| v.channels as i32)
    })
}

static mut NO_FLOAT: f32 = 0.0;
static mut NO_DOUBLE: f64 = 0.0;
static mut NO_INT: i32 = 0;

/// Slot `i` of the state memory's array picked by `pick`; out of range, the
/// context's scratch slot (zeroed on every call) and a fault of `kind`.
#[inline]
fn slot<T: Default>(
    i: i32,
    kind: FaultKind,
    fallback: *mut T,
    pick: impl FnOnce(&mut StateMemory) -> &mut [T],
    scratch: impl FnOnce(&mut Ctx) -> &mut T,
) -> *mut T {
    with_ctx(fallback, |ctx| {
        // SAFETY: `mem` is valid and ours while the context is entered.
        let slots = pick(unsafe { &mut *ctx.mem });
        // A negative index becomes huge as usize and misses too.
        match slots.get_mut(i as usize) {
            Some(s) => s as *mut T,
            None => {
                ctx.faults.raise(kind, i as i64);
                let s = scratch(ctx);
                *s = T::default();
                s as *mut T
            }
        }
    })
}

extern "C" fn api_float(i: i32) -> *mut f32 {
    slot(i, FaultKind::FloatSlot, &raw mut NO_FLOAT, |m| &mut m.floats, |c| &mut c.scratch_f)
}
extern "C" fn api_double(i: i32) -> *mut f64 {
    slot(i, FaultKind::DoubleSlot, &raw mut NO_DOUBLE, |m| &mut m.doubles, |c| &mut c.scratch_d)
}
extern "C" fn api_int(i: i32) -> *mut i32 {
    slot(i, FaultKind::IntSlot, &raw mut NO_INT, |m| &mut m.ints, |c| &mut c.scratch_i)
}
extern "C" fn api_out(channel: i32, value: f32) {
    with_ctx((), |ctx| {
        if (0..ctx.channels as i32).contains(&channel) {
            ctx.out[channel as usize] += value;
        } else {
            ctx.faults.raise(FaultKind::OutChannel, channel as i64);
        }
    })
}
extern "C" fn api_in(channel: i32) -> f32 {
    with_ctx(0.0, |ctx| {
        if (0..ctx.inputs as i32).contains(&channel) {
            ctx.input[channel as usize]
        } else {
            ctx.faults.raise(FaultKind::InChannel, channel as i64);
            0.0
        }
    })
}
fn param<T: Copy + Default>(ctx: &mut Ctx, n: i32, pick: impl FnOnce(&Params) -> &[T; PARAMS]) -> T {
    if (0..PARAMS as i32).contains(&n) {
        // SAFETY: `params` is valid while the context is entered.
        pick(unsafe { &*ctx.params })[n as usize]
    } else {
        ctx.faults.raise(FaultKind::Param, n as i64);
        T::default()
    }
}
/// `_p`/`_cc`: the value on its ramp through the block.
fn ramped(ctx: &mut Ctx, n: i32, cc: bool) -> f32 {
    if !(0..PARAMS as i32).contains(&n) {
        ctx.faults.raise(FaultKind::Param, n as i64);
        return 0.0;
    }
    // SAFETY: `params` is valid while the context is entered.
    let p = unsafe { &*ctx.params };
    let (from, to) = if cc { (&p.cc_from, &p.cc) } else { (&p.p_from, &p.p) };
    p.ramped(from, to, n as usize, ctx.frame)
}
extern "C" fn api_cc(n: i32) -> f32 {
    with_ctx(0.0, |ctx| ramped(ctx, n, true))
}
extern "C" fn api_p(n: i32) -> f32 {
    with_ctx(0.0, |ctx| ramped(ctx, n, false))
}
extern "C" fn api_i(n: i32) -> i32 {
    with_ctx(0, |ctx| param(ctx, n, |p| &p.i))
}
extern "C" fn api_time() -> f64 {
    // A division, not a multiply by 1/sr: frame 4800 at 48 kHz must be exactly 0.1 s.
    with_ctx(0.0, |ctx| ctx.frame as f64 / ctx.sample_rate)
}
/// The tempo in beats per minute.
extern "C" fn api_bpm() -> f64 {
    // SAFETY: `params` is valid while the context is entered.
    with_ctx(0.0, |ctx| unsafe { (*ctx.params).clock.bpm })
}
/// Beats since the engine started, at this frame (continuous across tempo changes and swaps).
extern "C" fn api_beat() -> f64 {
    // SAFETY: `params` is valid while the context is entered.
    with_ctx(0.0, |ctx| unsafe { (*ctx.params).clock.beat(ctx.frame) })
}
/// Bars since the engine started (beats / meter), fractional.
extern "C" fn api_bar() -> f64 {
    with_ctx(0.0, |ctx| {
        // SAFETY: `params` is valid while the context is entered.
        let c = unsafe { &(*ctx.params).clock };
        c.beat(ctx.frame) / c.meter.max(1.0)
    })
}
extern "C" fn api_samplerate() -> f64 {
    with_ctx(0.0, |ctx| ctx.sample_rate)
}
/// How many bars the tree has (0 when no tree is loaded).
extern "C" fn api_bars() -> i32 {
    // SAFETY: `params` is valid while the context is entered.
    with_ctx(0, |ctx| unsafe { (*ctx.params).bars.min(MAX_BARS as u32) as i32 })
}
/// Bar `i`'s field, or 0 for a bar that is not there (the tree changes while
/// a patch plays: a bar just unplugged reads silent, it is not a fault).
fn bar_field(ctx: &mut Ctx, i: i32, field: impl Fn(&Params) -> &[f32; MAX_BARS]) -> f32 {
    // SAFETY: `params` is valid while the context is entered.
    let p = unsafe { &*ctx.params };
    if i < 0 || i as u32 >= p.bars.min(MAX_BARS as u32) {
        return 0.0;
    }
    field(p)[i as usize]
}
extern "C" fn api_bar_freq(i: i32) -> f32 {
    with_ctx(0.0, |ctx| bar_field(ctx, i, |p| &p.bar_freq))
}
extern "C" fn api_bar_gate(i: i32) -> f32 {
    with_ctx(0.0, |ctx| bar_field(ctx, i, |p| &p.bar_gate))
}
/// `_voices()`: how many voices notes are spread over (`--voices`).
extern "C" fn api_voices() -> i32 {
    // SAFETY: `params` is valid while the context is entered.
    with_ctx(0, |ctx| unsafe { (*ctx.params).voices.count.min(crate::voices::MAX_VOICES as u32) as i32 })
}
/// Voice `v`'s field at this frame, or 0 and a fault for a voice that is not there.
fn voice(ctx: &mut Ctx, v: i32, field: impl Fn(&crate::voices::VoiceView, usize, u64) -> f32) -> f32 {
    // SAFETY: `params` is valid while the context is entered.
    let view = unsafe { &(*ctx.params).voices };
    if v < 0 || v as u32 >= view.count.min(crate::voices::MAX_VOICES as u32) {
        ctx.faults.raise(FaultKind::Voice, v as i64);
        return 0.0;
    }
    field(view, v as usize, ctx.frame)
}
extern "C" fn api_note(v: i32) -> f32 {
    with_ctx(0.0, |ctx| voice(ctx, v, |w, i, _| w.note[i]))
}
extern "C" fn api_hz(v: i32) -> f32 {
    with_ctx(0.0, |ctx| voice(ctx, v, |w, i, _| w.hz[i]))
}
extern "C" fn api_gate(v: i32) -> f32 {
    with_ctx(0.0, |ctx| voice(ctx, v, |w, i, frame| w.gate(i, frame)))
}
extern "C" fn api_velocity(v: i32) -> f32 {
    with_ctx(0.0, |ctx| voice(ctx, v, |w, i, _| w.velocity[i]))
}

/// `bytes` from the heap in `compiled()`; NULL and a fault anywhere else or when full.
fn allocate(bytes: usize) -> *mut c_void {
    with_ctx(std::ptr::null_mut(), |ctx| {
        let detail = bytes.min(i64::MAX as usize) as i64;
        let Some(extent) = ctx.alloc_in else {
            ctx.faults.raise(FaultKind::AllocInPlay, detail);
            return std::ptr::null_mut();
        };
        // SAFETY: `mem` and `heap` are valid while the context is entered (see `new`).
        let used = unsafe { &mut (*ctx.mem).heap_used[extent.index()] };
        // SAFETY: `heap` is HEAP_BYTES long (see `new`).
        match unsafe { heap::bump(ctx.heap, extent, used, bytes) } {
            // SAFETY: `bump` returns offsets inside the heap.
            Some(off) => unsafe { ctx.heap.add(off) as *mut c_void },
            None => {
                ctx.faults.raise(FaultKind::HeapExhausted, detail);
                std::ptr::null_mut()
            }
        }
    })
}
extern "C" fn api_malloc(bytes: usize) -> *mut c_void {
    allocate(bytes)
}
extern "C" fn api_calloc(count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        Some(bytes) => allocate(bytes),
        None => allocate(usize::MAX),
    }
}
/// Nothing is freed one by one: a version's allocations go with the version.
extern "C" fn api_free(_p: *mut c_void) {}

/// A function the patch can call: its C declaration and the address bound to it.
pub struct ApiFn {
    pub name: &'static CStr,
    /// C return type and parameter list, e.g. ("float", "int site, float freq").
    pub ret: &'static str,
    pub params: &'static str,
    pub addr: *const c_void,
    /// Documented for patch authors (false for the C library math).
    pub clavm: bool,
}

// SAFETY: the addresses are of functions, immutable and valid for the whole program.
unsafe impl Sync for ApiFn {}
// SAFETY: as above.
unsafe impl Send for ApiFn {}

macro_rules! api {
    ($name:literal, $ret:literal, $params:literal, $f:expr) => {
        ApiFn { name: $name, ret: $ret, params: $params, addr: $f as *const c_void, clavm: true }
    };
}

/// Memory functions TinyCC itself calls (a zero-initialised local array
/// becomes `memset`, a struct copy `memcpy`) and generated C uses: libc's.
mod libc_mem {
    use std::ffi::c_void;
    extern "C" {
        pub fn memset(s: *mut c_void, c: i32, n: usize) -> *mut c_void;
        pub fn memcpy(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void;
        pub fn memmove(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void;
    }
}

mod libm {
    extern "C" {
        pub fn sinf(x: f32) -> f32;
        pub fn cosf(x: f32) -> f32;
        pub fn tanf(x: f32) -> f32;
        pub fn tanhf(x: f32) -> f32;
        pub fn expf(x: f32) -> f32;
        pub fn logf(x: f32) -> f32;
        pub fn powf(x: f32, y: f32) -> f32;
        pub fn sqrtf(x: f32) -> f32;
        pub fn fabsf(x: f32) -> f32;
        pub fn floorf(x: f32) -> f32;
        pub fn fmodf(x: f32, y: f32) -> f32;
        pub fn sin(x: f64) -> f64;
        pub fn cos(x: f64) -> f64;
        pub fn tan(x: f64) -> f64;
        pub fn tanh(x: f64) -> f64;
        pub fn exp(x: f64) -> f64;
        pub fn log(x: f64) -> f64;
        pub fn pow(x: f64, y: f64) -> f64;
        pub fn sqrt(x: f64) -> f64;
        pub fn fabs(x: f64) -> f64;
        pub fn floor(x: f64) -> f64;
        pub fn fmod(x: f64, y: f64) -> f64;
        pub fn ceilf(x: f32) -> f32;
        pub fn ceil(x: f64) -> f64;
        pub fn roundf(x: f32) -> f32;
        pub fn round(x: f64) -> f64;
        pub fn atan2f(y: f32, x: f32) -> f32;
        pub fn atan2(y: f64, x: f64) -> f64;
        pub fn exp2f(x: f32) -> f32;
        pub fn exp2(x: f64) -> f64;
        pub fn log2f(x: f32) -> f32;
        pub fn log2(x: f64) -> f64;
        pub fn log10f(x: f32) -> f32;
        pub fn log10(x: f64) -> f64;
        pub fn fminf(x: f32, y: f32) -> f32;
        pub fn fmin(x: f64, y: f64) -> f64;
        pub fn fmaxf(x: f32, y: f32) -> f32;
        pub fn fmax(x: f64, y: f64) -> f64;
    }
}

macro_rules! math {
    ($($name:ident : $ret:literal ($params:literal)),* $(,)?) => {
        [$(ApiFn {
            name: match CStr::from_bytes_with_nul(concat!(stringify!($name), "\0").as_bytes()) {
                Ok(c) => c,
                Err(_) => panic!("bad name"),
            },
            ret: $ret,
            params: $params,
            addr: libm::$name as *const c_void,
            clavm: false,
        }),*]
    };
}

/// Returns every function bound into a patch: the CLAVM API first, then C math.
pub fn functions() -> &'static [ApiFn] {
    static FUNCS: std::sync::OnceLock<Vec<ApiFn>> = std::sync::OnceLock::new();
    FUNCS.get_or_init(|| {
        let mut v = vec![
            api!(c"_float", "float *", "int index", api_float),
            api!(c"_double", "double *", "int index", api_double),
            api!(c"_int", "int *", "int index", api_int),
            api!(c"_out", "void", "int channel, float value", api_out),
            api!(c"_in", "float", "int channel", api_in),
            api!(c"_cc", "float", "int number", api_cc),
            api!(c"_p", "float", "int number", api_p),
            api!(c"_i", "int", "int number", api_i),
            api!(c"_time", "double", "void", api_time),
            api!(c"_samplerate", "double", "void", api_samplerate),
            api!(c"_bpm", "double", "void", api_bpm),
            api!(c"_beat", "double", "void", api_beat),
            api!(c"_bar", "double", "void", api_bar),
            api!(c"_bars", "int", "void", api_bars),
            api!(c"_bar_freq", "float", "int bar", api_bar_freq),
            api!(c"_bar_gate", "float", "int bar", api_bar_gate),
            api!(c"_sample_seconds", "float", "int n", api_sample_seconds),
            api!(c"_sample_channels", "int", "int n", api_sample_channels),
            api!(c"_voices", "int", "void", api_voices),
            api!(c"_note", "float", "int voice", api_note),
            api!(c"_hz", "float", "int voice", api_hz),
            api!(c"_gate", "float", "int voice", api_gate),
            api!(c"_velocity", "float", "int voice", api_velocity),
            api!(c"Phasor", "float", "int site, float freq", api_phasor),
            api!(c"Cycle", "float", "int site, float freq", api_cycle),
            api!(c"Tri", "float", "int site, float freq", api_tri),
            api!(c"Pulse", "float", "int site, float freq, float width", api_pulse),
            api!(c"Onepole", "float", "int site, float x, float coefficient_or_cutoff", api_onepole),
            api!(c"History", "float", "int site, float x", api_history),
            api!(c"Delay", "float", "int site, float x, float samples", api_delay),
            api!(c"Dust", "float", "int site, float density", api_dust),
            api!(c"Uniform", "float", "int site, float x", api_uniform),
            api!(c"Normal", "float", "int site, float x", api_normal),
            // Allocation, for generated C (Faust's newmydsp()): from the state's heap in compiled().
            // C library names (not CLAVM's), so `clavm: false`: the gcc reference uses libc's.
            ApiFn { clavm: false, ..api!(c"malloc", "void *", "unsigned long size", api_malloc) },
            ApiFn { clavm: false, ..api!(c"calloc", "void *", "unsigned long count, unsigned long size", api_calloc) },
            ApiFn { clavm: false, ..api!(c"free", "void", "void *pointer", api_free) },
            ApiFn { clavm: false, ..api!(c"memset", "void *", "void *s, int c, unsigned long n", libc_mem::memset) },
            ApiFn {
                clavm: false,
                ..api!(c"memcpy", "void *", "void *d, const void *s, unsigned long n", libc_mem::memcpy)
            },
            ApiFn {
                clavm: false,
                ..api!(c"memmove", "void *", "void *d, const void *s, unsigned long n", libc_mem::memmove)
            },
            api!(c"Sample", "float", "int site, int n, float speed, float trigger", api_sample),
            api!(c"SampleCh", "float", "int site, int n, int ch, float speed, float trigger", api_sample_ch),
            api!(c"SampleLoop", "float", "int site, int n, float speed", api_sample_loop),
            api!(c"SampleLoopCh", "float", "int site, int n, int ch, float speed", api_sample_loop_ch),
        ];
        v.extend(math![
            sinf: "float" ("float"), cosf: "float" ("float"), tanf: "float" ("float"),
            tanhf: "float" ("float"), expf: "float" ("float"), logf: "float" ("float"),
            powf: "float" ("float, float"), sqrtf: "float" ("float"), fabsf: "float" ("float"),
            floorf: "float" ("float"), fmodf: "float" ("float, float"), ceilf: "float" ("float"),
            roundf: "float" ("float"), atan2f: "float" ("float, float"), exp2f: "float" ("float"),
            log2f: "float" ("float"), log10f: "float" ("float"), fminf: "float" ("float, float"),
            fmaxf: "float" ("float, float"),
            sin: "double" ("double"), cos: "double" ("double"), tan: "double" ("double"),
            tanh: "double" ("double"), exp: "double" ("double"), log: "double" ("double"),
            pow: "double" ("double, double"), sqrt: "double" ("double"), fabs: "double" ("double"),
            floor: "double" ("double"), fmod: "double" ("double, double"), ceil: "double" ("double"),
            round: "double" ("double"), atan2: "double" ("double, double"), exp2: "double" ("double"),
            log2: "double" ("double"), log10: "double" ("double"), fmin: "double" ("double, double"),
            fmax: "double" ("double, double"),
        ]);
        v
    })
}

/// C library functions a patch may not call. Each is bound to a stub that
/// does nothing, returns -1, and reports the call once. (The live engine's
/// workers are also sandboxed; this makes the accident visible everywhere.)
macro_rules! blocked {
    ($($idx:literal $name:ident),* $(,)?) => {
        mod blocked_stubs {
            use super::{with_ctx, FaultKind};
            $(
                #[allow(non_snake_case)]
                pub extern "C" fn $name() -> i64 {
                    with_ctx(-1, |ctx| {
                        ctx.faults.raise(FaultKind::Blocked, $idx);
                        -1
                    })
                }
            )*
        }
        /// (name, stub) of every blocked function, indexed by the fault's detail.
        pub const BLOCKED: &[(&str, extern "C" fn() -> i64)] = &[$((stringify!($name), blocked_stubs::$name)),*];
    };
}

blocked!(
    0 system, 1 popen, 2 fork, 3 vfork, 4 execl, 5 execlp, 6 execle, 7 execv, 8 execvp, 9 execve,
    10 posix_spawn, 11 posix_spawnp, 12 exit, 13 _exit, 14 _Exit, 15 quick_exit, 16 abort, 17 kill,
    18 raise, 19 remove, 20 unlink, 21 unlinkat, 22 rename, 23 renameat, 24 rmdir, 25 truncate,
);

/// Constants the prelude defines, spelled exactly as glibc's `<math.h>` does so
/// that a patch may also `#include <math.h>` without a redefinition warning.
pub const MATH_DEFINES: &[(&str, &str)] = &[
    ("M_E", "2.7182818284590452354"),
    ("M_LN2", "0.69314718055994530942"),
    ("M_PI", "3.14159265358979323846"),
    ("M_PI_2", "1.57079632679489661923"),
    ("M_SQRT2", "1.41421356237309504880"),
];

/// The name TinyCC gives the prelude in messages.
pub const PRELUDE_NAME: &str = "<clavm prelude>";

/// The declarations TinyCC compiles in front of every patch: no system header needed.
pub fn prelude() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let mut s = format!("#line 1 \"{PRELUDE_NAME}\"\nvoid play(void);\nvoid compiled(void);\n");
        for f in functions() {
            s.push_str(&format!("{} {}({});\n", f.ret, f.name.to_str().unwrap_or(""), f.params));
        }
        for (name, value) in MATH_DEFINES {
            s.push_str(&format!("#define {name} {value}\n"));
        }
        s
    })
}

/// The prelude for the gcc reference build (benchmarks): C math from
/// `<math.h>`, the CLAVM API as function pointers the host fills in.
pub fn gcc_prelude() -> String {
    let mut s = String::from("#include <math.h>\n");
    for f in functions().iter().filter(|f| f.clavm) {
        s.push_str(&format!("{} (*{})({});\n", f.ret, f.name.to_str().unwrap_or(""), f.params));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prelude_declares_every_bound_function_once() {
        let p = prelude();
        for f in functions() {
            let needle = format!(" {}(", f.name.to_str().unwrap());
            assert_eq!(p.matches(&needle).count(), 1, "{needle}");
        }
        assert!(p.contains("#define M_PI 3.14159265358979323846"));
        for b in Builtin::ALL {
            assert!(functions().iter().any(|f| f.name.to_str() == Ok(b.name())));
        }
    }

    #[test]
    fn blocked_functions_are_listed_in_order() {
        assert_eq!(BLOCKED[0].0, "system");
        assert_eq!(BLOCKED[12].0, "exit");
        assert!(FaultKind::Blocked.describe(0).contains("system()"));
    }

    #[test]
    fn api_outside_play_is_a_harmless_no_op() {
        assert_eq!(api_cycle(0, 440.0), 0.0);
        assert_eq!(api_time(), 0.0);
        api_out(0, 1.0);
        assert!(!api_float(3).is_null());
    }
}
