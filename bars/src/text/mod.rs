//! The `.bars` text format: one bar per line, saying what it hangs from.
//!
//! ```text
//! # A major triad on A: a fifth, with a major third on its face.
//! base 440
//! fifth  3/2  root    W
//! third  5/4  fifth.S N  touched
//! ```
//!
//! Each bar line is `NAME INTERVAL PARENT BY [touched]`: NAME is letters,
//! digits, `_` or `-`; INTERVAL a ratio from the eight (`3/2`) or its name
//! (`P5`); PARENT is `root` or `OTHER.C` (another bar's connector N, E, S or
//! W; bars may be named before or after they are used); BY is this bar's own
//! connector plugged into it. `base HZ` sets the root's pitch (default 440).
//! `#` starts a comment. Full description in docs/BARS.md.

use std::collections::HashMap;
use std::fmt::Write as _;

use thiserror::Error;

use crate::model::{Bar, BarId, BarTree, Connector, Interval, Parent, TreeError, DEFAULT_BASE_HZ, MAX_BARS};

/// The root pitches a file may set, in Hz. The top is the edge of hearing
/// (20 kHz): every bar sounds at the root times its intervals, so a higher
/// root has no audible bar. The bottom, 1 Hz, still lets a tree drive slow
/// modulation (a root of 1 Hz with octaves above it); below that, and at
/// values like 1e-300 or 1e308, note names and cents stop meaning anything
/// (they printed "inf Hz" and "NaNc"). Every ratio in a tree of at most
/// `MAX_BARS` bars then stays a finite frequency.
pub const BASE_HZ: std::ops::RangeInclusive<f64> = 1.0..=20_000.0;

/// A file that is not a valid tree; `line` is 1-based.
#[derive(Debug, Error, PartialEq)]
pub enum TextError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("lines {lines:?}: bars {names:?} form a cycle that does not reach the root")]
    Cycle { lines: Vec<usize>, names: Vec<String> },
    #[error("{count} bars: a tree holds at most {MAX_BARS} (line {line} is bar {})", MAX_BARS + 1)]
    TooManyBars { count: usize, line: usize },
}

impl TextError {
    /// The first line the error is about.
    pub fn line(&self) -> usize {
        match self {
            TextError::Line { line, .. } | TextError::TooManyBars { line, .. } => *line,
            TextError::Cycle { lines, .. } => lines.first().copied().unwrap_or(0),
        }
    }
}

fn at(line: usize, message: impl Into<String>) -> TextError {
    TextError::Line { line, message: message.into() }
}

struct RawBar<'a> {
    line: usize,
    name: &'a str,
    interval: Interval,
    parent: Option<(&'a str, Connector)>,
    by: Connector,
    touched: bool,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') && s != "root" && s != "base"
}

fn connector(s: &str) -> Option<Connector> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Connector::from_letter(c),
        _ => None,
    }
}

