//! The tempo clock: beats and bars for `_beat()`/`_bar()`, and the
//! boundaries a quantised swap waits for.
//!
//! Beats are a function of the frame: the clock is an anchor (a frame and
//! the beat at it) and a tempo. A tempo change re-anchors at the frame it
//! takes effect, so `_beat()` never jumps, it only bends. The same clock runs
//! offline and live, so a swap quantised to a bar lands on the same sample.

use crate::Frames;

#[cfg(feature = "link")]
pub mod link;
pub mod timeline;

pub use timeline::{BeatTimeline, ClockMeter, ClockReading, Placement};

/// Tempo in beats per minute, in the range a performer can mean.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Bpm(f64);

/// Beats per bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meter(u32);

/// Where a swap may land: 0 = at the next block, Q > 0 = on the next
/// multiple of Q beats (1 = the next beat, 4 = the next bar of four).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Quant(f64);

/// A value out of its range, named for the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClockError {
    #[error("tempo {0}: must be a number of beats per minute from {MIN_BPM} to {MAX_BPM}")]
    Bpm(f64),
    #[error("meter {0}: must be 1 to {MAX_METER} beats per bar")]
    Meter(i64),
    #[error("quant {0}: must be 0 (the next block) or a number of beats up to {MAX_QUANT}")]
    Quant(f64),
}

pub const MIN_BPM: f64 = 10.0;
pub const MAX_BPM: f64 = 1000.0;
pub const MAX_METER: u32 = 64;
pub const MAX_QUANT: f64 = 256.0;

impl Bpm {
    pub const DEFAULT: Bpm = Bpm(120.0);

    pub fn new(bpm: f64) -> Result<Bpm, ClockError> {
        if (MIN_BPM..=MAX_BPM).contains(&bpm) {
            Ok(Bpm(bpm))
        } else {
            Err(ClockError::Bpm(bpm))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl Meter {
    pub const DEFAULT: Meter = Meter(4);

    pub fn new(beats: i64) -> Result<Meter, ClockError> {
        if (1..=MAX_METER as i64).contains(&beats) {
            Ok(Meter(beats as u32))
        } else {
            Err(ClockError::Meter(beats))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Quant {
    pub const NEXT_BLOCK: Quant = Quant(0.0);

    pub fn new(beats: f64) -> Result<Quant, ClockError> {
        // Finer than a 64th note at the fastest tempo is no grid at all.
        if beats == 0.0 || (1.0 / 64.0..=MAX_QUANT).contains(&beats) {
            Ok(Quant(beats))
        } else {
            Err(ClockError::Quant(beats))
        }
    }

    pub fn beats(self) -> f64 {
        self.0
    }

    pub fn is_next_block(self) -> bool {
        self.0 == 0.0
    }
}

impl std::str::FromStr for Bpm {
    type Err = String;
    fn from_str(s: &str) -> Result<Bpm, String> {
        let v: f64 = s.trim().parse().map_err(|_| format!("tempo '{s}': not a number"))?;
        Bpm::new(v).map_err(|e| e.to_string())
    }
}

impl std::str::FromStr for Meter {
    type Err = String;
    fn from_str(s: &str) -> Result<Meter, String> {
        let v: i64 = s.trim().parse().map_err(|_| format!("meter '{s}': not a whole number"))?;
        Meter::new(v).map_err(|e| e.to_string())
    }
}

impl std::str::FromStr for Quant {
    type Err = String;
    fn from_str(s: &str) -> Result<Quant, String> {
        let v: f64 = s.trim().parse().map_err(|_| format!("quant '{s}': not a number"))?;
        Quant::new(v).map_err(|e| e.to_string())
    }
}

/// Beats as a function of frames, at one tempo since the last change.
#[derive(Debug, Clone, Copy)]
pub struct TempoClock {
    sample_rate: f64,
    bpm: Bpm,
    meter: Meter,
    anchor_frame: u64,
    anchor_beat: f64,
}

impl TempoClock {
    pub fn new(sample_rate: f64, bpm: Bpm, meter: Meter) -> TempoClock {
        TempoClock { sample_rate, bpm, meter, anchor_frame: 0, anchor_beat: 0.0 }
    }

    pub fn bpm(&self) -> Bpm {
        self.bpm
    }

    pub fn meter(&self) -> Meter {
        self.meter
    }

    /// Beats advanced per frame at the current tempo.
    pub fn beats_per_frame(&self) -> f64 {
        self.bpm.0 / (60.0 * self.sample_rate)
    }

    /// The beat position at `frame` (fractional, from 0 at frame 0 of the engine).
    pub fn beat_at(&self, frame: Frames) -> f64 {
        let since = frame.0 as f64 - self.anchor_frame as f64;
        self.anchor_beat + since * self.beats_per_frame()
    }

    /// From `frame` on, the tempo is `bpm`; beats up to `frame` stay as they were.
    pub fn set_bpm(&mut self, frame: Frames, bpm: Bpm) {
        if bpm == self.bpm {
            return;
        }
        self.anchor_beat = self.beat_at(frame);
        self.anchor_frame = frame.0;
        self.bpm = bpm;
    }

    /// Follows an external beat timeline (Ableton Link): at `frame` the beat
    /// is `beat` and the tempo `bpm`.
    pub fn align(&mut self, frame: Frames, beat: f64, bpm: Bpm) {
        self.anchor_frame = frame.0;
        self.anchor_beat = beat;
        self.bpm = bpm;
    }

    /// The first frame whose beat position reaches `beat` (frame 0 for beats before it).
    pub fn first_frame_at(&self, beat: f64) -> Frames {
        let frames_to = (beat - self.anchor_beat) / self.beats_per_frame();
        let mut f = (self.anchor_frame as f64 + frames_to - 1e-6).ceil().max(0.0) as u64;
        while self.beat_at(Frames(f)) < beat - 1e-9 {
            f += 1;
        }
        while f > 0 && self.beat_at(Frames(f - 1)) >= beat - 1e-9 {
            f -= 1;
        }
        Frames(f)
    }

    /// The first frame at or after `from` on which a beat multiple of `quant`
    /// starts (the frame whose beat position first reaches it). `from` itself
    /// when `quant` is "next block" or `from` sits exactly on the grid.
    pub fn next_boundary(&self, from: Frames, quant: Quant) -> Frames {
        if quant.is_next_block() {
            return from;
        }
        let q = quant.0;
        let now = self.beat_at(from);
        // Within a millionth of a beat of the grid counts as on it (float noise).
        let target = ((now - 1e-6) / q).ceil() * q;
        self.first_frame_at(target).max(from)
    }

    /// The bar (counting from 1, as musicians do) that starts at beat `beat`'s bar.
    pub fn bar_number(&self, beat: f64) -> u64 {
        (beat / self.meter.0 as f64).floor().max(0.0) as u64 + 1
    }
}

#[cfg(test)]
mod tests;
