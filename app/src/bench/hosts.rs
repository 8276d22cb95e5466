//! `clavm bench --hosts`: a soak of `clavm play` on each audio host (JACK,
//! PipeWire, PulseAudio through pipewire-pulse, ALSA through pipewire-alsa),
//! each beside a trivial client on the same host for the same time: a cpal
//! stream (on JACK a cpal JACK client) that only writes a sine, with the same
//! block size and the same realtime request. Reported: the output latency
//! as each host reports it, and xruns of both.
//!
//! The servers are private: `jackd -d dummy`, then a headless PipeWire
//! (pipewire, wireplumber, pipewire-pulse under dbus-run-session) in a
//! runtime dir of its own, so nothing of the desktop's sound is touched.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use crate::live::Running;

const RATE: u32 = 48000;
const BLOCK: u32 = 256;
const JACK_SERVER: &str = "clavm-bench-hosts";

/// A child and its process group, ended (SIGTERM, then SIGKILL) on drop.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = self.0.id() as i32;
        // SAFETY: signalling the process group made for our own child.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let t0 = Instant::now();
        while self.0.try_wait().ok().flatten().is_none() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above, whatever is left.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn spawn_group(cmd: &mut Command) -> anyhow::Result<Group> {
    std::os::unix::process::CommandExt::process_group(cmd, 0);
    Ok(Group(cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?))
}

fn jackd() -> anyhow::Result<Group> {
    let server = spawn_group(Command::new("jackd").args([
        "-n",
        JACK_SERVER,
        "-d",
        "dummy",
        "-r",
        &RATE.to_string(),
        "-p",
        &BLOCK.to_string(),
    ]))
    .context("starting jackd (Debian package jackd2)")?;
    let ok = Command::new("jack_wait").args(["-s", JACK_SERVER, "-w", "-t", "10"]).output().context("jack_wait")?;
    if !ok.status.success() {
        bail!("jackd did not start: {}", String::from_utf8_lossy(&ok.stderr).trim());
    }
    Ok(server)
}

