//! The renderer on a real Vulkan device (lavapipe on CI), validation on:
//! any validation error fails the test.

use clavm_render::draw::{vec2, Align, Canvas, Color, Rect};
use clavm_render::gpu::{Gpu, GpuOptions, Validation};
use clavm_render::target::Offscreen;
use clavm_render::Renderer;

fn gpu() -> std::sync::Arc<Gpu> {
    Gpu::new(&GpuOptions { validation: Validation::Required, ..Default::default() }).expect("a Vulkan device")
}

fn assert_clean(gpu: &Gpu) {
    assert!(gpu.validation_enabled());
    assert_eq!(gpu.validation().errors(), 0, "validation errors: {:#?}", gpu.validation().messages());
}

fn save_png(path: &str, w: u32, h: u32, rgba: &[u8]) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let f = std::fs::File::create(dir.join(path)).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(rgba).unwrap();
}

fn px(rgba: &[u8], w: u32, x: u32, y: u32) -> [u8; 4] {
    let i = ((y * w + x) * 4) as usize;
    [rgba[i], rgba[i + 1], rgba[i + 2], rgba[i + 3]]
}

#[test]
fn shapes_land_where_drawn_with_smooth_edges() {
    let gpu = gpu();
    let mut renderer = Renderer::new(&gpu).unwrap();
    let (w, h) = (200, 100);
    let target = Offscreen::new(&gpu, w, h).unwrap();
    let mut canvas = Canvas::new(w, h);
    canvas.begin(w, h, Color::rgb(0, 0, 0));
    canvas.rect(Rect::new(10.0, 10.0, 40.0, 30.0), 0.0, Color::rgb(255, 0, 0));
    canvas.line(vec2(60.0, 50.0), vec2(190.0, 50.0), 4.0, Color::rgb(0, 255, 0));
    canvas.line(vec2(60.0, 60.0), vec2(190.0, 95.0), 2.0, Color::rgb(255, 255, 255));
    canvas.text(vec2(10.0, 80.0), 16.0, Color::rgb(255, 255, 255), Align::Left, "CLAVM 440 Hz");
    let t = renderer.render(&mut canvas, &target).unwrap();
    renderer.finish(t).unwrap();
    let rgba = target.pixels(t.slot).to_vec();
    save_png("shapes.png", w, h, &rgba);

    assert_eq!(px(&rgba, w, 30, 25), [255, 0, 0, 255], "inside the rectangle");
    assert_eq!(px(&rgba, w, 5, 5), [0, 0, 0, 255], "background");
    assert_eq!(px(&rgba, w, 120, 50), [0, 255, 0, 255], "on the thick line");
    assert_eq!(px(&rgba, w, 120, 45), [0, 0, 0, 255], "off the line");
    // The edge of the 4 px line at y = 52 is a partial pixel: anti-aliased.
    let edge = px(&rgba, w, 120, 52)[1];
    assert!(edge > 0 && edge < 255 || px(&rgba, w, 120, 51)[1] == 255, "edge {edge}");
    let text_ink =
        (0..w).flat_map(|x| (66..82).map(move |y| (x, y))).filter(|&(x, y)| px(&rgba, w, x, y)[0] > 128).count();
    assert!(text_ink > 100, "text was drawn: {text_ink} bright pixels");
    drop(renderer);
    assert_clean(&gpu);
}

#[test]
fn fills_are_cleared_beneath_the_shapes_and_panels_get_round_corners() {
    let gpu = gpu();
    let mut renderer = Renderer::new(&gpu).unwrap();
    let (w, h) = (120, 80);
    let target = Offscreen::new(&gpu, w, h).unwrap();
    let mut canvas = Canvas::new(w, h);
    for round in 0..3 {
        canvas.begin(w, h, Color::rgb(0, 0, 0));
        canvas.rect(Rect::new(20.0, 20.0, 20.0, 20.0), 0.0, Color::rgb(255, 0, 0));
        // Pushed after the red square, drawn beneath it.
        canvas.fill(Rect::new(10.0, 10.0, 60.0, 40.0), Color::rgb(0, 0, 255));
        canvas.panel(Rect::new(80.0, 10.0, 30.0, 60.0), 8.0, Color::rgb(0, 255, 0), Color::rgb(0, 0, 0));
        canvas.hline(75.0, 0.0, 120.0, 1.0, Color::rgb(255, 255, 255));
        let t = renderer.render(&mut canvas, &target).unwrap();
        renderer.finish(t).unwrap();
        let rgba = target.pixels(t.slot).to_vec();
        save_png(&format!("fills-{round}.png"), w, h, &rgba);
        assert_eq!(px(&rgba, w, 30, 30), [255, 0, 0, 255], "the shape is over the fill");
        assert_eq!(px(&rgba, w, 15, 15), [0, 0, 255, 255], "the fill");
        assert_eq!(px(&rgba, w, 95, 40), [0, 255, 0, 255], "inside the panel");
        assert_eq!(px(&rgba, w, 80, 10), [0, 0, 0, 255], "the panel's corner is masked");
        assert_eq!(px(&rgba, w, 60, 75), [255, 255, 255, 255], "a one-pixel grid line");
        assert_eq!(px(&rgba, w, 60, 76), [0, 0, 0, 255]);
    }
    drop(renderer);
    assert_clean(&gpu);
}
