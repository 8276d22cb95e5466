//! Detects the accidents that hurt ears and speakers, and fades the channel
//! out until the signal is sane again.
//!
//! Measured on the patch's signal (before the limiter):
//! - *runaway*: RMS over ~10 ms at or above +6 dBFS (2.0) for 20 ms;
//! - *jump to full scale*: RMS over ~10 ms at or above 0.9 (a full-scale square
//!   or DC) for 50 ms, when the level over the previous ~0.5 s was below 0.3;
//! - *DC*: the signal's mean (a ~1.6 Hz low-pass) beyond ±0.3 for 200 ms.
//!
//! Muting fades out over 10 ms. The channel fades back in (over 50 ms) after
//! the signal has stayed below RMS 0.7 with a mean within ±0.1 for 500 ms.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuteReason {
    Runaway,
    JumpToFullScale,
    Dc,
}

impl MuteReason {
    pub fn describe(self) -> &'static str {
        match self {
            MuteReason::Runaway => "runaway level (over +6 dBFS for 20 ms: feedback blowing up?)",
            MuteReason::JumpToFullScale => "sudden jump to sustained full scale",
            MuteReason::Dc => "sustained DC offset (over ±0.3 for 200 ms)",
        }
    }
}

pub enum Event {
    Muted(MuteReason),
    Restored,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Gate {
    Open,
    Closing,
    Closed,
    Opening,
}

pub struct Blowup {
    ms_fast: f64,
    ms_slow: f64,
    dc: f64,
    k_fast: f64,
    k_slow: f64,
    k_dc: f64,
    runaway_run: u32,
    loud_run: u32,
    loud_armed: bool,
    dc_run: u32,
    clear_run: u32,
    runaway_len: u32,
    loud_len: u32,
    dc_len: u32,
    clear_len: u32,
    gate: Gate,
    gain: f32,
    fade_out_step: f32,
    fade_in_step: f32,
}

fn coef(seconds: f64, sr: f64) -> f64 {
    1.0 - (-1.0 / (seconds * sr)).exp()
}

impl Blowup {
    pub fn new(sr: f64) -> Blowup {
        let n = |s: f64| (s * sr).round() as u32;
        Blowup {
            ms_fast: 0.0,
            ms_slow: 0.0,
            dc: 0.0,
            k_fast: coef(0.010, sr),
            k_slow: coef(0.5, sr),
            k_dc: coef(0.1, sr),
            runaway_run: 0,
            loud_run: 0,
            loud_armed: false,
            dc_run: 0,
            clear_run: 0,
            runaway_len: n(0.020),
            loud_len: n(0.050),
            dc_len: n(0.200),
            clear_len: n(0.500),
            gate: Gate::Open,
            gain: 1.0,
            fade_out_step: (1.0 / (0.010 * sr)) as f32,
            fade_in_step: (1.0 / (0.050 * sr)) as f32,
        }
    }

