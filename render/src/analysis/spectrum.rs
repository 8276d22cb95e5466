//! The spectrum analyser: a 4096-point FFT of the newest audio, read out on
//! a log-frequency axis in dBFS.
//!
//! Normalised so a sine of amplitude 1.0 reads 0 dB (the Hann window's
//! coherent gain, 0.5, is divided out) wherever it falls between bins: a
//! local maximum bin is raised by the Hann scalloping loss estimated from its
//! larger neighbour (exact for a lone sine, at most +1.42 dB), so a tone reads
//! its level instead of wobbling by up to 1.4 dB as its pitch moves.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use super::decibels::{db, FLOOR_DB};
use super::history::SampleHistory;

/// FFT length: 11.7 Hz bins and 85 ms of audio at 48 kHz.
pub const FFT_SIZE: usize = 4096;

/// The analyser. Allocates only in `new` (FFT plan, window, buffers);
/// [`Spectrum::update`] and [`Spectrum::columns`] (given an `out` with
/// capacity) never do.
pub struct Spectrum {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    input: Vec<f32>,
    output: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// Per bin (0..=FFT_SIZE/2), dBFS, local maxima corrected for scalloping.
    bins_db: Vec<f32>,
    /// Multiplies a bin's magnitude into sine amplitude: 2 / sum(window).
    amplitude_scale: f32,
    sample_rate: f64,
    channel: Option<usize>,
    frame: u64,
}

impl std::fmt::Debug for Spectrum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spectrum")
            .field("sample_rate", &self.sample_rate)
            .field("channel", &self.channel)
            .field("frame", &self.frame)
            .finish_non_exhaustive()
    }
}

impl Spectrum {
    /// An analyser for audio at `sample_rate`, of the channel mix until
    /// [`Spectrum::set_channel`] says otherwise. Reads -120 dB everywhere
    /// until the first update.
    pub fn new(sample_rate: f64) -> Spectrum {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FFT_SIZE);
        // Periodic Hann: its sum is exactly N/2, and it tiles (DFT-even).
        let window: Vec<f32> = (0..FFT_SIZE)
            .map(|i| (0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / FFT_SIZE as f64).cos()) as f32)
            .collect();
        let window_sum: f64 = window.iter().map(|&w| f64::from(w)).sum();
        Spectrum {
            input: fft.make_input_vec(),
            output: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            bins_db: vec![FLOOR_DB; FFT_SIZE / 2 + 1],
            amplitude_scale: (2.0 / window_sum) as f32,
            window,
            fft,
            sample_rate,
            channel: None,
            frame: 0,
        }
    }

    /// Which signal to analyse: `Some(ch)` one channel (a channel that does
    /// not exist reads as silence), `None` the mean of all channels.
    pub fn set_channel(&mut self, channel: Option<usize>) {
        self.channel = channel;
    }

    pub fn channel(&self) -> Option<usize> {
        self.channel
    }

    /// The frame the last update ended at (its `now_frame`).
    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// Hz between bins.
    pub fn bin_hz(&self) -> f64 {
        self.sample_rate / FFT_SIZE as f64
    }

    /// Per-bin magnitudes of the last update in dBFS (bin k at k * bin_hz()).
    pub fn bins_db(&self) -> &[f32] {
        &self.bins_db
    }

    /// Analyses the [`FFT_SIZE`] frames ending at `now_frame` (exclusive);
    /// frames the history does not hold, and non-finite samples, are silence.
    pub fn update(&mut self, history: &SampleHistory, now_frame: u64) {
        self.frame = now_frame;
        // Frames "before frame 0" are silence too: zero-pad the front.
        let missing = FFT_SIZE.saturating_sub(usize::try_from(now_frame).unwrap_or(usize::MAX));
        self.input[..missing].fill(0.0);
        history.copy_source_range(
            self.channel,
            now_frame.saturating_sub((FFT_SIZE - missing) as u64),
            &mut self.input[missing..],
        );
        for (x, &w) in self.input.iter_mut().zip(&self.window) {
            *x = if x.is_finite() { *x * w } else { 0.0 };
        }
        if self.fft.process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch).is_err() {
            // Only wrong buffer lengths fail, and ours come from the plan itself.
            self.bins_db.fill(FLOOR_DB);
            return;
        }
        let last = self.output.len() - 1;
        let magnitude = |k: usize, c: &Complex<f32>| {
            // DC and Nyquist have no negative-frequency twin: half the scale.
            let edge = if k == 0 || k == last { 0.5 } else { 1.0 };
            c.norm() * self.amplitude_scale * edge
        };
        for k in 0..=last {
            let here = magnitude(k, &self.output[k]);
            let corrected = if k == 0 || k == last {
                here
            } else {
                let below = magnitude(k - 1, &self.output[k - 1]);
                let above = magnitude(k + 1, &self.output[k + 1]);
                if here > below && here >= above {
                    here / hann_response(scalloping_offset(here, below.max(above)))
                } else {
                    here
                }
            };
            self.bins_db[k] = db(corrected);
        }
    }

    /// Replaces `out` with `columns` values in dBFS for a log-frequency axis
    /// from `f_lo` to `f_hi` Hz (clamped to the Nyquist frequency). Column c
    /// covers [freq_of_column(c), freq_of_column(c + 1)) and reads the largest
    /// bin in it; a column holding no bin (narrower than a bin, at the low
    /// end) reads the dB value interpolated between the bins around its
    /// centre frequency, so the low end is a smooth curve rather than steps,
    /// and a peak still reads its bin's level in the column holding it. Nonsensical ranges (f_lo <= 0,
    /// f_hi <= f_lo, NaN) read -120 everywhere.
    pub fn columns(&self, columns: usize, f_lo: f32, f_hi: f32, out: &mut Vec<f32>) {
        out.clear();
        let nyquist = (self.sample_rate / 2.0) as f32;
        let f_hi = f_hi.min(nyquist);
        if !is_valid_axis(f_lo, f_hi) {
            out.resize(columns, FLOOR_DB);
            return;
        }
        let bin_hz = self.bin_hz() as f32;
        let last_bin = self.bins_db.len() - 1;
        out.extend((0..columns).map(|c| {
            let lo = freq_of_column(c as f32, columns, f_lo, f_hi);
            let hi = freq_of_column(c as f32 + 1.0, columns, f_lo, f_hi);
            let first = ((lo / bin_hz).ceil() as usize).min(last_bin + 1);
            let end = ((hi / bin_hz).ceil() as usize).min(last_bin + 1);
            if first < end {
                self.bins_db[first..end].iter().copied().fold(FLOOR_DB, f32::max)
            } else {
                let centre = freq_of_column(c as f32 + 0.5, columns, f_lo, f_hi) / bin_hz;
                let k = (centre.floor() as usize).min(last_bin);
                let t = centre - k as f32;
                let (a, b) = (self.bins_db[k], self.bins_db[(k + 1).min(last_bin)]);
                a + (b - a) * t.clamp(0.0, 1.0)
            }
        }));
    }
}

