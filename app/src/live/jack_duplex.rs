//! The native JACK backend: one client with the output ports and, with
//! `--inputs N`, N input ports, served by ONE process callback that reads the
//! inputs and writes the outputs in the same cycle. cpal's JACK host opens
//! input and output as two clients with two callbacks, which cannot hand a
//! cycle's input to the same cycle's output: that would cost a block of
//! latency (or a ring and its jitter). Here what arrives on `in_1` in a cycle
//! is what `_in(0)` reads while that cycle's output is computed.
//!
//! Names are cpal's, so connections, scripts and tests made for the cpal
//! backend keep working: the client is `cpal_client_out` (or `--device`),
//! outputs `out_0`.., connected to `system:playback_*` in order; inputs are
//! `in_1`.., connected from `system:capture_*` in order when those exist.
//!
//! Realtime rules in the callback: no allocation (the interleave buffers are
//! made before activation; `assert_no_alloc` guards the cycle in debug
//! builds), no lock, no logging, no system call of ours.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use clavm_audio::live::LiveProcessor;

use super::GainStage;

/// The client's name unless `--device` gives another (cpal's, kept on purpose).
pub const CLIENT_NAME: &str = "cpal_client_out";
/// Frames interleaved at once; a larger JACK period is served in pieces.
const MAX_FRAMES: usize = 8192;

/// A client with its ports registered, not yet running: its rate decides the engine's.
pub struct JackOpened {
    client: jack::Client,
    outs: Vec<jack::Port<jack::AudioOut>>,
    ins: Vec<jack::Port<jack::AudioIn>>,
    pub rate: u32,
    /// The server's period now (it may change while running).
    pub period: u32,
}

/// A running client. Dropping it deactivates and closes it.
pub struct JackDuplex {
    _client: jack::AsyncClient<Notifications, Cycle>,
}

/// Opens a client named `name` with `channels` outputs and `inputs` inputs.
pub fn open(name: &str, channels: usize, inputs: usize) -> anyhow::Result<JackOpened> {
    let (client, _status) = jack::Client::new(name, jack::ClientOptions::NO_START_SERVER)
        .map_err(|e| anyhow!("JACK is not available: {e} (is jackd running?)"))?;
    let outs = (0..channels)
        .map(|i| client.register_port(&format!("out_{i}"), jack::AudioOut::default()))
        .collect::<Result<Vec<_>, _>>()
        .context("registering the JACK output ports")?;
    let ins = (1..=inputs)
        .map(|i| client.register_port(&format!("in_{i}"), jack::AudioIn::default()))
        .collect::<Result<Vec<_>, _>>()
        .context("registering the JACK input ports")?;
    let rate = client.sample_rate();
    let period = client.buffer_size();
    Ok(JackOpened { client, outs, ins, rate, period })
}

impl JackOpened {
    /// The client's name as the server gave it (another engine may hold ours: JACK appends `-01`).
    pub fn name(&self) -> String {
        self.client.name().to_string()
    }

    /// Starts the cycle and connects the ports to the system's.
    pub fn start(
        self,
        processor: LiveProcessor,
        gain: GainStage,
        failed: &Arc<AtomicBool>,
        xruns: &Arc<AtomicU64>,
        latency: &Arc<super::LatencyMeter>,
    ) -> anyhow::Result<JackDuplex> {
        let channels = self.outs.len();
        let inputs = self.ins.len();
        let out_names: Vec<String> = self.outs.iter().filter_map(|p| p.name().ok()).collect();
        let in_names: Vec<String> = self.ins.iter().filter_map(|p| p.name().ok()).collect();
        let cycle = Cycle {
            processor,
            gain,
            outs: self.outs,
            ins: self.ins,
            input: vec![0.0; MAX_FRAMES * inputs].into_boxed_slice(),
            output: vec![0.0; MAX_FRAMES * channels.max(1)].into_boxed_slice(),
            latency: latency.clone(),
        };
        let notifications = Notifications { failed: failed.clone(), xruns: xruns.clone(), rate: self.rate };
        let client = self.client.activate_async(notifications, cycle).context("activating the JACK client")?;
        let c = client.as_client();
        // Like cpal's host: outputs to the system's playback ports in order,
        // and the inputs from its capture ports, when the server has them.
        let playback = c.ports(Some("system:playback_.*"), None, jack::PortFlags::IS_INPUT);
        for (ours, theirs) in out_names.iter().zip(&playback) {
            if let Err(e) = c.connect_ports_by_name(ours, theirs) {
                eprintln!("clavm: cannot connect {ours} to {theirs}: {e}");
            }
        }
        let capture = c.ports(Some("system:capture_.*"), None, jack::PortFlags::IS_OUTPUT);
        for (theirs, ours) in capture.iter().zip(&in_names) {
            if let Err(e) = c.connect_ports_by_name(theirs, ours) {
                eprintln!("clavm: cannot connect {theirs} to {ours}: {e}");
            }
        }
        Ok(JackDuplex { _client: client })
    }
}

