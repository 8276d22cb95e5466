//! What a run measured.

use super::waveform::{Time, NOMINAL_CYCLE};

/// Settling times are kept in buckets of this many picoseconds (10 µs).
const BUCKET_PS: Time = 10 * NOMINAL_CYCLE;

/// A configuration worth looking at again: how to get it back and what it was.
#[derive(Clone, Debug)]
pub struct Unsettled {
    /// The stream's seed: `clavm bars sim --threads 1 --seed SEED --configs CONFIG` replays it.
    pub seed: u64,
    /// Index of the configuration (the change that made it) in that stream.
    pub config: u64,
    /// When the change happened (simulated ps).
    pub at_ps: Time,
    /// Bars in the true tree.
    pub true_bars: usize,
    /// The change that made the configuration.
    pub change: String,
    /// Every plugged link, `b3.E-b7.W` style.
    pub links: String,
}

/// Counters of one stream, or of several merged.
#[derive(Clone, Debug)]
pub struct StreamStats {
    pub seeds: Vec<u64>,
    /// Configurations run (plug or unplug events).
    pub configs: u64,
    /// ...of which did not change the tree reachable from the root.
    pub unaffected: u64,
    /// Complete streams the root received (updates).
    pub updates: u64,
    /// Words (bars) in those streams.
    pub bars_delivered: u64,
    /// Updates the root gave up on (a word never came).
    pub aborted_updates: u64,
    /// Streams whose words did not form a tree.
    pub malformed_streams: u64,
    /// Requests repeated because the sender was busy or gone.
    pub retries: u64,
    /// Primed bars re-primed through their parent connector.
    pub restarts: u64,
    /// Wake-ups processed.
    pub events: u64,
    /// Updates that delivered a wrong tree after the right one, with no change between.
    pub regressions: u64,
    pub regression_examples: Vec<Unsettled>,
    pub never_settled: Vec<Unsettled>,
    /// Simulated time, summed over streams.
    pub simulated_ps: Time,
    settle_buckets: Vec<u64>,
    settle_sum_ps: u128,
    settle_count: u64,
    settle_max_ps: Time,
}

impl StreamStats {
    pub fn new(seed: u64, settle_limit_cycles: u64) -> StreamStats {
        let buckets = (settle_limit_cycles as Time * NOMINAL_CYCLE / BUCKET_PS + 2) as usize;
        StreamStats {
            seeds: vec![seed],
            configs: 0,
            unaffected: 0,
            updates: 0,
            bars_delivered: 0,
            aborted_updates: 0,
            malformed_streams: 0,
            retries: 0,
            restarts: 0,
            events: 0,
            regressions: 0,
            regression_examples: Vec::new(),
            never_settled: Vec::new(),
            simulated_ps: 0,
            settle_buckets: vec![0; buckets],
            settle_sum_ps: 0,
            settle_count: 0,
            settle_max_ps: 0,
        }
    }

    pub fn record_settle(&mut self, ps: Time) {
        let b = ((ps / BUCKET_PS) as usize).min(self.settle_buckets.len() - 1);
        self.settle_buckets[b] += 1;
        self.settle_sum_ps += ps as u128;
        self.settle_count += 1;
        self.settle_max_ps = self.settle_max_ps.max(ps);
    }

    pub fn merge(&mut self, o: &StreamStats) {
        self.seeds.extend_from_slice(&o.seeds);
        self.configs += o.configs;
        self.unaffected += o.unaffected;
        self.updates += o.updates;
        self.bars_delivered += o.bars_delivered;
        self.aborted_updates += o.aborted_updates;
        self.malformed_streams += o.malformed_streams;
        self.retries += o.retries;
        self.restarts += o.restarts;
        self.events += o.events;
        self.regressions += o.regressions;
        self.regression_examples.extend(o.regression_examples.iter().cloned());
        self.never_settled.extend(o.never_settled.iter().cloned());
        self.simulated_ps += o.simulated_ps;
        if self.settle_buckets.len() < o.settle_buckets.len() {
            self.settle_buckets.resize(o.settle_buckets.len(), 0);
        }
        for (a, b) in self.settle_buckets.iter_mut().zip(&o.settle_buckets) {
            *a += b;
        }
        self.settle_sum_ps += o.settle_sum_ps;
        self.settle_count += o.settle_count;
        self.settle_max_ps = self.settle_max_ps.max(o.settle_max_ps);
    }

    /// Configurations that needed the root to notice (and settled).
    pub fn settled_count(&self) -> u64 {
        self.settle_count
    }

    pub fn settle_mean_ms(&self) -> f64 {
        if self.settle_count == 0 {
            0.0
        } else {
            self.settle_sum_ps as f64 / self.settle_count as f64 / 1e9
        }
    }

    pub fn settle_max_ms(&self) -> f64 {
        self.settle_max_ps as f64 / 1e9
    }

    /// The q-quantile, to the 10 µs bucket's upper edge.
    pub fn settle_quantile_ms(&self, q: f64) -> f64 {
        if self.settle_count == 0 {
            return 0.0;
        }
        let target = (q * self.settle_count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.settle_buckets.iter().enumerate() {
            seen += n;
            if seen >= target {
                return ((i as Time + 1) * BUCKET_PS) as f64 / 1e9;
            }
        }
        self.settle_max_ms()
    }

    pub fn simulated_seconds(&self) -> f64 {
        self.simulated_ps as f64 / 1e12
    }
}
