//! Offline rendering: a patch (and timed swaps to other patches) to samples
//! and a WAV file, deterministically: the same inputs give the same bytes.
//!
//! [`render_with`] runs the patch in the calling process; [`render_isolated`]
//! runs the same render in a sandboxed child process (`clavm __offline`,
//! [`child`]) and streams its blocks back ([`wire`]), so a hostile patch can
//! neither reach outside nor take the caller down. Every command that renders
//! a patch uses the isolated form; only benchmarks of the engine itself call
//! [`render_with`] directly.

pub mod child;
pub mod input;
mod isolated;
pub mod midi;
pub mod output;
mod wire;

pub use isolated::{describe_signal, render_isolated, ChildProblem};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use output::{NodeKind, Output, OutputError, Streaming};

use crate::clock::{Quant, TempoClock};
use crate::engine::{self, ConfigError, EngineConfig, Param, Report};
use crate::patch::{Diagnostic, PatchError, PatchSource};
use crate::samples::Samples;
use crate::Frames;

/// A MIDI note event at its frame (`render --midi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedNote {
    pub at: Frames,
    pub event: crate::voices::NoteEvent,
}

/// A patch to install at a point in time, as a live edit would.
#[derive(Debug, Clone)]
pub struct Swap {
    pub at: Frames,
    pub patch: PatchSource,
}

impl RenderSpec {
    /// Moves every swap to the first `quant` boundary at or after its time
    /// (on the spec's tempo clock), as a live submit with that quant would land.
    pub fn quantise_swaps(&mut self, quant: Quant) {
        let clock = TempoClock::new(self.config.sample_rate, self.config.bpm, self.config.meter);
        for s in &mut self.swaps {
            s.at = clock.next_boundary(s.at, quant);
        }
    }
}

#[derive(Debug, Clone)]
pub struct RenderSpec {
    pub patch: PatchSource,
    pub length: Frames,
    pub config: EngineConfig,
    pub swaps: Vec<Swap>,
    pub params: Vec<Param>,
    /// Frames per engine block (swaps still land on their exact frame).
    pub block: usize,
    /// What `_in(ch)` reads (`--input`); its channels are the engine's
    /// inputs. None: no input channels.
    pub input: Option<input::InputAudio>,
    /// What each version's `Sample*` builtins play: `samples[0]` for
    /// `patch`, `samples[i + 1]` for `swaps[i]`; missing entries play none.
    /// Loaded by the caller (the sandboxed child cannot open files).
    pub samples: Vec<crate::samples::SampleSet>,
    /// MIDI note events for the voices, each applied at its exact frame
    /// (in order; events at one frame in the order given).
    pub notes: Vec<TimedNote>,
}

/// Something worth telling the user, with the time it happened.
#[derive(Debug, Clone)]
pub enum RenderEvent {
    Report(String),
    /// A swap failed to compile: the previous patch kept playing.
    SwapFailed {
        at: Frames,
        diagnostics: Vec<Diagnostic>,
    },
    Warning(Diagnostic),
}

