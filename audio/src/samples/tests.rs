//! The loader's bounds: every bad file is one error naming it, refused
//! before its audio is allocated where its header already says so.

use std::io::Write;
use std::path::Path;

use super::*;

fn write(path: &Path, rate: u32, channels: u16, frames: usize, f: impl Fn(usize, u16) -> f32) {
    let spec =
        hound::WavSpec { channels, sample_rate: rate, bits_per_sample: 32, sample_format: hound::SampleFormat::Float };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for n in 0..frames {
        for c in 0..channels {
            w.write_sample(f(n, c)).unwrap();
        }
    }
    w.finalize().unwrap();
}

fn problem(path: &Path, budget: &mut MemoryBudget) -> SampleProblem {
    let e = load(path, 48000, budget).unwrap_err();
    assert!(e.to_string().starts_with(&format!("{}: ", path.display())), "{e}");
    assert!(!e.to_string().contains('\n'), "{e}");
    e.problem
}

#[test]
fn a_wav_at_the_engine_rate_is_exact_and_another_rate_is_resampled() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.wav");
    write(&p, 48000, 2, 1000, |n, c| n as f32 / 1000.0 - f32::from(c));
    let mut budget = MemoryBudget::default();
    let a = load(&p, 48000, &mut budget).unwrap();
    assert_eq!((a.channels, a.frames()), (2, 1000));
    assert_eq!(a.samples[2 * 10 + 1], 10.0 / 1000.0 - 1.0);
    assert_eq!(budget.used, 8000);
    let q = dir.path().join("b.WAV");
    write(&q, 22050, 1, 22050, |n, _| (n as f32 * 0.05).sin());
    let b = load(&q, 48000, &mut budget).unwrap();
    assert!((b.frames() as i64 - 48000).abs() < 8, "{}", b.frames());
}

#[test]
fn not_a_finite_sample_becomes_zero() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nan.wav");
    write(&p, 48000, 1, 4, |n, _| [f32::NAN, 1.0, f32::INFINITY, -0.5][n]);
    let a = load(&p, 48000, &mut MemoryBudget::default()).unwrap();
    assert_eq!(a.samples, [0.0, 1.0, 0.0, -0.5]);
}

#[test]
fn bad_files_are_one_line_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut b = MemoryBudget::default();
    assert!(matches!(problem(&d.join("missing.wav"), &mut b), SampleProblem::Open(_)));
    assert!(matches!(problem(d, &mut b), SampleProblem::Open(_)));
    std::fs::write(d.join("empty.wav"), b"").unwrap();
    assert!(matches!(problem(&d.join("empty.wav"), &mut b), SampleProblem::Unrecognised));
    std::fs::write(d.join("text.flac"), b"this is not audio at all, only text").unwrap();
    assert!(matches!(problem(&d.join("text.flac"), &mut b), SampleProblem::Unrecognised));
    write(&d.join("zero.wav"), 48000, 1, 0, |_, _| 0.0);
    assert!(matches!(problem(&d.join("zero.wav"), &mut b), SampleProblem::Empty));
    write(&d.join("nine.wav"), 48000, 9, 10, |_, _| 0.0);
    assert!(matches!(problem(&d.join("nine.wav"), &mut b), SampleProblem::Channels(9)));
    write(&d.join("many.wav"), 48000, 64, 10, |_, _| 0.0);
    assert!(matches!(problem(&d.join("many.wav"), &mut b), SampleProblem::Channels(64)));
    // A WAV by content, an MP3 by name.
    write(&d.join("wav.mp3"), 48000, 1, 10, |_, _| 0.0);
    let p = problem(&d.join("wav.mp3"), &mut b);
    assert!(matches!(p, SampleProblem::Mislabelled { named: Format::Mp3, holds: Format::Wav }), "{p}");
    assert_eq!(b.used, 0, "failed loads take no memory");
}

#[test]
fn absurd_rates_and_truncation_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.wav");
    write(&whole, 48000, 1, 1000, |n, _| n as f32 / 1000.0);
    let bytes = std::fs::read(&whole).unwrap();
    assert_eq!(&bytes[24..28], &48000u32.to_le_bytes(), "the fmt chunk's rate");
    let mut b = MemoryBudget::default();
    for rate in [0u32, 1, 999, 768_001, u32::MAX] {
        let mut odd = bytes.clone();
        odd[24..28].copy_from_slice(&rate.to_le_bytes());
        let p = dir.path().join(format!("rate-{rate}.wav"));
        std::fs::write(&p, &odd).unwrap();
        // Whether symphonia or our bound refuses it, it is one error naming the file.
        let _ = problem(&p, &mut b);
    }
    let cut = dir.path().join("cut.wav");
    std::fs::write(&cut, &bytes[..bytes.len() - 2000]).unwrap();
    let p = problem(&cut, &mut b);
    assert!(matches!(p, SampleProblem::Truncated { promised: 1000, found: 500 }), "{p}");
}

