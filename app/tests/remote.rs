//! The submit path and live parameters end to end: `clavm play` on a real JACK
//! server (`jackd -d dummy`), `clavm submit` and `clavm param` against it, OSC
//! over loopback, and MIDI control change from a JACK MIDI client of our own.

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod common;
use common::jack::{connect_when_ready, drain_stderr, play_on, record, recorder, rms, Jackd};
use common::workers_of;

/// JACK tests share one server name per process: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn clavm(args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_clavm"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = c.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    c.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Waits until engine `name` answers a submit (its channels exist once it plays).
fn wait_for_engine(name: &str, patch: &std::path::Path) {
    let t0 = Instant::now();
    loop {
        let o = clavm(&["submit", "--engine", name, "--timeout", "1", patch.to_str().unwrap()], None);
        if o.status.code() == Some(0) {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "engine {name} never answered: {}", text(&o));
    }
}

fn stop(mut c: Child) -> String {
    // SAFETY: signalling our own child: Ctrl-C, which `clavm play` handles.
    unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
    let err = drain_stderr(&mut c);
    let status = c.wait().unwrap();
    let err = err.join().unwrap();
    assert!(status.success(), "{err}");
    err
}

const SINE: &str = "void play(void) { float s = 0.4f * Cycle(440); _out(0, s); _out(1, s); }\n";

