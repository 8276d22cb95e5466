//! The CPU side of the visuals: turns the audio blocks the engine plays into
//! what the views draw (scope window, XY points, waveform columns, spectrum
//! columns, meters). No Vulkan here.
//!
//! Fed block by block, from the offline renderer (snapshots, video) or the
//! live engine's tap channel, with the engine's frame number of each block's
//! first frame. Time is that frame number, never the wall clock, so a video
//! render shows exactly what the live view would have shown at the same audio
//! time, and every result here is a function of the audio pushed alone.
//!
//! Memory: everything is allocated in [`Analysis::new`]. Pushing blocks and
//! computing views do not allocate, except once per output buffer when a
//! caller's `out` `Vec` is first grown to the size asked for (keep and reuse
//! the same buffers) and when the waveform cache is asked for more than
//! [`WAVEFORM_MAX_COLUMNS`] columns.

pub mod decibels;
pub mod history;
pub mod meters;
pub mod peak_hold;
pub mod spectrum;
pub mod trigger;
pub mod waves;
pub mod xy;

pub use decibels::{db, FLOOR_DB};
pub use history::SampleHistory;
pub use meters::Meters;
pub use peak_hold::PeakHold;
pub use spectrum::{column_of_freq, freq_of_column, Spectrum, FFT_SIZE};
pub use trigger::{scope_window, ScopeSpan, ScopeWindow};
pub use waves::{WaveColumns, WaveformCache};
pub use xy::xy_points;

/// Seconds of audio the history holds at least (more when rounded up to a
/// power of two): the waveform panel shows 2 s, plus room for its buckets and
/// the scope's trigger search.
pub const HISTORY_SECONDS: f64 = 2.5;
/// Columns the waveform caches are sized for without growing.
pub const WAVEFORM_MAX_COLUMNS: usize = 4096;
/// How long the spectrum's peak line holds, and how fast it then falls.
pub const SPECTRUM_PEAK_HOLD_SECONDS: f64 = 1.0;
pub const SPECTRUM_PEAK_FALL_DB_PER_SECOND: f64 = 20.0;
/// Frame numbers this high are corrupt; ignoring them keeps every sum of
/// frame numbers far from overflowing.
const MAX_FRAME: u64 = 1 << 62;
/// The rate assumed when `Analysis::new` is given a nonsensical one.
const DEFAULT_SAMPLE_RATE: f64 = 48_000.0;

/// Every analysis of one audio stream.
///
/// Blocks carry `channels()` interleaved channels; a trailing partial frame
/// is ignored. A stream with another channel count or sample rate needs a new
/// `Analysis` (compare the tap header's and rebuild).
pub struct Analysis {
    sample_rate: f64,
    started: bool,
    history: SampleHistory,
    meters: Meters,
    spectrum: Spectrum,
    spectrum_peaks: PeakHold,
    waveforms: WaveformCache,
}

impl std::fmt::Debug for Analysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analysis")
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels())
            .field("frame", &self.frame())
            .finish_non_exhaustive()
    }
}

impl Analysis {
    /// Analysis of `channels` channels (0 counts as 1) at `sample_rate` Hz
    /// (non-finite or below 1 Hz counts as 48 kHz).
    pub fn new(sample_rate: f64, channels: usize) -> Analysis {
        let sample_rate = if sample_rate.is_finite() && sample_rate >= 1.0 { sample_rate } else { DEFAULT_SAMPLE_RATE };
        let channels = channels.max(1);
        let history_frames = (HISTORY_SECONDS * sample_rate).ceil() as usize;
        Analysis {
            sample_rate,
            started: false,
            history: SampleHistory::new(channels, history_frames),
            meters: Meters::new(sample_rate, channels),
            spectrum: Spectrum::new(sample_rate),
            spectrum_peaks: PeakHold::new(
                sample_rate,
                SPECTRUM_PEAK_HOLD_SECONDS,
                SPECTRUM_PEAK_FALL_DB_PER_SECOND,
                FLOOR_DB,
            ),
            waveforms: WaveformCache::new(channels, WAVEFORM_MAX_COLUMNS),
        }
    }

    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    pub fn channels(&self) -> usize {
        self.history.channels()
    }

