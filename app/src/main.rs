//! `clavm`: live-code C, hear it on every save.

mod args;
mod bench;
mod commands;
mod crash;
mod faust;
mod live;
mod picture;
mod remote;
mod ui;
mod window;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// In debug builds, the engine's block processing aborts if it allocates.
#[cfg(debug_assertions)]
#[global_allocator]
static ALLOC_GUARD: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

#[derive(Parser)]
#[command(
    name = "clavm",
    version,
    about = "Live-code C, hear it on every save.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Patch to open (default: the built-in default patch).
    patch: Option<std::path::PathBuf>,
    #[command(flatten)]
    main: commands::main_job::MainArgs,
    #[command(subcommand)]
    command: Option<Command>,
    /// More log output (-v, -vv); or set RUST_LOG.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Render a patch offline to a WAV file, deterministically.
    Render(commands::render::RenderArgs),
    /// Render what the window would show at time T of a patch to a PNG (offline, headless).
    Snapshot(commands::snapshot::SnapshotArgs),
    /// Record a video of the visuals with the patch's sound (offline, via ffmpeg).
    Record(commands::record::RecordArgs),
    /// List the Vulkan devices and which one the renderer would use.
    Gpus,
    /// List the audio hosts (PipeWire, PulseAudio, JACK, ALSA), which run, their devices, rates and block sizes.
    Devices,
    /// Play a patch live and install every saved version (workers, hot swap, fault recovery).
    Play(commands::play::PlayArgs),
    /// Compile a patch without playing it; print diagnostics as FILE:LINE:COL.
    Check(commands::check::CheckArgs),
    /// Measure compile times and DSP cost (TinyCC vs gcc -O2) of the example patches.
    Bench(bench::BenchArgs),
    /// Send a patch to a running engine (`clavm play`) and print its reply.
    Submit(commands::submit::SubmitArgs),
    /// Set a live parameter (_p, _i or _cc) in a running engine.
    Param(commands::param::ParamArgs),
    /// Change a running engine's tempo (_bpm, _beat, quantised swaps).
    Tempo(commands::tempo::TempoArgs),
    /// Record what a running engine plays (from its audio tap) to a WAV file.
    Tap(commands::tap::TapArgs),
    /// Interval bars: show or check a tree file, or simulate the bars' protocol under random plugging.
    Bars(commands::bars::BarsArgs),
    /// Internal: a live engine's worker process (started by the engine, not by hand).
    #[command(name = "__worker", hide = true)]
    Worker {
        slot: usize,
        parent: u32,
        /// Only for measuring the sandbox's cost (`clavm bench --live`).
        #[arg(long)]
        unsandboxed: bool,
    },
    /// Internal: an offline render's sandboxed process (started by render, snapshot, record).
    #[command(name = "__offline", hide = true)]
    Offline { parent: u32 },
    /// The far side of `clavm bench --transport`'s round trips.
    #[command(name = "__echo", hide = true)]
    Echo { engine: String, style: String },
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    // symphonia logs what it met in a bad sound file as errors of its own;
    // the sample loader says it in one line naming the file. The pulseaudio
    // client logs its own normal disconnection at exit as an error. libjack
    // logs as errors what it tolerates (an mlock an unprivileged user may not
    // do); a JACK failure that matters is clavm's own one line. `-v` shows it.
    let default = match verbose {
        0 => "warn,symphonia=off,pulseaudio=off,jack=off",
        1 => "info,symphonia=off,pulseaudio=off",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Worker { slot, parent, unsandboxed }) = cli.command {
        // Before anything else: no logging set-up, no threads.
        clavm_audio::live::worker::main(slot, parent, !unsandboxed);
    }
    if let Some(Command::Offline { parent }) = cli.command {
        // Likewise: the sandbox must be entered by a single-threaded process.
        clavm_audio::render::child::main(parent);
    }
    if let Some(Command::Echo { engine, style }) = &cli.command {
        bench::transport::echo(engine, style);
    }
    init_logging(cli.verbose);
    let result = match cli.command {
        Some(Command::Render(a)) => commands::render::run(a),
        Some(Command::Snapshot(a)) => commands::snapshot::run(a),
        Some(Command::Record(a)) => commands::record::run(a),
        Some(Command::Gpus) => commands::gpus::run(),
        Some(Command::Devices) => commands::devices::run(),
        Some(Command::Check(a)) => commands::check::run(a),
        Some(Command::Play(a)) => commands::play::run(a),
        Some(Command::Bench(a)) => bench::run(a),
        Some(Command::Submit(a)) => commands::submit::run(a),
        Some(Command::Param(a)) => commands::param::run(a),
        Some(Command::Tempo(a)) => commands::tempo::run(a),
        Some(Command::Tap(a)) => commands::tap::run(a),
        Some(Command::Bars(a)) => commands::bars::run(a),
        Some(Command::Worker { .. }) | Some(Command::Offline { .. }) | Some(Command::Echo { .. }) => {
            unreachable!("handled above")
        }
        None => commands::main_job::run(cli.patch, cli.main),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line: the chain of causes, each said once.
            let text = format!("{e:#}");
            let text: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            eprintln!("clavm: error: {}", text.join("; "));
            if e.downcast_ref::<args::Usage>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
