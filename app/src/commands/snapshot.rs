//! `clavm snapshot PATCH.c --at T -o OUT.png`: what the window would show
//! at time T of an offline render.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clavm_audio::engine::EngineConfig;
use clavm_audio::render::RenderSpec;
use clavm_audio::Frames;
use clavm_render::gpu::GpuChoice;
use clavm_render::views::ViewKind;

use crate::picture::live_feed::TapFeed;
use crate::picture::{self, png_file, Picture, ScopeArg, Size};

#[derive(clap::Args)]
pub struct SnapshotArgs {
    /// The patch to render (or --engine to picture a running engine).
    #[arg(required_unless_present = "engine")]
    pub patch: Option<PathBuf>,
    /// Picture what a running engine (`clavm play --engine NAME`) plays now,
    /// from its audio tap, instead of rendering a patch.
    #[arg(long, conflicts_with = "patch")]
    pub engine: Option<String>,
    /// With --engine: how long to listen before drawing (fills the waveform's history; 0..=60 s).
    #[arg(long, default_value_t = 2.5, value_parser = crate::args::listen, allow_negative_numbers = true)]
    pub listen: f64,
    /// The moment to show, in seconds from the start (0..=3600).
    #[arg(long, default_value_t = 1.0, value_parser = crate::args::moment, allow_negative_numbers = true)]
    pub at: f64,
    /// The PNG file to write (complete or not at all), or a FIFO, a character
    /// device or - (stdout), streamed.
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
    /// Sample rate in Hz (8000..=384000).
    #[arg(long, default_value_t = 48000, value_parser = crate::args::rate, allow_negative_numbers = true)]
    pub rate: u32,
    /// Output channels (1..=8).
    #[arg(long, default_value_t = 2, value_parser = crate::args::visual_channels, allow_negative_numbers = true)]
    pub channels: usize,
    /// Seed of the random builtins.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Give up if the patch makes no progress for this many seconds (1..=3600).
    #[arg(long, default_value_t = 10.0, value_parser = crate::args::timeout, allow_negative_numbers = true)]
    pub timeout: f64,
    /// What the scope shows from its trigger: cycles (2, 4c) or a time (20ms, 0.1s).
    #[arg(long, default_value = "2")]
    pub scope: ScopeArg,
    /// An interval-bar tree (.bars) for `_bars`, `_bar_freq` and `_bar_gate`.
    #[arg(long, value_name = "FILE.bars")]
    pub bars: Option<PathBuf>,
    /// A WAV file for the patch's _in(ch): resampled to --rate, file channel i
    /// is input i, silence after its end.
    #[arg(long, value_name = "IN.wav")]
    pub input: Option<PathBuf>,
    #[command(flatten)]
    pub tempo: crate::args::TempoOptions,
    #[command(flatten)]
    pub samples: crate::args::SampleArgs,
    /// A standard MIDI file (format 0 or 1) whose notes play the voices
    /// (`_gate`, `_hz`, ...), at the times its tempo map gives.
    #[arg(long, value_name = "FILE.mid")]
    pub midi: Option<PathBuf>,
    #[command(flatten)]
    pub voices: crate::args::VoiceOptions,
}

impl VisualArgs {
    /// The input files these arguments name besides the patch (an output
    /// must not be one of them).
    pub fn inputs(&self) -> Vec<&std::path::Path> {
        self.bars
            .iter()
            .chain(&self.input)
            .chain(&self.midi)
            .map(PathBuf::as_path)
            .chain(self.samples.files())
            .collect()
    }

    /// The view settings these arguments ask for: the scope's span, the bar tree.
    pub fn apply_to(&self, pic: &mut Picture) -> anyhow::Result<()> {
        pic.visuals.scope.span = self.scope.0;
        if let Some(b) = &self.bars {
            pic.visuals.bars.drawing = Some(super::bar_drawing(&super::load_bar_tree(b)?));
        }
        Ok(())
    }

