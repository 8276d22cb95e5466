//! Issue 14, parts 1 and 6 for live input: `clavm play --inputs N` on a JACK
//! server of this file's own (`jackd -d dummy`). A source client of ours
//! feeds the engine's `in_1`, a sink client records its `out_0`: the graph
//! is source -> engine -> sink, without a cycle, so JACK runs all three in
//! one period and any latency measured is the engine's own.
//!
//! Then hearing protection on what inputs bring: the engine's output fed
//! back into its own input with gain, DC, and NaN on the input.

use std::process::Child;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::jack::{connect_when_ready, drain_stderr, frequency, play_on, rms, Jackd, SR};
use common::Dir;

/// The tests share one server name: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());
const SERVER: &str = "clavm-input-test";
/// The dummy server's period (common::jack::Jackd starts it with `-p 128`).
const PERIOD: u64 = 128;
const CEILING: f32 = clavm_audio::protect::CEILING;

fn server() -> Jackd {
    let jackd = Jackd::start_named(SERVER);
    // Our own clients go to the same server (set under SERIAL, before any client exists).
    std::env::set_var("JACK_DEFAULT_SERVER", SERVER);
    std::env::set_var("JACK_NO_START_SERVER", "1");
    jackd
}

/// What the source plays.
#[derive(Clone, Copy)]
enum Mode {
    Silence = 0,
    /// A sine at `freq` Hz of amplitude `level`.
    Sine = 1,
    /// One sample of `level` at the start of the next period, then silence.
    Impulse = 2,
    /// A constant `level`.
    Dc = 3,
    Nan = 4,
}

/// A client `clavm-src` with one output `out`.
struct Source {
    client: jack::AsyncClient<(), jack::contrib::ClosureProcessHandler<(), SourceFn>>,
    mode: Arc<AtomicU32>,
    level: Arc<AtomicU32>,
    freq: Arc<AtomicU32>,
    /// The frame time of the period whose first sample was the impulse.
    fired: Arc<AtomicU64>,
}

type SourceFn = Box<dyn FnMut(&jack::Client, &jack::ProcessScope) -> jack::Control + Send>;

impl Source {
    fn start() -> Source {
        let (client, _) = jack::Client::new("clavm-src", jack::ClientOptions::NO_START_SERVER).unwrap();
        let mut port = client.register_port("out", jack::AudioOut::default()).unwrap();
        let mode = Arc::new(AtomicU32::new(Mode::Silence as u32));
        let level = Arc::new(AtomicU32::new(0));
        let freq = Arc::new(AtomicU32::new(0));
        let fired = Arc::new(AtomicU64::new(u64::MAX));
        let (m, l, f, fi) = (mode.clone(), level.clone(), freq.clone(), fired.clone());
        let mut phase = 0.0f64;
        let process: SourceFn = Box::new(move |_, ps| {
            let out = port.as_mut_slice(ps);
            // The mode first: `play` stores it last, so its level is then visible too.
            let mode = m.load(Ordering::SeqCst);
            let level = f32::from_bits(l.load(Ordering::SeqCst));
            match mode {
                1 => {
                    let step = f32::from_bits(f.load(Ordering::Relaxed)) as f64 / SR as f64;
                    for s in out.iter_mut() {
                        *s = level * (std::f64::consts::TAU * phase).sin() as f32;
                        phase = (phase + step).fract();
                    }
                }
                2 => {
                    out.fill(0.0);
                    out[0] = level;
                    fi.store(u64::from(ps.last_frame_time()), Ordering::SeqCst);
                    m.store(Mode::Silence as u32, Ordering::SeqCst);
                }
                3 => out.fill(level),
                4 => out.fill(f32::NAN),
                _ => out.fill(0.0),
            }
            jack::Control::Continue
        });
        let client = client.activate_async((), jack::contrib::ClosureProcessHandler::new(process)).unwrap();
        Source { client, mode, level, freq, fired }
    }

