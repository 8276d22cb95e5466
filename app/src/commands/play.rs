//! `clavm play PATCH.c`: live playback through cpal (ALSA, JACK or PipeWire
//! through either), installing every saved version of the file.
//!
//! The file is polled (mtime, size and content) every 50 ms rather than
//! watched with inotify: editors save by writing a new file and renaming it
//! over the old one, which a plain watch on the file loses, and a 20 Hz poll
//! of one file costs nothing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clavm_audio::live::tap::Tap;
use clavm_audio::live::{LiveConfig, LiveEngine, LiveEvent};
use clavm_audio::Frames;

use crate::remote::params::ParamInputs;
use crate::remote::submit::SubmitServer;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Host {
    /// JACK if a JACK server is running, else the system default (ALSA, which PipeWire also serves).
    Auto,
    Alsa,
    Jack,
}

#[derive(clap::Args)]
pub struct PlayArgs {
    /// The patch to play; every saved version is installed.
    pub patch: PathBuf,
    /// Audio system.
    #[arg(long, value_enum, default_value_t = Host::Auto)]
    pub host: Host,
    /// Output device (a name as listed by `--list-devices`; default: the system's default).
    #[arg(long)]
    pub device: Option<String>,
    /// Sample rate in Hz (default: the device's).
    #[arg(long)]
    pub rate: Option<u32>,
    /// Frames per block (default: the device's; JACK decides its own).
    #[arg(long)]
    pub buffer: Option<u32>,
    /// Crossfade on a swap, in milliseconds (0 = switch at once).
    #[arg(long, default_value_t = 10.0)]
    pub crossfade: f64,
    /// Output channels.
    #[arg(long, default_value_t = 2)]
    pub channels: u16,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// List the output devices of the chosen host and exit.
    #[arg(long)]
    pub list_devices: bool,
    /// Do not ask the kernel for zero CPU wake-up latency (saves power; worse worst-case timing).
    #[arg(long)]
    pub no_latency_qos: bool,
    /// This engine's name, for `clavm submit --engine` (default: $CLAVM_ENGINE or "default").
    #[arg(long)]
    pub engine: Option<String>,
    /// UDP port on 127.0.0.1 for OSC parameters.
    #[arg(long, default_value_t = 57130)]
    pub osc_port: u16,
    /// Do not listen for OSC.
    #[arg(long)]
    pub no_osc: bool,
    /// MIDI control change inputs.
    #[arg(long, value_enum, default_value_t = crate::remote::params::Midi::Auto)]
    pub midi: crate::remote::params::Midi,
}

fn jack_running() -> bool {
    // A JACK server leaves its socket in /dev/shm (jackd2); asking libjack would start one.
    std::fs::read_dir("/dev/shm")
        .map(|d| d.filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().starts_with("jack")))
        .unwrap_or(false)
}

/// Whether `choice` means JACK on this machine now.
fn uses_jack(choice: Host) -> bool {
    match choice {
        Host::Jack => true,
        Host::Alsa => false,
        Host::Auto => jack_running(),
    }
}

fn host(choice: Host) -> anyhow::Result<cpal::Host> {
    if uses_jack(choice) {
        cpal::host_from_id(cpal::HostId::Jack).map_err(|e| anyhow!("JACK is not available: {e} (is jackd running?)"))
    } else {
        Ok(cpal::default_host())
    }
}

/// The file's identity for change detection.
fn fingerprint(path: &Path) -> Option<(std::time::SystemTime, u64, Vec<u8>)> {
    let meta = std::fs::metadata(path).ok()?;
    let bytes = std::fs::read(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), bytes))
}

