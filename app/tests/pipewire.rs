//! Issue 16: sound through PipeWire, Pulse (pipewire-pulse) and ALSA
//! (pipewire-alsa as ALSA's default) on a headless PipeWire this file starts
//! (common::pipewire), recorded from the sink's monitor with pw-record and
//! checked for frequency and level; live input on PipeWire (issue 14 part 1):
//! a sine played into a null sink whose monitor is clavm's input, through
//! `_out(0, 0.5f * _in(0))`; and the one-line errors for a host that is not
//! running, a device that does not exist, a block size the server refuses and
//! a rate the JACK server does not run at.

use std::sync::Mutex;
use std::time::Duration;

mod common;
use common::jack::{drain_stderr, frequency};
use common::pipewire::{loud_middle, steady_rms, PipeWire};
use common::Dir;

/// The daemons and clavm share 2 cores with the rest: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const SINE: &str = "void play(void) { float s = 0.25f * Cycle(440.0f); _out(0, s); _out(1, s); }\n";

/// Plays SINE for 4 s through `host` and returns clavm's stderr and the sink's monitor.
fn play_and_record(pw: &PipeWire, host: &str, extra: &[&str]) -> (String, Vec<f32>) {
    let dir = Dir::new();
    let patch = dir.file("sine.c", SINE);
    let rec = pw.record(&dir.path("rec.wav"), Some(&pw.sink));
    std::thread::sleep(Duration::from_millis(300));
    let mut args = vec!["--seconds", "4", "--engine"];
    let engine = format!("pw-test-{host}-{}", std::process::id());
    args.push(&engine);
    args.extend_from_slice(extra);
    let mut clavm = pw.play(&patch, host, &args);
    let err = drain_stderr(&mut clavm);
    let status = clavm.wait().unwrap();
    let err = err.join().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let recorded = rec.finish();
    assert!(status.success(), "clavm play --host {host} failed: {err}");
    (err, recorded)
}

/// A 440 Hz sine of amplitude 0.25 (RMS 0.177) is in the recording.
fn assert_sine(host: &str, err: &str, recorded: &[f32]) {
    assert!(recorded.len() > 2 * 48000, "--host {host}: only {} frames recorded\n{err}", recorded.len());
    let middle = loud_middle(recorded, 2.0);
    assert!(middle.len() > 48000, "--host {host}: less than 1 s of sound in the recording\n{err}");
    let f = frequency(middle);
    assert!((f - 440.0).abs() < 2.0, "--host {host}: {f:.1} Hz recorded, 440 played\n{err}");
    let level = steady_rms(middle);
    let want = 0.25 / 2f64.sqrt();
    assert!((level - want).abs() < 0.1 * want, "--host {host}: RMS {level:.4}, {want:.4} played\n{err}");
}

#[test]
fn a_sine_through_pipewire_reaches_the_sink_at_its_frequency_and_level() {
    let _s = serial();
    let pw = PipeWire::start();
    let (err, rec) = play_and_record(&pw, "pipewire", &["--buffer", "256"]);
    assert!(err.contains("on PipeWire: 'default_output' (48000 Hz, 2 ch, 256-frame blocks)"), "status line: {err}");
    assert_sine("pipewire", &err, &rec);
    // Realtime: raised where this user may (no word), else one line that says so (there is no rtkit here).
    let note = err.lines().filter(|l| l.contains("audio thread runs at normal priority")).count();
    if may_use_fifo() {
        assert_eq!(note, 0, "{err}");
    } else {
        assert_eq!(note, 1, "one note when the priority cannot be raised: {err}");
        assert!(err.contains("clavm: note: the PipeWire audio thread runs at normal priority (SCHED_FIFO: "), "{err}");
    }
}

/// Whether this user may make a thread SCHED_FIFO (root, CAP_SYS_NICE or an RLIMIT_RTPRIO).
fn may_use_fifo() -> bool {
    std::thread::spawn(|| {
        let param = libc::sched_param { sched_priority: 1 };
        // SAFETY: changes the scheduling of this short-lived thread only.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
    })
    .join()
    .unwrap()
}

#[test]
fn a_sine_through_pulse_reaches_the_sink_at_its_frequency_and_level() {
    let _s = serial();
    let pw = PipeWire::start();
    let (err, rec) = play_and_record(&pw, "pulse", &[]);
    assert!(err.contains("on PulseAudio: 'Dummy Output' (48000 Hz, 2 ch, 512-frame blocks"), "status line: {err}");
    assert_sine("pulse", &err, &rec);
}

