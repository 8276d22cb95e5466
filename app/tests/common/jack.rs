//! A private JACK server (`jackd -d dummy`), a recorder client, and `clavm play` on it.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SR: usize = 48000;

/// A private JACK server; killed on drop.
pub struct Jackd {
    child: Child,
    pub name: String,
}

impl Jackd {
    /// The shared test server, made the default for this process's clients.
    pub fn start() -> Jackd {
        // One fixed name: a stale registry entry left by a crashed run is then
        // reclaimed by the next server, instead of piling up until JACK refuses
        // to start ("Too many servers already active").
        let jackd = Jackd::start_named("clavm-test");
        // SAFETY (of the environment): this test binary runs one test, before any other thread uses JACK.
        std::env::set_var("JACK_DEFAULT_SERVER", &jackd.name);
        std::env::set_var("JACK_NO_START_SERVER", "1");
        jackd
    }

    /// A server called `name`, ready when this returns (`jack_wait`); the
    /// process's own default server is left alone (pass the name to children).
    pub fn start_named(name: &str) -> Jackd {
        let child = Command::new("jackd")
            .args(["-n", name, "-d", "dummy", "-r", "48000", "-p", "128"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("jackd (Debian package jackd2) must be installed: run scripts/setup.sh");
        let jackd = Jackd { child, name: name.to_string() };
        let ok = Command::new("jack_wait").args(["-s", name, "-w", "-t", "10"]).output().expect("jack_wait (jackd2)");
        assert!(ok.status.success(), "jackd {name} did not start: {}", String::from_utf8_lossy(&ok.stderr));
        jackd
    }
}

impl Drop for Jackd {
    fn drop(&mut self) {
        // SIGTERM: jackd removes itself from JACK's server registry. SIGKILL only if it hangs.
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if t0.elapsed() > Duration::from_secs(5) {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
    }
}

pub type Recording = Arc<Mutex<(bool, Vec<f32>)>>;

/// A client `name` with one input port `in`, recorded while the flag is on.
pub fn recorder(name: &str) -> (jack::AsyncClient<(), impl jack::ProcessHandler>, Recording) {
    let (client, _) = jack::Client::new(name, jack::ClientOptions::NO_START_SERVER).unwrap();
    let port = client.register_port("in", jack::AudioIn::default()).unwrap();
    let rec: Recording = Arc::new(Mutex::new((false, Vec::new())));
    let r = rec.clone();
    let handler = jack::contrib::ClosureProcessHandler::new(move |_: &jack::Client, ps: &jack::ProcessScope| {
        if let Ok(mut g) = r.try_lock() {
            if g.0 {
                g.1.extend_from_slice(port.as_slice(ps));
            }
        }
        jack::Control::Continue
    });
    (client.activate_async((), handler).unwrap(), rec)
}

pub fn record(rec: &Recording, seconds: f64) -> Vec<f32> {
    rec.lock().unwrap().1.clear();
    rec.lock().unwrap().0 = true;
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let mut g = rec.lock().unwrap();
    g.0 = false;
    std::mem::take(&mut g.1)
}

pub fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// The frequency of a sine from the median time between its rising zero
/// crossings (placed between samples by linear interpolation). The median,
/// not a count over the whole window, so that one block lost to a JACK xrun
/// (the dummy driver on a 2-core VM has some) does not read as a detuning.
pub fn frequency(x: &[f32]) -> f64 {
    let crossings: Vec<f64> = x
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
        .map(|(i, w)| i as f64 + (-w[0] as f64) / (w[1] as f64 - w[0] as f64))
        .collect();
    let mut periods: Vec<f64> = crossings.windows(2).map(|c| c[1] - c[0]).collect();
    if periods.is_empty() {
        return 0.0;
    }
    periods.sort_by(|a, b| a.total_cmp(b));
    SR as f64 / periods[periods.len() / 2]
}

/// Reads a child's stderr on a thread as it comes (a full pipe would block the
/// child's writes); join it for the text.
pub fn drain_stderr(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut pipe = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut pipe, &mut s);
        s
    })
}

/// `clavm play PATCH --host jack [extra]` on `jackd`, stderr piped.
pub fn play_on(jackd: &Jackd, patch: &std::path::Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_clavm"))
        .args(["play", patch.to_str().unwrap(), "--host", "jack"])
        .args(extra)
        .env("JACK_DEFAULT_SERVER", &jackd.name)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Connects `from` to `to` as soon as both ports exist (within 10 s).
pub fn connect_when_ready(client: &jack::Client, from: &str, to: &str) {
    let t0 = Instant::now();
    while client.connect_ports_by_name(from, to).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10), "cannot connect {from} to {to}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
