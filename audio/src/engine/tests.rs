//! The engine with real TinyCC-compiled patches.

use super::*;
use crate::patch::PatchSource;

const SR: f64 = 48000.0;

struct Rig {
    engine: Engine,
    handle: EngineHandle,
}

impl Rig {
    fn new(channels: usize, crossfade: u64) -> Rig {
        let mut cfg = EngineConfig::new(SR, channels);
        cfg.crossfade = Frames(crossfade);
        let (engine, handle) = engine(cfg).unwrap();
        Rig { engine, handle }
    }

    fn install(&mut self, src: &str) {
        let p = self.handle.compile(&PatchSource::from_text("t.c", src)).unwrap_or_else(|e| panic!("{e}"));
        self.handle.install(p).unwrap();
    }

    /// Renders `frames` frames of channel 0... (interleaved if more channels).
    fn run(&mut self, frames: usize) -> Vec<f32> {
        let ch = self.engine.config().channels;
        let mut out = vec![0.0; frames * ch];
        for block in out.chunks_mut(64 * ch) {
            self.engine.process(&[], block);
        }
        out
    }
}

fn expected_cycle(freq: f64, n: usize) -> f32 {
    (std::f64::consts::TAU * freq * n as f64 / SR).cos() as f32
}

#[test]
fn a_cycle_patch_plays_a_cosine_from_the_first_frame() {
    let mut r = Rig::new(1, 0);
    r.install("void play(void) { _out(0, 0.5f * Cycle(440)); }");
    let out = r.run(4800);
    for (n, y) in out.iter().enumerate() {
        assert!((y - 0.5 * expected_cycle(440.0, n)).abs() < 1e-4, "frame {n}: {y}");
    }
}

#[test]
fn editing_keeps_oscillator_phase_through_a_swap() {
    // The edit changes a constant elsewhere, adds a line above and a new oscillator.
    let a = "void play(void) {\n  _out(0, 0.5f * Cycle(440));\n}\n";
    let b = "// louder pad\n#define AMOUNT 0.0f\nvoid play(void) {\n  float lfo = Tri(0.5);\n  _out(0, 0.5f * Cycle(440) + AMOUNT * lfo);\n}\n";
    for fade in [0, 480] {
        let mut r = Rig::new(1, fade);
        r.install(a);
        let mut out = r.run(1000);
        r.install(b);
        out.extend(r.run(2000));
        for (n, y) in out.iter().enumerate() {
            // With state kept and the sound unchanged, old and new are identical:
            // no step, no bump, whatever the fade length.
            assert!((y - 0.5 * expected_cycle(440.0, n)).abs() < 1e-4, "fade {fade}, frame {n}: {y}");
        }
    }
}

#[test]
fn a_frequency_edit_changes_pitch_without_a_phase_jump() {
    let mut r = Rig::new(1, 0);
    r.install("void play(void) { _out(0, 0.5f * Phasor(100)); }");
    let mut out = r.run(1000);
    r.install("void play(void) { _out(0, 0.5f * Phasor(200)); }");
    out.extend(r.run(10));
    // The phasor goes on from where it was, now with the new increment.
    let step = out[1000] - out[999];
    assert!((step - 100.0 / SR as f32).abs() < 1e-5, "{step}");
}

#[test]
fn calls_in_loops_each_have_their_own_state_and_keep_it() {
    let a =
        "void play(void) { float s = 0; for (int i = 0; i < 4; i++) s += Phasor(100 * (i + 1)); _out(0, 0.1f * s); }";
    let b = "void play(void) {\n float s = 0;\n for (int i = 0; i < 4; i++) s += Phasor(100 * (i + 1));\n _out(0, s * 0.1f);\n}";
    let mut r = Rig::new(1, 0);
    r.install(a);
    let out_a = r.run(100);
    // 100+200+300+400 Hz phasors after one frame: (1+2+3+4)*100/sr.
    assert!((out_a[0] - 100.0 / SR as f32).abs() < 1e-6);
    assert_eq!(r.engine.state().cells_in_use(), 4);
    r.install(b);
    let out_b = r.run(1);
    let want: f32 = 0.1 * (1..=4).map(|k| ((101.0 * k as f64 * 100.0 / SR).fract()) as f32).sum::<f32>();
    assert!((out_b[0] - want).abs() < 1e-4, "{} vs {want}", out_b[0]);
    assert_eq!(r.engine.state().cells_in_use(), 4);
}

