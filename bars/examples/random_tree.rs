//! Prints a random tree in the `.bars` format: `cargo run -p clavm-bars
//! --example random_tree -- BARS SEED` (made assets/bars/random-100.bars).

use clavm_bars::model::{Axis, Bar, BarId, BarTree, Connector, Gender, Interval, Parent};
use rand::{Rng, SeedableRng};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100).min(clavm_bars::MAX_BARS);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut bars: Vec<Bar> = Vec::new();
    let mut taken: Vec<[bool; 4]> = Vec::new();
    for i in 0..n {
        let interval = Interval::from_code(rng.random_range(0..8)).unwrap_or(Interval::Fifth);
        let axis = if rng.random_bool(0.5) { Axis::Faces } else { Axis::Ends };
        let (parent, by) = if i == 0 {
            (Parent::Root, Connector::of(Gender::Male, axis))
        } else {
            let free: Vec<(usize, Connector)> = (0..bars.len())
                .flat_map(|b| Connector::ALL.into_iter().map(move |c| (b, c)))
                .filter(|&(b, c)| !taken[b][c.index()])
                .collect();
            let (b, c) = free[rng.random_range(0..free.len())];
            taken[b][c.index()] = true;
            (Parent::Bar(BarId(b as u8), c), Connector::of(c.gender().opposite(), axis))
        };
        let mut t = [false; 4];
        t[by.index()] = true;
        taken.push(t);
        bars.push(Bar { interval, parent, by, touched: rng.random_bool(0.1) });
    }
    match BarTree::new(440.0, bars, vec![]) {
        Ok(tree) => print!("{}", clavm_bars::text::format(&tree)),
        Err(e) => eprintln!("random_tree: {e}"),
    }
}
