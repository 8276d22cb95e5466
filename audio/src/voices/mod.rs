//! MIDI notes on a fixed set of voices: the allocator that turns note on/off,
//! pitch bend and the sustain pedal into what `_note(v)`, `_hz(v)`,
//! `_gate(v)` and `_velocity(v)` read.
//!
//! The engine owns the voice envelope. `_gate(v)` is not a bare 0/1 gate but
//! a de-clicked level: it rises over [`ATTACK_SECONDS`] at note on, falls over
//! the release time (`--release`) at note off, and over [`STEAL_SECONDS`] when
//! the voice is stolen for a new note. A released voice stays allocated until
//! its gate has reached 0, so the engine knows when a release has rung out
//! without asking the patch: a patch that multiplies each voice by
//! `_gate(v)` can never click, whatever the allocator does. (The other
//! design, the patch reporting its envelope level per voice, would let a
//! buggy patch keep every voice busy forever, and would need a value sent
//! back from the worker processes each block.)
//!
//! Everything here is fixed-size: applying an event or starting a block
//! never allocates, locks or logs, so the audio thread calls it directly.
//! Changes take effect at block boundaries (offline, the render loop splits
//! blocks at every note's frame, so a note lands on its exact frame).

pub mod live;
#[cfg(test)]
mod tests;

/// The most voices an engine plays (`--voices` is 1 to this).
pub const MAX_VOICES: usize = 64;
/// How long a note's gate takes to rise from 0 to 1 (a click-free onset).
pub const ATTACK_SECONDS: f64 = 0.002;
/// How long a stolen voice takes to fade before its new note starts.
pub const STEAL_SECONDS: f64 = 0.005;
/// Pitch bend's full deflection, in semitones (the General MIDI default).
pub const BEND_RANGE: f32 = 2.0;
/// Release times `--release` accepts, in milliseconds.
pub const MIN_RELEASE_MS: f64 = 5.0;
pub const MAX_RELEASE_MS: f64 = 10_000.0;

/// How many voices notes are spread over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoiceCount(u8);

/// How long a released note's gate takes to fall from 1 to 0.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Release(f64);

/// A voice setting out of its range, named for the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VoiceError {
    #[error("voices {0}: must be 1 to {MAX_VOICES}")]
    Count(i64),
    #[error("release {0} ms: must be {MIN_RELEASE_MS} to {MAX_RELEASE_MS} ms")]
    Release(f64),
}

impl VoiceCount {
    pub const DEFAULT: VoiceCount = VoiceCount(8);

    pub fn new(n: i64) -> Result<VoiceCount, VoiceError> {
        if (1..=MAX_VOICES as i64).contains(&n) {
            Ok(VoiceCount(n as u8))
        } else {
            Err(VoiceError::Count(n))
        }
    }

    pub fn get(self) -> usize {
        self.0 as usize
    }
}

impl Release {
    pub const DEFAULT: Release = Release(0.1);

    pub fn from_ms(ms: f64) -> Result<Release, VoiceError> {
        if (MIN_RELEASE_MS..=MAX_RELEASE_MS).contains(&ms) {
            Ok(Release(ms / 1000.0))
        } else {
            Err(VoiceError::Release(ms))
        }
    }

    pub fn seconds(self) -> f64 {
        self.0
    }

    pub fn ms(self) -> f64 {
        self.0 * 1000.0
    }
}

impl std::str::FromStr for VoiceCount {
    type Err = String;
    fn from_str(s: &str) -> Result<VoiceCount, String> {
        let v: i64 = s.trim().parse().map_err(|_| format!("voices '{s}': not a whole number"))?;
        VoiceCount::new(v).map_err(|e| e.to_string())
    }
}

impl std::str::FromStr for Release {
    type Err = String;
    fn from_str(s: &str) -> Result<Release, String> {
        let v: f64 = s.trim().parse().map_err(|_| format!("release '{s}': not a number"))?;
        Release::from_ms(v).map_err(|e| e.to_string())
    }
}