    /// Feeds one block of interleaved frames whose first frame is the
    /// engine's frame `first_frame`.
    ///
    /// The first block sets the stream's start (earlier frames read as
    /// silence). After that: a gap (a dropped tap block) is silence, costing
    /// at most one history length however long; frames already seen (an old or
    /// overlapping block) are ignored, only the new part of a block is used.
    /// A stream whose frame numbers restarted must call [`Analysis::reset`],
    /// or it is ignored until it passes the old frame numbers. Frame numbers
    /// from 2^62 on (centuries of audio: a corrupt header) are ignored.
    pub fn push(&mut self, first_frame: u64, interleaved: &[f32]) {
        let channels = self.channels();
        let frames = (interleaved.len() / channels) as u64;
        if frames == 0 || first_frame >= MAX_FRAME {
            return;
        }
        if !self.started {
            self.history.restart_at(first_frame);
            self.meters.restart_at(first_frame);
            self.started = true;
        }
        let newest = self.history.newest();
        if first_frame.saturating_add(frames) <= newest {
            return;
        }
        let already_seen = newest.saturating_sub(first_frame) as usize;
        let new_part = &interleaved[already_seen * channels..frames as usize * channels];
        let gap = first_frame.saturating_sub(newest);
        if gap > 0 {
            self.history.push_silence(gap);
            self.meters.push_silence(gap);
        }
        self.history.push_interleaved(new_part);
        self.meters.push_interleaved(new_part);
    }

    /// Records the engine's DSP load for its last block: process time over
    /// block time (0..1; above 1 it fell behind).
    pub fn push_dsp_load(&mut self, load: f32) {
        self.meters.push_dsp_load(load);
    }

    /// Forgets the stream: the next push starts afresh at its frame number
    /// (for a restarted engine whose frame numbers went back to 0).
    pub fn reset(&mut self) {
        self.started = false;
        self.history.restart_at(0);
        self.meters.restart_at(0);
        self.spectrum_peaks.reset(FLOOR_DB, 0);
    }

    /// The frame after the newest pushed: "now" for every view.
    pub fn frame(&self) -> u64 {
        self.history.newest()
    }

    pub fn history(&self) -> &SampleHistory {
        &self.history
    }

    pub fn meters(&self) -> &Meters {
        &self.meters
    }

    /// The spectrum as of the last [`Analysis::update_spectrum`].
    pub fn spectrum(&self) -> &Spectrum {
        &self.spectrum
    }

    /// For [`Spectrum::set_channel`].
    pub fn spectrum_mut(&mut self) -> &mut Spectrum {
        &mut self.spectrum
    }

    /// Where the scope window goes now (see [`scope_window`]); `source` is
    /// the trigger's signal, `None` the mean of the channels.
    pub fn scope_window(&self, source: Option<usize>, span: ScopeSpan) -> ScopeWindow {
        scope_window(&self.history, source, span, self.sample_rate)
    }

    /// The newest `len_frames` (left, right) pairs (see [`xy_points`]).
    pub fn xy_points(&self, len_frames: usize, out: &mut Vec<[f32; 2]>) {
        xy_points(&self.history, len_frames, out);
    }

    /// Channel `ch`'s waveform columns for the last `span_frames` frames (see
    /// [`WaveformCache::wave_columns`]).
    pub fn wave_columns(&mut self, ch: usize, span_frames: u64, columns: usize, out: &mut WaveColumns) {
        self.waveforms.wave_columns(&self.history, ch, span_frames, columns, out);
    }

