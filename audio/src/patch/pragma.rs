//! `#pragma clavm sample N "FILE"`: the samples a patch asks for, read from
//! its directives (on their logical text: splices and comments removed, as
//! the preprocessor would see them). The path is relative to the patch's
//! folder. TinyCC ignores the pragma; loading is the caller's (the render
//! parent, the live control thread), never the compiler's.

use std::path::{Path, PathBuf};

use super::lexer::{logical, tokenize, Kind};
use super::{Diagnostic, PatchSource};
use crate::samples::{SampleSource, SLOTS};

/// The samples `source` names with `#pragma clavm sample`, in order; an
/// error at `FILE:LINE:COL` for a malformed one.
pub fn sample_pragmas(source: &PatchSource) -> Result<Vec<SampleSource>, Diagnostic> {
    let mut out: Vec<SampleSource> = Vec::new();
    for t in tokenize(&source.text).iter().filter(|t| t.kind == Kind::Directive) {
        let text = logical(t.text(&source.text));
        let err = |msg: String| Diagnostic::error(&source.name, t.line, t.col, msg);
        let mut words = text.trim_start_matches('#').split_whitespace();
        if words.next() != Some("pragma") || words.next() != Some("clavm") {
            continue;
        }
        let rest = text.trim_start_matches('#').trim_start();
        let rest = rest["pragma".len()..].trim_start()["clavm".len()..].trim_start();
        let (n, file) = parse_sample(rest).map_err(err)?;
        if let Some(prev) = out.iter().find(|s| s.n == n) {
            return Err(err(format!("sample {n} is already \"{}\" in this patch", prev.path.display())));
        }
        out.push(SampleSource { n, path: relative_to(source.dir.as_deref(), &file) });
    }
    Ok(out)
}

/// `sample N "FILE"` (after `#pragma clavm`).
fn parse_sample(rest: &str) -> Result<(usize, String), String> {
    const USAGE: &str = "expected #pragma clavm sample N \"FILE\"";
    let Some(rest) = rest.strip_prefix("sample").filter(|r| r.starts_with(char::is_whitespace)) else {
        let word = rest.split_whitespace().next().unwrap_or("");
        return Err(format!("unknown #pragma clavm '{word}': {USAGE}"));
    };
    let rest = rest.trim_start();
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let n: usize = rest[..digits].parse().map_err(|_| format!("{USAGE} (N from 0 to {})", SLOTS - 1))?;
    if n >= SLOTS {
        return Err(format!("sample number {n}: numbers run from 0 to {}", SLOTS - 1));
    }
    let rest = rest[digits..].trim_start();
    let Some(quoted) = rest.strip_prefix('"') else { return Err(format!("{USAGE} (the file in double quotes)")) };
    let mut file = String::new();
    let mut chars = quoted.chars();
    loop {
        match chars.next() {
            None => return Err(format!("{USAGE} (unclosed quote)")),
            Some('"') => break,
            Some('\\') => match chars.next() {
                Some(c @ ('"' | '\\')) => file.push(c),
                _ => return Err("only \\\" and \\\\ may be escaped in a sample's file name".to_string()),
            },
            Some(c) => file.push(c),
        }
    }
    if file.is_empty() {
        return Err(format!("{USAGE} (the file name is empty)"));
    }
    if !chars.as_str().trim().is_empty() {
        return Err(format!("{USAGE} (something follows the file name)"));
    }
    Ok((n, file))
}

fn relative_to(dir: Option<&Path>, file: &str) -> PathBuf {
    let p = PathBuf::from(file);
    match dir {
        Some(d) if p.is_relative() => d.join(p),
        _ => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> PatchSource {
        PatchSource { name: "p.c".into(), text: text.into(), dir: Some(PathBuf::from("/patches")) }
    }

    #[test]
    fn pragmas_give_numbers_and_paths_relative_to_the_patch() {
        let s = src("#pragma once\n#pragma clavm sample 3 \"kick.wav\"\n  # pragma /* c */ clavm sample 63 \"/abs/x y.flac\"\nvoid play(void){}\n");
        let v = sample_pragmas(&s).unwrap();
        assert_eq!(
            v,
            vec![
                SampleSource { n: 3, path: PathBuf::from("/patches/kick.wav") },
                SampleSource { n: 63, path: PathBuf::from("/abs/x y.flac") },
            ]
        );
    }

    #[test]
    fn malformed_pragmas_are_errors_at_their_line() {
        for (text, needle) in [
            ("\n#pragma clavm sample 64 \"a.wav\"\n", "0 to 63"),
            ("\n#pragma clavm sample x \"a.wav\"\n", "expected"),
            ("\n#pragma clavm sample 1 a.wav\n", "double quotes"),
            ("\n#pragma clavm sample 1 \"a.wav\n", "unclosed"),
            ("\n#pragma clavm sample 1 \"\"\n", "empty"),
            ("\n#pragma clavm sample 1 \"a.wav\" 2\n", "follows"),
            ("\n#pragma clavm sampel 1 \"a.wav\"\n", "unknown #pragma clavm 'sampel'"),
            ("#pragma clavm sample 1 \"a\"\n#pragma clavm sample 1 \"b\"\n", "already"),
        ] {
            let e = sample_pragmas(&src(text)).unwrap_err();
            assert_eq!(e.line, 2, "{text}");
            assert!(e.message.contains(needle), "{text}: {}", e.message);
            assert!(e.to_string().starts_with("p.c:2:1"), "{e}");
        }
    }
}
