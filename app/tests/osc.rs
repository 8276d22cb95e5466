//! Issue 13, finding 1, end to end: `clavm play` on a private JACK server
//! (`jackd -d dummy`) takes the hostile OSC corpus (`assets/hostile/osc/`,
//! the 3,000 nested bundles that used to abort it first) and a burst of
//! random datagrams on its OSC port, and stays alive: it still answers
//! `clavm submit`, and a valid OSC message still sets `_p(0)`, as the audio
//! tap hears.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};

/// A private JACK server under a name of this file's own, so that the other
/// JACK tests (server `clavm-test`) may run beside it; killed on drop.
const JACK_NAME: &str = "clavm-test-osc";

fn clavm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clavm")).args(args).stdin(Stdio::null()).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A port nobody listens on now (the kernel's choice, released at once).
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The scheduling policy (0 normal, 1 FIFO, 2 RR, 3 batch, 5 idle) of the
/// thread named `name` in process `pid` (field 41 of its stat).
fn thread_policy(pid: u32, name: &str) -> Option<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.filter_map(|e| e.ok()).find_map(|task| {
        let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
        if comm.trim() != name {
            return None;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
        // Fields after the command's closing parenthesis start at field 3.
        stat.rsplit_once(')')?.1.split_whitespace().nth(41 - 3)?.parse().ok()
    })
}

/// The amplitude of the left channel, as the audio tap records it for `seconds`.
fn left_amplitude(engine: &str, wav: &Path, seconds: &str) -> f64 {
    let o = clavm(&["tap", "--engine", engine, "--seconds", seconds, "-o", wav.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let mut reader = hound::WavReader::open(wav).unwrap();
    let channels = reader.spec().channels as usize;
    let left: Vec<f64> = reader.samples::<f32>().step_by(channels).map(|s| s.unwrap() as f64).collect();
    (left.iter().map(|v| v * v).sum::<f64>() / left.len().max(1) as f64).sqrt() * 2f64.sqrt()
}

/// Deterministic noise (xorshift), so a failure can be replayed.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/hostile/osc");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "osc"))
        .collect();
    // The finding's packet first, then the deepest that fits: the first five refusals are named on stderr.
    files.sort_by_key(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        (!name.contains("3000-nested"), !name.contains("818-nested"), name)
    });
    assert!(files.len() >= 10, "the corpus in {}", dir.display());
    files
}

fn set_p0(value: f32) -> OscPacket {
    OscPacket::Message(OscMessage { addr: "/clavm/p".into(), args: vec![OscType::Int(0), OscType::Float(value)] })
}

#[test]
fn hostile_osc_never_stops_the_engine_and_valid_osc_still_sets_parameters() {
    let _jackd = common::jack::Jackd::start_named(JACK_NAME);
    let dir = tempfile::tempdir().unwrap();
    let patch = dir.path().join("levels.c");
    std::fs::write(&patch, "void play(void) { _out(0, _p(0) * Cycle(440)); _out(1, 0.2f * Cycle(440)); }\n").unwrap();
    let engine = format!("t{}osc", std::process::id());
    let port = free_udp_port();
    let mut play = Command::new(env!("CARGO_BIN_EXE_clavm"))
        .args(["play", patch.to_str().unwrap(), "--host", "jack", "--engine", &engine, "--midi", "none"])
        .args(["--osc-port", &port.to_string()])
        .env("JACK_DEFAULT_SERVER", JACK_NAME)
        .env("JACK_NO_START_SERVER", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = play.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut s);
        s
    });

    // Wait until the engine answers a submit.
    let t0 = Instant::now();
    loop {
        let o = clavm(&["submit", "--engine", &engine, "--timeout", "1", patch.to_str().unwrap()]);
        if o.status.success() {
            break;
        }
        assert!(play.try_wait().unwrap().is_none(), "clavm play exited: {}", stderr.join().unwrap());
        assert!(t0.elapsed() < Duration::from_secs(30), "engine never answered: {}", text(&o));
    }
    // The OSC thread is an ordinary one: a flood on it competes with nothing realtime.
    let policy = thread_policy(play.id(), "clavm-osc");
    assert!(matches!(policy, Some(0 | 3 | 5)), "clavm-osc scheduling policy {policy:?}");
    let wav = dir.path().join("tap.wav");
    let before = left_amplitude(&engine, &wav, "0.2");
    assert!(before < 0.01, "_p(0) starts at 0, yet the left channel plays at {before}");

    // The hostile corpus, one datagram each, with time to take each.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let files = corpus();
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        sock.send_to(&bytes, ("127.0.0.1", port)).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        std::thread::sleep(Duration::from_millis(20));
    }
    // A burst of garbage as fast as it goes: random bytes, random bytes behind an
    // OSC start, and the largest datagrams UDP carries. What the kernel's buffer
    // cannot hold it drops; the rest is refused one datagram at a time.
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    for i in 0..3000 {
        let n = 1 + (noise.next() % 1500) as usize;
        let mut datagram = match i % 3 {
            0 => b"#bundle\0\0\0\0\0\0\0\0\0".to_vec(),
            1 => b"/clavm/p\0\0\0\0,".to_vec(),
            _ => Vec::new(),
        };
        datagram.extend(noise.bytes(n));
        if i % 500 == 0 {
            datagram.resize(65_507, 0xff);
        }
        sock.send_to(&datagram, ("127.0.0.1", port)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(play.try_wait().unwrap().is_none(), "the engine died of OSC: {}", stderr.join().unwrap());

    // It still answers a submit, and plays the new version.
    let o = clavm(&["submit", "--engine", &engine, "--timeout", "5", patch.to_str().unwrap()]);
    assert!(o.status.success(), "submit after the flood: {}", text(&o));

    // Valid OSC still sets the parameter: in bundles nested to the limit, then plain.
    let nested = (0..16).fold(set_p0(0.25), |inner, _| {
        OscPacket::Bundle(OscBundle { timetag: OscTime { seconds: 0, fractional: 1 }, content: vec![inner] })
    });
    for (packet, want) in [(nested, 0.25), (set_p0(0.5), 0.5)] {
        let bytes = rosc::encoder::encode(&packet).unwrap();
        let t0 = Instant::now();
        loop {
            // Resent until heard: UDP may drop a datagram, the tap may start before the change.
            sock.send_to(&bytes, ("127.0.0.1", port)).unwrap();
            let a = left_amplitude(&engine, &wav, "0.2");
            if (a - want).abs() < 0.02 {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "OSC _p(0) = {want} gave amplitude {a}");
        }
    }

    // Ctrl-C: a clean stop.
    // SAFETY: signalling our own child, which handles SIGINT.
    unsafe { libc::kill(play.id() as i32, libc::SIGINT) };
    let status = play.wait().unwrap();
    let err = stderr.join().unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("ignored a malformed OSC packet (more than 16384 bytes)"), "{err}");
    assert!(err.contains("ignored a malformed OSC packet (bundles nested deeper than 16)"), "{err}");
    // The per-second count of refusals covers at least the corpus.
    let refused = err
        .lines()
        .filter_map(|l| l.strip_prefix("clavm: parameter messages so far: "))
        .filter_map(|l| l.split_once(" refused")?.0.parse::<u64>().ok())
        .max();
    assert!(refused.is_some_and(|n| n >= files.len() as u64), "refusals counted {refused:?} of {}: {err}", files.len());
}
