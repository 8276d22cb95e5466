//! `clavm play` against a real JACK server (`jackd -d dummy`, started here),
//! with our output recorded by a JACK client of our own and analysed.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SR: usize = 48000;

/// A private JACK server; killed on drop.
struct Jackd {
    child: Child,
    name: String,
}

impl Jackd {
    fn start() -> Jackd {
        let name = format!("clavm-test-{}", std::process::id());
        let child = Command::new("jackd")
            .args(["-n", &name, "-d", "dummy", "-r", "48000", "-p", "128"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("jackd (Debian package jackd2) must be installed: run scripts/setup.sh");
        // SAFETY (of the environment): this test binary runs one test, before any other thread uses JACK.
        std::env::set_var("JACK_DEFAULT_SERVER", &name);
        std::env::set_var("JACK_NO_START_SERVER", "1");
        let t0 = Instant::now();
        while jack::Client::new("probe", jack::ClientOptions::NO_START_SERVER).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(10), "jackd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Jackd { child, name }
    }
}

impl Drop for Jackd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Recording = Arc<Mutex<(bool, Vec<f32>)>>;

/// Records channel 0 of `cpal_client_out` while the flag is on.
fn recorder() -> (jack::AsyncClient<(), impl jack::ProcessHandler>, Recording) {
    let (client, _) = jack::Client::new("clavm-capture", jack::ClientOptions::NO_START_SERVER).unwrap();
    let port = client.register_port("in", jack::AudioIn).unwrap();
    let rec: Recording = Arc::new(Mutex::new((false, Vec::new())));
    let r = rec.clone();
    let handler = jack::ClosureProcessHandler::new(move |_: &jack::Client, ps: &jack::ProcessScope| {
        if let Ok(mut g) = r.try_lock() {
            if g.0 {
                g.1.extend_from_slice(port.as_slice(ps));
            }
        }
        jack::Control::Continue
    });
    (client.activate_async((), handler).unwrap(), rec)
}

fn record(rec: &Recording, seconds: f64) -> Vec<f32> {
    rec.lock().unwrap().1.clear();
    rec.lock().unwrap().0 = true;
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let mut g = rec.lock().unwrap();
    g.0 = false;
    std::mem::take(&mut g.1)
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// Zero crossings per second, rising: the frequency of a clean sine.
fn frequency(x: &[f32]) -> f64 {
    let rising = x.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
    rising as f64 * SR as f64 / x.len() as f64
}

fn workers_of(pid: u32) -> usize {
    let pid = pid.to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            args.len() > 4 && args[1] == b"__worker" && args[4] == pid.as_bytes()
        })
        .count()
}

#[test]
fn play_reaches_jack_swaps_on_save_and_survives_a_segfaulting_edit() {
    let jackd = Jackd::start();
    let dir = tempfile::tempdir().unwrap();
    let patch = dir.path().join("live.c");
    std::fs::write(&patch, "void play(void) { _out(0, 0.5f * Cycle(440)); _out(1, 0.5f * Cycle(440)); }\n").unwrap();
    let mut clavm = Command::new(env!("CARGO_BIN_EXE_clavm"))
        .args(["play", patch.to_str().unwrap(), "--host", "jack", "--seconds", "8"])
        .env("JACK_DEFAULT_SERVER", &jackd.name)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (client, rec) = recorder();
    // Connect our recorder to clavm's first output once it exists.
    let t0 = Instant::now();
    loop {
        if client.as_client().connect_ports_by_name("cpal_client_out:out_0", "clavm-capture:in").is_ok() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "clavm's JACK ports never appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let x = record(&rec, 1.0);
    assert!(x.len() > SR * 9 / 10, "recorded {} samples", x.len());
    assert!((rms(&x) - 0.5 / 2f64.sqrt()).abs() < 0.02, "rms {}", rms(&x));
    assert!((frequency(&x) - 440.0).abs() < 3.0, "frequency {}", frequency(&x));
    assert_eq!(workers_of(clavm.id()), 3);

    // Save an edit: a new pitch. It must be playing within a second.
    std::fs::write(&patch, "void play(void) { _out(0, 0.5f * Cycle(660)); _out(1, 0.5f * Cycle(660)); }\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let y = record(&rec, 0.5);
    assert!((frequency(&y) - 660.0).abs() < 4.0, "after the edit: {}", frequency(&y));

    // Save a version that segfaults 0.3 s after it starts: the previous one must cover it.
    let crash = "void compiled(void) { *_double(0) = _time(); }\n\
                 void play(void) { if (_time() > *_double(0) + 0.3) { int *p = 0; *p = 1; }\n\
                 _out(0, 0.5f * Cycle(660)); _out(1, 0.5f * Cycle(660)); }\n";
    let mut f = std::fs::File::create(&patch).unwrap();
    f.write_all(crash.as_bytes()).unwrap();
    drop(f);
    let z = record(&rec, 1.5);
    let gaps = z.chunks(480).filter(|w| rms(w) < 0.25).count();
    eprintln!("captured {} windows of 10 ms around the segfault; {gaps} below half level", z.len() / 480);
    assert!(gaps <= 1, "{gaps} windows of 10 ms lost to the segfault");
    assert!((frequency(&z) - 660.0).abs() < 4.0);

    let status = clavm.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(clavm.stderr.as_mut().unwrap(), &mut err).unwrap();
    eprintln!("{err}");
    assert!(status.success(), "{err}");
    assert!(err.contains("version 3: play() crashed: SIGSEGV"), "{err}");
    assert!(err.contains("the previous version (2) filled in"), "{err}");
    assert_eq!(workers_of(clavm.id()), 0, "no worker left behind");
    drop(client);
}
