//! Live parameters (`_p`, `_i`, `_cc`) set from any thread (OSC, MIDI, the
//! param channel, the UI) and read by the audio thread without a lock or a
//! queue: one atomic per parameter and a generation counter.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use crate::builtins::api::{Params, PARAMS};
use crate::engine::Param;

/// The current value of every parameter. Writers store and bump the
/// generation; the audio thread copies the table when the generation moved.
pub struct ParamTable {
    p: [AtomicU32; PARAMS],
    i: [AtomicI32; PARAMS],
    cc: [AtomicU32; PARAMS],
    generation: AtomicU64,
}

impl Default for ParamTable {
    fn default() -> Self {
        ParamTable {
            p: std::array::from_fn(|_| AtomicU32::new(0)),
            i: std::array::from_fn(|_| AtomicI32::new(0)),
            cc: std::array::from_fn(|_| AtomicU32::new(0)),
            generation: AtomicU64::new(0),
        }
    }
}

impl ParamTable {
    /// Sets one parameter; `play()` sees it from the next block. Out-of-range
    /// indices are ignored, `_cc` values clamped to 0..1, non-finite values refused.
    pub fn set(&self, p: Param) -> bool {
        let ok = match p {
            Param::P(n, v) if (n as usize) < PARAMS && v.is_finite() => {
                self.p[n as usize].store(v.to_bits(), Ordering::Relaxed);
                true
            }
            Param::I(n, v) if (n as usize) < PARAMS => {
                self.i[n as usize].store(v, Ordering::Relaxed);
                true
            }
            Param::Cc(n, v) if (n as usize) < PARAMS && v.is_finite() => {
                self.cc[n as usize].store(v.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
                true
            }
            _ => false,
        };
        if ok {
            self.generation.fetch_add(1, Ordering::Release);
        }
        ok
    }

    /// Copies the table into `params` if anything changed since `seen` (the
    /// audio thread's last look). No allocation, no lock.
    pub fn read_into(&self, seen: &mut u64, params: &mut Params) {
        let g = self.generation.load(Ordering::Acquire);
        if g == *seen {
            return;
        }
        *seen = g;
        for n in 0..PARAMS {
            params.p[n] = f32::from_bits(self.p[n].load(Ordering::Relaxed));
            params.i[n] = self.i[n].load(Ordering::Relaxed);
            params.cc[n] = f32::from_bits(self.cc[n].load(Ordering::Relaxed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_reach_the_reader_once_and_bad_values_are_refused() {
        let t = ParamTable::default();
        let mut params = Params::default();
        let mut seen = 0;
        assert!(t.set(Param::P(3, 0.25)));
        assert!(t.set(Param::Cc(1, 7.0)));
        assert!(t.set(Param::I(127, -4)));
        assert!(!t.set(Param::P(200, 1.0)));
        assert!(!t.set(Param::P(0, f32::NAN)));
        t.read_into(&mut seen, &mut params);
        assert_eq!((params.p[3], params.cc[1], params.i[127]), (0.25, 1.0, -4));
        params.p[3] = 9.0;
        t.read_into(&mut seen, &mut params);
        assert_eq!(params.p[3], 9.0, "no change, no copy");
    }
}
