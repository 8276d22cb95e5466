//! How many buffer pixels one logical (surface) pixel is.
//!
//! Where the compositor offers `wp_fractional_scale_v1` and `wp_viewporter`,
//! frames are drawn at the exact fractional size (1.5x: 1920 pixels for a
//! 1280-wide window) and the viewport maps them back to the logical size, so
//! text is rasterised at the scale it is seen at. Elsewhere the integer
//! `wl_surface` buffer scale is used: a compositor without fractional scale
//! that shows the window at 1.5x then draws our 2x buffer smaller itself.

use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Connection, Dispatch, Proxy, QueueHandle};
use wayland_protocols::wp::fractional_scale::v1::client::{wp_fractional_scale_manager_v1, wp_fractional_scale_v1};
use wayland_protocols::wp::viewporter::client::{wp_viewport, wp_viewporter};

use super::App;

/// The window's scale, as the compositor last asked for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// `wl_surface`'s integer buffer scale (1 until told otherwise).
    Integer(u32),
    /// `wp_fractional_scale_v1`'s preferred scale, in 120ths (180 is 1.5x).
    Fractional(u32),
}

impl Default for Scale {
    fn default() -> Self {
        Scale::Integer(1)
    }
}

impl Scale {
    /// The factor as a number (1.5 for `Fractional(180)`).
    pub fn factor(self) -> f64 {
        match self {
            Scale::Integer(n) => n.max(1) as f64,
            Scale::Fractional(n120) => n120.max(1) as f64 / 120.0,
        }
    }

    /// The buffer's size in pixels for a logical size. The fractional-scale
    /// protocol asks for the logical size times the scale, rounded half away
    /// from zero; never less than one pixel.
    pub fn buffer_size(self, logical: (u32, u32)) -> (u32, u32) {
        let f = self.factor();
        let px = |l: u32| ((l as f64 * f).round() as u32).max(1);
        (px(logical.0), px(logical.1))
    }

    /// egui's pixels per point: how many buffer pixels a logical pixel is.
    pub fn pixels_per_point(self) -> f32 {
        self.factor() as f32
    }

    /// What to set as the surface's buffer scale: the integer scale, or 1
    /// when the viewport maps a fractional buffer to the logical size.
    pub fn buffer_scale(self) -> i32 {
        match self {
            Scale::Integer(n) => n.max(1) as i32,
            Scale::Fractional(_) => 1,
        }
    }
}

/// The surface's fractional-scale and viewport objects, when the compositor
/// offers both (one without the other is of no use).
pub struct Fractional {
    /// None when forced by `CLAVM_FRACTIONAL_SCALE` on a compositor that
    /// has the viewporter but not the fractional-scale protocol (tests).
    scale: Option<wp_fractional_scale_v1::WpFractionalScaleV1>,
    viewport: wp_viewport::WpViewport,
    /// The scale forced by `CLAVM_FRACTIONAL_SCALE` (in 120ths), if any.
    pub forced: Option<u32>,
}

impl Fractional {
    /// Binds both globals for `surface`; `None` when either is missing.
    pub fn bind(
        globals: &wayland_client::globals::GlobalList,
        qh: &QueueHandle<App>,
        surface: &WlSurface,
    ) -> Option<Fractional> {
        // A fixed fractional scale in 120ths, for testing the viewport path
        // on compositors without the fractional-scale protocol.
        let forced =
            std::env::var("CLAVM_FRACTIONAL_SCALE").ok().and_then(|v| v.parse::<u32>().ok()).filter(|&n| n > 0);
        let manager: Option<wp_fractional_scale_manager_v1::WpFractionalScaleManagerV1> =
            globals.bind(qh, 1..=1, ()).ok();
        if manager.is_none() && forced.is_none() {
            return None;
        }
        let viewporter: wp_viewporter::WpViewporter = globals.bind(qh, 1..=1, ()).ok()?;
        let scale = match (&manager, forced) {
            (Some(m), None) => Some(m.get_fractional_scale(surface, qh, ())),
            _ => None,
        };
        let viewport = viewporter.get_viewport(surface, qh, ());
        // The per-surface objects live on; the factories are not needed again.
        if let Some(m) = manager {
            m.destroy();
        }
        viewporter.destroy();
        Some(Fractional { scale, viewport, forced })
    }

    /// Maps the (fractional-size) buffer onto the logical size; before the commit.
    pub fn set_destination(&self, logical: (u32, u32)) {
        self.viewport.set_destination(logical.0 as i32, logical.1 as i32);
    }
}

impl Drop for Fractional {
    fn drop(&mut self) {
        self.viewport.destroy();
        if let Some(s) = &self.scale {
            s.destroy();
        }
    }
}

impl Dispatch<wp_fractional_scale_v1::WpFractionalScaleV1, ()> for App {
    fn event(
        app: &mut App,
        _: &wp_fractional_scale_v1::WpFractionalScaleV1,
        event: wp_fractional_scale_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<App>,
    ) {
        if let wp_fractional_scale_v1::Event::PreferredScale { scale } = event {
            app.set_scale(Scale::Fractional(scale));
        }
    }
}

/// The factories and the viewport send no events.
macro_rules! no_events {
    ($($t:ty),*) => {$(
        impl Dispatch<$t, ()> for App {
            fn event(_: &mut App, _: &$t, _: <$t as Proxy>::Event, _: &(), _: &Connection, _: &QueueHandle<App>) {}
        }
    )*};
}
no_events!(
    wp_fractional_scale_manager_v1::WpFractionalScaleManagerV1,
    wp_viewporter::WpViewporter,
    wp_viewport::WpViewport
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_the_logical_size_times_the_scale_rounded() {
        assert_eq!(Scale::default().buffer_size((1280, 800)), (1280, 800));
        assert_eq!(Scale::Integer(2).buffer_size((1280, 800)), (2560, 1600));
        assert_eq!(Scale::Fractional(180).buffer_size((1280, 800)), (1920, 1200));
        // 1.25x of an odd size rounds half away from zero: 333 * 1.25 = 416.25, 3 * 1.25 = 3.75.
        assert_eq!(Scale::Fractional(150).buffer_size((333, 3)), (416, 4));
        // 1.5x of 1: 1.5 rounds to 2.
        assert_eq!(Scale::Fractional(180).buffer_size((1, 1)), (2, 2));
        assert_eq!(Scale::Integer(0).buffer_size((10, 10)), (10, 10), "a bogus 0 is taken as 1");
    }

    #[test]
    fn egui_and_the_surface_get_the_scale_each_needs() {
        assert_eq!(Scale::Fractional(180).pixels_per_point(), 1.5);
        assert_eq!(Scale::Fractional(180).buffer_scale(), 1, "the viewport maps a fractional buffer");
        assert_eq!(Scale::Integer(2).pixels_per_point(), 2.0);
        assert_eq!(Scale::Integer(2).buffer_scale(), 2);
    }
}
