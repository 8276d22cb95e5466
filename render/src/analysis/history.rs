//! The last few seconds of audio, per channel, addressed by the engine's
//! absolute frame numbers.
//!
//! Every view reads from here rather than from the blocks as they arrive, so a
//! view can look at any span (the scope a few periods, the waveform panel two
//! seconds, the spectrum 4096 frames) at whatever moment it is drawn. Addressing
//! by absolute frame number (slot = frame mod N, N a power of two) keeps the
//! bookkeeping trivial and makes "which samples are these" unambiguous across
//! calls, which the trigger and the waveform bucket cache rely on.

/// The smallest ring we build: 2^17 frames, 2.73 s at 48 kHz, so the waveform
/// panel can show 2 s with room for its partial buckets.
pub const MIN_HISTORY_FRAMES: usize = 1 << 17;

/// Per-channel rings of the newest frames.
///
/// Frames are appended in order (the owner, [`super::Analysis`], trims overlaps
/// and turns gaps into silence), so a stored frame never changes once written;
/// only [`SampleHistory::restart_at`] rewinds, and it bumps
/// [`SampleHistory::generation`] so caches keyed by frame numbers can notice.
/// Non-finite samples are stored as 0.0 so no reader ever sees NaN or infinity.
///
/// Allocates only in [`SampleHistory::new`].
#[derive(Debug, Clone)]
pub struct SampleHistory {
    /// `channels * capacity` samples, channel-major: channel `c`'s ring is
    /// `samples[c * capacity..(c + 1) * capacity]`, frame `f` at slot `f & mask`.
    samples: Vec<f32>,
    channels: usize,
    capacity: usize,
    mask: u64,
    /// Frame number after the newest stored frame.
    newest: u64,
    /// How many frames before `newest` are stored (at most `capacity`).
    stored: u64,
    generation: u64,
}