/// Parses a `.bars` file.
pub fn parse(source: &str) -> Result<BarTree, TextError> {
    let mut base_hz = DEFAULT_BASE_HZ;
    let mut base_line = None;
    let mut raw: Vec<RawBar> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (k, full) in source.lines().enumerate() {
        let line = k + 1;
        let text = full.split('#').next().unwrap_or("");
        let fields: Vec<&str> = text.split_whitespace().collect();
        match fields.as_slice() {
            [] => continue,
            ["base", rest @ ..] => {
                let [hz] = rest else { return Err(at(line, "expected `base HZ`")) };
                if let Some(first) = base_line {
                    return Err(at(line, format!("base is set twice (first on line {first})")));
                }
                base_hz = hz.parse::<f64>().ok().filter(|f| BASE_HZ.contains(f)).ok_or_else(|| {
                    at(
                        line,
                        format!(
                            "base `{hz}` is out of range: the root's pitch must be {}..={} Hz",
                            BASE_HZ.start(),
                            BASE_HZ.end()
                        ),
                    )
                })?;
                base_line = Some(line);
            }
            [name, interval, parent, by, flags @ ..] => {
                if !valid_name(name) {
                    return Err(at(
                        line,
                        format!("`{name}` is not a bar name (letters, digits, _ or -; not `root` or `base`)"),
                    ));
                }
                if let Some(&first) = index.get(name) {
                    return Err(at(line, format!("bar `{name}` is already defined on line {}", raw[first].line)));
                }
                if raw.len() == MAX_BARS {
                    return Err(TextError::TooManyBars { count: raw.len() + 1, line });
                }
                let interval = Interval::parse(interval).ok_or_else(|| {
                    at(line, format!("unknown interval `{interval}` (one of 16/15 9/8 6/5 5/4 4/3 3/2 5/3 2/1, or m2 M2 m3 M3 P4 P5 M6 P8)"))
                })?;
                let parent = if *parent == "root" {
                    None
                } else {
                    let (p, c) =
                        parent.split_once('.').and_then(|(p, c)| Some((p, connector(c)?))).ok_or_else(|| {
                            at(line, format!("`{parent}` is not `root` or `BAR.C` with C one of N E S W"))
                        })?;
                    if p == *name {
                        return Err(at(line, format!("bar `{name}` is plugged into itself")));
                    }
                    Some((p, c))
                };
                let by = connector(by).ok_or_else(|| at(line, format!("`{by}` is not a connector (N, E, S or W)")))?;
                let touched = match flags {
                    [] => false,
                    ["touched"] => true,
                    other => return Err(at(line, format!("unexpected `{}` after the connector", other.join(" ")))),
                };
                index.insert(name, raw.len());
                raw.push(RawBar { line, name, interval, parent, by, touched });
            }
            _ => return Err(at(line, "expected `NAME INTERVAL PARENT BY [touched]` or `base HZ`")),
        }
    }
    let mut bars = Vec::with_capacity(raw.len());
    for r in &raw {
        let parent = match r.parent {
            None => Parent::Root,
            Some((p, c)) => {
                let &i = index.get(p).ok_or_else(|| at(r.line, format!("no bar named `{p}`")))?;
                Parent::Bar(BarId(i as u8), c)
            }
        };
        bars.push(Bar { interval: r.interval, parent, by: r.by, touched: r.touched });
    }
    let names = raw.iter().map(|r| r.name.to_string()).collect();
    BarTree::new(base_hz, bars, names).map_err(|e| explain(e, &raw))
}

/// Turns a tree error about bar indices into one about lines and names.
fn explain(e: TreeError, raw: &[RawBar]) -> TextError {
    let name = |i: usize| raw.get(i).map_or("?", |r| r.name);
    let line = |i: usize| raw.get(i).map_or(0, |r| r.line);
    let connector_of = |i: usize| match raw.get(i).and_then(|r| r.parent) {
        Some((p, c)) => format!("{p}.{c}"),
        None => "root".to_string(),
    };
    match e {
        TreeError::PluggedIntoItself { bar } => at(line(bar), format!("bar `{}` is plugged into itself", name(bar))),
        TreeError::UnknownParent { bar, .. } => at(line(bar), format!("bar `{}` hangs from a missing bar", name(bar))),
        TreeError::GenderMismatch { bar, by, by_gender, at_gender, .. } => at(
            line(bar),
            format!(
                "`{}`'s {by} is {} and {} is {}: male mates only with female",
                name(bar),
                format!("{by_gender:?}").to_lowercase(),
                connector_of(bar),
                format!("{at_gender:?}").to_lowercase()
            ),
        ),
        TreeError::ConnectorTaken { first, second, .. } => at(
            line(second),
            format!("{} is already taken by `{}` (line {})", connector_of(second), name(first), line(first)),
        ),
        TreeError::ParentsOwnConnector { bar, parent, .. } => at(
            line(bar),
            format!("{} is the connector `{}` hangs by (line {})", connector_of(bar), name(parent), line(parent)),
        ),
        TreeError::Cycle(bars) => TextError::Cycle {
            lines: bars.iter().map(|&b| line(b)).collect(),
            names: bars.iter().map(|&b| name(b).to_string()).collect(),
        },
        TreeError::TooManyBars(count) => TextError::TooManyBars { count, line: line(MAX_BARS) },
        TreeError::BadBase(hz) => at(0, format!("base {hz} Hz is not a positive frequency")),
    }
}

