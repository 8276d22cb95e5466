//! Live parameters (`_p`, `_i`, `_cc`) set from any thread (OSC, MIDI, the
//! param channel, the UI) and read by the audio thread without a lock or a
//! queue: one atomic per parameter and a generation counter.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::builtins::api::{Params, MAX_BARS, PARAMS};
use crate::clock::Bpm;
use crate::engine::Param;
use crate::voices::{NoteEvent, Release, VoiceCount};

/// MIDI note events waiting for the audio thread: a flood beyond this is
/// dropped and counted, never queued without bound.
pub const NOTE_RING: usize = 1024;

/// The current value of every parameter. Writers store and bump the
/// generation; the audio thread copies the table when the generation moved.
pub struct ParamTable {
    p: [AtomicU32; PARAMS],
    i: [AtomicI32; PARAMS],
    cc: [AtomicU32; PARAMS],
    /// The interval-bar tree: how many, each note (f32 bits) and gate.
    bars: AtomicU32,
    bar_freq: [AtomicU32; MAX_BARS],
    bar_gate: [AtomicU32; MAX_BARS],
    generation: AtomicU64,
    /// The tempo asked for (f64 bits; 0: none yet): the audio thread's clock
    /// bends to it from its next block.
    bpm: AtomicU64,
    /// Counts tempo requests, so that asking twice for the same tempo (after
    /// a Link peer changed it meanwhile) is still a request.
    bpm_requests: AtomicU64,
    /// MIDI note events for the voices, in order. Writers (the param thread,
    /// tests) share the producer under a lock the audio thread never takes;
    /// the audio thread owns the consumer (taken once, before it runs).
    notes_tx: Mutex<rtrb::Producer<NoteEvent>>,
    notes_rx: Mutex<Option<rtrb::Consumer<NoteEvent>>>,
    notes_dropped: AtomicU64,
    /// `--voices` and `--release` (ms, f64 bits), read by the audio thread every block.
    voice_count: AtomicU32,
    release_ms: AtomicU64,
}

impl Default for ParamTable {
    fn default() -> Self {
        let (tx, rx) = rtrb::RingBuffer::new(NOTE_RING);
        ParamTable {
            p: std::array::from_fn(|_| AtomicU32::new(0)),
            i: std::array::from_fn(|_| AtomicI32::new(0)),
            cc: std::array::from_fn(|_| AtomicU32::new(0)),
            bars: AtomicU32::new(0),
            bar_freq: std::array::from_fn(|_| AtomicU32::new(0)),
            bar_gate: std::array::from_fn(|_| AtomicU32::new(0)),
            generation: AtomicU64::new(0),
            bpm: AtomicU64::new(0),
            bpm_requests: AtomicU64::new(0),
            notes_tx: Mutex::new(tx),
            notes_rx: Mutex::new(Some(rx)),
            notes_dropped: AtomicU64::new(0),
            voice_count: AtomicU32::new(VoiceCount::DEFAULT.get() as u32),
            release_ms: AtomicU64::new(Release::DEFAULT.ms().to_bits()),
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
            Param::Tempo(bpm) => {
                self.set_bpm(bpm);
                return true;
            }
            Param::Note(e) => return self.note(e),
            _ => false,
        };
        if ok {
            self.generation.fetch_add(1, Ordering::Release);
        }
        ok
    }

