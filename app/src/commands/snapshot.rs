//! `clavm snapshot PATCH.c --at T -o OUT.png`: what the window would show
//! at time T of an offline render.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clavm_audio::engine::EngineConfig;
use clavm_audio::render::RenderSpec;
use clavm_audio::Frames;
use clavm_render::gpu::GpuChoice;
use clavm_render::views::ViewKind;

use crate::picture::{self, png_file, Picture, Size};

#[derive(clap::Args)]
pub struct SnapshotArgs {
    /// The patch to render.
    pub patch: PathBuf,
    /// The moment to show, in seconds from the start.
    #[arg(long, default_value_t = 1.0)]
    pub at: f64,
    /// The PNG file to write (complete or not at all).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Image size.
    #[arg(long, default_value = "1280x720")]
    pub size: Size,
    /// Which panels: scope, xy, waves, spectrum, meters or all.
    #[arg(long, default_value = "all")]
    pub view: ViewKind,
    #[command(flatten)]
    pub common: VisualArgs,
}

/// What `snapshot` and `record` share.
#[derive(clap::Args)]
pub struct VisualArgs {
    /// Vulkan device: auto (a GPU first, else lavapipe), an index, or part of a name.
    #[arg(long, default_value = "auto")]
    pub gpu: GpuChoice,
    /// Sample rate in Hz.
    #[arg(long, default_value_t = 48000)]
    pub rate: u32,
    /// Output channels.
    #[arg(long, default_value_t = 2)]
    pub channels: usize,
    /// Seed of the random builtins.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Give up if the patch makes no progress for this many seconds.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
}

impl VisualArgs {
    pub fn check(&self) -> anyhow::Result<()> {
        if !(8000..=384_000).contains(&self.rate) {
            bail!("--rate {} is out of range (8000..=384000)", self.rate);
        }
        if !(1..=8).contains(&self.channels) {
            bail!("--channels {} is out of range (1..=8)", self.channels);
        }
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            bail!("--timeout must be positive");
        }
        Ok(())
    }

    pub fn spec(&self, patch: clavm_audio::PatchSource, seconds: f64) -> RenderSpec {
        let rate = self.rate as f64;
        let mut config = EngineConfig::new(rate, self.channels);
        config.seed = self.seed;
        RenderSpec {
            patch,
            length: Frames::from_seconds(seconds, rate),
            config,
            swaps: Vec::new(),
            params: Vec::new(),
            block: 64,
        }
    }
}

pub fn run(a: SnapshotArgs) -> anyhow::Result<ExitCode> {
    a.common.check()?;
    if !(a.at.is_finite() && (0.0..=3600.0).contains(&a.at)) {
        bail!("--at {} is out of range (0..=3600 seconds)", a.at);
    }
    let Some(patch) = super::load_patch(&a.patch) else {
        return Ok(ExitCode::FAILURE);
    };
    snapshot(patch, &a)
}

/// Renders `patch` as `a` asks (its `patch` path is not read again).
pub fn snapshot(patch: clavm_audio::PatchSource, a: &SnapshotArgs) -> anyhow::Result<ExitCode> {
    let out = png_file::reserve(&a.output)?;
    let gpu = picture::open_gpu(a.common.gpu.clone())?;
    let spec = a.common.spec(patch, a.at);
    let mut pic = Picture::new(&gpu, a.size, a.view, spec.config.sample_rate, spec.config.channels)?;
    let end = spec.length.0;
    let mut image = Vec::new();
    let summary = picture::lockstep(
        &spec,
        &mut pic,
        1,
        &|_| end,
        Duration::from_secs_f64(a.common.timeout),
        &mut |_| Ok(()),
        &mut |p, _| {
            let t = p.draw()?;
            image = p.pixels(t)?.to_vec();
            Ok(())
        },
    )?;
    let Some(summary) = summary else {
        return Ok(ExitCode::FAILURE);
    };
    clavm_audio::render::print_events(&mut std::io::stderr(), &summary.events)?;
    png_file::write(out, a.size.width, a.size.height, &image)?;
    println!("{}: {}x{} at {:.3} s", a.output.display(), a.size.width, a.size.height, a.at);
    Ok(ExitCode::SUCCESS)
}
