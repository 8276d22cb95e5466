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
    // The info gives way when the panel is too narrow for both.
    let room = r.width() - 2.0 * pad - theme.header_inset - theme.px(12.0);
    let needed = c.atlas().measure(title, theme.title_px()) + c.atlas().measure(info, theme.label_px());
    if !info.is_empty() && needed <= room {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn glyphs(width: f32) -> usize {
        let mut c = Canvas::new(1000, 200);
        c.begin(1000, 200, crate::draw::Color::rgb(0, 0, 0));
        let theme = Theme::with_scale(1.0);
        let r = Rect { min: vec2(0.0, 0.0), max: vec2(width, 150.0) };
        panel(&mut c, r, &theme, "SCOPE", "2 cycles · 440.0 Hz · trig ↑");
        c.shapes().len()
    }

    #[test]
    fn the_info_gives_way_when_the_panel_is_too_narrow_for_it_and_the_title() {
        let (wide, narrow) = (glyphs(600.0), glyphs(150.0));
        assert!(narrow < wide, "{narrow} shapes in a narrow panel, {wide} in a wide one");
        assert!(narrow >= "SCOPE".len(), "the title stays: {narrow}");
    }
}