/// One MIDI event the voices act on (every MIDI channel is taken alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteEvent {
    /// Note `note` (0..=127) starts, `velocity` 1..=127.
    On { note: u8, velocity: u8 },
    /// Note `note` is released (held on while the sustain pedal is down).
    Off { note: u8 },
    /// Pitch bend, -8192..=8191 (0 is centred), on every voice.
    Bend(i16),
    /// The sustain pedal (CC 64 >= 64: down).
    Sustain(bool),
}

impl NoteEvent {
    /// The event one MIDI channel message means, if it is one of ours.
    /// A note on with velocity 0 is a note off, as MIDI says.
    pub fn from_midi(bytes: &[u8]) -> Option<NoteEvent> {
        match *bytes {
            [s, note, vel] if s & 0xf0 == 0x90 && note < 128 && vel < 128 => {
                Some(if vel == 0 { NoteEvent::Off { note } } else { NoteEvent::On { note, velocity: vel } })
            }
            [s, note, vel] if s & 0xf0 == 0x80 && note < 128 && vel < 128 => Some(NoteEvent::Off { note }),
            [s, lsb, msb] if s & 0xf0 == 0xe0 && lsb < 128 && msb < 128 => {
                Some(NoteEvent::Bend(((msb as i16) << 7 | lsb as i16) - 8192))
            }
            [s, 64, v] if s & 0xf0 == 0xb0 && v < 128 => Some(NoteEvent::Sustain(v >= 64)),
            _ => None,
        }
    }

    /// Whether every field is in its MIDI range (for events that crossed a process boundary).
    pub fn is_valid(self) -> bool {
        match self {
            NoteEvent::On { note, velocity } => note < 128 && (1..128).contains(&velocity),
            NoteEvent::Off { note } => note < 128,
            NoteEvent::Bend(b) => (-8192..8192).contains(&b),
            NoteEvent::Sustain(_) => true,
        }
    }

    /// (kind, a, b) for messages and the offline wire; [`NoteEvent::unpack`] reverses it.
    pub fn pack(self) -> (u8, u8, i16) {
        match self {
            NoteEvent::On { note, velocity } => (0, note, velocity as i16),
            NoteEvent::Off { note } => (1, note, 0),
            NoteEvent::Bend(b) => (2, 0, b),
            NoteEvent::Sustain(down) => (3, down as u8, 0),
        }
    }

    /// The event `pack` made, if the triple is one (checked with [`is_valid`](Self::is_valid)).
    pub fn unpack(kind: u8, a: u8, b: i16) -> Option<NoteEvent> {
        let e = match kind {
            0 => NoteEvent::On { note: a, velocity: u8::try_from(b).ok()? },
            1 => NoteEvent::Off { note: a },
            2 => NoteEvent::Bend(b),
            3 if a <= 1 => NoteEvent::Sustain(a == 1),
            _ => return None,
        };
        e.is_valid().then_some(e)
    }
}

/// The voices as one block sees them: plain data, copied into every worker
/// request with the other parameters. The gate is a ramp through the block:
/// `level + step * (frames since frame0 + 1)`, clamped to 0..1.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Zeroable)]
pub struct VoiceView {
    /// `_voices()`.
    pub count: u32,
    pub _pad: u32,
    /// The block's first frame.
    pub frame0: u64,
    /// MIDI note number with the bend.
    pub note: [f32; MAX_VOICES],
    pub hz: [f32; MAX_VOICES],
    /// 0..1 (velocity / 127); 0 for a free voice.
    pub velocity: [f32; MAX_VOICES],
    /// The gate before the block's first frame, and its change per frame.
    pub level: [f32; MAX_VOICES],
    pub step: [f32; MAX_VOICES],
}

impl Default for VoiceView {
    fn default() -> Self {
        bytemuck::Zeroable::zeroed()
    }
}