/// A headless PipeWire with pipewire-pulse in `dir`, ready when its default sink exists.
fn pipewire(dir: &std::path::Path) -> anyhow::Result<Group> {
    let script = "pipewire & sleep 0.3; pipewire-pulse & exec wireplumber";
    let group =
        spawn_group(Command::new("dbus-run-session").args(["--", "sh", "-c", script]).env("XDG_RUNTIME_DIR", dir))
            .context("starting PipeWire (dbus-run-session, pipewire, wireplumber, pipewire-pulse: scripts/setup.sh)")?;
    let t0 = Instant::now();
    loop {
        let sink = Command::new("pactl").arg("get-default-sink").env("XDG_RUNTIME_DIR", dir).output();
        if sink.is_ok_and(|o| o.status.success() && !o.stdout.trim_ascii().is_empty()) {
            return Ok(group);
        }
        if t0.elapsed() > Duration::from_secs(20) {
            bail!("the headless PipeWire gave no default sink in 20 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What one side of a soak saw.
#[derive(Default)]
struct Seen {
    latency_ms: f64,
    host_xruns: u64,
    engine_xruns: Option<u64>,
    block: String,
}

/// The trivial client: a sine on `h`'s default output at BLOCK frames, counting what the host reports.
struct Trivial {
    _stream: cpal::Stream,
    _rt: crate::live::realtime::Promoter,
    xruns: Arc<AtomicU64>,
    latency: Arc<crate::live::LatencyMeter>,
    granted: Option<u32>,
}

fn trivial(h: Running) -> anyhow::Result<Trivial> {
    let host = crate::live::hosts::cpal_host(h)?;
    let device = host.default_output_device().with_context(|| format!("{} has no default output", h.name()))?;
    let config = cpal::StreamConfig { channels: 2, sample_rate: RATE, buffer_size: cpal::BufferSize::Fixed(BLOCK) };
    let (xruns, latency) = (Arc::new(AtomicU64::new(0)), Arc::new(crate::live::LatencyMeter::default()));
    let (x, l) = (xruns.clone(), latency.clone());
    // The same priority policy as clavm's own stream.
    let raise = crate::live::realtime::may_raise(h.name(), crate::live::hosts::device_id(&device).as_deref());
    let (rt, mut request) = crate::live::realtime::Promoter::start(h.name(), BLOCK, RATE, raise)?;
    let mut phase = 0f32;
    let stream = device
        .build_output_stream(
            config,
            move |data: &mut [f32], info: &cpal::OutputCallbackInfo| {
                request.ask();
                let t = info.timestamp();
                if let Some(d) = t.playback.checked_duration_since(t.callback) {
                    l.record(d);
                }
                for frame in data.chunks_exact_mut(2) {
                    let s = 0.1 * (phase * std::f32::consts::TAU).sin();
                    frame.fill(s);
                    phase = (phase + 440.0 / RATE as f32).fract();
                }
            },
            move |e: cpal::Error| {
                if e.kind() == cpal::ErrorKind::Xrun || e.to_string().contains("xrun") {
                    x.fetch_add(1, Ordering::Relaxed);
                }
            },
            None,
        )
        .map_err(|e| anyhow::anyhow!("the trivial client on {}: {e}", h.name()))?;
    stream.play()?;
    let granted = stream.buffer_size().ok();
    Ok(Trivial { _stream: stream, _rt: rt, xruns, latency, granted })
}

/// `clavm play` of a sine on `h` for `seconds`, beside the trivial client; both sides' numbers.
fn soak(h: Running, seconds: u64, env: &[(&str, String)]) -> anyhow::Result<(Seen, Seen)> {
    let dir = tempfile::tempdir()?;
    let patch = dir.path().join("sine.c");
    std::fs::write(&patch, "void play(void) { float s = 0.1f * Cycle(440.0f); _out(0, s); _out(1, s); }\n")?;
    let t = trivial(h)?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["play", &patch.to_string_lossy(), "--host", h.flag(), "--seconds", &seconds.to_string()]).args([
        "--no-osc",
        "--midi",
        "none",
        "--engine",
        &format!("bench-hosts-{}-{}", h.flag(), std::process::id()),
    ]);
    if h != Running::Jack {
        cmd.args(["--buffer", &BLOCK.to_string()]);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    eprint!("{}: {seconds} s...", h.name());
    let out = cmd.stdin(Stdio::null()).stdout(Stdio::null()).output().context("running clavm play")?;
    eprintln!(" done");
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("clavm play --host {} failed: {}", h.flag(), err.trim());
    }
    let summary = err.lines().find(|l| l.starts_with("clavm: stopped after")).context("no summary from clavm play")?;
    let status = err.lines().find(|l| l.contains(" playing ") && l.contains(" on ")).unwrap_or("");
    let block = status.rsplit(", ").next().unwrap_or("?").trim_end_matches("; Ctrl-C to stop").trim_end_matches(')');
    // "... : H host xruns, E engine xruns, output latency L ms ..."
    let number = |after: &str| -> Option<f64> {
        let words: Vec<&str> = summary.split_whitespace().collect();
        words.windows(2).find(|w| w[1].starts_with(after)).and_then(|w| w[0].parse().ok())
    };
    let latency =
        summary.split("output latency ").nth(1).and_then(|r| r.split(' ').next()).and_then(|v| v.parse().ok());
    let clavm = Seen {
        latency_ms: latency.unwrap_or(f64::NAN),
        host_xruns: number("host").unwrap_or(f64::NAN) as u64,
        engine_xruns: number("engine").map(|v| v as u64),
        block: block.to_string(),
    };
    let reference = Seen {
        latency_ms: t.latency.mean().as_secs_f64() * 1e3,
        host_xruns: t.xruns.load(Ordering::Relaxed),
        engine_xruns: None,
        block: t.granted.map(|g| format!("{g}-frame blocks")).unwrap_or_else(|| "?".into()),
    };
    Ok((clavm, reference))
}

pub fn run(seconds: u64) -> anyhow::Result<String> {
    let mut rows = Vec::new();
    {
        let _jack = jackd()?;
        // The trivial client (cpal's JACK host, in this process) and clavm both go to the private server.
        std::env::set_var("JACK_DEFAULT_SERVER", JACK_SERVER);
        std::env::set_var("JACK_NO_START_SERVER", "1");
        rows.push((Running::Jack, soak(Running::Jack, seconds, &[("JACK_DEFAULT_SERVER", JACK_SERVER.into())])?));
    }
    std::env::remove_var("JACK_DEFAULT_SERVER");
    let runtime = tempfile::tempdir()?;
    std::fs::set_permissions(runtime.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
    let _pw = pipewire(runtime.path())?;
    // Before any PipeWire or Pulse client of this process exists (cpal reads it once).
    std::env::set_var("XDG_RUNTIME_DIR", runtime.path());
    let env = [("XDG_RUNTIME_DIR", runtime.path().display().to_string())];
    for h in [Running::PipeWire, Running::Pulse, Running::Alsa] {
        rows.push((h, soak(h, seconds, &env)?));
    }
    let mut s = format!(
        "A {seconds} s soak of `clavm play` (a sine; `--buffer {BLOCK}`, JACK's period {BLOCK}) on each host, beside a trivial client on the same host for the same {seconds} s: a cpal stream writing a sine at {BLOCK}-frame blocks with the same realtime request. Private servers: `jackd -d dummy -r {RATE} -p {BLOCK}`, then a headless PipeWire 0.3 (pipewire, wireplumber, pipewire-pulse; ALSA through pipewire-alsa). Latency: the output latency the host reports to each callback, averaged (JACK: the port's playback latency range; cpal: playback minus callback time; PipeWire's null sink reports no device delay, so PipeWire says 0 there). Engine xruns: callbacks that came more than 1.5 blocks after the one before (a heuristic of the engine's: Pulse's client library hands over its requests in bursts, which it counts whether or not a block was lost). Host xruns: what the host reports.\n\n| host | clavm block | trivial block | clavm latency (ms) | trivial latency (ms) | clavm host xruns | clavm engine xruns | trivial xruns |\n|---|---|---|---:|---:|---:|---:|---:|\n"
    );
    for (h, (clavm, reference)) in rows {
        let name = if h == Running::Alsa { "ALSA (through pipewire-alsa)".to_string() } else { h.name().to_string() };
        s += &format!(
            "| {name} | {} | {} | {:.2} | {:.2} | {} | {} | {} |\n",
            clavm.block,
            reference.block,
            clavm.latency_ms,
            reference.latency_ms,
            clavm.host_xruns,
            clavm.engine_xruns.map_or("?".into(), |v| v.to_string()),
            reference.host_xruns,
        );
    }
    Ok(s)
}
