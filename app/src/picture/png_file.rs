//! Writing a frame as a PNG: to a regular file atomically (a temporary file
//! beside it, created exclusively, renamed into place), or streamed to a
//! FIFO, a character device or `-` (stdout): a PNG is written front to back,
//! so a stream loses nothing. See `clavm_audio::render::output`.

use std::fs::File;
use std::path::Path;

use anyhow::Context;
use clavm_audio::render::output::{NodeKind, Output, Streaming};

/// An output reserved before any rendering: an unwritable path fails first.
pub struct PngFile {
    output: Output,
    file: File,
}

impl PngFile {
    /// Whether the PNG goes to standard output (which then carries nothing else).
    pub fn is_stdout(&self) -> bool {
        self.output.stream_kind() == Some(NodeKind::Stdout)
    }
}

/// Opens the output first, so an unwritable path fails before any rendering;
/// an interrupt or a crash from now on removes the temporary file.
pub fn reserve(path: &Path) -> anyhow::Result<PngFile> {
    let (output, file) = Output::create(path, "partial", Streaming::Allowed)?;
    if let Some(t) = output.temporary_path() {
        crate::crash::remove_on_crash(t);
    }
    Ok(PngFile { output, file })
}

/// Encodes `rgba` (sRGB, tightly packed rows) into the reserved file and
/// moves it into place.
pub fn write(out: PngFile, width: u32, height: u32, rgba: &[u8]) -> anyhow::Result<()> {
    let PngFile { output, file } = out;
    let what = || format!("cannot write {}", output.path().display());
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_source_srgb(png::SrgbRenderingIntent::Perceptual);
    let mut w = enc.write_header().with_context(what)?;
    w.write_image_data(rgba).with_context(what)?;
    w.finish().with_context(what)?;
    let temporary = output.temporary_path().map(Path::to_path_buf);
    output.commit()?;
    if let Some(t) = temporary {
        crate::crash::forget_file(&t);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_png_lands_whole_and_a_fifo_stays_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.png");
        let rgba = [255u8; 4 * 2 * 2];
        write(reserve(&out).unwrap(), 2, 2, &rgba).unwrap();
        let decoder = png::Decoder::new(std::io::BufReader::new(File::open(&out).unwrap()));
        assert_eq!(decoder.read_info().unwrap().info().width, 2);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");

        let fifo = dir.path().join("fifo");
        nix_mkfifo(&fifo);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write(reserve(&fifo).unwrap(), 2, 2, &rgba).unwrap();
        let bytes = reader.join().unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }

    fn nix_mkfifo(p: &Path) {
        let status = std::process::Command::new("mkfifo").arg(p).status().unwrap();
        assert!(status.success());
    }
}
