//! Live input through cpal (PipeWire, Pulse, ALSA): an input stream on the default or named capture device pushes
//! its samples into an rtrb ring, and the output callback takes one block
//! from it before it runs the engine.
//!
//! Two streams have two clocks and two callbacks, so the input cannot be
//! read in the cycle it was captured in (the native JACK backend does that).
//! The ring holds about one output block of slack before the output starts
//! reading it, and is trimmed back when it grows past three: the extra
//! latency is one to three output blocks (documented in docs/PATCH_API.md).
//! A ring that runs dry gives silence and waits to fill again.
//!
//! Kept small and apart on purpose: this is the only input code that
//! touches cpal.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use super::hosts::{self, Running};
use super::realtime;

/// Frames the largest output block may ask for at once (more are read as silence).
const MAX_FRAMES: usize = 8192;
/// Frames the ring holds (about 340 ms at 48 kHz): room for a late output callback.
const RING_FRAMES: usize = 16384;

/// The running capture stream (dropping it stops the capture).
pub struct CpalInput {
    _stream: cpal::Stream,
    _realtime: realtime::Promoter,
    /// The capture device's name, for messages.
    pub name: String,
}

/// The output callback's end of the ring.
pub struct InputFeed {
    rx: rtrb::Consumer<f32>,
    inputs: usize,
    /// Reading has started (the ring had its slack); false again after it ran dry.
    primed: bool,
    block: Box<[f32]>,
    /// Output blocks that found the ring short (what was missing played as silence).
    pub underruns: Arc<AtomicU64>,
}

/// Opens the capture device of `host` (`name`, or the default one) for
/// `inputs` channels at `rate`. Input channel `c` reads the device's channel
/// `c` when the device opens with `inputs` channels, else (a mono microphone
/// for two inputs) channel `c` modulo the device's count.
#[allow(clippy::too_many_arguments)]
pub fn open(
    host: &cpal::Host,
    h: Running,
    name: Option<&str>,
    inputs: usize,
    rate: u32,
    buffer: Option<u32>,
    failed: &Arc<AtomicBool>,
    xruns: &Arc<AtomicU64>,
) -> anyhow::Result<(CpalInput, InputFeed)> {
    let device = match name {
        Some(name) => hosts::find_device(host, h, name, true)?,
        None => host
            .default_input_device()
            .ok_or_else(|| anyhow!("--inputs {inputs}: {} has no input device (see `clavm devices`)", h.name()))?,
    };
    let device_name = hosts::device_name(&device);
    hosts::check_config(&device, h, true, Some(rate), buffer)?;
    let buffer_size = match buffer {
        Some(n) => cpal::BufferSize::Fixed(n),
        None => cpal::BufferSize::Default,
    };
    let wanted = cpal::StreamConfig { channels: inputs as u16, sample_rate: rate, buffer_size };
    let own = device.default_input_config().ok().map(|c| c.channels()).filter(|&c| c != wanted.channels);
    let raise = realtime::may_raise(h.name(), hosts::device_id(&device).as_deref());
    if !raise {
        realtime::note_not_raised(h.name(), &device_name);
    }
    let rt = (h.name(), buffer.unwrap_or(512), raise);
    let (stream, rx, promoter) = match (build(&device, &wanted, inputs, rt, failed, xruns), own) {
        (Ok(built), _) => built,
        // The device may not open with that many channels: open it with its own count and map.
        (Err(_), Some(own)) => {
            let config = cpal::StreamConfig { channels: own, ..wanted };
            build(&device, &config, inputs, rt, failed, xruns)
                .map_err(|e| hosts::build_error(&device, h, true, &config, &e).context(format!("--inputs {inputs}")))?
        }
        (Err(e), None) => {
            return Err(hosts::build_error(&device, h, true, &wanted, &e).context(format!("--inputs {inputs}")))
        }
    };
    stream.play().with_context(|| format!("starting the {} input '{device_name}'", h.name()))?;
    Ok((CpalInput { _stream: stream, _realtime: promoter, name: device_name }, InputFeed::new(rx, inputs)))
}

