//! Pictures of a patch rendered offline: the audio engine and the renderer
//! in lockstep. Audio is pushed into the analysis block by block, split
//! exactly at frame times, so the frame shown at time T holds every sample
//! before T and none after (`clavm snapshot`, `clavm record`).

pub mod encoder;
pub mod live_feed;
pub mod partial;
pub mod png_file;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clavm_audio::render::{self as offline, RenderSpec, Summary};
use clavm_render::analysis::{Analysis, ScopeSpan};
use clavm_render::draw::Canvas;
use clavm_render::gpu::{Gpu, GpuChoice, GpuOptions};
use clavm_render::target::Offscreen;
use clavm_render::views::{ViewKind, Visuals};
use clavm_render::{FrameTicket, Renderer};

use crate::crash;

/// `--scope`: `2` or `2c` (cycles), `20ms`, `0.5s`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScopeArg(pub ScopeSpan);

impl std::str::FromStr for ScopeArg {
    type Err = String;
    fn from_str(s: &str) -> Result<ScopeArg, String> {
        let bad = || format!("scope span '{s}' must be cycles (2, 2c) or a time (20ms, 0.5s)");
        let t = s.trim();
        let (number, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()));
        let v: f32 = number.parse().map_err(|_| bad())?;
        let span = match unit {
            "" | "c" | "cycles" => ScopeSpan::Cycles(v),
            "ms" => ScopeSpan::Seconds(v / 1000.0),
            "s" => ScopeSpan::Seconds(v),
            _ => return Err(bad()),
        };
        let ok = match span {
            ScopeSpan::Cycles(n) => (0.25..=64.0).contains(&n),
            ScopeSpan::Seconds(x) => (0.0005..=2.0).contains(&x),
        };
        if !ok {
            return Err(format!("scope span '{s}' is out of range (0.25 to 64 cycles, 0.5 ms to 2 s)"));
        }
        Ok(ScopeArg(span))
    }
}

/// `--size WxH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

impl std::str::FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Size, String> {
        let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| format!("size '{s}' must look like 1280x720"))?;
        let parse = |t: &str| t.trim().parse::<u32>().map_err(|_| format!("size '{s}' must look like 1280x720"));
        let size = Size { width: parse(w)?, height: parse(h)? };
        if size.width == 0 || size.height == 0 {
            return Err(format!("size {s}: width and height must be at least 1"));
        }
        if size.width > 16384 || size.height > 16384 {
            return Err(format!("size {s}: at most 16384 pixels a side"));
        }
        Ok(size)
    }
}

/// Opens the Vulkan device for headless rendering, with a message that
/// says what to install when there is none.
pub fn open_gpu(choice: GpuChoice) -> anyhow::Result<Arc<Gpu>> {
    Gpu::new(&GpuOptions { choice, ..Default::default() }).context("cannot render")
}

/// What a frame is drawn with: the analysis fed by the audio, the views,
/// and the renderer with its offscreen target.
pub struct Picture {
    pub analysis: Analysis,
    pub visuals: Visuals,
    pub kind: ViewKind,
    canvas: Canvas,
    renderer: Renderer,
    target: Offscreen,
}

impl Picture {
    pub fn new(
        gpu: &Arc<Gpu>,
        size: Size,
        kind: ViewKind,
        sample_rate: f64,
        channels: usize,
    ) -> anyhow::Result<Picture> {
        gpu.check_size(size.width, size.height)?;
        Ok(Picture {
            analysis: Analysis::new(sample_rate, channels),
            visuals: Visuals::default(),
            kind,
            canvas: Canvas::new(size.width, size.height),
            renderer: Renderer::new(gpu)?,
            target: Offscreen::new(gpu, size.width, size.height)?,
        })
    }

    /// Draws the current analysis and submits it; returns at once.
    pub fn draw(&mut self) -> anyhow::Result<FrameTicket> {
        self.build();
        self.submit()
    }

    /// Lays out the frame's shapes from the analysis (the CPU half).
    pub fn build(&mut self) {
        self.visuals.draw(&mut self.canvas, &mut self.analysis, self.kind);
    }

    /// An empty frame: the background only (the benchmark's reference).
    pub fn build_clear(&mut self) {
        let (w, h) = self.canvas.size();
        let bg = self.canvas.background();
        self.canvas.begin(w, h, bg);
    }

    /// Submits what was built (the GPU half); returns at once.
    pub fn submit(&mut self) -> anyhow::Result<FrameTicket> {
        Ok(self.renderer.render(&mut self.canvas, &self.target)?)
    }

    /// Fails if the Vulkan validation layers reported an error (they run in
    /// debug builds and tests): a validation error is a bug, and the output
    /// made with it is not trusted.
    pub fn check_validation(&self) -> anyhow::Result<()> {
        let log = self.renderer.gpu().validation();
        if log.errors() > 0 {
            anyhow::bail!(
                "Vulkan validation reported {} error(s), the first: {}",
                log.errors(),
                log.messages().first().map(String::as_str).unwrap_or("?")
            );
        }
        Ok(())
    }

