//! The eight bar types and their just-intonation ratios.

use std::fmt;

use super::pitch::Pitch;

/// The interval a bar spans; the 3-bit length code on the wire is its index.
///
/// The set is the eight 5-limit intervals from a semitone to an octave that
/// every just major and minor scale is built from: 16/15 (diatonic semitone),
/// 9/8 (major tone), 6/5 and 5/4 (the thirds), 4/3 and 3/2 (fourth and fifth),
/// 5/3 (major sixth) and 2/1 (octave). No unison: a bar that adds no pitch is
/// useless. Going backwards along a bar divides, so the complements come free
/// (a fourth down is a fifth below the octave, 16/9 is two fourths), and
/// everything stays in the primes 2, 3, 5, which is what keeps pitch exact.
/// The code order is by size, so a longer code is a longer bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Interval {
    MinorSecond = 0,
    MajorSecond = 1,
    MinorThird = 2,
    MajorThird = 3,
    Fourth = 4,
    Fifth = 5,
    MajorSixth = 6,
    Octave = 7,
}

impl Interval {
    pub const ALL: [Interval; 8] = [
        Interval::MinorSecond,
        Interval::MajorSecond,
        Interval::MinorThird,
        Interval::MajorThird,
        Interval::Fourth,
        Interval::Fifth,
        Interval::MajorSixth,
        Interval::Octave,
    ];

    /// The 3-bit length code.
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Interval> {
        Interval::ALL.get(code as usize).copied()
    }

    /// (numerator, denominator), reduced.
    pub fn ratio(self) -> (u32, u32) {
        match self {
            Interval::MinorSecond => (16, 15),
            Interval::MajorSecond => (9, 8),
            Interval::MinorThird => (6, 5),
            Interval::MajorThird => (5, 4),
            Interval::Fourth => (4, 3),
            Interval::Fifth => (3, 2),
            Interval::MajorSixth => (5, 3),
            Interval::Octave => (2, 1),
        }
    }

    /// The ratio as exponents of 2, 3 and 5.
    pub fn pitch(self) -> Pitch {
        let (two, three, five) = match self {
            Interval::MinorSecond => (4, -1, -1),
            Interval::MajorSecond => (-3, 2, 0),
            Interval::MinorThird => (1, 1, -1),
            Interval::MajorThird => (-2, 0, 1),
            Interval::Fourth => (2, -1, 0),
            Interval::Fifth => (-1, 1, 0),
            Interval::MajorSixth => (0, -1, 1),
            Interval::Octave => (1, 0, 0),
        };
        Pitch::new(two, three, five)
    }

    /// log2 of the ratio: the bar's length in octaves.
    pub fn octaves(self) -> f64 {
        let (n, d) = self.ratio();
        (n as f64 / d as f64).log2()
    }

    /// The name used in the text format besides the ratio.
    pub fn name(self) -> &'static str {
        match self {
            Interval::MinorSecond => "m2",
            Interval::MajorSecond => "M2",
            Interval::MinorThird => "m3",
            Interval::MajorThird => "M3",
            Interval::Fourth => "P4",
            Interval::Fifth => "P5",
            Interval::MajorSixth => "M6",
            Interval::Octave => "P8",
        }
    }

    /// Parses "3/2" or "P5".
    pub fn parse(s: &str) -> Option<Interval> {
        Interval::ALL.into_iter().find(|i| {
            let (n, d) = i.ratio();
            s == i.name() || s == format!("{n}/{d}")
        })
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, d) = self.ratio();
        write!(f, "{n}/{d}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_match_ratios() {
        for i in Interval::ALL {
            let (n, d) = i.ratio();
            assert_eq!(i.pitch().as_fraction(), Some((n as u128, d as u128)), "{i:?}");
            assert_eq!(Interval::from_code(i.code()), Some(i));
            assert_eq!(Interval::parse(&i.to_string()), Some(i));
            assert_eq!(Interval::parse(i.name()), Some(i));
        }
    }

    #[test]
    fn codes_are_ordered_by_length_and_octave_is_longest() {
        for w in Interval::ALL.windows(2) {
            assert!(w[0].octaves() < w[1].octaves());
        }
        assert_eq!(Interval::Octave.octaves(), 1.0);
    }
}
