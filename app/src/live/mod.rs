//! A live engine with its audio output and its remote inputs, as `clavm play`
//! and the desktop app both run it: the engine, its audio (a native duplex
//! JACK client, a cpal stream with an optional cpal capture stream, or a
//! paced stand-in when there is no audio device), the audio tap, the submit
//! server and the parameter inputs.

pub(crate) mod cpal_input;
mod gain;
pub mod hosts;
mod jack_duplex;
mod null_output;
pub(crate) mod realtime;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use clavm_audio::live::tap::Tap;
use clavm_audio::live::{LiveConfig, LiveEngine, LiveProcessor};
use clavm_audio::Frames;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use crate::remote::params::{Midi, ParamInputs};
use crate::remote::submit::SubmitServer;

pub use gain::{GainStage, OutputControl};
pub use null_output::NullOutput;

pub use hosts::{Host, Running};

/// How to open the audio output and the inputs.
#[derive(Clone, Debug, clap::Args)]
pub struct AudioOptions {
    /// Audio system.
    #[arg(long, value_enum, default_value_t = Host::Auto)]
    pub host: Host,
    /// Output device (a name or id as listed by `clavm devices`; default: the host's default).
    #[arg(long)]
    pub device: Option<String>,
    /// Sample rate in Hz (default: the device's).
    #[arg(long)]
    pub rate: Option<u32>,
    /// Frames per block (default: the device's; JACK's server sets its own period).
    #[arg(long)]
    pub buffer: Option<u32>,
    /// Crossfade on a swap, in milliseconds (0 = switch at once).
    #[arg(long, default_value_t = 10.0)]
    pub crossfade: f64,
    /// Output channels.
    #[arg(long, default_value_t = 2)]
    pub channels: u16,
    /// Live input channels for `_in(0)`.. (0..=16). JACK: ports `in_1`.. read in
    /// the same cycle as the output, connected from `system:capture_*`; PipeWire, Pulse, ALSA:
    /// the input device, one to three blocks later.
    #[arg(long, default_value_t = 0, value_parser = crate::args::inputs)]
    pub inputs: u16,
    /// Input device for PipeWire, Pulse or ALSA (a name or id as listed by `clavm devices`; default:
    /// the host's default input). JACK has no devices: connect the `in_N` ports.
    #[arg(long)]
    pub input_device: Option<String>,
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
    /// MIDI inputs (control change, and notes for the voices).
    #[arg(long, value_enum, default_value_t = Midi::Auto)]
    pub midi: Midi,
    /// An interval-bar tree (.bars) for `_bars`, `_bar_freq` and `_bar_gate`.
    #[arg(long, value_name = "FILE.bars")]
    pub bars: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub tempo: crate::args::TempoOptions,
    #[command(flatten)]
    pub samples: crate::args::SampleArgs,
    #[command(flatten)]
    pub voices: crate::args::VoiceOptions,
    /// Join the Ableton Link session on the local network: tempo and beat
    /// phase (in bars of --meter beats) follow the session's.
    #[arg(long)]
    pub link: bool,
    /// Where a submit lands unless it says otherwise: 0 = the next block,
    /// Q = the next multiple of Q beats (1 = the next beat, 4 = the next bar of four).
    #[arg(long, default_value = "0", value_parser = crate::args::quant, allow_negative_numbers = true)]
    pub quant: clavm_audio::clock::Quant,
}

/// The Link session, joined (with the tempo to start one at if it is empty).
#[cfg(feature = "link")]
fn link_timeline(bpm: clavm_audio::clock::Bpm) -> anyhow::Result<Box<dyn clavm_audio::clock::BeatTimeline>> {
    Ok(Box::new(clavm_audio::clock::link::LinkTimeline::join(bpm)))
}

#[cfg(not(feature = "link"))]
fn link_timeline(_: clavm_audio::clock::Bpm) -> anyhow::Result<Box<dyn clavm_audio::clock::BeatTimeline>> {
    Err(crate::usage!(
        "--link: this clavm was built without Ableton Link (GPL-2.0-or-later); build it with `--features link`"
    ))
}

