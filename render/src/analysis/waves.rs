//! The scrolling waveform panel: per screen column, the min and max of the
//! samples that fall in it.
//!
//! Columns are buckets of absolute frame numbers (bucket = floor(frame /
//! frames_per_column)), not of "the last N frames": the same sample always
//! lands in the same bucket, so the picture scrolls without shimmering.
//! Completed buckets never change (the history only grows), so they are cached
//! in a ring keyed by bucket index and each call scans only the samples that
//! arrived since the last call plus the partial newest bucket: drawing a 2 s
//! span at 60 fps costs about 800 samples a frame at 48 kHz, not 96 000.

use super::history::SampleHistory;

/// One channel's columns, oldest (left) first. Zoomed out each column is the
/// min/max envelope of its samples; zoomed in (fewer than 2 samples per
/// column) `min == max ==` the signal interpolated at the column's centre,
/// so the view draws a line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaveColumns {
    pub min: Vec<f32>,
    pub max: Vec<f32>,
}

/// Below this many frames per column the columns are interpolated samples
/// rather than min/max envelopes.
pub const MIN_FRAMES_PER_ENVELOPE: u64 = 2;

/// The bucket caches of every channel.
///
/// Allocates in `new` (rings for up to `max_columns` columns) and, once, when
/// asked for more columns than that or when `out` is smaller than `columns`
/// (warm-up); otherwise never.
#[derive(Debug, Clone)]
pub struct WaveformCache {
    channels: Vec<BucketRing>,
}

impl WaveformCache {
    /// Caches for `channels` channels, sized for up to `max_columns` columns.
    pub fn new(channels: usize, max_columns: usize) -> WaveformCache {
        WaveformCache { channels: (0..channels.max(1)).map(|_| BucketRing::new(max_columns)).collect() }
    }

    /// Fills `out` (resized to `columns`) with channel `ch`'s last `span_frames`
    /// frames ending at `history.newest()`, in `columns` buckets of
    /// `span_frames / columns` frames (a rational number: buckets differ by at
    /// most one frame). The newest column is the bucket holding the newest
    /// sample, however full; columns before the stream started read 0.
    ///
    /// `span_frames` is clamped to 1..=the history's capacity; a channel that
    /// does not exist reads 0; `columns == 0` empties `out`. Changing the span,
    /// the column count or restarting the history drops the channel's cache
    /// (the next call scans the whole span once).
    pub fn wave_columns(
        &mut self,
        history: &SampleHistory,
        ch: usize,
        span_frames: u64,
        columns: usize,
        out: &mut WaveColumns,
    ) {
        out.min.resize(columns, 0.0);
        out.max.resize(columns, 0.0);
        out.min.fill(0.0);
        out.max.fill(0.0);
        let newest = history.newest();
        let Some(ring) = self.channels.get_mut(ch) else { return };
        if columns == 0 || newest == 0 {
            return;
        }
        let grid = BucketGrid { span: span_frames.clamp(1, history.capacity() as u64), columns: columns as u64 };
        let newest_bucket = grid.bucket_of(newest - 1);
        // Column k shows bucket newest_bucket - (columns - 1 - k); buckets "before frame 0" stay 0.
        let first_column = (columns as u64 - 1).saturating_sub(newest_bucket) as usize;
        let first_bucket = newest_bucket + first_column as u64 + 1 - columns as u64;

        if grid.span < MIN_FRAMES_PER_ENVELOPE * grid.columns {
            for (k, bucket) in (first_column..columns).zip(first_bucket..) {
                let x = history.interpolate(Some(ch), grid.centre_of(bucket));
                out.min[k] = x;
                out.max[k] = x;
            }
            return;
        }

        ring.prepare(CacheKey { grid, generation: history.generation() }, columns);
        for (k, bucket) in (first_column..columns).zip(first_bucket..) {
            let (start, end) = (grid.start_of(bucket), grid.start_of(bucket + 1));
            let (min, max) = if end > newest {
                min_max(history, ch, start, newest) // the partial newest bucket: never cached
            } else {
                ring.get_or_compute(bucket, || min_max(history, ch, start, end))
            };
            out.min[k] = min;
            out.max[k] = max;
        }
    }
}

