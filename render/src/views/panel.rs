//! The frame every view sits in: a rounded panel with a title line, and the
//! plot area inside it.

use super::theme::Theme;
use crate::draw::{vec2, Align, Canvas, Rect};

/// Draws the panel and its title (left) and info (right); returns the plot area.
pub fn panel(c: &mut Canvas, r: Rect, theme: &Theme, title: &str, info: &str) -> Rect {
    let radius = theme.px(6.0);
    // A clear with masked corners: no shader runs over the panel's area,
    // which matters on a software rasteriser.
    c.panel(r, radius, theme.panel, theme.background);
    let title_h = theme.px(22.0);
    let pad = theme.px(10.0);
    let baseline = r.min.y + title_h * 0.5 + c.atlas().cap_height(theme.title_px()) * 0.5 + theme.px(2.0);
    c.text(vec2(r.min.x + pad, baseline), theme.title_px(), theme.text, Align::Left, title);
    if !info.is_empty() {
        c.text(
            vec2(r.max.x - pad - theme.header_inset, baseline),
            theme.label_px(),
            theme.text_dim,
            Align::Right,
            info,
        );
    }
    Rect { min: vec2(r.min.x + pad, r.min.y + title_h + theme.px(4.0)), max: vec2(r.max.x - pad, r.max.y - pad) }
}
