//! `clavm play PATCH.c`: live playback (JACK natively; PipeWire, Pulse or
//! ALSA through cpal), installing every saved version of the file; with
//! `--inputs N`, N live input channels for `_in()`.
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
use cpal::traits::HostTrait;

use crate::live::{AudioOptions, LiveSession};

#[derive(clap::Args)]
pub struct PlayArgs {
    /// The patch to play; every saved version is installed.
    pub patch: PathBuf,
    #[command(flatten)]
    pub audio: AudioOptions,
    /// Stop after this many seconds (default: until Ctrl-C; at most a year).
    #[arg(long, value_parser = crate::args::play_seconds, allow_negative_numbers = true)]
    pub seconds: Option<f64>,
    /// List the output devices of the chosen host and exit (`clavm devices` tells more).
    #[arg(long)]
    pub list_devices: bool,
}

/// The file's identity for change detection.
fn fingerprint(path: &Path) -> Option<(std::time::SystemTime, u64, Vec<u8>)> {
    let meta = std::fs::metadata(path).ok()?;
    let bytes = std::fs::read(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), bytes))
}

/// Checks the audio options' numbers before any device is opened (their
/// declarations are shared with the window; a value out of range is a usage
/// error naming the allowed range).
fn check_audio_options(o: &AudioOptions) -> anyhow::Result<()> {
    if let Some(rate) = o.rate {
        if !crate::args::RATES.contains(&u64::from(rate)) {
            let (lo, hi) = (crate::args::RATES.start(), crate::args::RATES.end());
            return Err(crate::usage!("--rate {rate} is out of range (allowed: {lo}..={hi} Hz)"));
        }
    }
    if let Some(buffer) = o.buffer {
        if !(16..=8192).contains(&buffer) {
            return Err(crate::usage!("--buffer {buffer} is out of range (allowed: 16..=8192 frames)"));
        }
    }
    let max_channels = clavm_audio::builtins::api::MAX_CHANNELS;
    if !(1..=max_channels).contains(&usize::from(o.channels)) {
        return Err(crate::usage!("--channels {} is out of range (allowed: 1..={max_channels})", o.channels));
    }
    if crate::args::crossfade_ms(&o.crossfade.to_string()).is_err() {
        return Err(crate::usage!("--crossfade {} is out of range (allowed: 0..=10000 ms)", o.crossfade));
    }
    if o.engine.as_deref().is_some_and(str::is_empty) {
        return Err(crate::usage!("--engine: the name is empty"));
    }
    Ok(())
}

pub fn run(a: PlayArgs) -> anyhow::Result<ExitCode> {
    check_audio_options(&a.audio)?;
    if a.list_devices {
        let h = crate::live::hosts::resolve(a.audio.host)?;
        for d in crate::live::hosts::cpal_host(h)?.output_devices()? {
            println!("{}", crate::live::hosts::device_name(&d));
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
            let clock = match m.clock.read() {
                Some(c) if session.link => format!(
                    " | {:.1} BPM, bar {} | Link: {} peer{}",
                    c.bpm,
                    (c.beat / session.meter as f64).floor() as i64 + 1,
                    c.peers,
                    if c.peers == 1 { "" } else { "s" }
                ),
                Some(c) => format!(" | {:.1} BPM, bar {}", c.bpm, (c.beat / session.meter as f64).floor() as i64 + 1),
                None => String::new(),
            };
            eprintln!(
                "clavm: DSP load {:.1}% avg, {:.1}% peak | xruns {}{clock}",
                m.load_avg() * 100.0,
                m.take_peak() * 100.0,
                session.xruns()
            );
            let inputs = &session.inputs;
            let (refused, dropped) = (inputs.stats.refused.load(Ordering::Relaxed), inputs.dropped());
            if refused + dropped > 0 {
                eprintln!("clavm: parameter messages so far: {refused} refused, {dropped} dropped (flood)");
            }
            let short = session.input_underruns.load(Ordering::Relaxed);
            if short > 0 {
                eprintln!("clavm: input: {short} blocks found the capture device behind (played as silence)");
            }
            // Notes the audio thread had no room for yet (its ring is bounded): counted, never queued.
            let notes_dropped = engine.params().notes_dropped();
            if notes_dropped > 0 {
                eprintln!("clavm: MIDI note events so far: {notes_dropped} dropped (flood)");
            }
            last_meter = Instant::now();
        }
    }
    let failed = session.stream_failed.load(Ordering::SeqCst);
    let summary = format!(
        "clavm: stopped after {:.1} s: {} host xruns, {} engine xruns, output latency {:.2} ms as the host reports it (mean)",
        started.elapsed().as_secs_f64(),
        session.backend_xruns.load(Ordering::Relaxed),
        session.engine().meters().xruns.load(Ordering::Relaxed),
        session.output_latency.mean().as_secs_f64() * 1000.0
    );
    session.shutdown();
    eprintln!("{summary}");
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn print_event(e: &LiveEvent, sr: f64) {
    match e {
        LiveEvent::Rejected { .. } | LiveEvent::Compiled { .. } => eprintln!("{}", e.describe(sr)),
        _ => eprintln!("clavm: {}", e.describe(sr)),
    }
}
