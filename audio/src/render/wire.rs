//! The bytes between [`render_isolated`](super::render_isolated) and its
//! child: the [`RenderSpec`] going in (stdin), framed messages coming out.
//!
//! Hand-written rather than serde: the types crossing (`RenderSpec`,
//! `EngineConfig`, `PatchSource`, `Diagnostic`, ...) live in modules this one
//! does not own and derive no serde traits, and the reading side must treat
//! every byte as hostile anyway (a patch can write anything to the child's
//! descriptors), which is bounds checks on each length, not a format. Each
//! struct is destructured without `..`, so a new field fails to compile here
//! instead of silently not crossing.
//!
//! Everything is little-endian. A message is `kind: u8, len: u32, payload`.

use std::path::PathBuf;
use std::sync::Arc;

use super::input::{InputAudio, MAX_INPUT_BYTES};
use super::{RenderEvent, RenderSpec, Swap, TimedNote};
use crate::builtins::api::MAX_CHANNELS;
use crate::clock::{Bpm, Meter};
use crate::engine::{ConfigError, EngineConfig, Param};
use crate::patch::{Diagnostic, PatchError, PatchSource, Severity};
use crate::samples::{SampleData, SampleSet, MAX_CHANNELS as SAMPLE_CHANNELS, MAX_MEMORY_MIB, SLOTS};
use crate::voices::{NoteEvent, Release, VoiceCount};
use crate::Frames;

/// The first bytes of an encoded spec (format version in the last two).
const MAGIC: &[u8; 8] = b"CLAVMR01";

/// The largest message payload the parent accepts (blocks are far smaller).
pub(super) const MAX_PAYLOAD: usize = 4 << 20;

/// Bytes in a message header.
pub(super) const HEADER: usize = 5;

/// Why bytes could not be read as what they should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("it ends inside a value")]
    Truncated,
    #[error("{0} out of bounds")]
    Bound(&'static str),
    #[error("unknown {what} tag {tag}")]
    Tag { what: &'static str, tag: u8 },
    #[error("text that is not UTF-8")]
    Utf8,
    #[error("not a CLAVM render spec (or another version)")]
    Magic,
    #[error("{0} bytes left over")]
    Trailing(usize),
}

/// Message kinds, child to parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Kind {
    /// Interleaved f32 samples: one block as `render_with` handed it to its sink.
    Block = 1,
    /// A [`Step`](super::Step) other than an event: phase (0 compiling, 1 running) and patch index.
    Step = 2,
    Event = 3,
    /// The render is complete: channels, sample rate.
    Done = 4,
    /// The render failed cleanly: a [`Failure`].
    Failed = 5,
    /// Written by the crash handler: see [`Crash`].
    Crash = 6,
}

impl Kind {
    pub(super) fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Block,
            2 => Kind::Step,
            3 => Kind::Event,
            4 => Kind::Done,
            5 => Kind::Failed,
            6 => Kind::Crash,
            _ => return None,
        })
    }
}

/// Why the child could not render, as it reports it.
#[derive(Debug)]
pub(super) enum Failure {
    Patch(PatchError),
    Config(ConfigError),
    /// The sandbox could not be entered: the patch was not run.
    Sandbox(String),
    /// The spec did not decode.
    Spec(String),
    /// Anything else the render returned (it has no other sink than the pipe).
    Other(String),
}

/// What the crash handler writes: fixed size, built without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Crash {
    pub signal: i32,
    pub stack_overflow: bool,
    pub compiling: bool,
    pub patch: u32,
    pub frames: u64,
}

impl Crash {
    pub(super) const LEN: usize = 4 + 1 + 1 + 4 + 8;

    /// The whole message, header included.
    pub(super) fn frame(&self) -> [u8; HEADER + Crash::LEN] {
        let mut b = [0u8; HEADER + Crash::LEN];
        b[0] = Kind::Crash as u8;
        b[1..5].copy_from_slice(&(Crash::LEN as u32).to_le_bytes());
        b[5..9].copy_from_slice(&self.signal.to_le_bytes());
        b[9] = self.stack_overflow as u8;
        b[10] = self.compiling as u8;
        b[11..15].copy_from_slice(&self.patch.to_le_bytes());
        b[15..23].copy_from_slice(&self.frames.to_le_bytes());
        b
    }

