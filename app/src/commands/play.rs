//! `clavm play PATCH.c`: live playback through cpal (ALSA, JACK or PipeWire
//! through either), installing every saved version of the file.
//!
//! The file is polled (mtime, size and content) every 50 ms rather than
//! watched with inotify: editors save by writing a new file and renaming it
//! over the old one, which a plain watch on the file loses, and a 20 Hz poll
//! of one file costs nothing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clavm_audio::live::LiveEvent;
use cpal::traits::{DeviceTrait, HostTrait};

use crate::live::{AudioOptions, LiveSession};

#[derive(clap::Args)]
pub struct PlayArgs {
    /// The patch to play; every saved version is installed.
    pub patch: PathBuf,
    #[command(flatten)]
    pub audio: AudioOptions,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// List the output devices of the chosen host and exit.
    #[arg(long)]
    pub list_devices: bool,
}

/// The file's identity for change detection.
fn fingerprint(path: &Path) -> Option<(std::time::SystemTime, u64, Vec<u8>)> {
    let meta = std::fs::metadata(path).ok()?;
    let bytes = std::fs::read(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), bytes))
}

pub fn run(a: PlayArgs) -> anyhow::Result<ExitCode> {
    if a.list_devices {
        for d in crate::live::host(a.audio.host)?.output_devices()? {
            println!("{}", d.name().unwrap_or_else(|_| "?".into()));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let session = LiveSession::start(&a.audio, false)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    }
    let engine = session.engine();
    let rate = session.rate;
    if !a.audio.no_latency_qos && !engine.has_latency_qos() {
        eprintln!("clavm: note: no access to /dev/cpu_dma_latency: worker wake-ups may be slower (run as root, or grant write access)");
    }
    eprintln!(
        "clavm: engine '{}' playing {} on {}; Ctrl-C to stop",
        session.name,
        a.patch.display(),
        session.output_name
    );

    let mut last = None;
    let started = Instant::now();
    let mut last_meter = Instant::now();
    while !stop.load(Ordering::SeqCst) && !session.stream_failed.load(Ordering::SeqCst) {
        if a.seconds.is_some_and(|s| started.elapsed().as_secs_f64() >= s) {
            break;
        }
        let now = fingerprint(&a.patch);
        if now.is_some() && now != last {
            match clavm_audio::PatchSource::from_file(&a.patch) {
                Ok(src) => {
                    engine.submit(src);
                }
                Err(e) => crate::commands::print_patch_error(&e),
            }
            last = now;
        }
        // Wait for one event at most 50 ms, then drain what is queued: a steady
        // stream of events must not keep this loop from checking the stop flag.
        if let Some(e) = engine.next_event(Duration::from_millis(50)) {
            print_event(&e, rate as f64);
            while let Some(e) = engine.next_event(Duration::ZERO) {
                print_event(&e, rate as f64);
            }
        }
        if last_meter.elapsed() >= Duration::from_secs(1) {
            let m = engine.meters();
            eprintln!(
                "clavm: DSP load {:.1}% avg, {:.1}% peak | xruns {}",
                m.load_avg() * 100.0,
                m.take_peak() * 100.0,
                session.xruns()
            );
            let inputs = &session.inputs;
            let (refused, dropped) = (inputs.stats.refused.load(Ordering::Relaxed), inputs.dropped());
            if refused + dropped > 0 {
                eprintln!("clavm: parameter messages so far: {refused} refused, {dropped} dropped (flood)");
            }
            last_meter = Instant::now();
        }
    }
    let failed = session.stream_failed.load(Ordering::SeqCst);
    session.shutdown();
    eprintln!("clavm: stopped");
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn print_event(e: &LiveEvent, sr: f64) {
    match e {
        LiveEvent::Rejected { .. } | LiveEvent::Compiled { .. } => eprintln!("{}", e.describe(sr)),
        _ => eprintln!("clavm: {}", e.describe(sr)),
    }
}
