//! `clavm bench --ui`: the desktop app's costs.
//!
//! A. The full UI (egui editor, panes, bars) drawn offscreen at 1280x720 in
//!    the window's format, against a clear-only frame in the same run.
//! B. The app in a real headless compositor (sway, started here as an
//!    unprivileged user): the UI thread's CPU while the window is still, and
//!    the time from a key press (the virtual keyboard, wtype) to the frame
//!    callback of the frame that shows it, as the app measures it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clavm_audio::engine::EngineConfig;
use clavm_audio::render::{self as offline, Progress, RenderSpec};
use clavm_audio::{Frames, PatchSource};
use clavm_render::draw::Canvas;
use clavm_render::gpu::{GpuChoice, BGRA_FORMAT};
use clavm_render::target::Offscreen;
use clavm_render::ui::UiFrame;
use clavm_render::Renderer;

use super::stats::Percentiles;
use crate::ui::{Editor, Studio};

const FRAMES: usize = 60;

pub fn run() -> anyhow::Result<String> {
    let mut table = offscreen()?;
    table.push_str(&match in_compositor() {
        Ok(t) => t,
        Err(e) => format!("\nB. In a compositor: not measured: {e:#}\n"),
    });
    Ok(table)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn offscreen() -> anyhow::Result<String> {
    let rate = 48000.0;
    let patch = PatchSource::from_text(crate::commands::DEFAULT_PATCH_NAME, crate::commands::DEFAULT_PATCH);
    let spec = RenderSpec {
        patch,
        length: Frames::from_seconds(3.0, rate),
        config: EngineConfig::new(rate, 2),
        swaps: Vec::new(),
        params: Vec::new(),
        block: 64,
        input: None,
        samples: Vec::new(),
        notes: Vec::new(),
    };
    let audio = offline::render(&spec, &Progress::new())?;
    let gpu = crate::picture::open_gpu(GpuChoice::Auto)?;
    let (w, h) = (1280u32, 720u32);
    let mut renderer = Renderer::new(&gpu)?;
    let target = Offscreen::with_format(&gpu, w, h, BGRA_FORMAT)?;
    let mut canvas = Canvas::new(w, h);
    let ctx = egui::Context::default();
    let mut studio = Studio::new(Editor::new(crate::commands::DEFAULT_PATCH.to_string(), None));
    let mut analysis = clavm_render::analysis::Analysis::new(rate, 2);
    let mut fed = 0usize;
    let (mut cpu, mut gpu_t, mut total, mut clear) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    for i in 0..FRAMES + 5 {
        let end = (fed + 1600).min(audio.samples.len());
        analysis.push((fed / 2) as u64, &audio.samples[fed..end]);
        fed = if end == audio.samples.len() { 0 } else { end };
        if fed == 0 {
            analysis.reset();
        }
        // The reference: the same target, a clear only.
        let t = Instant::now();
        canvas.begin(w, h, clavm_render::views::Theme::with_scale(1.0).background);
        let ticket = renderer.render(&mut canvas, &target)?;
        renderer.finish(ticket)?;
        let clear_t = t.elapsed();

        let t0 = Instant::now();
        canvas.begin(w, h, clavm_render::views::Theme::with_scale(1.0).background);
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(w as f32, h as f32))),
            time: Some(start.elapsed().as_secs_f64()),
            ..Default::default()
        };
        let mut out = ctx.run_ui(input, |ui| {
            studio.show(ui, &mut canvas, &mut analysis);
        });
        let primitives = ctx.tessellate(std::mem::take(&mut out.shapes), out.pixels_per_point);
        let t1 = Instant::now();
        let ui = UiFrame { primitives: &primitives, textures: &mut out.textures_delta, pixels_per_point: 1.0 };
        let ticket = renderer.render_with_ui(&mut canvas, ui, &target)?;
        renderer.finish(ticket)?;
        let t2 = Instant::now();
        if i >= 5 {
            cpu.push(t1 - t0);
            gpu_t.push(t2 - t1);
            total.push(t2 - t0);
            clear.push(clear_t);
        }
    }
    let (cpu, gpu_t, total, clear) = (
        Percentiles::of(&mut cpu),
        Percentiles::of(&mut gpu_t),
        Percentiles::of(&mut total),
        Percentiles::of(&mut clear),
    );
    let p = |x: &Percentiles| format!("{:.2} / {:.2} ms", ms(x.p50), ms(x.p99));
    Ok(format!(
        "Device: {}. 1280x720, BGRA (the shm path's format, before the copy into the shm buffer), {FRAMES} frames, p50 / p99.\n\n\
         ### A. The full UI offscreen\n\n\
         | frame | CPU: egui + panes + tessellation | GPU: draw + read-back | total | vs clear |\n|---|---|---|---|---|\n\
         | clear only | - | {} | {} | 1.0x |\n\
         | full UI (editor, 5 panes, transport, status) | {} | {} | {} | {:.1}x |\n",
        gpu.info().name,
        p(&clear),
        p(&clear),
        p(&cpu),
        p(&gpu_t),
        p(&total),
        ms(total.p50) / ms(clear.p50).max(1e-9)
    ))
}

/// sway headless, as `nobody` when we are root (sway refuses root).
struct Compositor {
    child: std::process::Child,
    runtime: tempfile::TempDir,
    display: String,
    socket: std::path::PathBuf,
}