    /// Sets the bar tree (note in Hz, touched) that `_bar_freq`/`_bar_gate`
    /// read from the next block. A block that copies while this writes may
    /// see some bars old and some new; the next block sees them all new.
    pub fn set_bars(&self, bars: &[(f32, bool)]) {
        let n = bars.len().min(MAX_BARS);
        for (i, (f, g)) in bars.iter().take(n).enumerate() {
            self.bar_freq[i].store(if f.is_finite() { f.to_bits() } else { 0 }, Ordering::Relaxed);
            self.bar_gate[i].store(u32::from(*g), Ordering::Relaxed);
        }
        self.bars.store(n as u32, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Asks for tempo `bpm` from the next block on (`_beat()` bends, never jumps).
    pub fn set_bpm(&self, bpm: Bpm) {
        self.bpm.store(bpm.get().to_bits(), Ordering::Release);
        self.bpm_requests.fetch_add(1, Ordering::Release);
    }

    /// A tempo asked for since `seen` (the reader's count), once per request.
    pub fn tempo_request(&self, seen: &mut u64) -> Option<Bpm> {
        let n = self.bpm_requests.load(Ordering::Acquire);
        if n == *seen {
            return None;
        }
        *seen = n;
        self.bpm()
    }

    /// The tempo last asked for, if any.
    pub fn bpm(&self) -> Option<Bpm> {
        Bpm::new(f64::from_bits(self.bpm.load(Ordering::Acquire))).ok()
    }

    /// Queues a MIDI note event for the audio thread's next block. A full
    /// ring (a flood) drops it and counts the drop; false for an invalid event.
    pub fn note(&self, e: NoteEvent) -> bool {
        if !e.is_valid() {
            return false;
        }
        let pushed = match self.notes_tx.lock() {
            Ok(mut tx) => tx.push(e).is_ok(),
            Err(_) => false,
        };
        if !pushed {
            self.notes_dropped.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Note events dropped because the audio thread had not taken the earlier ones.
    pub fn notes_dropped(&self) -> u64 {
        self.notes_dropped.load(Ordering::Relaxed)
    }

    /// The receiving end of the note ring, for the one audio thread that plays
    /// notes (None after the first call).
    pub fn take_notes(&self) -> Option<rtrb::Consumer<NoteEvent>> {
        self.notes_rx.lock().ok()?.take()
    }

    /// Sets the voice count and release time the audio thread uses from its next block.
    pub fn set_voices(&self, count: VoiceCount, release: Release) {
        self.voice_count.store(count.get() as u32, Ordering::Relaxed);
        self.release_ms.store(release.ms().to_bits(), Ordering::Relaxed);
    }

    /// The voice count and release time last set.
    pub fn voices(&self) -> (VoiceCount, Release) {
        let count = VoiceCount::new(self.voice_count.load(Ordering::Relaxed) as i64).unwrap_or(VoiceCount::DEFAULT);
        let release = Release::from_ms(f64::from_bits(self.release_ms.load(Ordering::Relaxed)));
        (count, release.unwrap_or(Release::DEFAULT))
    }

    /// Touches or releases bar `i` (a performer's finger on it).
    pub fn set_bar_gate(&self, i: usize, touched: bool) {
        if i < MAX_BARS {
            self.bar_gate[i].store(u32::from(touched), Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
        }
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
        let bars = (self.bars.load(Ordering::Relaxed) as usize).min(MAX_BARS);
        for i in 0..bars {
            params.bar_freq[i] = f32::from_bits(self.bar_freq[i].load(Ordering::Relaxed));
            params.bar_gate[i] = if self.bar_gate[i].load(Ordering::Relaxed) != 0 { 1.0 } else { 0.0 };
        }
        params.bars = bars as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_tree_and_its_touches_reach_the_reader() {
        let t = ParamTable::default();
        let mut params = Params::default();
        let mut seen = 0;
        t.set_bars(&[(440.0, false), (660.0, true), (f32::NAN, true)]);
        t.read_into(&mut seen, &mut params);
        assert_eq!(params.bars, 3);
        assert_eq!((params.bar_freq[1], params.bar_gate[1]), (660.0, 1.0));
        assert_eq!(params.bar_freq[2], 0.0, "non-finite notes read 0");
        t.set_bar_gate(0, true);
        t.read_into(&mut seen, &mut params);
        assert_eq!(params.bar_gate[0], 1.0);
        let many: Vec<(f32, bool)> = (0..400).map(|i| (i as f32, false)).collect();
        t.set_bars(&many);
        t.read_into(&mut seen, &mut params);
        assert_eq!(params.bars as usize, MAX_BARS);
    }

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