/// The continuous column position of frequency `f` on a log axis of
/// `columns` columns from `f_lo` to `f_hi` (column c spans [c, c + 1));
/// for axis ticks. 0.0 for a degenerate axis or `f <= 0`.
pub fn column_of_freq(f: f32, columns: usize, f_lo: f32, f_hi: f32) -> f32 {
    if f.is_nan() || f <= 0.0 || !is_valid_axis(f_lo, f_hi) {
        return 0.0;
    }
    columns as f32 * (f / f_lo).ln() / (f_hi / f_lo).ln()
}

/// The inverse of [`column_of_freq`]: the frequency at continuous column
/// position `column` (`f_lo` for a degenerate axis).
pub fn freq_of_column(column: f32, columns: usize, f_lo: f32, f_hi: f32) -> f32 {
    if columns == 0 || !is_valid_axis(f_lo, f_hi) {
        return f_lo;
    }
    f_lo * (f_hi / f_lo).powf(column / columns as f32)
}

/// A log axis needs 0 < f_lo < f_hi (false for NaN).
fn is_valid_axis(f_lo: f32, f_hi: f32) -> bool {
    f_lo > 0.0 && f_hi > f_lo
}

/// How far (0..=0.5 bins) a lone sine lies from a bin whose magnitude is
/// `peak`, given its larger neighbour `neighbour`: for a Hann window the
/// ratio r = neighbour / peak is (1 + d) / (2 - d).
fn scalloping_offset(peak: f32, neighbour: f32) -> f32 {
    let r = (neighbour / peak).clamp(0.0, 1.0);
    ((2.0 * r - 1.0) / (r + 1.0)).clamp(0.0, 0.5)
}

