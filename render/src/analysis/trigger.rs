//! The oscilloscope trigger: where the scope window starts so a periodic
//! signal stands still.
//!
//! The window starts at a rising zero crossing, interpolated between samples
//! so the picture does not jitter by a sample from frame to frame, and chosen
//! as the most recent one that still lets the whole window end before the
//! newest sample. Crossings need hysteresis (the signal must have dipped below
//! -h before and must reach +h after, h = 1% of the recent peak) so noise and
//! small wiggles around zero do not count as crossings.

use super::history::SampleHistory;

/// How long the scope window is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScopeSpan {
    /// This many periods of the signal (estimated from its crossings).
    Cycles(f32),
    /// A fixed duration.
    Seconds(f32),
}

/// The frames the scope shows: `start..start + len`, fractional frame
/// positions on the engine's frame axis (sample with
/// [`SampleHistory::interpolate`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScopeWindow {
    pub start: f64,
    pub len: f64,
    /// Whether `start` is a trigger point; `false` means the window simply
    /// ends at the newest frame (free-running: silence, DC, no crossings).
    pub triggered: bool,
    /// The signal's period in frames, when its crossings are regular.
    pub period: Option<f64>,
}

/// h as a fraction of the recent peak.
pub const HYSTERESIS_FRACTION: f32 = 0.01;
/// A recent peak below this (-100 dBFS) is silence: free-running.
pub const SILENCE_PEAK: f32 = 1e-5;
/// The window for `Cycles` when the period is unknown.
pub const FALLBACK_WINDOW_SECONDS: f64 = 0.02;
/// How far back the peak and the period are measured, and how far before the
/// window's latest possible start a crossing is looked for.
pub const SEARCH_SECONDS: f64 = 0.5;
/// Crossings the period is estimated from (16 intervals).
const PERIOD_CROSSINGS: usize = 17;
/// Crossing patterns up to this many crossings per period are recognised.
const MAX_CROSSINGS_PER_PERIOD: usize = 3;
/// An interval agrees with the period estimate if it is within this fraction
/// of a whole number of periods.
const PERIOD_TOLERANCE: f64 = 0.02;

/// Where the scope window of `span` goes in `history`, triggered on `source`
/// (`Some(ch)` a channel, `None` the mean of all channels).
///
/// Deterministic: a function of the history's contents only. Costs a scan of
/// the newest [`SEARCH_SECONDS`] (for the peak) plus the crossings it visits;
/// never allocates. A non-finite or non-positive `sample_rate` counts as
/// 48 kHz; a span that is not positive and finite gives a one-frame window; a
/// window longer than the stored history is free-running.
pub fn scope_window(history: &SampleHistory, source: Option<usize>, span: ScopeSpan, sample_rate: f64) -> ScopeWindow {
    let sample_rate = if sample_rate.is_finite() && sample_rate > 0.0 { sample_rate } else { 48_000.0 };
    let fallback_len = FALLBACK_WINDOW_SECONDS * sample_rate;
    let (newest, oldest) = (history.newest(), history.oldest());
    let search = (newest - oldest).min((SEARCH_SECONDS * sample_rate).ceil() as u64);
    let window_len = |period: Option<f64>| {
        let len = match span {
            ScopeSpan::Seconds(s) => f64::from(s) * sample_rate,
            ScopeSpan::Cycles(n) => period.map_or(fallback_len, |p| f64::from(n) * p),
        };
        if len.is_finite() && len >= 1.0 {
            len.min(history.capacity() as f64)
        } else {
            1.0
        }
    };
    let free_running = |period: Option<f64>| {
        let len = window_len(period);
        ScopeWindow { start: newest as f64 - len, len, triggered: false, period }
    };

    if search < 2 {
        return free_running(None);
    }
    let peak = (newest - search..newest).map(|f| history.get_source(source, f).abs()).fold(0.0, f32::max);
    if peak < SILENCE_PEAK {
        return free_running(None);
    }
    let scan = CrossingScan { history, source, h: HYSTERESIS_FRACTION * peak, oldest, newest, max_distance: search };

    let mut recent = [Crossing::default(); PERIOD_CROSSINGS];
    let mut found = 0;
    let mut last_index = newest;
    while found < PERIOD_CROSSINGS {
        let Some(c) = scan.latest(newest as f64, last_index, newest - search) else { break };
        recent[found] = c;
        found += 1;
        last_index = c.index - 1; // strictly earlier sample pairs
    }
    let estimate = estimate_period(&recent[..found]);
    let period = estimate.map(|e| e.period);
    let len = window_len(period);
    let limit = newest as f64 - len;
    if limit < oldest as f64 {
        return free_running(period);
    }
    let floor = (limit as u64).saturating_sub(search).max(oldest);

    // With several crossings per period, keep to the same one (the steepest
    // of the newest period) by stepping whole periods back from it.
    let same_phase = estimate.filter(|e| e.crossings_per_period > 1).and_then(|e| {
        let reference =
            recent[..e.crossings_per_period].iter().fold(recent[0], |a, &b| if b.slope > a.slope { b } else { a });
        let periods_back = ((reference.position - limit) / e.period).ceil().max(0.0);
        let target = reference.position - periods_back * e.period;
        let tolerance = 0.05 * e.period;
        scan.latest((target + tolerance).min(limit), newest, floor).filter(|c| c.position >= target - tolerance)
    });
    match same_phase.or_else(|| scan.latest(limit, newest, floor)) {
        Some(c) => ScopeWindow { start: c.position, len, triggered: true, period },
        None => free_running(period),
    }
}

