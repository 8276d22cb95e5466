//! Ableton Link (through the rusty_link crate, which builds Ableton's own
//! C wrapper): the tempo clock follows the session's beat timeline and
//! tempo; a tempo asked of this engine is asked of the whole session.
//!
//! Link is GPL-2.0-or-later: a binary built with this feature is too (see
//! docs/ARCHITECTURE.md, "Decisions").

use std::time::Duration;

use rusty_link::{AblLink, SessionState};

use super::timeline::{BeatTimeline, HostTimeFilter, Placement};
use super::{Bpm, Meter};

/// A member of the Link session on the local network.
pub struct LinkTimeline {
    link: AblLink,
    state: SessionState,
    filter: HostTimeFilter,
}

impl LinkTimeline {
    /// Joins (or starts) the session; `bpm` is the tempo if there is no one else yet.
    pub fn join(bpm: Bpm) -> LinkTimeline {
        let link = AblLink::new(bpm.get());
        link.enable(true);
        LinkTimeline { link, state: SessionState::new(), filter: HostTimeFilter::default() }
    }

    fn heard_at(&mut self, frame: u64, until_heard: Duration) -> i64 {
        let now = self.filter.host_time(frame, self.link.clock_micros());
        now + until_heard.as_micros() as i64
    }
}

impl BeatTimeline for LinkTimeline {
    fn place(&mut self, frame: u64, until_heard: Duration, meter: Meter) -> Option<Placement> {
        let heard_at_micros = self.heard_at(frame, until_heard);
        // Link's audio-thread capture: realtime-safe, no allocation.
        self.link.capture_audio_session_state(&mut self.state);
        let bpm = Bpm::new(self.state.tempo()).ok()?;
        let beat = self.state.beat_at_time(heard_at_micros, meter.get() as f64);
        Some(Placement { beat, bpm, heard_at_micros })
    }

    fn request_tempo(&mut self, bpm: Bpm, frame: u64, until_heard: Duration) {
        let at = self.heard_at(frame, until_heard);
        self.link.capture_audio_session_state(&mut self.state);
        self.state.set_tempo(bpm.get(), at);
        self.link.commit_audio_session_state(&self.state);
    }

    fn peers(&self) -> u64 {
        self.link.num_peers()
    }
}

impl Drop for LinkTimeline {
    fn drop(&mut self) {
        self.link.enable(false);
    }
}
