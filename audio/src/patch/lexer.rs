//! A small C tokenizer: just enough to find call sites, check nesting and
//! `#include`s, and point diagnostics at a column. It never fails: anything it
//! does not understand becomes a one-character punctuation token, and TinyCC
//! has the final word on what is valid C.

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
    while i < b.len() {
        let c = b[i];
        let col = (src[line_start..i].chars().count() + 1) as u32;
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
            b'\\' if b.get(i + 1) == Some(&b'\n') => {
                i += 2;
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
                let mut j = i + 1;
                while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
                    j += 1;
                }
                let word_end = (j..b.len()).find(|&k| !b[k].is_ascii_alphanumeric() && b[k] != b'_').unwrap_or(b.len());
                if &b[j..word_end] == b"define" {
                    // Emit `#define` as a directive token; the body is lexed normally.
                    out.push(Token { kind: Kind::Directive, start, end: word_end, line, col });
                    i = word_end;
                    at_line_start = false;
                    continue;
                }
                let mut k = i;
                while k < b.len() && b[k] != b'\n' {
                    if b[k] == b'\\' && b.get(k + 1) == Some(&b'\n') {
                        k += 1;
                    }
                    k += 1;
                }
                out.push(Token { kind: Kind::Directive, start, end: k, line, col });
                // Count continuation newlines inside the directive.
                for (off, &ch) in b[i..k].iter().enumerate() {
                    if ch == b'\n' {
                        line += 1;
                        line_start = i + off + 1;
                    }
                }
                i = k;
                continue;
            }
            b'"' | b'\'' => {
                let quote = c;
                i += 1;
                while i < b.len() && b[i] != quote && b[i] != b'\n' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i = (i + 1).min(b.len());
                let kind = if quote == b'"' { Kind::Str } else { Kind::Char };
                out.push(Token { kind, start, end: i, line, col });
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
    fn columns_count_characters_not_bytes() {
        let src = "/* é */ x";
        assert_eq!(tokenize(src)[0].col, 9);
    }
}