#[derive(Debug)]
pub struct Rendered {
    /// Interleaved samples.
    pub samples: Vec<f32>,
    pub channels: usize,
    pub sample_rate: u32,
    pub events: Vec<RenderEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Patch(#[from] PatchError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// (The OS error is the source, printed after this once by `{:#}`.)
    #[error("cannot write {path}")]
    Write { path: PathBuf, source: std::io::Error },
    /// The output file could not be created, written or moved into place.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The patch (or TinyCC compiling it) crashed the render process.
    #[error("{patch}: {}", crash_text(*compiling, *at_ms, *signal, *stack_overflow))]
    Crashed {
        /// The patch's name.
        patch: String,
        /// TinyCC was compiling it (else the engine was running it).
        compiling: bool,
        /// Where the render was, in milliseconds of audio.
        at_ms: u64,
        signal: i32,
        /// The fault was just past the end of the stack.
        stack_overflow: bool,
    },
    /// No progress for the watchdog's time: the render process was killed.
    #[error("{patch}: {}", hang_text(*compiling, *at_ms, *limit_s))]
    Hung { patch: String, compiling: bool, at_ms: u64, limit_s: u64 },
    /// The sandboxed render process misbehaved or could not run.
    #[error("{patch}: the sandboxed render process failed: {problem}")]
    Child { patch: String, problem: ChildProblem },
}

/// "t=12.345s", as the crash guard has always printed it.
fn time_text(at_ms: u64) -> String {
    format!("t={}.{:03}s", at_ms / 1000, at_ms % 1000)
}

fn crash_text(compiling: bool, at_ms: u64, signal: i32, stack_overflow: bool) -> String {
    let what = describe_signal(signal, stack_overflow);
    if compiling {
        format!("TinyCC crashed while compiling it ({what})")
    } else {
        format!("the patch crashed at {} ({what})", time_text(at_ms))
    }
}

fn hang_text(compiling: bool, at_ms: u64, limit_s: u64) -> String {
    let head = if compiling {
        format!("compiling took longer than {limit_s}")
    } else {
        format!("the patch made no progress at {} for {limit_s}", time_text(at_ms))
    };
    format!("{head} s (an infinite loop in play() or compiled()?)")
}

/// How far a render is, readable from other threads (a watchdog tells a hung
/// patch from a slow one by it; a crash handler names the patch by it).
#[derive(Debug, Default)]
pub struct Progress {
    /// Frames rendered so far.
    pub frames: AtomicU64,
    /// The patch playing: 0 for `RenderSpec::patch`, i + 1 for `RenderSpec::swaps[i]`.
    pub patch: AtomicUsize,
}

impl Progress {
    pub const fn new() -> Progress {
        Progress { frames: AtomicU64::new(0), patch: AtomicUsize::new(0) }
    }
}

/// What a render produced besides its samples.
#[derive(Debug)]
pub struct Summary {
    pub channels: usize,
    pub sample_rate: u32,
    pub events: Vec<RenderEvent>,
}

/// Renders `spec` block by block into `sink` (interleaved samples), keeping
/// `progress` up to date. Memory use does not grow with the length.
///
/// This runs patch code in the calling process, unsandboxed: the commands use
/// [`render_isolated`], which runs this same function in a sandboxed child.
pub fn render_with(
    spec: &RenderSpec,
    progress: &Progress,
    sink: &mut dyn FnMut(&[f32]) -> Result<(), RenderError>,
) -> Result<Summary, RenderError> {
    render_observed(spec, progress, sink, &mut |_| {})
}

/// What a render is doing, told as it happens (the sandboxed child streams
/// these to its parent, and its crash handler names the patch by them).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step<'a> {
    /// About to compile patch `i` (`Progress::patch` numbering).
    Compiling(usize),
    /// Compiling is over; the engine runs (patch `i` plays if it compiled).
    Running(usize),
    /// An event, in the order they are collected into the summary.
    Event(&'a RenderEvent),
}

/// [`render_with`], telling `observe` each [`Step`].
pub(crate) fn render_observed(
    spec: &RenderSpec,
    progress: &Progress,
    sink: &mut dyn FnMut(&[f32]) -> Result<(), RenderError>,
    observe: &mut dyn FnMut(Step),
) -> Result<Summary, RenderError> {
    let mut config = spec.config.clone();
    if let Some(i) = &spec.input {
        config.inputs = i.channels;
    }
    let (mut engine, mut handle) = engine::engine(config)?;
    let ch = spec.config.channels;
    let mut events = Vec::new();
    let push = |events: &mut Vec<RenderEvent>, observe: &mut dyn FnMut(Step), e: RenderEvent| {
        observe(Step::Event(&e));
        events.push(e);
    };
    observe(Step::Compiling(0));
    let mut first = handle.compile(&spec.patch)?;
    first.samples = Samples::new(spec.samples.first().cloned().unwrap_or_default());
    observe(Step::Running(0));
    for w in &first.program.warnings {
        push(&mut events, observe, RenderEvent::Warning(w.clone()));
    }
    handle.install(first).expect("a new engine's queue has room");
    for p in &spec.params {
        handle.set_param(*p).expect("queue has room");
    }
    let mut swaps: Vec<(usize, &Swap)> = spec.swaps.iter().enumerate().collect();
    swaps.sort_by_key(|(_, s)| s.at);
    let mut swaps = swaps.into_iter().peekable();
    let mut notes: Vec<TimedNote> = spec.notes.clone();
    notes.sort_by_key(|n| n.at);
    let mut notes = notes.into_iter().peekable();

    let total = spec.length.0 as usize;
    let block = spec.block.max(1);
    let mut buffer = vec![0.0f32; block * ch];
    let mut input_pad: Vec<f32> = Vec::new();
    let mut done = 0usize;
    while done < total {
        while let Some((index, s)) = swaps.next_if(|(_, s)| s.at.0 as usize <= done) {
            observe(Step::Compiling(index + 1));
            let compiled = handle.compile(&s.patch);
            match compiled {
                Ok(mut p) => {
                    p.samples = Samples::new(spec.samples.get(index + 1).cloned().unwrap_or_default());
                    progress.patch.store(index + 1, Ordering::SeqCst);
                    observe(Step::Running(index + 1));
                    for w in &p.program.warnings {
                        push(&mut events, observe, RenderEvent::Warning(w.clone()));
                    }
                    handle.install(p).expect("queue drained every block");
                }
                Err(e) => {
                    observe(Step::Running(progress.patch.load(Ordering::SeqCst)));
                    let failed = RenderEvent::SwapFailed { at: s.at, diagnostics: e.diagnostics().to_vec() };
                    push(&mut events, observe, failed);
                }
            }
        }
        // Notes split the block too, so each lands on its exact frame.
        while let Some(n) = notes.next_if(|n| n.at.0 as usize <= done) {
            engine.note(n.event);
        }
        let next_swap = swaps.peek().map_or(total, |(_, s)| (s.at.0 as usize).clamp(done + 1, total));
        let next_note = notes.peek().map_or(total, |n| (n.at.0 as usize).clamp(done + 1, total));
        let n = block.min(total - done).min(next_swap - done).min(next_note - done);
        let out = &mut buffer[..n * ch];
        let input = match &spec.input {
            None => &[][..],
            Some(i) => {
                // Past the end of the file: silence. (The engine keeps the
                // last frame's input when given none, so pad with zeros.)
                let have = i.block(done, n);
                let want = n * i.channels;
                if have.len() == want {
                    have
                } else {
                    input_pad.clear();
                    input_pad.extend_from_slice(have);
                    input_pad.resize(want, 0.0);
                    &input_pad[..]
                }
            }
        };
        engine.process(input, out);
        sink(out)?;
        done += n;
        progress.frames.store(done as u64, Ordering::Relaxed);
        for r in handle.collect() {
            if !matches!(r, Report::Installed { .. }) {
                push(&mut events, observe, RenderEvent::Report(handle.describe(&r)));
            }
        }
    }
    // Programs are freed here, after the engine stopped running them.
    drop(engine);
    handle.collect();
    Ok(Summary { channels: ch, sample_rate: spec.config.sample_rate as u32, events })
}

/// Renders `spec` into memory.
pub fn render(spec: &RenderSpec, progress: &Progress) -> Result<Rendered, RenderError> {
    let mut samples = Vec::with_capacity(spec.length.0 as usize * spec.config.channels);
    let summary = render_with(spec, progress, &mut |block| {
        samples.extend_from_slice(block);
        Ok(())
    })?;
    Ok(Rendered { samples, channels: summary.channels, sample_rate: summary.sample_rate, events: summary.events })
}

/// Sample format of a written WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavFormat {
    Float32,
    Int16,
    Int24,
}