    fn play(&self, mode: Mode, level: f32, freq: f32) {
        self.level.store(level.to_bits(), Ordering::SeqCst);
        self.freq.store(freq.to_bits(), Ordering::SeqCst);
        self.mode.store(mode as u32, Ordering::SeqCst);
    }
}

/// What the sink heard: samples, and the frame time of each period's first sample.
#[derive(Default)]
struct Heard {
    on: bool,
    samples: Vec<f32>,
    /// (index into `samples`, JACK frame time) per period.
    periods: Vec<(usize, u64)>,
}

/// A client `clavm-sink` with one input `in`.
struct Sink {
    client: jack::AsyncClient<(), jack::contrib::ClosureProcessHandler<(), SourceFn>>,
    heard: Arc<Mutex<Heard>>,
}

impl Sink {
    fn start() -> Sink {
        let (client, _) = jack::Client::new("clavm-sink", jack::ClientOptions::NO_START_SERVER).unwrap();
        let port = client.register_port("in", jack::AudioIn::default()).unwrap();
        let heard = Arc::new(Mutex::new(Heard::default()));
        let h = heard.clone();
        let process: SourceFn = Box::new(move |_, ps| {
            if let Ok(mut g) = h.try_lock() {
                if g.on {
                    let at = g.samples.len();
                    g.periods.push((at, u64::from(ps.last_frame_time())));
                    g.samples.extend_from_slice(port.as_slice(ps));
                }
            }
            jack::Control::Continue
        });
        let client = client.activate_async((), jack::contrib::ClosureProcessHandler::new(process)).unwrap();
        Sink { client, heard }
    }

    /// Records `seconds`, returning the samples and the period stamps.
    fn record(&self, seconds: f64) -> (Vec<f32>, Vec<(usize, u64)>) {
        *self.heard.lock().unwrap() = Heard { on: true, ..Heard::default() };
        std::thread::sleep(Duration::from_secs_f64(seconds));
        let mut g = self.heard.lock().unwrap();
        g.on = false;
        (std::mem::take(&mut g.samples), std::mem::take(&mut g.periods))
    }
}

/// `clavm play` of `text` with `--inputs 1`, its input fed by `src` and its first output heard by `sink`.
struct Engine {
    child: Child,
    name: String,
    stderr: Option<std::thread::JoinHandle<String>>,
    _dir: Dir,
}

impl Engine {
    fn start(jackd: &Jackd, text: &str, src: &Source, sink: &Sink, seconds: &str) -> Engine {
        let dir = Dir::new();
        let patch = dir.file("in.c", text);
        let engine = format!("input{}", std::process::id());
        let mut child = play_on(
            jackd,
            &patch,
            &["--inputs", "1", "--engine", &engine, "--no-osc", "--midi", "none", "--seconds", seconds],
        );
        let stderr = Some(drain_stderr(&mut child));
        let c = src.client.as_client();
        connect_when_ready(c, "clavm-src:out", "cpal_client_out:in_1");
        // The dummy server's capture ports are silent, but only our source should feed the input.
        let _ = c.disconnect_ports_by_name("system:capture_1", "cpal_client_out:in_1");
        connect_when_ready(sink.client.as_client(), "cpal_client_out:out_0", "clavm-sink:in");
        Engine { child, name: engine, stderr, _dir: dir }
    }

