//! The dark theme: colours and sizes, scaled with the frame so a 4K video
//! and a small window keep the same proportions.

use crate::draw::Color;

#[derive(Clone, Debug)]
pub struct Theme {
    pub background: Color,
    pub panel: Color,
    pub grid: Color,
    pub grid_strong: Color,
    pub text: Color,
    pub text_dim: Color,
    /// Per channel: left, right, then more.
    pub channels: [Color; 4],
    pub spectrum: Color,
    pub peak_hold: Color,
    pub meter_low: Color,
    pub meter_mid: Color,
    pub meter_high: Color,
    pub clip: Color,
    /// Pixels per design pixel (1.0 at 1280x720).
    pub scale: f32,
    /// Pixels kept free at the right of a panel's title line (a host UI's
    /// menu button sits there).
    pub header_inset: f32,
}

impl Theme {
    /// The theme for a frame of this size (snapshots and videos scale with it).
    pub fn for_size(width: u32, height: u32) -> Theme {
        Theme::with_scale((width as f32 / 1280.0).min(height as f32 / 720.0).clamp(0.5, 4.0))
    }

    /// The theme at a fixed scale (a window: its pixels per point).
    pub fn with_scale(scale: f32) -> Theme {
        Theme {
            background: Color::hex(0x0b0d12),
            panel: Color::hex(0x12161e),
            grid: Color::hex(0x1c222c),
            grid_strong: Color::hex(0x2b3340),
            text: Color::hex(0xc9d1dc),
            text_dim: Color::hex(0x6f7b8c),
            channels: [Color::hex(0x4fd6c8), Color::hex(0xf2a65a), Color::hex(0xb38cff), Color::hex(0x8fd16a)],
            spectrum: Color::hex(0x5aa9f2),
            peak_hold: Color::hex(0xf2d45a),
            meter_low: Color::hex(0x3ecf6e),
            meter_mid: Color::hex(0xe8c547),
            meter_high: Color::hex(0xf0584a),
            clip: Color::hex(0xff3b30),
            scale,
            header_inset: 0.0,
        }
    }

    /// A design size (at 1280x720) in pixels.
    pub fn px(&self, design: f32) -> f32 {
        design * self.scale
    }

    pub fn channel(&self, ch: usize) -> Color {
        self.channels[ch % self.channels.len()]
    }

    /// Text sizes, never below legibility.
    pub fn title_px(&self) -> f32 {
        self.px(13.0).max(9.0)
    }
    pub fn label_px(&self) -> f32 {
        self.px(11.0).max(8.0)
    }
}
