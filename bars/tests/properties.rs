//! Property tests over random trees, streams and networks.

use clavm_bars::model::{Bar, BarId, BarTree, Connector, Interval, Parent, Pitch};
use clavm_bars::sim::{Sim, NOMINAL_CYCLE};
use clavm_bars::{text, wire};
use proptest::prelude::*;

/// A random tree from a list of choices: each bar hangs from some free
/// connector of an earlier bar (the first from the root).
fn build_tree(choices: &[(u8, u16, u8, bool, bool)]) -> BarTree {
    let mut bars: Vec<Bar> = Vec::new();
    let mut taken: Vec<[bool; 4]> = Vec::new();
    for &(code, pick, _, face, touched) in choices {
        let interval = Interval::from_code(code % 8).unwrap();
        let axis = if face { clavm_bars::model::Axis::Faces } else { clavm_bars::model::Axis::Ends };
        let (parent, by) = if bars.is_empty() {
            (Parent::Root, Connector::of(clavm_bars::model::Gender::Male, axis))
        } else {
            let free: Vec<(usize, Connector)> = (0..bars.len())
                .flat_map(|b| Connector::ALL.into_iter().map(move |c| (b, c)))
                .filter(|&(b, c)| !taken[b][c.index()])
                .collect();
            if free.is_empty() {
                break;
            }
            let (b, c) = free[pick as usize % free.len()];
            taken[b][c.index()] = true;
            (Parent::Bar(BarId(b as u8), c), Connector::of(c.gender().opposite(), axis))
        };
        let mut t = [false; 4];
        t[by.index()] = true;
        taken.push(t);
        bars.push(Bar { interval, parent, by, touched });
    }
    BarTree::new(440.0, bars, vec![]).expect("built to be valid")
}

