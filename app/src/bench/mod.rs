//! `clavm bench`: for every example patch, recompile time (p50/p99) with the
//! prelude and with `#include <math.h>`, and the DSP cost per frame of the
//! TinyCC build against the same patch built by `gcc -O2` in the same run
//! (machines here are noisy: only ratios measured side by side are stable).

mod gcc;
mod hosts;
mod input;
mod live;
mod preprocess;
mod render;
mod samples;
mod stats;
#[cfg(feature = "link")]
mod tempo;
pub mod transport;
mod ui;
mod voices;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clavm_audio::builtins::api::{Ctx, Params};
use clavm_audio::patch::sites::SiteRegistry;
use clavm_audio::patch::{self, CompileOptions};
use clavm_audio::state::{DelayPool, Extent, OwnedHeap, StateMemory};
use clavm_audio::PatchSource;

use stats::Percentiles;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Folder of patches to measure.
    #[arg(long, default_value = "assets/patches")]
    pub patches: PathBuf,
    /// Only patches whose file name contains this.
    #[arg(long)]
    pub filter: Option<String>,
    /// Compiles per patch and variant.
    #[arg(long, default_value_t = 200)]
    pub compiles: usize,
    /// Frames per DSP measurement (each is repeated 5 times; the median is kept).
    #[arg(long, default_value_t = 48000)]
    pub frames: u64,
    /// Also write the table, with the command that made it, to this Markdown file.
    #[arg(long)]
    pub write: Option<PathBuf>,
    /// Measure the live engine instead: worker round trip, submit to sound, fault recovery.
    #[arg(long)]
    pub live: bool,
    /// Measure the shared-memory transport instead: round trips against a socket and polling,
    /// throughput, and `clavm submit`'s round trip.
    #[arg(long, conflicts_with = "live")]
    pub transport: bool,
    /// Measure the renderer instead: frame times against a clear-only frame, and `clavm record`'s speed.
    #[arg(long, conflicts_with_all = ["live", "transport"])]
    pub render: bool,
    /// Measure the desktop app: the full UI against a clear-only frame, idle CPU and key-to-frame latency in sway headless.
    #[arg(long, conflicts_with_all = ["live", "transport", "render"])]
    pub ui: bool,
    /// Measure `check` on 100k tokens on one line against one statement per line (must be linear).
    #[arg(long, conflicts_with_all = ["live", "transport", "render", "ui"])]
    pub preprocess: bool,
    /// Measure live input: input-to-output latency through a patch on a private JACK server, against a
    /// plain pass-through client.
    #[arg(long, conflicts_with_all = ["live", "transport", "render", "ui", "preprocess"])]
    pub input: bool,
    /// Measure time: how exactly live quantised swaps land on the beat, and the beat phase
    /// between two engines on one Ableton Link session (needs root for a private network).
    #[arg(long, conflicts_with_all = ["live", "transport", "render", "ui", "preprocess", "input"])]
    pub tempo: bool,
    /// Measure samples: decode + resample speed against hound and memcpy, memory per minute, `Sample()` per voice against `Cycle()`.
    #[arg(long, conflicts_with_all = ["live", "transport", "render", "ui", "preprocess", "input", "tempo"])]
    pub samples: bool,
    /// Measure polyphony: `poly.c`'s cost per block with 16 and 8 voices against one voice.
    #[arg(long, conflicts_with_all = ["live", "transport", "render", "ui", "preprocess", "input", "tempo", "samples"])]
    pub voices: bool,
    /// Measure the audio hosts: a soak of `clavm play` on JACK, PipeWire, Pulse and ALSA (through
    /// PipeWire), each beside a trivial client: output latency and xruns (private servers).
    #[arg(long, conflicts_with_all = ["live", "transport", "render", "ui", "preprocess", "input", "tempo", "samples", "voices"])]
    pub hosts: bool,
    /// Seconds per host for --hosts.
    #[arg(long, default_value_t = 120, requires = "hosts")]
    pub seconds: u64,
}

struct Row {
    name: String,
    sites: usize,
    prelude: Percentiles,
    math_h: Percentiles,
    tcc_ns: f64,
    gcc_ns: Option<f64>,
}

