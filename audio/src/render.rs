//! Offline rendering: a patch (and timed swaps to other patches) to samples
//! and a WAV file, deterministically: the same inputs give the same bytes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::engine::{self, ConfigError, EngineConfig, Param, Report};
use crate::patch::{Diagnostic, PatchError, PatchSource};
use crate::Frames;

/// A patch to install at a point in time, as a live edit would.
#[derive(Debug, Clone)]
pub struct Swap {
    pub at: Frames,
    pub patch: PatchSource,
}

#[derive(Debug, Clone)]
pub struct RenderSpec {
    pub patch: PatchSource,
    pub length: Frames,
    pub config: EngineConfig,
    pub swaps: Vec<Swap>,
    pub params: Vec<Param>,
    /// Frames per engine block (swaps still land on their exact frame).
    pub block: usize,
}

/// Something worth telling the user, with the time it happened.
#[derive(Debug, Clone)]
pub enum RenderEvent {
    Report(String),
    /// A swap failed to compile: the previous patch kept playing.
    SwapFailed {
        at: Frames,
        diagnostics: Vec<Diagnostic>,
    },
    Warning(Diagnostic),
}

#[derive(Debug)]
pub struct Rendered {
    /// Interleaved samples.
    pub samples: Vec<f32>,
    pub channels: usize,
    pub sample_rate: u32,
    pub events: Vec<RenderEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Patch(#[from] PatchError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How far a render is, readable from other threads (a watchdog tells a hung
/// patch from a slow one by it; a crash handler names the patch by it).
#[derive(Debug, Default)]
pub struct Progress {
    /// Frames rendered so far.
    pub frames: AtomicU64,
    /// The patch playing: 0 for `RenderSpec::patch`, i + 1 for `RenderSpec::swaps[i]`.
    pub patch: AtomicUsize,
}

impl Progress {
    pub const fn new() -> Progress {
        Progress {
            frames: AtomicU64::new(0),
            patch: AtomicUsize::new(0),
        }
    }
}

/// Renders `spec`, keeping `progress` up to date.
pub fn render(spec: &RenderSpec, progress: &Progress) -> Result<Rendered, RenderError> {
    let (mut engine, mut handle) = engine::engine(spec.config.clone())?;
    let ch = spec.config.channels;
    let mut events = Vec::new();
    let first = handle.compile(&spec.patch)?;
    events.extend(
        first
            .program
            .warnings
            .iter()
            .cloned()
            .map(RenderEvent::Warning),
    );
    handle
        .install(first)
        .expect("a new engine's queue has room");
    for p in &spec.params {
        handle.set_param(*p).expect("queue has room");
    }
    let mut swaps: Vec<(usize, &Swap)> = spec.swaps.iter().enumerate().collect();
    swaps.sort_by_key(|(_, s)| s.at);
    let mut swaps = swaps.into_iter().peekable();

    let total = spec.length.0 as usize;
    let mut samples = vec![0.0f32; total * ch];
    let block = spec.block.max(1);
    let mut done = 0usize;
    while done < total {
        while let Some((index, s)) = swaps.next_if(|(_, s)| s.at.0 as usize <= done) {
            match handle.compile(&s.patch) {
                Ok(p) => {
                    events.extend(p.program.warnings.iter().cloned().map(RenderEvent::Warning));
                    handle.install(p).expect("queue drained every block");
                    progress.patch.store(index + 1, Ordering::SeqCst);
                }
                Err(e) => events.push(RenderEvent::SwapFailed {
                    at: s.at,
                    diagnostics: e.diagnostics().to_vec(),
                }),
            }
        }
        let next_swap = swaps
            .peek()
            .map_or(total, |(_, s)| (s.at.0 as usize).clamp(done + 1, total));
        let n = block.min(total - done).min(next_swap - done);
        engine.process(&[], &mut samples[done * ch..(done + n) * ch]);
        done += n;
        progress.frames.store(done as u64, Ordering::Relaxed);
        for r in handle.collect() {
            if !matches!(r, Report::Installed { .. }) {
                events.push(RenderEvent::Report(handle.describe(&r)));
            }
        }
    }
    // Programs are freed here, after the engine stopped running them.
    drop(engine);
    handle.collect();
    Ok(Rendered {
        samples,
        channels: ch,
        sample_rate: spec.config.sample_rate as u32,
        events,
    })
}

/// Sample format of a written WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavFormat {
    Float32,
    Int16,
    Int24,
}

/// Writes a WAV file atomically: to a temporary file beside it, renamed into
/// place only once complete, so a failure never leaves a partial file.
pub fn write_wav(path: &Path, r: &Rendered, format: WavFormat) -> Result<(), RenderError> {
    let err = |source: std::io::Error| RenderError::Write {
        path: path.to_path_buf(),
        source,
    };
    let (bits, sample_format) = match format {
        WavFormat::Float32 => (32, hound::SampleFormat::Float),
        WavFormat::Int16 => (16, hound::SampleFormat::Int),
        WavFormat::Int24 => (24, hound::SampleFormat::Int),
    };
    let spec = hound::WavSpec {
        channels: r.channels as u16,
        sample_rate: r.sample_rate,
        bits_per_sample: bits,
        sample_format,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .ok_or_else(|| err(std::io::Error::other("not a file name")))?;
    let tmp = dir.join(format!(
        ".{}.partial-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<(), std::io::Error> {
        let file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let mut w = hound::WavWriter::new(file, spec).map_err(hound_io)?;
        match format {
            WavFormat::Float32 => {
                for s in &r.samples {
                    w.write_sample(*s).map_err(hound_io)?;
                }
            }
            WavFormat::Int16 => {
                for s in &r.samples {
                    w.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
                        .map_err(hound_io)?;
                }
            }
            WavFormat::Int24 => {
                for s in &r.samples {
                    w.write_sample((s.clamp(-1.0, 1.0) * 8_388_607.0).round() as i32)
                        .map_err(hound_io)?;
                }
            }
        }
        w.finalize().map_err(hound_io)?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

fn hound_io(e: hound::Error) -> std::io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

/// Writes a short line to stderr-like sinks; used by tools that stream events.
pub fn print_events(out: &mut impl Write, events: &[RenderEvent]) -> std::io::Result<()> {
    for e in events {
        match e {
            RenderEvent::Report(s) => writeln!(out, "clavm: {s}")?,
            RenderEvent::Warning(d) => writeln!(out, "{d}")?,
            RenderEvent::SwapFailed { at, diagnostics } => {
                for d in diagnostics {
                    writeln!(out, "{d}")?;
                }
                writeln!(
                    out,
                    "clavm: swap at frame {} failed; the previous patch kept playing",
                    at.0
                )?;
            }
        }
    }
    Ok(())
}