impl VoiceView {
    /// Voice `v`'s gate at `frame` (0 for a voice that is not there).
    #[inline]
    pub fn gate(&self, v: usize, frame: u64) -> f32 {
        if v >= (self.count as usize).min(MAX_VOICES) {
            return 0.0;
        }
        let k = frame.wrapping_sub(self.frame0).saturating_add(1).min(1 << 24) as f32;
        (self.level[v] + self.step[v] * k).clamp(0.0, 1.0)
    }
}

/// What a voice is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Free,
    /// The key is down.
    Held,
    /// The key is up but the sustain pedal holds the note.
    Sustained,
    /// Fading out at the release rate; free once silent.
    Released,
    /// Fading out fast for a new note, which starts once silent. `released`:
    /// the new note's key is already up (the pedal holds it).
    Stealing {
        note: u8,
        velocity: u8,
        released: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Voice {
    phase: Phase,
    note: u8,
    velocity: u8,
    /// Whether the voice has ever played (a voice never used reads note 0 and 0 Hz).
    sounded: bool,
    level: f32,
    step: f32,
    /// When its note started (a counter): the smallest is the oldest.
    age: u64,
}

/// Levels this close to 0 or 1 are taken as 0 or 1 (-100 dB).
const SNAP: f32 = 1e-5;

const IDLE: Voice = Voice { phase: Phase::Free, note: 0, velocity: 0, sounded: false, level: 0.0, step: 0.0, age: 0 };

/// What happened to voices, counted (for reports and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VoiceCounts {
    pub notes: u64,
    /// Notes that took a sounding voice away from an older note.
    pub stolen: u64,
}

/// Note events to voices. Owned by whoever runs the blocks (the offline
/// engine, the live audio thread); see the module's documentation.
pub struct VoiceAllocator {
    voices: [Voice; MAX_VOICES],
    count: usize,
    sample_rate: f64,
    attack_step: f32,
    steal_step: f32,
    release_step: f32,
    bend: i16,
    pedal: bool,
    next_age: u64,
    /// Frames of the last block whose ramps are not yet applied to the levels.
    pending: u64,
    counts: VoiceCounts,
}

impl VoiceAllocator {
    pub fn new(count: VoiceCount, release: Release, sample_rate: f64) -> VoiceAllocator {
        let per_frame = |seconds: f64| (1.0 / (seconds * sample_rate).max(1.0)) as f32;
        VoiceAllocator {
            voices: [IDLE; MAX_VOICES],
            count: count.get(),
            sample_rate,
            attack_step: per_frame(ATTACK_SECONDS),
            steal_step: per_frame(STEAL_SECONDS),
            release_step: per_frame(release.seconds()),
            bend: 0,
            pedal: false,
            next_age: 0,
            pending: 0,
            counts: VoiceCounts::default(),
        }
    }