impl SampleHistory {
    /// A history of `channels` channels (at least 1) holding at least
    /// `min_frames` frames, rounded up to a power of two and to at least
    /// [`MIN_HISTORY_FRAMES`]. Starts empty at frame 0.
    pub fn new(channels: usize, min_frames: usize) -> SampleHistory {
        let channels = channels.max(1);
        let capacity = min_frames.max(MIN_HISTORY_FRAMES).checked_next_power_of_two().unwrap_or(MIN_HISTORY_FRAMES);
        SampleHistory {
            samples: vec![0.0; channels * capacity],
            channels,
            capacity,
            mask: capacity as u64 - 1,
            newest: 0,
            stored: 0,
            generation: 0,
        }
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Frames the ring holds (a power of two).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Frame number after the newest stored sample.
    pub fn newest(&self) -> u64 {
        self.newest
    }

    /// Frame number of the oldest stored sample (`== newest()` when empty).
    pub fn oldest(&self) -> u64 {
        self.newest - self.stored
    }

    /// Counts rewinds ([`SampleHistory::restart_at`]); anything caching
    /// results by frame number compares it to know its cache is stale.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Forgets everything and continues at `frame` (the first push of a
    /// stream, or a stream that restarted).
    pub fn restart_at(&mut self, frame: u64) {
        self.newest = frame;
        self.stored = 0;
        self.generation += 1;
    }

    /// Appends whole interleaved frames of `self.channels()` channels at
    /// `newest()`; a trailing partial frame is ignored. A block longer than the
    /// ring keeps only its newest `capacity` frames (the rest would be
    /// overwritten anyway).
    pub fn push_interleaved(&mut self, interleaved: &[f32]) {
        let frames = interleaved.len() / self.channels;
        let skip = frames.saturating_sub(self.capacity);
        self.newest += skip as u64;
        for frame in interleaved.chunks_exact(self.channels).skip(skip) {
            let slot = (self.newest & self.mask) as usize;
            for (ch, &x) in frame.iter().enumerate() {
                self.samples[ch * self.capacity + slot] = if x.is_finite() { x } else { 0.0 };
            }
            self.newest += 1;
        }
        self.stored = (self.stored + frames as u64).min(self.capacity as u64);
    }

    /// Appends `frames` frames of silence (a gap in the stream). Costs at most
    /// one pass over the ring however long the gap.
    pub fn push_silence(&mut self, frames: u64) {
        let written = frames.min(self.capacity as u64);
        let start = self.newest + (frames - written);
        for ch in 0..self.channels {
            let ring = &mut self.samples[ch * self.capacity..(ch + 1) * self.capacity];
            for f in start..start + written {
                ring[(f & self.mask) as usize] = 0.0;
            }
        }
        self.newest += frames;
        self.stored = (self.stored + frames).min(self.capacity as u64);
    }

    /// The sample of channel `ch` at `frame`; 0.0 outside the stored range or
    /// for a channel that does not exist.
    pub fn get(&self, ch: usize, frame: u64) -> f32 {
        if ch >= self.channels || frame < self.oldest() || frame >= self.newest {
            return 0.0;
        }
        self.samples[ch * self.capacity + (frame & self.mask) as usize]
    }

    /// The sample of `source` at `frame`: `Some(ch)` is that channel, `None`
    /// the mean of all channels (the mono sum the scope and spectrum use).
    pub fn get_source(&self, source: Option<usize>, frame: u64) -> f32 {
        match source {
            Some(ch) => self.get(ch, frame),
            None => {
                let sum: f32 = (0..self.channels).map(|ch| self.get(ch, frame)).sum();
                sum / self.channels as f32
            }
        }
    }

    /// Linear interpolation of `source` at a fractional frame position;
    /// positions at or after the newest sample read the newest sample (never
    /// extrapolated), positions before the stored range read 0.0.
    pub fn interpolate(&self, source: Option<usize>, position: f64) -> f32 {
        if self.newest == 0 {
            return 0.0;
        }
        let last = (self.newest - 1) as f64;
        let position = position.min(last);
        if position.is_nan() || position < -1.0 {
            return 0.0;
        }
        let base = position.floor();
        let t = (position - base) as f32;
        let i = base.max(0.0) as u64;
        let a = if base < 0.0 { 0.0 } else { self.get_source(source, i) };
        let b = if base < 0.0 { self.get_source(source, 0) } else { self.get_source(source, i + 1) };
        a + (b - a) * t
    }

    /// Copies channel `ch`'s frames `start_frame..start_frame + out.len()`
    /// into `out`; frames outside the stored range (or a missing channel) read
    /// as 0.0.
    pub fn copy_range(&self, ch: usize, start_frame: u64, out: &mut [f32]) {
        out.fill(0.0);
        if ch >= self.channels {
            return;
        }
        let ring = &self.samples[ch * self.capacity..(ch + 1) * self.capacity];
        let end_frame = start_frame.saturating_add(out.len() as u64);
        let from = start_frame.max(self.oldest());
        let to = end_frame.min(self.newest);
        let mut f = from;
        while f < to {
            // At most two contiguous pieces: up to the end of the ring, then from its start.
            let slot = (f & self.mask) as usize;
            let n = ((to - f) as usize).min(self.capacity - slot);
            let at = (f - start_frame) as usize;
            out[at..at + n].copy_from_slice(&ring[slot..slot + n]);
            f += n as u64;
        }
    }

    /// [`SampleHistory::copy_range`] for a source as in
    /// [`SampleHistory::get_source`] (`None` = mean of all channels).
    pub fn copy_source_range(&self, source: Option<usize>, start_frame: u64, out: &mut [f32]) {
        match source {
            Some(ch) => self.copy_range(ch, start_frame, out),
            None => {
                out.fill(0.0);
                let scale = 1.0 / self.channels as f32;
                for (i, x) in out.iter_mut().enumerate() {
                    let f = start_frame.saturating_add(i as u64);
                    *x = (0..self.channels).map(|ch| self.get(ch, f)).sum::<f32>() * scale;
                }
            }
        }
    }
}

/// One channel of `frames` samples of `signal(frame)` (for the tests of
/// everything that reads a history).
#[cfg(test)]
pub(crate) fn mono_history(signal: impl Fn(u64) -> f32, frames: u64) -> SampleHistory {
    let mut h = SampleHistory::new(1, 0);
    let block: Vec<f32> = (0..frames).map(signal).collect();
    h.push_interleaved(&block);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(frames: u64, start: u64, channels: usize) -> Vec<f32> {
        (start..start + frames).flat_map(|f| (0..channels).map(move |c| f as f32 + c as f32 * 0.5)).collect()
    }

    #[test]
    fn capacity_is_a_power_of_two_of_at_least_2_17() {
        assert_eq!(SampleHistory::new(2, 10).capacity(), 1 << 17);
        assert_eq!(SampleHistory::new(2, 200_000).capacity(), 1 << 18);
        assert_eq!(SampleHistory::new(0, 10).channels(), 1);
    }

    #[test]
    fn get_and_copy_range_read_stored_frames_and_zero_outside() {
        let mut h = SampleHistory::new(2, 0);
        h.restart_at(1000);
        h.push_interleaved(&ramp(100, 1000, 2));
        assert_eq!(h.newest(), 1100);
        assert_eq!(h.oldest(), 1000);
        assert_eq!(h.get(0, 1000), 1000.0);
        assert_eq!(h.get(1, 1099), 1099.5);
        assert_eq!(h.get(0, 999), 0.0);
        assert_eq!(h.get(0, 1100), 0.0);
        assert_eq!(h.get(2, 1050), 0.0);
        let mut out = [7.0; 6];
        h.copy_range(1, 1097, &mut out);
        assert_eq!(out, [1097.5, 1098.5, 1099.5, 0.0, 0.0, 0.0]);
        h.copy_range(0, 998, &mut out);
        assert_eq!(out, [0.0, 0.0, 1000.0, 1001.0, 1002.0, 1003.0]);
        assert_eq!(h.get_source(None, 1010), 1010.25);
        assert_eq!(h.interpolate(Some(0), 1010.25), 1010.25);
        assert_eq!(h.interpolate(Some(0), 5000.0), 1099.0);
    }

    #[test]
    fn ring_wraps_and_keeps_the_newest_capacity_frames() {
        let mut h = SampleHistory::new(1, 0);
        let cap = h.capacity() as u64;
        h.push_interleaved(&ramp(cap + 10, 0, 1));
        assert_eq!(h.oldest(), 10);
        assert_eq!(h.get(0, 9), 0.0);
        assert_eq!(h.get(0, 10), 10.0);
        let mut out = [0.0; 4];
        h.copy_range(0, cap - 2, &mut out); // straddles the ring's end
        assert_eq!(out, [(cap - 2) as f32, (cap - 1) as f32, cap as f32, (cap + 1) as f32]);
    }

    #[test]
    fn silence_gap_and_non_finite_samples_read_as_zero() {
        let mut h = SampleHistory::new(1, 0);
        h.push_interleaved(&[1.0, f32::NAN, f32::INFINITY, 2.0]);
        h.push_silence(3);
        h.push_interleaved(&[5.0]);
        let mut out = [9.0; 8];
        h.copy_range(0, 0, &mut out);
        assert_eq!(out, [1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 5.0]);
        h.push_silence(u64::from(u32::MAX));
        assert_eq!(h.newest(), 8 + u64::from(u32::MAX));
        assert_eq!(h.get(0, h.newest() - 1), 0.0);
    }
}
