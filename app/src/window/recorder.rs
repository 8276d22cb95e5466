//! Recording the window live, with its sound, without ever slowing the UI or
//! the audio: the UI thread hands each drawn frame and each tap block to a
//! writer thread through bounded channels and never waits (a full channel
//! drops the frame for the video, counted; the window still shows it). The
//! writer keeps a constant frame rate by repeating the last frame until the
//! next one's time (a still window draws nothing, the video still runs),
//! pipes frames to ffmpeg and writes the sound to a WAV; at stop it muxes the
//! two into the output, which appears whole or not at all. Picture and sound
//! share one timeline, the wall clock from the start: the video ends at the
//! instant of stop (not when a lagging writer gets there), and each sound
//! block is placed by its publish time and frame number ([`SoundTimeline`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clavm_audio::live::tap::monotonic_ns;
use clavm_audio::render::{WavFile, WavFormat};

use crate::picture::encoder::{self, FrameEncoder, PixelOrder};
use crate::picture::partial::PartialFile;

/// The video's frame rate.
pub const FPS: u32 = 60;

/// What the UI thread tells the frame writer.
enum ToWriter {
    /// A frame drawn at `at` (BGRA rows, the recording's size).
    Frame { at: Instant, pixels: Vec<u8> },
    /// The recording stopped at this instant: the video ends there, however
    /// far behind the writer (and ffmpeg) still is.
    End(Instant),
}

/// Tap blocks the sound channel holds: seconds of sound, so a writer slowed
/// by the video (frames are megabytes) never costs the recording its sound.
const AUDIO_BLOCKS: usize = 4096;

pub struct Recorder {
    path: PathBuf,
    size: (u32, u32),
    tx: Option<SyncSender<ToWriter>>,
    /// Sound goes through its own channel and writer: never behind frames.
    audio_tx: Option<SyncSender<Vec<f32>>>,
    /// Returns the sound frames it wrote.
    audio_writer: Option<std::thread::JoinHandle<anyhow::Result<u64>>>,
    pub dropped_audio: Arc<AtomicU64>,
    /// Interleaved channels, and where each tap block goes in the sound.
    channels: usize,
    timeline: SoundTimeline,
    /// Buffers coming back from the writer, to fill without allocating.
    spare: Receiver<Vec<u8>>,
    pub dropped: Arc<AtomicU64>,
    started: Instant,
    /// Returns the video frames it wrote.
    writer: Option<std::thread::JoinHandle<anyhow::Result<u64>>>,
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
        // Into the reserved file itself (by descriptor), as `clavm record` does:
        // no further temporary name that the next run after a kill could not recognise.
        let audio_file = audio.file().try_clone().context("cannot write the sound's temporary file")?;
        let wav = WavFile::create_in(audio_file, audio.work_path(), channels, rate, WavFormat::Float32)?;
        let container = encoder::Container::from_path(path).unwrap_or(encoder::Container::Mp4);
        let enc = FrameEncoder::start(video.file(), container, width, height, FPS, PixelOrder::Bgra)?;
        let (tx, rx) = sync_channel::<ToWriter>(8);
        let (audio_tx, audio_rx) = sync_channel::<Vec<f32>>(AUDIO_BLOCKS);
        let mut wav = wav;
        let frame_samples = channels.max(1) as u64;
        let audio_writer = std::thread::Builder::new().name("clavm-recorder-sound".into()).spawn(move || {
            let mut samples_written = 0u64;
            while let Ok(samples) = audio_rx.recv() {
                wav.write(&samples)?;
                samples_written += samples.len() as u64;
            }
            wav.finish()?;
            Ok(samples_written / frame_samples)
        })?;
        let (spare_tx, spare) = sync_channel::<Vec<u8>>(8);
        let dropped = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let writer = std::thread::Builder::new()
            .name("clavm-recorder".into())
            .spawn(move || write(rx, spare_tx, enc, started, (width, height)))?;