impl Compositor {
    fn start() -> anyhow::Result<Compositor> {
        let runtime = tempfile::tempdir()?;
        std::fs::write(
            runtime.path().join("sway.cfg"),
            "output HEADLESS-1 resolution 1280x800\ndefault_border none\n",
        )?;
        // SAFETY: getuid has no preconditions.
        let root = unsafe { libc::getuid() } == 0;
        let mut cmd = if root {
            let p = std::ffi::CString::new(runtime.path().to_string_lossy().as_bytes())?;
            // SAFETY: our own temporary directory, handed to nobody.
            unsafe {
                libc::chown(p.as_ptr(), 65534, 65534);
            }
            let mut c = Command::new("setpriv");
            c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups", "sway"]);
            c
        } else {
            Command::new("sway")
        };
        let child = cmd
            .arg("-c")
            .arg(runtime.path().join("sway.cfg"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env("WLR_BACKENDS", "headless")
            .env("WLR_LIBINPUT_NO_DEVICES", "1")
            .env("WLR_RENDERER", "pixman")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting sway (apt install sway)")?;
        let t0 = Instant::now();
        loop {
            let names: Vec<String> =
                std::fs::read_dir(runtime.path())?.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
            let display = names.iter().find(|n| n.starts_with("wayland-") && !n.ends_with(".lock")).cloned();
            let socket = names.iter().find(|n| n.starts_with("sway-ipc.")).cloned();
            if let (Some(display), Some(s)) = (display, socket) {
                let socket = runtime.path().join(s);
                return Ok(Compositor { child, runtime, display, socket });
            }
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(15), "sway did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("XDG_RUNTIME_DIR", self.runtime.path())
            .env("WAYLAND_DISPLAY", &self.display)
            .env("SWAYSOCK", &self.socket);
        c
    }
}

impl Drop for Compositor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// utime + stime of one thread, in seconds.
fn thread_cpu(pid: u32, tid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, r)| r).context("malformed stat")?;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).context("utime")?.parse::<f64>()? + f.get(12).context("stime")?.parse::<f64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / hz)
}

fn in_compositor() -> anyhow::Result<String> {
    let comp = Compositor::start()?;
    let dir = tempfile::tempdir()?;
    let patch = dir.path().join("silent.c");
    std::fs::write(&patch, "void play(void) {\n    _out(0, 0.0f);\n    _out(1, 0.0f);\n}\n")?;
    let stats = dir.path().join("stats.json");
    let mut app = comp
        .cmd(std::env::current_exe()?.to_str().context("exe path")?)
        .arg(&patch)
        .args(["--engine", &format!("bench-ui-{}", std::process::id()), "--midi", "none", "--no-osc", "--host", "alsa"])
        .env("CLAVM_STATS", &stats)
        .env("XDG_STATE_HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("app.log"))?)
        .spawn()?;
    let pid = app.id();
    // Settle: the first frames, the font atlas, the meters falling to silence.
    std::thread::sleep(Duration::from_secs(8));
    let before = thread_cpu(pid, pid)?;
    let window = Duration::from_secs(5);
    std::thread::sleep(window);
    let idle = (thread_cpu(pid, pid)? - before) / window.as_secs_f64();
    // 40 key presses, 80 ms apart.
    let o = comp.cmd("wtype").args(["-s", "300", "-d", "80", "// typing a comment, forty chars....."]).output()?;
    anyhow::ensure!(o.status.success(), "wtype failed: {}", String::from_utf8_lossy(&o.stderr));
    std::thread::sleep(Duration::from_secs(1));
    let _ = comp.cmd("swaymsg").arg("kill").output();
    let t0 = Instant::now();
    while app.try_wait()?.is_none() {
        if t0.elapsed() > Duration::from_secs(10) {
            let _ = app.kill();
            anyhow::bail!("the app did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let json = std::fs::read_to_string(&stats).with_context(|| {
        let log = std::fs::read_to_string(dir.path().join("app.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().filter(|l| l.contains("panicked") || l.contains("clavm:")).take(6).collect();
        format!("the app wrote no stats; it said: {}", tail.join(" | "))
    })?;
    let numbers = |key: &str| -> Vec<Duration> {
        json.split(&format!("\"{key}\":[")).nth(1).and_then(|r| r.split(']').next()).map_or(Vec::new(), |list| {
            list.split(',')
                .filter_map(|x| x.trim().parse::<f64>().ok())
                .map(|v| Duration::from_secs_f64(v / 1e3))
                .collect()
        })
    };
    let (mut keys, mut draws) = (numbers("key_to_present_ms"), numbers("draw_ms"));
    let n = keys.len();
    eprintln!("clavm bench --ui: the app drew {} frames in all", draws.len());
    let (k, d) = (Percentiles::of(&mut keys), Percentiles::of(&mut draws));
    Ok(format!(
        "\n### B. The app in sway (headless, pixman), shm presentation\n\n\
         | measure | value |\n|---|---|\n\
         | UI thread CPU, window still (silent patch), over 5 s | {:.2}% of a core (target: near zero) |\n\
         | key press to the frame callback of the frame showing it ({n} keys) | {:.1} / {:.1} ms p50 / p99 |\n\
         | frame draw in the app (egui, panes, render, copy, commit) | {:.1} / {:.1} ms p50 / p99 |\n",
        idle * 100.0,
        ms(k.p50),
        ms(k.p99),
        ms(d.p50),
        ms(d.p99),
    ))
}
