//! MIDI notes on voices, end to end: `clavm render --midi` with files made
//! here by midly's writer (a chord at its partials, silence after release,
//! stealing without a click, tempo events honoured), bad MIDI files as one
//! error line each, and a note flood through our own JACK MIDI client into
//! `clavm play` (drops counted and reported, the sound goes on).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

mod common;
use common::jack::{connect_when_ready, drain_stderr, play_on, record, recorder, rms, Jackd, SR};

/// Each voice a sine at its note, shaped by the engine's gate.
const POLY: &str = "void play(void) {\n  float s = 0;\n  for (int v = 0; v < _voices(); v++)\n    s += 0.2f * _gate(v) * Cycle(_hz(v));\n  _out(0, s);\n  _out(1, s);\n}\n";

fn ev(delta: u32, kind: TrackEventKind<'static>) -> TrackEvent<'static> {
    TrackEvent { delta: u28::new(delta), kind }
}

fn key(delta: u32, note: u8, vel: u8) -> TrackEvent<'static> {
    let message = MidiMessage::NoteOn { key: u7::new(note), vel: u7::new(vel) };
    ev(delta, TrackEventKind::Midi { channel: u4::new(0), message })
}

fn tempo(delta: u32, us_per_beat: u32) -> TrackEvent<'static> {
    ev(delta, TrackEventKind::Meta(MetaMessage::Tempo(u24::new(us_per_beat))))
}

/// Writes a MIDI file of `format` with 480 ticks per beat.
fn midi_file(path: &Path, format: Format, tracks: Vec<Vec<TrackEvent<'static>>>) {
    let mut smf = Smf::new(Header::new(format, Timing::Metrical(u15::new(480))));
    smf.tracks = tracks;
    smf.save(path).unwrap();
}

fn clavm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clavm")).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Renders `patch` with `extra` arguments; channel 0 of the result.
fn render(dir: &Path, patch: &str, seconds: f64, extra: &[&str]) -> Vec<f32> {
    let p = dir.join("poly.c");
    std::fs::write(&p, patch).unwrap();
    let out = dir.join("out.wav");
    let secs = seconds.to_string();
    let mut args = vec!["render", p.to_str().unwrap(), "-o", out.to_str().unwrap(), "--seconds", &secs];
    args.extend_from_slice(extra);
    let o = clavm(&args);
    assert!(o.status.success(), "{}", text(&o));
    let mut wav = hound::WavReader::open(&out).unwrap();
    assert_eq!(wav.spec().sample_rate as usize, SR);
    wav.samples::<f32>().step_by(2).map(|s| s.unwrap()).collect()
}

/// The magnitude spectrum of `x` (Hann window), one bin per `SR / x.len()` Hz.
fn spectrum(x: &[f32]) -> Vec<f64> {
    let n = x.len();
    let mut input: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, v)| *v as f64 * (0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos()))
        .collect();
    let fft = realfft::RealFftPlanner::<f64>::new().plan_fft_forward(n);
    let mut out = fft.make_output_vec();
    fft.process(&mut input, &mut out).unwrap();
    out.iter().map(|c| c.norm()).collect()
}

/// The strongest magnitude within 3 Hz of `hz`.
fn level_at(spec: &[f64], n: usize, hz: f64) -> f64 {
    let bin = |f: f64| (f * n as f64 / SR as f64).round() as usize;
    spec[bin(hz - 3.0)..=bin(hz + 3.0)].iter().copied().fold(0.0, f64::max)
}

fn hz(note: f64) -> f64 {
    440.0 * 2f64.powf((note - 69.0) / 12.0)
}

