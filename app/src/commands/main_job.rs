//! `clavm [PATCH.c | PROGRAM.dsp]`: the main job.
//!
//! A Faust program (`.dsp`) is first translated by the Faust compiler into a
//! temporary folder with a wrapper patch (`crate::faust`); that wrapper is
//! what plays, and the folder lives as long as the job.
//!
//! With a Wayland display: the desktop window (`window/`). Without one, it
//! says so plainly, names the headless commands, and falls back to what works
//! headless: rendering the patch to a WAV file and a picture of the visuals at
//! its end to a PNG.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clavm_audio::engine::EngineConfig;
use clavm_audio::render::{RenderSpec, WavFormat};
use clavm_audio::{Frames, PatchSource};
use clavm_render::analysis::ScopeSpan;
use clavm_render::gpu::GpuChoice;
use clavm_render::views::ViewKind;

use super::snapshot::{self, SnapshotArgs, VisualArgs};
use crate::picture::{ScopeArg, Size};

#[derive(clap::Args)]
pub struct MainArgs {
    /// Headless fallback: where to write the rendered patch.
    #[arg(short, long, default_value = "clavm-out.wav")]
    pub output: PathBuf,
    /// Headless fallback: how many seconds to render (0 < S <= 3600).
    #[arg(long, default_value_t = 10.0, value_parser = crate::args::seconds, allow_negative_numbers = true)]
    pub seconds: f64,
    /// Headless fallback: where to write the picture of the visuals at the end.
    #[arg(long, default_value = "clavm-out.png")]
    pub picture: PathBuf,
    #[command(flatten)]
    pub window: crate::window::WindowArgs,
}

pub fn run(patch: Option<PathBuf>, args: MainArgs) -> anyhow::Result<ExitCode> {
    let mut _faust = None;
    let patch = match patch {
        Some(p) if crate::faust::is_dsp(&p) => match crate::faust::translate(&p) {
            Ok(t) => {
                eprintln!("clavm: {}: translated by faust into {}", p.display(), t.folder().display());
                let wrapper = t.patch.clone();
                _faust = Some(t);
                Some(wrapper)
            }
            Err(e) => {
                eprintln!("clavm: {e}");
                return Ok(ExitCode::FAILURE);
            }
        },
        other => other,
    };
    if std::env::var_os("WAYLAND_DISPLAY").is_some() {
        match crate::window::run(patch.clone(), args.window.clone()) {
            Ok(code) => return Ok(code),
            Err(crate::window::OpenError::NoDisplay(why)) => {
                eprintln!("clavm: cannot reach the Wayland display ({why}): no window.")
            }
            Err(crate::window::OpenError::Other(e)) => return Err(e),
        }
    } else {
        eprintln!("clavm: no Wayland display (WAYLAND_DISPLAY is not set): the desktop window needs one.");
    }
    eprintln!(
        "clavm: headless, use: clavm play PATCH.c (live sound), clavm snapshot / clavm record (the visuals), clavm render (WAV)."
    );
    // Before anything is written: no output may be an input or the other output.
    let inputs: Vec<&std::path::Path> = patch.iter().map(PathBuf::as_path).collect();
    clavm_audio::render::output::refuse_same_file(&args.output, &inputs)?;
    clavm_audio::render::output::refuse_same_file(&args.picture, &inputs)?;
    if args.output == args.picture
        || clavm_audio::render::output::refuse_same_file(&args.picture, &[&args.output]).is_err()
    {
        return Err(crate::usage!("--output and --picture name the same file {}", args.output.display()));
    }
    let source = match &patch {
        Some(p) => match super::load_patch(p) {
            Some(s) => s,
            None => return Ok(ExitCode::FAILURE),
        },
        None => PatchSource::from_text(super::DEFAULT_PATCH_NAME, super::DEFAULT_PATCH),
    };
    eprintln!(
        "clavm: headless fallback: rendering {} for {} s to {}",
        source.name,
        args.seconds,
        args.output.display()
    );
    let mut config = EngineConfig::new(48000.0, 2);
    let tempo = args.window.audio.tempo.clone();
    config.bpm = tempo.bpm;
    config.meter = tempo.meter;
    let voices = args.window.audio.voices.clone();
    config.voices = voices.voices;
    config.release = voices.release;
    let spec = RenderSpec {
        length: Frames::from_seconds(args.seconds, 48000.0),
        patch: source.clone(),
        config,
        swaps: vec![],
        params: vec![],
        block: 64,
        input: None,
        samples: Vec::new(),
        notes: Vec::new(),
    };
    let code = super::render::render_to(&spec, &args.output, WavFormat::Float32, Duration::from_secs(10))?;
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    // The picture is a bonus: without Vulkan the sound is still there.
    let snap = SnapshotArgs {
        patch: Some(PathBuf::from(&source.name)),
        engine: None,
        listen: 0.0,
        at: args.seconds,
        output: args.picture.clone(),
        size: Size { width: 1280, height: 720 },
        view: ViewKind::All,
        common: VisualArgs {
            gpu: GpuChoice::Auto,
            rate: 48000,
            channels: 2,
            seed: 0,
            timeout: 10.0,
            scope: ScopeArg(ScopeSpan::Cycles(2.0)),
            bars: None,
            input: None,
            tempo,
            samples: Default::default(),
            midi: None,
            voices,
        },
    };
    match snapshot::snapshot(source, &snap) {
        Ok(_) => {}
        Err(e) => eprintln!("clavm: no picture of the visuals: {e:#}"),
    }
    Ok(code)
}