impl WavFormat {
    /// Bytes per sample in the file.
    pub fn bytes_per_sample(self) -> u64 {
        match self {
            WavFormat::Float32 => 4,
            WavFormat::Int16 => 2,
            WavFormat::Int24 => 3,
        }
    }
}

/// The most sample bytes a WAV file holds: its sizes are 32-bit, less room
/// for the header.
pub const MAX_WAV_DATA_BYTES: u64 = u32::MAX as u64 - 4096;

/// The longest WAV, in seconds, at this rate, channel count and format.
pub fn max_wav_seconds(channels: usize, sample_rate: u32, format: WavFormat) -> f64 {
    let per_second = channels.max(1) as u64 * u64::from(sample_rate.max(1)) * format.bytes_per_sample();
    (MAX_WAV_DATA_BYTES / per_second) as f64
}

/// A WAV file being written. To a regular file (or a new one), atomically:
/// samples go to a temporary file beside the target, created exclusively
/// without following links ([`output`]), renamed into place by
/// [`finish`](Self::finish); dropped unfinished (an error, a failed render),
/// the temporary file is removed. To a character device, a FIFO or `-`
/// (stdout), streamed, with a header that leaves the length open (the
/// RIFF and data sizes are 0xFFFFFFFF, as `sox` and `ffmpeg` write and read
/// for pipes): a stream cannot be rewound to fill them in.
pub struct WavFile {
    sink: Option<Sink>,
    /// Sample bytes written so far (a file holds at most [`MAX_WAV_DATA_BYTES`]).
    data_bytes: u64,
    output: Option<Output>,
    path: PathBuf,
    format: WavFormat,
}