#[test]
fn a_chord_from_a_midi_file_sounds_its_three_notes_then_silence_with_the_tempo_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let mid = dir.path().join("chord.mid");
    // Format 1: the tempo map (60 BPM: a beat is 1 s) in its own track, the
    // chord in another: C-E-G on at beat 0, off at beat 1. At the default
    // 120 BPM the chord would stop at 0.5 s.
    let map = vec![tempo(0, 1_000_000)];
    let chord = vec![key(0, 60, 100), key(0, 64, 100), key(0, 67, 100), key(480, 60, 0), key(0, 64, 0), key(0, 67, 0)];
    midi_file(&mid, Format::Parallel, vec![map, chord]);
    let x = render(dir.path(), POLY, 1.5, &["--midi", mid.to_str().unwrap(), "--release", "50"]);
    // 0.05..0.95 s: the held chord.
    let held = &x[SR / 20..SR * 19 / 20];
    let spec = spectrum(held);
    let floor = {
        let mut s = spec.clone();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    };
    for note in [60.0, 64.0, 67.0] {
        let l = level_at(&spec, held.len(), hz(note));
        assert!(l > 1000.0 * floor, "note {note} ({:.1} Hz): {l} against a floor of {floor}", hz(note));
    }
    // Nothing else: the strongest bin away from the three partials is far below them.
    let weakest = [60.0, 64.0, 67.0].iter().map(|n| level_at(&spec, held.len(), hz(*n))).fold(f64::MAX, f64::min);
    let partial_bins: Vec<usize> =
        [60.0, 64.0, 67.0].iter().map(|n| (hz(*n) * held.len() as f64 / SR as f64) as usize).collect();
    let stray = spec
        .iter()
        .enumerate()
        .filter(|(i, _)| partial_bins.iter().all(|b| i.abs_diff(*b) > 8))
        .map(|(_, m)| *m)
        .fold(0.0, f64::max);
    assert!(stray < weakest / 100.0, "a stray partial: {stray} against {weakest}");
    // Released at 1.0 s, rung out 50 ms later (and the block it ends in): silence.
    let after = &x[SR * 11 / 10..];
    let loudest = after.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert_eq!(loudest, 0.0, "silence after the release");
    // And not before the release: still sounding at 0.99 s (the tempo map was honoured).
    assert!(rms(&x[SR * 95 / 100..SR * 99 / 100]) > 0.1);
}

#[test]
fn a_stolen_voice_fades_instead_of_clicking_and_the_oldest_note_goes() {
    let dir = tempfile::tempdir().unwrap();
    let mid = dir.path().join("steal.mid");
    // Four notes 0.1 s apart (120 BPM: 96 ticks), all held to 0.8 s, on 2 voices.
    let notes = [48u8, 55, 60, 64];
    let mut track: Vec<TrackEvent<'static>> =
        notes.iter().enumerate().map(|(i, n)| key(if i == 0 { 0 } else { 96 }, *n, 127)).collect();
    track.push(key(96 * 5, 48, 0));
    track.extend(notes[1..].iter().map(|n| key(0, *n, 0)));
    midi_file(&mid, Format::SingleTrack, vec![track]);
    let x = render(dir.path(), POLY, 1.0, &["--midi", mid.to_str().unwrap(), "--voices", "2"]);
    // Two sines of 0.2 at most 330 Hz move at most 2 * 0.2 * 2π * 330 / 48000
    // per sample; a click (a voice cut or restarted at full level) jumps by up to 0.4.
    let smooth = 2.0 * 0.2 * std::f64::consts::TAU * hz(64.0) / SR as f64;
    let worst = x.windows(2).map(|w| (w[1] - w[0]).abs() as f64).fold(0.0, f64::max);
    assert!(worst < smooth * 1.2, "a step of {worst} (smooth is at most {smooth})");
    // At 0.5-0.8 s only the two newest notes sound: 48 and 55 were stolen.
    let late = &x[SR / 2..SR * 8 / 10];
    let spec = spectrum(late);
    let level = |n: u8| level_at(&spec, late.len(), hz(n as f64));
    assert!(level(60) > 100.0 * level(48) && level(64) > 100.0 * level(55), "{:?}", notes.map(level));
}

