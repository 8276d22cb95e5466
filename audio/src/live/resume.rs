//! When to bring a version back by itself after a failure left nothing
//! playing.
//!
//! A version that missed its deadline and whose backup missed it too (a
//! virtual machine paused for tens of milliseconds, a kernel stall) is
//! declared hung and killed with its backup: the engine fades out and nothing
//! is left to play. A performer would only submit the same file again, so the
//! control thread does it for them: it compiles the version again, test-runs
//! it on a copy of the live state (a patch that is really stuck fails there,
//! within the test run's timeout, without a sound) and installs it, faded in
//! from silence. The oscillators' state is kept (it is in the state memory,
//! not in the dead worker).
//!
//! This policy decides whether to try. A version that was declared *hung*
//! (it missed its deadline and did not answer within the hang limit) is
//! tried whenever it stopped, even on its first block: on a busy machine a
//! benign version can miss by tens of milliseconds right after it starts,
//! and the test run on the kept state is what tells a stuck patch from a
//! late machine. A version that *crashed* is tried only if it had played
//! for a while (one that crashes at once is the patch's fault). Either way,
//! only a few times in half a minute between two submits (a patch that keeps
//! stopping is left stopped, so it cannot stutter on for ever).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long a version must have played before its failure is taken for the machine's.
pub const MIN_PLAYED: Duration = Duration::from_secs(1);
/// At most this many resumes within [`WINDOW`] with no submit between them.
pub const MAX_RESUMES: usize = 3;
pub const WINDOW: Duration = Duration::from_secs(30);
/// Versions whose first-played time is remembered (the control thread keeps
/// the sources of the last 4).
const REMEMBERED: u64 = 8;

/// What to do about a version that stopped with nothing else to play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Resume { version: u64, stopped: Instant },
    Leave { version: u64, reason: String },
}

#[derive(Debug, Default)]
pub struct ResumePolicy {
    /// When each recent version first played.
    first_played: HashMap<u64, Instant>,
    /// When recent resumes happened.
    resumes: VecDeque<Instant>,
    /// The newest version that failed leaving silence, when, and whether it was declared hung.
    pending: Option<(u64, Instant, bool)>,
}

impl ResumePolicy {
    /// `version` played its first block at `at`.
    pub fn played(&mut self, version: u64, at: Instant) {
        self.first_played.entry(version).or_insert(at);
        self.first_played.retain(|v, _| *v + REMEMBERED > version);
        self.pending = None;
    }

    /// `version` failed at `at` (`hung`: it missed its deadline and never
    /// answered, rather than crashed); `now_playing` is what the audio thread plays on.
    pub fn failed(&mut self, version: u64, now_playing: Option<u64>, at: Instant, hung: bool) {
        match (now_playing, self.pending) {
            (Some(_), _) => self.pending = None,
            (None, Some((v, _, _))) if v >= version => {}
            (None, _) => self.pending = Some((version, at, hung)),
        }
    }

    /// The performer submitted a new version, on its way to the audio
    /// thread: nothing to resume, and the new code starts with a clean record.
    pub fn submitted(&mut self) {
        self.pending = None;
        self.resumes.clear();
    }

