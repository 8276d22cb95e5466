//! Open-drain lines: each connection is one wire with a pull-up; it reads
//! low if either end pulls it low (wired-AND). A bar sees only its own end: a
//! connector with nothing plugged in reads its own drive and the pull-up.

use super::waveform::{Time, Waveform, NEVER};

/// A bar's connector as the simulator numbers it: actor * 4 + connector
/// (the root is actor 0 and uses only its port 0).
pub type Port = usize;

pub const NO_PEER: u16 = u16::MAX;

/// Who is plugged into whom, and what every port drives.
pub struct Lines {
    pub peer: Vec<u16>,
    pub drive: Vec<Waveform>,
}

impl Lines {
    pub fn new(ports: usize) -> Lines {
        Lines { peer: vec![NO_PEER; ports], drive: vec![Waveform::RELEASED; ports] }
    }

    pub fn peer(&self, p: Port) -> Option<Port> {
        let q = self.peer[p];
        (q != NO_PEER).then_some(q as Port)
    }

    /// The level at port `p` at time `t`, as the bar owning `p` reads it.
    #[inline]
    pub fn is_low(&self, p: Port, t: Time) -> bool {
        self.drive[p].is_low(t) || self.peer(p).is_some_and(|q| self.drive[q].is_low(t))
    }

    /// The level at `p` at `t` and the first time after `t` it may change.
    #[inline]
    pub fn level_and_next(&self, p: Port, t: Time) -> (bool, Time) {
        let (own_low, own_next) = self.drive[p].level_and_next(t);
        match self.peer(p) {
            Some(q) => {
                let (other_low, other_next) = self.drive[q].level_and_next(t);
                (own_low || other_low, own_next.min(other_next))
            }
            None => (own_low, own_next),
        }
    }

    /// The first poll instant in [from, limit) (polls at anchor + k * step)
    /// at which port `p` reads `low`, if any.
    pub fn first_poll(&self, p: Port, low: bool, from: Time, limit: Time, anchor: Time, step: Time) -> Option<Time> {
        let mut t = from;
        while t < limit {
            let (is_low, next) = self.level_and_next(p, t);
            if is_low == low {
                let g = anchor + (t - anchor + step - 1) / step * step;
                if g < next && g < limit {
                    return Some(g);
                }
            }
            if next == NEVER {
                return None;
            }
            t = next;
        }
        None
    }
}
