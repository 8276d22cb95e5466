//! egui painted by our renderer on a real Vulkan device, validation on: its
//! text and widgets land in the frame, and a canvas pane drawn through a
//! paint callback appears where egui put it, clipped to it.

use std::sync::Arc;

use clavm_render::draw::{vec2, Canvas, Color, Rect};
use clavm_render::gpu::{Gpu, GpuOptions, Validation};
use clavm_render::target::Offscreen;
use clavm_render::ui::UiFrame;
use clavm_render::Renderer;

fn px(rgba: &[u8], w: u32, x: u32, y: u32) -> [u8; 4] {
    let i = ((y * w + x) * 4) as usize;
    [rgba[i], rgba[i + 1], rgba[i + 2], rgba[i + 3]]
}

#[test]
fn egui_text_and_a_canvas_pane_share_one_frame() {
    let gpu = Gpu::new(&GpuOptions { validation: Validation::Required, ..Default::default() }).unwrap();
    let mut renderer = Renderer::new(&gpu).unwrap();
    let (w, h) = (400u32, 300u32);
    let target = Offscreen::new(&gpu, w, h).unwrap();
    let mut canvas = Canvas::new(w, h);
    let ctx = egui::Context::default();
    let ppp = 1.5f32; // a fractional scale: points are not pixels
    let mut pane_rect = egui::Rect::NOTHING;
    let mut frames = Vec::new();
    // Two frames: the first uploads the font texture, the second patches or reuses it.
    for _ in 0..2 {
        canvas.begin(w, h, Color::rgb(0, 0, 0));
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(w as f32 / ppp, h as f32 / ppp))),
            viewports: std::iter::once((
                egui::ViewportId::ROOT,
                egui::ViewportInfo { native_pixels_per_point: Some(ppp), ..Default::default() },
            ))
            .collect(),
            ..Default::default()
        };
        let out = ctx.run_ui(input, |ui| {
            egui::CentralPanel::default().show(ui, |ui| {
                ui.heading("CLAVM editor");
                let (rect, _) = ui.allocate_exact_size(egui::vec2(120.0, 60.0), egui::Sense::hover());
                pane_rect = rect;
                // The pane: a red fill bigger than the pane (clipped) and a white line.
                let mark = canvas.mark();
                let r = Rect::new(
                    rect.min.x * ppp - 20.0,
                    rect.min.y * ppp,
                    rect.width() * ppp + 40.0,
                    rect.height() * ppp,
                );
                canvas.fill(r, Color::rgb(255, 0, 0));
                canvas.line(
                    vec2(rect.min.x * ppp, rect.center().y * ppp),
                    vec2(rect.max.x * ppp, rect.center().y * ppp),
                    3.0,
                    Color::rgb(255, 255, 255),
                );
                let pane = canvas.pane_since(mark);
                ui.painter().add(egui::PaintCallback { rect, callback: Arc::new(pane) });
            });
        });
        let mut out = out;
        let primitives = ctx.tessellate(std::mem::take(&mut out.shapes), out.pixels_per_point);
        let ui = UiFrame { primitives: &primitives, textures: &mut out.textures_delta, pixels_per_point: ppp };
        let t = renderer.render_with_ui(&mut canvas, ui, &target).unwrap();
        renderer.finish(t).unwrap();
        frames.push(target.pixels(t.slot).to_vec());
    }
    let rgba = &frames[1];
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let f = std::fs::File::create(dir.join("ui.png")).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(rgba).unwrap();

    // The pane: red inside, clipped at its edges (the fill was 20 px wider).
    let (x0, x1) = ((pane_rect.min.x * ppp) as u32, (pane_rect.max.x * ppp) as u32);
    let (y0, y1) = ((pane_rect.min.y * ppp) as u32, (pane_rect.max.y * ppp) as u32);
    assert_eq!(px(rgba, w, x0 + 5, y0 + 5), [255, 0, 0, 255], "pane fill");
    assert_ne!(px(rgba, w, x0 - 10, y0 + 5), [255, 0, 0, 255], "clipped to the pane");
    assert_eq!(px(rgba, w, (x0 + x1) / 2, (y0 + y1) / 2), [255, 255, 255, 255], "pane line");
    // egui's panel background (not our black clear) and bright heading text above the pane.
    assert_ne!(px(rgba, w, 5, h - 5), [0, 0, 0, 255], "egui's panel is painted");
    let text = (0..y0).flat_map(|y| (0..w).map(move |x| (x, y))).filter(|&(x, y)| px(rgba, w, x, y)[0] > 120).count();
    assert!(text > 100, "heading text: {text} bright pixels");
    assert_eq!(gpu.validation().errors(), 0, "{:#?}", gpu.validation().messages());
}