enum Sink {
    Seekable(hound::WavWriter<std::io::BufWriter<std::fs::File>>),
    Stream(std::io::BufWriter<std::fs::File>),
}

impl WavFile {
    pub fn create(path: &Path, channels: usize, sample_rate: u32, format: WavFormat) -> Result<WavFile, RenderError> {
        let spec = wav_spec(channels, sample_rate, format)?;
        let (output, file) = Output::create(path, "partial", Streaming::Allowed)?;
        let sink = if output.stream_kind().is_some() {
            let mut w = std::io::BufWriter::new(file);
            w.write_all(&stream_header(&spec)).map_err(|error| OutputError::Io { path: path.to_path_buf(), error })?;
            Sink::Stream(w)
        } else {
            // On error the Output is dropped here, which removes the temporary file.
            seekable(file, spec, path)?
        };
        Ok(WavFile { sink: Some(sink), data_bytes: 0, output: Some(output), path: path.to_path_buf(), format })
    }

    /// A WAV written into `file`, a regular file the caller already created
    /// (and removes or moves): for intermediate files, such as a video's
    /// sound. `path` names it in messages. [`finish`](Self::finish) completes
    /// the header and moves nothing.
    pub fn create_in(
        file: std::fs::File,
        path: &Path,
        channels: usize,
        sample_rate: u32,
        format: WavFormat,
    ) -> Result<WavFile, RenderError> {
        let spec = wav_spec(channels, sample_rate, format)?;
        let sink = seekable(file, spec, path)?;
        Ok(WavFile { sink: Some(sink), data_bytes: 0, output: None, path: path.to_path_buf(), format })
    }

    /// Where samples go until [`finish`](Self::finish) (for crash and signal
    /// handlers to remove); None when streaming to a device, FIFO or stdout.
    pub fn temporary_path(&self) -> Option<&Path> {
        self.output.as_ref().and_then(|o| o.temporary_path())
    }

    /// Whether this writes to standard output (`-`), which then carries
    /// nothing else.
    pub fn is_stdout(&self) -> bool {
        self.output.as_ref().and_then(|o| o.stream_kind()) == Some(NodeKind::Stdout)
    }

    fn err(&self, error: std::io::Error) -> RenderError {
        OutputError::Io { path: self.path.clone(), error }.into()
    }

    /// Appends interleaved samples.
    pub fn write(&mut self, samples: &[f32]) -> Result<(), RenderError> {
        let format = self.format;
        let add = samples.len() as u64 * format.bytes_per_sample();
        if matches!(self.sink, Some(Sink::Seekable(_))) && self.data_bytes + add > MAX_WAV_DATA_BYTES {
            // hound counts in a u32: refuse before it would overflow.
            return Err(self.err(std::io::Error::other("a WAV file holds at most 4 GiB of samples")));
        }
        self.data_bytes += add;
        let result = match self.sink.as_mut() {
            None => Err(std::io::Error::other("the file is already finished")),
            Some(Sink::Seekable(w)) => write_samples(format, samples, |bytes| match bytes {
                Sample::F32(s) => w.write_sample(s),
                Sample::I16(s) => w.write_sample(s),
                Sample::I24(s) => w.write_sample(s),
            })
            .map_err(hound_io),
            Some(Sink::Stream(w)) => write_samples(format, samples, |bytes| match bytes {
                Sample::F32(s) => w.write_all(&s.to_le_bytes()),
                Sample::I16(s) => w.write_all(&s.to_le_bytes()),
                Sample::I24(s) => w.write_all(&s.to_le_bytes()[..3]),
            }),
        };
        result.map_err(|e| self.err(e))
    }

    /// Completes the header and moves the file into place (or flushes the stream).
    pub fn finish(mut self) -> Result<(), RenderError> {
        match self.sink.take() {
            None => return Err(self.err(std::io::Error::other("the file is already finished"))),
            Some(Sink::Seekable(w)) => w.finalize().map_err(|e| self.err(hound_io(e)))?,
            Some(Sink::Stream(mut w)) => w.flush().map_err(|e| self.err(e))?,
        }
        match self.output.take() {
            Some(o) => Ok(o.commit()?),
            None => Ok(()),
        }
    }
}