    /// Processes one (finite) sample; returns it with the guard's gain applied.
    #[inline]
    pub fn process(&mut self, x: f32, emit: &mut impl FnMut(Event)) -> f32 {
        let xd = x as f64;
        // Clamp the square so a 1e30 sample cannot make the meters infinite.
        let sq = (xd * xd).min(1e12);
        self.ms_fast += (sq - self.ms_fast) * self.k_fast;
        self.ms_slow += (sq - self.ms_slow) * self.k_slow;
        self.dc += (xd.clamp(-1e6, 1e6) - self.dc) * self.k_dc;
        let rms_fast = self.ms_fast.sqrt();

        self.runaway_run = if rms_fast >= 2.0 { self.runaway_run + 1 } else { 0 };
        if rms_fast >= 0.9 {
            if self.loud_run == 0 {
                self.loud_armed = self.ms_slow.sqrt() < 0.3;
            }
            self.loud_run += 1;
        } else {
            self.loud_run = 0;
        }
        self.dc_run = if self.dc.abs() >= 0.3 { self.dc_run + 1 } else { 0 };

        match self.gate {
            Gate::Open | Gate::Opening => {
                let reason = if self.runaway_run >= self.runaway_len {
                    Some(MuteReason::Runaway)
                } else if self.loud_armed && self.loud_run >= self.loud_len {
                    Some(MuteReason::JumpToFullScale)
                } else if self.dc_run >= self.dc_len {
                    Some(MuteReason::Dc)
                } else {
                    None
                };
                if let Some(r) = reason {
                    self.gate = Gate::Closing;
                    self.clear_run = 0;
                    emit(Event::Muted(r));
                } else if self.gate == Gate::Opening {
                    self.gain = (self.gain + self.fade_in_step).min(1.0);
                    if self.gain >= 1.0 {
                        self.gate = Gate::Open;
                    }
                }
            }
            Gate::Closing | Gate::Closed => {
                if self.gate == Gate::Closing {
                    self.gain = (self.gain - self.fade_out_step).max(0.0);
                    if self.gain <= 0.0 {
                        self.gate = Gate::Closed;
                    }
                }
                let sane = rms_fast < 0.7 && self.dc.abs() < 0.1;
                self.clear_run = if sane { self.clear_run + 1 } else { 0 };
                if self.clear_run >= self.clear_len {
                    self.gate = Gate::Opening;
                    self.loud_armed = false;
                    emit(Event::Restored);
                }
            }
        }
        x * self.gain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: f64 = 48000.0;

    /// Runs `f` through a guard; returns the output and (frame, muted?) events.
    fn run(f: impl Fn(u64) -> f32, frames: u64) -> (Vec<f32>, Vec<(u64, Option<MuteReason>)>) {
        let mut g = Blowup::new(SR);
        let mut ev = Vec::new();
        let out = (0..frames)
            .map(|n| {
                g.process(f(n), &mut |e| {
                    ev.push((
                        n,
                        match e {
                            Event::Muted(r) => Some(r),
                            Event::Restored => None,
                        },
                    ))
                })
            })
            .collect();
        (out, ev)
    }

    #[test]
    fn feedback_blowing_up_is_faded_out_within_tens_of_milliseconds() {
        // A sine that grows by 1% per ms: crosses +6 dBFS after about 0.4 s.
        let (out, ev) = run(|n| (1.01f32).powf(n as f32 / 48.0) * 0.1 * (n as f32 * 0.1).sin(), SR as u64);
        let (at, reason) = ev[0];
        // Either rule may see it first: it both runs away and jumps from quiet.
        assert!(matches!(reason, Some(MuteReason::Runaway | MuteReason::JumpToFullScale)), "{reason:?}");
        assert!(at < (0.4 * SR) as u64, "muted at {at}");
        let tail = &out[(at + 480 + 10) as usize..];
        assert!(tail.iter().all(|x| *x == 0.0));
    }

    #[test]
    fn a_jump_from_quiet_to_a_full_scale_square_is_muted_but_a_loud_sine_is_not() {
        let (_, ev) = run(
            |n| {
                if n < 24000 {
                    0.0
                } else if (n / 50) % 2 == 0 {
                    1.0
                } else {
                    -1.0
                }
            },
            48000,
        );
        assert_eq!(ev[0].1, Some(MuteReason::JumpToFullScale));
        assert!(ev[0].0 < 24000 + 4800, "within 100 ms: {}", ev[0].0);
        let (_, ev) = run(|n| (n as f32 * 0.05).sin(), 96000);
        assert!(ev.is_empty());
    }

    #[test]
    fn dc_is_muted_and_the_channel_returns_when_the_signal_is_sane() {
        let (out, ev) = run(
            |n| {
                if n < 48000 {
                    0.5
                } else {
                    0.2 * (n as f32 * 0.05).sin()
                }
            },
            3 * 48000,
        );
        assert_eq!(ev[0].1, Some(MuteReason::Dc));
        assert!(ev[0].0 < (0.5 * SR) as u64);
        assert_eq!(ev[1].1, None, "restored");
        // DC itself has faded out before the sine starts, and the sine is back at full gain at the end.
        assert_eq!(out[47999], 0.0);
        let end = out.len() - 1;
        assert_eq!(out[end], 0.2 * (end as f32 * 0.05).sin());
    }

    #[test]
    fn a_slow_crescendo_to_full_scale_square_is_allowed() {
        // Rises over 2 s: the level before the square is not quiet, so it is no "jump".
        let (_, ev) = run(|n| (n as f32 / 96000.0).min(1.0) * if (n / 50) % 2 == 0 { 1.0 } else { -1.0 }, 3 * 48000);
        assert!(ev.is_empty(), "{ev:?}");
    }
}
