use super::*;

const SR: f64 = 48000.0;
const BLOCK: usize = 64;

/// An allocator and the frame it has reached.
struct Run {
    a: VoiceAllocator,
    view: VoiceView,
    frame: u64,
}

impl Run {
    fn new(voices: i64, release_ms: f64) -> Run {
        let a = VoiceAllocator::new(VoiceCount::new(voices).unwrap(), Release::from_ms(release_ms).unwrap(), SR);
        Run { a, view: VoiceView::default(), frame: 0 }
    }

    /// Runs `frames` in blocks; returns each voice's gate at every frame.
    fn blocks(&mut self, frames: usize) -> Vec<[f32; 4]> {
        let mut out = Vec::new();
        let mut done = 0;
        while done < frames {
            let n = BLOCK.min(frames - done);
            self.a.begin_block(self.frame, n, &mut self.view);
            for k in 0..n as u64 {
                out.push(std::array::from_fn(|v| self.view.gate(v, self.frame + k)));
            }
            self.frame += n as u64;
            done += n;
        }
        out
    }

    fn gate_now(&mut self, v: usize) -> f32 {
        self.blocks(1)[0][v]
    }
}

fn on(note: u8) -> NoteEvent {
    NoteEvent::On { note, velocity: 100 }
}

#[test]
fn a_note_rises_holds_and_rings_out_before_its_voice_is_free() {
    let mut r = Run::new(4, 50.0);
    r.a.apply(on(69));
    let g = r.blocks(480);
    assert!(g[0][0] > 0.0 && g[0][0] < 0.05, "the attack starts from silence: {}", g[0][0]);
    assert!((g[479][0] - 1.0).abs() < 1e-6, "held at 1 after the attack");
    assert_eq!(r.view.hz[0], 440.0);
    assert_eq!(r.view.note[0], 69.0);
    assert!((r.view.velocity[0] - 100.0 / 127.0).abs() < 1e-6);
    r.a.apply(NoteEvent::Off { note: 69 });
    let g = r.blocks(2400);
    assert_eq!(r.a.busy(), 1, "still ringing out");
    // 50 ms at 48 kHz: falling by 1/2400 per frame, never faster.
    let steps: Vec<f32> = g.windows(2).map(|w| w[0][0] - w[1][0]).collect();
    assert!(steps.iter().all(|s| *s <= 1.0 / 2400.0 + 1e-6), "a release never steps");
    assert!(g[2399][0] < 1e-3, "rung out after the release time: {}", g[2399][0]);
    r.blocks(BLOCK);
    assert_eq!(r.view.gate(0, r.frame - 1), 0.0);
    assert_eq!(r.a.busy(), 0, "free once silent");
    assert_eq!(r.view.velocity[0], 0.0);
    assert_eq!(r.view.hz[0], 440.0, "a free voice keeps its last note");
}

#[test]
fn the_oldest_note_is_stolen_with_a_short_fade_and_released_notes_go_first() {
    let mut r = Run::new(2, 1000.0);
    r.a.apply(on(60));
    r.blocks(480);
    r.a.apply(on(64));
    r.blocks(480);
    r.a.apply(on(67));
    assert_eq!(r.a.counts().stolen, 1);
    let g = r.blocks(480);
    // Voice 0 (note 60, the oldest) fades over 5 ms, then plays 67 from
    // silence, rising over 2 ms: the gate never moves faster than that.
    let fall: Vec<f32> = g.windows(2).map(|w| w[0][0] - w[1][0]).collect();
    let max_fall = fall.iter().fold(0.0f32, |m, s| m.max(*s));
    let max_rise = fall.iter().fold(0.0f32, |m, s| m.max(-*s));
    assert!(max_fall <= 1.0 / (STEAL_SECONDS * SR) as f32 + 1e-6, "the steal fades: {max_fall}");
    assert!(max_rise <= 1.0 / (ATTACK_SECONDS * SR) as f32 + 1e-6, "the new note rises: {max_rise}");
    assert!(max_fall > 0.0 && max_rise > 0.0);
    assert!(g.iter().any(|x| x[0] == 0.0), "silent between the two notes");
    assert_eq!(r.view.note[0], 67.0);
    assert_eq!(r.view.note[1], 64.0, "the younger note plays on");
    assert!((g[479][1] - 1.0).abs() < 1e-6);
    // A released note is taken before an older held one.
    r.a.apply(NoteEvent::Off { note: 64 });
    r.blocks(64);
    r.a.apply(on(72));
    r.blocks(960);
    assert_eq!((r.view.note[0], r.view.note[1]), (67.0, 72.0));
}