#[test]
fn a_sine_through_alsa_with_pipewire_alsa_as_default_reaches_the_sink() {
    let _s = serial();
    let pw = PipeWire::start();
    let conf = std::path::Path::new("/etc/alsa/conf.d/99-pipewire-default.conf");
    assert!(conf.exists(), "{} is missing: install pipewire-alsa (scripts/setup.sh)", conf.display());
    let (err, rec) = play_and_record(&pw, "alsa", &["--rate", "48000"]);
    assert!(err.contains("on ALSA: 'Default"), "status line: {err}");
    assert_sine("alsa", &err, &rec);
}

#[test]
fn auto_picks_pipewire_when_it_runs_and_devices_lists_every_host() {
    let _s = serial();
    let pw = PipeWire::start();
    let out = pw.tool(env!("CARGO_BIN_EXE_clavm"), &["devices"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for line in [
        "PipeWire (--host pipewire): running",
        "PulseAudio (--host pulse): running",
        "JACK (--host jack): not running",
        "ALSA (--host alsa): running",
        "'Dummy Output' (id auto_null)",
        "--host auto: PipeWire (--host pipewire)",
    ] {
        assert!(text.contains(line), "no '{line}' in:\n{text}");
    }
    assert!(text.contains("blocks 16..=2048 frames"), "PipeWire's quantum range:\n{text}");
    // `play --list-devices` still works.
    let out = pw.tool(env!("CARGO_BIN_EXE_clavm"), &["play", "x.c", "--host", "pulse", "--list-devices"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().next(), Some("Dummy Output"));
}

#[test]
fn live_input_on_pipewire_goes_through_the_patch_at_half_level() {
    input_through("pipewire");
}

/// Live input through cpal's ALSA host: ALSA's default device is PipeWire's
/// (pipewire-alsa), whose default source is the input sink's monitor.
#[test]
fn live_input_on_alsa_through_pipewire_alsa_goes_through_the_patch_at_half_level() {
    input_through("alsa");
}

/// A 330 Hz sine fed to clavm's input on `host`, through `0.5 * _in(0)`,
/// recorded at the output: frequency and level.
fn input_through(host: &str) {
    let _s = serial();
    let pw = PipeWire::start();
    let dir = Dir::new();
    // The source: a null sink `clavm_in` that pw-play plays a 330 Hz sine of 0.4 into; the
    // output: a null sink `clavm_out` (PipeWire removes its "Dummy Output" once a real sink exists).
    for sink in ["clavm_in", "clavm_out"] {
        let made = pw.tool(
            "pactl",
            &[
                "load-module",
                "module-null-sink",
                &format!("sink_name={sink}"),
                &format!("sink_properties=device.description={sink}"),
            ],
        );
        assert!(made.status.success(), "module-null-sink: {}", String::from_utf8_lossy(&made.stderr));
    }
    let set = pw.tool("pactl", &["set-default-sink", "clavm_out"]);
    assert!(set.status.success(), "set-default-sink: {}", String::from_utf8_lossy(&set.stderr));
    let set = pw.tool("pactl", &["set-default-source", "clavm_in.monitor"]);
    assert!(set.status.success(), "set-default-source: {}", String::from_utf8_lossy(&set.stderr));
    let sine = dir.path("in.wav");
    // Stereo like the null sink, read with two inputs: no channel mixing anywhere changes the level.
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(&sine, spec).unwrap();
    for i in 0..48000 * 8 {
        let x = 0.4 * (2.0 * std::f32::consts::PI * 330.0 * i as f32 / 48000.0).sin();
        w.write_sample(x).unwrap();
        w.write_sample(x).unwrap();
    }
    w.finalize().unwrap();
    let mut feed =
        pw.command("pw-play").args(["--target", "clavm_in"]).arg(&sine).spawn().expect("pw-play (pipewire-bin)");
    let patch = dir.file("thru.c", "void play(void) { float x = 0.5f * _in(0); _out(0, x); _out(1, x); }\n");
    let rec = pw.record(&dir.path("rec.wav"), Some("clavm_out"));
    std::thread::sleep(Duration::from_millis(300));
    let engine = format!("pw-input-{}", std::process::id());
    // PipeWire by name; ALSA through its default device (PipeWire's defaults).
    let mut args = vec!["--inputs", "2", "--seconds", "4", "--engine", &engine];
    if host == "pipewire" {
        args.extend(["--input-device", "clavm_in", "--device", "clavm_out"]);
    } else {
        args.extend(["--rate", "48000"]);
    }
    let mut clavm = pw.play(&patch, host, &args);
    let err = drain_stderr(&mut clavm);
    let status = clavm.wait().unwrap();
    let err = err.join().unwrap();
    let recorded = rec.finish();
    let _ = feed.kill();
    let _ = feed.wait();
    assert!(status.success(), "clavm play --inputs 2 failed: {err}");
    if host == "pipewire" {
        assert!(err.contains("2 in from 'clavm_in'"), "status line: {err}");
    } else {
        assert!(err.contains("2 in from"), "status line: {err}");
        // pipewire-alsa is a plugin: its streams are not raised to SCHED_FIFO, and say so.
        assert!(err.contains("stays at normal priority"), "the plugin note: {err}");
    }
    let middle = loud_middle(&recorded, 2.0);
    assert!(middle.len() > 48000, "less than 1 s of the input came out\n{err}");
    let f = frequency(middle);
    assert!((f - 330.0).abs() < 2.0, "{f:.1} Hz came out, 330 went in\n{err}");
    let level = steady_rms(middle);
    let want = 0.5 * 0.4 / 2f64.sqrt();
    assert!((level - want).abs() < 0.1 * want, "RMS {level:.4} came out, {want:.4} expected (0.5 x 0.4 sine)\n{err}");
}

#[test]
fn bad_hosts_devices_and_blocks_are_one_line_naming_what_there_is() {
    let _s = serial();
    let dir = Dir::new();
    let patch = dir.file("sine.c", SINE);
    // No daemon at all in an empty runtime dir: PipeWire and Pulse are not running.
    let empty = tempfile::tempdir().unwrap();
    for (host, name) in [("pipewire", "PipeWire"), ("pulse", "PulseAudio")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_clavm"))
            .args(["play", patch.to_str().unwrap(), "--host", host, "--seconds", "1", "--no-osc", "--midi", "none"])
            .env("XDG_RUNTIME_DIR", empty.path())
            .env_remove("PIPEWIRE_RUNTIME_DIR")
            .env_remove("PULSE_SERVER")
            .env("JACK_DEFAULT_SERVER", "clavm-no-such-server")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert_eq!(err.trim(), format!("clavm: error: --host {host}: {name} is not running (running: alsa)"));
    }
    let pw = PipeWire::start();
    let run = |args: &[&str]| {
        let mut all = vec!["play", patch.to_str().unwrap(), "--seconds", "1", "--no-osc", "--midi", "none"];
        all.extend_from_slice(args);
        let out = pw.tool(env!("CARGO_BIN_EXE_clavm"), &all);
        assert!(!out.status.success(), "{args:?} played");
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
        err
    };
    assert_eq!(
        run(&["--host", "jack"]),
        "clavm: error: --host jack: JACK is not running (running: pipewire, pulse, alsa)"
    );
    assert_eq!(
        run(&["--host", "pipewire", "--device", "nope"]),
        "clavm: error: --device 'nope': no such output device on PipeWire (devices: 'default_sink', 'default_output', 'Dummy Output')"
    );
    let err = run(&["--host", "pulse", "--device", "nope"]);
    assert_eq!(err, "clavm: error: --device 'nope': no such output device on PulseAudio (devices: 'Dummy Output')");
    assert_eq!(
        run(&["--host", "pipewire", "--buffer", "4096"]),
        "clavm: error: --buffer 4096: the PipeWire output 'default_output' refuses it (offers rates 48000 Hz; blocks 16..=2048 frames; channels 2)"
    );
    let err = run(&["--host", "pipewire", "--inputs", "1", "--input-device", "nope"]);
    assert!(
        err.starts_with("clavm: error: --input-device 'nope': no such input device on PipeWire (devices: "),
        "{err}"
    );
    assert!(err.contains("'Dummy Output'"), "{err}");
}

#[test]
fn a_rate_the_jack_server_does_not_run_at_is_one_line_with_its_rate() {
    let _s = serial();
    let dir = Dir::new();
    let patch = dir.file("sine.c", SINE);
    let jackd = common::jack::Jackd::start_named("clavm-pw-rate-test");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clavm"))
        .args(["play", patch.to_str().unwrap(), "--host", "jack", "--rate", "44100", "--seconds", "1"])
        .args(["--no-osc", "--midi", "none"])
        .env("JACK_DEFAULT_SERVER", &jackd.name)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "clavm: error: --rate 44100: the JACK server runs at 48000 Hz (JACK sets the rate)"
    );
}
