//! Samples (issue 14 part 3, "Bad input", part 6): one file per format made
//! with sox and ffmpeg at other rates, played triggered, reversed and looped
//! by `clavm render`, checked for pitch and length; every bad file is one
//! error line naming it; a full-scale sample goes through the protection.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The live audio callback (`LiveProcessor::process`) runs under
/// `assert_no_alloc` in debug builds: with this allocator, an allocation
/// there (a sample loaded on the audio thread, say) aborts the run.
#[cfg(debug_assertions)]
#[global_allocator]
static ALLOC_GUARD: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

mod common;

fn clavm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clavm")).args(args).output().expect("run clavm")
}

fn tool(program: &str, args: &[&str]) {
    let o = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("this test makes its sound files with {program} (Debian: apt install sox ffmpeg): {e}")
    });
    assert!(o.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

const HZ: f64 = 500.0;
const SECONDS: f64 = 0.5;
const RATE: u32 = 48000;

/// A 500 Hz sine, 0.5 s, its amplitude rising from 0 to 0.8 (so direction
/// shows), at `rate`, in the format the name says.
fn make(dir: &Path, name: &str, rate: u32) -> PathBuf {
    let wav = dir.join(format!("src-{rate}.wav"));
    let r = rate.to_string();
    let secs = SECONDS.to_string();
    tool(
        "sox",
        &[
            "-n",
            "-r",
            &r,
            "-c",
            "1",
            "-b",
            "16",
            wav.to_str().unwrap(),
            "synth",
            &secs,
            "sine",
            "500",
            "fade",
            "t",
            &secs,
            "vol",
            "0.8",
        ],
    );
    let out = dir.join(name);
    match out.extension().and_then(|e| e.to_str()) {
        Some("wav") => std::fs::rename(&wav, &out).unwrap(),
        Some("flac") => tool("sox", &[wav.to_str().unwrap(), out.to_str().unwrap()]),
        Some("mp3") => tool(
            "ffmpeg",
            &[
                "-loglevel",
                "error",
                "-y",
                "-i",
                wav.to_str().unwrap(),
                "-c:a",
                "libmp3lame",
                "-b:a",
                "192k",
                out.to_str().unwrap(),
            ],
        ),
        Some("ogg") => tool(
            "ffmpeg",
            &[
                "-loglevel",
                "error",
                "-y",
                "-i",
                wav.to_str().unwrap(),
                "-c:a",
                "libvorbis",
                "-q:a",
                "6",
                out.to_str().unwrap(),
            ],
        ),
        other => panic!("{other:?}"),
    }
    out
}

/// Every channel of a rendered WAV.
fn channels(path: &Path) -> Vec<Vec<f32>> {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    assert_eq!(spec.sample_rate, RATE);
    let ch = spec.channels as usize;
    let all: Vec<f32> = r.samples::<f32>().map(Result::unwrap).collect();
    (0..ch).map(|c| all.iter().skip(c).step_by(ch).copied().collect()).collect()
}

/// Frequency from the upward zero crossings of `x` (interpolated), with
/// hysteresis (a crossing counts only after the signal went below -0.02,
/// so a codec's near-silent padding adds none) and the mean of the middle
/// half of the periods (so a loop's seam or a gap does not count).
fn frequency(x: &[f32]) -> f64 {
    let mut ups = Vec::new();
    let mut armed = false;
    for (i, w) in x.windows(2).enumerate() {
        if w[0] < -0.02 {
            armed = true;
        }
        if armed && w[0] < 0.0 && w[1] >= 0.0 {
            ups.push(i as f64 + f64::from(w[0] / (w[0] - w[1])));
            armed = false;
        }
    }
    assert!(ups.len() > 10, "too few crossings: {}", ups.len());
    let mut periods: Vec<f64> = ups.windows(2).map(|w| w[1] - w[0]).collect();
    periods.sort_by(f64::total_cmp);
    let mid = &periods[periods.len() / 4..periods.len() * 3 / 4];
    f64::from(RATE) * mid.len() as f64 / mid.iter().sum::<f64>()
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// The first and one past the last frame louder than a whisper.
fn span(x: &[f32]) -> (usize, usize) {
    let loud = |v: &f32| v.abs() > 1e-3;
    let a = x.iter().position(loud).unwrap_or(0);
    let z = x.iter().rposition(loud).map_or(0, |i| i + 1);
    (a, z)
}

const PATCH: &str = r#"
// ch0: one shot at 0 s and again at 0.8 s; ch1: backwards; ch2: looped at twice the speed.
void play(void) {
    float t = (float)_time();
    float trig = (t < 0.01f || (t > 0.8f && t < 0.81f)) ? 1.0f : 0.0f;
    _out(0, Sample(0, 1, trig));
    _out(1, Sample(0, -1, t < 0.01f));
    _out(2, SampleLoop(0, 2));
    *_float(0) = _sample_seconds(0);
    *_int(0) = _sample_channels(0);
}
"#;

fn check_format(name: &str, rate: u32, lossy: bool) {
    let dir = tempfile::tempdir().unwrap();
    let file = make(dir.path(), name, rate);
    let patch = dir.path().join("p.c");
    std::fs::write(&patch, PATCH).unwrap();
    let out = dir.path().join("out.wav");
    let sample = format!("0={}", file.display());
    let args = [
        "render",
        patch.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--seconds",
        "1.4",
        "--channels",
        "3",
        "--sample",
        &sample,
    ];
    let o = clavm(&args);
    assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
    let ch = channels(&out);
    let want = (SECONDS * f64::from(RATE)) as usize;
    // Encoders add a delay and padding (a codec frame or two of near-silence).
    let slack = if lossy { 2500 } else { 8 };
    let first = &ch[0][..(0.78 * f64::from(RATE)) as usize];
    // The sample rises from silence: its first frames are below a whisper.
    let (a, z) = span(first);
    assert!(a < 200 + slack && z.abs_diff(want) <= slack, "{name}: one shot spans {a}..{z}, want 0..{want}");
    let body = &first[a + (z - a) / 4..z - (z - a) / 10];
    let f = frequency(body);
    assert!((f - HZ).abs() < 1.0, "{name}: one shot at {f} Hz");
    let quarter = (z - a) / 4;
    let (start, end) = (rms(&first[a..a + quarter]), rms(&first[z - quarter..z]));
    assert!(end > 3.0 * start, "{name}: forwards, it rises: {start} then {end}");
    // Retriggered at 0.8 s.
    let again = &ch[0][(0.8 * f64::from(RATE)) as usize..];
    let (a2, z2) = span(again);
    assert!(a2 < 200 + slack + 480 && z2.abs_diff(want + 1) <= slack + 480, "{name}: retrigger spans {a2}..{z2}");
    // Backwards: the same pitch and length, falling.
    let back = &ch[1][..(0.78 * f64::from(RATE)) as usize];
    let (ba, bz) = span(back);
    assert!(ba <= slack && bz.abs_diff(want) < 200 + slack, "{name}: backwards spans {ba}..{bz}");
    let bq = (bz - ba) / 4;
    assert!(rms(&back[ba..ba + bq]) > 3.0 * rms(&back[bz - bq..bz]), "{name}: backwards, it falls");
    let fb = frequency(&back[ba + (bz - ba) / 10..bz - (bz - ba) / 4]);
    assert!((fb - HZ).abs() < 1.0, "{name}: backwards at {fb} Hz");
    // Looped at speed 2: an octave up, and it never stops.
    let lp = &ch[2];
    let fl = frequency(&lp[want / 2..]);
    assert!((fl - 2.0 * HZ).abs() < 2.0, "{name}: loop at {fl} Hz");
    let tail = &lp[lp.len() - RATE as usize / 5..];
    assert!(rms(tail) > 0.1, "{name}: the loop plays on");
    // Deterministic: the same bytes again.
    let out2 = dir.path().join("out2.wav");
    let mut args2 = args;
    args2[3] = out2.to_str().unwrap();
    assert!(clavm(&args2).status.success());
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap(), "{name}: renders are deterministic");
}

#[test]
fn wav_at_44k1() {
    check_format("s.wav", 44100, false);
}

#[test]
fn flac_at_22k05() {
    check_format("s.flac", 22050, false);
}

#[test]
fn ogg_vorbis_at_96k() {
    check_format("s.ogg", 96000, true);
}

#[test]
fn mp3_at_44k1() {
    check_format("s.mp3", 44100, true);
}

#[test]
fn the_pragma_is_relative_to_the_patch_and_the_command_line_wins() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("patches");
    std::fs::create_dir(&sub).unwrap();
    // Two different lengths tell the files apart.
    let write = |path: &Path, frames: usize| {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: RATE,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for _ in 0..frames {
            w.write_sample(0.5f32).unwrap();
        }
        w.finalize().unwrap();
    };
    write(&sub.join("near.wav"), 1000);
    let other = dir.path().join("other.wav");
    write(&other, 3000);
    let patch = sub.join("p.c");
    std::fs::write(&patch, "#pragma clavm sample 7 \"near.wav\"\nvoid play(void) { _out(0, Sample(7, 1, 1)); }\n")
        .unwrap();
    let out = dir.path().join("o.wav");
    let len = |extra: &[&str]| {
        let mut args =
            vec!["render", patch.to_str().unwrap(), "-o", out.to_str().unwrap(), "--seconds", "0.2", "--channels", "1"];
        args.extend_from_slice(extra);
        // Run from elsewhere: the pragma's path is the patch's, not the cwd's.
        let o = Command::new(env!("CARGO_BIN_EXE_clavm")).args(&args).current_dir("/").output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let ch = channels(&out);
        ch[0].iter().filter(|v| **v != 0.0).count()
    };
    assert_eq!(len(&[]), 1000);
    let s = format!("7={}", other.display());
    assert_eq!(len(&["--sample", &s]), 3000);
    // A missing pragma file is one line naming it.
    std::fs::remove_file(sub.join("near.wav")).unwrap();
    let o = clavm(&["render", patch.to_str().unwrap(), "-o", out.to_str().unwrap(), "--seconds", "0.2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("near.wav: cannot open it"), "{err}");
}

/// Each bad file: exit 1, one line on stderr, naming the file.
fn refused(file: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let patch = dir.path().join("p.c");
    std::fs::write(&patch, "void play(void) { _out(0, Sample(0, 1, 1)); }\n").unwrap();
    let out = dir.path().join("o.wav");
    let sample = format!("0={}", file.display());
    let o = clavm(&[
        "render",
        patch.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--seconds",
        "0.1",
        "--sample",
        &sample,
    ]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{}: {err}", file.display());
    assert_eq!(err.lines().count(), 1, "{}: {err}", file.display());
    assert!(err.starts_with(&format!("clavm: error: {}: ", file.display())), "{err}");
    assert!(!out.exists(), "nothing is written");
    err
}

#[test]
fn every_hostile_sound_file_is_one_error_line_naming_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/hostile/files/samples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let err = refused(&path);
        let name = path.file_name().unwrap().to_str().unwrap();
        let expect = match name {
            "rate-zero.wav" | "rate-4ghz.wav" => "sample rate",
            "channels-64.wav" => "at most 8",
            "channels-0.wav" => "channel",
            "zero-frames.wav" => "0 frames",
            "truncated.wav" => "truncated",
            "mp3-named.wav" => "holds MP3",
            "flac-named.ogg" => "holds FLAC",
            _ => "not a WAV",
        };
        assert!(err.contains(expect), "{name}: {err}");
        n += 1;
    }
    assert!(n >= 13, "the corpus is there: {n}");
}

#[test]
fn a_2_gb_sample_and_the_memory_bound_are_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.wav");
    // A sparse file: a true header for 2 GB of 16-bit stereo, no body written.
    let data_len: u32 = 2_000_000_000;
    let mut h = b"RIFF".to_vec();
    h.extend_from_slice(&(data_len + 36).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0\x02\0");
    h.extend_from_slice(&48000u32.to_le_bytes());
    h.extend_from_slice(&(48000u32 * 4).to_le_bytes());
    h.extend_from_slice(&[4, 0, 16, 0]);
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    std::fs::write(&big, &h).unwrap();
    std::fs::OpenOptions::new().write(true).open(&big).unwrap().set_len(44 + u64::from(data_len)).unwrap();
    let err = refused(&big);
    assert!(err.contains("--sample-memory"), "{err}");
    // A small file over a small bound, and two files that fit one by one but not together.
    let small = make(dir.path(), "small.wav", 48000);
    let patch = dir.path().join("p.c");
    std::fs::write(&patch, "void play(void) { _out(0, Sample(0, 1, 1) + Sample(1, 1, 1)); }\n").unwrap();
    let out = dir.path().join("o.wav");
    let s0 = format!("0={}", small.display());
    let o = clavm(&[
        "render",
        patch.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--seconds",
        "0.1",
        "--sample",
        &s0,
        "--sample-memory",
        "1",
    ]);
    assert!(o.status.success(), "0.5 s of mono fits in 1 MiB: {}", String::from_utf8_lossy(&o.stderr));
    let copy = dir.path().join("copy.wav");
    std::fs::copy(&small, &copy).unwrap();
    let s1 = format!("1={}", copy.display());
    let o = clavm(&[
        "render",
        patch.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--seconds",
        "0.1",
        "--sample",
        &s0,
        "--sample",
        &s1,
        "--sample-memory",
        "0.1",
    ]);
    assert_eq!(o.status.code(), Some(2), "a bound that is not a whole MiB is a usage error");
    // 2 x 96 KB in 1 MiB fits; make them 6 s each (1.1 MiB) to overflow.
    let long = dir.path().join("long.wav");
    tool("sox", &["-n", "-r", "48000", "-c", "1", "-b", "16", long.to_str().unwrap(), "synth", "6", "sine", "500"]);
    let s1 = format!("1={}", long.display());
    let o = clavm(&[
        "render",
        patch.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--seconds",
        "0.1",
        "--sample",
        &s0,
        "--sample",
        &s1,
        "--sample-memory",
        "1",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("long.wav") && err.contains("left of the 1 MiB sample memory"), "{err}");
}

#[test]
fn a_full_scale_sample_goes_through_the_protection() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, f: &dyn Fn(usize) -> f32| {
        let path = dir.path().join(name);
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: RATE,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..RATE as usize {
            w.write_sample(f(i)).unwrap();
        }
        w.finalize().unwrap();
        path
    };
    // Full-scale square (+-1.0), a full-scale sine, full-scale DC.
    let square = write("square.wav", &|i| if (i / 48) % 2 == 0 { 1.0 } else { -1.0 });
    let sine = write("sine.wav", &|i| (std::f64::consts::TAU * 500.0 * i as f64 / f64::from(RATE)).sin() as f32);
    let dc = write("dc.wav", &|_| 1.0);
    let patch = dir.path().join("p.c");
    std::fs::write(
        &patch,
        "void play(void) {\n  _out(0, 8.0f * SampleLoop(0, 1));\n  _out(1, SampleLoop(0, 1));\n  _out(2, SampleLoop(1, 1));\n  _out(3, SampleLoop(2, 1));\n}\n",
    )
    .unwrap();
    let out = dir.path().join("o.wav");
    let samples: Vec<String> =
        [&square, &sine, &dc].iter().enumerate().map(|(n, p)| format!("{n}={}", p.display())).collect();
    let mut args =
        vec!["render", patch.to_str().unwrap(), "-o", out.to_str().unwrap(), "--seconds", "2", "--channels", "4"];
    for s in &samples {
        args.extend(["--sample", s.as_str()]);
    }
    let o = clavm(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let ch = channels(&out);
    for (c, x) in ch.iter().enumerate() {
        assert!(x.iter().all(|v| v.is_finite() && v.abs() <= 0.98 + 1e-6), "channel {c} stays under the ceiling");
    }
    // The square at 8x runs away; the square at unity and the DC jump to
    // sustained full scale: each is faded out and said.
    assert!(err.contains("channel 0: runaway level"), "{err}");
    for c in [1, 3] {
        assert!(err.contains(&format!("channel {c}: sudden jump to sustained full scale: faded out")), "{err}");
        assert!(rms(&ch[c][RATE as usize..]) < 0.01, "channel {c} is silenced");
    }
    // A full-scale sine plays on, limited to the ceiling.
    assert!(!err.contains("channel 2"), "{err}");
    assert!(rms(&ch[2]) > 0.6, "the full-scale sine plays");
}

mod live {
    //! Live: samples loaded by the control thread into the read-only arena,
    //! swapped in with the version that names them; a bad file keeps the old
    //! version playing.

    use std::path::Path;
    use std::time::{Duration, Instant};

    use clavm_audio::live::{LiveConfig, LiveEngine, LiveEvent, LiveProcessor};
    use clavm_audio::samples::SampleSource;
    use clavm_audio::PatchSource;

    use super::{frequency, rms, RATE};

    const BLOCK: usize = 128;

    struct Session {
        engine: LiveEngine,
        p: LiveProcessor,
        events: Vec<LiveEvent>,
    }

    impl Session {
        fn play(&mut self, seconds: f64) -> Vec<f32> {
            let blocks = (seconds * f64::from(RATE) / BLOCK as f64).round() as usize;
            let mut out = vec![0.0f32; blocks * BLOCK];
            let period = Duration::from_secs_f64(BLOCK as f64 / f64::from(RATE));
            let mut next = Instant::now();
            for b in out.chunks_mut(BLOCK) {
                self.p.process(&[], b);
                while let Some(e) = self.engine.next_event(Duration::ZERO) {
                    self.events.push(e);
                }
                next += period;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            out
        }

        /// Submits and plays until its outcome; returns the outcome's description.
        fn submit(&mut self, source: PatchSource) -> String {
            let before = self.events.len();
            self.engine.submit(source);
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(10) {
                self.play(0.01);
                if let Some(e) = self.events[before..].iter().find(|e| {
                    matches!(e, LiveEvent::Playing { .. } | LiveEvent::Rejected { .. } | LiveEvent::TestFailed { .. })
                }) {
                    return e.describe(f64::from(RATE));
                }
            }
            panic!("no outcome: {:?}", &self.events[before..]);
        }
    }

    fn sine(path: &Path, hz: f64) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 44100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..44100 {
            let v = 0.8 * (std::f64::consts::TAU * hz * f64::from(i) / 44100.0).sin();
            w.write_sample((v * 32767.0) as i16).unwrap();
        }
        w.finalize().unwrap();
    }

    fn patch(dir: &Path, text: &str) -> PatchSource {
        PatchSource { name: "live.c".into(), text: text.into(), dir: Some(dir.to_path_buf()) }
    }

    #[test]
    fn a_sample_set_swaps_in_with_its_version_and_a_bad_file_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        sine(&d.join("low.wav"), 500.0);
        sine(&d.join("high.wav"), 1000.0);
        std::fs::write(d.join("noise.wav"), [7u8; 3000]).unwrap();
        let mut cfg = LiveConfig::new(f64::from(RATE), 1, env!("CARGO_BIN_EXE_clavm").into());
        cfg.samples = vec![SampleSource { n: 0, path: d.join("low.wav") }];
        cfg.sample_memory_mib = 16;
        let (engine, p) = LiveEngine::start(cfg).expect("live engine starts");
        let mut s = Session { engine, p, events: Vec::new() };

        // Version 1: the command line's sample 0.
        let said = s.submit(patch(d, "void play(void) { _out(0, 0.5f * SampleLoop(0, 1)); }\n"));
        assert!(said.contains("playing"), "{said}");
        s.play(0.05);
        let f = frequency(&s.play(0.3));
        assert!((f - 500.0).abs() < 1.0, "version 1 plays sample 0 at {f} Hz");

        // Version 2 names sample 1 by its pragma: it arrives with the version.
        let v2 = "#pragma clavm sample 1 \"high.wav\"\nvoid play(void) { _out(0, 0.5f * SampleLoop(1, 1)); }\n";
        let said = s.submit(patch(d, v2));
        assert!(said.contains(" playing"), "{said}");
        s.play(0.05);
        let f = frequency(&s.play(0.3));
        assert!((f - 1000.0).abs() < 2.0, "version 2 plays its own sample 1 at {f} Hz");

        // A corrupt file and a missing one: one line naming the file, and version 2 plays on.
        for (file, says) in [("noise.wav", "not a WAV"), ("missing.wav", "cannot open it")] {
            let bad =
                format!("#pragma clavm sample 1 \"{file}\"\nvoid play(void) {{ _out(0, 0.5f * SampleLoop(1, 2)); }}\n");
            let said = s.submit(patch(d, &bad));
            let path = d.join(file);
            assert!(said.contains(&format!("{}: error: {says}", path.display())), "{said}");
            assert!(said.contains("the old code keeps playing") && !said.contains('\n'), "{said}");
            let out = s.play(0.3);
            let f = frequency(&out);
            assert!((f - 1000.0).abs() < 2.0 && rms(&out) > 0.2, "version 2 plays on at {f} Hz");
        }
        // A malformed pragma is the patch's error at its line.
        let said = s.submit(patch(d, "void play(void) { }\n#pragma clavm sample 99 \"x.wav\"\n"));
        assert!(said.starts_with("live.c:2:1: error: sample number 99"), "{said}");

        // Version 3 drops sample 1 and plays sample 0 at twice the speed: still there.
        let said = s.submit(patch(d, "void play(void) { _out(0, 0.5f * SampleLoop(0, 2)); }\n"));
        assert!(said.contains(" playing"), "{said}");
        s.play(0.05);
        let f = frequency(&s.play(0.3));
        assert!((f - 1000.0).abs() < 2.0, "version 3 at {f} Hz");
        assert!(
            !s.events.iter().any(|e| matches!(e, LiveEvent::WorkerFailed { .. } | LiveEvent::Error(_))),
            "{:?}",
            s.events
        );
        s.engine.shutdown();
    }
}

mod window {
    //! Dropping a sound file on the app's window: it becomes the next free
    //! sample number (a pragma at the top of the patch) and plays with the
    //! version that names it.

    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::common::dnd::drag_uri_list;
    use super::common::jack::{connect_when_ready, drain_stderr, frequency, record, recorder, rms, Jackd};
    use super::common::sway::Sway;

    /// 220 Hz until a sample 0 is there, then sample 0 looped.
    const PATCH: &str = "void play(void) {\n    float s = _sample_channels(0) > 0 ? 0.5f * SampleLoop(0, 1) : 0.5f * Cycle(220.0f);\n    _out(0, s);\n    _out(1, s);\n}\n";

    fn until(rec: &super::common::jack::Recording, hz: f64) -> f64 {
        let t0 = Instant::now();
        let mut f = 0.0;
        while t0.elapsed() < Duration::from_secs(15) {
            f = frequency(&record(rec, 0.3));
            if (f - hz).abs() < 5.0 {
                break;
            }
        }
        f
    }

    #[test]
    fn a_dropped_sound_file_becomes_the_next_sample_and_plays() {
        // A server of its own (not the shared test name: other test binaries
        // may hold that one), the default for this process's recorder.
        let jackd = Jackd::start_named("clavm-samples-drop");
        std::env::set_var("JACK_DEFAULT_SERVER", &jackd.name);
        std::env::set_var("JACK_NO_START_SERVER", "1");
        let sway = Sway::start(1280, 800);
        let dir = tempfile::tempdir().unwrap();
        let patch = dir.path().join("drop.c");
        std::fs::write(&patch, PATCH).unwrap();
        let wav = dir.path().join("a 660.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 44100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&wav, spec).unwrap();
        for i in 0..44100 {
            let v = 0.8 * (std::f64::consts::TAU * 660.0 * f64::from(i) / 44100.0).sin();
            w.write_sample((v * 32767.0) as i16).unwrap();
        }
        w.finalize().unwrap();
        let engine = format!("smp{}", std::process::id());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clavm"));
        sway.env(&mut cmd);
        let mut child = cmd
            .arg(&patch)
            .args(["--host", "jack", "--engine", &engine, "--midi", "none", "--no-osc"])
            .env("JACK_DEFAULT_SERVER", &jackd.name)
            .env("XDG_STATE_HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = drain_stderr(&mut child);
        let (rec_client, rec) = recorder("clavm-samples-drop-rec");
        connect_when_ready(rec_client.as_client(), "cpal_client_out:out_0", "clavm-samples-drop-rec:in");
        let f = until(&rec, 220.0);
        assert!((f - 220.0).abs() < 5.0, "no sample 0 yet: 220 Hz, got {f}");
        // The window is up once the editor shows highlighted C (keywords in purple or blue).
        let shot = std::env::temp_dir().join(format!("clavm-samples-drop-{}.png", std::process::id()));
        let t0 = Instant::now();
        loop {
            let (w, h, rgba) = sway.screenshot(&shot);
            let purple = (0..h)
                .flat_map(|y| (0..w * 2 / 5).map(move |x| ((y * w + x) * 4) as usize))
                .filter(|&i| {
                    let near = |c: [u8; 3]| c.iter().zip(&rgba[i..i + 3]).all(|(a, b)| a.abs_diff(*b) <= 12);
                    near([0xc6, 0x8a, 0xf0]) || near([0x6c, 0xb6, 0xff])
                })
                .count();
            if purple > 20 {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "the app's window never showed (see {})", shot.display());
            std::thread::sleep(Duration::from_millis(200));
        }

        let uri = format!("file://{}\r\n", wav.display().to_string().replace(' ', "%20"));
        let outcome = drag_uri_list(&sway, &uri, (960.0, 400.0), (320.0, 400.0), (1280, 800));
        assert!(outcome.sent && outcome.finished, "{outcome:?}");
        let f = until(&rec, 660.0);
        let x = record(&rec, 0.3);
        assert!((f - 660.0).abs() < 5.0 && rms(&x) > 0.2, "the dropped file plays as sample 0: {f} Hz");

        let _ = sway.msg(&["kill"]);
        let t0 = Instant::now();
        while child.try_wait().unwrap().is_none() && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        let err = stderr.join().unwrap();
        assert!(!err.contains("panicked"), "{err}");
        drop(rec_client);
    }
}
