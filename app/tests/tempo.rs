//! The tempo clock offline: `--bpm`/`--meter` reach `_beat()`, `--quant`
//! moves a `--swap` to the first boundary at or after its time, to the sample,
//! and values out of range are one-line usage errors.

use std::path::Path;
use std::process::{Command, Output};

fn clavm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clavm")).args(args).output().expect("run clavm")
}

fn left(path: &Path) -> Vec<f32> {
    let mut r = hound::WavReader::open(path).unwrap();
    let ch = r.spec().channels as usize;
    let all: Vec<f32> = r.samples::<f32>().map(Result::unwrap).collect();
    all.chunks(ch).map(|f| f[0]).collect()
}

/// Renders `a` with a swap to `b` at `at` seconds, with `extra` options; channel 0.
fn render_swap(dir: &Path, at: &str, extra: &[&str]) -> Vec<f32> {
    let a = dir.join("a.c");
    let b = dir.join("b.c");
    std::fs::write(&a, "void play(void) { _out(0, 0.0f); }\n").unwrap();
    std::fs::write(&b, "void play(void) { _out(0, 0.25f); }\n").unwrap();
    let out = dir.join(format!("swap-{at}.wav"));
    let swap = format!("{at}:{}", b.display());
    let mut args = vec!["render", a.to_str().unwrap(), "-o", out.to_str().unwrap(), "--seconds", "3"];
    args.extend(["--crossfade", "0", "--swap", &swap]);
    args.extend(extra);
    let o = clavm(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    left(&out)
}

fn first_sound(x: &[f32]) -> usize {
    x.iter().position(|v| *v != 0.0).expect("the swap happened")
}

#[test]
fn a_quantised_swap_lands_on_the_first_sample_of_the_next_beat_or_bar() {
    let dir = tempfile::tempdir().unwrap();
    // 120 BPM at 48 kHz: a beat is 24000 frames, a bar of four 96000.
    assert_eq!(first_sound(&render_swap(dir.path(), "0.3", &[])), 14400, "unquantised: at T");
    assert_eq!(first_sound(&render_swap(dir.path(), "0.3", &["--quant", "1"])), 24000);
    assert_eq!(first_sound(&render_swap(dir.path(), "0.3", &["--quant", "4"])), 96000);
    // On the grid already: at once.
    assert_eq!(first_sound(&render_swap(dir.path(), "0.5", &["--quant", "1"])), 24000);
    // Another tempo and meter: 90 BPM is 32000 frames a beat; a bar of 3 is 96000.
    let x = render_swap(dir.path(), "0.1", &["--quant", "3", "--bpm", "90", "--meter", "3"]);
    assert_eq!(first_sound(&x), 96000);
    // Half a beat at 150 BPM: 9600 frames.
    let x = render_swap(dir.path(), "0.1", &["--quant", "0.5", "--bpm", "150"]);
    assert_eq!(first_sound(&x), 9600);
}

#[test]
fn beat_is_continuous_across_a_swap() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.c");
    let b = dir.path().join("b.c");
    std::fs::write(&a, "void play(void) { _out(0, (float)(_beat() / 16.0)); }\n").unwrap();
    std::fs::write(&b, "// edited\nvoid play(void) { _out(0, (float)(_beat() / 16.0)); }\n").unwrap();
    let out = dir.path().join("beat.wav");
    let swap = format!("1.0:{}", b.display());
    let o = clavm(&[
        "render",
        a.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--seconds",
        "2",
        "--bpm",
        "133",
        "--swap",
        &swap,
        "--quant",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let x = left(&out);
    let per_frame = 133.0 / 60.0 / 48000.0 / 16.0;
    for (n, w) in x.windows(2).enumerate() {
        let step = (w[1] - w[0]) as f64;
        assert!((step - per_frame).abs() < 1e-6, "a jump of {step} at frame {n}");
    }
}

#[test]
fn tempo_meter_and_quant_out_of_range_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.c");
    std::fs::write(&a, "void play(void) { _out(0, 0.0f); }\n").unwrap();
    let out = dir.path().join("x.wav");
    for (opt, value, says) in [
        ("--bpm", "0", "tempo 0"),
        ("--bpm", "5000", "tempo 5000"),
        ("--bpm", "fast", "tempo 'fast'"),
        ("--meter", "0", "meter 0"),
        ("--meter", "3.5", "meter '3.5'"),
        ("--quant", "-1", "quant -1"),
        ("--quant", "nan", "quant NaN"),
    ] {
        let o = clavm(&["render", a.to_str().unwrap(), "-o", out.to_str().unwrap(), opt, value]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{opt} {value}: {err}");
        assert!(err.contains(says), "{opt} {value}: {err}");
        assert!(!out.exists());
    }
}
