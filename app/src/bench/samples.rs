//! `clavm bench --samples`: how fast sound files become samples (decode plus
//! resample, in times real time on one core, against a plain hound read and
//! a memcpy of the same audio in the same run), what a minute of stereo
//! takes in memory, and what `Sample()` costs per voice against `Cycle()`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use clavm_audio::patch::{self, sites::SiteRegistry, CompileOptions};
use clavm_audio::samples::{self, MemoryBudget, SampleData, SampleSet, Samples};
use clavm_audio::PatchSource;

use super::Runner;

/// Seconds of audio in each test file.
const SECONDS: f64 = 60.0;
const FILE_RATE: u32 = 44100;
const ENGINE_RATE: u32 = 48000;
/// Timed loads per file; the median is kept.
const RUNS: usize = 3;
/// Voices in the per-voice measurement.
const VOICES: usize = 16;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn timed(mut f: impl FnMut()) -> f64 {
    median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// A minute of stereo at 44.1 kHz, 16-bit: two detuned sines and some noise
/// (so the lossy encoders have work to do).
fn write_wav(path: &Path) -> anyhow::Result<()> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: FILE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)?;
    let mut seed = 1u64;
    for i in 0..(SECONDS * f64::from(FILE_RATE)) as usize {
        let t = i as f64 / f64::from(FILE_RATE);
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let noise = ((seed >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 0.05;
        for hz in [220.0, 331.0] {
            let v = 0.4 * (std::f64::consts::TAU * hz * t).sin() + noise;
            w.write_sample((v * 32767.0) as i16)?;
        }
    }
    w.finalize()?;
    Ok(())
}

/// `wav` converted by sox or ffmpeg into `ext`, if the tool is there.
fn convert(wav: &Path, ext: &str) -> Option<PathBuf> {
    let out = wav.with_extension(ext);
    let (w, o) = (wav.to_str()?, out.to_str()?);
    let ok = match ext {
        "flac" => Command::new("sox").args([w, o]).status(),
        "ogg" => Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y", "-i", w, "-c:a", "libvorbis", "-q:a", "5", o])
            .status(),
        "mp3" => Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y", "-i", w, "-c:a", "libmp3lame", "-b:a", "192k", o])
            .status(),
        _ => return None,
    };
    match ok {
        Ok(s) if s.success() => Some(out),
        _ => {
            eprintln!("clavm bench: no {ext} file (sox/ffmpeg missing?)");
            None
        }
    }
}

fn load(path: &Path, rate: u32) -> anyhow::Result<SampleData> {
    Ok(samples::load(path, rate, &mut MemoryBudget::default())?)
}

/// ns per frame of `VOICES` calls of `call` (a C expression of `i`).
fn voices(call: &str, set: &SampleSet, frames: u64) -> anyhow::Result<f64> {
    let text = format!(
        "void play(void) {{ float s = 0; for (int i = 0; i < {VOICES}; i++) s += {call}; _out(0, s * 0.05f); }}\n"
    );
    let p = patch::compile(
        &PatchSource::from_text("voices.c", &text),
        &SiteRegistry::default(),
        &CompileOptions::default(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let table = Samples::new(set.clone());
    let program = &p.program;
    // SAFETY: the context is entered around every call into the patch.
    let mut r = Runner::new(|ctx| ctx.enter(|| unsafe { program.play() }), |_| {});
    // SAFETY: `table` outlives the runner (both live to the end of this function).
    unsafe { r.ctx.set_samples(table.table()) };
    let ns = super::time_side_by_side(&mut [r], frames)[0];
    Ok(ns)
}

pub fn run(frames: u64) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let wav = dir.path().join("minute.wav");
    write_wav(&wav)?;
    let audio_s = SECONDS;
    let mut t = format!(
        "A minute of 16-bit stereo at {FILE_RATE} Hz loaded as a sample at {ENGINE_RATE} Hz (symphonia, then \
         rubato's FFT resampler), one core, median of {RUNS}; x real time = {SECONDS} s / time taken. The \
         references ran in the same process just before: hound reading the WAV into f32, and a memcpy of the \
         decoded minute.\n\n\
         | what | ms | x real time |\n|---|---:|---:|\n"
    );
    let row = |t: &mut String, what: &str, s: f64| *t += &format!("| {what} | {:.1} | {:.0} |\n", s * 1e3, audio_s / s);
    // References: hound's read of the same file, a memcpy of the result.
    let hound_s = timed(|| {
        let mut r = hound::WavReader::open(&wav).expect("the bench's own file");
        let v: Vec<f32> = r.samples::<i16>().map(|s| f32::from(s.unwrap_or(0)) / 32768.0).collect();
        std::hint::black_box(v);
    });
    row(&mut t, "reference: hound reads the WAV", hound_s);
    let decoded = load(&wav, FILE_RATE)?;
    let copy_s = timed(|| {
        std::hint::black_box(decoded.samples.clone());
    });
    row(&mut t, "reference: memcpy of the decoded minute", copy_s);
    row(&mut t, "WAV, decode only (no resampling)", timed(|| drop(load(&wav, FILE_RATE))));
    let mut resampled = None;
    row(&mut t, "WAV, decode + resample", timed(|| resampled = load(&wav, ENGINE_RATE).ok()));
    for ext in ["flac", "ogg", "mp3"] {
        if let Some(f) = convert(&wav, ext) {
            let name = match ext {
                "flac" => "FLAC",
                "ogg" => "Ogg Vorbis (q5)",
                _ => "MP3 (192 kb/s)",
            };
            row(&mut t, &format!("{name}, decode + resample"), timed(|| drop(load(&f, ENGINE_RATE))));
        }
    }
    let sample = resampled.ok_or_else(|| anyhow::anyhow!("the bench's own WAV did not load"))?;
    let mib = sample.bytes() as f64 / f64::from(1 << 20);
    t += &format!(
        "\nMemory: a minute of stereo at {ENGINE_RATE} Hz holds {} frames of 2 x f32: {mib:.1} MiB per minute \
         ({:.0} minutes fit in the default 1 GiB sample memory).\n",
        sample.frames(),
        1024.0 / mib
    );
    let mut set = SampleSet::default();
    set.set(0, Arc::new(sample));
    let cycle = voices("Cycle(220.0f + i)", &set, frames)?;
    let one_shot = voices("Sample(0, 1.0f + 0.01f * i, 1)", &set, frames)?;
    let looped = voices("SampleLoop(0, 1.0f + 0.01f * i)", &set, frames)?;
    let channel = voices("SampleLoopCh(0, i, 1.0f + 0.01f * i)", &set, frames)?;
    t += &format!(
        "\n{VOICES} voices in one loop of one `play()` (TinyCC), {frames} frames, median of 5 rounds; per voice \
         = ns per frame / {VOICES}. The stereo minute above, at speeds 1.00 to 1.15 (interpolating).\n\n\
         | builtin | ns per voice | against `Cycle()` |\n|---|---:|---:|\n"
    );
    for (what, ns) in [
        ("`Cycle(f)`", cycle),
        ("`Sample(0, speed, 1)` (mean of 2 channels)", one_shot),
        ("`SampleLoop(0, speed)` (mean of 2 channels)", looped),
        ("`SampleLoopCh(0, i, speed)` (one channel)", channel),
    ] {
        t += &format!("| {what} | {:.1} | {:.2}x |\n", ns / VOICES as f64, ns / cycle);
    }
    Ok(t)
}
