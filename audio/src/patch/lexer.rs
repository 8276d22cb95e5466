//! A small C tokenizer: just enough to find call sites, check nesting and
//! `#include`s, and point diagnostics at a column. It never fails: anything it
//! does not understand becomes a one-character punctuation token, and TinyCC
//! has the final word on what is valid C.
//!
//! It runs in time linear in the source, whatever the line lengths: a column
//! is counted on from the previous token's, never from the start of the line
//! (that made a 100k-token line quadratic, seconds of `check`).
//!
//! Line splices (backslash-newline, or backslash-CR-LF as TinyCC also takes)
//! and comments are handled as C's translation phases 1-3 do where they decide
//! what a directive is: `# /**/ define` and `#def\<newline>ine` are `#define`.
//! TinyCC knows no trigraphs or digraphs, so neither does this lexer.

/// What kind of token this is. Comments and whitespace are not tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ident,
    Number,
    Str,
    Char,
    Punct,
    /// A whole preprocessor line (`#include <x>`, `#define A B`...), continuation lines included.
    Directive,
}

/// A token with its byte span and 1-based position in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    pub line: u32,
    pub col: u32,
}

impl Token {
    pub fn text<'s>(&self, src: &'s str) -> &'s str {
        &src[self.start..self.end]
    }
}

/// Tokenises `src`. Inside a `#define` the body is tokenised too (a builtin
/// call in a macro body is a call site like any other); other directives are
/// one token each.
pub fn tokenize(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(src.len() / 4);
    let (mut i, mut line, mut line_start) = (0usize, 1u32, 0usize);
    let mut at_line_start = true;
    // The column of byte `col_at`, counted on from token to token.
    let (mut col_at, mut col_n) = (0usize, 1u32);
    while i < b.len() {
        let c = b[i];
        if col_at < line_start {
            (col_at, col_n) = (line_start, 1);
        }
        col_n += chars_in(&b[col_at..i]);
        col_at = i;
        let col = col_n;
        let start = i;
        match c {
            b'\n' => {
                i += 1;
                line += 1;
                line_start = i;
                at_line_start = true;
                continue;
            }
            b' ' | b'\t' | b'\r' | 0x0b | 0x0c => {
                i += 1;
                continue;
            }
            b'\\' if splice_len(b, i) > 0 => {
                i += splice_len(b, i);
                line += 1;
                line_start = i;
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    if b[i] == b'\n' {
                        line += 1;
                        line_start = i + 1;
                    }
                    i += 1;
                }
                i = (i + 2).min(b.len());
                continue;
            }
            b'#' if at_line_start => {
                // Directive: up to the end of the line, honouring continuations.
                let (word, word_end) = directive_name(b, i + 1);
                if word == "define" {
                    // Emit `#define` as a directive token; the body is lexed normally.
                    out.push(Token { kind: Kind::Directive, start, end: word_end, line, col });
                    count_lines(b, i, word_end, &mut line, &mut line_start);
                    i = word_end;
                    at_line_start = false;
                    continue;
                }
                // A comment may carry the directive over lines; a header name or
                // a string may hold a `/*` that is not one.
                let mut k = word_end;
                if word.starts_with("include") {
                    while matches!(b.get(k), Some(b' ' | b'\t')) {
                        k += 1;
                    }
                    if b.get(k) == Some(&b'<') {
                        while k < b.len() && b[k] != b'>' && b[k] != b'\n' {
                            k += 1;
                        }
                    }
                }
                while k < b.len() && b[k] != b'\n' {
                    match b[k] {
                        b'/' if b.get(k + 1) == Some(&b'*') => {
                            let close = b[k + 2..].windows(2).position(|w| w == b"*/");
                            k = close.map_or(b.len(), |p| k + 2 + p + 2);
                        }
                        b'/' if b.get(k + 1) == Some(&b'/') => {
                            while k < b.len() && b[k] != b'\n' {
                                k += 1;
                            }
                        }
                        q @ (b'"' | b'\'') => {
                            k += 1;
                            while k < b.len() && b[k] != q && b[k] != b'\n' {
                                k += if b[k] == b'\\' { splice_len(b, k).max(2) } else { 1 };
                            }
                            if b.get(k) == Some(&q) {
                                k += 1;
                            }
                        }
                        _ => k += splice_len(b, k).max(1),
                    }
                }
                let k = k.min(b.len());
                out.push(Token { kind: Kind::Directive, start, end: k, line, col });
                count_lines(b, i, k, &mut line, &mut line_start);
                i = k;
                continue;
            }
            b'"' | b'\'' => {
                let (quote, first_line) = (c, line);
                i += 1;
                while i < b.len() && b[i] != quote && b[i] != b'\n' {
                    let splice = splice_len(b, i);
                    if splice > 0 {
                        i += splice;
                        line += 1;
                        line_start = i;
                        continue;
                    }
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = i.min(b.len());
                if b.get(i) == Some(&quote) {
                    i += 1; // the closing quote; an unclosed literal ends before the newline
                }
                let kind = if quote == b'"' { Kind::Str } else { Kind::Char };
                out.push(Token { kind, start, end: i, line: first_line, col });
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                    i += 1;
                }
                out.push(Token { kind: Kind::Ident, start, end: i, line, col });
            }
            c if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())) => {
                while i < b.len() {
                    let d = b[i];
                    let exp_sign = (d == b'+' || d == b'-') && matches!(b[i - 1], b'e' | b'E' | b'p' | b'P');
                    if d.is_ascii_alphanumeric() || d == b'.' || exp_sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push(Token { kind: Kind::Number, start, end: i, line, col });
            }
            _ => {
                // Punctuation: take the two-character operators that matter to us (`->`, `++`, `--`).
                let two = b.get(i..i + 2);
                i += if matches!(two, Some(b"->") | Some(b"++") | Some(b"--")) { 2 } else { 1 };
                while !src.is_char_boundary(i) {
                    i += 1;
                }
                out.push(Token { kind: Kind::Punct, start, end: i, line, col });
            }
        }
        at_line_start = false;
    }
    out
}

