//! Offline notes: a standard MIDI file (format 0 or 1) read with midly and
//! turned into note events at sample frames (`render --midi FILE.mid`).
//!
//! Ticks become seconds through the file's tempo map (every Set Tempo event
//! of every track, since format 1 files may put them anywhere), or through
//! its SMPTE frame rate; seconds become frames at the render's rate,
//! rounded. Every MIDI channel plays the same voices. Like `--input`, the
//! parent process reads the file; the events travel to the sandboxed
//! render inside the [`RenderSpec`](super::RenderSpec).

use std::io::Read;
use std::path::{Path, PathBuf};

use midly::{Format, MetaMessage, MidiMessage, Smf, Timing, TrackEventKind};

use super::TimedNote;
use crate::voices::NoteEvent;
use crate::Frames;

/// The largest MIDI file read, in bytes (a large piano piece is under 1 MiB).
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// The most note events kept from one file.
pub const MAX_EVENTS: usize = 1 << 20;
/// Microseconds per beat before any Set Tempo event (120 BPM, as the standard says).
const DEFAULT_TEMPO_US: u32 = 500_000;

/// A MIDI file that cannot be used; shown as `FILE: problem`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct MidiFileError {
    pub path: PathBuf,
    pub problem: MidiProblem,
}

#[derive(Debug, thiserror::Error)]
pub enum MidiProblem {
    #[error("cannot read it: {0}")]
    Read(#[from] std::io::Error),
    #[error("larger than {} MiB: not a MIDI file of notes", MAX_FILE_BYTES >> 20)]
    TooLarge,
    #[error("not a standard MIDI file, or a corrupt one ({0})")]
    Corrupt(String),
    #[error("a format 2 MIDI file (independent sequences) is not supported: use format 0 or 1")]
    Format2,
    #[error("it has no tracks")]
    NoTracks,
    #[error("it holds no notes")]
    NoNotes,
    #[error("more than {MAX_EVENTS} note events")]
    TooManyEvents,
    #[error("{0} ticks per beat: the file's timing is absurd")]
    TicksPerBeat(u16),
    #[error("a tempo of 0 microseconds per beat at tick {0}")]
    ZeroTempo(u64),
}

fn fail(path: &Path, problem: MidiProblem) -> MidiFileError {
    MidiFileError { path: path.to_path_buf(), problem }
}

/// Reads `path` and returns its note events at frames of `sample_rate`, in
/// order, dropping those at or past `length` (the render's end).
pub fn load_midi(path: &Path, sample_rate: f64, length: Frames) -> Result<Vec<TimedNote>, MidiFileError> {
    let file = std::fs::File::open(path).map_err(|e| fail(path, e.into()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| fail(path, e.into()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(fail(path, MidiProblem::TooLarge));
    }
    notes_of(&bytes, sample_rate, length).map_err(|p| fail(path, p))
}

/// A note event at its tick.
struct Ticked {
    tick: u64,
    event: NoteEvent,
}

/// The note events of MIDI file `bytes`.
pub fn notes_of(bytes: &[u8], sample_rate: f64, length: Frames) -> Result<Vec<TimedNote>, MidiProblem> {
    let smf = Smf::parse(bytes).map_err(|e| MidiProblem::Corrupt(e.to_string()))?;
    if smf.header.format == Format::Sequential {
        return Err(MidiProblem::Format2);
    }
    if smf.tracks.is_empty() {
        return Err(MidiProblem::NoTracks);
    }
    let mut tempos: Vec<(u64, u32)> = Vec::new();
    let mut events: Vec<Ticked> = Vec::new();
    for track in &smf.tracks {
        let mut tick = 0u64;
        for ev in track {
            tick = tick.saturating_add(u64::from(ev.delta.as_int()));
            match ev.kind {
                TrackEventKind::Meta(MetaMessage::Tempo(us)) => {
                    if us.as_int() == 0 {
                        return Err(MidiProblem::ZeroTempo(tick));
                    }
                    tempos.push((tick, us.as_int()));
                }
                TrackEventKind::Midi { message, .. } => {
                    let event = match message {
                        MidiMessage::NoteOn { key, vel } if vel.as_int() == 0 => NoteEvent::Off { note: key.as_int() },
                        MidiMessage::NoteOn { key, vel } => {
                            NoteEvent::On { note: key.as_int(), velocity: vel.as_int() }
                        }
                        MidiMessage::NoteOff { key, .. } => NoteEvent::Off { note: key.as_int() },
                        MidiMessage::PitchBend { bend } => NoteEvent::Bend(bend.as_int()),
                        MidiMessage::Controller { controller, value } if controller.as_int() == 64 => {
                            NoteEvent::Sustain(value.as_int() >= 64)
                        }
                        _ => continue,
                    };
                    if events.len() == MAX_EVENTS {
                        return Err(MidiProblem::TooManyEvents);
                    }
                    events.push(Ticked { tick, event });
                }
                _ => {}
            }
        }
    }
    if !events.iter().any(|e| matches!(e.event, NoteEvent::On { .. })) {
        return Err(MidiProblem::NoNotes);
    }
    // Stable: events at one tick keep their track order, and their order within a track.
    events.sort_by_key(|e| e.tick);
    tempos.sort_by_key(|t| t.0);
    let mut clock = TickClock::new(smf.header.timing, tempos)?;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let at = Frames::from_seconds(clock.seconds_at(e.tick), sample_rate);
        if at >= length {
            break;
        }
        out.push(TimedNote { at, event: e.event });
    }
    Ok(out)
}

/// Ticks to seconds: walks the tempo map forwards (events come in tick order).
struct TickClock {
    /// Seconds per tick at a fixed rate (SMPTE timing); None: metrical.
    fixed: Option<f64>,
    ticks_per_beat: f64,
    tempos: Vec<(u64, u32)>,
    /// The next tempo change to pass, and the time and tempo up to it.
    next: usize,
    anchor_tick: u64,
    anchor_seconds: f64,
    us_per_beat: u32,
}

impl TickClock {
    fn new(timing: Timing, tempos: Vec<(u64, u32)>) -> Result<TickClock, MidiProblem> {
        let (fixed, ticks_per_beat) = match timing {
            Timing::Metrical(tpb) if tpb.as_int() == 0 => return Err(MidiProblem::TicksPerBeat(0)),
            Timing::Metrical(tpb) => (None, f64::from(tpb.as_int())),
            // Frames per second times ticks per frame; both are positive in a file midly accepts.
            Timing::Timecode(fps, sub) => (Some(1.0 / (f64::from(fps.as_f32()) * f64::from(sub.max(1)))), 1.0),
        };
        Ok(TickClock {
            fixed,
            ticks_per_beat,
            tempos,
            next: 0,
            anchor_tick: 0,
            anchor_seconds: 0.0,
            us_per_beat: DEFAULT_TEMPO_US,
        })
    }

    fn seconds_at(&mut self, tick: u64) -> f64 {
        if let Some(per_tick) = self.fixed {
            return tick as f64 * per_tick;
        }
        while let Some(&(at, us)) = self.tempos.get(self.next).filter(|(at, _)| *at <= tick) {
            self.anchor_seconds += self.span(at);
            self.anchor_tick = at;
            self.us_per_beat = us;
            self.next += 1;
        }
        self.anchor_seconds + self.span(tick)
    }

    /// Seconds from the anchor to `tick` at the current tempo.
    fn span(&self, tick: u64) -> f64 {
        (tick - self.anchor_tick) as f64 / self.ticks_per_beat * f64::from(self.us_per_beat) * 1e-6
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use midly::num::{u15, u24, u28, u4, u7};
    use midly::{Header, TrackEvent};

    fn ev(delta: u32, kind: TrackEventKind<'static>) -> TrackEvent<'static> {
        TrackEvent { delta: u28::new(delta), kind }
    }
    fn note(delta: u32, key: u8, vel: u8) -> TrackEvent<'static> {
        let message = MidiMessage::NoteOn { key: u7::new(key), vel: u7::new(vel) };
        ev(delta, TrackEventKind::Midi { channel: u4::new(0), message })
    }
    fn tempo(delta: u32, us: u32) -> TrackEvent<'static> {
        ev(delta, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(us))))
    }
    fn file(format: Format, tracks: Vec<Vec<TrackEvent<'static>>>) -> Vec<u8> {
        let mut smf = Smf::new(Header::new(format, Timing::Metrical(u15::new(480))));
        smf.tracks = tracks;
        let mut bytes = Vec::new();
        smf.write_std(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn tempo_changes_move_later_notes_and_format_1_tracks_merge() {
        // Track 0: the tempo map (120 BPM, then 60 BPM from beat 1); track 1: notes on beats 0, 1 and 2.
        let map = vec![tempo(0, 500_000), tempo(480, 1_000_000)];
        let notes = vec![note(0, 60, 100), note(480, 60, 0), note(0, 64, 90), note(480, 64, 0)];
        let bytes = file(Format::Parallel, vec![map, notes]);
        let got = notes_of(&bytes, 48000.0, Frames(u64::MAX)).unwrap();
        let at: Vec<u64> = got.iter().map(|n| n.at.0).collect();
        // Beat 1 at 0.5 s (120 BPM), beat 2 one second later (60 BPM).
        assert_eq!(at, vec![0, 24000, 24000, 72000]);
        assert_eq!(got[1].event, NoteEvent::Off { note: 60 }, "an off at the same tick keeps its order");
        assert_eq!(got[2].event, NoteEvent::On { note: 64, velocity: 90 });
        let cut = notes_of(&bytes, 48000.0, Frames(24000)).unwrap();
        assert_eq!(cut.len(), 1, "events past the render's end are dropped");
    }

    #[test]
    fn format_2_empty_and_corrupt_files_are_refused() {
        let bytes = file(Format::Sequential, vec![vec![note(0, 60, 100)]]);
        assert!(matches!(notes_of(&bytes, 48000.0, Frames(1000)), Err(MidiProblem::Format2)));
        let bytes = file(Format::SingleTrack, vec![vec![tempo(0, 400_000)]]);
        assert!(matches!(notes_of(&bytes, 48000.0, Frames(1000)), Err(MidiProblem::NoNotes)));
        assert!(matches!(notes_of(b"", 48000.0, Frames(1000)), Err(MidiProblem::Corrupt(_))));
        assert!(matches!(notes_of(b"RIFF....WAVEfmt ", 48000.0, Frames(1000)), Err(MidiProblem::Corrupt(_))));
        let bytes = file(Format::SingleTrack, vec![vec![tempo(0, 0), note(0, 60, 100)]]);
        assert!(matches!(notes_of(&bytes, 48000.0, Frames(1000)), Err(MidiProblem::ZeroTempo(0))));
    }
}
