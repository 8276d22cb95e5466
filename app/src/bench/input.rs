//! `clavm bench --input`: input-to-output latency through a patch on JACK,
//! in frames and periods, against a plain pass-through JACK client measured
//! the same way in the same run.
//!
//! A private server (`jackd -d dummy`) per period size; a source client of
//! ours writes an impulse at the first frame of a period and a sink client
//! records, with each period's frame time, what comes out: the graph is
//! source -> device under test -> sink, without a cycle, so JACK runs all
//! three in one period and the delay measured is the device under test's.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

const SERVER: &str = "clavm-bench-input";
const RATE: u32 = 48000;
const IMPULSES: usize = 20;

type ProcessFn = Box<dyn FnMut(&jack::Client, &jack::ProcessScope) -> jack::Control + Send>;
type Running = jack::AsyncClient<(), jack::contrib::ClosureProcessHandler<(), ProcessFn>>;

/// A private dummy server, stopped on drop.
struct Server(Child);

impl Server {
    fn start(period: u32) -> anyhow::Result<Server> {
        let child = Command::new("jackd")
            .args(["-n", SERVER, "-d", "dummy", "-r", &RATE.to_string(), "-p", &period.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting jackd (Debian package jackd2)")?;
        let server = Server(child);
        let ok = Command::new("jack_wait").args(["-s", SERVER, "-w", "-t", "10"]).output().context("jack_wait")?;
        if !ok.status.success() {
            bail!("jackd did not start: {}", String::from_utf8_lossy(&ok.stderr).trim());
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling our own child; SIGTERM lets jackd leave JACK's registry.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        while self.0.try_wait().ok().flatten().is_none() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn client(name: &str) -> anyhow::Result<jack::Client> {
    Ok(jack::Client::new(name, jack::ClientOptions::NO_START_SERVER).map_err(|e| anyhow!("JACK client {name}: {e}"))?.0)
}

/// The source: an impulse at the start of the next period when armed; the
/// frame time it fired at.
fn source() -> anyhow::Result<(Running, Arc<AtomicBool>, Arc<AtomicU64>)> {
    let c = client("bench-src")?;
    let mut out = c.register_port("out", jack::AudioOut::default())?;
    let (armed, fired) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let (a, f) = (armed.clone(), fired.clone());
    let process: ProcessFn = Box::new(move |_, ps| {
        let o = out.as_mut_slice(ps);
        o.fill(0.0);
        if a.swap(false, Ordering::SeqCst) {
            o[0] = 0.5;
            f.store(u64::from(ps.last_frame_time()), Ordering::SeqCst);
        }
        jack::Control::Continue
    });
    Ok((c.activate_async((), jack::contrib::ClosureProcessHandler::new(process))?, armed, fired))
}

/// The frame time at which the sink first heard something above 0.1 since it was last cleared.
type Heard = Arc<Mutex<Option<u64>>>;

fn sink() -> anyhow::Result<(Running, Heard)> {
    let c = client("bench-sink")?;
    let port = c.register_port("in", jack::AudioIn::default())?;
    let heard: Heard = Arc::new(Mutex::new(None));
    let h = heard.clone();
    let process: ProcessFn = Box::new(move |_, ps| {
        if let Some(i) = port.as_slice(ps).iter().position(|v| v.abs() > 0.1) {
            if let Ok(mut g) = h.try_lock() {
                g.get_or_insert(u64::from(ps.last_frame_time()) + i as u64);
            }
        }
        jack::Control::Continue
    });
    Ok((c.activate_async((), jack::contrib::ClosureProcessHandler::new(process))?, heard))
}

/// The reference: a client whose one callback copies its input to its output.
fn pass_through() -> anyhow::Result<Running> {
    let c = client("bench-thru")?;
    let input = c.register_port("in", jack::AudioIn::default())?;
    let mut output = c.register_port("out", jack::AudioOut::default())?;
    let process: ProcessFn = Box::new(move |_, ps| {
        output.as_mut_slice(ps).copy_from_slice(input.as_slice(ps));
        jack::Control::Continue
    });
    Ok(c.activate_async((), jack::contrib::ClosureProcessHandler::new(process))?)
}

fn connect(c: &jack::Client, from: &str, to: &str) -> anyhow::Result<()> {
    let t0 = Instant::now();
    loop {
        match c.connect_ports_by_name(from, to) {
            Ok(()) | Err(jack::Error::PortAlreadyConnected(..)) => return Ok(()),
            Err(e) if t0.elapsed() > Duration::from_secs(10) => bail!("connecting {from} to {to}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Latencies in frames of `IMPULSES` impulses from the source's `out` through `input` .. `output` to the sink.
fn measure(input: &str, output: &str) -> anyhow::Result<Vec<u64>> {
    let (src, armed, fired) = source()?;
    let (snk, heard) = sink()?;
    connect(src.as_client(), "bench-src:out", input)?;
    connect(src.as_client(), output, "bench-sink:in")?;
    std::thread::sleep(Duration::from_millis(300));
    let mut latencies = Vec::with_capacity(IMPULSES);
    for _ in 0..IMPULSES {
        *heard.lock().map_err(|_| anyhow!("the sink's lock"))? = None;
        armed.store(true, Ordering::SeqCst);
        let t0 = Instant::now();
        let at = loop {
            if let Some(at) = *heard.lock().map_err(|_| anyhow!("the sink's lock"))? {
                break at;
            }
            if t0.elapsed() > Duration::from_secs(2) {
                bail!("an impulse through {input} never reached the sink");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        latencies.push(at.saturating_sub(fired.load(Ordering::SeqCst)));
        // Let the impulse leave every buffer before the next.
        std::thread::sleep(Duration::from_millis(50));
    }
    drop((src, snk));
    latencies.sort_unstable();
    Ok(latencies)
}

/// The ALSA/PipeWire path (`live::cpal_input`: a capture stream, a ring, an
/// output stream), here on cpal's JACK host, which opens input and output
/// as two clients (`cpal_client_in`, `cpal_client_out`).
fn cpal_ring() -> anyhow::Result<(cpal::Stream, crate::live::cpal_input::CpalInput)> {
    use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
    let host = cpal::host_from_id(cpal::HostId::Jack)?;
    let (failed, xruns) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let (input, mut feed) =
        crate::live::cpal_input::open(&host, crate::live::Running::Jack, None, 1, RATE, None, &failed, &xruns)?;
    let device = host.default_output_device().context("cpal's JACK output")?;
    let config = cpal::StreamConfig { channels: 1, sample_rate: RATE, buffer_size: cpal::BufferSize::Default };
    let stream = device.build_output_stream(
        config,
        move |data: &mut [f32], _: &cpal::OutputCallbackInfo| data.copy_from_slice(feed.pull(data.len())),
        // Xruns of the dummy server on a busy machine: the latencies measured say whether they mattered.
        |_| {},
        None,
    )?;
    stream.play()?;
    Ok((stream, input))
}

/// `clavm play` of a pass-through patch with one input on the private server.
fn clavm(dir: &std::path::Path) -> anyhow::Result<Child> {
    let patch = dir.join("thru.c");
    std::fs::write(&patch, "void play(void) { _out(0, _in(0)); _out(1, _in(0)); }\n")?;
    let engine = format!("bench-input-{}", std::process::id());
    Command::new(std::env::current_exe()?)
        .args(["play", &patch.to_string_lossy(), "--host", "jack", "--inputs", "1", "--engine", &engine])
        .args(["--no-osc", "--midi", "none"])
        .env("JACK_DEFAULT_SERVER", SERVER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting clavm play")
}

pub fn run() -> anyhow::Result<String> {
    // Our own clients go to the private server (set before any of them exists).
    std::env::set_var("JACK_DEFAULT_SERVER", SERVER);
    std::env::set_var("JACK_NO_START_SERVER", "1");
    let dir = tempfile::tempdir()?;
    let mut s = format!(
        "Input to output through a patch (`_out(0, _in(0))`, `clavm play --inputs 1`, native JACK backend) against a plain pass-through JACK client (one callback copying in to out), measured the same way in the same run: {IMPULSES} impulses each, written at the first frame of a period by a source client and found by a sink client by JACK frame time (the graph source -> device -> sink runs in one period). Private `jackd -d dummy -r {RATE}`. Target: 0 extra periods.\n\n| period (frames) | device | median frames | max frames | median periods | extra periods vs pass-through |\n|---:|---|---:|---:|---:|---:|\n"
    );
    for period in [128u32, 256] {
        eprint!("period {period}: pass-through...");
        let _server = Server::start(period)?;
        let thru = pass_through()?;
        let reference = measure("bench-thru:in", "bench-thru:out")?;
        drop(thru);
        eprint!(" clavm...");
        let mut child = clavm(dir.path())?;
        let result = measure("cpal_client_out:in_1", "cpal_client_out:out_0");
        // SAFETY: signalling our own child (Ctrl-C: it stops its workers and leaves).
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let _ = child.wait();
        let ours = result?;
        eprint!(" cpal ring...");
        let ring = cpal_ring()?;
        let cpal = measure("cpal_client_in:in_0", "cpal_client_out:out_0")?;
        drop(ring);
        eprintln!(" done");
        let p = u64::from(period);
        let median = |v: &[u64]| v[v.len() / 2];
        for (name, v) in [
            ("pass-through client", &reference),
            ("clavm play --inputs 1", &ours),
            ("cpal capture + ring + output (the ALSA/PipeWire path, on cpal's JACK host)", &cpal),
        ] {
            let extra = (median(v) / p) as i64 - (median(&reference) / p) as i64;
            s.push_str(&format!(
                "| {period} | {name} | {} | {} | {} | {} |\n",
                median(v),
                v.last().copied().unwrap_or(0),
                median(v) / p,
                extra
            ));
        }
    }
    s.push_str("\nThe last row is the code ALSA and PipeWire use (`app/src/live/cpal_input.rs`: the ring holds one output block of slack and is trimmed past three), run on cpal's JACK host because the dummy server is JACK's; on a sound card the two streams also have their own clocks. `clavm play` on JACK does not use it: one client, one callback.\n\n");
    Ok(s)
}