/// A confirmed rising crossing between samples `index - 1` and `index`.
#[derive(Debug, Clone, Copy, Default)]
struct Crossing {
    /// The interpolated zero, in `(index - 1, index]`.
    position: f64,
    index: u64,
    /// `s(index) - s(index - 1)`: how steep the edge is.
    slope: f32,
}

/// Finds rising crossings with hysteresis in one source of the history.
struct CrossingScan<'a> {
    history: &'a SampleHistory,
    source: Option<usize>,
    h: f32,
    oldest: u64,
    newest: u64,
    /// How far the confirmation scans may look from a candidate.
    max_distance: u64,
}

impl CrossingScan<'_> {
    fn sample(&self, frame: u64) -> f32 {
        self.history.get_source(self.source, frame)
    }

    /// The latest confirmed crossing with position <= `limit` between the
    /// sample pairs (`floor`, `floor + 1`) and (`last_index - 1`, `last_index`).
    fn latest(&self, limit: f64, last_index: u64, floor: u64) -> Option<Crossing> {
        if limit.is_nan() || limit < 0.0 {
            return None;
        }
        let first_index = ((limit.floor() as u64).saturating_add(1)).min(last_index).min(self.newest.saturating_sub(1));
        let lowest_index = floor.max(self.oldest) + 1;
        let mut index = first_index;
        let mut after = self.sample(index);
        while index >= lowest_index {
            let before = self.sample(index - 1);
            if before < 0.0 && after >= 0.0 {
                let position = (index - 1) as f64 + f64::from(before / (before - after));
                if position <= limit && self.rises_to_h(index) && self.dipped_below_h(index - 1) {
                    return Some(Crossing { position, index, slope: after - before });
                }
            }
            after = before;
            index -= 1;
        }
        None
    }

    /// Forward from `index`: reaches +h before going below zero again (so
    /// this is the last upward crossing of the edge, not a wiggle).
    fn rises_to_h(&self, index: u64) -> bool {
        let end = self.newest.min(index.saturating_add(self.max_distance));
        for f in index..end {
            let x = self.sample(f);
            if x >= self.h {
                return true;
            }
            if x < 0.0 {
                return false;
            }
        }
        false
    }

    /// Backward from `index`: was below -h before it was last above +h (so
    /// the signal really went negative since the previous rising edge).
    fn dipped_below_h(&self, index: u64) -> bool {
        let end = self.oldest.max(index.saturating_sub(self.max_distance));
        for f in (end..=index).rev() {
            let x = self.sample(f);
            if x <= -self.h {
                return true;
            }
            if x >= self.h {
                return false;
            }
        }
        false
    }
}

#[derive(Debug, Clone, Copy)]
struct PeriodEstimate {
    period: f64,
    crossings_per_period: usize,
}