fn trees(max: usize) -> impl Strategy<Value = BarTree> {
    prop::collection::vec((any::<u8>(), any::<u16>(), any::<u8>(), any::<bool>(), any::<bool>()), 0..max)
        .prop_map(|c| build_tree(&c))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoded_stream_equals_the_tree(tree in trees(255)) {
        let words = wire::encode(&tree);
        let back = wire::decode(&words, tree.base_hz()).unwrap();
        prop_assert!(back.same_structure(&tree));
        prop_assert!(back.same_structure(&tree.to_preorder()));
        prop_assert_eq!(wire::encode(&back), words.clone());
        let bits = wire::to_bits(&words);
        prop_assert!(wire::decode(&wire::words_from_bits(&bits).unwrap(), 440.0).unwrap().same_structure(&tree));
        // Pitches survive the wire exactly.
        for (k, id) in tree.preorder().iter().enumerate() {
            prop_assert_eq!(tree.pitch(*id), back.pitch(BarId(k as u8)));
            prop_assert_eq!(tree.frequency(*id).to_bits(), back.frequency(BarId(k as u8)).to_bits());
        }
    }

    #[test]
    fn any_words_decode_or_fail_cleanly(values in prop::collection::vec(any::<u16>(), 0..300)) {
        match wire::words_from_values(&values).and_then(|w| wire::decode(&w, 440.0).map(|t| (w, t))) {
            Ok((words, tree)) => prop_assert_eq!(wire::encode(&tree), words),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn any_nine_bit_words_decode_or_fail_cleanly(values in prop::collection::vec(0u16..512, 0..40)) {
        let words = wire::words_from_values(&values).unwrap();
        if let Ok(tree) = wire::decode(&words, 440.0) {
            prop_assert_eq!(wire::encode(&tree), words);
        }
    }

    #[test]
    fn any_bits_decode_or_fail_cleanly(bits in prop::collection::vec(any::<bool>(), 0..400)) {
        if let Ok(words) = wire::words_from_bits(&bits) {
            let _ = wire::decode(&words, 440.0);
        } else {
            prop_assert!(bits.len() % 9 != 0);
        }
    }

    #[test]
    fn truncated_streams_are_errors(tree in trees(60), cut in any::<usize>()) {
        let words = wire::encode(&tree);
        prop_assume!(words.len() > 1);
        let cut = 1 + cut % (words.len() - 1);
        prop_assert!(wire::decode(&words[..cut], 440.0).is_err());
    }

    #[test]
    fn octaves_up_and_down_are_exact(two in -40i32..40, three in -30i32..30, five in -20i32..20, k in 1i32..20) {
        let p = Pitch::new(two, three, five);
        let mut q = p;
        for _ in 0..k { q = q + Interval::Octave.pitch(); }
        for _ in 0..k { q = q - Interval::Octave.pitch(); }
        prop_assert_eq!(q, p);
        prop_assert_eq!(q.frequency(440.0).to_bits(), p.frequency(440.0).to_bits());
        let up = Pitch::new(two + k, three, five).frequency(440.0);
        prop_assert!((up / p.frequency(440.0) - 2f64.powi(k)).abs() < 1e-9 * 2f64.powi(k));
    }

    #[test]
    fn every_note_is_the_product_along_its_path(tree in trees(80)) {
        use clavm_bars::model::Gender;
        // The pitch at connector c of bar b, from the root down: crossing a bar
        // from a male to a female connector multiplies by its ratio, female to
        // male divides, same gender leaves it alone.
        fn at(tree: &BarTree, b: BarId, c: Connector) -> Pitch {
            let bar = tree.bar(b);
            let entry = match bar.parent { Parent::Root => Pitch::UNISON, Parent::Bar(p, pc) => at(tree, p, pc) };
            match (bar.by.gender(), c.gender()) {
                (Gender::Male, Gender::Female) => entry + bar.interval.pitch(),
                (Gender::Female, Gender::Male) => entry - bar.interval.pitch(),
                _ => entry,
            }
        }
        for id in tree.ids() {
            let by = tree.bar(id).by;
            let far = Connector::of(by.gender().opposite(), by.axis());
            prop_assert_eq!(tree.pitch(id), at(&tree, id, far));
            for c in Connector::ALL {
                prop_assert_eq!(tree.connector_pitch(id, c), at(&tree, id, c));
            }
        }
    }

    #[test]
    fn text_format_round_trips(tree in trees(120)) {
        let src = text::format(&tree);
        let back = text::parse(&src).unwrap();
        prop_assert!(back.same_structure(&tree));
        for (a, b) in tree.preorder().iter().zip(back.preorder()) {
            prop_assert_eq!(tree.name(*a), back.name(*b));
        }
        prop_assert_eq!(text::format(&back), src);
    }

    #[test]
    fn any_text_parses_or_fails_with_a_line(src in "[a-z0-9 ./#\\n]{0,200}") {
        if let Err(e) = text::parse(&src) {
            prop_assert!(e.line() <= src.lines().count().max(1));
        }
    }
}

/// A random graph: links between free connectors of opposite gender, the
/// root's connector included, so cycles and parallel links are common.
fn links(bars: usize, picks: &[(u16, u16)]) -> Vec<((usize, Connector), (usize, Connector))> {
    let mut free: Vec<(usize, Connector)> = std::iter::once((0, Connector::N))
        .chain((1..=bars).flat_map(|b| Connector::ALL.into_iter().map(move |c| (b, c))))
        .collect();
    let gender =
        |(a, c): (usize, Connector)| if a == 0 { clavm_bars::model::ROOT_CONNECTOR_GENDER } else { c.gender() };
    let mut out = Vec::new();
    for &(x, y) in picks {
        if free.is_empty() {
            break;
        }
        let p = free[x as usize % free.len()];
        let mates: Vec<_> = free.iter().copied().filter(|&q| q.0 != p.0 && gender(q) != gender(p)).collect();
        if mates.is_empty() {
            continue;
        }
        let q = mates[y as usize % mates.len()];
        free.retain(|&f| f != p && f != q);
        out.push((p, q));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Plugging a graph with cycles, link by link in any order and at any
    /// time, the root ends up with the depth-first spanning tree: every bar
    /// reachable from it exactly once, no cycles.
    #[test]
    fn prime_yields_the_spanning_tree_whatever_the_plug_order(
        bars in 1usize..14,
        picks in prop::collection::vec((any::<u16>(), any::<u16>()), 1..30),
        order in any::<u64>(),
        gaps in prop::collection::vec(0i64..3000, 30),
        seed in any::<u64>(),
    ) {
        let mut plan = links(bars, &picks);
        // Shuffle the plug order deterministically from `order`.
        let mut state = order | 1;
        for i in (1..plan.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            plan.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut sim = Sim::manual(bars, seed);
        for (k, (a, b)) in plan.iter().enumerate() {
            sim.run_until(sim.now() + gaps[k % gaps.len()] * NOMINAL_CYCLE);
            prop_assert!(sim.plug(*a, *b).is_ok());
        }
        // Two full updates of the largest tree are plenty.
        let deadline = sim.now() + (4_000 + 2 * 800 * bars as i64) * NOMINAL_CYCLE;
        while sim.now() < deadline && sim.root_words() != sim.true_words() {
            sim.run_until(sim.now() + 500 * NOMINAL_CYCLE);
        }
        let words = sim.root_words();
        prop_assert_eq!(&words, &sim.true_words(), "links {:?}", plan);
        let tree = wire::decode(&words, 440.0).unwrap();
        // Spanning: as many bars as the root's component has.
        let mut reach = vec![false; bars + 1];
        reach[0] = true;
        loop {
            let mut grew = false;
            for (a, b) in &plan {
                if reach[a.0] != reach[b.0] { reach[a.0] = true; reach[b.0] = true; grew = true; }
            }
            if !grew { break; }
        }
        let component = reach.iter().filter(|r| **r).count() - 1;
        prop_assert_eq!(tree.len(), component);
    }
}

proptest::proptest! {
    /// Any sequence of plugging, pulling and turning bars gives a valid tree
    /// (or a clear refusal), never a panic, and the bar count adds up.
    #[test]
    fn any_edits_keep_the_tree_valid(ops in proptest::collection::vec((0u8..3, 0usize..40, 0usize..8), 0..60)) {
        use clavm_bars::model::edit::{add_bar, remove_bar, rotate_bar};
        use clavm_bars::{BarId, BarTree, Interval};
        let mut t = BarTree::empty();
        for (op, at, interval) in ops {
            let target = (!t.is_empty()).then(|| BarId((at % t.len()) as u8));
            match op {
                0 => {
                    let parent = if t.is_empty() { None } else { target };
                    if let Ok((n, id)) = add_bar(&t, parent, Interval::ALL[interval]) {
                        proptest::prop_assert_eq!(n.len(), t.len() + 1);
                        proptest::prop_assert!(n.frequency(id) > 0.0);
                        t = n;
                    }
                }
                1 => if let Some(id) = target {
                    let n = remove_bar(&t, id).unwrap();
                    proptest::prop_assert!(n.len() < t.len());
                    t = n;
                },
                _ => if let Some(id) = target {
                    let n = rotate_bar(&t, id).unwrap();
                    proptest::prop_assert_eq!(n.len(), t.len());
                    t = n;
                },
            }
        }
    }
}
