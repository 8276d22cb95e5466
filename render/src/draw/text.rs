//! Text: glyphs rasterised once with ab_glyph into a CPU-side R8 atlas, which
//! the renderer uploads when it changes. The font is Hack (from egui's
//! `epaint_default_fonts`, the same crate the UI will use), embedded in the
//! binary: clear digits for axis labels, no font file read at run time.

use std::collections::HashMap;

use ab_glyph::{Font, FontRef, GlyphId, PxScale, ScaleFont};

/// The atlas' side in pixels: ASCII at a dozen sizes fits many times over.
pub const ATLAS_SIZE: u32 = 1024;

#[derive(Clone, Copy, Debug)]
struct Placed {
    /// Pixel offset of the bitmap's top-left from the pen (baseline).
    offset: [f32; 2],
    size: [u32; 2],
    /// Top-left in the atlas.
    at: [u32; 2],
}

/// Glyph bitmaps packed in rows (shelves), keyed by glyph and pixel size.
pub struct GlyphAtlas {
    font: FontRef<'static>,
    pixels: Vec<u8>,
    placed: HashMap<(GlyphId, u32), Option<Placed>>,
    shelf_x: u32,
    shelf_y: u32,
    shelf_h: u32,
    /// Rows [from, to) changed since the last upload.
    dirty: Option<(u32, u32)>,
    full_warned: bool,
}

impl Default for GlyphAtlas {
    fn default() -> Self {
        GlyphAtlas::new()
    }
}

/// How text sits on the point given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Center,
    Right,
}

/// One glyph quad: screen rectangle and atlas uv rectangle.
pub struct GlyphQuad {
    pub min: [f32; 2],
    pub max: [f32; 2],
    pub uv_min: [f32; 2],
    pub uv_max: [f32; 2],
}

impl GlyphAtlas {
    pub fn new() -> GlyphAtlas {
        let font = FontRef::try_from_slice(epaint_default_fonts::HACK_REGULAR).expect("the embedded font parses");
        GlyphAtlas {
            font,
            pixels: vec![0; (ATLAS_SIZE * ATLAS_SIZE) as usize],
            placed: HashMap::new(),
            shelf_x: 1,
            shelf_y: 1,
            shelf_h: 0,
            dirty: None,
            full_warned: false,
        }
    }

    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The rows changed since the last call (for the upload), clearing the mark.
    pub fn take_dirty(&mut self) -> Option<(u32, u32)> {
        self.dirty.take()
    }

    /// Width in pixels of `text` at `px`.
    pub fn measure(&self, text: &str, px: f32) -> f32 {
        let scaled = self.font.as_scaled(PxScale::from(px.round().max(1.0)));
        let mut w = 0.0;
        let mut prev: Option<GlyphId> = None;
        for ch in text.chars() {
            let id = self.font.glyph_id(ch);
            if let Some(p) = prev {
                w += scaled.kern(p, id);
            }
            w += scaled.h_advance(id);
            prev = Some(id);
        }
        w
    }

    /// Lays out one line with its baseline at `y` and calls `out` per glyph.
    pub fn layout(&mut self, text: &str, x: f32, y: f32, px: f32, align: Align, mut out: impl FnMut(GlyphQuad)) {
        let px = px.round().max(1.0);
        let width = self.measure(text, px);
        let mut pen = match align {
            Align::Left => x,
            Align::Center => x - width * 0.5,
            Align::Right => x - width,
        }
        .round();
        let baseline = y.round();
        // FontRef is a cheap handle; a copy lets `place` borrow self mutably.
        let font = self.font.clone();
        let scaled = font.as_scaled(PxScale::from(px));
        let mut prev: Option<GlyphId> = None;
        for ch in text.chars() {
            let id = font.glyph_id(ch);
            if let Some(p) = prev {
                pen += scaled.kern(p, id);
            }
            prev = Some(id);
            if let Some(p) = self.place(id, px as u32) {
                let x0 = (pen + p.offset[0]).round();
                let y0 = baseline + p.offset[1];
                let s = ATLAS_SIZE as f32;
                out(GlyphQuad {
                    min: [x0, y0],
                    max: [x0 + p.size[0] as f32, y0 + p.size[1] as f32],
                    uv_min: [p.at[0] as f32 / s, p.at[1] as f32 / s],
                    uv_max: [(p.at[0] + p.size[0]) as f32 / s, (p.at[1] + p.size[1]) as f32 / s],
                });
            }
            pen += scaled.h_advance(id);
        }
    }

