//! `clavm record PATCH.c -o OUT.mp4 --seconds S`: a video of the visuals
//! with the patch's sound, frames rendered in lockstep with the offline audio.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clavm_audio::render::{WavFile, WavFormat};
use clavm_render::views::ViewKind;

use super::snapshot::VisualArgs;
use crate::crash;
use crate::picture::encoder::{self, FrameEncoder};
use crate::picture::partial::PartialFile;
use crate::picture::{self, Picture, Size};

#[derive(clap::Args)]
pub struct RecordArgs {
    /// The patch to render.
    pub patch: PathBuf,
    /// The video to write (.mp4, .mkv or .mov; complete or not at all; a
    /// regular file: a video is written with seeking, so a FIFO, a device or
    /// stdout is refused).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Length in seconds (0 < S <= 3600).
    #[arg(long, default_value_t = 10.0, value_parser = crate::args::seconds, allow_negative_numbers = true)]
    pub seconds: f64,
    /// Frame size (even numbers: the video is H.264 in 4:2:0).
    #[arg(long, default_value = "1280x720")]
    pub size: Size,
    /// Frames per second (1..=240).
    #[arg(long, default_value_t = 60, value_parser = crate::args::fps, allow_negative_numbers = true)]
    pub fps: u32,
    /// Which panels: scope, xy, waves, spectrum, meters or all.
    #[arg(long, default_value = "all")]
    pub view: ViewKind,
    #[command(flatten)]
    pub common: VisualArgs,
}

pub fn run(a: RecordArgs) -> anyhow::Result<ExitCode> {
    if (a.size.width | a.size.height) & 1 == 1 {
        return Err(crate::usage!(
            "--size {}x{}: H.264 video needs even width and height",
            a.size.width,
            a.size.height
        ));
    }
    let Some(container) = encoder::Container::from_path(&a.output) else {
        return Err(crate::usage!("{}: the video must be .mp4, .mkv or .mov", a.output.display()));
    };
    let mut inputs = a.common.inputs();
    inputs.push(&a.patch);
    clavm_audio::render::output::refuse_same_file(&a.output, &inputs)?;
    encoder::check_ffmpeg()?;
    let Some(patch) = super::load_patch(&a.patch) else {
        return Ok(ExitCode::FAILURE);
    };
    // Every file is reserved before the work starts: an unwritable output
    // fails now, and an error, a crash or an interrupt later leaves none of
    // them behind.
    crash::arm_host();
    let output = PartialFile::new(&a.output, "partial")?;
    let video = PartialFile::new(&a.output, "video")?;
    let audio = PartialFile::new(&a.output.with_extension("wav"), "audio")?;
    let spec = a.common.spec(patch, a.seconds)?;
    let rate = spec.config.sample_rate;
    // The sound goes into the reserved file itself (by descriptor): no
    // further temporary name that a later run could not recognise.
    let audio_file = audio.file().try_clone().context("cannot write the sound's temporary file")?;
    let mut wav =
        WavFile::create_in(audio_file, audio.work_path(), spec.config.channels, rate as u32, WavFormat::Float32)?;

    let gpu = picture::open_gpu(a.common.gpu.clone())?;
    let mut pic = Picture::new(&gpu, a.size, a.view, rate, spec.config.channels)?;
    a.common.apply_to(&mut pic)?;
    let mut enc =
        FrameEncoder::start(video.file(), container, a.size.width, a.size.height, a.fps, encoder::PixelOrder::Rgba)?;
    // As many frames as fit in the audio: frame k is shown at k / fps.
    let frames = (a.seconds * a.fps as f64).round().max(1.0) as u64;
    let fps = a.fps as f64;
    let progress = Progress::new(frames);
    let t0 = Instant::now();
    // Two frames in flight: frame k is drawn while frame k - 1 is read back.
    let mut pending: Option<clavm_render::FrameTicket> = None;
    let summary = picture::lockstep(
        &spec,
        &mut pic,
        frames,
        &|k| ((k as f64) * rate / fps).round() as u64,
        Duration::from_secs_f64(a.common.timeout),
        &mut |block| wav.write(block).map_err(Into::into),
        &mut |p, k| {
            let ticket = p.draw()?;
            if let Some(prev) = pending.replace(ticket) {
                enc.push(p.pixels(prev)?)?;
            }
            progress.set(k + 1);
            Ok(())
        },
    )?;
    let Some(summary) = summary else {
        return Ok(ExitCode::FAILURE);
    };
    if let Some(last) = pending.take() {
        enc.push(pic.pixels(last)?)?;
    }
    enc.finish()?;
    wav.finish()?;
    pic.check_validation()?;
    progress.done();
    let rendered = t0.elapsed();
    clavm_audio::render::print_events(&mut std::io::stderr(), &summary.events)?;
    encoder::mux(video.work_path(), audio.work_path(), output.file(), container)?;
    output.commit().context("writing the video")?;
    let total = t0.elapsed();
    println!(
        "{}: {:.3} s, {} frames at {} fps, {}x{}, rendered in {:.2} s ({:.2}x real time), written in {:.2} s",
        a.output.display(),
        a.seconds,
        frames,
        a.fps,
        a.size.width,
        a.size.height,
        rendered.as_secs_f64(),
        a.seconds / rendered.as_secs_f64().max(1e-9),
        total.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on a terminal (indicatif); nothing when stderr is not one.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(frames: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(frames);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} recording [{bar:40}] {pos}/{len} frames  {per_sec}  eta {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar
        });
        Progress { bar }
    }
    fn set(&self, frames: u64) {
        if let Some(b) = &self.bar {
            b.set_position(frames);
        }
    }
    fn done(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