#[test]
fn the_sustain_pedal_holds_released_notes_until_it_lifts() {
    let mut r = Run::new(4, 10.0);
    r.a.apply(NoteEvent::Sustain(true));
    r.a.apply(on(60));
    r.blocks(480);
    r.a.apply(NoteEvent::Off { note: 60 });
    r.blocks(4800);
    assert!((r.gate_now(0) - 1.0).abs() < 1e-6, "held by the pedal");
    r.a.apply(NoteEvent::Sustain(false));
    r.blocks(960);
    assert_eq!(r.gate_now(0), 0.0);
    assert_eq!(r.a.busy(), 0);
}

#[test]
fn bend_moves_every_voice_and_midi_bytes_decode() {
    let mut r = Run::new(2, 10.0);
    r.a.apply(on(60));
    r.a.apply(NoteEvent::from_midi(&[0xe0, 0x7f, 0x7f]).unwrap());
    r.blocks(64);
    assert!((r.view.note[0] - (60.0 + 2.0 * 8191.0 / 8192.0)).abs() < 1e-4, "{}", r.view.note[0]);
    assert_eq!(NoteEvent::from_midi(&[0xe3, 0, 0x40]), Some(NoteEvent::Bend(0)));
    assert_eq!(NoteEvent::from_midi(&[0x91, 60, 0]), Some(NoteEvent::Off { note: 60 }), "velocity 0 is off");
    assert_eq!(NoteEvent::from_midi(&[0x80, 60, 30]), Some(NoteEvent::Off { note: 60 }));
    assert_eq!(NoteEvent::from_midi(&[0xb0, 64, 127]), Some(NoteEvent::Sustain(true)));
    assert_eq!(NoteEvent::from_midi(&[0xb0, 7, 127]), None, "other controllers are CCs");
    assert_eq!(NoteEvent::from_midi(&[0x90, 200, 1]), None);
    assert_eq!(NoteEvent::from_midi(&[0x90, 60]), None, "truncated");
}

#[test]
fn events_pack_and_bad_ones_are_refused() {
    for e in [on(1), NoteEvent::Off { note: 127 }, NoteEvent::Bend(-8192), NoteEvent::Sustain(true)] {
        let (k, a, b) = e.pack();
        assert_eq!(NoteEvent::unpack(k, a, b), Some(e));
    }
    assert_eq!(NoteEvent::unpack(0, 60, 0), None, "velocity 0");
    assert_eq!(NoteEvent::unpack(0, 128, 1), None);
    assert_eq!(NoteEvent::unpack(2, 0, 9000), None);
    assert_eq!(NoteEvent::unpack(9, 0, 0), None);
    let mut r = Run::new(2, 10.0);
    r.a.apply(NoteEvent::On { note: 200, velocity: 1 });
    assert_eq!(r.a.counts().notes, 0, "invalid events do nothing");
}

#[test]
fn voices_out_of_range_read_zero_and_counts_are_bounded() {
    let mut r = Run::new(3, 10.0);
    r.a.apply(on(60));
    r.blocks(480);
    assert_eq!(r.view.gate(3, r.frame), 0.0);
    assert_eq!(r.view.gate(MAX_VOICES + 5, r.frame), 0.0);
    assert!(VoiceCount::new(0).is_err() && VoiceCount::new(65).is_err() && VoiceCount::new(64).is_ok());
    assert!("abc".parse::<VoiceCount>().unwrap_err().contains("not a whole number"));
    assert!(Release::from_ms(1.0).is_err() && Release::from_ms(f64::NAN).is_err());
    // A flood of notes on one voice never leaves it stuck.
    for n in 0..128 {
        r.a.apply(on(n));
    }
    for n in 0..128 {
        r.a.apply(NoteEvent::Off { note: n });
    }
    r.blocks(4800);
    assert_eq!(r.a.busy(), 0);
}
