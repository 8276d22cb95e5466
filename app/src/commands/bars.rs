//! `clavm bars`: interval bars. `show` and `check` read a `.bars` file; `sim`
//! runs the protocol simulator with random plugging (docs/BARS.md).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clavm_bars::model::{BarTree, NoteName};
use clavm_bars::sim::{self, Plugging, SimConfig, SimReport};

#[derive(clap::Args)]
pub struct BarsArgs {
    #[command(subcommand)]
    command: BarsCommand,
}

#[derive(clap::Subcommand)]
enum BarsCommand {
    /// Print a tree with every bar's pitch, note name and cents from 12-TET.
    Show { file: PathBuf },
    /// Validate a tree file (exit 1 with the line on error).
    Check { file: PathBuf },
    /// Simulate bars running the prime and data protocol under random plugging.
    Sim(SimArgs),
}

#[derive(clap::Args)]
struct SimArgs {
    /// Bars in the network (1..=the most a tree holds).
    #[arg(long, default_value_t = 100, value_parser = crate::args::sim_bars, allow_negative_numbers = true)]
    bars: usize,
    /// Configurations (plug or unplug events) to run (1..=10^12).
    #[arg(long, default_value_t = 10_000, value_parser = crate::args::configs, allow_negative_numbers = true)]
    configs: u64,
    /// Seed of stream 0; stream i uses SEED + i.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Streams run in parallel (one per thread; 1..=256).
    #[arg(long, default_value_t = 2, value_parser = crate::args::threads, allow_negative_numbers = true)]
    threads: usize,
    /// Mean gap after settling before the next change, in cycles (1..=1e9).
    #[arg(long, default_value_t = 10_000.0, value_parser = crate::args::mean_gap, allow_negative_numbers = true)]
    mean_gap: f64,
    /// Record the table as the `bars` section of this file (e.g. BENCHMARKS.md).
    #[arg(long)]
    write: Option<PathBuf>,
}

pub fn run(args: BarsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        BarsCommand::Show { file } => match load(&file) {
            Some(tree) => {
                show(&tree);
                Ok(ExitCode::SUCCESS)
            }
            None => Ok(ExitCode::FAILURE),
        },
        BarsCommand::Check { file } => match load(&file) {
            Some(tree) => {
                println!("{}: ok ({} bars, base {} Hz)", file.display(), tree.len(), tree.base_hz());
                Ok(ExitCode::SUCCESS)
            }
            None => Ok(ExitCode::FAILURE),
        },
        BarsCommand::Sim(a) => simulate(a),
    }
}

/// The most a `.bars` file may hold: a tree of the most bars, each on a
/// long line with a comment, is far below it; `/dev/zero` is far above.
const MAX_TREE_BYTES: u64 = 1 << 20;

/// Reads a `.bars` file: a regular file of at most [`MAX_TREE_BYTES`], in
/// UTF-8. Errors are one line naming the file.
pub fn read_tree_text(file: &std::path::Path) -> anyhow::Result<String> {
    use std::io::Read;
    let fail = |why: String| anyhow::anyhow!("cannot read the bar tree {}: {why}", file.display());
    let f = std::fs::File::open(file).map_err(|e| fail(e.to_string()))?;
    let meta = f.metadata().map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    f.take(MAX_TREE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_TREE_BYTES {
        return Err(fail(format!("larger than {} KiB", MAX_TREE_BYTES / 1024)));
    }
    String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".into()))
}

/// Reads and parses a tree, or prints FILE:LINE: why not.
fn load(file: &std::path::Path) -> Option<BarTree> {
    let text = match read_tree_text(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("clavm: error: {e:#}");
            return None;
        }
    };
    match clavm_bars::text::parse(&text) {
        Ok(t) => Some(t),
        Err(e) => {
            // FILE:LINE: error: WHY, as compilers say it (editors jump to it).
            let why = match &e {
                clavm_bars::text::TextError::Line { message, .. } => message.clone(),
                other => other.to_string(),
            };
            eprintln!("{}:{}: error: {why}", file.display(), e.line());
            None
        }
    }
}

fn show(tree: &BarTree) {
    println!("root {} Hz ({}), {} bars", tree.base_hz(), NoteName::of(tree.base_hz()), tree.len());
    print!("{tree}");
}

