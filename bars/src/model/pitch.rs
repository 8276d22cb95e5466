//! Exact pitch ratios as exponents of the primes 2, 3 and 5.
//!
//! Every interval is a 5-limit ratio, so every pitch in a tree is the base
//! times 2^a 3^b 5^c. Adding exponents never rounds, so an octave up and down
//! gives back the same `Pitch`, and the same `Pitch` always gives bit-for-bit
//! the same frequency.

use std::fmt;
use std::ops::{Add, Neg, Sub};

/// A frequency ratio 2^two * 3^three * 5^five.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Pitch {
    pub two: i32,
    pub three: i32,
    pub five: i32,
}

impl Pitch {
    pub const UNISON: Pitch = Pitch { two: 0, three: 0, five: 0 };

    pub const fn new(two: i32, three: i32, five: i32) -> Pitch {
        Pitch { two, three, five }
    }

    /// The frequency in Hz above `base_hz`. One formula for every pitch, so
    /// equal pitches give equal frequencies exactly.
    pub fn frequency(self, base_hz: f64) -> f64 {
        // Small powers of 2, 3 and 5 are exact in f64, so 440 * 3/2 is 660.0.
        let direct = base_hz * 2f64.powi(self.two) * 3f64.powi(self.three) * 5f64.powi(self.five);
        if direct.is_finite() && direct > 0.0 {
            direct
        } else {
            // An absurd tree (hundreds of octaves) overflows a partial product;
            // through log2 it still gives the right answer when it is representable.
            base_hz * self.octaves().exp2()
        }
    }

    /// log2 of the ratio (octaves above the base).
    pub fn octaves(self) -> f64 {
        self.two as f64 + self.three as f64 * 3f64.log2() + self.five as f64 * 5f64.log2()
    }

    /// The reduced fraction, when it fits in u128.
    pub fn as_fraction(self) -> Option<(u128, u128)> {
        let mut num: u128 = 1;
        let mut den: u128 = 1;
        for (prime, exp) in [(2u128, self.two), (3, self.three), (5, self.five)] {
            let p = prime.checked_pow(exp.unsigned_abs())?;
            if exp >= 0 {
                num = num.checked_mul(p)?;
            } else {
                den = den.checked_mul(p)?;
            }
        }
        Some((num, den))
    }
}

impl Add for Pitch {
    type Output = Pitch;
    fn add(self, o: Pitch) -> Pitch {
        Pitch::new(self.two + o.two, self.three + o.three, self.five + o.five)
    }
}

impl Sub for Pitch {
    type Output = Pitch;
    fn sub(self, o: Pitch) -> Pitch {
        self + (-o)
    }
}

impl Neg for Pitch {
    type Output = Pitch;
    fn neg(self) -> Pitch {
        Pitch::new(-self.two, -self.three, -self.five)
    }
}

impl fmt::Display for Pitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_fraction() {
            Some((n, d)) => write!(f, "{n}/{d}"),
            None => write!(f, "2^{} 3^{} 5^{}", self.two, self.three, self.five),
        }
    }
}

/// The nearest 12-TET note (A4 = 440 Hz) and how far from it, for display.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoteName {
    /// MIDI note number of the nearest equal-tempered note (69 = A4).
    pub midi: i64,
    /// Deviation from it in cents, in [-50, 50].
    pub cents: f64,
}

impl NoteName {
    pub fn of(frequency_hz: f64) -> NoteName {
        let exact = 69.0 + 12.0 * (frequency_hz / 440.0).log2();
        let midi = exact.round();
        NoteName { midi: midi as i64, cents: (exact - midi) * 100.0 }
    }
}

impl fmt::Display for NoteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 12] = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
        let name = NAMES[self.midi.rem_euclid(12) as usize];
        let octave = self.midi.div_euclid(12) - 1;
        write!(f, "{name}{octave} {:+.1}c", self.cents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Interval;

    #[test]
    fn octave_up_and_down_is_exact() {
        let p = Interval::Fifth.pitch() + Interval::Octave.pitch() - Interval::Octave.pitch();
        assert_eq!(p, Interval::Fifth.pitch());
        assert_eq!(p.frequency(440.0).to_bits(), Interval::Fifth.pitch().frequency(440.0).to_bits());
    }

    #[test]
    fn fifth_above_a440_is_e5_two_cents_sharp() {
        let f = Interval::Fifth.pitch().frequency(440.0);
        assert!((f - 660.0).abs() < 1e-9);
        let n = NoteName::of(f);
        assert_eq!(n.to_string(), "E5 +2.0c");
    }

    #[test]
    fn major_third_is_fourteen_cents_flat() {
        let n = NoteName::of(Interval::MajorThird.pitch().frequency(440.0));
        assert_eq!(n.midi, 73);
        assert!((n.cents + 13.686).abs() < 0.01);
    }

    #[test]
    fn syntonic_comma_is_not_unison() {
        // Four fifths down two octaves is 81/64, not 5/4: exact arithmetic keeps them apart.
        let mut p = Pitch::UNISON;
        for _ in 0..4 {
            p = p + Interval::Fifth.pitch();
        }
        p = p - Interval::Octave.pitch() - Interval::Octave.pitch();
        assert_eq!(p.as_fraction(), Some((81, 64)));
        assert_ne!(p, Interval::MajorThird.pitch());
    }
}