/// The header's description of the samples, for a channel count and rate the
/// engine runs at.
fn wav_spec(channels: usize, sample_rate: u32, format: WavFormat) -> Result<hound::WavSpec, RenderError> {
    let (bits_per_sample, sample_format) = match format {
        WavFormat::Float32 => (32, hound::SampleFormat::Float),
        WavFormat::Int16 => (16, hound::SampleFormat::Int),
        WavFormat::Int24 => (24, hound::SampleFormat::Int),
    };
    let channels = u16::try_from(channels)
        .ok()
        .filter(|c| (1..=crate::builtins::api::MAX_CHANNELS as u16).contains(c))
        .ok_or(ConfigError::Channels(channels))?;
    if sample_rate == 0 {
        return Err(ConfigError::SampleRate(0.0).into());
    }
    Ok(hound::WavSpec { channels, sample_rate, bits_per_sample, sample_format })
}

fn seekable(file: std::fs::File, spec: hound::WavSpec, path: &Path) -> Result<Sink, RenderError> {
    let writer = hound::WavWriter::new(std::io::BufWriter::new(file), spec)
        .map_err(|e| OutputError::Io { path: path.to_path_buf(), error: hound_io(e) })?;
    Ok(Sink::Seekable(writer))
}

/// One sample in the file's format.
enum Sample {
    F32(f32),
    I16(i16),
    I24(i32),
}

fn write_samples<E>(format: WavFormat, samples: &[f32], mut put: impl FnMut(Sample) -> Result<(), E>) -> Result<(), E> {
    samples.iter().try_for_each(|s| {
        put(match format {
            WavFormat::Float32 => Sample::F32(*s),
            WavFormat::Int16 => Sample::I16((s.clamp(-1.0, 1.0) * 32767.0).round() as i16),
            WavFormat::Int24 => Sample::I24((s.clamp(-1.0, 1.0) * 8_388_607.0).round() as i32),
        })
    })
}

/// A WAV header whose RIFF and data sizes say "unknown" (0xFFFFFFFF): format
/// 1 (PCM) with the 16-byte `fmt ` chunk for integers; 3 (IEEE float) with
/// the 18-byte one (`cbSize` 0) that non-PCM formats carry, for floats.
fn stream_header(spec: &hound::WavSpec) -> Vec<u8> {
    let float = spec.sample_format == hound::SampleFormat::Float;
    let (tag, fmt_len): (u16, u32) = if float { (3, 18) } else { (1, 16) };
    let block_align = spec.channels * (spec.bits_per_sample / 8);
    let byte_rate = spec.sample_rate.saturating_mul(u32::from(block_align));
    let mut h = Vec::with_capacity(46);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&fmt_len.to_le_bytes());
    h.extend_from_slice(&tag.to_le_bytes());
    h.extend_from_slice(&spec.channels.to_le_bytes());
    h.extend_from_slice(&spec.sample_rate.to_le_bytes());
    h.extend_from_slice(&byte_rate.to_le_bytes());
    h.extend_from_slice(&block_align.to_le_bytes());
    h.extend_from_slice(&spec.bits_per_sample.to_le_bytes());
    if float {
        h.extend_from_slice(&0u16.to_le_bytes());
    }
    h.extend_from_slice(b"data");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h
}

/// Writes rendered samples to a WAV file, atomically.
pub fn write_wav(path: &Path, r: &Rendered, format: WavFormat) -> Result<(), RenderError> {
    let mut f = WavFile::create(path, r.channels, r.sample_rate, format)?;
    f.write(&r.samples)?;
    f.finish()
}

fn hound_io(e: hound::Error) -> std::io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

/// Writes a short line to stderr-like sinks; used by tools that stream events.
pub fn print_events(out: &mut impl Write, events: &[RenderEvent]) -> std::io::Result<()> {
    for e in events {
        match e {
            RenderEvent::Report(s) => writeln!(out, "clavm: {s}")?,
            RenderEvent::Warning(d) => writeln!(out, "{d}")?,
            RenderEvent::SwapFailed { at, diagnostics } => {
                for d in diagnostics {
                    writeln!(out, "{d}")?;
                }
                writeln!(out, "clavm: swap at frame {} failed; the previous patch kept playing", at.0)?;
            }
        }
    }
    Ok(())
}