/// Writes a tree in wire order, one bar per line; `parse` gives it back.
pub fn format(tree: &BarTree) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# interval bars: NAME INTERVAL PARENT BY [touched]");
    let _ = writeln!(out, "base {}", tree.base_hz());
    let width = tree.ids().map(|id| tree.name(id).len()).max().unwrap_or(0);
    for &id in tree.preorder() {
        let bar = tree.bar(id);
        let parent = match bar.parent {
            Parent::Root => "root".to_string(),
            Parent::Bar(p, c) => format!("{}.{c}", tree.name(p)),
        };
        let _ = write!(
            out,
            "{:width$}  {:5}  {:pw$}  {}",
            tree.name(id),
            bar.interval.to_string(),
            parent,
            bar.by,
            pw = width + 2
        );
        if bar.touched {
            out.push_str("  touched");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_doc_example() {
        let t = parse("base 440\nfifth 3/2 root W\nthird 5/4 fifth.S N touched # comment\n").unwrap();
        assert_eq!(t.len(), 2);
        assert!((t.frequency(BarId(0)) - 660.0).abs() < 1e-9);
        assert!((t.frequency(BarId(1)) - 825.0).abs() < 1e-9);
        assert!(t.gate(BarId(1)));
        let again = parse(&format(&t)).unwrap();
        assert!(again.same_structure(&t));
    }

    #[test]
    fn roots_inside_the_bounds_are_kept() {
        for b in ["1", "27.5", "20000"] {
            let t = parse(&format!("base {b}\nup 2/1 root W\n")).unwrap();
            assert_eq!(t.base_hz(), b.parse::<f64>().unwrap());
            assert_eq!(t.frequency(BarId(0)), 2.0 * t.base_hz());
        }
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("a 3/2 root W\na 3/2 a.E W\n", 2, "already defined"),
            ("a 3/2 root W\nb 7/4 a.E W\n", 2, "unknown interval"),
            ("a 3/2 root W\nb 3/2 a.E E\n", 2, "male mates only with female"),
            ("a 3/2 root W\nb 3/2 b.E W\n", 2, "plugged into itself"),
            ("a 3/2 root W\nb 3/2 a.E W\nc 3/2 a.E N\n", 3, "already taken"),
            ("a 3/2 root W\nb 3/2 a.W E\n", 2, "hangs by"),
            ("a 3/2 root W\nb 3/2 zz.E W\n", 2, "no bar named"),
            ("a 3/2 root\n", 1, "expected"),
            ("base -3\n", 1, "1..=20000 Hz"),
            ("# huge\nbase 1e308\n", 2, "out of range"),
            ("base 1e-300\n", 1, "out of range"),
            ("base NaN\n", 1, "out of range"),
            ("base inf\n", 1, "out of range"),
            ("base 20000.5\n", 1, "out of range"),
            ("base 0.99\n", 1, "out of range"),
            ("a 3/2 root W touchy\n", 1, "unexpected"),
        ];
        for (src, line, needle) in cases {
            let e = parse(src).unwrap_err();
            assert_eq!(e.line(), line, "{src:?}: {e}");
            assert!(e.to_string().contains(needle), "{src:?}: {e}");
        }
    }

    #[test]
    fn cycles_are_reported_with_their_lines() {
        let e = parse("a 3/2 root W\nb 3/2 c.E W\nc 3/2 b.E W\n").unwrap_err();
        assert!(matches!(&e, TextError::Cycle { lines, .. } if lines.len() == 2), "{e}");
    }

    #[test]
    fn more_than_255_bars_is_an_error() {
        let mut src = String::from("b0 2/1 root W\n");
        for i in 1..=MAX_BARS {
            src.push_str(&format!("b{i} 2/1 b{}.E W\n", i - 1));
        }
        let e = parse(&src).unwrap_err();
        assert!(matches!(e, TextError::TooManyBars { line: 256, .. }), "{e}");
    }
}