/// The period from crossings (newest first). Intervals between crossings
/// `lag` apart should all be whole multiples of one period: multiples other
/// than 1 are missing crossings (a half-wave that stayed inside the
/// hysteresis), tolerated if at least 80% of the intervals agree. Lag 1 is
/// tried first; lags 2 and 3 recognise waveforms with 2 or 3 rising
/// crossings per period. The period is total time over total periods of the
/// agreeing intervals: an average, not one interval.
fn estimate_period(crossings: &[Crossing]) -> Option<PeriodEstimate> {
    for lag in 1..=MAX_CROSSINGS_PER_PERIOD {
        let count = crossings.len().saturating_sub(lag);
        if count < 3 {
            return None;
        }
        let mut intervals = [0.0f64; PERIOD_CROSSINGS];
        for (interval, (newer, older)) in intervals.iter_mut().zip(crossings.iter().zip(&crossings[lag..])) {
            *interval = newer.position - older.position;
        }
        let mut sorted = intervals;
        sorted[..count].sort_unstable_by(f64::total_cmp);
        let median = sorted[count / 2];
        if median.is_nan() || median <= 0.0 {
            continue;
        }
        let (mut time, mut periods, mut agreeing) = (0.0, 0.0, 0);
        for &d in &intervals[..count] {
            let k = (d / median).round();
            if k >= 1.0 && (d - k * median).abs() <= PERIOD_TOLERANCE * k * median {
                time += d;
                periods += k;
                agreeing += 1;
            }
        }
        if agreeing * 5 >= count * 4 {
            return Some(PeriodEstimate { period: time / periods, crossings_per_period: lag });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::TAU;

    const SR: f64 = 48_000.0;

    fn history_of(signal: &dyn Fn(f64) -> f64, frames: u64) -> SampleHistory {
        let mut h = SampleHistory::new(1, 0);
        let block: Vec<f32> = (0..frames).map(|f| signal(f as f64) as f32).collect();
        h.push_interleaved(&block);
        h
    }

    /// Deterministic noise in -1..1 for frame `f`.
    fn noise(f: f64) -> f64 {
        let x = (f as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    #[test]
    fn sines_trigger_at_a_rising_zero_with_the_right_period() {
        for freq in [100.0, 440.0, 1000.0, 55.0, 1234.5] {
            let signal = move |f: f64| 0.8 * (TAU * freq * f / SR).sin();
            let h = history_of(&signal, 48_000 + 123);
            let w = scope_window(&h, None, ScopeSpan::Cycles(2.0), SR);
            let true_period = SR / freq;
            assert!(w.triggered, "{freq} Hz");
            let period = w.period.unwrap_or(0.0);
            assert!((period / true_period - 1.0).abs() < 1e-3, "{freq} Hz: period {period} vs {true_period}");
            assert!(signal(w.start).abs() < 1e-3, "{freq} Hz: s(start) = {}", signal(w.start));
            assert!(signal(w.start + 0.5) > signal(w.start), "{freq} Hz: not rising");
            assert!((w.len - 2.0 * period).abs() < 1e-9);
            assert!(w.start + w.len <= h.newest() as f64);
            // The most recent that fits: one period later would not.
            assert!(w.start + period * 1.01 + w.len > h.newest() as f64, "{freq} Hz: not the latest");
        }
    }

    #[test]
    fn a_periodic_signal_stands_still_between_times() {
        let signal = |f: f64| 0.5 * (TAU * 100.0 * f / SR).sin();
        for span in [ScopeSpan::Cycles(3.0), ScopeSpan::Seconds(0.05)] {
            let at_1_s = scope_window(&history_of(&signal, 48_000), None, span, SR);
            let at_1_5_s = scope_window(&history_of(&signal, 72_000 + 7), None, span, SR);
            assert!(at_1_s.triggered && at_1_5_s.triggered);
            for k in [0.0, 13.0, 100.5, 250.0, 479.0] {
                let (a, b) = (signal(at_1_s.start + k), signal(at_1_5_s.start + k));
                assert!((a - b).abs() < 1e-3, "{span:?}, k = {k}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn seconds_span_sets_the_length_and_fits_before_newest() {
        let signal = |f: f64| (TAU * 440.0 * f / SR).sin();
        let h = history_of(&signal, 96_000);
        let w = scope_window(&h, Some(0), ScopeSpan::Seconds(0.5), SR);
        assert!(w.triggered);
        assert_eq!(w.len, 24_000.0);
        assert!(w.start + w.len <= 96_000.0 && w.start + w.len > 96_000.0 - SR / 440.0 - 1.0);
        assert!(signal(w.start).abs() < 1e-3);
    }

    #[test]
    fn silence_dc_and_a_ramp_without_crossings_free_run() {
        for signal in [&(|_: f64| 0.0) as &dyn Fn(f64) -> f64, &|_| 0.3, &|f| 0.1 + f * 1e-5] {
            let h = history_of(signal, 48_000);
            let w = scope_window(&h, None, ScopeSpan::Cycles(2.0), SR);
            assert!(!w.triggered);
            assert_eq!(w.period, None);
            assert_eq!(w.len, 960.0); // the 20 ms fallback
            assert_eq!(w.start, 48_000.0 - 960.0);
        }
        let empty = SampleHistory::new(2, 0);
        let w = scope_window(&empty, None, ScopeSpan::Seconds(0.5), SR);
        assert!(!w.triggered);
        assert_eq!((w.start, w.len), (-24_000.0, 24_000.0));
    }

    #[test]
    fn dc_offset_and_noise_still_trigger_stably() {
        let freq = 440.0;
        let signal = move |f: f64| 0.5 * (TAU * freq * f / SR).sin() + 0.1 + 0.02 * noise(f);
        let phase_of = |start: f64| (freq * start / SR).fract();
        let mut phases = Vec::new();
        for frames in [48_000u64, 50_001, 60_000, 72_000 + 333] {
            let w = scope_window(&history_of(&signal, frames), None, ScopeSpan::Cycles(4.0), SR);
            assert!(w.triggered);
            let period = w.period.unwrap_or(0.0);
            assert!((period * freq / SR - 1.0).abs() < 5e-3, "period {period}");
            phases.push(phase_of(w.start));
        }
        // The rising zero of 0.5 sin + 0.1 is at phase -asin(0.2) / 2 pi: 0.968 of a period.
        for p in &phases {
            assert!((p - 0.968).abs() < 0.02, "phases {phases:?}");
        }
    }

    #[test]
    fn one_missing_crossing_does_not_spoil_the_period() {
        // 200 Hz, but one negative half-wave (around frame 45 000) stays inside the hysteresis.
        let period = 240.0;
        let signal = move |f: f64| {
            let s = (TAU * f / period).sin();
            if s < 0.0 && (f / period).floor() as u64 == 187 {
                s * 0.001
            } else {
                s
            }
        };
        let h = history_of(&signal, 48_000);
        let w = scope_window(&h, None, ScopeSpan::Cycles(1.0), SR);
        assert!(w.triggered);
        assert!((w.period.unwrap_or(0.0) / period - 1.0).abs() < 1e-3, "{:?}", w.period);
    }

    #[test]
    fn two_rising_crossings_per_period_keep_the_same_phase() {
        // A fundamental plus a strong second harmonic crosses zero upward twice per period.
        let freq = 110.0;
        let signal = move |f: f64| {
            let t = TAU * freq * f / SR;
            0.4 * t.sin() + 0.5 * (2.0 * t + 2.0).sin()
        };
        let mut phases = Vec::new();
        for frames in [48_000u64, 48_200, 48_300, 49_000, 60_011] {
            let w = scope_window(&history_of(&signal, frames), None, ScopeSpan::Cycles(2.0), SR);
            assert!(w.triggered);
            assert!((w.period.unwrap_or(0.0) * freq / SR - 1.0).abs() < 1e-3, "{:?}", w.period);
            phases.push((freq * w.start / SR).fract());
        }
        assert!(phases.iter().all(|p| (p - phases[0]).abs() < 1e-4), "{phases:?}");
    }

    #[test]
    fn odd_spans_and_rates_do_not_panic() {
        let signal = |f: f64| (TAU * 100.0 * f / SR).sin();
        let h = history_of(&signal, 10_000);
        for span in [ScopeSpan::Cycles(0.0), ScopeSpan::Seconds(-1.0), ScopeSpan::Seconds(f32::NAN)] {
            assert_eq!(scope_window(&h, None, span, SR).len, 1.0);
        }
        let long = scope_window(&h, None, ScopeSpan::Seconds(100.0), f64::NAN);
        assert!(!long.triggered);
        assert_eq!(long.len, h.capacity() as f64);
        assert!(!scope_window(&h, Some(5), ScopeSpan::Cycles(1.0), SR).triggered);
    }
}