#[test]
fn submit_plays_reports_diagnostics_and_says_when_no_engine_answers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let jackd = Jackd::start();
    let dir = tempfile::tempdir().unwrap();
    let patch = dir.path().join("live.c");
    std::fs::write(&patch, SINE).unwrap();
    let engine = format!("t{}a", std::process::id());
    let mut play = play_on(&jackd, &patch, &["--engine", &engine, "--no-osc", "--midi", "none"]);
    let play_err = drain_stderr(&mut play);
    wait_for_engine(&engine, &patch);

    // A good patch: exit 0, a version and its times.
    let good = dir.path().join("good.c");
    std::fs::write(&good, SINE.replace("440", "660")).unwrap();
    let o = clavm(&["submit", "--engine", &engine, good.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("playing: compile") && out.contains("swap"), "{out}");

    // A broken one: exit 1, FILE:LINE:COL diagnostics, and the old code plays on.
    let bad = dir.path().join("bad.c");
    std::fs::write(&bad, "void play(void) {\n  _out(0, Cycle(440) +);\n}\n").unwrap();
    let o = clavm(&["submit", "--engine", &engine, bad.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{}:2:", bad.display())) && err.contains("error:"), "{err}");

    // From standard input, with a name.
    let o = clavm(&["submit", "--engine", &engine, "--name", "stdin.c", "-"], Some(&SINE.replace("440", "550")));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = clavm(&["submit", "--engine", &engine, "--name", "stdin.c", "-"], Some("void play(void) { x }\n"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("stdin.c:1:"), "{}", text(&o));

    // A patch that crashes in its test run: exit 1 with why.
    let o = clavm(&["submit", "--engine", &engine, "-"], Some("void play(void) { int *p = 0; *p = 1; }\n"));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("crashed"), "{}", text(&o));

    // Garbage on the submit channel (not a submit, or one with lying lengths): ignored and
    // said, and the engine answers the next submit.
    let raw = clavm_channel::Sender::open(&engine, "submit").unwrap();
    raw.try_send_bytes(b"\x00garbage that is not a submit").unwrap();
    raw.try_send_bytes(&[0x5a; 200]).unwrap();
    let o = clavm(&["submit", "--engine", &engine, good.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(0), "after garbage: {}", text(&o));

    // Too large: refused before sending, never truncated.
    let big = dir.path().join("big.c");
    std::fs::write(&big, format!("{SINE}/*{}*/\n", "x".repeat(1 << 21))).unwrap();
    let o = clavm(&["submit", "--engine", &engine, big.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("takes patches up to"), "{}", text(&o));

    // No such engine: exit 3 after the timeout.
    let t0 = Instant::now();
    let o = clavm(&["submit", "--engine", "nobody-here", "--timeout", "0.3", good.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("not responding"), "{}", text(&o));
    assert!(t0.elapsed() < Duration::from_secs(5));

    // A second engine under the same name is refused, clearly.
    let mut twin = play_on(&jackd, &patch, &["--engine", &engine, "--no-osc", "--midi", "none"]);
    let twin_err = drain_stderr(&mut twin);
    assert!(!twin.wait().unwrap().success());
    assert!(twin_err.join().unwrap().contains("another engine of that name"));

    // The engine killed: the next submit says so (exit 3) and leaks nothing; a restart under the
    // same name recovers the stale channels.
    let pid = play.id();
    play.kill().unwrap();
    play.wait().unwrap();
    let o = clavm(&["submit", "--engine", &engine, "--timeout", "0.5", good.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let t0 = Instant::now();
    while workers_of(pid) > 0 {
        assert!(t0.elapsed() < Duration::from_secs(5), "workers outlived their engine");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A submit made while the engine is down waits (within its timeout) for the restart.
    let waiting = Command::new(env!("CARGO_BIN_EXE_clavm"))
        .args(["submit", "--engine", &engine, "--timeout", "20", good.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let again = play_on(&jackd, &patch, &["--engine", &engine, "--no-osc", "--midi", "none"]);
    let o = waiting.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "the submit made during the restart: {}", text(&o));

    // The C ABI (libclavm_submit.so through its header), as LuaJIT's FFI uses it.
    let c = dir.path().join("send.c");
    std::fs::write(
        &c,
        r#"#include <stdio.h>
#include "clavm_submit.h"
int main(int argc, char **argv) {
    const char *r = clavm_send_named(argv[1], "c.c", "void play(void) { _out(0, 0.1f * Cycle(220)); }\n", 2000);
    puts(r);
    clavm_free(r);
    r = clavm_send(argv[1], "void play(void) {\n  oops\n}\n", 2000);
    puts(r);
    clavm_free(r);
    printf("param %d\n", clavm_param(argv[1], 0, 3, 0.5));
    printf("missing %d\n", clavm_param("nobody-here", 0, 3, 0.5));
    return 0;
}
"#,
    )
    .unwrap();
    let lib_dir = std::path::Path::new(env!("CARGO_BIN_EXE_clavm")).parent().unwrap();
    assert!(lib_dir.join("libclavm_submit.so").exists(), "build the workspace first (cargo build --workspace)");
    let exe = dir.path().join("send");
    let include = concat!(env!("CARGO_MANIFEST_DIR"), "/../submit/include");
    let cc = Command::new("cc")
        .args([c.to_str().unwrap(), "-o", exe.to_str().unwrap(), "-I", include])
        .arg(format!("-L{}", lib_dir.display()))
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-lclavm_submit")
        .output()
        .unwrap();
    assert!(cc.status.success(), "{}", text(&cc));
    let o = Command::new(&exe).arg(&engine).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert!(o.status.success() && lines.len() == 4, "{}", text(&o));
    assert!(lines[0].contains(r#""status":"playing""#) && lines[0].contains(r#""ok":true"#), "{out}");
    assert!(lines[1].contains(r#""status":"rejected""#) && lines[1].contains(r#""line":2"#), "{out}");
    assert_eq!(&lines[2..], ["param 0", "missing -1"], "{out}");

    let err = stop(again);
    assert!(err.contains("playing"), "{err}");
    let first = play_err.join().unwrap();
    assert!(first.contains("ignored a submit: malformed message"), "{first}");
}

/// The level of a 440 Hz sine whose amplitude is `_p(0)`, `_cc(1)` or `_i(2)/10`, per channel.
const LEVELS: &str = "void play(void) {\n\
    _out(0, _p(0) * Cycle(440));\n\
    _out(1, (_cc(1) + 0.1f * (float)_i(2)) * Cycle(440));\n}\n";

fn amplitude(rec: &common::jack::Recording) -> f64 {
    rms(&record(rec, 0.3)) * 2f64.sqrt()
}

#[test]
fn parameters_arrive_from_clavm_param_osc_and_jack_midi_and_bad_input_is_refused() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let jackd = Jackd::start();
    let dir = tempfile::tempdir().unwrap();
    let patch = dir.path().join("levels.c");
    std::fs::write(&patch, LEVELS).unwrap();
    let engine = format!("t{}b", std::process::id());
    let port = 20000 + (std::process::id() % 20000) as u16;
    let play = play_on(&jackd, &patch, &["--engine", &engine, "--osc-port", &port.to_string(), "--midi", "jack"]);
    wait_for_engine(&engine, &patch);
    let (left, rec_l) = recorder("clavm-left");
    let (right, rec_r) = recorder("clavm-right");
    connect_when_ready(left.as_client(), "cpal_client_out:out_0", "clavm-left:in");
    connect_when_ready(right.as_client(), "cpal_client_out:out_1", "clavm-right:in");
    std::thread::sleep(Duration::from_millis(200));
    assert!(amplitude(&rec_l) < 0.01);

    // clavm param over shared memory.
    let o = clavm(&["param", "--engine", &engine, "0", "0.5"], None);
    assert!(o.status.success(), "{}", text(&o));
    std::thread::sleep(Duration::from_millis(100));
    let a = amplitude(&rec_l);
    assert!((a - 0.5).abs() < 0.02, "_p(0) = 0.5 gave amplitude {a}");
    let o = clavm(&["param", "--engine", &engine, "--int", "2", "3"], None);
    assert!(o.status.success(), "{}", text(&o));

    // OSC over loopback: good messages, then garbage that must only be counted.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |addr: &str, args: Vec<rosc::OscType>| {
        let msg = rosc::OscPacket::Message(rosc::OscMessage { addr: addr.into(), args });
        sock.send_to(&rosc::encoder::encode(&msg).unwrap(), ("127.0.0.1", port)).unwrap();
    };
    send("/clavm/p", vec![rosc::OscType::Int(0), rosc::OscType::Float(0.25)]);
    sock.send_to(b"\x00garbage that is not OSC", ("127.0.0.1", port)).unwrap();
    send("/clavm/p", vec![rosc::OscType::String("zero".into()), rosc::OscType::Float(0.9)]);
    send("/clavm/p", vec![rosc::OscType::Int(500), rosc::OscType::Float(0.9)]);
    send("/clavm/nothing", vec![]);
    std::thread::sleep(Duration::from_millis(150));
    let a = amplitude(&rec_l);
    assert!((a - 0.25).abs() < 0.02, "OSC _p(0) = 0.25 gave amplitude {a}");
    let r = amplitude(&rec_r);
    assert!((r - 0.3).abs() < 0.02, "_i(2) = 3 gave amplitude {r}");

    // The audio tap: what the engine plays, recorded without disturbing it.
    let wav = dir.path().join("tap.wav");
    let o = clavm(&["tap", "--engine", &engine, "--seconds", "0.5", "-o", wav.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", text(&o));
    let mut reader = hound::WavReader::open(&wav).unwrap();
    assert_eq!((reader.spec().channels, reader.spec().sample_rate), (2, 48000));
    let samples: Vec<f32> = reader.samples::<f32>().map(|s| s.unwrap()).collect();
    assert_eq!(samples.len(), 48000);
    let left: Vec<f32> = samples.iter().step_by(2).copied().collect();
    let right: Vec<f32> = samples.iter().skip(1).step_by(2).copied().collect();
    assert!((rms(&left) * 2f64.sqrt() - 0.25).abs() < 0.02, "tap left {}", rms(&left));
    assert!((rms(&right) * 2f64.sqrt() - 0.3).abs() < 0.02, "tap right {}", rms(&right));

    // The picture of the running engine, from the same tap: both meters show
    // a level (0.25 and 0.3 sines: green bars), the age of the audio is said.
    let png_path = dir.path().join("live.png");
    let o = clavm(
        &[
            "snapshot",
            "--engine",
            &engine,
            "--listen",
            "0.5",
            "--view",
            "meters",
            "--size",
            "320x240",
            "-o",
            png_path.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("old when the frame was ready"), "{}", text(&o));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png_path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut rgba = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut rgba).unwrap();
    let green_in = |x0: usize, x1: usize| {
        (0..180)
            .flat_map(|y| (x0..x1).map(move |x| (y * 320 + x) * 4))
            .filter(|&i| rgba[i..i + 3] == [0x3e, 0xcf, 0x6e])
            .count()
    };
    assert!(
        green_in(0, 167) > 300 && green_in(167, 320) > 300,
        "both meters show a level: {} {}",
        green_in(0, 167),
        green_in(167, 320)
    );

    // JACK MIDI: a CC from our own client, then a flood.
    let (midi, _) = jack::Client::new("clavm-test-midi", jack::ClientOptions::NO_START_SERVER).unwrap();
    let mut out = midi.register_port("out", jack::MidiOut::default()).unwrap();
    let queue: std::sync::Arc<Mutex<Vec<[u8; 3]>>> = Default::default();
    let q = queue.clone();
    let handler = jack::contrib::ClosureProcessHandler::new(move |_: &jack::Client, ps: &jack::ProcessScope| {
        let mut w = out.writer(ps);
        if let Ok(mut q) = q.try_lock() {
            for (i, m) in q.drain(..).enumerate() {
                // Past what a port buffer holds JACK refuses: that is the flood being dropped.
                let _ = w.write(&jack::RawMidi { time: (i as u32) % ps.n_frames(), bytes: &m });
            }
        }
        jack::Control::Continue
    });
    let midi = midi.activate_async((), handler).unwrap();
    connect_when_ready(midi.as_client(), "clavm-test-midi:out", "clavm-midi:cc_in");
    queue.lock().unwrap().push([0xb0, 1, 127]);
    std::thread::sleep(Duration::from_millis(150));
    let r = amplitude(&rec_r);
    // 1.3 before the output limiter (ceiling 0.98).
    assert!(r > 0.9, "_cc(1) = 1 gave amplitude {r}");
    // A flood of CCs in one cycle, ending at 0.5: whatever JACK drops, the engine stays up.
    queue.lock().unwrap().extend((0..5000).map(|i| [0xb0, 1, (i % 128) as u8]));
    std::thread::sleep(Duration::from_millis(100));
    queue.lock().unwrap().push([0xb0, 1, 64]);
    std::thread::sleep(Duration::from_millis(150));
    let r = amplitude(&rec_r);
    assert!((r - (64.0 / 127.0 + 0.3)).abs() < 0.03, "_cc(1) = 64/127 after the flood gave {r}");

    // The param channel's file cut short: the engine replaces it, and OSC and
    // JACK MIDI, which hold senders on the old file, find the new one.
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let param_file = format!("/dev/shm/clavm-{uid}-{engine}.param");
    std::fs::OpenOptions::new().write(true).open(&param_file).unwrap().set_len(4096).unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    queue.lock().unwrap().push([0xb0, 1, 0]);
    send("/clavm/p", vec![rosc::OscType::Int(0), rosc::OscType::Float(0.5)]);
    std::thread::sleep(Duration::from_millis(200));
    let (a, r) = (amplitude(&rec_l), amplitude(&rec_r));
    assert!((a - 0.5).abs() < 0.02, "OSC _p(0) = 0.5 after the channel was replaced gave {a}");
    assert!((r - 0.3).abs() < 0.03, "MIDI _cc(1) = 0 after the channel was replaced gave {r}");

    drop(midi);
    drop((left, right));
    let err = stop(play);
    assert!(err.contains("ignored a malformed OSC packet"), "{err}");
    assert!(err.contains("ignored OSC address /clavm/nothing"), "{err}");
}
