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

/// A frame drawn at `at` (BGRA rows, the recording's size).
struct Frame {
    at: Instant,
    pixels: Vec<u8>,
}

/// Tap blocks the sound channel holds: seconds of sound, so a writer slowed
/// by the video (frames are megabytes) never costs the recording its sound.
const AUDIO_BLOCKS: usize = 4096;

pub struct Recorder {
    path: PathBuf,
    size: (u32, u32),
    tx: Option<SyncSender<Frame>>,
    /// Sound goes through its own channel and writer: never behind frames.
    audio_tx: Option<SyncSender<Vec<f32>>>,
    audio_writer: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
    pub dropped_audio: Arc<AtomicU64>,
    /// Interleaved channels, and the engine frame the next tap block should
    /// start at: blocks the tap dropped (a late reader) become silence of
    /// their length, so the sound stays in step with the picture.
    channels: usize,
    next_frame: Option<u64>,
    /// Buffers coming back from the writer, to fill without allocating.
    spare: Receiver<Vec<u8>>,
    pub dropped: Arc<AtomicU64>,
    started: Instant,
    writer: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
    /// The output, video and sound files, until muxed at stop.
    files: Option<(PartialFile, PartialFile, PartialFile)>,
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
        let (tx, rx) = sync_channel::<Frame>(8);
        let (audio_tx, audio_rx) = sync_channel::<Vec<f32>>(AUDIO_BLOCKS);
        let mut wav = wav;
        let audio_writer = std::thread::Builder::new().name("clavm-recorder-sound".into()).spawn(move || {
            while let Ok(samples) = audio_rx.recv() {
                wav.write(&samples)?;
            }
            wav.finish()?;
            Ok(())
        })?;
        let (spare_tx, spare) = sync_channel::<Vec<u8>>(8);
        let dropped = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let writer = std::thread::Builder::new().name("clavm-recorder".into()).spawn(move || {
            write(rx, spare_tx, enc, started, (width, height))?;
            Ok(())
        })?;

        Ok(Recorder {
            path: path.to_path_buf(),
            size: (width, height),
            tx: Some(tx),
            audio_tx: Some(audio_tx),
            audio_writer: Some(audio_writer),
            dropped_audio: Arc::new(AtomicU64::new(0)),
            channels: channels.max(1),
            next_frame: None,
            spare,
            dropped,
            started,
            writer: Some(writer),
            files: Some((output, video, audio)),
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
        if let Err(TrySendError::Full(_)) = tx.try_send(Frame { at: Instant::now(), pixels: buf }) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sound from the tap, a block starting at engine frame `frame`; never
    /// waits. Its channel holds seconds of sound, so only a stalled disk
    /// drops a block (counted); blocks the tap itself dropped are filled
    /// with silence (at most a second at a time: more is an engine restart).
    pub fn audio(&mut self, frame: u64, samples: &[f32]) {
        let Some(tx) = &self.audio_tx else { return };
        const MAX_GAP: u64 = 48_000;
        if let Some(gap) = self.next_frame.map(|n| frame.saturating_sub(n)).filter(|&g| g > 0 && g <= MAX_GAP) {
            let _ = tx.try_send(vec![0.0; gap as usize * self.channels]);
        }
        self.next_frame = Some(frame + (samples.len() / self.channels) as u64);
        if let Err(TrySendError::Full(_)) = tx.try_send(samples.to_vec()) {
            self.dropped_audio.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Stops and finishes the file (waits for ffmpeg).
    pub fn stop(mut self) -> anyhow::Result<PathBuf> {
        drop(self.tx.take());
        drop(self.audio_tx.take());
        let writer = self.writer.take().context("already stopped")?;
        let audio_writer = self.audio_writer.take().context("already stopped")?;
        let video_done = writer.join().map_err(|_| anyhow::anyhow!("the recorder thread panicked"))?;
        let audio_done = audio_writer.join().map_err(|_| anyhow::anyhow!("the recorder's sound thread panicked"))?;
        video_done?;
        audio_done?;
        let (output, video, audio) = self.files.take().context("already stopped")?;
        encoder::mux(video.work_path(), audio.work_path(), output.work_path())?;
        let lost = self.dropped_audio.load(Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!("the recording lost {lost} blocks of sound (the disk could not keep up)");
        }
        output.commit()?;
        drop((video, audio));
        Ok(self.path.clone())
    }
}

/// The frame writer thread: frames at a constant rate.
fn write(
    rx: Receiver<Frame>,
    spare: SyncSender<Vec<u8>>,
    mut enc: FrameEncoder,
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
            Ok(Frame { at, pixels }) => {
                fill(&mut enc, &last, at)?;
                let old = std::mem::replace(&mut last, pixels);
                let _ = spare.try_send(old);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => fill(&mut enc, &last, Instant::now())?,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    fill(&mut enc, &last, Instant::now())?;
    enc.finish()?;
    Ok(())
}