    /// Shaded shapes and opaque fills in the frame last built.
    pub fn shape_count(&self) -> (usize, usize) {
        (self.canvas.shapes().len(), self.canvas.fills().len())
    }

    /// Waits for a frame and returns its RGBA pixels.
    pub fn pixels(&mut self, ticket: FrameTicket) -> anyhow::Result<&[u8]> {
        self.renderer.finish(ticket)?;
        Ok(self.target.pixels(ticket.slot))
    }
}

/// Renders `spec` in a sandboxed child process, calling `on_frame(k)` for
/// k = 0..frames once the analysis holds exactly the samples before
/// `frame_sample(k)` (non-decreasing); `on_audio` sees every block too (the
/// video's sound).
/// Returns the render's summary, or prints a patch error and returns None.
pub fn lockstep(
    spec: &RenderSpec,
    picture: &mut Picture,
    frames: u64,
    frame_sample: &dyn Fn(u64) -> u64,
    timeout: std::time::Duration,
    on_audio: &mut dyn FnMut(&[f32]) -> anyhow::Result<()>,
    on_frame: &mut dyn FnMut(&mut Picture, u64) -> anyhow::Result<()>,
) -> anyhow::Result<Option<Summary>> {
    let rate = spec.config.sample_rate;
    let ch = spec.config.channels;
    let boundary = frame_sample;
    let mut next = 0u64;
    let mut done = 0u64;
    let mut failure: Option<anyhow::Error> = None;
    // The DSP load: the engine's time over the audio's time, summed over
    // 10 ms of audio so one preempted 64-frame block does not read 100%.
    // `since` is None until the first block: its time includes compiling.
    let mut since: Option<Instant> = None;
    let (mut busy, mut busy_frames) = (0.0f64, 0u64);
    let load_every = (rate / 100.0) as u64;

    let exe = crate::commands::render::offline_exe()?;
    crash::arm_host();
    let result = offline::render_isolated(&exe, timeout, spec, &offline::Progress::new(), &mut |block| {
        // The engine's time for this block: from the end of our work on the
        // last one to now (the DSP load meter).
        let n = (block.len() / ch) as u64;
        if let Some(since) = since {
            busy += since.elapsed().as_secs_f64();
            busy_frames += n;
            if busy_frames >= load_every {
                picture.analysis.push_dsp_load((busy / (busy_frames as f64 / rate)) as f32);
                (busy, busy_frames) = (0.0, 0);
            }
        }
        if let Err(e) = on_audio(block) {
            failure = Some(e);
            return Err(offline::RenderError::Write { path: "audio".into(), source: std::io::Error::other("stopped") });
        }
        let mut at = 0u64;
        while next < frames && boundary(next) <= done + n {
            let cut = boundary(next) - done;
            if cut > at {
                picture.analysis.push(done + at, &block[(at as usize) * ch..(cut as usize) * ch]);
                at = cut;
            }
            if let Err(e) = on_frame(picture, next) {
                failure = Some(e);
                return Err(offline::RenderError::Write {
                    path: "frame".into(),
                    source: std::io::Error::other("stopped"),
                });
            }
            next += 1;
        }
        if at < n {
            picture.analysis.push(done + at, &block[(at as usize) * ch..]);
        }
        done += n;
        since = Some(Instant::now());
        Ok(())
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let summary = match result {
        Ok(s) => s,
        Err(offline::RenderError::Patch(e)) => {
            crate::commands::print_patch_error(&e);
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    // Frames at or after the end of the audio (a snapshot at exactly T).
    while next < frames {
        on_frame(picture, next)?;
        next += 1;
    }
    Ok(Some(summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_scope_spans_parse_or_say_why_not() {
        assert_eq!("1280x720".parse::<Size>().unwrap(), Size { width: 1280, height: 720 });
        assert!("0x10".parse::<Size>().unwrap_err().contains("at least 1"));
        assert!("100000x10".parse::<Size>().unwrap_err().contains("16384"));
        assert!("wide".parse::<Size>().unwrap_err().contains("1280x720"));
        assert_eq!("2".parse::<ScopeArg>().unwrap().0, ScopeSpan::Cycles(2.0));
        assert_eq!("4c".parse::<ScopeArg>().unwrap().0, ScopeSpan::Cycles(4.0));
        assert_eq!("20ms".parse::<ScopeArg>().unwrap().0, ScopeSpan::Seconds(0.02));
        assert_eq!("0.5s".parse::<ScopeArg>().unwrap().0, ScopeSpan::Seconds(0.5));
        assert!("7x".parse::<ScopeArg>().unwrap_err().contains("cycles"));
        assert!("0c".parse::<ScopeArg>().unwrap_err().contains("out of range"));
        assert!("5s".parse::<ScopeArg>().unwrap_err().contains("out of range"));
    }
}
