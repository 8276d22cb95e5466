//! Hearing protection, always on, between the patch and the output:
//!
//! 1. non-finite samples (NaN, ±Inf) become silence and are reported with their time;
//! 2. a [`blowup`] guard fades a channel out when it runs away (far over full
//!    scale), jumps suddenly to sustained full scale, or sits on DC, and fades
//!    it back in once the signal is sane again;
//! 3. a [`limiter`] (instant attack, smooth release, zero latency) keeps every
//!    sample within ±[`CEILING`], so nothing ever wraps or clips hard.
//!
//! The exact thresholds are in `docs/PATCH_API.md` ("Hearing protection").

pub mod blowup;
pub mod limiter;

use crate::Frames;
use blowup::{Blowup, MuteReason};
use limiter::Limiter;

/// No output sample exceeds this magnitude (-0.18 dBFS).
pub const CEILING: f32 = 0.98;

/// Something the protection did, for the performer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProtectEvent {
    /// A run of NaN/Inf samples began on `channel` at `at` (silenced).
    NonFinite {
        channel: usize,
        at: Frames,
    },
    Muted {
        channel: usize,
        reason: MuteReason,
        at: Frames,
    },
    Restored {
        channel: usize,
        at: Frames,
    },
}

impl ProtectEvent {
    pub fn describe(&self, sample_rate: f64) -> String {
        match *self {
            ProtectEvent::NonFinite { channel, at } => {
                format!("t={:.4}s channel {channel}: NaN/Inf output silenced", at.seconds(sample_rate))
            }
            ProtectEvent::Muted { channel, reason, at } => {
                format!("t={:.4}s channel {channel}: {}: faded out", at.seconds(sample_rate), reason.describe())
            }
            ProtectEvent::Restored { channel, at } => {
                format!("t={:.4}s channel {channel}: signal is sane again: faded back in", at.seconds(sample_rate))
            }
        }
    }
}

/// Per-channel state, preallocated for the engine's channel count.
struct Channel {
    blowup: Blowup,
    non_finite: bool,
    /// Frame of the last non-finite report (reports are at most one per second per channel).
    last_report: Option<u64>,
}

pub struct Protection {
    channels: Vec<Channel>,
    limiter: Limiter,
    sample_rate: f64,
}

impl Protection {
    pub fn new(sample_rate: f64, channels: usize) -> Protection {
        Protection {
            channels: (0..channels)
                .map(|_| Channel { blowup: Blowup::new(sample_rate), non_finite: false, last_report: None })
                .collect(),
            limiter: Limiter::new(sample_rate, CEILING),
            sample_rate,
        }
    }

    /// Protects one frame in place. `at` is the frame's time; events go to `emit`.
    #[inline]
    pub fn process(&mut self, frame: &mut [f32], at: u64, emit: &mut impl FnMut(ProtectEvent)) {
        for (ch, (x, state)) in frame.iter_mut().zip(self.channels.iter_mut()).enumerate() {
            if !x.is_finite() {
                if !state.non_finite
                    && state.last_report.is_none_or(|l| at.saturating_sub(l) as f64 >= self.sample_rate)
                {
                    state.last_report = Some(at);
                    emit(ProtectEvent::NonFinite { channel: ch, at: Frames(at) });
                }
                state.non_finite = true;
                *x = 0.0;
            } else {
                state.non_finite = false;
            }
            *x = state.blowup.process(*x, &mut |ev| {
                emit(match ev {
                    blowup::Event::Muted(reason) => ProtectEvent::Muted { channel: ch, reason, at: Frames(at) },
                    blowup::Event::Restored => ProtectEvent::Restored { channel: ch, at: Frames(at) },
                })
            });
        }
        self.limiter.process(frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &mut Protection, mut f: impl FnMut(u64) -> f32, frames: u64) -> (Vec<f32>, Vec<ProtectEvent>) {
        let mut out = Vec::new();
        let mut events = Vec::new();
        for n in 0..frames {
            let mut fr = [f(n)];
            p.process(&mut fr, n, &mut |e| events.push(e));
            out.push(fr[0]);
        }
        (out, events)
    }

    #[test]
    fn nan_and_inf_become_silence_and_are_reported_with_their_time() {
        let mut p = Protection::new(48000.0, 1);
        let (out, ev) = run(
            &mut p,
            |n| {
                if (100..110).contains(&n) {
                    f32::NAN
                } else if n == 200 {
                    f32::INFINITY
                } else {
                    0.1
                }
            },
            400,
        );
        assert!(out.iter().all(|x| x.is_finite()));
        assert_eq!(out[105], 0.0);
        assert_eq!(ev, vec![ProtectEvent::NonFinite { channel: 0, at: Frames(100) }]);
    }

    #[test]
    fn output_never_leaves_the_ceiling_whatever_comes_in() {
        let mut p = Protection::new(48000.0, 2);
        let mut rng = 1u64;
        for n in 0..200_000u64 {
            let r = crate::builtins::SplitMix64::next_f64(&mut rng) as f32;
            let big = if n % 1000 < 3 { 1e30 } else { (r - 0.5) * 40.0 };
            let mut fr = [big, -big * 0.5];
            p.process(&mut fr, n, &mut |_| {});
            assert!(fr.iter().all(|x| x.abs() <= CEILING), "{fr:?} at {n}");
        }
    }

    #[test]
    fn a_quiet_sine_passes_untouched() {
        let mut p = Protection::new(48000.0, 1);
        let sine = |n: u64| 0.5 * (n as f32 * 0.05).sin();
        let (out, ev) = run(&mut p, sine, 48000);
        assert!(ev.is_empty());
        for (n, y) in out.iter().enumerate() {
            assert_eq!(*y, sine(n as u64));
        }
    }
}
