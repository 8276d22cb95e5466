//! Video through ffmpeg, run as a separate process: raw RGBA frames go to
//! its stdin and it encodes H.264 into a temporary file; when the frames
//! are done, a second short run muxes them with the WAV of the same render
//! (the audio is re-encoded to AAC, the video copied). Two steps instead of
//! two pipes into one ffmpeg: nothing can deadlock, and the audio is
//! written by the same block loop that drives the frames.
//!
//! ffmpeg writes its files through a descriptor we opened (our temporary
//! file as its stdout, named `/dev/stdout`, which reopens that same file,
//! seekable), never by a name another user could swap for a link.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{bail, Context};

/// The `ffmpeg` to run: `$CLAVM_FFMPEG` or `ffmpeg` on the PATH.
pub fn ffmpeg_program() -> PathBuf {
    std::env::var_os("CLAVM_FFMPEG").map(PathBuf::from).unwrap_or_else(|| "ffmpeg".into())
}

/// Fails with a clear message if ffmpeg cannot be run at all.
pub fn check_ffmpeg() -> anyhow::Result<()> {
    let program = ffmpeg_program();
    match Command::new(&program).arg("-version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => bail!("`{} -version` failed ({s}): is ffmpeg installed correctly?", program.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "ffmpeg is needed to write video and was not found (looked for `{}`). \
             Install it (Debian: apt install ffmpeg) or set CLAVM_FFMPEG to its path",
            program.display()
        ),
        Err(e) => bail!("cannot run {}: {e}", program.display()),
    }
}

/// The container of a video, from the output's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    Mp4,
    Mov,
    Matroska,
}

impl Container {
    /// `.mp4`, `.mov` or `.mkv` (any case); None for anything else.
    pub fn from_path(path: &Path) -> Option<Container> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "mp4" => Some(Container::Mp4),
            "mov" => Some(Container::Mov),
            "mkv" => Some(Container::Matroska),
            _ => None,
        }
    }

    /// ffmpeg's name for it (`-f`): the output name says nothing.
    fn ffmpeg_name(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::Mov => "mov",
            Container::Matroska => "matroska",
        }
    }
}

/// ffmpeg's output: its stdout, which is the file we opened.
const THROUGH_STDOUT: &str = "/dev/stdout";

/// The byte order of the raw frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelOrder {
    Rgba,
    /// A window's shm frames (Wayland's XRGB8888 in memory).
    Bgra,
}

/// An ffmpeg encoding raw frames into a video-only file.
pub struct FrameEncoder {
    child: Child,
    stdin: Option<ChildStdin>,
    frame_bytes: usize,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl FrameEncoder {
    /// Starts encoding `width`x`height` RGBA frames at `fps` into `video`
    /// (an open file, written through its descriptor).
    pub fn start(
        video: &std::fs::File,
        container: Container,
        width: u32,
        height: u32,
        fps: u32,
        order: PixelOrder,
    ) -> anyhow::Result<FrameEncoder> {
        let pix_fmt = match order {
            PixelOrder::Rgba => "rgba",
            PixelOrder::Bgra => "bgra",
        };
        let mut child = Command::new(ffmpeg_program())
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", &format!("{width}x{height}")])
            .args(["-framerate", &fps.to_string(), "-i", "pipe:0"])
            // yuv420p plays everywhere. superfast: on two cores at 720p60
            // veryfast made the encoder the bottleneck (1.2x real time against
            // 1.4x), ultrafast is no faster here and its files are 50% larger.
            .args(["-an", "-c:v", "libx264", "-preset", "superfast", "-crf", "18", "-pix_fmt", "yuv420p"])
            .args(["-threads", "2"])
            .args(["-f", container.ffmpeg_name(), THROUGH_STDOUT])
            .stdin(Stdio::piped())
            .stdout(video.try_clone().context("cannot hand the video file to ffmpeg")?)
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start ffmpeg")?;
        crate::crash::kill_on_crash(child.id());
        let stdin = child.stdin.take();
        let stderr = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = std::io::Read::read_to_string(&mut e, &mut s);
                s
            })
        });
        Ok(FrameEncoder { child, stdin, frame_bytes: width as usize * height as usize * 4, stderr })
    }

    pub fn push(&mut self, rgba: &[u8]) -> anyhow::Result<()> {
        debug_assert_eq!(rgba.len(), self.frame_bytes);
        let stdin = self.stdin.as_mut().context("encoder already finished")?;
        if let Err(e) = stdin.write_all(rgba) {
            self.stdin = None;
            let status = self.child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
            crate::crash::forget_child();
            let why = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
            let why = if why.trim().is_empty() { String::new() } else { format!(": {}", why.trim()) };
            bail!("ffmpeg stopped taking frames ({e}); it {status}{why}");
        }
        Ok(())
    }

    /// Closes the stream and waits for ffmpeg to write the file.
    pub fn finish(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        let status = self.child.wait().context("waiting for ffmpeg");
        crate::crash::forget_child();
        let status = status?;
        let why = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        if !status.success() {
            bail!("ffmpeg failed ({status}): {}", why.trim());
        }
        Ok(())
    }
}

impl Drop for FrameEncoder {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            // Unfinished (an error elsewhere): stop ffmpeg, the caller removes the file.
            drop(self.stdin.take());
            let _ = self.child.kill();
            let _ = self.child.wait();
            crate::crash::forget_child();
        }
    }
}

/// Puts `video` (copied) and `audio` (to AAC) into `output` (an open file,
/// written through its descriptor).
pub fn mux(video: &Path, audio: &Path, output: &std::fs::File, container: Container) -> anyhow::Result<()> {
    let out = Command::new(ffmpeg_program())
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
        .arg(video)
        .arg("-i")
        .arg(audio)
        .args(["-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", "192k"])
        .args(["-movflags", "+faststart"])
        .args(["-f", container.ffmpeg_name(), THROUGH_STDOUT])
        .stdin(Stdio::null())
        .stdout(output.try_clone().context("cannot hand the video file to ffmpeg")?)
        .output()
        .context("cannot start ffmpeg")?;
    if !out.status.success() {
        bail!("ffmpeg could not mux the audio ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