/// Builds the capture stream with `config`, mapping its channels onto
/// `inputs`, with a ring of its own (made here, before the stream starts)
/// and a helper raising its callback's priority (`rt`: the host's name, the
/// block, and whether it may be raised).
fn build(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    inputs: usize,
    rt: (&'static str, u32, bool),
    failed: &Arc<AtomicBool>,
    xruns: &Arc<AtomicU64>,
) -> Result<(cpal::Stream, rtrb::Consumer<f32>, realtime::Promoter), cpal::Error> {
    let device_channels = usize::from(config.channels).max(1);
    let (mut tx, rx) = rtrb::RingBuffer::<f32>::new(RING_FRAMES * inputs);
    let (failed, xruns) = (failed.clone(), xruns.clone());
    let (promoter, mut request) = realtime::Promoter::start(rt.0, rt.1, config.sample_rate, rt.2)
        .map_err(|e| cpal::Error::with_message(cpal::ErrorKind::ResourceExhausted, e.to_string()))?;
    let stream = device.build_input_stream(
        *config,
        move |data: &[f32], _: &cpal::InputCallbackInfo| {
            request.ask();
            if device_channels == inputs {
                // A full ring (the output stopped reading) drops what does not fit.
                let _ = tx.push_partial_slice(data);
            } else {
                for frame in data.chunks_exact(device_channels) {
                    if tx.slots() < inputs {
                        break;
                    }
                    for c in 0..inputs {
                        let _ = tx.push(frame[c % device_channels]);
                    }
                }
            }
        },
        move |e: cpal::Error| super::stream_error(&e, "input", &failed, &xruns),
        None,
    )?;
    Ok((stream, rx, promoter))
}

impl InputFeed {
    fn new(rx: rtrb::Consumer<f32>, inputs: usize) -> InputFeed {
        InputFeed {
            rx,
            inputs,
            primed: false,
            block: vec![0.0; MAX_FRAMES * inputs].into_boxed_slice(),
            underruns: Arc::new(AtomicU64::new(0)),
        }
    }

    /// This output block's input: `frames * inputs` interleaved samples
    /// (silence where the ring had none). Realtime-safe: no allocation, no waiting.
    pub fn pull(&mut self, frames: usize) -> &[f32] {
        let frames = frames.min(MAX_FRAMES);
        let need = frames * self.inputs;
        let available = self.rx.slots();
        if !self.primed {
            // Wait for one block of slack, so that jitter between the two clocks does not starve us.
            if available < 2 * need {
                self.block[..need].fill(0.0);
                return &self.block[..need];
            }
            self.primed = true;
        }
        if available > 4 * need {
            // The capture runs ahead (another clock, or a stall of ours): drop
            // whole frames down to the slack, so the latency stays bounded.
            let excess = (available - 2 * need) / self.inputs * self.inputs;
            if let Ok(chunk) = self.rx.read_chunk(excess) {
                chunk.commit_all();
            }
        }
        let (_, missing) = self.rx.pop_partial_slice(&mut self.block[..need]);
        if !missing.is_empty() {
            missing.fill(0.0);
            self.primed = false;
            self.underruns.fetch_add(1, Ordering::Relaxed);
        }
        &self.block[..need]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes `frames` frames of 2 channels, numbered from `from` (channel 1 negated).
    fn push(tx: &mut rtrb::Producer<f32>, from: usize, frames: usize) {
        for f in from..from + frames {
            tx.push(f as f32).unwrap();
            tx.push(-(f as f32)).unwrap();
        }
    }

    #[test]
    fn the_feed_waits_for_slack_reads_in_order_trims_a_runaway_ring_and_counts_a_dry_one() {
        let (mut tx, rx) = rtrb::RingBuffer::<f32>::new(RING_FRAMES * 2);
        let mut feed = InputFeed::new(rx, 2);
        // One block of 4 frames is not yet the slack: silence.
        push(&mut tx, 0, 4);
        assert!(feed.pull(4).iter().all(|&v| v == 0.0));
        // Two blocks: reading starts, in order, channels in place.
        push(&mut tx, 4, 4);
        assert_eq!(feed.pull(4), &[0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 3.0, -3.0]);
        assert_eq!(feed.pull(4)[0], 4.0);
        // The capture runs ahead by far more than three blocks: dropped down to the slack.
        push(&mut tx, 8, 100);
        let block = feed.pull(4);
        assert_eq!(block[0], 100.0, "the newest two blocks are kept: {block:?}");
        assert_eq!(block[1], -100.0, "whole frames are dropped, channels stay in place");
        assert_eq!(feed.underruns.load(Ordering::Relaxed), 0);
        // Dry: what is missing is silence, counted, and reading waits for slack again.
        let block = feed.pull(8);
        assert_eq!(&block[..8], &[104.0, -104.0, 105.0, -105.0, 106.0, -106.0, 107.0, -107.0]);
        assert!(block[8..].iter().all(|&v| v == 0.0));
        assert_eq!(feed.underruns.load(Ordering::Relaxed), 1);
        push(&mut tx, 200, 4);
        assert!(feed.pull(4).iter().all(|&v| v == 0.0), "primes again before reading");
    }
}