    /// Cap height of digits at `px`, to centre labels vertically.
    pub fn cap_height(&self, px: f32) -> f32 {
        let scaled = self.font.as_scaled(PxScale::from(px.round().max(1.0)));
        scaled.ascent() * 0.72
    }

    /// The glyph's bitmap in the atlas, rasterised on first use. `None` for
    /// glyphs without ink (space) or when the atlas is full.
    fn place(&mut self, id: GlyphId, px: u32) -> Option<Placed> {
        if let Some(p) = self.placed.get(&(id, px)) {
            return *p;
        }
        let glyph = id.with_scale_and_position(PxScale::from(px as f32), ab_glyph::point(0.0, 0.0));
        let placed = self.font.outline_glyph(glyph).and_then(|outlined| {
            let b = outlined.px_bounds();
            let (w, h) = (b.width().ceil() as u32, b.height().ceil() as u32);
            let at = self.allocate(w, h)?;
            outlined.draw(|x, y, c| {
                let i = ((at[1] + y) * ATLAS_SIZE + at[0] + x) as usize;
                if let Some(px) = self.pixels.get_mut(i) {
                    *px = (c.clamp(0.0, 1.0) * 255.0).round() as u8;
                }
            });
            let rows = (at[1], at[1] + h);
            self.dirty = Some(match self.dirty {
                Some((a, b)) => (a.min(rows.0), b.max(rows.1)),
                None => rows,
            });
            Some(Placed { offset: [b.min.x, b.min.y], size: [w, h], at })
        });
        self.placed.insert((id, px), placed);
        placed
    }

    /// Room for a `w`x`h` bitmap with a one-pixel gutter (shelf packing).
    fn allocate(&mut self, w: u32, h: u32) -> Option<[u32; 2]> {
        if self.shelf_x + w + 1 > ATLAS_SIZE {
            self.shelf_y += self.shelf_h + 1;
            self.shelf_x = 1;
            self.shelf_h = 0;
        }
        if self.shelf_y + h + 1 > ATLAS_SIZE || w + 2 > ATLAS_SIZE {
            if !self.full_warned {
                tracing::warn!("text atlas full: some glyphs are not drawn");
                self.full_warned = true;
            }
            return None;
        }
        let at = [self.shelf_x, self.shelf_y];
        self.shelf_x += w + 1;
        self.shelf_h = self.shelf_h.max(h);
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glyphs_are_rasterised_once_and_laid_out_left_to_right() {
        let mut atlas = GlyphAtlas::new();
        let mut quads = Vec::new();
        atlas.layout("-12 dB", 10.0, 20.0, 14.0, Align::Left, |q| quads.push(q));
        assert_eq!(quads.len(), 5, "the space has no ink");
        assert!(quads.windows(2).all(|w| w[0].min[0] < w[1].min[0]));
        assert!(quads.iter().all(|q| q.max[1] <= 21.0 && q.min[1] >= 5.0), "glyphs sit on the baseline");
        let dirty = atlas.take_dirty().expect("new glyphs dirty the atlas");
        assert!(dirty.1 > dirty.0);
        let ink: u32 = atlas.pixels().iter().map(|&p| p as u32).sum();
        assert!(ink > 1000, "bitmaps were drawn: {ink}");
        atlas.layout("-12 dB", 10.0, 20.0, 14.0, Align::Right, |_| {});
        assert!(atlas.take_dirty().is_none(), "known glyphs are reused");
        let w = atlas.measure("-12 dB", 14.0);
        assert!((w - 6.0 * atlas.measure("0", 14.0)).abs() < 0.01, "monospace: {w}");
    }
}