pub fn jack_running() -> bool {
    // jackd2 listens on a socket /dev/shm/jack_NAME_UID_0 for the server
    // libjack would use ($JACK_DEFAULT_SERVER or "default"); asking libjack
    // would start one. Other jack files there (the registry, a db folder)
    // outlive their server and say nothing.
    use std::os::unix::fs::FileTypeExt;
    let name = std::env::var("JACK_DEFAULT_SERVER").unwrap_or_else(|_| "default".to_string());
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    std::fs::metadata(format!("/dev/shm/jack_{name}_{uid}_0")).is_ok_and(|m| m.file_type().is_socket())
}

/// Where the blocks go (held: dropping it stops the output).
#[allow(dead_code)]
enum Output {
    /// An output stream, the capture stream feeding it when there are inputs,
    /// and the helper raising the output callback's priority.
    Device(Box<(cpal::Stream, Option<cpal_input::CpalInput>, realtime::Promoter)>),
    Jack(jack_duplex::JackDuplex),
    /// No audio device: a paced thread runs the engine so editing, compiling
    /// and the visuals still work (and the tap still carries the sound).
    Null(NullOutput),
}

/// A running live engine with its output. Dropping it stops the output
/// first, then the engine.
pub struct LiveSession {
    output: Option<Output>,
    pub engine: Option<LiveEngine>,
    pub name: String,
    pub rate: u32,
    /// What the output is, for messages ("JACK: system (48000 Hz)"), and
    /// why there is no real output when there is none.
    pub output_name: String,
    pub stream_failed: Arc<AtomicBool>,
    pub backend_xruns: Arc<AtomicU64>,
    /// The output latency the host reports, averaged over the callbacks.
    pub output_latency: Arc<LatencyMeter>,
    /// Live input channels (`--inputs`).
    pub input_channels: usize,
    /// ALSA/PipeWire input: output blocks that found the capture ring short.
    pub input_underruns: Arc<AtomicU64>,
    /// Master gain, mute and panic, applied after the engine.
    pub control: Arc<OutputControl>,
    pub inputs: ParamInputs,
    /// In an Ableton Link session.
    pub link: bool,
    /// Beats per bar (bar numbers in the status line).
    pub meter: u32,
    _submits: SubmitServer,
}

impl LiveSession {
    /// Starts the engine and its output. With `allow_null`, a missing audio
    /// device is not an error: the engine runs on a paced thread instead.
    pub fn start(a: &AudioOptions, allow_null: bool) -> anyhow::Result<LiveSession> {
        if !(0.0..=10_000.0).contains(&a.crossfade) {
            anyhow::bail!("--crossfade {} ms is out of range (0..=10000)", a.crossfade);
        }
        // A device that is listed but cannot play (no sound card behind
        // ALSA's "default") fails only when its stream is built; the engine
        // then starts again on the silent clock.
        let opened = match hosts::resolve(a.host) {
            Ok(Running::Jack) => {
                let name = a.device.as_deref().unwrap_or(jack_duplex::CLIENT_NAME);
                match jack_duplex::open(name, usize::from(a.channels), usize::from(a.inputs)) {
                    Ok(j) => Ok(Backend::Jack(j)),
                    // Auto: a server that does not answer is no server; ALSA plays.
                    Err(e) if a.host == Host::Auto => {
                        eprintln!("clavm: JACK is not answering ({e:#}); using ALSA");
                        return LiveSession::start(&AudioOptions { host: Host::Alsa, ..a.clone() }, allow_null);
                    }
                    Err(e) => Err(e),
                }
            }
            Ok(h) => match open_device(a, h) {
                // Auto: a PipeWire that answers its socket but not its protocol is no PipeWire; ALSA plays.
                Err(e) if a.host == Host::Auto && h != Running::Alsa => {
                    eprintln!("clavm: {} is not answering ({e:#}); using ALSA", h.name());
                    return LiveSession::start(&AudioOptions { host: Host::Alsa, ..a.clone() }, allow_null);
                }
                other => other,
            },
            Err(e) => Err(e),
        };
        let result = match opened {
            Ok(d) => LiveSession::start_with(a, Some(d), None),
            Err(e) => Err(e),
        };
        match result {
            Ok(s) => Ok(s),
            Err(e) if allow_null => LiveSession::start_with(a, None, Some(format!("{e:#}"))),
            Err(e) => Err(e),
        }
    }

