//! Level meters per channel (held sample peak, 300 ms RMS, clip indicator)
//! and the engine's DSP load.
//!
//! Fed every block, sample by sample, so they see every sample the engine
//! played (the views only look at the history when they are drawn). Time is
//! the frame count of the audio pushed, so holds and falls are the same in an
//! offline render as live.

use super::decibels::{db, FLOOR_DB};
use super::peak_hold::PeakHold;

/// The RMS window.
pub const RMS_SECONDS: f64 = 0.3;
/// How long the peak value holds before it falls.
pub const PEAK_HOLD_SECONDS: f64 = 1.0;
/// How fast the peak value falls after the hold.
pub const PEAK_FALL_DB_PER_SECOND: f64 = 20.0;
/// How long the clip indicator stays lit after a sample at or above full scale.
pub const CLIP_SECONDS: f64 = 2.0;
/// How long the held DSP load holds before it falls, and how fast (fraction per second).
pub const DSP_LOAD_HOLD_SECONDS: f64 = 1.0;
pub const DSP_LOAD_FALL_PER_SECOND: f64 = 0.5;

/// One channel's exact sliding RMS: the squares of the last `window` samples
/// in a ring, their sum kept incrementally in f64 and recomputed from the ring
/// each time the ring wraps so rounding errors cannot accumulate.
#[derive(Debug, Clone)]
struct SlidingRms {
    squares: Vec<f64>,
    next: usize,
    sum: f64,
}

impl SlidingRms {
    fn new(window: usize) -> SlidingRms {
        SlidingRms { squares: vec![0.0; window.max(1)], next: 0, sum: 0.0 }
    }

    fn push(&mut self, x: f32) {
        let sq = f64::from(x) * f64::from(x);
        self.sum += sq - self.squares[self.next];
        self.squares[self.next] = sq;
        self.next += 1;
        if self.next == self.squares.len() {
            self.next = 0;
            self.sum = self.squares.iter().sum();
        }
    }

    fn push_silence(&mut self, frames: u64) {
        if frames >= self.squares.len() as u64 {
            self.squares.fill(0.0);
            self.next = 0;
            self.sum = 0.0;
        } else {
            for _ in 0..frames {
                self.push(0.0);
            }
        }
    }

    fn rms(&self) -> f32 {
        (self.sum.max(0.0) / self.squares.len() as f64).sqrt() as f32
    }
}

/// Meters for every channel plus the DSP load.
///
/// Allocates only in `new`. Non-finite samples count as 0 for peak and RMS
/// (so one NaN cannot poison the running sum) but light the clip indicator:
/// they are an output fault worth showing.
#[derive(Debug, Clone)]
pub struct Meters {
    rms: Vec<SlidingRms>,
    /// Held sample peaks in dB, one marker per channel.
    peaks: PeakHold,
    /// Per channel: the frame after the last sample at or above full scale.
    last_clip_end: Vec<Option<u64>>,
    clip_frames: u64,
    /// Frame after the newest sample pushed.
    now: u64,
    /// Scratch for one block's per-channel peaks (allocated in `new`).
    block_peaks: Vec<f32>,
    dsp_load: f32,
    dsp_load_held: PeakHold,
}

impl Meters {
    /// Meters for `channels` channels (at least 1) at `sample_rate`.
    pub fn new(sample_rate: f64, channels: usize) -> Meters {
        let channels = channels.max(1);
        let window = (RMS_SECONDS * sample_rate).round().max(1.0) as usize;
        let mut peaks = PeakHold::new(sample_rate, PEAK_HOLD_SECONDS, PEAK_FALL_DB_PER_SECOND, FLOOR_DB);
        peaks.update(&vec![FLOOR_DB; channels], 0); // one marker per channel from the start
        let mut dsp_load_held = PeakHold::new(sample_rate, DSP_LOAD_HOLD_SECONDS, DSP_LOAD_FALL_PER_SECOND, 0.0);
        dsp_load_held.update(&[0.0], 0);
        Meters {
            rms: (0..channels).map(|_| SlidingRms::new(window)).collect(),
            peaks,
            last_clip_end: vec![None; channels],
            clip_frames: (CLIP_SECONDS * sample_rate).round() as u64,
            now: 0,
            block_peaks: vec![0.0; channels],
            dsp_load: 0.0,
            dsp_load_held,
        }
    }

    pub fn channels(&self) -> usize {
        self.rms.len()
    }