/// Counts the newlines (continuations) in `b[from..to]` into `line` and `line_start`.
fn count_lines(b: &[u8], from: usize, to: usize, line: &mut u32, line_start: &mut usize) {
    for (off, &ch) in b[from..to].iter().enumerate() {
        if ch == b'\n' {
            *line += 1;
            *line_start = from + off + 1;
        }
    }
}

/// Characters in a UTF-8 byte run: the bytes that do not continue a character.
fn chars_in(b: &[u8]) -> u32 {
    #[cfg(test)]
    COLUMN_WORK.with(|w| w.set(w.get() + b.len()));
    b.iter().filter(|&&c| (c & 0xc0) != 0x80).count() as u32
}

#[cfg(test)]
thread_local! {
    /// Bytes stepped over to compute columns on this thread: the work that was
    /// quadratic in line length. Tests compare it across layouts instead of
    /// timing anything.
    pub static COLUMN_WORK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The column work `f` does on this thread (tests only).
#[cfg(test)]
pub fn column_work(f: impl FnOnce()) -> usize {
    let before = COLUMN_WORK.with(|w| w.get());
    f();
    COLUMN_WORK.with(|w| w.get()) - before
}

/// Length of the line splice at `i` (backslash, optional CR, LF), or 0.
pub fn splice_len(b: &[u8], i: usize) -> usize {
    match (b.get(i), b.get(i + 1), b.get(i + 2)) {
        (Some(b'\\'), Some(b'\n'), _) => 2,
        (Some(b'\\'), Some(b'\r'), Some(b'\n')) => 3,
        _ => 0,
    }
}

/// The name of the directive whose `#` is just before `i`, as the
/// preprocessor reads it: blanks, comments and splices before it skipped,
/// splices inside it removed. Returns the name and the byte after it.
fn directive_name(b: &[u8], mut i: usize) -> (String, usize) {
    loop {
        match b.get(i) {
            Some(b' ' | b'\t' | 0x0b | 0x0c | b'\r') => i += 1,
            Some(b'\\') if splice_len(b, i) > 0 => i += splice_len(b, i),
            Some(b'/') if b.get(i + 1) == Some(&b'*') => {
                let close = b[i + 2..].windows(2).position(|w| w == b"*/");
                i = close.map_or(b.len(), |p| i + 2 + p + 2);
            }
            _ => break,
        }
    }
    let mut name = String::new();
    while i < b.len() {
        let n = splice_len(b, i);
        if n > 0 {
            i += n;
        } else if b[i].is_ascii_alphanumeric() || b[i] == b'_' {
            name.push(b[i] as char);
            i += 1;
        } else {
            break;
        }
    }
    (name, i)
}

/// A directive's text as the preprocessor sees it (translation phases 1-3):
/// line splices removed, each comment replaced by a space. String literals
/// and a `<header>` name are kept as written (a `/*` in them is not a comment).
pub fn logical(text: &str) -> String {
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let n = splice_len(b, i);
        if n > 0 {
            i += n;
            continue;
        }
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let close = b[i + 2..].windows(2).position(|w| w == b"*/");
                i = close.map_or(b.len(), |p| i + 2 + p + 2);
                out.push(b' ');
            }
            b'/' if b.get(i + 1) == Some(&b'/') => break,
            q @ (b'"' | b'\'' | b'<') => {
                // `<` opens a header name only right after `include`.
                let word = out.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(&out[..0], |e| &out[..=e]);
                let header = q != b'<' || word.ends_with(b"include");
                let close = if q == b'<' { b'>' } else { q };
                out.push(q);
                i += 1;
                while header && i < b.len() && b[i] != close {
                    let n = splice_len(b, i);
                    if n > 0 {
                        i += n;
                        continue;
                    }
                    if b[i] == b'\\' && q != b'<' && i + 1 < b.len() {
                        out.push(b[i]);
                        i += 1;
                    }
                    out.push(b[i]);
                    i += 1;
                }
                if header && i < b.len() {
                    out.push(close);
                    i += 1;
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<&str> {
        tokenize(src).iter().map(|t| t.text(src)).collect()
    }

    #[test]
    fn skips_comments_and_keeps_strings_whole() {
        let src = "a /* Cycle( */ b // Phasor(\n\"Cycle(1)\" 'x' c";
        assert_eq!(texts(src), ["a", "b", "\"Cycle(1)\"", "'x'", "c"]);
    }

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let src = "x\n  y = Cycle(1.5e+3);";
        let t = tokenize(src);
        assert_eq!((t[1].line, t[1].col), (2, 3));
        let cyc = t.iter().find(|t| t.text(src) == "Cycle").unwrap();
        assert_eq!((cyc.line, cyc.col), (2, 7));
        assert!(t.iter().any(|t| t.text(src) == "1.5e+3"));
    }

    #[test]
    fn directives_are_single_tokens_but_define_bodies_are_lexed() {
        let src = "#include <math.h>\n#define OSC(f) Cycle(f)\nint x;";
        let tx = texts(src);
        assert_eq!(tx[0], "#include <math.h>");
        assert_eq!(tx[1], "#define");
        assert!(tx.contains(&"Cycle"));
        let t = tokenize(src);
        assert_eq!(t.last().unwrap().line, 3);
    }

    #[test]
    fn a_long_line_costs_one_pass_and_keeps_true_columns() {
        let src = "x + é + ".repeat(25_000);
        let mut toks = Vec::new();
        let work = column_work(|| toks = tokenize(&src));
        assert!(work <= src.len(), "{work} bytes stepped over for a {}-byte line", src.len());
        assert_eq!(toks.len(), 100_000);
        // The last `+`: 8 characters per repeat, at column 7 of the last one.
        assert_eq!(toks.last().map(|t| (t.line, t.col)), Some((1, 8 * 24_999 + 7)));
    }

    #[test]
    fn splices_comments_and_unclosed_literals_keep_lines_true() {
        let src = "#def\\\nine A \"x\\\ny\" 'z\nB\n# /* c\n */ include <a/*b.h>\nC";
        let t = tokenize(src);
        let at = |text: &str| t.iter().find(|t| t.text(src) == text).map(|t| (t.line, t.col));
        assert_eq!(t[0].kind, Kind::Directive);
        assert_eq!(at("A"), Some((2, 5)));
        assert_eq!(at("B"), Some((4, 1)));
        assert_eq!(t.iter().filter(|t| t.kind == Kind::Directive).count(), 2);
        assert_eq!(at("C"), Some((7, 1)));
        assert_eq!(logical("# /* c\n */ inc\\\r\nlude <a/*b.h> // x"), "#   include <a/*b.h> ");
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let src = "/* é */ x";
        assert_eq!(tokenize(src)[0].col, 9);
    }
}