#[test]
fn removed_call_sites_are_freed_once_the_fade_is_over() {
    let mut r = Rig::new(1, 100);
    r.install("void play(void) { _out(0, Cycle(1) + Cycle(2) + Delay(Uniform(1), 10)); }");
    r.run(64);
    assert_eq!(r.engine.state().cells_in_use(), 4);
    r.install("void play(void) { _out(0, Cycle(1)); }");
    r.run(64);
    assert_eq!(r.engine.state().cells_in_use(), 4, "the fading program still runs on the copy");
    r.run(64);
    r.handle.collect();
    assert_eq!(r.engine.state().cells_in_use(), 1);
    // And the ids come back to the registry: a new site may reuse one.
    r.install("void play(void) { _out(0, Cycle(1) + Tri(3)); }");
    r.run(256);
    assert_eq!(r.engine.state().cells_in_use(), 2);
}

#[test]
fn compiled_runs_once_after_install_and_slots_persist_across_recompiles() {
    let mut r = Rig::new(1, 0);
    r.install(
        "void compiled(void) { *_float(0) += 1; }\nvoid play(void) { *_int(3) += 1; _out(0, 0.1f * *_float(0)); }",
    );
    let out = r.run(10);
    assert!((out[9] - 0.1).abs() < 1e-7);
    r.install(
        "void compiled(void) { *_float(0) += 1; }\nvoid play(void) { _out(0, 0.1f * *_float(0) + 0.001f * *_int(3)); }",
    );
    let out = r.run(1);
    assert!((out[0] - 0.21).abs() < 1e-6, "{}", out[0]);
}

#[test]
fn time_is_sample_accurate_and_samplerate_is_reported() {
    let mut r = Rig::new(2, 0);
    r.install("void play(void) { _out(0, (float)(_time() * 100.0)); _out(1, (float)(_samplerate() / 1e5)); }");
    let out = r.run(200);
    for n in [0usize, 1, 99, 199] {
        assert!((out[2 * n] - n as f32 * 100.0 / SR as f32).abs() < 1e-6);
        assert_eq!(out[2 * n + 1], 0.48);
    }
}

#[test]
fn beat_bar_and_bpm_follow_the_tempo_clock_frame_by_frame() {
    let mut cfg = EngineConfig::new(SR, 3);
    cfg.crossfade = Frames(0);
    cfg.bpm = crate::clock::Bpm::new(90.0).unwrap();
    cfg.meter = crate::clock::Meter::new(3).unwrap();
    let (engine, handle) = engine(cfg).unwrap();
    let mut r = Rig { engine, handle };
    // Scaled into a float's exact range: beats / 100, bars / 100, bpm / 1000.
    r.install("void play(void) { _out(0, (float)(_beat() / 100.0)); _out(1, (float)(_bar() / 100.0)); _out(2, (float)(_bpm() / 1000.0)); }");
    let out = r.run(96000);
    for n in [0usize, 1, 31999, 32000, 64000, 95999] {
        // 90 BPM at 48 kHz: 32000 frames a beat; 3 beats a bar.
        let beat = n as f64 / 32000.0;
        assert!((out[3 * n] as f64 - beat / 100.0).abs() < 1e-7, "beat at {n}: {}", out[3 * n]);
        assert!((out[3 * n + 1] as f64 - beat / 300.0).abs() < 1e-7, "bar at {n}");
        assert_eq!(out[3 * n + 2], 0.09);
    }
}

