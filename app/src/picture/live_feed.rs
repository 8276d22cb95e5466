//! The live engine's audio, into the analysis: every block the device
//! played arrives on the engine's tap channel (published by the audio thread
//! without waiting or allocating); a frame drains what is there just before
//! it is drawn, so the picture is never older than one block plus the frame's
//! own drawing time.

use anyhow::Context;
use clavm_audio::live::tap::{monotonic_ns, open_tap, read_tap_into};
use clavm_channel::{Receiver, Wait};
use clavm_render::analysis::Analysis;

/// A reader of `ENGINE.tap`.
pub struct TapFeed {
    rx: Receiver,
    samples: Vec<f32>,
    /// The stream's shape, from its first block.
    pub sample_rate: f64,
    pub channels: usize,
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
    /// block, which tells the sample rate and channel count.
    pub fn open(engine: &str, timeout: std::time::Duration) -> anyhow::Result<TapFeed> {
        let mut rx = open_tap(engine).with_context(|| {
            format!("opening the audio tap of engine '{engine}' (is `clavm play --engine {engine}` running?)")
        })?;
        let dropped_at_open = rx.stats().dropped_full;
        let mut samples = Vec::with_capacity(16 * 1024);
        let first = rx.recv_bytes(Wait::Sleep, timeout).context("the engine is not playing (no audio on its tap)")?;
        let h = read_tap_into(&first, &mut samples).context("the tap carries something that is not audio")?;
        drop(first);
        Ok(TapFeed {
            rx,
            samples,
            sample_rate: h.sample_rate,
            channels: h.channels.max(1) as usize,
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
            let Some(h) = read_tap_into(&m, &mut self.samples) else { continue };
            drop(m);
            if h.channels as usize != self.channels || h.sample_rate != self.sample_rate {
                continue; // an engine restarted with another shape: the caller reopens
            }
            if self.newest_frame.is_some_and(|f| h.frame < f) {
                analysis.reset(); // the engine restarted: frame numbers went back
            }
            analysis.push(h.frame, &self.samples);
            analysis.push_dsp_load(h.dsp_load);
            also(h.frame, h.published_ns, &self.samples);
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
