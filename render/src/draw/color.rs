//! Colours as the views name them: sRGB bytes with straight alpha.

/// An sRGB colour with straight (not premultiplied) alpha.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Color(pub [u8; 4]);

impl Color {
    pub const fn rgb(r: u8, g: u8, b: u8) -> Color {
        Color([r, g, b, 255])
    }
    /// From `0xRRGGBB`.
    pub const fn hex(rgb: u32) -> Color {
        Color([(rgb >> 16) as u8, (rgb >> 8) as u8, rgb as u8, 255])
    }
    /// The same colour at `alpha` (0..1) of its opacity.
    pub fn alpha(self, alpha: f32) -> Color {
        let [r, g, b, a] = self.0;
        Color([r, g, b, (a as f32 * alpha.clamp(0.0, 1.0)).round() as u8])
    }
    /// Linear interpolation in sRGB, good enough for palette steps.
    pub fn mix(self, other: Color, t: f32) -> Color {
        let t = t.clamp(0.0, 1.0);
        let mut out = [0u8; 4];
        for (i, o) in out.iter_mut().enumerate() {
            *o = (self.0[i] as f32 + (other.0[i] as f32 - self.0[i] as f32) * t).round() as u8;
        }
        Color(out)
    }
    /// The same colour, fully opaque.
    pub fn opaque(self) -> Color {
        let [r, g, b, _] = self.0;
        Color([r, g, b, 255])
    }
    /// RGBA floats 0..1 of the stored sRGB values (the clear colour: the
    /// frame format stores sRGB values as they are).
    pub fn to_f32(self) -> [f32; 4] {
        self.0.map(|c| c as f32 / 255.0)
    }
}