    pub(super) fn decode(p: &[u8]) -> Result<Crash, WireError> {
        let mut d = Dec::new(p);
        let c = Crash {
            signal: d.u32()? as i32,
            stack_overflow: d.bool()?,
            compiling: d.bool()?,
            patch: d.u32()?,
            frames: d.u64()?,
        };
        d.end()?;
        Ok(c)
    }
}

/// Appends little-endian values to a buffer.
#[derive(Default)]
pub(super) struct Enc(pub Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.u32(v.to_bits());
    }
    fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    fn bool(&mut self, v: bool) {
        self.u8(v as u8);
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    /// Starts a message; [`end_message`](Self::end_message) fills in its length.
    pub(super) fn begin_message(&mut self, kind: Kind) -> usize {
        self.u8(kind as u8);
        let at = self.0.len();
        self.u32(0);
        at
    }

    pub(super) fn end_message(&mut self, at: usize) {
        let len = (self.0.len() - at - 4) as u32;
        self.0[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }

    /// A block message, samples bit for bit.
    pub(super) fn block(&mut self, samples: &[f32]) {
        let at = self.begin_message(Kind::Block);
        if cfg!(target_endian = "little") {
            // Already the wire's byte order: one copy (this is the hot path).
            self.0.extend_from_slice(bytemuck::cast_slice(samples));
        } else {
            for s in samples {
                self.f32(*s);
            }
        }
        self.end_message(at);
    }

    pub(super) fn step(&mut self, compiling: bool, patch: usize) {
        let at = self.begin_message(Kind::Step);
        self.bool(!compiling);
        self.u32(patch as u32);
        self.end_message(at);
    }

    pub(super) fn event(&mut self, e: &RenderEvent) {
        let at = self.begin_message(Kind::Event);
        match e {
            RenderEvent::Report(s) => {
                self.u8(0);
                self.str(s);
            }
            RenderEvent::SwapFailed { at, diagnostics } => {
                self.u8(1);
                self.u64(at.0);
                self.diagnostics(diagnostics);
            }
            RenderEvent::Warning(d) => {
                self.u8(2);
                self.diagnostic(d);
            }
        }
        self.end_message(at);
    }

    pub(super) fn done(&mut self, channels: usize, sample_rate: u32) {
        let at = self.begin_message(Kind::Done);
        self.u32(channels as u32);
        self.u32(sample_rate);
        self.end_message(at);
    }

    pub(super) fn failed(&mut self, f: &Failure) {
        let at = self.begin_message(Kind::Failed);
        match f {
            Failure::Patch(PatchError::Read { path, source }) => {
                self.u8(0);
                self.str(path);
                self.str(&source.to_string());
            }
            Failure::Patch(PatchError::Rejected(d)) => {
                self.u8(1);
                self.diagnostics(d);
            }
            Failure::Config(c) => {
                self.u8(2);
                match c {
                    ConfigError::SampleRate(r) => {
                        self.u8(0);
                        self.f64(*r);
                    }
                    ConfigError::Channels(n) => {
                        self.u8(1);
                        self.u64(*n as u64);
                    }
                    ConfigError::Inputs(n) => {
                        self.u8(2);
                        self.u64(*n as u64);
                    }
                }
            }
            Failure::Sandbox(s) => {
                self.u8(3);
                self.str(s);
            }
            Failure::Spec(s) => {
                self.u8(4);
                self.str(s);
            }
            Failure::Other(s) => {
                self.u8(5);
                self.str(s);
            }
        }
        self.end_message(at);
    }

    fn diagnostic(&mut self, d: &Diagnostic) {
        let Diagnostic { file, line, col, severity, message } = d;
        self.str(file);
        self.u32(*line);
        self.u32(*col);
        self.u8(match severity {
            Severity::Error => 0,
            Severity::Warning => 1,
        });
        self.str(message);
    }

    fn diagnostics(&mut self, ds: &[Diagnostic]) {
        self.u64(ds.len() as u64);
        for d in ds {
            self.diagnostic(d);
        }
    }

    fn patch(&mut self, p: &PatchSource) {
        let PatchSource { name, text, dir } = p;
        self.str(name);
        self.str(text);
        match dir {
            Some(d) => {
                self.u8(1);
                self.str(&d.to_string_lossy());
            }
            None => self.u8(0),
        }
    }

    fn note(&mut self, e: NoteEvent) {
        let (kind, a, b) = e.pack();
        self.u8(kind);
        self.u8(a);
        self.u32(b as u16 as u32);
    }

    /// The whole spec, for the child's stdin.
    pub(super) fn spec(&mut self, spec: &RenderSpec) {
        let RenderSpec { patch, length, config, swaps, params, block, input, samples, notes } = spec;
        let EngineConfig { sample_rate, channels, inputs, crossfade, seed, bars, bpm, meter, voices, release } = config;
        self.0.extend_from_slice(MAGIC);
        self.patch(patch);
        self.u64(length.0);
        self.f64(*sample_rate);
        self.u64(*channels as u64);
        self.u64(*inputs as u64);
        self.u64(crossfade.0);
        self.u64(*seed);
        self.f64(bpm.get());
        self.u64(meter.get() as u64);
        self.u64(voices.get() as u64);
        self.f64(release.ms());
        self.u64(bars.len() as u64);
        for (hz, touched) in bars {
            self.f32(*hz);
            self.bool(*touched);
        }
        self.u64(swaps.len() as u64);
        for Swap { at, patch } in swaps {
            self.u64(at.0);
            self.patch(patch);
        }
        self.u64(params.len() as u64);
        for p in params {
            match *p {
                Param::P(n, v) => {
                    self.u8(0);
                    self.u8(n);
                    self.f32(v);
                }
                Param::I(n, v) => {
                    self.u8(1);
                    self.u8(n);
                    self.u32(v as u32);
                }
                Param::Cc(n, v) => {
                    self.u8(2);
                    self.u8(n);
                    self.f32(v);
                }
                Param::Tempo(bpm) => {
                    self.u8(3);
                    self.u8(0);
                    self.f64(bpm.get());
                }
                Param::Note(e) => {
                    self.u8(4);
                    self.u8(0);
                    self.note(e);
                }
            }
        }
        self.u64(notes.len() as u64);
        for n in notes {
            self.u64(n.at.0);
            self.note(n.event);
        }
        self.u64(*block as u64);
        match input {
            None => self.u8(0),
            Some(InputAudio { channels, samples }) => {
                self.u8(1);
                self.u64(*channels as u64);
                self.u64(samples.len() as u64);
                self.0.reserve(samples.len() * 4);
                for s in samples {
                    self.f32(*s);
                }
            }
        }
        self.samples(samples);
    }

    /// Each distinct sample once, then each version's numbers as indices into them.
    fn samples(&mut self, sets: &[SampleSet]) {
        let mut distinct: Vec<&Arc<SampleData>> = Vec::new();
        for set in sets {
            for (_, d) in set.iter() {
                if !distinct.iter().any(|x| Arc::ptr_eq(x, d)) {
                    distinct.push(d);
                }
            }
        }
        self.u64(distinct.len() as u64);
        for d in &distinct {
            self.u64(d.channels as u64);
            self.u64(d.samples.len() as u64);
            self.0.reserve(d.samples.len() * 4);
            for s in &d.samples {
                self.f32(*s);
            }
        }
        self.u64(sets.len() as u64);
        for set in sets {
            self.u64(set.iter().count() as u64);
            for (n, d) in set.iter() {
                self.u8(n as u8);
                self.u32(distinct.iter().position(|x| Arc::ptr_eq(x, d)).unwrap_or(0) as u32);
            }
        }
    }
}

/// Reads little-endian values from bytes, every length checked against what
/// is left (so no count can make it allocate more than the input's size).
pub(super) struct Dec<'a> {
    b: &'a [u8],
}