    /// Sets the time of the next frame without feeding anything (the first
    /// block of a stream, or a restarted stream).
    pub fn restart_at(&mut self, frame: u64) {
        for rms in &mut self.rms {
            rms.push_silence(u64::MAX);
        }
        self.last_clip_end.fill(None);
        self.now = frame;
        self.peaks.reset(FLOOR_DB, frame);
        self.dsp_load = 0.0;
        self.dsp_load_held.reset(0.0, frame);
    }

    /// Feeds whole interleaved frames following the last ones; a trailing
    /// partial frame is ignored.
    pub fn push_interleaved(&mut self, interleaved: &[f32]) {
        let channels = self.channels();
        let frames = interleaved.len() / channels;
        if frames == 0 {
            return;
        }
        self.block_peaks.fill(0.0);
        for (i, frame) in interleaved.chunks_exact(channels).enumerate() {
            for (ch, &x) in frame.iter().enumerate() {
                let finite = x.is_finite();
                let x = if finite { x } else { 0.0 };
                if !finite || x.abs() >= 1.0 {
                    self.last_clip_end[ch] = Some(self.now + i as u64 + 1);
                }
                self.block_peaks[ch] = self.block_peaks[ch].max(x.abs());
                self.rms[ch].push(x);
            }
        }
        self.now += frames as u64;
        // The block's peak is held from the block's end: at most one block
        // (a few ms) longer than exact, and one log10 per block, not per sample.
        for (ch, &peak) in self.block_peaks.iter().enumerate() {
            self.peaks.update_one(ch, db(peak), self.now);
        }
        self.dsp_load_held.advance_to(self.now);
    }

    /// Feeds `frames` frames of silence (a gap in the stream); costs at most
    /// one RMS window however long the gap.
    pub fn push_silence(&mut self, frames: u64) {
        for rms in &mut self.rms {
            rms.push_silence(frames);
        }
        self.now += frames;
        self.peaks.advance_to(self.now);
        self.dsp_load_held.advance_to(self.now);
    }

    /// Records the engine's DSP load for its last block (process time / block
    /// time; 1.0 means it only just kept up). Non-finite values count as 0,
    /// negative ones as 0.
    pub fn push_dsp_load(&mut self, load: f32) {
        self.dsp_load = if load.is_finite() { load.max(0.0) } else { 0.0 };
        self.dsp_load_held.update_one(0, self.dsp_load, self.now);
    }

    /// Frame after the newest sample fed: the meters' "now".
    pub fn frame(&self) -> u64 {
        self.now
    }

    /// Channel `ch`'s held sample peak (linear, 0.0 for a missing channel):
    /// the largest |sample| of the last second, then falling at 20 dB/s.
    pub fn peak(&self, ch: usize) -> f32 {
        let peak_db = self.peak_db(ch);
        if peak_db <= FLOOR_DB {
            0.0
        } else {
            10f32.powf(peak_db / 20.0)
        }
    }

    /// [`Meters::peak`] in dBFS (floored at -120).
    pub fn peak_db(&self, ch: usize) -> f32 {
        self.peaks.value(ch)
    }

    /// Channel `ch`'s RMS over the last 300 ms (linear; frames before the
    /// stream started count as silence).
    pub fn rms(&self, ch: usize) -> f32 {
        self.rms.get(ch).map_or(0.0, SlidingRms::rms)
    }

    /// [`Meters::rms`] in dBFS (floored at -120; a full-scale sine reads -3.01).
    pub fn rms_db(&self, ch: usize) -> f32 {
        db(self.rms(ch))
    }

    /// Whether channel `ch` had a sample at or above full scale (or a
    /// non-finite one) in the last 2 s.
    pub fn clipped(&self, ch: usize) -> bool {
        match self.last_clip_end.get(ch).copied().flatten() {
            Some(end) => self.now < end + self.clip_frames,
            None => false,
        }
    }

    /// The DSP load last pushed (fraction of the block time).
    pub fn dsp_load(&self) -> f32 {
        self.dsp_load
    }

