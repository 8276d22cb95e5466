//! Recording the window live, with its sound, without ever slowing the UI or
//! the audio: the UI thread hands each drawn frame and each tap block to a
//! writer thread through bounded channels and never waits (a full channel
//! drops the frame for the video, counted; the window still shows it). The
//! writer keeps a constant frame rate by repeating the last frame until the
//! next one's time (a still window draws nothing, the video still runs),
//! pipes frames to ffmpeg and writes the sound to a WAV; at stop it muxes the
//! two into the output, which appears whole or not at all.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clavm_audio::render::{WavFile, WavFormat};

use crate::picture::encoder::{self, FrameEncoder, PixelOrder};
use crate::picture::partial::PartialFile;

/// The video's frame rate.
pub const FPS: u32 = 60;

enum Msg {
    /// A frame drawn at `at` (BGRA rows, the recording's size).
    Frame { at: Instant, pixels: Vec<u8> },
    /// Sound, interleaved.
    Audio(Vec<f32>),
}

pub struct Recorder {
    path: PathBuf,
    size: (u32, u32),
    tx: Option<SyncSender<Msg>>,
    /// Buffers coming back from the writer, to fill without allocating.
    spare: Receiver<Vec<u8>>,
    pub dropped: Arc<AtomicU64>,
    started: Instant,
    writer: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Recorder {
    /// Starts recording `width`x`height` (even) frames and the sound into `path`.
    pub fn start(path: &Path, width: u32, height: u32, rate: u32, channels: usize) -> anyhow::Result<Recorder> {
        encoder::check_ffmpeg()?;
        let (width, height) = (width & !1, height & !1);
        anyhow::ensure!(width >= 2 && height >= 2, "the window is too small to record");
        let output = PartialFile::new(path, "partial")?;
        let video = PartialFile::new(path, "video")?;
        let audio = PartialFile::new(&path.with_extension("wav"), "audio")?;
        let wav = WavFile::create(audio.work_path(), channels, rate, WavFormat::Float32)?;
        let enc = FrameEncoder::start(video.work_path(), width, height, FPS, PixelOrder::Bgra)?;
        let (tx, rx) = sync_channel::<Msg>(8);
        let (spare_tx, spare) = sync_channel::<Vec<u8>>(8);
        let dropped = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let writer = std::thread::Builder::new().name("clavm-recorder".into()).spawn(move || {
            write(rx, spare_tx, enc, wav, started, (width, height))?;
            encoder::mux(video.work_path(), audio.work_path(), output.work_path())?;
            output.commit()
        })?;
        Ok(Recorder {
            path: path.to_path_buf(),
            size: (width, height),
            tx: Some(tx),
            spare,
            dropped,
            started,
            writer: Some(writer),
        })
    }

    /// The file being written and how long so far, for the status bar.
    pub fn describe(&self) -> String {
        let s = self.started.elapsed().as_secs();
        let dropped = self.dropped.load(Ordering::Relaxed);
        format!(
            "{} {}:{:02}{}",
            self.path.display(),
            s / 60,
            s % 60,
            if dropped > 0 { format!(" ({dropped} frames dropped)") } else { String::new() }
        )
    }

    /// A drawn frame (`src_w`x`src_h` BGRA rows): cropped or padded to the
    /// recording's size and handed to the writer; never waits.
    pub fn frame(&mut self, pixels: &[u8], src_w: u32, src_h: u32) {
        let Some(tx) = &self.tx else { return };
        let (w, h) = self.size;
        let mut buf = self.spare.try_recv().unwrap_or_default();
        buf.resize((w * h * 4) as usize, 0);
        let row = (w.min(src_w) * 4) as usize;
        for y in 0..h.min(src_h) as usize {
            let from = y * src_w as usize * 4;
            let to = y * w as usize * 4;
            buf[to..to + row].copy_from_slice(&pixels[from..from + row]);
        }
        if let Err(TrySendError::Full(_)) = tx.try_send(Msg::Frame { at: Instant::now(), pixels: buf }) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sound from the tap; never waits (a full channel drops the block,
    /// which a slow disk would otherwise turn into a stall).
    pub fn audio(&mut self, samples: &[f32]) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(Msg::Audio(samples.to_vec()));
        }
    }

    /// Stops and finishes the file (waits for ffmpeg).
    pub fn stop(mut self) -> anyhow::Result<PathBuf> {
        drop(self.tx.take());
        let writer = self.writer.take().context("already stopped")?;
        writer.join().map_err(|_| anyhow::anyhow!("the recorder thread panicked"))??;
        Ok(self.path.clone())
    }
}

/// The writer thread: frames at a constant rate, sound as it comes.
fn write(
    rx: Receiver<Msg>,
    spare: SyncSender<Vec<u8>>,
    mut enc: FrameEncoder,
    mut wav: WavFile,
    started: Instant,
    (w, h): (u32, u32),
) -> anyhow::Result<()> {
    let frame_time = Duration::from_secs_f64(1.0 / FPS as f64);
    let mut last: Vec<u8> = vec![0; (w * h * 4) as usize];
    let mut written = 0u64;
    // Repeats the last frame up to time `until`.
    let mut fill = |enc: &mut FrameEncoder, last: &[u8], until: Instant| -> anyhow::Result<()> {
        while started + frame_time.mul_f64(written as f64) <= until {
            enc.push(last)?;
            written += 1;
        }
        Ok(())
    };
    loop {
        match rx.recv_timeout(frame_time * 4) {
            Ok(Msg::Frame { at, pixels }) => {
                fill(&mut enc, &last, at)?;
                let old = std::mem::replace(&mut last, pixels);
                let _ = spare.try_send(old);
            }
            Ok(Msg::Audio(samples)) => wav.write(&samples)?,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => fill(&mut enc, &last, Instant::now())?,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    fill(&mut enc, &last, Instant::now())?;
    enc.finish()?;
    wav.finish()?;
    Ok(())
}