/// A plain 16-bit PCM WAV header for `data_len` bytes of audio.
fn pcm_header(channels: u16, rate: u32, data_len: u32) -> Vec<u8> {
    let mut h = b"RIFF".to_vec();
    h.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0");
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&rate.wrapping_mul(2 * u32::from(channels)).to_le_bytes());
    h.extend_from_slice(&(2 * channels).to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

#[test]
fn a_header_promising_gigabytes_is_refused_before_decoding() {
    // A sparse 2 GB file: its header is true, its body never written.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.wav");
    let data_len: u32 = 2_000_000_000;
    let f = std::fs::File::create(&p).unwrap();
    (&f).write_all(&pcm_header(2, 48000, data_len)).unwrap();
    f.set_len(44 + u64::from(data_len)).unwrap();
    drop(f);
    let mut b = MemoryBudget::default();
    let problem = problem(&p, &mut b);
    assert!(matches!(problem, SampleProblem::TooBig { .. }), "{problem}");
    assert!(problem.to_string().contains("--sample-memory"), "{problem}");
    // The same header with a few bytes of audio is a truncated file.
    let q = dir.path().join("liar.wav");
    let mut bytes = pcm_header(1, 48000, 4000);
    bytes.extend_from_slice(&[0; 400]);
    std::fs::write(&q, bytes).unwrap();
    assert!(matches!(
        load(&q, 48000, &mut b).unwrap_err().problem,
        SampleProblem::Truncated { promised: 2000, found: 200 }
    ));
}

#[test]
fn hostile_headers_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = MemoryBudget::default();
    for (channels, rate) in [(0u16, 48000u32), (64, 48000), (40, 48000), (1, 0), (1, 1), (1, u32::MAX)] {
        let p = dir.path().join(format!("h-{channels}-{rate}.wav"));
        let mut bytes = pcm_header(channels, rate, 64);
        bytes.extend_from_slice(&[0; 64]);
        std::fs::write(&p, bytes).unwrap();
        let e = problem(&p, &mut b);
        assert!(matches!(e, SampleProblem::Channels(_) | SampleProblem::NoChannels | SampleProblem::Rate(_)), "{e}");
    }
}

#[test]
fn the_budget_is_shared_by_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.wav");
    // 48000 * 4 bytes = 187.5 KiB each.
    write(&p, 48000, 1, 48000, |_, _| 0.25);
    let mut b = MemoryBudget { limit: 300 << 10, used: 0 };
    load(&p, 48000, &mut b).unwrap();
    let used = b.used;
    assert!(matches!(problem(&p, &mut b), SampleProblem::TooBig { .. }));
    assert_eq!(b.used, used);
    // One file under two numbers is loaded (and counted) once.
    let mut b = MemoryBudget { limit: 300 << 10, used: 0 };
    let src = |n| SampleSource { n, path: p.clone() };
    let set = load_set(&[src(0), src(7)], 48000, &mut b).unwrap();
    assert!(std::sync::Arc::ptr_eq(set.get(0).unwrap(), set.get(7).unwrap()));
    assert_eq!(set.first_free(), Some(1));
}

#[test]
fn arguments_parse_and_the_command_line_wins() {
    assert_eq!(parse_arg("3=a b.wav").unwrap(), SampleSource { n: 3, path: "a b.wav".into() });
    assert_eq!(parse_arg("63=x=y.wav").unwrap().path, Path::new("x=y.wav"));
    for bad in ["64=a.wav", "-1=a.wav", "a.wav", "1=", "x=a.wav"] {
        assert!(parse_arg(bad).is_err(), "{bad}");
    }
    let s = |n, p: &str| SampleSource { n, path: p.into() };
    let merged = merge(&[s(1, "pragma1"), s(2, "pragma2")], &[s(2, "cli2"), s(5, "cli5")]);
    assert_eq!(merged, vec![s(1, "pragma1"), s(2, "cli2"), s(5, "cli5")]);
}

#[test]
fn a_table_points_into_its_set() {
    let mut set = SampleSet::default();
    set.set(4, std::sync::Arc::new(SampleData { channels: 2, samples: vec![0.5, 0.25, 1.0, -1.0] }));
    let s = Samples::new(set);
    let v = s.table().views[4];
    assert_eq!((v.frames, v.channels), (2, 2));
    // SAFETY: in range of the 2x2 data the set holds.
    assert_eq!(unsafe { v.at(1, 1) }, -1.0);
    assert!(s.table().views[3].is_empty());
}

fn render(text: &str, samples: Vec<SampleSet>, frames: u64) -> crate::render::Rendered {
    use crate::render::{render, Progress, RenderSpec};
    let spec = RenderSpec {
        patch: crate::PatchSource { name: "s.c".into(), text: text.into(), dir: None },
        length: crate::Frames(frames),
        config: crate::EngineConfig::new(48000.0, 1),
        swaps: Vec::new(),
        params: Vec::new(),
        block: 64,
        input: None,
        samples,
        notes: Vec::new(),
    };
    render(&spec, &Progress::new()).unwrap()
}

#[test]
fn a_patch_plays_its_version_s_samples_and_a_missing_number_is_reported_once() {
    let data: Vec<f32> = (0..100).map(|i| i as f32 / 200.0).collect();
    let mut set = SampleSet::default();
    set.set(2, std::sync::Arc::new(SampleData { channels: 1, samples: data.clone() }));
    // The pragma is TinyCC's to ignore: loading it is the caller's.
    let text = "#pragma clavm sample 2 \"kick.wav\"\nvoid play(void) {\n  _out(0, Sample(2, 1, 1) + Sample(5, 1, 1)\n    + 0.0f * (_sample_seconds(2) + _sample_channels(2)));\n}\nvoid compiled(void) { *_float(0) = _sample_seconds(2); *_int(0) = _sample_channels(2) + 10 * _sample_channels(3); }\n";
    let r = render(text, vec![set], 300);
    assert_eq!(&r.samples[..100], &data[..]);
    assert!(r.samples[100..].iter().all(|s| *s == 0.0), "a one-shot plays once");
    let reports: Vec<&str> = r
        .events
        .iter()
        .filter_map(|e| match e {
            crate::render::RenderEvent::Report(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(reports.iter().filter(|s| s.contains("sample 5 is not loaded")).count(), 1, "{reports:?}");
    assert!(!reports.iter().any(|s| s.contains("sample 2 ")), "{reports:?}");
}