    fn start_with(a: &AudioOptions, device: Option<Backend>, no_device: Option<String>) -> anyhow::Result<LiveSession> {
        let on_jack = matches!(device, Some(Backend::Jack(_)));
        let live_inputs = usize::from(a.inputs);
        let (rate, config) = match &device {
            Some(Backend::Jack(j)) => {
                if let Some(r) = a.rate.filter(|&r| r != j.rate) {
                    anyhow::bail!("--rate {r}: the JACK server runs at {} Hz (JACK sets the rate)", j.rate);
                }
                (j.rate, None)
            }
            Some(Backend::Cpal(dh, h)) => {
                let d = &dh.0;
                let default = d.default_output_config().map_err(|e| {
                    anyhow!("the {} output '{}' has no usable configuration: {e}", h.name(), hosts::device_name(d))
                })?;
                let rate = a.rate.unwrap_or(default.sample_rate());
                hosts::check_config(d, *h, false, a.rate, a.buffer)?;
                let config = cpal::StreamConfig {
                    channels: a.channels,
                    sample_rate: rate,
                    buffer_size: match block(a, *h) {
                        Some(n) => cpal::BufferSize::Fixed(n),
                        None => cpal::BufferSize::Default,
                    },
                };
                (rate, Some(config))
            }
            None => (a.rate.unwrap_or(48000), None),
        };
        let exe = std::env::current_exe().context("cannot find the clavm executable to start workers")?;
        let mut cfg = LiveConfig::new(rate as f64, a.channels as usize, exe);
        cfg.crossfade = Frames::from_seconds(a.crossfade / 1000.0, rate as f64);
        cfg.latency_qos = !a.no_latency_qos;
        cfg.bpm = a.tempo.bpm;
        cfg.meter = a.tempo.meter;
        cfg.quant = a.quant;
        cfg.inputs = live_inputs;
        cfg.samples = a.samples.samples.clone();
        cfg.sample_memory_mib = a.samples.sample_memory;
        let bars = match &a.bars {
            Some(b) => crate::commands::load_bars(b)?,
            None => Vec::new(),
        };
        let (engine, mut processor) = LiveEngine::start(cfg).context("starting the live engine")?;
        engine.params().set_bars(&bars);
        engine.params().set_voices(a.voices.voices, a.voices.release);
        let name = crate::remote::engine_name(a.engine.clone());
        let submits = SubmitServer::start(&name, &engine)?;
        processor.set_tap(Tap::create(&name, a.channels as usize, live_inputs).context("creating the audio tap")?);
        if a.link {
            processor.set_timeline(link_timeline(a.tempo.bpm)?);
        }
        let osc = (!a.no_osc).then_some(a.osc_port);
        let inputs = ParamInputs::start(&name, engine.params(), osc, a.midi, on_jack)?;
        let stream_failed = Arc::new(AtomicBool::new(false));
        let backend_xruns = Arc::new(AtomicU64::new(0));
        let output_latency = Arc::new(LatencyMeter::default());
        let control = Arc::new(OutputControl::default());
        let gain = GainStage::new(control.clone());
        let mut input_underruns = Arc::new(AtomicU64::new(0));
        let (output, output_name) = match (device, config) {
            (Some(Backend::Jack(j)), _) => {
                if a.input_device.is_some() {
                    eprintln!("clavm: note: --input-device is for ALSA/PipeWire; on JACK connect the in_N ports");
                }
                let client = j.name();
                let period = j.period;
                let duplex = j.start(processor, gain, &stream_failed, &backend_xruns, &output_latency)?;
                let ins = if live_inputs > 0 {
                    format!(", {live_inputs} in (in_1..) read in the same cycle")
                } else {
                    String::new()
                };
                let desc = format!("JACK: {client} ({rate} Hz, {} ch{ins}, {period}-frame periods)", a.channels);
                (Output::Jack(duplex), desc)
            }
            (Some(Backend::Cpal(dh, h)), Some(config)) => {
                let (device, host) = *dh;
                let capture = match live_inputs {
                    0 => None,
                    n => Some(cpal_input::open(
                        &host,
                        h,
                        a.input_device.as_deref(),
                        n,
                        rate,
                        block(a, h),
                        &stream_failed,
                        &backend_xruns,
                    )?),
                };
                let (capture, feed) = match capture {
                    Some((c, f)) => (Some(c), Some(f)),
                    None => (None, None),
                };
                let input_desc =
                    capture.as_ref().map(|c| format!(", {live_inputs} in from '{}'", c.name)).unwrap_or_default();
                if let Some(f) = &feed {
                    input_underruns.clone_from(&f.underruns);
                }
                let asked_block = block(a, h).unwrap_or(512);
                let raise = realtime::may_raise(h.name(), hosts::device_id(&device).as_deref());
                if !raise {
                    realtime::note_not_raised(h.name(), &hosts::device_name(&device));
                }
                let (promoter, request) = realtime::Promoter::start(h.name(), asked_block, rate, raise)?;
                let stream = build_stream(
                    &device,
                    h,
                    &config,
                    processor,
                    gain,
                    feed,
                    request,
                    &stream_failed,
                    &backend_xruns,
                    &output_latency,
                )?;
                stream.play().with_context(|| format!("starting the {} output", h.name()))?;
                let device_rate = device.default_output_config().map(|c| c.sample_rate()).unwrap_or(rate);
                let desc = format!(
                    "{}: '{}' ({}, {} ch{input_desc}, {})",
                    h.name(),
                    hosts::device_name(&device),
                    granted_rate(h, rate, device_rate),
                    a.channels,
                    granted_block(block(a, h), stream.buffer_size().ok()),
                );
                (Output::Device(Box::new((stream, capture, promoter))), desc)
            }
            _ => (
                Output::Null(NullOutput::start(processor, gain, rate, a.channels as usize)),
                format!("no audio device, a silent clock instead ({})", no_device.as_deref().unwrap_or("?")),
            ),
        };
        Ok(LiveSession {
            output: Some(output),
            engine: Some(engine),
            name,
            rate,
            output_name,
            stream_failed,
            backend_xruns,
            output_latency,
            input_channels: live_inputs,
            input_underruns,
            control,
            inputs,
            link: a.link,
            meter: a.tempo.meter.get(),
            _submits: submits,
        })
    }