    /// The decision about the version waiting to be resumed, if any, once.
    pub fn decide(&mut self, now: Instant) -> Option<Decision> {
        let (version, stopped, hung) = self.pending.take()?;
        while self.resumes.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            self.resumes.pop_front();
        }
        let played_for = self.first_played.get(&version).map(|t| stopped.saturating_duration_since(*t));
        let leave = |reason: String| Some(Decision::Leave { version, reason });
        match played_for {
            _ if self.resumes.len() >= MAX_RESUMES => {
                leave(format!("it stopped {} times in {} s: it is left stopped", MAX_RESUMES + 1, WINDOW.as_secs()))
            }
            _ if hung => {
                self.resumes.push_back(now);
                Some(Decision::Resume { version, stopped })
            }
            None => leave("it crashed before it played".into()),
            Some(d) if d < MIN_PLAYED => leave(format!(
                "it crashed {:.0} ms after it started, so the patch is at fault, not the machine",
                d.as_secs_f64() * 1e3
            )),
            Some(_) if self.resumes.len() >= MAX_RESUMES => {
                leave(format!("it stopped {} times in {} s: it is left stopped", MAX_RESUMES + 1, WINDOW.as_secs()))
            }
            Some(_) => {
                self.resumes.push_back(now);
                Some(Decision::Resume { version, stopped })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    #[test]
    fn a_version_that_played_for_a_while_and_stopped_with_nothing_else_is_resumed_once() {
        let t0 = Instant::now();
        let mut p = ResumePolicy::default();
        p.played(1, t0);
        p.failed(1, None, secs(t0, 5.0), true);
        assert_eq!(p.decide(secs(t0, 5.01)), Some(Decision::Resume { version: 1, stopped: secs(t0, 5.0) }));
        assert_eq!(p.decide(secs(t0, 5.02)), None);
    }

    #[test]
    fn nothing_is_resumed_while_another_version_plays_on_or_a_new_one_is_coming() {
        let t0 = Instant::now();
        let mut p = ResumePolicy::default();
        p.played(1, t0);
        p.played(2, secs(t0, 2.0));
        p.failed(2, Some(1), secs(t0, 5.0), true);
        assert_eq!(p.decide(secs(t0, 5.0)), None);
        p.failed(2, None, secs(t0, 6.0), true);
        p.submitted();
        assert_eq!(p.decide(secs(t0, 6.0)), None);
    }

    #[test]
    fn when_the_active_and_its_backup_both_stop_the_newer_is_resumed() {
        let t0 = Instant::now();
        let mut p = ResumePolicy::default();
        p.played(3, t0);
        p.played(4, secs(t0, 2.0));
        // Reports come in either order.
        p.failed(4, None, secs(t0, 9.0), true);
        p.failed(3, None, secs(t0, 9.0), true);
        assert!(matches!(p.decide(secs(t0, 9.0)), Some(Decision::Resume { version: 4, .. })));
    }

    #[test]
    fn a_version_that_crashes_at_once_is_the_patch_and_is_left_stopped() {
        let t0 = Instant::now();
        let mut p = ResumePolicy::default();
        p.played(1, t0);
        p.failed(1, None, secs(t0, 0.05), false);
        let d = p.decide(secs(t0, 0.06));
        assert!(matches!(&d, Some(Decision::Leave { version: 1, reason }) if reason.contains("at fault")), "{d:?}");
        // One that never played (it crashed on its first block) neither.
        p.failed(2, None, secs(t0, 1.0), false);
        assert!(matches!(p.decide(secs(t0, 1.0)), Some(Decision::Leave { version: 2, .. })));
    }

    #[test]
    fn a_version_declared_hung_at_once_is_tried_again_the_test_run_decides() {
        // On a busy machine a benign version's first blocks can miss by tens of
        // milliseconds: hung at start is no proof against it.
        let t0 = Instant::now();
        let mut p = ResumePolicy::default();
        p.played(1, t0);
        p.failed(1, None, secs(t0, 0.05), true);
        assert!(matches!(p.decide(secs(t0, 0.06)), Some(Decision::Resume { version: 1, .. })));
        p.failed(2, None, secs(t0, 1.0), true);
        assert!(matches!(p.decide(secs(t0, 1.0)), Some(Decision::Resume { version: 2, .. })));
    }

    #[test]
    fn a_version_that_keeps_stopping_is_resumed_three_times_in_30_s_then_left() {
        let t0 = Instant::now();
        let mut p = ResumePolicy::default();
        let mut v = 1;
        p.played(v, t0);
        let mut t = 0.0;
        for _ in 0..MAX_RESUMES {
            t += 2.0;
            p.failed(v, None, secs(t0, t), true);
            assert!(matches!(p.decide(secs(t0, t)), Some(Decision::Resume { .. })));
            // The resume installs it again as a new version, which plays.
            v += 1;
            p.played(v, secs(t0, t));
        }
        t += 2.0;
        p.failed(v, None, secs(t0, t), true);
        assert!(matches!(p.decide(secs(t0, t)), Some(Decision::Leave { .. })));
        // Half a minute later the count has run out.
        v += 1;
        p.played(v, secs(t0, t));
        p.failed(v, None, secs(t0, t + 31.0), true);
        assert!(matches!(p.decide(secs(t0, t + 31.0)), Some(Decision::Resume { .. })));
    }

    #[test]
    fn a_submit_starts_the_count_again() {
        let t0 = Instant::now();
        let mut p = ResumePolicy::default();
        for v in 1..=MAX_RESUMES as u64 + 1 {
            p.played(v, secs(t0, v as f64 * 2.0));
            p.failed(v, None, secs(t0, v as f64 * 2.0 + 1.5), true);
            assert!(matches!(p.decide(secs(t0, v as f64 * 2.0 + 1.5)), Some(Decision::Resume { .. })), "{v}");
            p.submitted();
        }
    }
}
