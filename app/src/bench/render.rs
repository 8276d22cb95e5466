//! `clavm bench --render`: the renderer on this machine's Vulkan device
//! (lavapipe on CI). Frame time of the full view against a clear-only frame
//! measured in the same run (only ratios are stable here), split into the
//! CPU half (analysis and layout) and the GPU half (draw and read-back),
//! `clavm record`'s speed as a multiple of real time, and the offline audio
//! render in-process against the sandboxed child every command uses.

use std::time::{Duration, Instant};

use anyhow::Context;
use clavm_audio::engine::EngineConfig;
use clavm_audio::render::{self as offline, Progress, RenderSpec};
use clavm_audio::{Frames, PatchSource};
use clavm_render::gpu::GpuChoice;
use clavm_render::views::ViewKind;

use super::stats::Percentiles;
use crate::picture::{self, Picture, Size};

const FRAMES: usize = 60;

pub fn run(patches: &std::path::Path) -> anyhow::Result<String> {
    let patch_path = patches.join("default.c");
    let patch = PatchSource::from_file(&patch_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rate = 48000.0;
    let spec = RenderSpec {
        patch: patch.clone(),
        length: Frames::from_seconds(3.0, rate),
        config: EngineConfig::new(rate, 2),
        swaps: Vec::new(),
        params: Vec::new(),
        block: 64,
        input: None,
        samples: Vec::new(),
        notes: Vec::new(),
    };
    let audio = offline::render(&spec, &Progress::new()).context("rendering the benchmark's audio")?;
    let gpu = picture::open_gpu(GpuChoice::Auto)?;
    let mut table = format!(
        "Device: {} ({}). {FRAMES} frames each, p50 / p99.\n\n\
         | frame | size | shapes + fills | CPU: layout | GPU: draw + read-back | total | vs clear |\n\
         |---|---|---|---|---|---|---|\n",
        gpu.info().name,
        gpu.info().kind
    );
    let cases = [
        (Size { width: 1280, height: 720 }, ViewKind::All),
        (Size { width: 1920, height: 1080 }, ViewKind::All),
        (Size { width: 1280, height: 720 }, ViewKind::Scope),
        (Size { width: 1280, height: 720 }, ViewKind::Xy),
        (Size { width: 1280, height: 720 }, ViewKind::Waves),
        (Size { width: 1280, height: 720 }, ViewKind::Spectrum),
        (Size { width: 1280, height: 720 }, ViewKind::Meters),
    ];
    for (size, kind) in cases {
        let mut pic = Picture::new(&gpu, size, kind, rate, 2)?;
        let block = 800 * 2; // one 60 fps frame of audio per frame drawn
        let mut fed = 0usize;
        let mut measure = |pic: &mut Picture,
                           clear: bool|
         -> anyhow::Result<(Percentiles, Percentiles, Percentiles, (usize, usize))> {
            let (mut cpu, mut gpu_t, mut total) = (Vec::new(), Vec::new(), Vec::new());
            for i in 0..FRAMES + 5 {
                let end = (fed + block).min(audio.samples.len());
                if end > fed {
                    pic.analysis.push((fed / 2) as u64, &audio.samples[fed..end]);
                    fed = if end == audio.samples.len() { 0 } else { end };
                    if fed == 0 {
                        pic.analysis.reset();
                    }
                }
                let t0 = Instant::now();
                if clear {
                    pic.build_clear();
                } else {
                    pic.build();
                }
                let t1 = Instant::now();
                let ticket = pic.submit()?;
                pic.pixels(ticket)?;
                let t2 = Instant::now();
                if i >= 5 {
                    cpu.push(t1 - t0);
                    gpu_t.push(t2 - t1);
                    total.push(t2 - t0);
                }
            }
            Ok((Percentiles::of(&mut cpu), Percentiles::of(&mut gpu_t), Percentiles::of(&mut total), pic.shape_count()))
        };
        let clear = measure(&mut pic, true)?;
        let full = measure(&mut pic, false)?;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let pp = |p: &Percentiles| format!("{:.2} / {:.2} ms", ms(p.p50), ms(p.p99));
        let full_name = format!("{kind:?}").to_lowercase();
        for (name, r) in [("clear only", &clear), (full_name.as_str(), &full)] {
            if kind != ViewKind::All && name == "clear only" {
                continue;
            }
            table.push_str(&format!(
                "| {name} | {}x{} | {} + {} | {} | {} | {} | {:.1}x |\n",
                size.width,
                size.height,
                r.3 .0,
                r.3 .1,
                pp(&r.0),
                pp(&r.1),
                pp(&r.2),
                ms(r.2.p50) / ms(clear.2.p50).max(1e-9)
            ));
        }
    }
    table.push_str(&live_age(&patch)?);
    table.push_str(&record_speed(&patch_path)?);
    table.push_str(&offline_speed(&spec)?);
    Ok(table)
}

/// Audio to picture, live: a live engine plays the default patch on a paced
/// audio thread (128-frame blocks) and publishes every block on its tap; a
/// 60 fps loop drains the tap, draws and reads the frame back. The age is
/// how long before the frame was ready its newest audio was published.
fn live_age(patch: &PatchSource) -> anyhow::Result<String> {
    use clavm_audio::live::tap::Tap;

    use crate::picture::live_feed::TapFeed;

    let name = format!("bench-render-{}", std::process::id());
    let (live, mut processor) = super::live::start()?;
    processor.set_tap(Tap::create(&name, 2, 0)?);
    live.submit(patch.clone());
    super::live::play_until(&live, &mut processor, 1)?;
    let audio = super::live::AudioThread::start(processor);
    let mut feed = TapFeed::open(&name, Duration::from_secs(2), false)?;
    let gpu = picture::open_gpu(GpuChoice::Auto)?;
    let mut pic =
        Picture::new(&gpu, Size { width: 1280, height: 720 }, ViewKind::All, feed.sample_rate, feed.channels)?;
    let warm = pic.draw()?;
    pic.pixels(warm)?;
    let period = Duration::from_secs_f64(1.0 / 60.0);
    let (mut ages, mut frames) = (Vec::new(), Vec::new());
    let mut next = Instant::now();
    for _ in 0..180 {
        let t0 = Instant::now();
        feed.drain(&mut pic.analysis);
        let ticket = pic.draw()?;
        pic.pixels(ticket)?;
        frames.push(t0.elapsed());
        if let Some(age) = feed.age() {
            ages.push(age);
        }
        next += period;
        if let Some(w) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
    }
    let dropped = feed.dropped();
    drop(audio);
    live.shutdown();
    let (age, frame) = (Percentiles::of(&mut ages), Percentiles::of(&mut frames));
    let block = 128.0 / 48.0;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(format!(
        "\nLive audio to picture (1280x720, all panels, 60 fps, a live engine on a paced 128-frame audio \
         thread, its tap drained before each frame): newest audio {:.1} / {:.1} ms old (p50 / p99) when the \
         frame was ready, against a bound of one frame plus one block ({:.1} ms + {block:.2} ms); the frame \
         itself took {:.1} / {:.1} ms; {dropped} tap blocks dropped.\n",
        ms(age.p50),
        ms(age.p99),
        ms(period),
        ms(frame.p50),
        ms(frame.p99),
    ))
}

/// `clavm record` of the default patch, 5 s at 1280x720 and 60 fps, run as
/// a user would (a child process, ffmpeg included).
fn record_speed(patch: &std::path::Path) -> anyhow::Result<String> {
    let dir = tempfile_dir()?;
    let out = dir.join("bench.mp4");
    let seconds = 5.0;
    let t0 = Instant::now();
    let status = std::process::Command::new(std::env::current_exe()?)
        .args(["record", "--seconds", "5", "--size", "1280x720", "--fps", "60", "-o"])
        .arg(&out)
        .arg(patch)
        .stdout(std::process::Stdio::null())
        .status()
        .context("running clavm record")?;
    let wall = t0.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(status.success(), "clavm record failed: {status}");
    Ok(format!(
        "\n`clavm record` (default patch, {seconds} s, 1280x720, 60 fps, H.264 via ffmpeg, wall time including \
         ffmpeg and the mux): {wall:.2} s, **{:.2}x real time** (target: above 1x).\n",
        seconds / wall
    ))
}

/// The offline audio render of the default patch into a WAV file, as
/// `clavm render` does it: in this process (`render_with`, what the commands
/// did before) against a sandboxed child (`render_isolated`, what they do
/// now: spawn, sandbox, compile and the stream included), alternating, the
/// median of each.
fn offline_speed(spec: &RenderSpec) -> anyhow::Result<String> {
    const ROUNDS: usize = 5;
    let seconds = 10.0;
    let spec = RenderSpec { length: Frames::from_seconds(seconds, spec.config.sample_rate), ..spec.clone() };
    let dir = tempfile_dir()?;
    let exe = std::env::current_exe()?;
    let wav = dir.join("offline.wav");
    let once = |isolated: bool| -> anyhow::Result<Duration> {
        let rate = spec.config.sample_rate as u32;
        let mut file = offline::WavFile::create(&wav, spec.config.channels, rate, offline::WavFormat::Float32)?;
        let t0 = Instant::now();
        let mut sink = |b: &[f32]| file.write(b);
        if isolated {
            offline::render_isolated(&exe, Duration::from_secs(10), &spec, &Progress::new(), &mut sink)?;
        } else {
            offline::render_with(&spec, &Progress::new(), &mut sink)?;
        }
        file.finish()?;
        Ok(t0.elapsed())
    };
    let (mut direct, mut isolated) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        direct.push(once(false)?);
        isolated.push(once(true)?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (d, i) = (Percentiles::of(&mut direct).p50, Percentiles::of(&mut isolated).p50);
    let x = |t: Duration| seconds / t.as_secs_f64().max(1e-9);
    Ok(format!(
        "\nOffline audio render (default patch, {seconds} s, 2 ch, 64-frame blocks, into a f32 WAV file; median of \
         {ROUNDS}, the two alternating):\n\n\
         | render | wall time | real time |\n|---|---:|---:|\n\
         | in-process (`render_with`) | {:.3} s | {:.1}x |\n\
         | sandboxed child (`render_isolated`, as every command: spawn, sandbox, stream) | {:.3} s | {:.1}x |\n\n\
         The sandboxed render's wall time is {:+.1}% against the in-process one (target: within 10%).\n",
        d.as_secs_f64(),
        x(d),
        i.as_secs_f64(),
        x(i),
        (i.as_secs_f64() / d.as_secs_f64().max(1e-9) - 1.0) * 100.0
    ))
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("clavm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
