//! `clavm bench --voices`: what polyphony costs. The example patch
//! `poly.c` runs in the engine (protection included, as a block is really
//! processed) with 1, 8 and 16 voices, every voice holding a note; the
//! engines take turns block by block, so machine noise hits them alike, and
//! the 1-voice engine of the same run is the reference.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use clavm_audio::engine::{self, Engine, EngineConfig};
use clavm_audio::voices::{NoteEvent, VoiceCount};
use clavm_audio::PatchSource;

use super::stats::Percentiles;

const RATE: f64 = 48000.0;
const BLOCK: usize = 128;
const BLOCKS: usize = 3000;
const VOICES: [i64; 3] = [1, 8, 16];

/// An engine playing `source` with `voices` voices, each holding a note.
fn engine_with(source: &PatchSource, voices: i64) -> anyhow::Result<(Engine, engine::EngineHandle)> {
    let mut cfg = EngineConfig::new(RATE, 2);
    cfg.voices = VoiceCount::new(voices).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (mut engine, mut handle) = engine::engine(cfg)?;
    let program = handle.compile(source).map_err(|e| anyhow::anyhow!("{e}"))?;
    handle.install(program).map_err(|e| anyhow::anyhow!("{e}"))?;
    for v in 0..voices {
        engine.note(NoteEvent::On { note: 40 + 3 * v as u8, velocity: 100 });
    }
    Ok((engine, handle))
}

pub fn run(patches: &Path) -> anyhow::Result<String> {
    let path = patches.join("poly.c");
    let source = PatchSource::from_file(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut engines = VOICES
        .iter()
        .map(|&v| engine_with(&source, v).with_context(|| format!("{} voices", v)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut out = vec![0.0f32; BLOCK * 2];
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(BLOCKS); VOICES.len()];
    // Warm up (caches, the attack), then alternate.
    for _ in 0..200 {
        for (e, h) in &mut engines {
            e.process(&[], &mut out);
            h.collect();
        }
    }
    for _ in 0..BLOCKS {
        for (i, (e, h)) in engines.iter_mut().enumerate() {
            let t = Instant::now();
            e.process(&[], &mut out);
            times[i].push(t.elapsed());
            h.collect();
        }
    }
    let busy: Vec<usize> = engines.iter().map(|(e, _)| e.voice_counts().notes as usize).collect();
    let p: Vec<Percentiles> = times.iter_mut().map(|t| Percentiles::of(t)).collect();
    let block_time = BLOCK as f64 / RATE;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mut s = format!(
        "`{}` in the engine, {BLOCK}-frame blocks at {RATE} Hz ({:.2} ms), every voice holding a note; \
         {BLOCKS} blocks each, the engines alternating block by block. \
         The reference is the 1-voice engine of the same run.\n\n\
         | voices | notes held | per block p50 (µs) | p99 (µs) | per voice p50 (µs) | vs 1 voice (p50) | share of the block (p50) |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
        path.display(),
        block_time * 1e3
    );
    for (i, v) in VOICES.iter().enumerate() {
        s.push_str(&format!(
            "| {v} | {} | {:.1} | {:.1} | {:.1} | {:.2}x | {:.1}% |\n",
            busy[i],
            us(p[i].p50),
            us(p[i].p99),
            us(p[i].p50) / *v as f64,
            p[i].p50.as_secs_f64() / p[0].p50.as_secs_f64(),
            p[i].p50.as_secs_f64() / block_time * 100.0
        ));
    }
    Ok(s)
}
