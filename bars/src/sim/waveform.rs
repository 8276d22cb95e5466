//! What one side drives onto a line: a short pattern of cycles, then a level
//! that lasts until the bar drives something else.

/// Simulated time in picoseconds (a 1 MHz cycle is 1,000,000 ps, so a bar's
/// period is exact to 1 ps; the seed's simulator had 39 ps steps).
pub type Time = i64;

/// A time that never comes.
pub const NEVER: Time = i64::MAX;

/// Picoseconds in a nominal 1 MHz cycle (the unit of the timings below).
pub const NOMINAL_CYCLE: Time = 1_000_000;

/// One side's drive: from `start`, cell i (one cycle of this bar's clock) is
/// pulled low if bit i of `low` is set; after `cells` cycles the line is held
/// low forever if `tail_low`, else released. Before `start` it is released,
/// so a delayed start only ever replaces a released drive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Waveform {
    pub start: Time,
    pub period: Time,
    pub low: u64,
    pub cells: u8,
    pub tail_low: bool,
}

impl Waveform {
    /// Not pulling: the pull-up holds the line high unless the other side pulls.
    pub const RELEASED: Waveform = Waveform { start: 0, period: 1, low: 0, cells: 0, tail_low: false };

    pub fn is_released(&self) -> bool {
        self.low == 0 && !self.tail_low
    }

    /// Whether this side pulls the line low at `t`.
    #[inline]
    pub fn is_low(&self, t: Time) -> bool {
        if t < self.start || self.is_released() {
            return false;
        }
        let c = (t - self.start) / self.period;
        if c < self.cells as i64 {
            self.low >> c & 1 == 1
        } else {
            self.tail_low
        }
    }

    /// `is_low(t)` and `next_change(t)` with one division.
    #[inline]
    pub fn level_and_next(&self, t: Time) -> (bool, Time) {
        if self.is_released() {
            return (false, NEVER);
        }
        if t < self.start {
            return (false, self.start);
        }
        let c = (t - self.start) / self.period;
        if c >= self.cells as i64 {
            return (self.tail_low, NEVER);
        }
        let rest = self.low >> c;
        let is_low = rest & 1 == 1;
        let run = if is_low { (!rest).trailing_zeros() } else { rest.trailing_zeros() } as i64;
        let end = (c + run).min(self.cells as i64);
        let next =
            if end == self.cells as i64 && is_low == self.tail_low { NEVER } else { self.start + end * self.period };
        (is_low, next)
    }

    /// The first time after `t` at which this side's pull may change, or NEVER.
    #[cfg(test)]
    pub fn next_change(&self, t: Time) -> Time {
        if self.is_released() {
            return NEVER;
        }
        if t < self.start {
            return self.start;
        }
        let c = (t - self.start) / self.period;
        if c >= self.cells as i64 {
            return NEVER;
        }
        let rest = self.low >> c;
        let is_low = rest & 1 == 1;
        let run = if is_low { (!rest).trailing_zeros() } else { rest.trailing_zeros() } as i64;
        let end = (c + run).min(self.cells as i64);
        if end == self.cells as i64 && is_low == self.tail_low {
            NEVER
        } else {
            self.start + end * self.period
        }
    }
}

/// Builds a pattern from (cycles, low) runs.
const fn pattern(runs: &[(u8, bool)]) -> (u64, u8) {
    let mut low = 0u64;
    let mut at = 0u32;
    let mut i = 0;
    while i < runs.len() {
        let (n, is_low) = runs[i];
        let mut k = 0;
        while k < n {
            if is_low {
                low |= 1 << (at + k as u32);
            }
            k += 1;
        }
        at += n as u32;
        i += 1;
    }
    (low, at as u8)
}

/// Prime: 6 low, 31 high, 6 low (43 cycles). Checked low, high, high, low at
/// 1, 9, 19 and 38 cycles after the falling edge is seen: nothing else on the
/// wire has a low 37 cycles after a low with highs between.
pub const PRIME: (u64, u8) = pattern(&[(6, true), (31, false), (6, true)]);
/// Response to a prime: 8 low, 8 high, then low for as long as the responder
/// primes its own subtree (released when done).
pub const RESPONSE: (u64, u8) = pattern(&[(8, true), (8, false)]);
/// Request for one word: 16 low. Longer than the prime's first low, so a
/// sample 9 cycles in tells the two apart.
pub const REQUEST: (u64, u8) = pattern(&[(16, true)]);
/// Cycles of a data burst before the first bit: 8 low (acknowledge, then its
/// rising edge is the sync), 4 high (guard).
pub const BURST_LEAD: u8 = 12;
/// Cycles per data bit; a 0 is low, a 1 released. Nine bits are at most 36
/// low cycles in a row.
pub const BIT_CYCLES: u8 = 4;

impl Waveform {
    pub fn new(start: Time, period: Time, (low, cells): (u64, u8), tail_low: bool) -> Waveform {
        Waveform { start, period, low, cells, tail_low }
    }

    /// A word burst: acknowledge, guard, then slots 0..9, a 0 pulled low.
    pub fn burst(start: Time, period: Time, word: u16) -> Waveform {
        let (mut low, _) = pattern(&[(8, true), (4, false)]);
        for slot in 0..9u32 {
            if word >> slot & 1 == 0 {
                low |= 0b1111 << (BURST_LEAD as u32 + BIT_CYCLES as u32 * slot);
            }
        }
        Waveform { start, period, low, cells: BURST_LEAD + 9 * BIT_CYCLES, tail_low: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prime_shape_and_changes() {
        let w = Waveform::new(100, 10, PRIME, false);
        assert!(!w.is_low(99));
        assert!(w.is_low(100) && w.is_low(159) && !w.is_low(160));
        assert!(!w.is_low(469) && w.is_low(470) && w.is_low(529) && !w.is_low(530));
        assert_eq!(w.next_change(50), 100);
        assert_eq!(w.next_change(100), 160);
        assert_eq!(w.next_change(200), 470);
        assert_eq!(w.next_change(470), 530);
        assert_eq!(w.next_change(530), NEVER);
    }

    #[test]
    fn response_tail_stays_low() {
        let w = Waveform::new(0, 1, RESPONSE, true);
        assert_eq!(w.next_change(0), 8);
        assert_eq!(w.next_change(8), 16);
        assert_eq!(w.next_change(16), NEVER);
        assert!(w.is_low(1_000_000));
    }

    #[test]
    fn burst_bits() {
        let w = Waveform::burst(0, 1, 0b1_0000_0001);
        assert!(w.is_low(0) && !w.is_low(8) && !w.is_low(12)); // slot 0 = 1
        assert!(w.is_low(16)); // slot 1 = 0
        assert!(!w.is_low(44) && !w.is_low(47)); // slot 8 = 1
        assert_eq!(w.cells, 48);
    }
}