/// The min and max of channel `ch` over frames `start..end` (0.0 if empty).
fn min_max(history: &SampleHistory, ch: usize, start: u64, end: u64) -> (f32, f32) {
    if start >= end {
        return (0.0, 0.0);
    }
    (start..end)
        .map(|f| history.get(ch, f))
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)))
}

/// Buckets of `span / columns` frames on the absolute frame axis, exact in
/// integers: frame f is in bucket floor(f * columns / span).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BucketGrid {
    span: u64,
    columns: u64,
}

impl BucketGrid {
    fn bucket_of(&self, frame: u64) -> u64 {
        (u128::from(frame) * u128::from(self.columns) / u128::from(self.span)) as u64
    }

    /// First frame of `bucket`: ceil(bucket * span / columns).
    fn start_of(&self, bucket: u64) -> u64 {
        (u128::from(bucket) * u128::from(self.span)).div_ceil(u128::from(self.columns)) as u64
    }

    /// The (fractional) frame position at the middle of `bucket`.
    fn centre_of(&self, bucket: u64) -> f64 {
        (bucket as f64 + 0.5) * self.span as f64 / self.columns as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CacheKey {
    grid: BucketGrid,
    generation: u64,
}

/// Completed buckets' (min, max), slot = bucket index mod the ring length,
/// tagged with the bucket index so a stale slot is never mistaken for a hit.
#[derive(Debug, Clone)]
struct BucketRing {
    key: Option<CacheKey>,
    tags: Vec<u64>,
    values: Vec<(f32, f32)>,
}

const EMPTY_TAG: u64 = u64::MAX;

impl BucketRing {
    fn new(max_columns: usize) -> BucketRing {
        let len = (max_columns + 1).next_power_of_two();
        BucketRing { key: None, tags: vec![EMPTY_TAG; len], values: vec![(0.0, 0.0); len] }
    }

    /// Drops the cache if it was built for another grid or history, and makes
    /// room for `columns` buckets (the ring must be longer than the number of
    /// columns shown, or the newest buckets would evict the oldest shown).
    fn prepare(&mut self, key: CacheKey, columns: usize) {
        if self.tags.len() <= columns {
            *self = BucketRing::new(columns);
        }
        if self.key != Some(key) {
            self.tags.fill(EMPTY_TAG);
            self.key = Some(key);
        }
    }

    fn get_or_compute(&mut self, bucket: u64, compute: impl FnOnce() -> (f32, f32)) -> (f32, f32) {
        let slot = (bucket as usize) & (self.tags.len() - 1);
        if self.tags[slot] != bucket {
            self.values[slot] = compute();
            self.tags[slot] = bucket;
        }
        self.values[slot]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::TAU;

    const SR: f64 = 48_000.0;

    use crate::analysis::history::mono_history as history_of;

    /// A deterministic noise sample for frame `f` in -1..1.
    fn noise(f: u64) -> f32 {
        let x = f.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    #[test]
    fn sine_envelope_spans_the_amplitude_in_every_full_column() {
        let h = history_of(|f| (0.5 * (TAU * 1000.0 * f as f64 / SR).sin()) as f32, 2 * 48_000);
        let mut cache = WaveformCache::new(1, 2048);
        let mut out = WaveColumns::default();
        cache.wave_columns(&h, 0, 48_000, 1000, &mut out); // 48 frames = one period per column
        assert_eq!(out.min.len(), 1000);
        for k in 0..1000 {
            assert!((out.max[k] - 0.5).abs() < 1e-3, "column {k}: max {}", out.max[k]);
            assert!((out.min[k] + 0.5).abs() < 1e-3, "column {k}: min {}", out.min[k]);
        }
    }

    #[test]
    fn a_step_shows_in_the_column_of_its_frame() {
        let h = history_of(|f| if f >= 60_010 { 1.0 } else { 0.0 }, 96_000);
        let mut cache = WaveformCache::new(1, 2048);
        let mut out = WaveColumns::default();
        cache.wave_columns(&h, 0, 48_000, 1000, &mut out);
        // Columns show buckets 1000..=1999 of 48 frames; frame 60 010 is in bucket 1250.
        assert_eq!((out.min[249], out.max[249]), (0.0, 0.0));
        assert_eq!((out.min[250], out.max[250]), (0.0, 1.0));
        assert_eq!((out.min[251], out.max[251]), (1.0, 1.0));
    }

    #[test]
    fn scrolling_by_one_bucket_shifts_columns_by_one_with_identical_values() {
        let mut h = SampleHistory::new(1, 0);
        let block: Vec<f32> = (0..96_000).map(noise).collect();
        h.push_interleaved(&block);
        let mut cache = WaveformCache::new(1, 2048);
        let (mut before, mut after) = (WaveColumns::default(), WaveColumns::default());
        cache.wave_columns(&h, 0, 48_000, 1000, &mut before);
        let next: Vec<f32> = (96_000..96_048).map(noise).collect();
        h.push_interleaved(&next);
        cache.wave_columns(&h, 0, 48_000, 1000, &mut after);
        assert_eq!(after.min[..999], before.min[1..]);
        assert_eq!(after.max[..999], before.max[1..]);
        assert_ne!(after.max[999], before.max[999]);
    }

    #[test]
    fn cached_columns_match_a_cold_computation_with_uneven_pushes_and_spans() {
        let mut h = SampleHistory::new(1, 0);
        let mut warm = WaveformCache::new(1, 64);
        let mut out = WaveColumns::default();
        let mut f = 0u64;
        for step in [1u64, 7, 128, 1000, 333, 4096, 12, 48_000, 77] {
            let block: Vec<f32> = (f..f + step).map(noise).collect();
            h.push_interleaved(&block);
            f += step;
            for (span, columns) in [(96_000u64, 1500usize), (1_000, 7), (96_000, 1500)] {
                warm.wave_columns(&h, 0, span, columns, &mut out);
                let mut cold_out = WaveColumns::default();
                WaveformCache::new(1, 64).wave_columns(&h, 0, span, columns, &mut cold_out);
                assert_eq!(out, cold_out, "after {f} frames, span {span}, {columns} columns");
            }
        }
    }

    #[test]
    fn zoomed_in_columns_are_the_interpolated_signal() {
        let h = history_of(|f| f as f32 * 0.001, 1000);
        let mut cache = WaveformCache::new(1, 2048);
        let mut out = WaveColumns::default();
        cache.wave_columns(&h, 0, 100, 400, &mut out); // a quarter frame per column
        assert_eq!(out.min, out.max);
        // Column 399 is bucket floor(999 * 4) = 3996, centred on frame 999.125: clamped to the newest sample.
        assert!((out.max[399] - 0.999).abs() < 1e-6);
        // Column 0 is bucket 3597, centred on frame 899.375.
        assert!((out.max[0] - 0.899_375).abs() < 1e-6, "{}", out.max[0]);
    }

    #[test]
    fn odd_requests_do_not_panic() {
        let h = history_of(noise, 500);
        let mut cache = WaveformCache::new(1, 16);
        let mut out = WaveColumns::default();
        cache.wave_columns(&h, 0, 0, 10, &mut out);
        assert_eq!(out.min.len(), 10);
        cache.wave_columns(&h, 0, 48_000, 0, &mut out);
        assert!(out.min.is_empty());
        cache.wave_columns(&h, 3, 48_000, 5, &mut out);
        assert_eq!(out.max, vec![0.0; 5]);
        cache.wave_columns(&h, 0, u64::MAX, 3000, &mut out); // more columns than the ring: it grows
        assert_eq!(out.max.len(), 3000);
        let empty = SampleHistory::new(1, 0);
        cache.wave_columns(&empty, 0, 48_000, 4, &mut out);
        assert_eq!(out.max, vec![0.0; 4]);
    }
}