/// The Hann window's response at `d` bins from a sine, relative to on-bin:
/// sinc(d) / (1 - d^2). Between 1.0 (d = 0) and 0.849 (d = 0.5).
fn hann_response(d: f32) -> f32 {
    if d < 1e-6 {
        return 1.0;
    }
    let x = std::f32::consts::PI * d;
    x.sin() / x / (1.0 - d * d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::TAU;

    const SR: f64 = 48_000.0;

    use crate::analysis::history::mono_history as history_of;

    fn sine(amplitude: f64, freq: f64) -> impl Fn(u64) -> f32 {
        move |f| (amplitude * (TAU * freq * f as f64 / SR).sin()) as f32
    }

    fn spectrum_of(h: &SampleHistory) -> Spectrum {
        let mut s = Spectrum::new(SR);
        s.update(h, h.newest());
        s
    }

    fn argmax(values: &[f32]) -> usize {
        (0..values.len()).fold(0, |best, i| if values[i] > values[best] { i } else { best })
    }

    #[test]
    fn full_scale_1_khz_peaks_at_0_db_in_its_column_and_far_columns_are_40_db_lower() {
        let s = spectrum_of(&history_of(sine(1.0, 1000.0), 10_000));
        let mut cols = Vec::new();
        s.columns(512, 20.0, 20_000.0, &mut cols);
        let expected = column_of_freq(1000.0, 512, 20.0, 20_000.0).floor() as usize;
        assert_eq!(argmax(&cols), expected);
        assert!(cols[expected].abs() < 0.5, "{}", cols[expected]);
        let (below, above) = (column_of_freq(500.0, 512, 20.0, 20_000.0), column_of_freq(2000.0, 512, 20.0, 20_000.0));
        for (c, &v) in cols.iter().enumerate() {
            if (c as f32) < below || c as f32 > above {
                assert!(v < cols[expected] - 40.0, "column {c}: {v} dB");
            }
        }
    }

    #[test]
    fn level_reads_right_between_bins_and_scales_with_amplitude() {
        // From on-bin (bin 85 = 996.1 Hz) to half a bin off, at 0.1 amplitude: -20 dB.
        for offset in [0.0, 0.17, 0.33, 0.5] {
            let freq = (85.0 + offset) * SR / FFT_SIZE as f64;
            let s = spectrum_of(&history_of(sine(0.1, freq), 8192));
            let mut cols = Vec::new();
            s.columns(256, 20.0, 20_000.0, &mut cols);
            let top = cols.iter().copied().fold(FLOOR_DB, f32::max);
            assert!((top - -20.0).abs() < 0.1, "offset {offset}: {top} dB");
        }
    }

    #[test]
    fn silence_and_non_finite_input_read_minus_120_everywhere() {
        for signal in [0.0, f32::NAN, f32::INFINITY] {
            let s = spectrum_of(&history_of(|_| signal, 8192));
            let mut cols = Vec::new();
            s.columns(300, 20.0, 20_000.0, &mut cols);
            assert!(cols.iter().all(|&v| v == FLOOR_DB), "{signal}: {cols:?}");
            assert!(s.bins_db().iter().all(|&v| v == FLOOR_DB));
        }
        // Before any audio (and before frame FFT_SIZE) the missing frames are silence.
        let mut s = Spectrum::new(SR);
        s.update(&SampleHistory::new(2, 0), 100);
        assert!(s.bins_db().iter().all(|&v| v == FLOOR_DB));
    }

    #[test]
    fn low_columns_narrower_than_a_bin_are_interpolated_not_stepped() {
        let s = spectrum_of(&history_of(sine(0.5, 60.0), 8192));
        let mut cols = Vec::new();
        s.columns(1000, 20.0, 20_000.0, &mut cols);
        // 20..40 Hz spans ~100 columns but under two bins: every step is small and the values vary.
        let low = &cols[..100];
        assert!(low.windows(2).all(|w| (w[1] - w[0]).abs() < 3.0), "{low:?}");
        assert!(low.windows(2).filter(|w| w[0] != w[1]).count() > 90);
    }

    #[test]
    fn channel_choice_and_mono_mix() {
        let mut h = SampleHistory::new(2, 0);
        let block: Vec<f32> = (0..8192u64).flat_map(|f| [sine(1.0, 1000.0)(f), 0.0]).collect();
        h.push_interleaved(&block);
        let mut s = Spectrum::new(SR);
        let mut cols = Vec::new();
        let top = |s: &Spectrum, cols: &mut Vec<f32>| {
            s.columns(256, 20.0, 20_000.0, cols);
            cols.iter().copied().fold(FLOOR_DB, f32::max)
        };
        s.update(&h, h.newest());
        assert!((top(&s, &mut cols) - -6.02).abs() < 0.1); // (L + R) / 2
        s.set_channel(Some(0));
        s.update(&h, h.newest());
        assert!(top(&s, &mut cols).abs() < 0.1);
        s.set_channel(Some(1));
        s.update(&h, h.newest());
        assert_eq!(top(&s, &mut cols), FLOOR_DB);
        s.set_channel(Some(9));
        s.update(&h, h.newest());
        assert_eq!(top(&s, &mut cols), FLOOR_DB);
    }

    #[test]
    fn axis_mapping_round_trips_and_odd_axes_do_not_panic() {
        assert!((column_of_freq(20.0, 600, 20.0, 20_000.0)).abs() < 1e-4);
        assert!((column_of_freq(20_000.0, 600, 20.0, 20_000.0) - 600.0).abs() < 1e-3);
        assert!((column_of_freq(632.455_5, 600, 20.0, 20_000.0) - 300.0).abs() < 1e-2);
        for f in [25.0, 440.0, 12_345.0] {
            let c = column_of_freq(f, 800, 20.0, 24_000.0);
            assert!((freq_of_column(c, 800, 20.0, 24_000.0) - f).abs() < f * 1e-4);
        }
        let s = Spectrum::new(SR);
        let mut cols = Vec::new();
        s.columns(0, 20.0, 20_000.0, &mut cols);
        assert!(cols.is_empty());
        s.columns(10, 0.0, 20_000.0, &mut cols);
        assert_eq!(cols, vec![FLOOR_DB; 10]);
        s.columns(10, 30_000.0, 40_000.0, &mut cols); // above Nyquist
        assert_eq!(cols, vec![FLOOR_DB; 10]);
        s.columns(10, 20.0, f32::NAN, &mut cols);
        assert_eq!(cols.len(), 10);
        assert_eq!(column_of_freq(-1.0, 10, 20.0, 20_000.0), 0.0);
    }
}
