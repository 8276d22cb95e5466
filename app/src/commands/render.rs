//! `clavm render PATCH.c -o OUT.wav`: offline, deterministic rendering.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
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
    /// The WAV file to write (written atomically: complete or not at all), or a
    /// FIFO, a character device or - (stdout), streamed with an open length.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Length in seconds (0 < S <= 3600).
    #[arg(long, default_value_t = 5.0, value_parser = crate::args::seconds, allow_negative_numbers = true)]
    pub seconds: f64,
    /// Sample rate in Hz (8000..=384000).
    #[arg(long, default_value_t = 48000, value_parser = crate::args::rate, allow_negative_numbers = true)]
    pub rate: u32,
    /// Output channels (1..=16).
    #[arg(long, default_value_t = 2, value_parser = crate::args::channels, allow_negative_numbers = true)]
    pub channels: usize,
    /// Seed of the random builtins (Dust, Uniform, Normal).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub seed: u64,
    /// Install another patch at time T seconds, as a live edit would: T:OTHER.c (repeatable).
    #[arg(long = "swap", value_name = "T:OTHER.c")]
    pub swaps: Vec<String>,
    /// Crossfade length of a swap, in milliseconds (0 = switch at once; at most 10000).
    #[arg(long, default_value_t = 10.0, value_parser = crate::args::crossfade_ms, allow_negative_numbers = true)]
    pub crossfade: f64,
    #[command(flatten)]
    pub tempo: crate::args::TempoOptions,
    /// A standard MIDI file (format 0 or 1) whose notes play the voices
    /// (`_gate`, `_hz`, ...), each at the exact frame its tempo map gives.
    #[arg(long, value_name = "FILE.mid")]
    pub midi: Option<PathBuf>,
    #[command(flatten)]
    pub voices: crate::args::VoiceOptions,
    /// Each --swap lands on the first boundary at or after its time: 0 = exactly
    /// at T, Q = the next multiple of Q beats (1 = a beat, 4 = a bar of four).
    #[arg(long, default_value = "0", value_parser = crate::args::quant, allow_negative_numbers = true)]
    pub quant: clavm_audio::clock::Quant,
    /// Set _p(N) to V: N=V, N in 0..=127, V finite (repeatable).
    #[arg(long = "param", value_name = "N=V")]
    pub params: Vec<String>,
    /// Set _i(N) to V: N=V, V a whole number in the range of a C int (repeatable).
    #[arg(long = "int", value_name = "N=V")]
    pub ints: Vec<String>,
    /// Set _cc(N) to V (0..1): N=V (repeatable).
    #[arg(long = "cc", value_name = "N=V")]
    pub ccs: Vec<String>,
    /// Sample format of the WAV file.
    #[arg(long, value_enum, default_value_t = Format::F32)]
    pub format: Format,
    /// Give up if the patch makes no progress for this many seconds (an infinite loop; 1..=3600).
    #[arg(long, default_value_t = 10.0, value_parser = crate::args::timeout, allow_negative_numbers = true)]
    pub timeout: f64,
    /// An interval-bar tree (.bars) for `_bars`, `_bar_freq` and `_bar_gate`.
    #[arg(long, value_name = "FILE.bars")]
    pub bars: Option<PathBuf>,
    /// A WAV file for the patch's _in(ch): resampled to --rate, file channel i
    /// is input i, silence after its end.
    #[arg(long, value_name = "IN.wav")]
    pub input: Option<PathBuf>,
    #[command(flatten)]
    pub samples: crate::args::SampleArgs,
}

/// Which of the patch's inputs an `N=V` sets, and what V may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ParamKind {
    /// `_p(N)`: any finite number.
    P,
    /// `_i(N)`: a whole number a C `int` holds.
    I,
    /// `_cc(N)`: 0..=1, as a MIDI controller's value.
    Cc,
}

impl ParamKind {
    fn flag(self) -> &'static str {
        match self {
            ParamKind::P => "--param",
            ParamKind::I => "--int",
            ParamKind::Cc => "--cc",
        }
    }

    /// Parses a command-line `N=V`; every problem is a usage error naming
    /// the allowed values.
    fn parse(self, s: &str) -> anyhow::Result<Param> {
        let what = self.flag();
        let (n, v) = s.split_once('=').ok_or_else(|| crate::usage!("{what} '{s}' must look like N=V"))?;
        let n: u8 = n
            .trim()
            .parse()
            .ok()
            .filter(|n| (*n as usize) < 128)
            .ok_or_else(|| crate::usage!("{what} '{s}': N must be 0..=127"))?;
        // Finite as the f32 the patch reads, too (1e300 is not).
        let finite = |v: &f64| v.is_finite() && (*v as f32).is_finite();
        let v: f64 = v.trim().parse().ok().filter(finite).ok_or_else(|| match self {
            ParamKind::P => crate::usage!("{what} '{s}': V must be a finite number (|V| <= {:e})", f32::MAX),
            ParamKind::I => crate::usage!("{what} '{s}': V must be a whole number in {}..={}", i32::MIN, i32::MAX),
            ParamKind::Cc => crate::usage!("{what} '{s}': V must be 0..=1"),
        })?;
        Ok(match self {
            ParamKind::P => Param::P(n, v as f32),
            ParamKind::I => {
                if v.fract() != 0.0 || v < i32::MIN as f64 || v > i32::MAX as f64 {
                    return Err(crate::usage!("{what} '{s}': V must be a whole number in {}..={}", i32::MIN, i32::MAX));
                }
                Param::I(n, v as i32)
            }
            ParamKind::Cc => {
                if !(0.0..=1.0).contains(&v) {
                    return Err(crate::usage!("{what} '{s}': V must be 0..=1"));
                }
                Param::Cc(n, v as f32)
            }
        })
    }
}

