//! Compiler messages as `FILE:LINE:COL: error: MESSAGE`, the form editors'
//! quickfix lists parse. TinyCC reports lines but not columns, so the column
//! is that of the token the message names (`'x' undeclared`, `got "}"`), found
//! on the reported line of the original source; else the line's first token.

use std::fmt;

use super::lexer::{tokenize, Kind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}:{}:{}: {}: {}", self.file, self.line, self.col, sev, self.message)
    }
}

impl Diagnostic {
    /// Parses the `FILE:LINE:COL: error|warning: MESSAGE` form back (it travels
    /// as text from worker processes). None if the line is not in that form.
    pub fn parse(line: &str) -> Option<Diagnostic> {
        for (tag, severity) in [(": error: ", Severity::Error), (": warning: ", Severity::Warning)] {
            let Some(i) = line.find(tag) else { continue };
            let (head, message) = (&line[..i], &line[i + tag.len()..]);
            let mut parts = head.rsplitn(3, ':');
            let col = parts.next()?.parse().ok()?;
            let ln = parts.next()?.parse().ok()?;
            let file = parts.next()?.to_string();
            return Some(Diagnostic { file, line: ln, col, severity, message: message.to_string() });
        }
        None
    }

    pub fn error(file: &str, line: u32, col: u32, message: impl Into<String>) -> Diagnostic {
        Diagnostic { file: file.to_string(), line, col, severity: Severity::Error, message: message.into() }
    }
}

/// The token a TinyCC message is about: the text in `'...'`, or in `(got "...")`.
fn named_token(message: &str) -> Option<&str> {
    if let Some(i) = message.find("(got \"") {
        let rest = &message[i + 6..];
        return rest.rfind("\")").map(|j| &rest[..j]);
    }
    let i = message.find('\'')?;
    let rest = &message[i + 1..];
    rest.find('\'').map(|j| &rest[..j]).filter(|t| !t.is_empty())
}

/// Lines before the reported one searched for the token a message names.
const LOOK_BACK: u32 = 4;

/// Where a message TinyCC reported on `line` of `src` points: (line, column),
/// both 1-based. TinyCC knows only the line of the token it was reading when
/// it noticed, which can be past the token the message names (`oops` alone on
/// a line is reported at the `}` after it): the named token is looked for on
/// the reported line, then on the few lines before it.
pub fn locate(src: &str, line: u32, message: &str) -> (u32, u32) {
    let lines: Vec<&str> = src.lines().collect();
    let Some(text) = lines.get(line.saturating_sub(1) as usize) else {
        return (line, 1);
    };
    let toks = tokenize(text);
    if let Some(name) = named_token(message) {
        if let Some(t) = toks.iter().find(|t| t.text(text) == name) {
            return (line, t.col);
        }
        for back in 1..=LOOK_BACK.min(line.saturating_sub(1)) {
            let l = line - back;
            let earlier = lines[(l - 1) as usize];
            if let Some(t) = tokenize(earlier).iter().rev().find(|t| t.text(earlier) == name) {
                return (l, t.col);
            }
        }
    }
    (line, toks.first().map(|t| t.col).unwrap_or(1))
}

/// Where an identifier is first used as a name in `src` (for link errors, which have no line).
pub fn first_use(src: &str, ident: &str) -> Option<(u32, u32)> {
    tokenize(src).into_iter().find(|t| t.kind == Kind::Ident && t.text(src) == ident).map(|t| (t.line, t.col))
}

/// The identifier in a message like `undefined symbol 'foo'`.
pub fn quoted(message: &str) -> Option<&str> {
    named_token(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_gcc() {
        let d = Diagnostic::error("a.c", 3, 7, "'y' undeclared");
        assert_eq!(d.to_string(), "a.c:3:7: error: 'y' undeclared");
    }

    #[test]
    fn parses_its_own_format_back() {
        let d = Diagnostic::error("dir/a b.c", 3, 7, "'y' undeclared: see x:1:2");
        assert_eq!(Diagnostic::parse(&d.to_string()), Some(d));
        assert_eq!(Diagnostic::parse("nothing here"), None);
    }

    #[test]
    fn column_is_that_of_the_named_token() {
        let src = "void play(void) {\n  float x = yy + 1;\n}";
        assert_eq!(locate(src, 2, "'yy' undeclared"), (2, 13));
        assert_eq!(locate(src, 3, "';' expected (got \"}\")"), (3, 1));
        assert_eq!(locate(src, 2, "something else"), (2, 3));
        assert_eq!(first_use(src, "yy"), Some((2, 13)));
    }

    #[test]
    fn a_named_token_on_an_earlier_line_moves_the_diagnostic_there() {
        let src = "void play(void) {\n  oops\n}\n";
        assert_eq!(locate(src, 3, "'oops' undeclared"), (2, 3));
        assert_eq!(locate(src, 3, "';' expected (got \"}\")"), (3, 1));
        assert_eq!(locate(src, 1, "'nowhere' undeclared"), (1, 1));
    }
}
