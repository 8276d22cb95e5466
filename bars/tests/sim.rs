//! The simulator under random plugging, as the benchmark runs it but shorter.

use std::sync::atomic::AtomicU64;

use clavm_bars::sim::{self, Plugging, SimConfig};

#[test]
fn three_thousand_random_configurations_all_settle() {
    let config = SimConfig { bars: 100, configs: 3_000, seed: 7, threads: 2, plugging: Plugging::default() };
    let r = sim::run(config, &AtomicU64::new(0));
    let s = &r.stats;
    assert_eq!(s.configs, 3_000);
    assert!(s.never_settled.is_empty(), "never settled: {:?}", s.never_settled);
    assert_eq!(s.regressions, 0, "wrong trees after settling: {:?}", s.regression_examples);
    assert!(s.settled_count() > 100, "changes that moved the root's tree: {}", s.settled_count());
    assert!(s.settle_max_ms() < 1000.0);
}

#[test]
fn small_networks_settle_too() {
    for bars in [1, 2, 5, 20] {
        let config = SimConfig { bars, configs: 500, seed: bars as u64, threads: 1, plugging: Plugging::default() };
        let r = sim::run(config, &AtomicU64::new(0));
        assert!(r.stats.never_settled.is_empty(), "{bars} bars: {:?}", r.stats.never_settled);
        assert_eq!(r.stats.regressions, 0, "{bars} bars");
    }
}

#[test]
fn a_seed_replays_exactly() {
    let config = SimConfig { bars: 30, configs: 200, seed: 99, threads: 1, plugging: Plugging::default() };
    let a = sim::run(config, &AtomicU64::new(0)).stats;
    let b = sim::run(config, &AtomicU64::new(0)).stats;
    assert_eq!(
        (a.events, a.updates, a.bars_delivered, a.simulated_ps),
        (b.events, b.updates, b.bars_delivered, b.simulated_ps)
    );
}

#[test]
fn a_network_watched_slice_by_slice_keeps_changing_and_its_root_tree_decodes() {
    use clavm_bars::sim::{Plugging, Sim, NOMINAL_CYCLE};
    let mut sim = Sim::new(12, 3, Plugging { warmup_changes: 20, ..Plugging::default() });
    let mut trees = std::collections::HashSet::new();
    // Half a simulated second in 5 ms slices, as the app advances it.
    for k in 1..=100 {
        sim.run_for(k * 5_000 * NOMINAL_CYCLE);
        let words = sim.root_words();
        let tree = clavm_bars::wire::decode(&words, 440.0).expect("the root's tree decodes");
        trees.insert(clavm_bars::wire::encode(&tree).iter().map(|w| w.bits()).collect::<Vec<_>>());
    }
    assert!(trees.len() > 3, "the plugging changed the tree: {} different trees", trees.len());
}