    pub fn spec(&self, patch: clavm_audio::PatchSource, seconds: f64) -> anyhow::Result<RenderSpec> {
        let rate = self.rate as f64;
        let mut config = EngineConfig::new(rate, self.channels);
        config.seed = self.seed;
        config.bpm = self.tempo.bpm;
        config.meter = self.tempo.meter;
        config.voices = self.voices.voices;
        config.release = self.voices.release;
        if let Some(b) = &self.bars {
            config.bars = super::load_bars(b)?;
        }
        let length = Frames::from_seconds(seconds, rate);
        let input =
            self.input.as_deref().map(|f| clavm_audio::render::input::load_wav(f, self.rate, length)).transpose()?;
        let samples = self.samples.load(&[&patch], self.rate)?;
        let notes = match &self.midi {
            Some(f) => clavm_audio::render::midi::load_midi(f, rate, length)?,
            None => Vec::new(),
        };
        Ok(RenderSpec {
            patch,
            length,
            config,
            swaps: Vec::new(),
            params: Vec::new(),
            block: 64,
            input,
            samples,
            notes,
        })
    }
}

pub fn run(a: SnapshotArgs) -> anyhow::Result<ExitCode> {
    let mut inputs = a.common.inputs();
    inputs.extend(a.patch.as_deref());
    clavm_audio::render::output::refuse_same_file(&a.output, &inputs)?;
    if let Some(engine) = &a.engine {
        return live_snapshot(engine, &a);
    }
    let Some(patch) = a.patch.as_deref().and_then(super::load_patch) else {
        return Ok(ExitCode::FAILURE);
    };
    snapshot(patch, &a)
}

/// The picture of a running engine: listen to its tap for `--listen`
/// seconds, then drain what arrived last and draw at once.
fn live_snapshot(engine: &str, a: &SnapshotArgs) -> anyhow::Result<ExitCode> {
    crate::crash::arm_host();
    let out = png_file::reserve(&a.output)?;
    let gpu = picture::open_gpu(a.common.gpu.clone())?;
    let mut feed = TapFeed::open(engine, Duration::from_secs(2), false)?;
    let mut pic = Picture::new(&gpu, a.size, a.view, feed.sample_rate, feed.channels)?;
    a.common.apply_to(&mut pic)?;
    let until = std::time::Instant::now() + Duration::from_secs_f64(a.listen);
    while std::time::Instant::now() < until {
        feed.drain(&mut pic.analysis);
        std::thread::sleep(Duration::from_millis(10));
    }
    // A first frame builds the pipelines and the glyph atlas (tens of ms
    // on lavapipe); the frame that counts is drawn warm, as a window's are.
    let warm = pic.draw()?;
    pic.pixels(warm)?;
    feed.drain(&mut pic.analysis);
    let ticket = pic.draw()?;
    let image = pic.pixels(ticket)?.to_vec();
    let age = feed.age().unwrap_or_default();
    pic.check_validation()?;
    let to_stdout = out.is_stdout();
    png_file::write(out, a.size.width, a.size.height, &image)?;
    say(
        to_stdout,
        format!(
            "{}: {}x{} of engine '{engine}', newest audio {:.1} ms old when the frame was ready{}",
            a.output.display(),
            a.size.width,
            a.size.height,
            age.as_secs_f64() * 1000.0,
            match feed.dropped() {
                0 => String::new(),
                n => format!(" ({n} blocks dropped while this reader was late)"),
            }
        ),
    );
    Ok(ExitCode::SUCCESS)
}

/// Renders `patch` as `a` asks (its `patch` path is not read again).
pub fn snapshot(patch: clavm_audio::PatchSource, a: &SnapshotArgs) -> anyhow::Result<ExitCode> {
    crate::crash::arm_host();
    let out = png_file::reserve(&a.output)?;
    let gpu = picture::open_gpu(a.common.gpu.clone())?;
    let spec = a.common.spec(patch, a.at)?;
    let mut pic = Picture::new(&gpu, a.size, a.view, spec.config.sample_rate, spec.config.channels)?;
    a.common.apply_to(&mut pic)?;
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
    pic.check_validation()?;
    let to_stdout = out.is_stdout();
    png_file::write(out, a.size.width, a.size.height, &image)?;
    say(to_stdout, format!("{}: {}x{} at {:.3} s", a.output.display(), a.size.width, a.size.height, a.at));
    Ok(ExitCode::SUCCESS)
}

/// The summary line: on stderr when stdout carries the picture (`-o -`).
fn say(to_stdout: bool, line: String) {
    if to_stdout {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}