    /// Analyses the newest [`FFT_SIZE`] frames (call once per drawn frame,
    /// before [`Analysis::spectrum_columns`]).
    pub fn update_spectrum(&mut self) {
        self.spectrum.update(&self.history, self.history.newest());
    }

    /// The spectrum's columns into `out` (see [`Spectrum::columns`]) and
    /// returns their peak-hold line: each column's maximum held for 1 s, then
    /// falling at 20 dB/s, timed by the frame of the last
    /// [`Analysis::update_spectrum`]. Changing the column count restarts the
    /// peak line.
    pub fn spectrum_columns(&mut self, columns: usize, f_lo: f32, f_hi: f32, out: &mut Vec<f32>) -> &[f32] {
        self.spectrum.columns(columns, f_lo, f_hi, out);
        self.spectrum_peaks.update(out, self.spectrum.frame());
        self.spectrum_peaks.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::f64::consts::TAU;

    /// Counts this thread's allocations, to prove the steady state allocates nothing.
    struct CountingAllocator;

    thread_local! {
        static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    }

    fn count_allocation() {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }

    // SAFETY: forwards to the system allocator; only counts on the side.
    unsafe impl GlobalAlloc for CountingAllocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count_allocation();
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count_allocation();
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count_allocation();
            unsafe { System.realloc(ptr, layout, new_size) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: CountingAllocator = CountingAllocator;

    fn allocations() -> usize {
        ALLOCATIONS.with(Cell::get)
    }

    const SR: f64 = 48_000.0;

    /// Interleaved stereo: a 440 Hz sine left, 0.5 x a 660 Hz sine right.
    fn stereo(first_frame: u64, frames: u64) -> Vec<f32> {
        (first_frame..first_frame + frames)
            .flat_map(|f| {
                let t = f as f64 / SR;
                [(TAU * 440.0 * t).sin() as f32 * 0.9, (TAU * 660.0 * t).sin() as f32 * 0.5]
            })
            .collect()
    }

    #[test]
    fn frames_gaps_and_overlaps() {
        let mut a = Analysis::new(SR, 2);
        assert_eq!(a.frame(), 0);
        a.push(1000, &[0.5, -0.5, 0.25, -0.25]);
        assert_eq!(a.frame(), 1002);
        assert_eq!(a.history().oldest(), 1000);
        // Overlapping: frames 1001 (seen) and 1002 (new).
        a.push(1001, &[9.0, 9.0, 0.75, -0.75]);
        assert_eq!(a.frame(), 1003);
        assert_eq!(a.history().get(0, 1001), 0.25);
        assert_eq!(a.history().get(1, 1002), -0.75);
        // Entirely old: ignored.
        a.push(10, &[9.0; 20]);
        assert_eq!(a.frame(), 1003);
        // A gap of 5 frames reads as silence.
        a.push(1008, &[0.1, 0.2]);
        assert_eq!(a.frame(), 1009);
        let mut left = [1.0; 7];
        a.history().copy_range(0, 1002, &mut left);
        assert_eq!(left, [0.75, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1]);
        // Empty blocks and a trailing partial frame.
        a.push(2000, &[]);
        a.push(1009, &[0.3, 0.4, 0.5]);
        assert_eq!(a.frame(), 1010);
        assert_eq!(a.history().get(1, 1009), 0.4);
        // A huge gap costs one history length and leaves silence.
        a.push(1 << 40, &[0.6, 0.7]);
        assert_eq!(a.frame(), (1 << 40) + 1);
        assert_eq!(a.history().get(0, 1 << 40), 0.6);
        assert_eq!(a.history().get(0, (1 << 40) - 1), 0.0);
        assert!((a.meters().rms(0) - (0.36f32 / 14_400.0).sqrt()).abs() < 1e-7);
        a.push(u64::MAX - 1, &[0.9, 0.9]);
        assert_eq!(a.frame(), (1 << 40) + 1);
        // After a reset the stream may start over at 0.
        a.reset();
        a.push(0, &[0.2, 0.2]);
        assert_eq!(a.frame(), 1);
        assert_eq!(a.history().get(0, 0), 0.2);
    }

    #[test]
    fn results_do_not_depend_on_block_sizes() {
        let mut whole = Analysis::new(SR, 2);
        whole.push(500, &stereo(500, 60_000));
        let mut pieces = Analysis::new(SR, 2);
        let mut f = 500;
        for (i, size) in [1u64, 127, 128, 1024, 3, 511].iter().cycle().enumerate() {
            let size = (*size).min(60_500 - f);
            pieces.push(f, &stereo(f, size));
            f += size;
            if f == 60_500 {
                break;
            }
            if i % 7 == 0 {
                // Views computed in between must not change the final results.
                let mut cols = WaveColumns::default();
                pieces.wave_columns(0, 96_000, 1000, &mut cols);
            }
        }
        assert_eq!(whole.frame(), pieces.frame());
        for ch in 0..2 {
            assert_eq!(whole.meters().rms(ch), pieces.meters().rms(ch));
            assert_eq!(whole.meters().peak_db(ch), pieces.meters().peak_db(ch));
        }
        let span = ScopeSpan::Cycles(2.0);
        assert_eq!(whole.scope_window(None, span), pieces.scope_window(None, span));
        let (mut a, mut b) = (WaveColumns::default(), WaveColumns::default());
        whole.wave_columns(0, 96_000, 1000, &mut a);
        pieces.wave_columns(0, 96_000, 1000, &mut b);
        assert_eq!(a, b);
        whole.update_spectrum();
        pieces.update_spectrum();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let peaks_a = whole.spectrum_columns(500, 20.0, 20_000.0, &mut a).to_vec();
        let peaks_b = pieces.spectrum_columns(500, 20.0, 20_000.0, &mut b).to_vec();
        assert_eq!(a, b);
        assert_eq!(peaks_a, peaks_b);
    }

    #[test]
    fn steady_state_pushes_and_views_do_not_allocate() {
        let mut a = Analysis::new(SR, 2);
        let blocks: Vec<Vec<f32>> = (0..200).map(|i| stereo(i * 256, 256)).collect();
        let mut scope_points = Vec::with_capacity(a.history().capacity());
        let mut wave = WaveColumns::default();
        let mut spectrum = Vec::new();
        let mut frame_views = |a: &mut Analysis| {
            let w = a.scope_window(None, ScopeSpan::Cycles(2.0));
            assert!(w.start.is_finite());
            a.xy_points(2048, &mut scope_points);
            for ch in 0..2 {
                a.wave_columns(ch, 96_000, 1500, &mut wave);
            }
            a.update_spectrum();
            let peaks = a.spectrum_columns(800, 20.0, 20_000.0, &mut spectrum);
            assert_eq!(peaks.len(), 800);
        };
        // Warm-up: the first pushes and one round of views.
        for (i, block) in blocks[..10].iter().enumerate() {
            a.push(i as u64 * 256, block);
        }
        frame_views(&mut a);
        let before = allocations();
        for (i, block) in blocks.iter().enumerate().skip(10) {
            a.push(i as u64 * 256, block);
            a.push_dsp_load(0.3);
            if i % 3 == 0 {
                frame_views(&mut a);
            }
        }
        a.push(1 << 30, &blocks[0]); // a gap
        frame_views(&mut a);
        assert_eq!(allocations() - before, 0);
    }

    #[test]
    fn odd_construction_is_sane() {
        let a = Analysis::new(f64::NAN, 0);
        assert_eq!(a.sample_rate(), 48_000.0);
        assert_eq!(a.channels(), 1);
        let b = Analysis::new(192_000.0, 8);
        assert!(b.history().capacity() as f64 >= 2.5 * 192_000.0);
        assert_eq!(b.channels(), 8);
    }
}
