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
    Locator::new(src).locate(line, message)
}

/// [`locate`] for many messages about one source: the line index is built
/// once and each line tokenised once, so placing N messages on one long line
/// costs one pass over it, not N.
pub struct Locator<'s> {
    src: &'s str,
    /// Byte offset of each line's start.
    starts: Vec<usize>,
    lines: std::collections::HashMap<u32, Vec<super::lexer::Token>>,
}

impl<'s> Locator<'s> {
    pub fn new(src: &'s str) -> Locator<'s> {
        let starts = std::iter::once(0).chain(src.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Locator { src, starts, lines: std::collections::HashMap::new() }
    }

    /// The text of 1-based line `l`, without its newline.
    fn line(&self, l: u32) -> Option<&'s str> {
        let start = *self.starts.get(l.checked_sub(1)? as usize)?;
        let end = self.starts.get(l as usize).map_or(self.src.len(), |&e| e - 1);
        (start <= end && (start < self.src.len() || l == 1)).then(|| &self.src[start..end])
    }

    fn tokens(&mut self, l: u32) -> Option<(&'s str, &[super::lexer::Token])> {
        let text = self.line(l)?;
        let toks = self.lines.entry(l).or_insert_with(|| tokenize(text));
        Some((text, toks))
    }

    pub fn locate(&mut self, line: u32, message: &str) -> (u32, u32) {
        let Some((text, toks)) = self.tokens(line) else {
            return (line, 1);
        };
        let first = toks.first().map(|t| t.col).unwrap_or(1);
        if let Some(name) = named_token(message) {
            if let Some(t) = toks.iter().find(|t| t.text(text) == name) {
                return (line, t.col);
            }
            for back in 1..=LOOK_BACK.min(line.saturating_sub(1)) {
                let l = line - back;
                if let Some((earlier, toks)) = self.tokens(l) {
                    if let Some(t) = toks.iter().rev().find(|t| t.text(earlier) == name) {
                        return (l, t.col);
                    }
                }
            }
        }
        (line, first)
    }
}

/// The text of a file a TinyCC message names, to find the column in it; None
/// unless it is a regular file of at most `max` bytes. The name comes from the
/// patch (`#line 1 "/dev/zero"` renames the file in every message), so it is
/// never opened unless `stat` says it is a plain file, and never read past `max`.
pub fn read_named_file(path: &str, max: u64) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > max {
        return None;
    }
    let file =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(max).read_to_string(&mut text).ok()?;
    Some(text)
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
    fn many_messages_on_one_long_line_cost_one_pass() {
        let src = format!("void play(void) {{ {} }}", "p = 1; ".repeat(20_000));
        let mut placed = Vec::new();
        let work = crate::patch::lexer::column_work(|| {
            let mut at = Locator::new(&src);
            placed = (0..1000).map(|_| at.locate(1, "assignment makes pointer from integer")).collect();
        });
        assert!(work <= src.len(), "{work} bytes stepped over for {} bytes", src.len());
        assert!(placed.iter().all(|&p| p == (1, 1)));
        let mut at = Locator::new("a\nb = c;\n");
        assert_eq!(at.locate(2, "'c' undeclared"), (2, 5));
        assert_eq!(at.locate(3, "x"), (3, 1));
    }

    #[test]
    fn only_plain_files_are_read_to_place_a_column() {
        assert_eq!(read_named_file("/dev/zero", 1 << 20), None);
        assert_eq!(read_named_file("/", 1 << 20), None);
        assert_eq!(read_named_file("/no/such/file.h", 1 << 20), None);
        let p = std::env::temp_dir().join(format!("clavm-diag-{}.h", std::process::id()));
        std::fs::write(&p, "int x;\n").unwrap();
        assert_eq!(read_named_file(&p.to_string_lossy(), 1 << 20).as_deref(), Some("int x;\n"));
        assert_eq!(read_named_file(&p.to_string_lossy(), 3), None);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_named_token_on_an_earlier_line_moves_the_diagnostic_there() {
        let src = "void play(void) {\n  oops\n}\n";
        assert_eq!(locate(src, 3, "'oops' undeclared"), (2, 3));
        assert_eq!(locate(src, 3, "';' expected (got \"}\")"), (3, 1));
        assert_eq!(locate(src, 1, "'nowhere' undeclared"), (1, 1));
    }
}
