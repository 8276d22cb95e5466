//! Samples live, on a private jackd: a version's samples come with it (a
//! submit that names another file plays that file from its first block),
//! and a missing or corrupt file refuses the version in one line naming the
//! file while the version before plays on.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::jack::{drain_stderr, frequency, play_on, record, recorder, rms, Jackd};

fn clavm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_clavm")).args(args).output().expect("run clavm")
}

/// A 2 s mono sine at `hz` and 0.5, at 44.1 kHz (the engine resamples it), made by sox.
fn sine_wav(path: &Path, hz: u32) {
    let o = Command::new("sox")
        .args(["-n", "-r", "44100", "-c", "1", "-b", "16", path.to_str().unwrap(), "synth", "2", "sine"])
        .arg(hz.to_string())
        .args(["vol", "0.5"])
        .output()
        .expect("sox (scripts/setup.sh installs it)");
    assert!(o.status.success(), "sox: {}", String::from_utf8_lossy(&o.stderr));
}

/// A patch looping sample 0, which its pragma names (relative to the patch).
fn looping(file: &str) -> String {
    format!("#pragma clavm sample 0 \"{file}\"\nvoid play(void) {{ _out(0, SampleLoop(0, 1.0f)); }}\n")
}

fn submit(patch: &Path) -> std::process::Output {
    let t0 = Instant::now();
    loop {
        let o = clavm(&["submit", "--engine", "sl", patch.to_str().unwrap()]);
        // Before the engine's first version plays, nobody answers: retry for 10 s.
        let said = String::from_utf8_lossy(&o.stderr);
        if o.status.success() || !said.contains("not responding") || t0.elapsed() > Duration::from_secs(10) {
            return o;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_versions_samples_swap_in_with_it_and_a_bad_file_keeps_the_old_version_playing() {
    let jackd = Jackd::start();
    let dir = tempfile::tempdir().unwrap();
    sine_wav(&dir.path().join("low.wav"), 440);
    sine_wav(&dir.path().join("high.wav"), 880);
    std::fs::write(dir.path().join("corrupt.wav"), b"RIFF\x10\0\0\0WAVEfmt garbage").unwrap();
    let first = dir.path().join("first.c");
    std::fs::write(&first, looping("low.wav")).unwrap();
    let mut play = play_on(&jackd, &first, &["--engine", "sl", "--crossfade", "0", "--seconds", "30"]);
    let stderr = drain_stderr(&mut play);
    let (client, rec) = recorder("clavm-sl-capture");
    common::jack::connect_when_ready(client.as_client(), "cpal_client_out:out_0", "clavm-sl-capture:in");
    std::thread::sleep(Duration::from_millis(500));
    let x = record(&rec, 0.5);
    assert!((frequency(&x) - 440.0).abs() < 2.0, "the first version's sample: {} Hz", frequency(&x));
    assert!((rms(&x) - 0.5 / 2f64.sqrt()).abs() < 0.03, "at its level: rms {}", rms(&x));

    // Another version naming another file: that file plays.
    let second = dir.path().join("second.c");
    std::fs::write(&second, looping("high.wav")).unwrap();
    let o = submit(&second);
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    std::thread::sleep(Duration::from_millis(200));
    let y = record(&rec, 0.5);
    assert!((frequency(&y) - 880.0).abs() < 4.0, "the second version's sample: {} Hz", frequency(&y));

    // A missing file, then a corrupt one: refused in one line naming the file; 880 Hz goes on.
    for (name, file) in [("missing.c", "no-such-file.wav"), ("corrupt.c", "corrupt.wav")] {
        let bad = dir.path().join(name);
        std::fs::write(&bad, looping(file)).unwrap();
        let o = submit(&bad);
        let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(!o.status.success(), "{name} was accepted: {said}");
        assert!(said.contains(file), "the error names {file}: {said}");
        assert_eq!(said.trim().lines().count(), 1, "one line: {said}");
        let z = record(&rec, 0.4);
        assert!((frequency(&z) - 880.0).abs() < 4.0, "after {name}: {} Hz", frequency(&z));
        assert!(rms(&z) > 0.3, "after {name}: the sound went on (rms {})", rms(&z));
    }
    let _ = play.kill();
    let _ = play.wait();
    drop(stderr.join());
}
