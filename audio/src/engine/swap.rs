//! The crossfade between an old and a new program.
//!
//! It keeps the output *power* constant, as an equal-power fade should, for
//! whatever the correlation `r` of the two signals is (R. Bristow-Johnson's
//! correlation-adaptive crossfade). Writing the gains as an odd part `o` (a
//! straight line from -1/2 to 1/2) and an even part `e`:
//!
//!   g_new = e + o,  g_old = e - o,  e = sqrt(1/(2(1+r)) - o²(1-r)/(1+r))
//!
//! With r = 0 (unrelated code) this is the classic sin/cos power law (both
//! gains 0.707 half-way); with r = 1 (an edit that kept the oscillators'
//! state, so old and new sound alike) it is a linear fade, with no +3 dB bump.
//! `r` is measured as the fade runs, from the two programs' outputs.

use crate::patch::Prepared;
use crate::Frames;

/// Gains (old, new) for position `t` in [0, 1] of a fade between signals of correlation `r`.
pub fn gains(t: f64, r: f64) -> (f32, f32) {
    let r = r.clamp(0.0, 1.0);
    let o = t.clamp(0.0, 1.0) - 0.5;
    let e = (1.0 / (2.0 * (1.0 + r)) - o * o * (1.0 - r) / (1.0 + r)).max(0.0).sqrt();
    ((e - o) as f32, (e + o) as f32)
}

/// The crossfade's position and the running correlation of the two signals.
#[derive(Debug, Clone, Copy)]
pub struct Crossfade {
    pos: u64,
    len: u64,
    s_ab: f64,
    s_aa: f64,
    s_bb: f64,
}

impl Crossfade {
    pub fn new(len: Frames) -> Crossfade {
        Crossfade { pos: 0, len: len.0.max(1), s_ab: 0.0, s_aa: 1e-12, s_bb: 1e-12 }
    }

    /// Mixes one frame: `old` and `new` are the two programs' outputs.
    #[inline]
    pub fn mix(&mut self, old: &[f32], new: &[f32], out: &mut [f32]) {
        for (a, b) in old.iter().zip(new).take(out.len()) {
            let (a, b) = (*a as f64, *b as f64);
            if a.is_finite() && b.is_finite() {
                self.s_ab += a * b;
                self.s_aa += a * a;
                self.s_bb += b * b;
            }
        }
        let r = self.s_ab / (self.s_aa * self.s_bb).sqrt();
        let t = (self.pos as f64 + 0.5) / self.len as f64;
        let (g_old, g_new) = gains(t, r);
        for (c, o) in out.iter_mut().enumerate() {
            *o = g_old * old[c] + g_new * new[c];
        }
    }

    /// Moves to the next frame; true when the fade is over.
    #[inline]
    pub fn advance(&mut self) -> bool {
        self.pos += 1;
        self.pos >= self.len
    }
}

/// A raised-cosine fade in from silence, for sound that starts again after
/// nothing played (a failure faded out, then a version came back): the first
/// samples of an oscillator caught mid-swing would otherwise be a click.
#[derive(Debug, Clone, Copy)]
pub struct FadeIn {
    pos: u64,
    len: u64,
}

impl FadeIn {
    pub fn new(len: Frames) -> FadeIn {
        FadeIn { pos: 0, len: len.0.max(1) }
    }

    /// Scales one interleaved frame and moves on; true when the fade is over.
    #[inline]
    pub fn apply(&mut self, frame: &mut [f32]) -> bool {
        let t = ((self.pos as f64 + 0.5) / self.len as f64).min(1.0);
        let g = (0.5 - 0.5 * (std::f64::consts::PI * t).cos()) as f32;
        for s in frame {
            *s *= g;
        }
        self.pos += 1;
        self.pos >= self.len
    }
}

/// A fade in the offline engine: the crossfade and the program fading out.
pub struct Fade {
    pub old: Box<Prepared>,
    pub crossfade: Crossfade,
}

impl Fade {
    pub fn new(old: Box<Prepared>, len: Frames) -> Fade {
        Fade { old, crossfade: Crossfade::new(len) }
    }

    #[inline]
    pub fn mix(&mut self, old: &[f32], new: &[f32], out: &mut [f32]) {
        self.crossfade.mix(old, new, out)
    }

    #[inline]
    pub fn advance(&mut self) -> bool {
        self.crossfade.advance()
    }
}

#[cfg(test)]
mod tests {
    use super::{gains, FadeIn};
    use crate::Frames;

    #[test]
    fn a_fade_in_rises_smoothly_from_silence_to_full_level() {
        let mut f = FadeIn::new(Frames(100));
        let mut gains = Vec::new();
        let mut done = false;
        while !done {
            let mut frame = [1.0f32, -1.0];
            done = f.apply(&mut frame);
            assert_eq!(frame[0], -frame[1]);
            gains.push(frame[0]);
        }
        assert_eq!(gains.len(), 100);
        assert!(gains[0] < 0.001 && gains[99] > 0.999, "{} .. {}", gains[0], gains[99]);
        // Never falls, and no step is bigger than a linear ramp's times pi/2.
        for w in gains.windows(2) {
            assert!(w[1] >= w[0] && w[1] - w[0] < 0.0158, "{w:?}");
        }
    }

    #[test]
    fn uncorrelated_fades_keep_power_and_identical_ones_keep_amplitude() {
        for i in 0..=100 {
            let t = i as f64 / 100.0;
            let (a, b) = gains(t, 0.0);
            assert!(((a * a + b * b) as f64 - 1.0).abs() < 1e-6);
            let (a, b) = gains(t, 1.0);
            assert!(((a + b) as f64 - 1.0).abs() < 1e-6);
            let r = 0.4;
            let (a, b) = gains(t, r);
            let p = (a * a + b * b) as f64 + 2.0 * r * (a * b) as f64;
            assert!((p - 1.0).abs() < 1e-5);
        }
        let close = |(a, b): (f32, f32), (x, y): (f32, f32)| (a - x).abs() < 1e-6 && (b - y).abs() < 1e-6;
        assert!(close(gains(0.0, 0.3), (1.0, 0.0)));
        assert!(close(gains(1.0, 0.3), (0.0, 1.0)));
        let (a, b) = gains(0.5, 0.0);
        assert!((a - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6 && a == b);
    }
}
