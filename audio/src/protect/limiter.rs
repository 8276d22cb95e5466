//! A stereo-linked peak limiter with instant attack and exponential release.
//!
//! The gain for each frame is min(released gain, ceiling / peak), so the
//! output can never exceed the ceiling, with no lookahead (no latency added to
//! a live instrument). Transients above the ceiling are scaled on the sample
//! they arrive; the gain then recovers over ~`RELEASE_S`, which avoids the
//! buzzing of hard clipping on sustained overs.

const RELEASE_S: f64 = 0.08;

pub struct Limiter {
    ceiling: f32,
    gain: f32,
    release: f32,
}

impl Limiter {
    pub fn new(sample_rate: f64, ceiling: f32) -> Limiter {
        Limiter { ceiling, gain: 1.0, release: (1.0 - (-1.0 / (RELEASE_S * sample_rate)).exp()) as f32 }
    }

    /// Limits one frame (all channels together) in place.
    #[inline]
    pub fn process(&mut self, frame: &mut [f32]) {
        let peak = frame.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let released = self.gain + (1.0 - self.gain) * self.release;
        let wanted = if peak > self.ceiling { self.ceiling / peak } else { 1.0 };
        self.gain = released.min(wanted);
        for x in frame.iter_mut() {
            // The clamp only guards against rounding in `ceiling / peak * x`.
            *x = (*x * self.gain).clamp(-self.ceiling, self.ceiling);
        }
    }

    /// Current gain (1.0 = not limiting).
    pub fn gain(&self) -> f32 {
        self.gain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loud_sine_is_held_under_the_ceiling_without_clipping_its_shape() {
        let mut l = Limiter::new(48000.0, 0.98);
        let mut max = 0.0f32;
        let (mut flat, mut clipped_flat) = (0, 0);
        for n in 0..48000 {
            if n > 4800 && (2.0 * (n as f32 * 0.03).sin()).clamp(-0.98, 0.98).abs() >= 0.979 {
                clipped_flat += 1;
            }
            let mut fr = [2.0 * (n as f32 * 0.03).sin()];
            l.process(&mut fr);
            if n > 4800 {
                max = max.max(fr[0].abs());
                if fr[0].abs() >= 0.979 {
                    flat += 1;
                }
            }
        }
        assert!(max <= 0.98);
        assert!(max > 0.9, "limits, does not silence: {max}");
        // Hard clipping pins two thirds of the samples at the ceiling; the
        // limiter only the few around each peak.
        assert!(flat * 5 < clipped_flat, "{flat} vs {clipped_flat} samples at the ceiling");
        assert!(l.gain() < 0.6);
    }
}
