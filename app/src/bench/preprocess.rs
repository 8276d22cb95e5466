//! `clavm bench --preprocess`: what `clavm check` costs on the same N tokens
//! written on one line and one statement per line. Preprocessing must be
//! linear: a long line may cost at most twice as much (it once cost 40x, the
//! lexer counting every token's column from the start of its line).

use std::time::Duration;

use clavm_audio::patch::{self, sites::SiteRegistry, CompileOptions};
use clavm_audio::PatchSource;

use super::stats::Percentiles;

/// Tokens in each generated patch.
const TOKENS: usize = 100_000;
/// Compiles per layout; the median is kept.
const RUNS: usize = 9;

/// A patch of `TOKENS` tokens, on one line or one statement per line.
fn patch(one_line: bool) -> String {
    let sep = if one_line { " " } else { "\n" };
    // `x = x + 1 ;` is 6 tokens; the frame and the oscillator make up the rest.
    let body = vec!["x = x + 1;"; TOKENS / 6].join(sep);
    format!("void play(void) {{ float x = 0;{sep}{body}{sep}_out(0, 0.2f * Cycle(440)); }}\n")
}

struct Row {
    layout: &'static str,
    bytes: usize,
    prepare: Duration,
    tcc: Duration,
    total: Duration,
}

fn measure(layout: &'static str, one_line: bool) -> anyhow::Result<Row> {
    let text = patch(one_line);
    let source = PatchSource::from_text("bench.c", &text);
    let (mut prepare, mut tcc, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let p = patch::compile(&source, &SiteRegistry::default(), &CompileOptions::default())
            .map_err(|e| anyhow::anyhow!("{layout}: {e}"))?;
        prepare.push(p.timings.prepare);
        tcc.push(p.timings.tcc);
        total.push(p.timings.total());
    }
    let p50 = |v: &mut Vec<Duration>| Percentiles::of(v).p50;
    Ok(Row { layout, bytes: text.len(), prepare: p50(&mut prepare), tcc: p50(&mut tcc), total: p50(&mut total) })
}

pub fn run() -> anyhow::Result<String> {
    let rows = [measure("one line", true)?, measure("one statement per line", false)?];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut t = format!(
        "`check` (checks, call sites, TinyCC) on {TOKENS} tokens, median of {RUNS} compiles.\n\n\
         | layout | bytes | prepare (ms) | TinyCC (ms) | total (ms) |\n|---|---:|---:|---:|---:|\n"
    );
    for r in &rows {
        t +=
            &format!("| {} | {} | {:.1} | {:.1} | {:.1} |\n", r.layout, r.bytes, ms(r.prepare), ms(r.tcc), ms(r.total));
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    t += &format!(
        "| **ratio one line / per line** | | {:.2} | {:.2} | {:.2} |\n",
        ratio(rows[0].prepare, rows[1].prepare),
        ratio(rows[0].tcc, rows[1].tcc),
        ratio(rows[0].total, rows[1].total)
    );
    Ok(t)
}