fn parse_swap(s: &str, rate: f64) -> anyhow::Result<(Frames, PathBuf)> {
    let (t, file) = s.split_once(':').ok_or_else(|| crate::usage!("--swap '{s}' must look like T:OTHER.c"))?;
    let t: f64 =
        t.parse().ok().filter(|t: &f64| t.is_finite() && (0.0..=crate::args::MAX_SECONDS).contains(t)).ok_or_else(
            || crate::usage!("--swap '{s}': T must be a time in seconds, 0..={}", crate::args::MAX_SECONDS),
        )?;
    if file.is_empty() {
        return Err(crate::usage!("--swap '{s}': the patch file is missing after the colon"));
    }
    Ok((Frames::from_seconds(t, rate), PathBuf::from(file)))
}

pub fn run(a: RenderArgs) -> anyhow::Result<ExitCode> {
    let rate = a.rate as f64;
    let format = match a.format {
        Format::F32 => WavFormat::Float32,
        Format::S16 => WavFormat::Int16,
        Format::S24 => WavFormat::Int24,
    };
    let longest = render::max_wav_seconds(a.channels, a.rate, format);
    if a.seconds > longest && a.output.as_os_str() != "-" {
        return Err(crate::usage!(
            "--seconds {}: a WAV file of {} channels at {} Hz in this format holds at most {longest} seconds (4 GiB)",
            a.seconds,
            a.channels,
            a.rate
        ));
    }
    let kinds = [(&a.params, ParamKind::P), (&a.ints, ParamKind::I), (&a.ccs, ParamKind::Cc)];
    let mut params = Vec::new();
    for (list, kind) in kinds {
        for s in list {
            params.push(kind.parse(s)?);
        }
    }
    let mut swap_files = Vec::new();
    for s in &a.swaps {
        swap_files.push(parse_swap(s, rate)?);
    }
    // Before anything is written: the output must not be one of the inputs.
    let mut inputs: Vec<&std::path::Path> = vec![&a.patch];
    inputs.extend(swap_files.iter().map(|(_, f)| f.as_path()));
    inputs.extend(a.bars.as_deref());
    inputs.extend(a.input.as_deref());
    inputs.extend(a.samples.files());
    inputs.extend(a.midi.as_deref());
    render::output::refuse_same_file(&a.output, &inputs)?;
    let Some(patch) = super::load_patch(&a.patch) else {
        return Ok(ExitCode::FAILURE);
    };
    let mut swaps = Vec::new();
    for (at, file) in swap_files {
        let Some(p) = super::load_patch(&file) else {
            return Ok(ExitCode::FAILURE);
        };
        swaps.push(Swap { at, patch: p });
    }
    let mut config = EngineConfig::new(rate, a.channels);
    config.crossfade = Frames::from_seconds(a.crossfade / 1000.0, rate);
    config.seed = a.seed;
    config.bpm = a.tempo.bpm;
    config.meter = a.tempo.meter;
    config.voices = a.voices.voices;
    config.release = a.voices.release;
    if let Some(b) = &a.bars {
        config.bars = super::load_bars(b)?;
    }
    let length = Frames::from_seconds(a.seconds, rate);
    let input = a.input.as_deref().map(|f| render::input::load_wav(f, a.rate, length)).transpose()?;
    let notes = match &a.midi {
        Some(f) => render::midi::load_midi(f, rate, length)?,
        None => Vec::new(),
    };
    let versions: Vec<&clavm_audio::PatchSource> =
        std::iter::once(&patch).chain(swaps.iter().map(|s| &s.patch)).collect();
    let samples = a.samples.load(&versions, a.rate)?;
    let mut spec = RenderSpec { patch, length, config, swaps, params, block: 64, input, samples, notes };
    // Each swap lands on the first boundary at or after its time, as a quantised live submit would.
    spec.quantise_swaps(a.quant);
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
    // Interrupts and crashes remove the temporary file from here on.
    crash::arm_host();
    let mut file = WavFile::create(output, spec.config.channels, spec.config.sample_rate as u32, format)?;
    let temporary = file.temporary_path().map(std::path::Path::to_path_buf);
    if let Some(t) = &temporary {
        crash::remove_on_crash(t);
    }
    let to_stdout = file.is_stdout();
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
    if let Some(t) = &temporary {
        crash::forget_file(t);
    }
    let secs = spec.length.seconds(spec.config.sample_rate);
    let line = format!(
        "{}: {:.3} s, {} ch, {} Hz written in {:.2} s ({:.0}x real time)",
        output.display(),
        secs,
        summary.channels,
        summary.sample_rate,
        elapsed.as_secs_f64(),
        secs / elapsed.as_secs_f64().max(1e-9)
    );
    // With `-o -` standard output carries the WAV and nothing else.
    if to_stdout {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
    let failed_swaps = summary.events.iter().any(|e| matches!(e, RenderEvent::SwapFailed { .. }));
    Ok(if failed_swaps { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
