//! Hold-then-fall peak markers (the spectrum's peak line, the meters' peak
//! value, the DSP load's held value).
//!
//! Driven by frame numbers, not the wall clock, so the offline renderer and
//! the live view show the same markers at the same audio time. Each value
//! remembers when it was set; its shown value is computed from that, so the
//! result does not depend on how often `update` is called.

/// A set of held values in any unit, falling linearly in that unit (use dB
/// for the spectrum and meters, a fraction for the DSP load).
///
/// Allocates in `new` and when `update` is given more values than ever before
/// (warm-up); otherwise never.
#[derive(Debug, Clone)]
pub struct PeakHold {
    fall: Fall,
    floor: f32,
    /// The value each marker was last raised to, and the frame it happened.
    held: Vec<(f32, u64)>,
    /// The markers as shown at `now`.
    shown: Vec<f32>,
    now: u64,
}

impl PeakHold {
    /// Markers that hold a maximum for `hold_seconds`, then fall by
    /// `fall_per_second` (in the values' unit) down to `floor`.
    pub fn new(sample_rate: f64, hold_seconds: f64, fall_per_second: f64, floor: f32) -> PeakHold {
        PeakHold {
            fall: Fall {
                hold_frames: (hold_seconds * sample_rate).max(0.0),
                fall_per_frame: (fall_per_second / sample_rate).max(0.0),
                floor,
            },
            floor,
            held: Vec::new(),
            shown: Vec::new(),
            now: 0,
        }
    }

    /// Feeds the current values at frame `now_frame`: a value at or above its
    /// marker raises it and restarts the hold. A different number of values
    /// than last time, or a frame earlier than last time (a restarted stream),
    /// starts the markers afresh from `values`. Non-finite values count as
    /// `floor`.
    pub fn update(&mut self, values: &[f32], now_frame: u64) {
        if values.len() != self.held.len() || now_frame < self.now {
            self.held.clear();
            let floor = self.floor;
            self.held.extend(values.iter().map(|&v| (sanitize(v, floor), now_frame)));
        } else {
            for (i, &v) in values.iter().enumerate() {
                let v = sanitize(v, self.floor);
                if v >= self.fall.value(self.held[i], now_frame) {
                    self.held[i] = (v, now_frame);
                }
            }
        }
        self.now = now_frame;
        self.refresh_shown();
    }

    /// Feeds one value into marker `index` (creating markers up to it), at
    /// `frame`; used for values that arrive one at a time, like the DSP load.
    pub fn update_one(&mut self, index: usize, value: f32, frame: u64) {
        if self.held.len() <= index {
            self.held.resize(index + 1, (self.floor, frame));
        }
        let v = sanitize(value, self.floor);
        let frame = frame.max(self.now);
        if v >= self.fall.value(self.held[index], frame) {
            self.held[index] = (v, frame);
        }
        self.advance_to(frame);
    }

    /// Sets every existing marker to `value` at `frame` (a restarted stream).
    pub fn reset(&mut self, value: f32, frame: u64) {
        let value = sanitize(value, self.floor);
        self.held.fill((value, frame));
        self.now = frame;
        self.refresh_shown();
    }

    /// Lets time pass without new values (markers keep falling).
    pub fn advance_to(&mut self, now_frame: u64) {
        self.now = self.now.max(now_frame);
        self.refresh_shown();
    }

    /// The markers at the last frame given.
    pub fn values(&self) -> &[f32] {
        &self.shown
    }

    /// Marker `index` at the last frame given (`floor` if it does not exist).
    pub fn value(&self, index: usize) -> f32 {
        self.shown.get(index).copied().unwrap_or(self.floor)
    }

    fn refresh_shown(&mut self) {
        if self.shown.len() != self.held.len() {
            self.shown.resize(self.held.len(), self.floor);
        }
        for (shown, &held) in self.shown.iter_mut().zip(&self.held) {
            *shown = self.fall.value(held, self.now);
        }
    }
}

/// Non-finite values count as `floor`, and nothing goes below it.
fn sanitize(v: f32, floor: f32) -> f32 {
    if v.is_finite() {
        v.max(floor)
    } else {
        floor
    }
}

/// How a marker falls: held for `hold_frames`, then down by `fall_per_frame`
/// per frame, never below `floor`.
#[derive(Debug, Clone, Copy)]
struct Fall {
    hold_frames: f64,
    fall_per_frame: f64,
    floor: f32,
}

impl Fall {
    /// A marker raised to `value` at frame `at`, seen at frame `now`.
    fn value(&self, (value, at): (f32, u64), now: u64) -> f32 {
        let falling_for = now.saturating_sub(at) as f64 - self.hold_frames;
        if falling_for <= 0.0 {
            return value;
        }
        ((value as f64 - falling_for * self.fall_per_frame) as f32).max(self.floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: f64 = 48_000.0;

    #[test]
    fn holds_for_the_hold_time_then_falls_at_the_rate() {
        let mut hold = PeakHold::new(SR, 1.0, 20.0, -120.0);
        hold.update(&[0.0, -60.0], 0);
        hold.update(&[-120.0, -120.0], 48_000); // exactly the end of the hold
        assert_eq!(hold.values(), &[0.0, -60.0]);
        hold.update(&[-120.0, -120.0], 72_000); // 0.5 s into the fall: -10 dB
        assert!((hold.value(0) - -10.0).abs() < 1e-4, "{}", hold.value(0));
        assert!((hold.value(1) - -70.0).abs() < 1e-4);
        hold.advance_to(48_000 * 10); // long after: at the floor, never below
        assert_eq!(hold.values(), &[-120.0, -120.0]);
    }

    #[test]
    fn a_higher_value_restarts_the_hold_and_cadence_does_not_matter() {
        let mut coarse = PeakHold::new(SR, 1.0, 20.0, -120.0);
        let mut fine = coarse.clone();
        coarse.update(&[-6.0], 0);
        fine.update(&[-6.0], 0);
        for k in 1..=200u64 {
            fine.update(&[-90.0], k * 480);
        }
        coarse.update(&[-90.0], 96_000);
        assert_eq!(coarse.values(), fine.values());
        assert!((coarse.value(0) - -26.0).abs() < 1e-4);
        coarse.update(&[-20.0], 96_001);
        assert_eq!(coarse.value(0), -20.0);
        coarse.advance_to(96_001 + 48_000);
        assert_eq!(coarse.value(0), -20.0);
    }

    #[test]
    fn non_finite_values_and_restarts_are_handled() {
        let mut hold = PeakHold::new(SR, 1.0, 20.0, -120.0);
        hold.update(&[f32::NAN, f32::NEG_INFINITY, 3.0], 1000);
        assert_eq!(hold.values(), &[-120.0, -120.0, 3.0]);
        hold.update(&[-50.0], 10); // fewer values, earlier frame: start afresh
        assert_eq!(hold.values(), &[-50.0]);
        hold.update_one(2, 0.5, 20);
        assert_eq!(hold.values(), &[-50.0, -120.0, 0.5]);
        assert_eq!(hold.value(7), -120.0);
    }
}