fn simulate(a: SimArgs) -> anyhow::Result<ExitCode> {
    let config = SimConfig {
        bars: a.bars,
        configs: a.configs,
        seed: a.seed,
        threads: a.threads,
        plugging: Plugging { mean_gap_cycles: a.mean_gap, ..Plugging::default() },
    };
    let progress = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        s.spawn(|| {
            let start = Instant::now();
            let mut last = Instant::now();
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                if last.elapsed() >= Duration::from_secs(30) {
                    last = Instant::now();
                    let n = progress.load(Ordering::Relaxed);
                    let rate = n as f64 / start.elapsed().as_secs_f64();
                    let left = (config.configs.saturating_sub(n)) as f64 / rate.max(1e-9);
                    eprintln!("bars sim: {n}/{} configurations, {rate:.0}/s, ~{:.0} s left", config.configs, left);
                }
            }
        });
        let r = sim::run(config, &progress);
        done.store(true, Ordering::Relaxed);
        r
    });
    let table = table(&report);
    println!("{table}");
    if let Some(path) = &a.write {
        let cmd = std::env::args().collect::<Vec<_>>().join(" ");
        let section = format!(
            "## Interval bars: protocol simulator\n\nMade by `{cmd}` on {} cores.\n\n{table}",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        crate::bench::write_section(path, "bars", &section)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(if report.stats.never_settled.is_empty() && report.stats.regressions == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn duration(seconds: f64) -> String {
    if seconds >= 3600.0 {
        format!("{:.2} h", seconds / 3600.0)
    } else if seconds >= 60.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{seconds:.2} s")
    }
}

/// The run beside the figures of the PIC12 simulator it is modelled on.
fn table(r: &SimReport) -> String {
    let s = &r.stats;
    let sim_s = s.simulated_seconds();
    let real_s = r.real.as_secs_f64();
    let bars_per_s = s.bars_delivered as f64 / sim_s.max(1e-12);
    let mut t = String::new();
    t.push_str(&format!(
        "{} bars, {} stream(s) (seeds {:?}), next change {} cycles (mean, exponential) after the tree settles.\n\n",
        r.config.bars,
        s.seeds.len(),
        s.seeds,
        r.config.plugging.mean_gap_cycles
    ));
    t.push_str("| | this run | the seed's PIC12 simulator |\n|---|---:|---:|\n");
    let rows: Vec<(&str, String, &str)> = vec![
        ("configurations", thousands(s.configs), "15,371,546"),
        ("simulated time", duration(sim_s), "91 h"),
        ("real time", duration(real_s), "more than a week"),
        ("simulated s per real s", format!("{:.1}", sim_s / real_s.max(1e-9)), "~0.5"),
        ("configurations per real s", format!("{:.0}", s.configs as f64 / real_s.max(1e-9)), "~25"),
        ("updates per simulated s", format!("{:.0}", s.updates as f64 / sim_s.max(1e-12)), "-"),
        ("bars per simulated s (root's throughput)", format!("{bars_per_s:.0}"), "3,154"),
        ("ms per update of 100 bars", format!("{:.1}", 100.0 / bars_per_s.max(1e-9) * 1e3), "32"),
        ("configurations that changed the root's tree", thousands(s.configs - s.unaffected), "-"),
        ("settling time mean (those)", format!("{:.1} ms", s.settle_mean_ms()), "-"),
        ("settling time p99", format!("{:.1} ms", s.settle_quantile_ms(0.99)), "-"),
        ("settling time worst", format!("{:.1} ms", s.settle_max_ms()), "92 ms"),
        ("never settled (within 1 s)", thousands(s.never_settled.len() as u64), "0"),
        ("wrong tree after settling", thousands(s.regressions), "-"),
        (
            "updates aborted / malformed streams",
            format!("{} / {}", thousands(s.aborted_updates), thousands(s.malformed_streams)),
            "-",
        ),
        (
            "request retries / re-primes via parent",
            format!("{} / {}", thousands(s.retries), thousands(s.restarts)),
            "-",
        ),
        (
            "events (wake-ups), per real s",
            format!("{} ({:.1} M/s)", thousands(s.events), s.events as f64 / real_s.max(1e-9) / 1e6),
            "-",
        ),
    ];
    for (name, ours, seed) in rows {
        t.push_str(&format!("| {name} | {ours} | {seed} |\n"));
    }
    for u in s.never_settled.iter().take(10) {
        t.push_str(&format!(
            "\nNever settled: seed {} configuration {} ({}; {} bars in the true tree). Replay: `clavm bars sim --threads 1 --seed {} --configs {}`. Links: {}\n",
            u.seed, u.config, u.change, u.true_bars, u.seed, u.config, u.links
        ));
    }
    for u in s.regression_examples.iter().take(5) {
        t.push_str(&format!(
            "\nWrong tree after settling: seed {} configuration {} ({}). Links: {}\n",
            u.seed, u.config, u.change, u.links
        ));
    }
    t
}
