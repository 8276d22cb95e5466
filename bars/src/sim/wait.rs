//! What a bar is waiting for: a short program of polls and samples on one of
//! its lines, evaluated lazily against the lines' waveforms.
//!
//! A bar's code in the real thing busy-waits for a level and then reads the
//! line at fixed cycle offsets. Here the whole sequence is one `Wait`: the
//! engine works out when it will complete from the waveforms on the line (so
//! a bar costs one event per sequence, not one per cycle), and whenever the
//! line is about to change (the other side drives something new, or a plug or
//! unplug), it first `advance`s the wait up to that instant under the old
//! state. So every poll and sample sees exactly the level the line had then.

use super::line::Lines;
use super::waveform::{Time, NEVER};

/// A step's reference point: the program start or an earlier step's time.
pub const FROM_START: u8 = u8::MAX;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Expect {
    Low,
    High,
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// Poll every `poll` cycles from this step's start (the previous step's
    /// time) until the line reads `low`; fail `deadline` cycles after the start.
    Level { low: bool, poll: u16, deadline: u32 },
    /// Read the line `offset` cycles after step `from` (or the program start).
    Sample { from: u8, offset: u16, expect: Expect },
}

/// A deadline that never comes.
pub const FOREVER: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pending,
    /// Every step done; the last at this time.
    Done(Time),
    /// Step `step` failed (deadline or unexpected sample) at this time.
    Failed {
        step: u8,
        at: Time,
    },
}

impl Outcome {
    pub fn time(self) -> Time {
        match self {
            Outcome::Pending => NEVER,
            Outcome::Done(t) | Outcome::Failed { at: t, .. } => t,
        }
    }
}

const MAX_STEPS: usize = 12;

#[derive(Clone, Copy, Debug)]
pub struct Wait {
    /// The connector watched (for an `any` first step: set when it fires).
    pub connector: u8,
    /// If nonzero, the first step watches all these connectors.
    pub any_mask: u8,
    steps: &'static [Step],
    n: u8,
    start: Time,
    idx: u8,
    times: [Time; MAX_STEPS],
    /// Bit i: step i's sample read low.
    lows: u16,
    cursor: Time,
    pub outcome: Outcome,
}

impl Wait {
    /// Waits for nothing (never completes).
    pub const NOTHING: Wait = Wait {
        connector: 0,
        any_mask: 0,
        steps: &[],
        n: 0,
        start: NEVER,
        idx: 0,
        times: [0; MAX_STEPS],
        lows: 0,
        cursor: NEVER,
        outcome: Outcome::Pending,
    };

    pub fn on(connector: u8, start: Time, steps: &'static [Step]) -> Wait {
        debug_assert!(steps.len() <= MAX_STEPS);
        Wait { connector, start, cursor: start, steps, n: steps.len().min(MAX_STEPS) as u8, ..Wait::NOTHING }
    }

    /// First step listens on every connector in `mask`.
    pub fn on_any(mask: u8, start: Time, steps: &'static [Step]) -> Wait {
        Wait { any_mask: mask, ..Wait::on(0, start, steps) }
    }

    pub fn is_pending(&self) -> bool {
        self.outcome == Outcome::Pending
    }

    /// Whether a change on `connector`'s line can affect this wait.
    pub fn watches(&self, connector: u8) -> bool {
        self.is_pending()
            && self.n > 0
            && if self.idx == 0 && self.any_mask != 0 {
                self.any_mask >> connector & 1 == 1
            } else {
                self.connector == connector
            }
    }

    /// When step `i` happened.
    pub fn time(&self, i: usize) -> Time {
        self.times[i]
    }

    /// Whether step `i`'s sample read low.
    pub fn read_low(&self, i: usize) -> bool {
        self.lows >> i & 1 == 1
    }

    fn step_start(&self, i: usize) -> Time {
        if i == 0 {
            self.start
        } else {
            self.times[i - 1]
        }
    }

    /// Evaluates everything that happens before `until` under the lines'
    /// current state. `base` is this actor's first port, `period` its cycle.
    pub fn advance(&mut self, lines: &Lines, base: usize, period: Time, until: Time) {
        if !self.is_pending() {
            return;
        }
        if self.n == 0 {
            if self.start < until {
                self.outcome = Outcome::Done(self.start);
            }
            return;
        }
        while (self.idx as usize) < self.n as usize {
            let i = self.idx as usize;
            match self.steps[i] {
                Step::Level { low, poll, deadline } => {
                    let anchor = self.step_start(i);
                    let dead = if deadline == FOREVER { NEVER } else { anchor + deadline as i64 * period };
                    let limit = until.min(dead.saturating_add(1));
                    let step = poll.max(1) as i64 * period;
                    let from = self.cursor.max(anchor);
                    let hit = if i == 0 && self.any_mask != 0 {
                        let mut best: Option<(Time, u8)> = None;
                        for c in 0..4u8 {
                            if self.any_mask >> c & 1 == 1 {
                                if let Some(t) = lines.first_poll(base + c as usize, low, from, limit, anchor, step) {
                                    if best.is_none_or(|(b, _)| t < b) {
                                        best = Some((t, c));
                                    }
                                }
                            }
                        }
                        best.map(|(t, c)| {
                            self.connector = c;
                            t
                        })
                    } else {
                        lines.first_poll(base + self.connector as usize, low, from, limit, anchor, step)
                    };
                    match hit {
                        Some(t) => {
                            self.times[i] = t;
                            self.idx += 1;
                            self.cursor = t;
                        }
                        None if limit > dead => {
                            self.outcome = Outcome::Failed { step: i as u8, at: dead };
                            return;
                        }
                        None => {
                            self.cursor = until;
                            return;
                        }
                    }
                }
                Step::Sample { from, offset, expect } => {
                    let base_time = if from == FROM_START { self.start } else { self.times[from as usize] };
                    let t = base_time + offset as i64 * period;
                    if t >= until {
                        return;
                    }
                    let is_low = lines.is_low(base + self.connector as usize, t);
                    self.times[i] = t;
                    self.cursor = t;
                    if is_low {
                        self.lows |= 1 << i;
                    }
                    self.idx += 1;
                    let ok = match expect {
                        Expect::Low => is_low,
                        Expect::High => !is_low,
                        Expect::Any => true,
                    };
                    if !ok {
                        self.outcome = Outcome::Failed { step: i as u8, at: t };
                        return;
                    }
                }
            }
        }
        self.outcome = Outcome::Done(self.times[self.n as usize - 1]);
    }
}