impl<'a> Dec<'a> {
    pub(super) fn new(b: &'a [u8]) -> Dec<'a> {
        Dec { b }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.b.len() {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(super) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }
    pub(super) fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(super) fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn f32(&mut self) -> Result<f32, WireError> {
        Ok(f32::from_bits(self.u32()?))
    }
    fn f64(&mut self) -> Result<f64, WireError> {
        Ok(f64::from_bits(self.u64()?))
    }
    pub(super) fn bool(&mut self) -> Result<bool, WireError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(WireError::Tag { what: "boolean", tag }),
        }
    }
    /// A count of items each at least `min_item` bytes long: bounded by what is left.
    fn count(&mut self, what: &'static str, min_item: usize) -> Result<usize, WireError> {
        let n = self.u64()?;
        if n > (self.b.len() / min_item.max(1)) as u64 {
            return Err(WireError::Bound(what));
        }
        Ok(n as usize)
    }
    /// A string exactly as sent (the spec: patch text may hold any character).
    fn string(&mut self) -> Result<String, WireError> {
        let n = self.count("a text length", 1)?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| WireError::Utf8)
    }
    /// A string from the child, for a terminal: control characters other
    /// than newline and tab are replaced, so a patch cannot send escapes.
    fn text(&mut self) -> Result<String, WireError> {
        Ok(self
            .string()?
            .chars()
            .map(|c| if c.is_control() && c != '\n' && c != '\t' { '\u{fffd}' } else { c })
            .collect())
    }

    pub(super) fn end(&self) -> Result<(), WireError> {
        match self.b.len() {
            0 => Ok(()),
            n => Err(WireError::Trailing(n)),
        }
    }

    fn diagnostic(&mut self) -> Result<Diagnostic, WireError> {
        let file = self.text()?;
        let line = self.u32()?;
        let col = self.u32()?;
        let severity = match self.u8()? {
            0 => Severity::Error,
            1 => Severity::Warning,
            tag => return Err(WireError::Tag { what: "severity", tag }),
        };
        let message = self.text()?;
        Ok(Diagnostic { file, line, col, severity, message })
    }

    fn diagnostics(&mut self) -> Result<Vec<Diagnostic>, WireError> {
        // A diagnostic takes at least 8 + 4 + 4 + 1 + 8 bytes.
        let n = self.count("a diagnostic count", 25)?;
        (0..n).map(|_| self.diagnostic()).collect()
    }

    /// A [`Kind::Event`] payload.
    pub(super) fn event(&mut self) -> Result<RenderEvent, WireError> {
        let e = match self.u8()? {
            0 => RenderEvent::Report(self.text()?),
            1 => RenderEvent::SwapFailed { at: Frames(self.u64()?), diagnostics: self.diagnostics()? },
            2 => RenderEvent::Warning(self.diagnostic()?),
            tag => return Err(WireError::Tag { what: "event", tag }),
        };
        self.end()?;
        Ok(e)
    }

    /// A [`Kind::Failed`] payload.
    pub(super) fn failure(&mut self) -> Result<Failure, WireError> {
        let f = match self.u8()? {
            0 => {
                let path = self.text()?;
                let message = self.text()?;
                Failure::Patch(PatchError::Read { path, source: std::io::Error::other(message) })
            }
            1 => {
                let d = self.diagnostics()?;
                if d.is_empty() {
                    return Err(WireError::Bound("an empty list of diagnostics"));
                }
                Failure::Patch(PatchError::Rejected(d))
            }
            2 => Failure::Config(match self.u8()? {
                0 => ConfigError::SampleRate(self.f64()?),
                1 => ConfigError::Channels(self.u64()? as usize),
                2 => ConfigError::Inputs(self.u64()? as usize),
                tag => return Err(WireError::Tag { what: "configuration error", tag }),
            }),
            3 => Failure::Sandbox(self.text()?),
            4 => Failure::Spec(self.text()?),
            5 => Failure::Other(self.text()?),
            tag => return Err(WireError::Tag { what: "failure", tag }),
        };
        self.end()?;
        Ok(f)
    }

    fn patch(&mut self) -> Result<PatchSource, WireError> {
        let name = self.string()?;
        let text = self.string()?;
        let dir = match self.u8()? {
            0 => None,
            1 => Some(PathBuf::from(self.string()?)),
            tag => return Err(WireError::Tag { what: "folder", tag }),
        };
        Ok(PatchSource { name, text, dir })
    }

    /// The whole spec (the child's stdin).
    pub(super) fn spec(&mut self) -> Result<RenderSpec, WireError> {
        if self.take(MAGIC.len()).ok() != Some(&MAGIC[..]) {
            return Err(WireError::Magic);
        }
        let patch = self.patch()?;
        let length = Frames(self.u64()?);
        let sample_rate = self.f64()?;
        let channels = self.u64()? as usize;
        let inputs = self.u64()? as usize;
        let crossfade = Frames(self.u64()?);
        let seed = self.u64()?;
        let bpm = Bpm::new(self.f64()?).map_err(|_| WireError::Bound("the tempo"))?;
        let meter = i64::try_from(self.u64()?).ok().and_then(|m| Meter::new(m).ok());
        let meter = meter.ok_or(WireError::Bound("the meter"))?;
        let voices = i64::try_from(self.u64()?).ok().and_then(|n| VoiceCount::new(n).ok());
        let voices = voices.ok_or(WireError::Bound("the voice count"))?;
        let release = Release::from_ms(self.f64()?).map_err(|_| WireError::Bound("the release time"))?;
        let n = self.count("a bar count", 5)?;
        let bars = (0..n).map(|_| Ok((self.f32()?, self.bool()?))).collect::<Result<_, WireError>>()?;
        let n = self.count("a swap count", 8 + 8 + 8 + 1)?;
        let swaps = (0..n)
            .map(|_| Ok(Swap { at: Frames(self.u64()?), patch: self.patch()? }))
            .collect::<Result<_, WireError>>()?;
        let n = self.count("a parameter count", 6)?;
        let params = (0..n)
            .map(|_| {
                let tag = self.u8()?;
                let n = self.u8()?;
                Ok(match tag {
                    0 => Param::P(n, self.f32()?),
                    1 => Param::I(n, self.u32()? as i32),
                    2 => Param::Cc(n, self.f32()?),
                    3 => Param::Tempo(Bpm::new(self.f64()?).map_err(|_| WireError::Bound("a tempo"))?),
                    4 => Param::Note(self.note()?),
                    tag => return Err(WireError::Tag { what: "parameter", tag }),
                })
            })
            .collect::<Result<_, WireError>>()?;
        let n = self.count("a note count", 8 + 6)?;
        let notes = (0..n)
            .map(|_| Ok(TimedNote { at: Frames(self.u64()?), event: self.note()? }))
            .collect::<Result<_, WireError>>()?;
        let block = usize::try_from(self.u64()?).map_err(|_| WireError::Bound("the block size"))?;
        let input = self.input()?;
        let samples = self.samples()?;
        self.end()?;
        let config = EngineConfig { sample_rate, channels, inputs, crossfade, seed, bars, bpm, meter, voices, release };
        Ok(RenderSpec { patch, length, config, swaps, params, block, input, samples, notes })
    }

    /// The samples: channels and lengths within the loader's bounds, at most
    /// [`MAX_MEMORY_MIB`] in all, every index and number in range.
    fn samples(&mut self) -> Result<Vec<SampleSet>, WireError> {
        let n = self.count("a sample count", 16)?;
        let mut distinct = Vec::with_capacity(n);
        let mut total = 0u64;
        for _ in 0..n {
            let channels = self.u64()?;
            if !(1..=SAMPLE_CHANNELS as u64).contains(&channels) {
                return Err(WireError::Bound("a sample's channel count"));
            }
            let channels = channels as usize;
            let len = self.count("a sample's length", 4)?;
            total += len as u64 * 4;
            if len == 0 || len % channels != 0 || total > MAX_MEMORY_MIB << 20 {
                return Err(WireError::Bound("a sample's length"));
            }
            let samples =
                self.take(len * 4)?.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            distinct.push(Arc::new(SampleData { channels, samples }));
        }
        let versions = self.count("a sample set count", 8)?;
        let mut sets = Vec::with_capacity(versions);
        for _ in 0..versions {
            let used = self.count("a sample set's size", 5)?;
            if used > SLOTS {
                return Err(WireError::Bound("a sample set's size"));
            }
            let mut set = SampleSet::default();
            for _ in 0..used {
                let n = self.u8()? as usize;
                let i = self.u32()? as usize;
                if n >= SLOTS {
                    return Err(WireError::Bound("a sample number"));
                }
                let d = distinct.get(i).ok_or(WireError::Bound("a sample index"))?;
                set.set(n, d.clone());
            }
            sets.push(set);
        }
        Ok(sets)
    }

    fn note(&mut self) -> Result<NoteEvent, WireError> {
        let (kind, a, b) = (self.u8()?, self.u8()?, self.u32()?);
        let b = u16::try_from(b).map_err(|_| WireError::Bound("a note event"))? as i16;
        NoteEvent::unpack(kind, a, b).ok_or(WireError::Bound("a note event"))
    }

    /// The render's input: channels within the engine's, whole frames, at
    /// most [`MAX_INPUT_BYTES`] (the parent is trusted, but sizes stay bounded).
    fn input(&mut self) -> Result<Option<InputAudio>, WireError> {
        match self.u8()? {
            0 => Ok(None),
            1 => {
                let channels = self.u64()?;
                if !(1..=MAX_CHANNELS as u64).contains(&channels) {
                    return Err(WireError::Bound("the input's channel count"));
                }
                let channels = channels as usize;
                let n = self.count("the input's length", 4)?;
                if n % channels != 0 || n * 4 > MAX_INPUT_BYTES {
                    return Err(WireError::Bound("the input's length"));
                }
                let samples =
                    self.take(n * 4)?.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                Ok(Some(InputAudio { channels, samples }))
            }
            tag => Err(WireError::Tag { what: "input", tag }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RenderSpec {
        let mut config = EngineConfig::new(44100.0, 2);
        config.seed = 9;
        config.bars = vec![(220.0, true), (330.5, false)];
        RenderSpec {
            patch: PatchSource {
                name: "a.c".into(),
                text: "void play(void) {}\r\n\u{1b}".into(),
                dir: Some("/x".into()),
            },
            length: Frames(1234),
            config,
            swaps: vec![Swap {
                at: Frames(7),
                patch: PatchSource::from_text("b.c", "void play(void) { _out(0, 1); }"),
            }],
            params: vec![Param::P(1, 0.5), Param::I(2, -3), Param::Cc(127, 0.25), Param::Note(NoteEvent::Bend(-3))],
            block: 64,
            input: Some(InputAudio { channels: 2, samples: vec![0.5, -0.25, f32::MIN_POSITIVE, 1.0] }),
            samples: {
                let a = Arc::new(SampleData { channels: 2, samples: vec![0.25, -1.0, 0.5, 0.125] });
                let b = Arc::new(SampleData { channels: 1, samples: vec![1.0; 3] });
                let mut first = SampleSet::default();
                first.set(0, a.clone());
                first.set(63, b.clone());
                let mut second = SampleSet::default();
                second.set(5, a);
                vec![first, second]
            },
            notes: vec![
                TimedNote { at: Frames(3), event: NoteEvent::On { note: 60, velocity: 127 } },
                TimedNote { at: Frames(9), event: NoteEvent::Bend(-8192) },
                TimedNote { at: Frames(10), event: NoteEvent::Sustain(true) },
                TimedNote { at: Frames(11), event: NoteEvent::Off { note: 60 } },
            ],
        }
    }

    #[test]
    fn samples_out_of_bounds_are_refused() {
        let enc = |channels: u64, len: u64, index: u32, n: u8| {
            let mut e = Enc::default();
            e.u64(1);
            e.u64(channels);
            e.u64(len);
            for _ in 0..len {
                e.f32(0.5);
            }
            e.u64(1);
            e.u64(1);
            e.u8(n);
            e.u32(index);
            e.0
        };
        assert!(Dec::new(&enc(2, 4, 0, 3)).samples().is_ok());
        for (channels, len, index, n) in
            [(0, 4, 0, 3), (9, 9, 0, 3), (2, 3, 0, 3), (2, 0, 0, 3), (2, 4, 1, 3), (2, 4, 0, 64)]
        {
            assert!(
                matches!(Dec::new(&enc(channels, len, index, n)).samples(), Err(WireError::Bound(_))),
                "{channels} {len} {index} {n}"
            );
        }
        // A length past what is left is refused before allocating.
        let mut e = Enc::default();
        e.u64(1);
        e.u64(1);
        e.u64(u64::MAX / 8);
        assert!(matches!(Dec::new(&e.0).samples(), Err(WireError::Bound(_))));
    }

    #[test]
    fn an_input_out_of_bounds_is_refused() {
        for (channels, len) in [(0u64, 0u64), (MAX_CHANNELS as u64 + 1, 0), (2, 3)] {
            let mut e = Enc::default();
            e.u8(1);
            e.u64(channels);
            e.u64(len);
            e.0.extend(std::iter::repeat_n(0u8, len as usize * 4));
            assert!(matches!(Dec::new(&e.0).input(), Err(WireError::Bound(_))), "{channels} {len}");
        }
        let mut e = Enc::default();
        e.u8(1);
        e.u64(1);
        e.u64(u64::MAX / 4);
        assert!(matches!(Dec::new(&e.0).input(), Err(WireError::Bound(_))));
    }

    #[test]
    fn a_spec_crosses_unchanged() {
        let s = spec();
        let mut e = Enc::default();
        e.spec(&s);
        let back = Dec::new(&e.0).spec().unwrap();
        assert_eq!(format!("{s:?}"), format!("{back:?}"));
    }

    #[test]
    fn every_truncation_of_a_spec_is_an_error_not_a_panic() {
        let mut e = Enc::default();
        e.spec(&spec());
        for n in 0..e.0.len() {
            assert!(Dec::new(&e.0[..n]).spec().is_err(), "{n} bytes");
        }
        let mut long = e.0.clone();
        long.push(0);
        assert_eq!(Dec::new(&long).spec().unwrap_err(), WireError::Trailing(1));
    }

    #[test]
    fn huge_counts_are_refused_before_allocating() {
        let mut e = Enc::default();
        e.u8(1);
        e.u64(u64::MAX);
        assert_eq!(Dec::new(&e.0[..]).failure().unwrap_err(), WireError::Bound("a diagnostic count"));
        let mut e = Enc::default();
        e.u8(0);
        e.u64(1 << 40);
        assert_eq!(Dec::new(&e.0[..]).event().unwrap_err(), WireError::Bound("a text length"));
    }

    #[test]
    fn events_cross_and_text_from_the_child_loses_its_escapes() {
        let d = Diagnostic {
            file: "p.c".into(),
            line: 3,
            col: 4,
            severity: Severity::Warning,
            message: "bad\u{1b}[2J\tthing\nnext".into(),
        };
        let clean = Diagnostic { message: "bad\u{fffd}[2J\tthing\nnext".into(), ..d.clone() };
        for (e, want) in [
            (RenderEvent::Warning(d.clone()), RenderEvent::Warning(clean.clone())),
            (
                RenderEvent::SwapFailed { at: Frames(99), diagnostics: vec![d.clone(), d.clone()] },
                RenderEvent::SwapFailed { at: Frames(99), diagnostics: vec![clean.clone(), clean.clone()] },
            ),
            (RenderEvent::Report("t=1.0s ok".into()), RenderEvent::Report("t=1.0s ok".into())),
        ] {
            let mut enc = Enc::default();
            enc.event(&e);
            assert_eq!(enc.0[0], Kind::Event as u8);
            let len = u32::from_le_bytes(enc.0[1..5].try_into().unwrap()) as usize;
            assert_eq!(len, enc.0.len() - HEADER);
            let back = Dec::new(&enc.0[HEADER..]).event().unwrap();
            assert_eq!(format!("{back:?}"), format!("{want:?}"));
        }
    }

    #[test]
    fn a_crash_frame_is_fixed_size_and_round_trips() {
        let c = Crash { signal: 11, stack_overflow: true, compiling: false, patch: 2, frames: 12032 };
        let f = c.frame();
        assert_eq!(Kind::from_u8(f[0]), Some(Kind::Crash));
        assert_eq!(Crash::decode(&f[HEADER..]).unwrap(), c);
        assert_eq!(Crash::decode(&f[HEADER..HEADER + 3]).unwrap_err(), WireError::Truncated);
    }
}
