//! Writing a frame as a PNG, atomically (see `partial.rs`).

use std::path::Path;

use anyhow::Context;

use super::partial::PartialFile;

/// Opens the output first, so an unwritable path fails before any rendering.
pub fn reserve(path: &Path) -> anyhow::Result<PartialFile> {
    PartialFile::new(path, "partial")
}

/// Encodes `rgba` (sRGB, tightly packed rows) into the reserved file and
/// moves it into place.
pub fn write(file: PartialFile, width: u32, height: u32, rgba: &[u8]) -> anyhow::Result<()> {
    let f = std::fs::File::create(file.work_path()).context("cannot write the PNG")?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), width, height);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_source_srgb(png::SrgbRenderingIntent::Perceptual);
    let mut w = enc.write_header().context("cannot write the PNG")?;
    w.write_image_data(rgba).context("cannot write the PNG")?;
    w.finish().context("cannot write the PNG")?;
    file.commit()
}
