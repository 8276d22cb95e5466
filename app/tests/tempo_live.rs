//! The tempo clock live, on a private jackd: a quantised submit waits for
//! its bar and its first sample is the bar's first beat; `clavm tempo`
//! bends `_beat()` without a jump; bad values and a missing engine are one line.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::jack::{drain_stderr, play_on, record, recorder, Jackd};

fn clavm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_clavm")).args(args).output().expect("run clavm")
}

/// Beats mod 4 over 16, less 1/8: the value says where in the bar a sample is
/// (centred on 0, so the hearing protection's DC guard leaves it alone).
const BAR_RAMP: &str = "void play(void) { _out(0, (float)(fmod(_beat(), 4.0) / 16.0) - 0.125f); }\n";

#[test]
fn a_quantised_submit_starts_on_the_bar_and_a_tempo_change_bends_the_beat() {
    let jackd = Jackd::start();
    let dir = tempfile::tempdir().unwrap();
    let silent = dir.path().join("silent.c");
    std::fs::write(&silent, "void play(void) { _out(0, 0.0f); }\n").unwrap();
    let ramp = dir.path().join("ramp.c");
    std::fs::write(&ramp, BAR_RAMP).unwrap();
    // 240 BPM: a beat is 12000 frames, a bar one second.
    let args = ["--engine", "tq", "--bpm", "240", "--crossfade", "0", "--seconds", "30"];
    let mut play = play_on(&jackd, &silent, &args);
    let stderr = drain_stderr(&mut play);
    let (client, rec) = recorder("clavm-tq-capture");
    common::jack::connect_when_ready(client.as_client(), "cpal_client_out:out_0", "clavm-tq-capture:in");
    // The engine answers submits once its first version plays.
    let t0 = Instant::now();
    let out = loop {
        let o = clavm(&["submit", "--engine", "tq", "--quant", "4", ramp.to_str().unwrap()]);
        if o.status.success() || t0.elapsed() > Duration::from_secs(10) {
            break o;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{said} {}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("waiting for bar"), "{said}");
    // Within the next bar (a second), the ramp starts on the bar's first sample.
    let x = record(&rec, 2.5);
    let first = x.iter().position(|v| *v != 0.0).unwrap_or_else(|| panic!("never started: {said}"));
    let off_beats = (x[first] as f64 + 0.125) * 16.0;
    let off_frames = off_beats * 12000.0;
    assert!(off_frames.abs() < 1.0, "the first sample is {off_frames:.2} frames past the bar ({})", x[first]);

    // A tempo change: the ramp's slope follows, with no jump between samples.
    let o = clavm(&["tempo", "--engine", "tq", "120"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::thread::sleep(Duration::from_millis(200));
    let y = record(&rec, 0.5);
    let slope = 120.0 / 60.0 / 48000.0 / 16.0;
    let old = 240.0 / 60.0 / 48000.0 / 16.0;
    let steps: Vec<f64> = y.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    let at = |s: f64| steps.iter().filter(|d| (*d - s).abs() < 5e-7).count();
    // Every step at the new slope but the bar's wrap and a block a busy
    // machine covered (reported by the engine): none at the old one.
    assert!(at(slope) > steps.len() * 9 / 10, "{} of {} steps at the new tempo", at(slope), steps.len());
    assert_eq!(at(old), 0, "steps at the old tempo after the change");
    let _ = play.kill();
    let _ = play.wait();
    // The engine's status said what the version waited for.
    let status = stderr.join().unwrap();
    assert!(status.contains("version 2 waiting for bar"), "{status}");
}

#[test]
fn tempo_and_quant_errors_are_one_line() {
    let o = clavm(&["tempo", "--engine", "no-such-engine-here", "100"]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no-such-engine-here") && err.lines().count() == 1, "{err}");
    let o = clavm(&["tempo", "5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("tempo 5"));
    let o = clavm(&["submit", "--quant", "-2", "x.c"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("quant -2"));
}