    /// Changes the voice count and release time (live, from the next block).
    /// Voices beyond a smaller count are freed.
    pub fn configure(&mut self, count: VoiceCount, release: Release) {
        self.release_step = (1.0 / (release.seconds() * self.sample_rate).max(1.0)) as f32;
        if count.get() < self.count {
            self.voices[count.get()..].fill(IDLE);
        }
        self.count = count.get();
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn counts(&self) -> VoiceCounts {
        self.counts
    }

    /// Applies one event (at the current block boundary).
    pub fn apply(&mut self, e: NoteEvent) {
        if !e.is_valid() {
            return;
        }
        self.settle();
        match e {
            NoteEvent::On { note, velocity } => self.note_on(note, velocity),
            NoteEvent::Off { note } => self.note_off(note),
            NoteEvent::Bend(b) => self.bend = b,
            NoteEvent::Sustain(down) => {
                self.pedal = down;
                if !down {
                    for v in &mut self.voices[..self.count] {
                        match v.phase {
                            Phase::Sustained => v.phase = Phase::Released,
                            // Its key went up while the pedal held it: it never sounds.
                            Phase::Stealing { released: true, .. } => v.phase = Phase::Released,
                            _ => {}
                        }
                    }
                }
            }
        }
    }

    fn note_on(&mut self, note: u8, velocity: u8) {
        self.counts.notes += 1;
        let voices = &self.voices[..self.count];
        // A free voice if there is one (the lowest: few notes keep to the first
        // voices), else the oldest note, preferring those already released.
        let rank = |v: &Voice| match v.phase {
            Phase::Free => (0, 0),
            Phase::Released => (1, v.age),
            Phase::Sustained => (2, v.age),
            Phase::Held => (3, v.age),
            Phase::Stealing { .. } => (4, v.age),
        };
        let Some(i) = (0..voices.len()).min_by_key(|&i| rank(&voices[i])) else { return };
        let v = &mut self.voices[i];
        if v.phase == Phase::Free || v.level <= 0.0 {
            self.start(i, note, velocity, false);
        } else {
            self.counts.stolen += 1;
            v.phase = Phase::Stealing { note, velocity, released: false };
        }
    }

    fn start(&mut self, i: usize, note: u8, velocity: u8, released: bool) {
        let age = self.next_age;
        self.next_age += 1;
        let v = &mut self.voices[i];
        v.phase = if released { Phase::Sustained } else { Phase::Held };
        v.note = note;
        v.velocity = velocity;
        v.sounded = true;
        v.level = 0.0;
        v.age = age;
    }

    fn note_off(&mut self, note: u8) {
        let pedal = self.pedal;
        for v in &mut self.voices[..self.count] {
            match v.phase {
                Phase::Held if v.note == note => v.phase = if pedal { Phase::Sustained } else { Phase::Released },
                Phase::Stealing { note: n, velocity, released: false } if n == note => {
                    // The new note's key is up before it sounded: held by the pedal, or never played.
                    v.phase = if pedal { Phase::Stealing { note, velocity, released: true } } else { Phase::Released };
                }
                _ => {}
            }
        }
    }

    /// Applies the last block's ramps: released voices that reached silence
    /// are free, stolen ones start their new note.
    fn settle(&mut self) {
        let n = std::mem::take(&mut self.pending);
        if n == 0 {
            return;
        }
        for i in 0..self.count {
            let v = &mut self.voices[i];
            v.level = (v.level + v.step * n as f32).clamp(0.0, 1.0);
            // A ramp summed in f32 ends a hair off its target: snap it there.
            if v.level < SNAP {
                v.level = 0.0;
            } else if v.level > 1.0 - SNAP {
                v.level = 1.0;
            }
            if v.level > 0.0 {
                continue;
            }
            match v.phase {
                Phase::Released => {
                    v.phase = Phase::Free;
                    v.velocity = 0;
                }
                Phase::Stealing { note, velocity, released } => self.start(i, note, velocity, released),
                _ => {}
            }
        }
    }

    /// Starts a block of `frames` at `frame0`: applies what the last block
    /// did and writes what this one's frames read into `view`.
    pub fn begin_block(&mut self, frame0: u64, frames: usize, view: &mut VoiceView) {
        self.settle();
        let bend = self.bend as f32 / 8192.0 * BEND_RANGE;
        view.count = self.count as u32;
        view.frame0 = frame0;
        for (i, v) in self.voices.iter_mut().enumerate() {
            v.step = match v.phase {
                Phase::Free => 0.0,
                Phase::Held | Phase::Sustained if v.level >= 1.0 => 0.0,
                Phase::Held | Phase::Sustained => self.attack_step,
                Phase::Released => -self.release_step,
                Phase::Stealing { .. } => -self.steal_step,
            };
            let (note, hz) = if v.sounded && i < self.count {
                let note = v.note as f32 + bend;
                (note, 440.0 * ((note - 69.0) / 12.0).exp2())
            } else {
                (0.0, 0.0)
            };
            view.note[i] = note;
            view.hz[i] = hz;
            view.velocity[i] = if v.phase == Phase::Free { 0.0 } else { v.velocity as f32 / 127.0 };
            view.level[i] = v.level;
            view.step[i] = v.step;
        }
        self.pending = frames as u64;
    }

    /// How many voices are allocated (not free) now.
    pub fn busy(&self) -> usize {
        self.voices[..self.count].iter().filter(|v| v.phase != Phase::Free).count()
    }
}
