//! A discrete-event simulator of a network of interval bars running the prime
//! and data protocol at the signal level, with random plugging.
//!
//! - `waveform`: what one side drives onto a line (patterns in its own cycles).
//! - `line`: open-drain lines (wired-AND), who is plugged into whom.
//! - `wait`: a bar's poll-and-sample sequences, evaluated lazily but exactly.
//! - `timing`: the protocol's timings.
//! - `queue`: which actor wakes next (a tournament tree, one slot per actor).
//! - `engine`: the actors (root and bars), the protocol, the event heap, the plugging.
//! - `stats`: what a run measured.
//!
//! Design and the protocol: docs/BARS.md.

mod engine;
mod line;
mod queue;
mod stats;
mod timing;
mod wait;
mod waveform;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use engine::{PlugError, Plugging, Sim};
pub use stats::{StreamStats, Unsettled};
pub use waveform::{Time, NOMINAL_CYCLE};

/// A run: `configs` configurations of `bars` bars, split over `threads` streams.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    pub bars: usize,
    pub configs: u64,
    /// Stream i uses seed `seed + i`.
    pub seed: u64,
    pub threads: usize,
    pub plugging: Plugging,
}

/// The merged result of all streams.
#[derive(Clone, Debug)]
pub struct SimReport {
    pub config: SimConfig,
    pub stats: StreamStats,
    pub real: Duration,
}

/// Runs the streams in parallel; `progress` counts configurations done.
pub fn run(config: SimConfig, progress: &AtomicU64) -> SimReport {
    let threads = config.threads.max(1);
    let started = Instant::now();
    let per = config.configs / threads as u64;
    let extra = config.configs % threads as u64;
    let results: Vec<StreamStats> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let configs = per + u64::from((i as u64) < extra);
                let seed = config.seed.wrapping_add(i as u64);
                scope.spawn(move || {
                    let mut sim = Sim::new(config.bars, seed, config.plugging);
                    sim.run(configs, &|n| {
                        progress.fetch_add(n, Ordering::Relaxed);
                    });
                    sim.stats
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a simulator thread panicked")).collect()
    });
    let mut stats = results[0].clone();
    for r in &results[1..] {
        stats.merge(r);
    }
    SimReport { config, stats, real: started.elapsed() }
}
