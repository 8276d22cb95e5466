//! `clavm tap -o FILE.wav`: record what a running engine plays, from its audio
//! tap (the shared-memory channel the scope will read), without disturbing it.
//! With `--inputs`, the engine's live inputs are written too, as channels
//! after the outputs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clavm_audio::live::tap::{decode_tap_with_inputs, open_tap};
use clavm_audio::render::{WavFile, WavFormat};
use clavm_channel::{RecvError, Wait};

#[derive(clap::Args)]
pub struct TapArgs {
    /// The WAV file to write (32-bit float).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Seconds to record (up to a day).
    #[arg(long, default_value_t = 5.0, value_parser = crate::args::tap_seconds)]
    pub seconds: f64,
    /// The engine (default: $CLAVM_ENGINE or "default").
    #[arg(long)]
    pub engine: Option<String>,
    /// Also record the engine's live inputs (`play --inputs N`), as N channels after the outputs.
    #[arg(long)]
    pub inputs: bool,
}

pub fn run(a: TapArgs) -> anyhow::Result<ExitCode> {
    let engine = crate::remote::engine_name(a.engine);
    let mut rx = open_tap(&engine).with_context(|| format!("opening the tap of engine '{engine}'"))?;
    let dropped_before = rx.stats().dropped_full;
    let mut writer: Option<WavFile> = None;
    let (mut frames, mut wanted, mut rate, mut channels) = (0u64, u64::MAX, 0.0, 0u32);
    let mut next_frame = None;
    let mut gaps = 0u64;
    let mut samples = Vec::new();
    let mut inputs = Vec::new();
    let mut frame_buf = Vec::new();
    let t0 = Instant::now();
    while frames < wanted {
        if t0.elapsed() > Duration::from_secs_f64(a.seconds + 5.0) {
            if writer.is_none() {
                anyhow::bail!("engine '{engine}' sent no audio on its tap in {:.1} s", a.seconds + 5.0);
            }
            anyhow::bail!("the engine stopped playing ({frames} of {wanted} frames recorded)");
        }
        let m = match rx.recv_bytes(Wait::Sleep, Duration::from_millis(500)) {
            Ok(m) => m,
            Err(RecvError::Broken) => anyhow::bail!("the tap of engine '{engine}' was truncated under this reader"),
            // Garbage reset (a gap, counted below) or nothing yet.
            Err(_) => continue,
        };
        let h = decode_tap_with_inputs(&m, &mut samples, &mut inputs)
            .map_err(|e| anyhow::anyhow!("engine '{engine}': {e}"))?;
        drop(m);
        // The file's channels: the outputs, then (with --inputs) the inputs.
        let width = h.channels + if a.inputs { h.inputs } else { 0 };
        if a.inputs && h.inputs > 0 {
            frame_buf.clear();
            let (o, i) = (h.channels as usize, h.inputs as usize);
            for (out, inp) in samples.chunks_exact(o).zip(inputs.chunks_exact(i)) {
                frame_buf.extend_from_slice(out);
                frame_buf.extend_from_slice(inp);
            }
            std::mem::swap(&mut samples, &mut frame_buf);
        }
        if writer.as_ref().is_some_and(|_| h.sample_rate != rate || width != channels) {
            anyhow::bail!(
                "engine '{engine}': the tap changed from {channels} channels at {rate} Hz to {width} at {} Hz mid-recording",
                h.sample_rate
            );
        }
        if writer.is_none() {
            if a.inputs && h.inputs == 0 {
                eprintln!("clavm: note: engine '{engine}' has no live inputs (play --inputs N): recording its outputs");
            }
            channels = width;
            rate = h.sample_rate;
            wanted = (a.seconds * rate).round() as u64;
            let file = WavFile::create(&a.output, width as usize, rate as u32, WavFormat::Float32)
                .with_context(|| format!("creating {}", a.output.display()))?;
            writer = Some(file);
        }
        if next_frame.is_some_and(|n: u64| n != h.frame) {
            gaps += 1;
        }
        next_frame = Some(h.frame.wrapping_add(h.frames as u64));
        let Some(w) = writer.as_mut() else { continue };
        let take = (h.frames as u64).min(wanted - frames) as usize * width as usize;
        w.write(&samples[..take])?;
        frames += (take / width.max(1) as usize) as u64;
    }
    let Some(writer) = writer else { anyhow::bail!("the engine sent nothing to record") };
    writer.finish()?;
    let dropped = rx.stats().dropped_full - dropped_before;
    eprintln!(
        "clavm: recorded {:.2} s at {rate} Hz to {}{}",
        frames as f64 / rate,
        a.output.display(),
        if gaps > 0 {
            format!(" ({gaps} gaps: {dropped} blocks dropped while this reader was late)")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