#[test]
fn out_of_range_indices_are_reported_once_and_harm_nothing() {
    let mut r = Rig::new(1, 0);
    r.install("void play(void) { *_float(99999) = 5; *_double(-1) = 1; _out(7, 1); _out(0, *_float(99999) + _p(500) + _in(3)); }");
    let out = r.run(640);
    assert!(out.iter().all(|y| *y == 0.0), "scratch slots read as zero");
    let faults: Vec<_> = r.handle.collect().into_iter().filter(|r| matches!(r, Report::Fault { .. })).collect();
    let kinds: Vec<FaultKind> = faults
        .iter()
        .map(|f| match f {
            Report::Fault { kind, .. } => *kind,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        kinds,
        [FaultKind::FloatSlot, FaultKind::DoubleSlot, FaultKind::OutChannel, FaultKind::InChannel, FaultKind::Param]
    );
    assert!(matches!(faults[0], Report::Fault { detail: 99999, at: Frames(64), .. }));
    r.run(640);
    assert!(r.handle.collect().iter().all(|r| !matches!(r, Report::Fault { .. })), "reported once");
}

#[test]
fn parameters_reach_play() {
    let mut r = Rig::new(1, 0);
    r.install("void play(void) { _out(0, _p(1) + _i(2) * 0.01f + _cc(3) * 0.1f); }");
    r.handle.set_param(Param::P(1, 0.25)).unwrap();
    r.handle.set_param(Param::I(2, 3)).unwrap();
    r.handle.set_param(Param::Cc(3, 2.0)).unwrap();
    let out = r.run(1);
    assert!((out[0] - (0.25 + 0.03 + 0.1)).abs() < 1e-6, "{}", out[0]);
}

#[test]
fn random_builtins_are_deterministic_for_a_seed_and_differ_across_seeds() {
    let render = |seed| {
        let mut cfg = EngineConfig::new(SR, 1);
        cfg.seed = seed;
        let (mut e, mut h) = engine(cfg).unwrap();
        let src = "void play(void) { _out(0, 0.3f * (Uniform(1) + Normal(0.2) + Dust(50))); }";
        h.install(h.compile(&PatchSource::from_text("n.c", src)).unwrap()).unwrap();
        let mut out = vec![0.0; 4800];
        e.process(&[], &mut out);
        out
    };
    assert_eq!(render(1), render(1));
    assert_ne!(render(1), render(2));
}

#[test]
fn nan_from_a_patch_is_silenced_and_reported() {
    let mut r = Rig::new(1, 0);
    r.install("void play(void) { _out(0, _time() > 0.001 ? 0.0f / 0.0f : 0.1f); }");
    let out = r.run(480);
    assert!(out.iter().all(|y| y.is_finite()));
    let reports = r.handle.collect();
    assert!(
        reports.iter().any(|r| matches!(r, Report::Protect(ProtectEvent::NonFinite { channel: 0, at: Frames(49) }))),
        "{reports:?}"
    );
}

#[test]
fn a_crossfade_between_unrelated_patches_keeps_the_level() {
    // Two uncorrelated noises of equal power: the mix must not dip in the middle.
    let mut r = Rig::new(1, 4800);
    r.install("void play(void) { _out(0, 0.3f * Normal(1)); }");
    r.run(4800);
    r.install("void play(void) { _out(0, 0.3f * Uniform(1.7320508f)); }");
    let out = r.run(4800);
    let rms = |s: &[f32]| (s.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / s.len() as f64).sqrt();
    let middle = rms(&out[1800..3000]);
    assert!((middle - 0.3).abs() < 0.03, "rms in the middle of the fade: {middle}");
}

#[test]
fn system_and_exit_from_a_patch_do_nothing_but_report() {
    let mut r = Rig::new(1, 0);
    let src = "#include <stdlib.h>\nvoid play(void) { system(\"touch /tmp/clavm-must-not-exist\"); exit(3); _out(0, 0.25f); }";
    let p = r.handle.compile(&PatchSource::from_text("evil.c", src)).unwrap();
    r.handle.install(p).unwrap();
    let out = r.run(64);
    assert_eq!(out[63], 0.25, "play() went on after exit()");
    assert!(!std::path::Path::new("/tmp/clavm-must-not-exist").exists());
    let blocked: Vec<i64> = r
        .handle
        .collect()
        .into_iter()
        .filter_map(|r| match r {
            Report::Fault { kind: FaultKind::Blocked, detail, .. } => Some(detail),
            _ => None,
        })
        .collect();
    assert_eq!(blocked, [0], "reported once, naming system()");
}

/// What a Faust wrapper does: one `calloc` in `compiled()`, kept in a static.
const ALLOCATING: &str = "#include <stdlib.h>\n\
    typedef struct { float phase; float buf[1000]; } dsp_t;\n\
    static dsp_t *d;\n\
    void compiled(void) { d = calloc(1, sizeof(dsp_t)); d->buf[999] = 0.5f; }\n\
    void play(void) { d->phase += 0.01f; if (d->phase >= 1.0f) d->phase -= 1.0f; _out(0, d->phase * d->buf[999]); }";

#[test]
fn calloc_in_compiled_gives_zeroed_state_memory_that_play_keeps_using() {
    let mut r = Rig::new(1, 0);
    r.install(ALLOCATING);
    let out = r.run(640);
    // A ramp of 0.005 per frame up to 0.5: the allocation was zeroed and kept.
    assert!((out[0] - 0.005).abs() < 1e-6 && (out[9] - 0.05).abs() < 1e-5, "{:?}", &out[..10]);
    assert!(out.iter().all(|y| (0.0..0.5).contains(y)));
    assert!(r.handle.collect().iter().all(|r| !matches!(r, Report::Fault { .. })));
    // The bytes are in the heap beside the state memory, counted in its bookkeeping.
    let used: u32 = r.engine.state().heap_used.iter().sum();
    assert!(used as usize >= 4004, "{used}");
}

#[test]
fn a_swap_gives_the_new_version_its_own_allocation_while_the_old_fades_on_its_own() {
    let mut r = Rig::new(1, 256);
    r.install(ALLOCATING);
    r.run(100);
    // The same code again: a fresh DSP (phase from 0) on the live side, the old one fading out on its own memory.
    r.install(&format!("// v2\n{ALLOCATING}"));
    let out = r.run(1024);
    assert!(out.iter().all(|y| y.is_finite() && (0.0..0.5).contains(y)), "{:?}", &out[..8]);
    let used = r.engine.state().heap_used;
    assert_eq!(used.iter().filter(|&&u| u > 0).count(), 2, "two versions, two extents: {used:?}");
}

#[test]
fn allocation_in_play_is_null_and_reported_once_and_an_oversized_one_in_compiled_too() {
    let mut r = Rig::new(1, 0);
    r.install(
        "#include <stdlib.h>\n\
         static int big_failed;\n\
         void compiled(void) { big_failed = malloc(1u << 30) == 0; }\n\
         void play(void) { float *p = malloc(64); _out(0, p ? 1.0f : 0.25f + 0.5f * big_failed); free(p); }",
    );
    let out = r.run(128);
    assert!(out.iter().all(|y| *y == 0.75), "NULL in play(), and for 1 GiB in compiled(): {}", out[0]);
    let faults: Vec<(FaultKind, i64)> = r
        .handle
        .collect()
        .into_iter()
        .filter_map(|r| match r {
            Report::Fault { kind, detail, .. } => Some((kind, detail)),
            _ => None,
        })
        .collect();
    // (Reported in the order of the kinds.)
    assert_eq!(faults, [(FaultKind::AllocInPlay, 64), (FaultKind::HeapExhausted, 1 << 30)]);
}

/// A rig with `voices` voices and the notes 60, 64, 67 (and more) held.
fn voice_rig(channels: usize, voices: i64, notes: &[u8]) -> Rig {
    let mut cfg = EngineConfig::new(SR, channels);
    cfg.crossfade = Frames(0);
    cfg.voices = crate::voices::VoiceCount::new(voices).unwrap();
    let (mut engine, handle) = engine(cfg).unwrap();
    for &note in notes {
        engine.note(crate::voices::NoteEvent::On { note, velocity: 127 });
    }
    Rig { engine, handle }
}

#[test]
fn builtins_in_a_loop_over_voices_keep_each_voices_phase_across_an_edit() {
    // Each voice's oscillator on its own channel, so a phase lost on any one shows.
    let a = "void play(void) {\n  for (int v = 0; v < _voices(); v++)\n    _out(v, Cycle(_hz(v)));\n}\n";
    let b = "// edited: a line above, a new variable, a constant\nvoid play(void) {\n  float k = 1.0f;\n  float wobble = 0.0f * Tri(3);\n  for (int v = 0; v < _voices(); v++)\n    _out(v, k * Cycle(_hz(v)) + wobble);\n}\n";
    let mut edited = voice_rig(3, 3, &[60, 64, 67]);
    let mut reference = voice_rig(3, 3, &[60, 64, 67]);
    edited.install(a);
    reference.install(a);
    assert_eq!(edited.run(4800), reference.run(4800));
    edited.install(b);
    let (e, r) = (edited.run(4800), reference.run(4800));
    let worst = e.iter().zip(&r).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "every voice kept its phase: worst difference {worst}");
    // And they are three different notes: C, E and G.
    for (v, note) in [60.0f64, 64.0, 67.0].iter().enumerate() {
        let hz = 440.0 * 2f64.powf((note - 69.0) / 12.0);
        let crossings =
            r.chunks(3).map(|f| f[v]).collect::<Vec<_>>().windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        assert!((crossings as f64 - hz * 0.1).abs() <= 1.0, "voice {v}: {crossings} cycles in 0.1 s, want {hz}");
    }
}

#[test]
fn voices_read_their_notes_and_a_voice_that_is_not_there_reads_zero_once_reported() {
    let mut r = voice_rig(1, 2, &[69]);
    r.install("void play(void) { _out(0, _note(0) * 0.001f + _velocity(0) * 0.1f + _gate(2) + _hz(-1) + _note(1)); }");
    let out = r.run(640);
    let want = 69.0 * 0.001 + 0.1;
    assert!((out[639] - want).abs() < 1e-5, "{} vs {want}", out[639]);
    let faults: Vec<i64> = r
        .handle
        .collect()
        .into_iter()
        .filter_map(|r| match r {
            Report::Fault { kind: FaultKind::Voice, detail, .. } => Some(detail),
            _ => None,
        })
        .collect();
    assert_eq!(faults, vec![2], "reported once, with the first index");
}