    /// The DSP load's maximum over the last second, then falling at 0.5 per
    /// second: steadier to read than the latest value, and spikes stay visible.
    pub fn dsp_load_held(&self) -> f32 {
        self.dsp_load_held.value(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::TAU;

    const SR: f64 = 48_000.0;

    /// `seconds` of a sine on every channel of an interleaved block.
    fn sine(amplitude: f64, freq: f64, seconds: f64, channels: usize) -> Vec<f32> {
        let frames = (seconds * SR) as usize;
        (0..frames)
            .flat_map(|i| {
                let x = (amplitude * (TAU * freq * i as f64 / SR).sin()) as f32;
                std::iter::repeat_n(x, channels)
            })
            .collect()
    }

    #[test]
    fn full_scale_sine_reads_0_db_peak_and_minus_3_db_rms() {
        let mut m = Meters::new(SR, 2);
        for block in sine(1.0, 1000.0, 1.0, 2).chunks(256) {
            m.push_interleaved(block);
        }
        for ch in 0..2 {
            assert!(m.peak_db(ch).abs() < 0.01, "{}", m.peak_db(ch));
            assert!((m.rms_db(ch) - -3.0103).abs() < 0.1, "{}", m.rms_db(ch));
            assert!(m.clipped(ch));
        }
        assert_eq!(m.frame(), 48_000);
    }

    #[test]
    fn half_scale_sine_reads_minus_6_peak_and_minus_9_rms() {
        let mut m = Meters::new(SR, 1);
        m.push_interleaved(&sine(0.5, 997.0, 0.5, 1));
        assert!((m.peak_db(0) - -6.0206).abs() < 0.1, "{}", m.peak_db(0));
        assert!((m.rms_db(0) - -9.0309).abs() < 0.1, "{}", m.rms_db(0));
        assert!((m.peak(0) - 0.5).abs() < 0.01);
        assert!(!m.clipped(0));
    }

    #[test]
    fn silence_reads_minus_120() {
        let mut m = Meters::new(SR, 2);
        m.push_interleaved(&[0.0; 2 * 4800]);
        assert_eq!(m.peak_db(0), -120.0);
        assert_eq!(m.rms_db(1), -120.0);
        assert_eq!(m.peak(0), 0.0);
        assert_eq!(m.peak_db(5), -120.0); // a channel that does not exist
    }

    #[test]
    fn peak_holds_one_second_then_falls_20_db_per_second() {
        let mut m = Meters::new(SR, 1);
        m.push_interleaved(&[0.5]);
        m.push_interleaved(&vec![0.0; 48_000]);
        assert!((m.peak_db(0) - -6.0206).abs() < 0.01);
        m.push_interleaved(&vec![0.0; 24_000]); // 0.5 s falling
        assert!((m.peak_db(0) - -16.0206).abs() < 0.01, "{}", m.peak_db(0));
        m.push_silence(48_000 * 10);
        assert_eq!(m.peak_db(0), -120.0);
    }

    #[test]
    fn rms_window_is_300_ms_and_survives_long_runs_without_drift() {
        let mut m = Meters::new(SR, 1);
        m.push_interleaved(&vec![0.25; 14_400]); // exactly one window of DC 0.25
        assert!((m.rms(0) - 0.25).abs() < 1e-6);
        m.push_interleaved(&vec![0.0; 7_200]); // half the window silent
        assert!((m.rms(0) - (0.0625f32 / 2.0).sqrt()).abs() < 1e-6);
        // Ten minutes of a loud signal then silence: exactly zero, no drift.
        let loud = sine(0.9, 123.0, 1.0, 1);
        for _ in 0..600 {
            m.push_interleaved(&loud);
        }
        m.push_interleaved(&vec![0.0; 14_400]);
        assert!(m.rms(0) < 1e-6, "{}", m.rms(0)); // drift is bounded by one window of rounding
        assert_eq!(m.rms_db(0), FLOOR_DB);
    }

    #[test]
    fn clip_flag_is_set_by_a_full_scale_sample_and_cleared_2_s_later() {
        let mut m = Meters::new(SR, 2);
        m.push_interleaved(&[0.0, 1.0, 0.0, 0.0]);
        assert!(!m.clipped(0));
        assert!(m.clipped(1));
        m.push_interleaved(&vec![0.0; 2 * (96_000 - 2)]);
        assert!(m.clipped(1)); // 2 s minus one frame after the clip
        m.push_interleaved(&[0.0, 0.0]);
        assert!(!m.clipped(1));
        m.push_interleaved(&[f32::NAN, 0.5]);
        assert!(m.clipped(0));
        assert_eq!(m.peak_db(0), -120.0); // the NaN counts as 0 for the level
        assert!(m.rms(0).is_finite());
    }

    #[test]
    fn dsp_load_keeps_latest_and_held_values() {
        let mut m = Meters::new(SR, 1);
        m.push_dsp_load(0.8);
        m.push_interleaved(&vec![0.0; 4_800]);
        m.push_dsp_load(0.2);
        assert_eq!(m.dsp_load(), 0.2);
        assert_eq!(m.dsp_load_held(), 0.8);
        m.push_interleaved(&vec![0.0; 48_000]); // 1.1 s after the spike: 0.1 s falling
        assert!((m.dsp_load_held() - 0.75).abs() < 1e-4, "{}", m.dsp_load_held());
        m.push_dsp_load(f32::NAN);
        assert_eq!(m.dsp_load(), 0.0);
    }
}