/// The process callback's state: everything it touches is made before activation.
struct Cycle {
    processor: LiveProcessor,
    gain: GainStage,
    outs: Vec<jack::Port<jack::AudioOut>>,
    ins: Vec<jack::Port<jack::AudioIn>>,
    /// `MAX_FRAMES * inputs` interleaved.
    input: Box<[f32]>,
    /// `MAX_FRAMES * channels` interleaved.
    output: Box<[f32]>,
    /// The playback latency JACK reports, for the session's summary.
    latency: Arc<super::LatencyMeter>,
}

impl Cycle {
    fn run(&mut self, ps: &jack::ProcessScope) {
        let frames = ps.n_frames() as usize;
        let (channels, inputs) = (self.outs.len().max(1), self.ins.len());
        // When this cycle is heard: the graph's playback latency from our
        // ports (what JACK says reaches the speakers after us). A shared beat
        // timeline (Link) places the beat there.
        if let Some(port) = self.outs.first() {
            let (_, max) = port.get_latency_range(jack::LatencyType::Playback);
            let rate = self.processor.sample_rate();
            let latency = std::time::Duration::from_secs_f64(max as f64 / rate);
            self.processor.set_output_latency(latency);
            self.latency.record(latency);
        }
        let mut done = 0;
        while done < frames {
            let n = (frames - done).min(MAX_FRAMES);
            for (c, port) in self.ins.iter().enumerate() {
                let src = port.as_slice(ps);
                for f in 0..n {
                    self.input[f * inputs + c] = src.get(done + f).copied().unwrap_or(0.0);
                }
            }
            let out = &mut self.output[..n * channels];
            self.processor.process(&self.input[..n * inputs], out);
            self.gain.apply(out, channels);
            for (c, port) in self.outs.iter_mut().enumerate() {
                let dst = port.as_mut_slice(ps);
                for f in 0..n.min(dst.len().saturating_sub(done)) {
                    dst[done + f] = out[f * channels + c];
                }
            }
            done += n;
        }
    }
}

impl jack::ProcessHandler for Cycle {
    fn process(&mut self, _: &jack::Client, ps: &jack::ProcessScope) -> jack::Control {
        clavm_audio::engine::realtime(|| self.run(ps));
        jack::Control::Continue
    }
}

/// Server notifications (not on the process thread): xruns are counted, a
/// server that goes away or changes rate ends the session.
struct Notifications {
    failed: Arc<AtomicBool>,
    xruns: Arc<AtomicU64>,
    rate: u32,
}

impl jack::NotificationHandler for Notifications {
    // SAFETY (of the implementation): JACK may call this where only
    // async-signal-safe calls are allowed: it does an atomic store and write(2).
    unsafe fn shutdown(&mut self, _status: jack::ClientStatus, reason: &str) {
        self.failed.store(true, Ordering::SeqCst);
        for part in [b"clavm: the JACK server went away: ".as_slice(), reason.as_bytes(), b"\n"] {
            // SAFETY: writes `part`, valid for its length, to stderr.
            unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
        }
    }

    fn sample_rate(&mut self, _: &jack::Client, rate: jack::Frames) -> jack::Control {
        if rate as u64 == u64::from(self.rate) {
            return jack::Control::Continue;
        }
        // The engine's oscillators and workers run at the rate they started with.
        eprintln!("clavm: the JACK server changed its rate to {rate} Hz (the engine runs at {} Hz)", self.rate);
        self.failed.store(true, Ordering::SeqCst);
        jack::Control::Quit
    }

    fn xrun(&mut self, _: &jack::Client) -> jack::Control {
        self.xruns.fetch_add(1, Ordering::Relaxed);
        jack::Control::Continue
    }
}
