//! C syntax highlighting for the editor: a small lexer over the text (it
//! runs on every edit, so it is linear and allocation-light), producing an
//! egui layout job with diagnostics underlined at their line and column.

use egui::text::{LayoutJob, TextFormat};
use egui::{Color32, FontId, Stroke};

/// What a stretch of text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    Plain,
    Keyword,
    Type,
    Number,
    String,
    Comment,
    Preprocessor,
    /// A patch builtin (`Cycle`, `_out`, ...): the API at a glance.
    Builtin,
}

const KEYWORDS: &[&str] = &[
    "if", "else", "for", "while", "do", "return", "break", "continue", "switch", "case", "default", "goto", "sizeof",
    "static", "const", "struct", "union", "enum", "typedef", "extern", "volatile", "inline",
];
const TYPES: &[&str] =
    &["void", "int", "float", "double", "char", "short", "long", "unsigned", "signed", "uint32_t", "int32_t"];

fn is_builtin(word: &str) -> bool {
    word.starts_with('_') || word.chars().next().is_some_and(|c| c.is_ascii_uppercase())
}

/// Splits `text` into (byte range, token) runs covering all of it.
pub fn tokens(text: &str) -> Vec<(std::ops::Range<usize>, Token)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line_start = true;
    while i < b.len() {
        let start = i;
        let c = b[i];
        let tok = if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            Token::Comment
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                i += 1;
            }
            i = (i + 2).min(b.len());
            Token::Comment
        } else if c == b'#' && line_start {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            Token::Preprocessor
        } else if c == b'"' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c && b[i] != b'\n' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            Token::String
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            Token::Number
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let w = &text[start..i];
            if KEYWORDS.contains(&w) {
                Token::Keyword
            } else if TYPES.contains(&w) {
                Token::Type
            } else if is_builtin(w) {
                Token::Builtin
            } else {
                Token::Plain
            }
        } else {
            // One character (UTF-8 aware).
            i += text[i..].chars().next().map_or(1, char::len_utf8);
            Token::Plain
        };
        if c == b'\n' {
            line_start = true;
        } else if !c.is_ascii_whitespace() {
            line_start = false;
        }
        out.push((start..i, tok));
    }
    out
}

fn color(t: Token) -> Color32 {
    match t {
        Token::Plain => Color32::from_rgb(0xd4, 0xd8, 0xde),
        Token::Keyword => Color32::from_rgb(0xc6, 0x8a, 0xf0),
        Token::Type => Color32::from_rgb(0x6c, 0xb6, 0xff),
        Token::Number => Color32::from_rgb(0xf2, 0xb3, 0x6c),
        Token::String => Color32::from_rgb(0x98, 0xc9, 0x79),
        Token::Comment => Color32::from_rgb(0x6f, 0x7b, 0x8c),
        Token::Preprocessor => Color32::from_rgb(0xe0, 0x7a, 0x8e),
        Token::Builtin => Color32::from_rgb(0x4f, 0xd6, 0xc8),
    }
}

/// A byte range to underline (a diagnostic) and whether it is an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub range: std::ops::Range<usize>,
    pub error: bool,
}

/// The byte range of the token at 1-based `line`:`col` in `text` (the
/// whole rest of the line when the column is past its end).
pub fn range_at(text: &str, line: usize, col: usize) -> Option<std::ops::Range<usize>> {
    let line_start = if line <= 1 { 0 } else { text.match_indices('\n').nth(line - 2)?.0 + 1 };
    let line_end = text[line_start..].find('\n').map_or(text.len(), |e| line_start + e);
    let at = (line_start + col.saturating_sub(1)).min(line_end);
    let rest = &text[at..line_end];
    let len = rest
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(rest.len(), |(i, _)| i)
        .max(rest.chars().next().map_or(0, char::len_utf8));
    Some(at..(at + len).max(at + 1).min(line_end.max(at + 1)).min(text.len()))
}

/// The layout of the editor's text: colours by token, diagnostics
/// underlined, find matches highlighted.
pub fn layout(text: &str, font: FontId, marks: &[Mark], found: &[std::ops::Range<usize>]) -> LayoutJob {
    let mut job = LayoutJob::default();
    for (range, tok) in tokens(text) {
        // Split the token where marks begin or end so each piece has one format.
        let mut cuts: Vec<usize> = vec![range.start, range.end];
        for r in marks.iter().map(|m| &m.range).chain(found) {
            for p in [r.start, r.end] {
                if p > range.start && p < range.end {
                    cuts.push(p);
                }
            }
        }
        cuts.sort_unstable();
        cuts.dedup();
        for w in cuts.windows(2) {
            let (a, z) = (w[0], w[1]);
            let mut format = TextFormat { font_id: font.clone(), color: color(tok), ..Default::default() };
            if let Some(m) = marks.iter().find(|m| m.range.start <= a && z <= m.range.end) {
                let c = if m.error { Color32::from_rgb(0xff, 0x5f, 0x56) } else { Color32::from_rgb(0xe8, 0xc5, 0x47) };
                format.underline = Stroke::new(2.0, c);
            }
            if found.iter().any(|r| r.start <= a && z <= r.end) {
                format.background = Color32::from_rgba_unmultiplied(0xe8, 0xc5, 0x47, 70);
            }
            job.append(&text[a..z], 0.0, format);
        }
    }
    job
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_is_split_into_the_right_tokens() {
        let src = "#define F 440.0f\nvoid play(void) { // hi\n  _out(0, Cycle(F) * 2); \"s\" }\n";
        let kinds: Vec<(&str, Token)> =
            tokens(src).into_iter().filter(|(_, t)| *t != Token::Plain).map(|(r, t)| (&src[r], t)).collect();
        assert_eq!(kinds[0], ("#define F 440.0f", Token::Preprocessor));
        assert!(kinds.contains(&("void", Token::Type)));
        assert!(kinds.contains(&("// hi", Token::Comment)));
        assert!(kinds.contains(&("_out", Token::Builtin)));
        assert!(kinds.contains(&("Cycle", Token::Builtin)));
        assert!(kinds.contains(&("2", Token::Number)));
        assert!(kinds.contains(&("\"s\"", Token::String)));
        // The runs cover the text exactly.
        let covered: usize = tokens(src).iter().map(|(r, _)| r.len()).sum();
        assert_eq!(covered, src.len());
        assert_eq!(tokens("é/*x").iter().map(|(r, _)| r.len()).sum::<usize>(), "é/*x".len());
    }

    #[test]
    fn a_diagnostic_position_becomes_its_token_range() {
        let src = "void play(void) {\n  _out(0, oops);\n}\n";
        let r = range_at(src, 2, 11).unwrap();
        assert_eq!(&src[r], "oops");
        let r = range_at(src, 3, 40).unwrap();
        assert!(r.start <= src.len());
        assert!(range_at(src, 9, 1).is_none());
        let job =
            layout(src, FontId::monospace(12.0), &[Mark { range: range_at(src, 2, 11).unwrap(), error: true }], &[]);
        assert!(job
            .sections
            .iter()
            .any(|s| s.format.underline.width > 0.0 && &src[s.byte_range.start.0..s.byte_range.end.0] == "oops"));
    }
}