#[test]
fn bad_midi_files_are_one_error_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let patch = dir.path().join("p.c");
    std::fs::write(&patch, POLY).unwrap();
    let mk = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let format2 = dir.path().join("format2.mid");
    midi_file(&format2, Format::Sequential, vec![vec![key(0, 60, 100)], vec![key(0, 64, 100)]]);
    let no_notes = dir.path().join("no-notes.mid");
    midi_file(&no_notes, Format::SingleTrack, vec![vec![tempo(0, 500_000)]]);
    let mut truncated = std::fs::read(&format2).unwrap();
    truncated.truncate(10);
    let cases: Vec<(PathBuf, &str)> = vec![
        (mk("empty.mid", b""), "not a standard MIDI file"),
        (
            mk("corrupt.mid", &[0x4d, 0x54, 0x68, 0x64, 0xff, 0x00, 0x13, 0x37, 0xde, 0xad, 0xbe, 0xef]),
            "not a standard MIDI file",
        ),
        (mk("text.mid", b"this is a text file, not music\n"), "not a standard MIDI file"),
        (mk("truncated.mid", &truncated), "not a standard MIDI file"),
        (format2, "format 2"),
        (no_notes, "no notes"),
        (dir.path().join("missing.mid"), "cannot read it"),
    ];
    for (file, says) in cases {
        let out = dir.path().join("out.wav");
        let o =
            clavm(&["render", patch.to_str().unwrap(), "-o", out.to_str().unwrap(), "--midi", file.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{}: {err}", file.display());
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("clavm: error: ") && err.contains(&*file.to_string_lossy()), "{err}");
        assert!(err.contains(says), "{}: wanted '{says}' in {err}", file.display());
        assert!(!out.exists(), "no output for a bad MIDI file");
    }
    // Voices out of range: a usage error.
    let o = clavm(&["render", patch.to_str().unwrap(), "-o", "/dev/null", "--voices", "65"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 to 64"), "{}", text(&o));
}

/// JACK tests share one server name per process: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// A drone that must go on through anything, and the voices on top.
/// (`_velocity(0)` outside the loop: voice 0 exists in the test run too, so it is no fault.)
const DRONE: &str = "void play(void) {\n  float s = 0.2f * Cycle(220) + 0.0f * _velocity(0);\n  for (int v = 0; v < _voices(); v++)\n    s += 0.1f * _gate(v) * Cycle(_hz(v));\n  _out(0, s);\n  _out(1, s);\n}\n";

#[test]
fn a_note_flood_through_jack_midi_is_counted_and_reported_and_the_sound_goes_on() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let jackd = Jackd::start();
    let dir = tempfile::tempdir().unwrap();
    let patch = dir.path().join("drone.c");
    std::fs::write(&patch, DRONE).unwrap();
    let engine = format!("t{}m", std::process::id());
    let mut play = play_on(&jackd, &patch, &["--engine", &engine, "--no-osc", "--midi", "jack", "--voices", "16"]);
    let err = drain_stderr(&mut play);
    let (rec_client, rec) = recorder("clavm-notes-rec");
    connect_when_ready(rec_client.as_client(), "cpal_client_out:out_0", "clavm-notes-rec:in");

    // Our MIDI client: sends what is queued, at most `per_cycle` events a cycle.
    let (midi, _) = jack::Client::new("clavm-test-notes", jack::ClientOptions::NO_START_SERVER).unwrap();
    let mut out = midi.register_port("out", jack::MidiOut::default()).unwrap();
    let queue: std::sync::Arc<Mutex<std::collections::VecDeque<[u8; 3]>>> = Default::default();
    let q = queue.clone();
    let handler = jack::contrib::ClosureProcessHandler::new(move |_: &jack::Client, ps: &jack::ProcessScope| {
        let mut w = out.writer(ps);
        if let Ok(mut q) = q.try_lock() {
            // Times must not decrease within a cycle; past what the port buffer holds JACK refuses.
            for i in 0..1000u32 {
                let Some(m) = q.pop_front() else { break };
                let _ = w.write(&jack::RawMidi { time: i * ps.n_frames() / 1000, bytes: &m });
            }
        }
        jack::Control::Continue
    });
    let midi = midi.activate_async((), handler).unwrap();
    connect_when_ready(midi.as_client(), "clavm-test-notes:out", "clavm-midi:cc_in");
    std::thread::sleep(Duration::from_millis(300));
    let drone = rms(&record(&rec, 0.3));
    assert!((drone - 0.2 / 2f64.sqrt()).abs() < 0.02, "the drone alone: rms {drone}");

    // One note works: it adds its partial.
    let send = |ms: &[[u8; 3]]| queue.lock().unwrap().extend(ms.iter().copied());
    send(&[[0x90, 69, 127]]);
    std::thread::sleep(Duration::from_millis(100));
    let with_note = rms(&record(&rec, 0.3));
    let want = (0.2f64.powi(2) / 2.0 + 0.1f64.powi(2) / 2.0).sqrt();
    assert!((with_note - want).abs() < 0.02, "drone and one note: rms {with_note}, want {want}");
    send(&[[0x80, 69, 0]]);

    // The flood: up to 1000 events a cycle (2.7 ms) for about half a second,
    // far more than the engine takes in a block. Record meanwhile: the drone must go on.
    let flood: Vec<[u8; 3]> =
        (0..150_000u32)
            .map(|i| {
                if i % 2 == 0 {
                    [0x90, (i / 2 % 128) as u8, 1 + (i % 127) as u8]
                } else {
                    [0x80, (i / 2 % 128) as u8, 0]
                }
            })
            .collect();
    send(&flood);
    let during = record(&rec, 0.8);
    // Then every key off: whatever the flood lost, nothing stays stuck.
    while !queue.lock().unwrap().is_empty() {
        std::thread::sleep(Duration::from_millis(20));
    }
    send(&(0..128u8).map(|n| [0x80, n, 0]).collect::<Vec<_>>());
    send(&[[0xb0, 64, 0]]);
    std::thread::sleep(Duration::from_millis(400));
    let after = rms(&record(&rec, 0.3));
    assert!((after - drone).abs() < 0.02, "all notes released after the flood: rms {after} (drone {drone})");
    send(&[[0x90, 69, 127]]);
    std::thread::sleep(Duration::from_millis(100));
    let again = rms(&record(&rec, 0.3));
    assert!((again - want).abs() < 0.02, "a note after the flood plays: rms {again}, want {want}");

    std::thread::sleep(Duration::from_millis(1100));
    drop(midi);
    drop(rec_client);
    // SAFETY: signalling our own child: Ctrl-C, which `clavm play` handles.
    unsafe { libc::kill(play.id() as i32, libc::SIGINT) };
    let status = play.wait().unwrap();
    let err = err.join().unwrap();
    assert!(status.success(), "{err}");
    // The sound went on through the flood: nearly every 20 ms window carries the drone.
    let windows: Vec<f64> = during.chunks(SR / 50).filter(|w| w.len() == SR / 50).map(rms).collect();
    let alive = windows.iter().filter(|r| **r > 0.1).count();
    assert!(alive * 10 >= windows.len() * 9, "{alive} of {} windows carried sound: {windows:?}\n{err}", windows.len());
    let dropped = err
        .lines()
        .filter_map(|l| l.strip_prefix("clavm: MIDI note events so far: "))
        .filter_map(|l| l.split(' ').next()?.parse::<u64>().ok())
        .max();
    let channel_drops = err.lines().any(|l| l.contains("parameter messages so far") && l.contains("dropped (flood)"));
    assert!(dropped.is_some_and(|n| n > 0) || channel_drops, "drops counted and reported: {err}");
    assert!(!err.contains("not one of the voices"), "{err}");
    for l in err.lines().filter(|l| l.contains("dropped")) {
        println!("{l}");
    }
    drop(jackd);
}