        Ok(Recorder {
            path: path.to_path_buf(),
            size: (width, height),
            tx: Some(tx),
            audio_tx: Some(audio_tx),
            audio_writer: Some(audio_writer),
            dropped_audio: Arc::new(AtomicU64::new(0)),
            channels: channels.max(1),
            timeline: SoundTimeline::new(rate, monotonic_ns()),
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
        if let Err(TrySendError::Full(_)) = tx.try_send(ToWriter::Frame { at: Instant::now(), pixels: buf }) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sound from the tap: a block starting at engine frame `frame`,
    /// published at `published_ns` (CLOCK_MONOTONIC); never waits. Its
    /// channel holds seconds of sound, so only a stalled disk drops a block
    /// (counted). Where the block goes is the [`SoundTimeline`]'s to say:
    /// what the tap dropped becomes silence and what came before the
    /// recording is left out, so the sound stays in step with the picture.
    pub fn audio(&mut self, frame: u64, published_ns: u64, samples: &[f32]) {
        let Some(tx) = &self.audio_tx else { return };
        let frames = (samples.len() / self.channels) as u64;
        let Placement { silence, skip } = self.timeline.place(frame, frames, published_ns);
        let mut silence = silence;
        while silence > 0 {
            // At most a second a message, so a long gap never makes one huge buffer.
            let n = silence.min(self.timeline.rate as u64).max(1);
            if let Err(TrySendError::Full(_)) = tx.try_send(vec![0.0; n as usize * self.channels]) {
                self.dropped_audio.fetch_add(1, Ordering::Relaxed);
            }
            silence -= n;
        }
        let rest = &samples[(skip as usize * self.channels).min(samples.len())..];
        if !rest.is_empty() {
            if let Err(TrySendError::Full(_)) = tx.try_send(rest.to_vec()) {
                self.dropped_audio.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Stops and finishes the file (waits for ffmpeg).
    pub fn stop(mut self) -> anyhow::Result<Take> {
        if let Some(tx) = self.tx.take() {
            // Waits for room: the writer may be a few frames behind.
            let _ = tx.send(ToWriter::End(Instant::now()));
        }
        drop(self.audio_tx.take());
        let writer = self.writer.take().context("already stopped")?;
        let audio_writer = self.audio_writer.take().context("already stopped")?;
        let video_done = writer.join().map_err(|_| anyhow::anyhow!("the recorder thread panicked"))?;
        let audio_done = audio_writer.join().map_err(|_| anyhow::anyhow!("the recorder's sound thread panicked"))?;
        let video_frames = video_done?;
        let sound_frames = audio_done?;
        let (output, video, audio) = self.files.take().context("already stopped")?;
        let container = encoder::Container::from_path(&self.path).unwrap_or(encoder::Container::Mp4);
        encoder::mux(video.work_path(), audio.work_path(), output.file(), container)?;
        let lost = self.dropped_audio.load(Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!("the recording lost {lost} blocks of sound (the disk could not keep up)");
        }
        output.commit()?;
        drop((video, audio));
        Ok(Take {
            path: self.path.clone(),
            video_secs: video_frames as f64 / f64::from(FPS),
            sound_secs: sound_frames as f64 / self.timeline.rate,
            dropped_frames: self.dropped.load(Ordering::Relaxed),
        })
    }
}

/// A finished recording, and how long its picture and sound run.
pub struct Take {
    pub path: PathBuf,
    pub video_secs: f64,
    pub sound_secs: f64,
    pub dropped_frames: u64,
}

impl std::fmt::Display for Take {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:.2} s of video, {:.2} s of sound", self.path.display(), self.video_secs, self.sound_secs)?;
        if self.dropped_frames > 0 {
            write!(f, ", {} frames dropped", self.dropped_frames)?;
        }
        write!(f, ")")
    }
}

/// The frame writer thread: frames at a constant rate, up to the instant
/// the recording stopped.
fn write(
    rx: Receiver<ToWriter>,
    spare: SyncSender<Vec<u8>>,
    mut enc: FrameEncoder,
    started: Instant,
    (w, h): (u32, u32),
) -> anyhow::Result<u64> {
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
            Ok(ToWriter::Frame { at, pixels }) => {
                fill(&mut enc, &last, at)?;
                let old = std::mem::replace(&mut last, pixels);
                let _ = spare.try_send(old);
            }
            // Nothing drawn (a still window): the video still runs. The
            // writer is not behind, or a frame would be waiting.
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => fill(&mut enc, &last, Instant::now())?,
            Ok(ToWriter::End(at)) => {
                fill(&mut enc, &last, at)?;
                break;
            }
            // The recorder was dropped without stop: end where we are.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                fill(&mut enc, &last, Instant::now())?;
                break;
            }
        }
    }
    enc.finish()?;
    Ok(written)
}

/// What to do with one tap block: write `silence` frames of silence first,
/// then the block without its first `skip` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Placement {
    silence: u64,
    skip: u64,
}