    pub fn engine(&self) -> &LiveEngine {
        self.engine.as_ref().expect("the engine lives until drop")
    }

    /// Xruns from the engine's timing and from the backend.
    pub fn xruns(&self) -> u64 {
        self.engine().meters().xruns.load(Ordering::Relaxed) + self.backend_xruns.load(Ordering::Relaxed)
    }

    /// Stops the output, then the engine (its workers, its channels).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        drop(self.output.take());
        if let Some(e) = self.engine.take() {
            e.shutdown();
        }
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The output latency a host reports to the callback, summed so that its
/// mean can be read from any thread (two relaxed adds per callback).
#[derive(Default)]
pub struct LatencyMeter {
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl LatencyMeter {
    pub fn record(&self, latency: std::time::Duration) {
        self.sum_ns.fetch_add(latency.as_nanos().min(u128::from(u32::MAX)) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The mean so far (zero before the host reported any).
    pub fn mean(&self) -> std::time::Duration {
        let n = self.count.load(Ordering::Relaxed);
        std::time::Duration::from_nanos(self.sum_ns.load(Ordering::Relaxed).checked_div(n).unwrap_or(0))
    }
}

/// An audio backend, opened but not yet running.
enum Backend {
    /// A cpal output device, its host (kept: PipeWire's lives as long as its streams) and which host it is.
    Cpal(Box<(cpal::Device, cpal::Host)>, Running),
    Jack(jack_duplex::JackOpened),
}

/// The cpal device `a` names on host `h` (or the host's default).
fn open_device(a: &AudioOptions, h: Running) -> anyhow::Result<Backend> {
    let host = hosts::cpal_host(h)?;
    let device = match &a.device {
        Some(name) => hosts::find_device(&host, h, name, false)?,
        None => host
            .default_output_device()
            .with_context(|| format!("{} has no output device (see `clavm devices`)", h.name()))?,
    };
    Ok(Backend::Cpal(Box::new((device, host)), h))
}

/// Frames per block to ask for: `--buffer`, else the host's default, except
/// on Pulse, whose default is a latency of two seconds.
fn block(a: &AudioOptions, h: Running) -> Option<u32> {
    a.buffer.or((h == Running::Pulse).then_some(PULSE_BLOCK))
}

/// Pulse's block when `--buffer` gives none (about 11 ms at 48 kHz).
const PULSE_BLOCK: u32 = 512;

/// The rate line: what plays, and the server's own rate when it resamples.
fn granted_rate(h: Running, rate: u32, device_rate: u32) -> String {
    if h.resamples() && rate != device_rate {
        format!("{rate} Hz, resampled by {} to {device_rate} Hz", h.name())
    } else {
        format!("{rate} Hz")
    }
}

/// The block line: what was asked and what the host granted.
fn granted_block(asked: Option<u32>, granted: Option<u32>) -> String {
    match (asked, granted) {
        (Some(a), Some(g)) if a == g => format!("{g}-frame blocks"),
        (Some(a), Some(g)) => format!("{g}-frame blocks granted for {a} asked"),
        (Some(a), None) => format!("{a}-frame blocks asked"),
        (None, Some(g)) => format!("{g}-frame blocks (the host's default)"),
        (None, None) => "the host's block size".into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn build_stream(
    device: &cpal::Device,
    h: Running,
    config: &cpal::StreamConfig,
    mut processor: LiveProcessor,
    mut gain: GainStage,
    mut input: Option<cpal_input::InputFeed>,
    mut realtime: realtime::Request,
    failed: &Arc<AtomicBool>,
    xruns: &Arc<AtomicU64>,
    latency: &Arc<LatencyMeter>,
) -> anyhow::Result<cpal::Stream> {
    let (failed, xruns, meter) = (failed.clone(), xruns.clone(), latency.clone());
    let channels = config.channels as usize;
    device
        .build_output_stream(
            *config,
            move |data: &mut [f32], info: &cpal::OutputCallbackInfo| {
                realtime.ask();
                let frames = data.len() / channels.max(1);
                let t = info.timestamp();
                if let Some(latency) = t.playback.checked_duration_since(t.callback) {
                    processor.set_output_latency(latency);
                    meter.record(latency);
                }
                let inp = match input.as_mut() {
                    Some(feed) => feed.pull(frames),
                    None => &[],
                };
                processor.process(inp, data);
                gain.apply(data, channels);
            },
            move |e: cpal::Error| stream_error(&e, "output", &failed, &xruns),
            None,
        )
        .map_err(|e| hosts::build_error(device, h, false, config, &e))
}

/// A stream's error: a lost device ends the session, an xrun is counted, the rest is said once each.
pub(crate) fn stream_error(e: &cpal::Error, what: &str, failed: &AtomicBool, xruns: &AtomicU64) {
    match e.kind() {
        cpal::ErrorKind::DeviceNotAvailable | cpal::ErrorKind::StreamInvalidated => {
            eprintln!("clavm: the audio {what} went away: {e}");
            failed.store(true, Ordering::SeqCst);
        }
        // An xrun is counted, never the end of a performance.
        cpal::ErrorKind::Xrun => {
            xruns.fetch_add(1, Ordering::Relaxed);
        }
        // Our own helper raises the priority (and says when it cannot).
        cpal::ErrorKind::RealtimeDenied => {}
        _ if e.to_string().contains("xrun") => {
            xruns.fetch_add(1, Ordering::Relaxed);
        }
        _ => eprintln!("clavm: audio {what} stream: {e}"),
    }
}