pub fn run(a: BenchArgs) -> anyhow::Result<ExitCode> {
    if a.transport {
        let table = transport::run(&a.patches, a.filter.as_deref())?;
        publish(&a, "transport", "Transport: channels, submits", &table)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.tempo {
        #[cfg(feature = "link")]
        {
            let table = tempo::run()?;
            publish(&a, "tempo", "Time: quantised swaps, Link", &table)?;
            return Ok(ExitCode::SUCCESS);
        }
        #[cfg(not(feature = "link"))]
        anyhow::bail!("--tempo measures Ableton Link too: this clavm was built without it");
    }
    if a.hosts {
        let table = hosts::run(a.seconds)?;
        publish(&a, "hosts", "Audio hosts: latency and xruns, JACK, PipeWire, Pulse, ALSA", &table)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.input {
        let table = input::run()?;
        publish(&a, "input", "Live input: input to output on JACK", &table)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.preprocess {
        let table = preprocess::run()?;
        publish(&a, "preprocess", "Preprocessing: one long line against many lines", &table)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.samples {
        let table = samples::run(a.frames)?;
        publish(&a, "samples", "Samples: loading speed, memory, cost per voice", &table)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.voices {
        let table = voices::run(&a.patches)?;
        publish(&a, "voices", "Voices: polyphony's cost per block", &table)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.ui {
        let table = ui::run()?;
        publish(&a, "ui", "Desktop app: UI frame, idle CPU, key to frame", &table)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.render {
        let table = render::run(&a.patches)?;
        publish(&a, "render", "Renderer: frame times, recording speed", &table)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.live {
        let table = live::run(&a.patches, a.filter.as_deref())?;
        publish(&a, "live", "Live engine: workers, swaps, faults", &table)?;
        return Ok(ExitCode::SUCCESS);
    }
    let files = patch_files(&a.patches, a.filter.as_deref())?;
    anyhow::ensure!(!files.is_empty(), "no .c patches in {}", a.patches.display());
    let gcc = gcc::Gcc::find();
    if let Err(why) = &gcc {
        eprintln!("clavm bench: no gcc reference: {why}");
    }
    let mut rows = Vec::new();
    for f in &files {
        let source = PatchSource::from_file(f).map_err(|e| anyhow::anyhow!("{e}"))?;
        eprint!("{:<18} compiling...", file_name(f));
        let (sites, prelude) = compile_times(&source, a.compiles)?;
        let mut with_math = source.clone();
        with_math.text = format!("#include <math.h>\n{}", source.text);
        let (_, math_h) = compile_times(&with_math, a.compiles)?;
        eprint!(" running...");
        let (tcc_ns, gcc_ns) =
            dsp(&source, a.frames, gcc.as_ref().ok()).with_context(|| format!("measuring {}", f.display()))?;
        eprintln!(" done");
        rows.push(Row { name: file_name(f), sites, prelude, math_h, tcc_ns, gcc_ns });
    }
    let table = render_table(&rows, a.compiles, a.frames);
    publish(&a, "engine-core", "Engine core: compile time and DSP cost", &table)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints a table and, with `--write`, records it (with the command that made it) as section `name`.
fn publish(a: &BenchArgs, name: &str, title: &str, table: &str) -> anyhow::Result<()> {
    println!("{table}");
    if let Some(path) = &a.write {
        let cmd = std::env::args().collect::<Vec<_>>().join(" ");
        let section = format!("## {title}\n\nMade by `{cmd}` on {}.\n\n{table}", machine());
        write_section(path, name, &section)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Replaces the section between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`
/// in `path` (appending it if absent), so each benchmark owns its part of the file.
pub(crate) fn write_section(path: &std::path::Path, name: &str, body: &str) -> anyhow::Result<()> {
    let (open, close) = (format!("<!-- bench:{name} -->"), format!("<!-- /bench:{name} -->"));
    let block = format!("{open}\n{body}{close}\n");
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# CLAVM benchmarks\n\n".to_string());
    let new = match (old.find(&open), old.find(&close)) {
        (Some(a), Some(b)) if b > a => {
            format!("{}{}{}", &old[..a], block, old[b + close.len()..].trim_start_matches('\n'))
        }
        _ => format!("{}\n{block}", old.trim_end()),
    };
    std::fs::write(path, new).with_context(|| format!("cannot write {}", path.display()))
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Recompile times as a live edit sees them: against a registry that already
/// holds this patch, so the call-site diff is part of the cost.
fn compile_times(source: &PatchSource, n: usize) -> anyhow::Result<(usize, Percentiles)> {
    let opts = CompileOptions::default();
    let mut registry = SiteRegistry::default();
    let first = patch::compile(source, &registry, &opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    registry.commit(&first.plan);
    let sites = first.plan.sites.len();
    drop(first);
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let p = patch::compile(source, &registry, &opts).map_err(|e| anyhow::anyhow!("{e}"))?;
        times.push(t.elapsed());
        drop(p);
    }
    Ok((sites, Percentiles::of(&mut times)))
}

/// One build of a patch being timed: its own state, so two builds can run side by side.
pub struct Runner<'a> {
    mem: Box<StateMemory>,
    _delays: Box<DelayPool>,
    _heap: OwnedHeap,
    _params: Box<Params>,
    pub(crate) ctx: Ctx,
    frame: u64,
    play: Box<dyn FnMut(&mut Ctx) + 'a>,
    times: Vec<f64>,
}

impl<'a> Runner<'a> {
    pub fn new(play: impl FnMut(&mut Ctx) + 'a, compiled: impl FnOnce(&mut Ctx)) -> Runner<'a> {
        let mut mem = StateMemory::new_boxed(0);
        let mut delays = Box::new(DelayPool::new());
        delays.prefault();
        let mut heap = OwnedHeap::new();
        let params = Box::<Params>::default();
        // SAFETY: the boxes live in the runner next to the context and never move.
        let mut ctx = unsafe { Ctx::new(&mut *mem, &mut *delays, heap.as_mut_ptr(), &*params, 48000.0, 2, 0) };
        ctx.epoch = u64::MAX;
        compiled(&mut ctx);
        Runner {
            mem,
            _delays: delays,
            _heap: heap,
            _params: params,
            ctx,
            frame: 0,
            play: Box::new(play),
            times: Vec::new(),
        }
    }

    /// Runs `n` frames; returns ns per frame.
    fn run(&mut self, n: u64) -> f64 {
        let mut sink = 0.0f32;
        // As the engine does: both builds run with denormals flushed.
        let _ftz = clavm_audio::engine::FlushDenormals::new();
        let t = Instant::now();
        for _ in 0..n {
            self.ctx.frame = self.frame;
            self.ctx.epoch = self.frame + 1;
            self.ctx.out = [0.0; 16];
            (self.play)(&mut self.ctx);
            sink += self.ctx.out[0];
            self.frame += 1;
        }
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        std::hint::black_box((sink, &self.mem));
        ns
    }
}

/// Times the runners side by side: a warm-up, then 5 rounds in which each runs
/// `frames` frames in turn, so that machine noise hits all of them alike.
/// Returns the median ns per frame of each.
pub fn time_side_by_side(runners: &mut [Runner<'_>], frames: u64) -> Vec<f64> {
    for r in runners.iter_mut() {
        r.run(frames / 4);
    }
    for _ in 0..5 {
        for r in runners.iter_mut() {
            let ns = r.run(frames);
            r.times.push(ns);
        }
    }
    runners
        .iter_mut()
        .map(|r| {
            r.times.sort_by(f64::total_cmp);
            r.times[r.times.len() / 2]
        })
        .collect()
}

/// DSP cost of the TinyCC build and, if gcc is there, of the gcc -O2 build.
fn dsp(source: &PatchSource, frames: u64, gcc: Option<&gcc::Gcc>) -> anyhow::Result<(f64, Option<f64>)> {
    let p = patch::compile(source, &SiteRegistry::default(), &CompileOptions::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let program = &p.program;
    // SAFETY: the context is entered around every call into the patch.
    // `compiled()` may allocate (from the runner's heap), as in the engine.
    let tcc = Runner::new(
        |ctx| ctx.enter(|| unsafe { program.play() }),
        |ctx| ctx.enter_compiled(Extent::default(), || unsafe { program.compiled() }),
    );
    let reference = gcc.map(|g| g.load(source)).transpose()?;
    let mut runners = vec![tcc];
    if let Some(lib) = &reference {
        runners.push(lib.runner());
    }
    let ns = time_side_by_side(&mut runners, frames);
    Ok((ns[0], ns.get(1).copied()))
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn render_table(rows: &[Row], compiles: usize, frames: u64) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Recompile = checks + call-site diff + TinyCC compile and relocate, {compiles} times per patch (ms). \
         DSP = ns per frame of `play()` including the builtins, median of 5 rounds of {frames} frames, the two builds alternating.\n\n"
    ));
    s.push_str("| patch | sites | recompile p50 | p99 | with `#include <math.h>` p50 | p99 | TinyCC ns/frame | gcc -O2 ns/frame | TinyCC / gcc |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let (g, ratio) = match r.gcc_ns {
            Some(g) => (format!("{g:.1}"), format!("{:.2}x", r.tcc_ns / g)),
            None => ("n/a".into(), "n/a".into()),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.1} | {} | {} |\n",
            r.name,
            r.sites,
            ms(r.prelude.p50),
            ms(r.prelude.p99),
            ms(r.math_h.p50),
            ms(r.math_h.p99),
            r.tcc_ns,
            g,
            ratio
        ));
    }
    let worst = rows.iter().map(|r| r.prelude.p50).max().unwrap_or_default();
    s.push_str(&format!(
        "\nTarget: recompile under 1 ms p50 for every example patch. Worst p50 here: {} ms ({}).\n",
        ms(worst),
        if worst < Duration::from_millis(1) { "met" } else { "NOT met" }
    ));
    s
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("{cpu}, {cores} cores")
}

/// The `.c` patches in `dir` whose file names contain `filter`, sorted.
fn patch_files(dir: &Path, filter: Option<&str>) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .filter(|p| filter.is_none_or(|f| p.file_name().is_some_and(|n| n.to_string_lossy().contains(f))))
        .collect();
    files.sort();
    Ok(files)
}