/// Places tap blocks on the recording's timeline, which starts with the
/// video. The engine's frame numbers say where a block goes relative to the
/// one before (blocks the tap dropped become silence of their length); the
/// time each block was published anchors the first block, and any block
/// after the engine restarted (frames went back) or the two clocks
/// disagreeing by more than [`SoundTimeline::DRIFT`] (a long stall), to the
/// wall clock the video runs on. Sound from before the recording started,
/// or overlapping what is already written, is left out.
#[derive(Debug)]
struct SoundTimeline {
    rate: f64,
    started_ns: u64,
    /// An engine frame and the recording frame it sits at.
    anchor: Option<(u64, i64)>,
    /// Frames written so far.
    written: i64,
}

impl SoundTimeline {
    /// How far the engine's frames may run from the wall clock before the
    /// block is re-anchored (sound cards drift by well under this an hour).
    const DRIFT: f64 = 0.25;

    fn new(rate: u32, started_ns: u64) -> SoundTimeline {
        SoundTimeline { rate: f64::from(rate.max(1)), started_ns, anchor: None, written: 0 }
    }

    fn place(&mut self, frame: u64, frames: u64, published_ns: u64) -> Placement {
        // The block was published when its last frame was done.
        let since_start = (published_ns as i128 - self.started_ns as i128) as f64 / 1e9;
        let by_clock = (since_start * self.rate).round() as i64 - frames as i64;
        let by_frames = self.anchor.filter(|&(f, _)| frame >= f).map(|(f, at)| at + (frame - f) as i64);
        let at = match by_frames {
            Some(at) if ((at - by_clock).abs() as f64) < Self::DRIFT * self.rate => at,
            _ => {
                self.anchor = Some((frame, by_clock));
                by_clock
            }
        };
        let silence = (at - self.written).max(0);
        let skip = (self.written - at).clamp(0, frames as i64);
        self.written = self.written.max(at + frames as i64);
        Placement { silence: silence as u64, skip: skip as u64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// A timeline at 48 kHz started at 1 s, and the publish time of a
    /// 480-frame block whose first frame sits `ms` into the recording.
    fn timeline() -> SoundTimeline {
        SoundTimeline::new(48_000, 1_000 * MS)
    }
    fn published(ms: u64) -> u64 {
        1_000 * MS + (ms + 10) * MS
    }

    #[test]
    fn the_first_block_starts_where_the_clock_says_and_the_gap_before_it_is_silence() {
        let mut t = timeline();
        // The tap's first block arrives 700 ms into the recording.
        assert_eq!(t.place(96_000, 480, published(700)), Placement { silence: 33_600, skip: 0 });
        // The next follows on by frame number, whenever it is read.
        assert_eq!(t.place(96_480, 480, published(712)), Placement { silence: 0, skip: 0 });
    }

    #[test]
    fn blocks_the_tap_dropped_become_silence_of_their_length() {
        let mut t = timeline();
        t.place(0, 480, published(0));
        // Three blocks lost between the first and this one.
        assert_eq!(t.place(4 * 480, 480, published(40)), Placement { silence: 3 * 480, skip: 0 });
    }

    #[test]
    fn a_stall_of_seconds_is_silence_of_its_length_too() {
        let mut t = timeline();
        t.place(0, 480, published(0));
        // 3 s of blocks lost: longer than the one-second cap the old code had.
        assert_eq!(t.place(480 + 144_000, 480, published(3_010)), Placement { silence: 144_000, skip: 0 });
    }

    #[test]
    fn sound_from_before_the_recording_started_is_left_out() {
        let mut t = timeline();
        // A block whose first 240 frames were played before the start.
        let p = t.place(0, 480, 1_000 * MS + 5 * MS);
        assert_eq!(p, Placement { silence: 0, skip: 240 });
        assert_eq!(t.place(480, 480, 1_000 * MS + 15 * MS), Placement { silence: 0, skip: 0 });
    }

    #[test]
    fn an_engine_restart_is_anchored_anew_without_overlapping_what_was_written() {
        let mut t = timeline();
        t.place(10_000, 480, published(100));
        t.place(10_480, 480, published(110));
        // The engine restarted: its frames start again from 0, 500 ms after the
        // last block ended.
        assert_eq!(t.place(0, 480, published(620)), Placement { silence: 24_000, skip: 0 });
        // A restart reported a little early overlaps: the overlap is cut, not written twice.
        let mut t = timeline();
        t.place(10_000, 480, published(100));
        let p = t.place(0, 480, published(105));
        assert_eq!(p, Placement { silence: 0, skip: 240 });
    }

    #[test]
    fn frames_and_clock_that_disagree_by_seconds_follow_the_clock() {
        let mut t = timeline();
        t.place(0, 480, published(0));
        // Frame numbers say 10 ms later, the clock says 2 s: the clock wins.
        assert_eq!(t.place(480, 480, published(2_000)), Placement { silence: 96_000 - 480, skip: 0 });
    }
}