pub fn run(a: PlayArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=10_000.0).contains(&a.crossfade) {
        bail!("--crossfade {} ms is out of range (0..=10000)", a.crossfade);
    }
    let on_jack = uses_jack(a.host);
    let host = host(a.host)?;
    if a.list_devices {
        for d in host.output_devices()? {
            println!("{}", d.name().unwrap_or_else(|_| "?".into()));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let device = match &a.device {
        Some(name) => host
            .output_devices()?
            .find(|d| d.name().is_ok_and(|n| &n == name))
            .with_context(|| format!("no output device named '{name}' (see --list-devices)"))?,
        None => host.default_output_device().context("no output device (no sound card, and no JACK server?)")?,
    };
    let default = device.default_output_config().context("the output device has no usable configuration")?;
    let rate = a.rate.unwrap_or(default.sample_rate().0);
    let config = cpal::StreamConfig {
        channels: a.channels,
        sample_rate: cpal::SampleRate(rate),
        buffer_size: match a.buffer {
            Some(n) => cpal::BufferSize::Fixed(n),
            None => cpal::BufferSize::Default,
        },
    };
    let exe = std::env::current_exe().context("cannot find the clavm executable to start workers")?;
    let mut cfg = LiveConfig::new(rate as f64, a.channels as usize, exe);
    cfg.crossfade = Frames::from_seconds(a.crossfade / 1000.0, rate as f64);
    cfg.latency_qos = !a.no_latency_qos;
    let (engine, mut processor) = LiveEngine::start(cfg).context("starting the live engine")?;
    let engine_name = crate::remote::engine_name(a.engine.clone());
    let _submits = SubmitServer::start(&engine_name, &engine)?;
    processor.set_tap(Tap::create(&engine_name, a.channels as usize).context("creating the audio tap")?);
    let osc = (!a.no_osc).then_some(a.osc_port);
    let inputs = ParamInputs::start(&engine_name, engine.params(), osc, a.midi, on_jack)?;

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    }
    let stream_failed = Arc::new(AtomicBool::new(false));
    let failed = stream_failed.clone();
    // Xruns the backend reports (JACK does); ours come from the callback's timing.
    let backend_xruns = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let xruns = backend_xruns.clone();
    let stream = device
        .build_output_stream(
            &config,
            move |data: &mut [f32], _: &cpal::OutputCallbackInfo| processor.process(&[], data),
            move |e| match e {
                // The device is gone: nothing more to play to.
                cpal::StreamError::DeviceNotAvailable => {
                    eprintln!("clavm: the audio device went away");
                    failed.store(true, Ordering::SeqCst);
                }
                // An xrun is counted, never the end of a performance.
                cpal::StreamError::BackendSpecific { err } if err.description.contains("xrun") => {
                    xruns.fetch_add(1, Ordering::Relaxed);
                }
                other => eprintln!("clavm: audio stream: {other}"),
            },
            None,
        )
        .with_context(|| format!("opening {} at {rate} Hz", device.name().unwrap_or_default()))?;
    stream.play().context("starting the audio stream")?;
    if !a.no_latency_qos && !engine.has_latency_qos() {
        eprintln!("clavm: note: no access to /dev/cpu_dma_latency: worker wake-ups may be slower (run as root, or grant write access)");
    }
    eprintln!(
        "clavm: engine '{engine_name}' playing {} on {} ({} Hz, {} ch, {}); Ctrl-C to stop",
        a.patch.display(),
        device.name().unwrap_or_default(),
        rate,
        a.channels,
        match a.buffer {
            Some(n) => format!("{n}-frame blocks"),
            None => "device block size".into(),
        }
    );

    let mut last = None;
    let started = Instant::now();
    let mut last_meter = Instant::now();
    while !stop.load(Ordering::SeqCst) && !stream_failed.load(Ordering::SeqCst) {
        if a.seconds.is_some_and(|s| started.elapsed().as_secs_f64() >= s) {
            break;
        }
        let now = fingerprint(&a.patch);
        if now.is_some() && now != last {
            match clavm_audio::PatchSource::from_file(&a.patch) {
                Ok(src) => {
                    engine.submit(src);
                }
                Err(e) => crate::commands::print_patch_error(&e),
            }
            last = now;
        }
        // Wait for one event at most 50 ms, then drain what is queued: a steady
        // stream of events must not keep this loop from checking the stop flag.
        if let Some(e) = engine.next_event(Duration::from_millis(50)) {
            print_event(&e, rate as f64);
            while let Some(e) = engine.next_event(Duration::ZERO) {
                print_event(&e, rate as f64);
            }
        }
        if last_meter.elapsed() >= Duration::from_secs(1) {
            let m = engine.meters();
            eprintln!(
                "clavm: DSP load {:.1}% avg, {:.1}% peak | xruns {}",
                m.load_avg() * 100.0,
                m.take_peak() * 100.0,
                m.xruns.load(Ordering::Relaxed) + backend_xruns.load(Ordering::Relaxed)
            );
            let (refused, dropped) = (inputs.stats.refused.load(Ordering::Relaxed), inputs.dropped());
            if refused + dropped > 0 {
                eprintln!("clavm: parameter messages so far: {refused} refused, {dropped} dropped (flood)");
            }
            last_meter = Instant::now();
        }
    }
    drop(stream);
    engine.shutdown();
    eprintln!("clavm: stopped");
    Ok(if stream_failed.load(Ordering::SeqCst) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn print_event(e: &LiveEvent, sr: f64) {
    match e {
        LiveEvent::Rejected { .. } | LiveEvent::Compiled { .. } => eprintln!("{}", e.describe(sr)),
        _ => eprintln!("clavm: {}", e.describe(sr)),
    }
}
