//! `clavm render --input IN.wav`: the file reaches `_in(ch)` resampled to the
//! render's rate, silence follows its end, and a bad file is one error line.

use std::path::Path;
use std::process::{Command, Output};

fn clavm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clavm")).args(args).output().expect("run clavm")
}

/// A mono sine of `hz` at `rate`, amplitude `amp`, `seconds` long, as 16-bit PCM.
fn write_sine(path: &Path, rate: u32, hz: f64, amp: f64, seconds: f64) {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let n = (seconds * rate as f64) as usize;
    for i in 0..n {
        let v = amp * (std::f64::consts::TAU * hz * i as f64 / rate as f64).sin();
        w.write_sample((v * 32767.0).round() as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// Channel 0 of a rendered WAV.
fn left(path: &Path) -> (u32, Vec<f32>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let ch = spec.channels as usize;
    let all: Vec<f32> = r.samples::<f32>().map(Result::unwrap).collect();
    (spec.sample_rate, all.chunks(ch).map(|f| f[0]).collect())
}

/// Frequency from the upward zero crossings (interpolated) of `x`.
fn frequency(x: &[f32], rate: u32) -> f64 {
    let ups: Vec<f64> = x
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
        .map(|(i, w)| i as f64 + f64::from(w[0] / (w[0] - w[1])))
        .collect();
    assert!(ups.len() > 10, "too few crossings: {}", ups.len());
    (ups.len() - 1) as f64 / (ups[ups.len() - 1] - ups[0]) * rate as f64
}

fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

#[test]
fn a_44k1_sine_is_resampled_to_48k_then_silence() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("sine.wav");
    write_sine(&wav, 44100, 1000.0, 0.5, 0.5);
    let patch = dir.path().join("thru.c");
    std::fs::write(&patch, "void play(void) { _out(0, _in(0)); }\n").unwrap();
    let out = dir.path().join("out.wav");
    let run = |out: &Path| {
        let o = clavm(&[
            "render",
            patch.to_str().unwrap(),
            "--input",
            wav.to_str().unwrap(),
            "--rate",
            "48000",
            "--seconds",
            "1",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(&out);
    let (rate, x) = left(&out);
    assert_eq!(rate, 48000);
    assert_eq!(x.len(), 48000);
    // Well inside the file (away from the resampler's edges).
    let body = &x[2400..21600];
    let hz = frequency(body, rate);
    assert!((hz - 1000.0).abs() < 1.0, "frequency {hz}");
    let p = peak(body);
    assert!((p - 0.5).abs() < 0.01, "peak {p}");
    let rms = (body.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / body.len() as f64).sqrt();
    assert!((rms - 0.5 / 2f64.sqrt()).abs() < 0.01, "rms {rms}");
    // The file is 0.5 s: after it (and the resampler's tail), silence.
    let tail = peak(&x[24500..]);
    assert_eq!(tail, 0.0, "after the file's end");

    let again = dir.path().join("again.wav");
    run(&again);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap(), "two renders differ");
}

#[test]
fn a_bad_input_is_one_error_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let patch = dir.path().join("thru.c");
    std::fs::write(&patch, "void play(void) { _out(0, _in(0)); }\n").unwrap();
    let not_wav = dir.path().join("notes.wav");
    std::fs::write(&not_wav, "this is text, not RIFF").unwrap();
    let missing = dir.path().join("missing.wav");
    let out = dir.path().join("out.wav");
    for bad in [&not_wav, &missing] {
        let o =
            clavm(&["render", patch.to_str().unwrap(), "--input", bad.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(&format!("clavm: error: {}: ", bad.display())), "{err}");
        assert!(!out.exists(), "an output was written");
    }
}
