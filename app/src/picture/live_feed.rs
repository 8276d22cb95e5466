//! The live engine's audio, into the analysis: every block the device
//! played arrives on the engine's tap channel (published by the audio thread
//! without waiting or allocating); a frame drains what is there just before
//! it is drawn, so the picture is never older than one block plus the frame's
//! own drawing time.
//!
//! With `with_inputs`, the engine's live inputs come along as extra channels
//! after the outputs (so the meters and the scope show them, and a recording
//! of the window carries them).

use anyhow::Context;
use clavm_audio::live::tap::{decode_tap_with_inputs, monotonic_ns, open_tap};
use clavm_channel::{Receiver, Wait};
use clavm_render::analysis::Analysis;

/// A reader of `ENGINE.tap`.
pub struct TapFeed {
    rx: Receiver,
    samples: Vec<f32>,
    inputs: Vec<f32>,
    /// Output and input frames side by side (reused).
    merged: Vec<f32>,
    /// The stream's shape, from its first block.
    pub sample_rate: f64,
    /// Channels handed on: the outputs, then the inputs when asked for.
    pub channels: usize,
    /// The engine's output channels and live inputs.
    outputs: usize,
    live_inputs: usize,
    with_inputs: bool,
    newest_published_ns: Option<u64>,
    newest_frame: Option<u64>,
    dropped_at_open: u64,
}

/// What one drain brought.
#[derive(Debug, Default, Clone, Copy)]
pub struct Drained {
    pub blocks: usize,
}

impl TapFeed {
    /// Opens the engine's tap and waits (up to `timeout`) for its first
    /// block, which tells the sample rate and channel count; `with_inputs`
    /// hands the engine's live inputs on after its outputs.
    pub fn open(engine: &str, timeout: std::time::Duration, with_inputs: bool) -> anyhow::Result<TapFeed> {
        let mut rx = open_tap(engine).with_context(|| {
            format!("opening the audio tap of engine '{engine}' (is `clavm play --engine {engine}` running?)")
        })?;
        let dropped_at_open = rx.stats().dropped_full;
        let mut samples = Vec::with_capacity(16 * 1024);
        let mut inputs = Vec::with_capacity(16 * 1024);
        let first = rx.recv_bytes(Wait::Sleep, timeout).context("the engine is not playing (no audio on its tap)")?;
        let h = decode_tap_with_inputs(&first, &mut samples, &mut inputs)
            .map_err(|e| anyhow::anyhow!("the tap carries something that is not audio: {e}"))?;
        drop(first);
        let (outputs, live_inputs) = (h.channels.max(1) as usize, h.inputs as usize);
        Ok(TapFeed {
            rx,
            samples,
            inputs,
            merged: Vec::with_capacity(32 * 1024),
            sample_rate: h.sample_rate,
            channels: outputs + if with_inputs { live_inputs } else { 0 },
            outputs,
            live_inputs,
            with_inputs,
            newest_published_ns: None,
            newest_frame: None,
            dropped_at_open,
        })
    }

    /// Pushes every block waiting on the tap into `analysis`; never blocks.
    pub fn drain(&mut self, analysis: &mut Analysis) -> Drained {
        self.drain_with(analysis, |_, _, _| {})
    }

    /// As [`drain`](Self::drain), also handing each block (first frame,
    /// publish time in CLOCK_MONOTONIC ns, interleaved samples) to `also`
    /// (a live recording's sound).
    pub fn drain_with(&mut self, analysis: &mut Analysis, mut also: impl FnMut(u64, u64, &[f32])) -> Drained {
        let mut d = Drained::default();
        while let Ok(m) = self.rx.try_recv_bytes() {
            let Ok(h) = decode_tap_with_inputs(&m, &mut self.samples, &mut self.inputs) else { continue };
            drop(m);
            if h.channels as usize != self.outputs
                || h.inputs as usize != self.live_inputs
                || h.sample_rate != self.sample_rate
            {
                continue; // an engine restarted with another shape: the caller reopens
            }
            if self.newest_frame.is_some_and(|f| h.frame < f) {
                analysis.reset(); // the engine restarted: frame numbers went back
            }
            let block = if self.with_inputs && self.live_inputs > 0 {
                self.merged.clear();
                let (o, i) = (self.outputs, self.live_inputs);
                for (out, inp) in self.samples.chunks_exact(o).zip(self.inputs.chunks_exact(i)) {
                    self.merged.extend_from_slice(out);
                    self.merged.extend_from_slice(inp);
                }
                &self.merged
            } else {
                &self.samples
            };
            analysis.push(h.frame, block);
            analysis.push_dsp_load(h.dsp_load);
            also(h.frame, h.published_ns, block);
            self.newest_frame = Some(h.frame + h.frames as u64);
            self.newest_published_ns = Some(h.published_ns);
            d.blocks += 1;
        }
        d
    }

    /// How long ago the newest block drained so far was published.
    pub fn age(&self) -> Option<std::time::Duration> {
        self.newest_published_ns.map(|t| std::time::Duration::from_nanos(monotonic_ns().saturating_sub(t)))
    }

    /// Blocks the tap dropped since this reader opened it, because it was late.
    pub fn dropped(&self) -> u64 {
        self.rx.stats().dropped_full.saturating_sub(self.dropped_at_open)
    }
}