    /// Waits for the end of `--seconds`; the engine's stderr.
    fn finish(mut self) -> String {
        let status = self.child.wait().unwrap();
        let err = self.stderr.take().unwrap().join().unwrap();
        assert!(status.success(), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        err
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the sink hears something above `level` (the version plays).
fn wait_for_sound(sink: &Sink, level: f64) {
    let t0 = Instant::now();
    while rms(&sink.record(0.1).0) < level {
        assert!(t0.elapsed() < Duration::from_secs(10), "the engine never played its input");
    }
}

#[test]
fn a_sine_on_the_input_plays_at_half_level_in_the_same_period() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let jackd = server();
    let (src, sink) = (Source::start(), Sink::start());
    let engine = Engine::start(
        &jackd,
        "void play(void) { _out(0, 0.5f * _in(0)); _out(1, 0.5f * _in(0)); }\n",
        &src,
        &sink,
        "8",
    );
    src.play(Mode::Sine, 0.6, 440.0);
    wait_for_sound(&sink, 0.1);
    let (x, _) = sink.record(1.0);
    assert!(x.len() > SR * 9 / 10, "recorded {} samples", x.len());
    let (f, level) = (frequency(&x), rms(&x));
    eprintln!("heard {f:.2} Hz at rms {level:.4} (expected 440 Hz at {:.4})", 0.3 / 2f64.sqrt());
    assert!((f - 440.0).abs() < 2.0, "frequency {f}");
    assert!((level - 0.3 / 2f64.sqrt()).abs() < 0.01, "rms {level}");

    // Latency: an impulse at the start of a period, found in the sink's stamps.
    let mut latencies = Vec::new();
    for _ in 0..5 {
        src.play(Mode::Silence, 0.0, 0.0);
        std::thread::sleep(Duration::from_millis(100));
        let fired_before = src.fired.load(Ordering::SeqCst);
        let heard = sink.heard.clone();
        *heard.lock().unwrap() = Heard { on: true, ..Heard::default() };
        src.play(Mode::Impulse, 0.8, 0.0);
        std::thread::sleep(Duration::from_millis(200));
        let (y, periods) = {
            let mut g = heard.lock().unwrap();
            g.on = false;
            (std::mem::take(&mut g.samples), std::mem::take(&mut g.periods))
        };
        let fired = src.fired.load(Ordering::SeqCst);
        assert_ne!(fired, fired_before, "the source never fired its impulse");
        let Some(i) = y.iter().position(|v| v.abs() > 0.2) else { panic!("the impulse never came out") };
        assert!((y[i] - 0.4).abs() < 0.01, "the impulse at half level: {}", y[i]);
        let (start, frame) = periods.iter().rev().find(|(s, _)| *s <= i).copied().unwrap();
        latencies.push(frame + (i - start) as u64 - fired);
    }
    latencies.sort_unstable();
    let median = latencies[latencies.len() / 2];
    eprintln!("input to output: {latencies:?} frames ({} periods of {PERIOD} at the median)", median / PERIOD);
    assert_eq!(median / PERIOD, 0, "the input must reach the output in the same period: {latencies:?} frames");

    // `clavm tap --inputs` writes the input after the outputs.
    src.play(Mode::Sine, 0.6, 440.0);
    let wav = engine._dir.path("tap.wav");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_clavm"))
        .args(["tap", "--engine", &engine.name, "--inputs", "--seconds", "0.5", "-o", wav.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut r = hound::WavReader::open(&wav).unwrap();
    assert_eq!(r.spec().channels, 3, "two outputs, then the input");
    let all: Vec<f32> = r.samples::<f32>().map(Result::unwrap).collect();
    let channel = |c: usize| all.iter().skip(c).step_by(3).copied().collect::<Vec<f32>>();
    let (out0, input) = (channel(0), channel(2));
    eprintln!("tap: output rms {:.4}, input rms {:.4}", rms(&out0), rms(&input));
    assert!((rms(&input) - 0.6 / 2f64.sqrt()).abs() < 0.01, "input rms {}", rms(&input));
    assert!((rms(&out0) - 0.3 / 2f64.sqrt()).abs() < 0.01, "output rms {}", rms(&out0));
    // Sample for sample: the output is half the input of the same frame.
    assert!(out0.iter().zip(&input).all(|(o, i)| (o - 0.5 * i).abs() < 1e-6), "output is not 0.5 * input per frame");
    let err = engine.finish();
    assert!(err.contains("1 in (in_1..) read in the same cycle"), "{err}");
    drop((src, sink, jackd));
}

#[test]
fn the_output_fed_back_into_its_input_with_gain_stays_under_the_ceiling() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let jackd = server();
    let (src, sink) = (Source::start(), Sink::start());
    // A loopback with a gain of 4: without protection it grows 12 dB a period.
    let engine = Engine::start(
        &jackd,
        "void play(void) { _out(0, 4.0f * _in(0) + 0.3f * Cycle(220)); _out(1, 0.0f); }\n",
        &src,
        &sink,
        "6",
    );
    wait_for_sound(&sink, 0.05);
    let c = sink.client.as_client();
    c.disconnect_ports_by_name("clavm-src:out", "cpal_client_out:in_1").unwrap();
    c.connect_ports_by_name("cpal_client_out:out_0", "cpal_client_out:in_1").unwrap();
    let (y, _) = sink.record(3.0);
    assert!(y.len() > SR * 2, "recorded {} samples", y.len());
    let peak = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    eprintln!("loopback with gain 4: peak {peak} over {} samples", y.len());
    assert!(y.iter().all(|v| v.is_finite()), "a non-finite sample reached JACK");
    assert!(peak <= CEILING + 1e-6, "peak {peak} above the ceiling {CEILING}");
    let err = engine.finish();
    assert!(err.contains("channel 0: runaway level") && err.contains("faded out"), "{err}");
    drop((src, sink, jackd));
}

#[test]
fn dc_and_nan_on_an_input_are_stopped_and_reported() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let jackd = server();
    let (src, sink) = (Source::start(), Sink::start());
    let engine = Engine::start(
        &jackd,
        "void play(void) { _out(0, 2.0f * _in(0)); _out(1, 0.2f * Cycle(440)); }\n",
        &src,
        &sink,
        "7",
    );
    src.play(Mode::Sine, 0.2, 440.0);
    wait_for_sound(&sink, 0.1);
    // DC at 0.9: 1.8 after the patch's gain, for 1.5 s.
    src.play(Mode::Dc, 0.9, 0.0);
    let (y, _) = sink.record(1.5);
    let peak = y.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let tail = &y[y.len() - SR / 2..];
    let tail_mean = tail.iter().map(|&v| v as f64).sum::<f64>() / tail.len() as f64;
    eprintln!("DC 0.9 in, gain 2: peak {peak}, mean of the last 0.5 s {tail_mean:.5}");
    assert!(peak <= CEILING + 1e-6, "peak {peak} above the ceiling {CEILING}");
    assert!(tail_mean.abs() < 0.01, "the DC still plays: mean {tail_mean}");
    // NaN on the input: silence, never NaN at JACK.
    src.play(Mode::Nan, 0.0, 0.0);
    let (z, _) = sink.record(1.0);
    assert!(z.iter().all(|v| v.is_finite() && v.abs() <= CEILING), "NaN or a peak reached JACK");
    let err = engine.finish();
    eprintln!("{err}");
    assert!(err.contains("channel 0:") && err.contains("faded out"), "the guard said nothing: {err}");
    assert!(err.contains("NaN/Inf output silenced"), "{err}");
    drop((src, sink, jackd));
}

#[test]
fn inputs_out_of_range_or_not_a_number_are_one_line_usage_errors() {
    let dir = Dir::new();
    let patch = dir.file("p.c", "void play(void) { _out(0, _in(0)); }\n");
    for (value, says) in [("17", "out of range (allowed: 0..=16)"), ("x", "not a whole number (allowed: 0..=16)")] {
        // `clavm play` and the app (the main job) share the option.
        for args in
            [vec!["play", patch.to_str().unwrap(), "--inputs", value], vec![patch.to_str().unwrap(), "--inputs", value]]
        {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_clavm"))
                .args(&args)
                .env_remove("WAYLAND_DISPLAY")
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            // clap's usage error: one line, then its standard pointer to --help.
            let lines: Vec<&str> =
                err.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("For more information")).collect();
            assert_eq!(lines.len(), 1, "{args:?}: {err}");
            assert!(lines[0].contains(&format!("invalid value '{value}' for '--inputs")), "{args:?}: {err}");
            assert!(lines[0].contains(says), "{args:?}: {err}");
        }
    }
}
