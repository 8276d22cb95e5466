//! `clavm render PATCH.c -o OUT.wav`: offline, deterministic rendering.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clavm_audio::engine::{EngineConfig, Param};
use clavm_audio::render::{self, Progress, RenderEvent, RenderSpec, Swap, WavFile, WavFormat};
use clavm_audio::Frames;

use crate::crash;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// 32-bit float
    F32,
    /// 16-bit integer
    S16,
    /// 24-bit integer
    S24,
}

#[derive(clap::Args)]
pub struct RenderArgs {
    /// The patch to render.
    pub patch: PathBuf,
    /// The WAV file to write (written atomically: complete or not at all).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Length in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Sample rate in Hz.
    #[arg(long, default_value_t = 48000)]
    pub rate: u32,
    /// Output channels.
    #[arg(long, default_value_t = 2)]
    pub channels: usize,
    /// Seed of the random builtins (Dust, Uniform, Normal).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Install another patch at time T seconds, as a live edit would: T:OTHER.c (repeatable).
    #[arg(long = "swap", value_name = "T:OTHER.c")]
    pub swaps: Vec<String>,
    /// Crossfade length of a swap, in milliseconds (0 = switch at once).
    #[arg(long, default_value_t = 10.0)]
    pub crossfade: f64,
    /// Set _p(N) to V: N=V (repeatable).
    #[arg(long = "param", value_name = "N=V")]
    pub params: Vec<String>,
    /// Set _i(N) to V: N=V (repeatable).
    #[arg(long = "int", value_name = "N=V")]
    pub ints: Vec<String>,
    /// Set _cc(N) to V (0..1): N=V (repeatable).
    #[arg(long = "cc", value_name = "N=V")]
    pub ccs: Vec<String>,
    /// Sample format of the WAV file.
    #[arg(long, value_enum, default_value_t = Format::F32)]
    pub format: Format,
    /// Give up if the patch makes no progress for this many seconds (an infinite loop).
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// An interval-bar tree (.bars) for `_bars`, `_bar_freq` and `_bar_gate`.
    #[arg(long, value_name = "FILE.bars")]
    pub bars: Option<PathBuf>,
}

/// Builds a parameter change from a command-line `N=V`.
type MakeParam = fn(u8, f64) -> Param;

fn parse_assignment(s: &str, what: &str) -> anyhow::Result<(u8, f64)> {
    let (n, v) = s.split_once('=').with_context(|| format!("{what} '{s}' must look like N=V"))?;
    let n: u8 = n
        .trim()
        .parse()
        .ok()
        .filter(|n| (*n as usize) < 128)
        .with_context(|| format!("{what} '{s}': N must be 0..127"))?;
    let v: f64 = v.trim().parse().with_context(|| format!("{what} '{s}': V must be a number"))?;
    Ok((n, v))
}

fn parse_swap(s: &str, rate: f64) -> anyhow::Result<(Frames, PathBuf)> {
    let (t, file) = s.split_once(':').with_context(|| format!("--swap '{s}' must look like T:OTHER.c"))?;
    let t: f64 = t
        .parse()
        .ok()
        .filter(|t: &f64| t.is_finite() && *t >= 0.0)
        .with_context(|| format!("--swap '{s}': T must be a time in seconds"))?;
    Ok((Frames::from_seconds(t, rate), PathBuf::from(file)))
}

pub fn run(a: RenderArgs) -> anyhow::Result<ExitCode> {
    if !(a.seconds > 0.0 && a.seconds <= 3600.0) {
        bail!("--seconds {} is out of range (0 < S <= 3600)", a.seconds);
    }
    if !(a.crossfade >= 0.0 && a.crossfade <= 10_000.0) {
        bail!("--crossfade {} ms is out of range (0..=10000)", a.crossfade);
    }
    if !(a.timeout.is_finite() && a.timeout > 0.0) {
        bail!("--timeout must be positive");
    }
    let rate = a.rate as f64;
    let kinds: [(&[String], &str, MakeParam); 3] = [
        (&a.params, "--param", |n, v| Param::P(n, v as f32)),
        (&a.ints, "--int", |n, v| Param::I(n, v as i32)),
        (&a.ccs, "--cc", |n, v| Param::Cc(n, v as f32)),
    ];
    let mut params = Vec::new();
    for (list, flag, make) in kinds {
        for s in list {
            let (n, v) = parse_assignment(s, flag)?;
            params.push(make(n, v));
        }
    }
    let Some(patch) = super::load_patch(&a.patch) else {
        return Ok(ExitCode::FAILURE);
    };
    let mut swaps = Vec::new();
    for s in &a.swaps {
        let (at, file) = parse_swap(s, rate)?;
        let Some(p) = super::load_patch(&file) else {
            return Ok(ExitCode::FAILURE);
        };
        swaps.push(Swap { at, patch: p });
    }
    let mut config = EngineConfig::new(rate, a.channels);
    config.crossfade = Frames::from_seconds(a.crossfade / 1000.0, rate);
    config.seed = a.seed;
    if let Some(b) = &a.bars {
        config.bars = super::load_bars(b)?;
    }
    let spec = RenderSpec { patch, length: Frames::from_seconds(a.seconds, rate), config, swaps, params, block: 64 };
    let format = match a.format {
        Format::F32 => WavFormat::Float32,
        Format::S16 => WavFormat::Int16,
        Format::S24 => WavFormat::Int24,
    };
    render_to(&spec, &a.output, format, Duration::from_secs_f64(a.timeout))
}

/// The `clavm` executable, which runs patches as `clavm __offline` in a
/// sandboxed child process.
pub fn offline_exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the clavm executable to run the patch in a sandboxed process")
}

/// Renders in a sandboxed child process, streaming into the WAV file (opened
/// first, so an unwritable path fails before any work), and prints events.
/// A crash or hang of the patch is an error (one line, exit 1); the partial
/// file is removed.
pub fn render_to(
    spec: &RenderSpec,
    output: &std::path::Path,
    format: WavFormat,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let exe = offline_exe()?;
    let mut file = WavFile::create(output, spec.config.channels, spec.config.sample_rate as u32, format)?;
    crash::arm_host();
    crash::remove_on_crash(file.temporary_path());
    let t0 = Instant::now();
    let result = render::render_isolated(&exe, timeout, spec, &Progress::new(), &mut |block| file.write(block));
    let summary = match result {
        Ok(r) => r,
        Err(render::RenderError::Patch(e)) => {
            super::print_patch_error(&e);
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    let elapsed = t0.elapsed();
    render::print_events(&mut std::io::stderr(), &summary.events)?;
    file.finish()?;
    let secs = spec.length.seconds(spec.config.sample_rate);
    println!(
        "{}: {:.3} s, {} ch, {} Hz written in {:.2} s ({:.0}x real time)",
        output.display(),
        secs,
        summary.channels,
        summary.sample_rate,
        elapsed.as_secs_f64(),
        secs / elapsed.as_secs_f64().max(1e-9)
    );
    let failed_swaps = summary.events.iter().any(|e| matches!(e, RenderEvent::SwapFailed { .. }));
    Ok(if failed_swaps { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
