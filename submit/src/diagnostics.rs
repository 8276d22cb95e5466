//! Reading `FILE:LINE:COL: severity: message` lines back into parts, for editors.

/// One diagnostic line of a reply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub severity: String,
    pub message: String,
}

/// Parses one line; `None` if it is not a diagnostic (a note of another shape).
pub fn parse_line(line: &str) -> Option<Diagnostic> {
    for severity in ["error", "warning", "note"] {
        let marker = format!(": {severity}: ");
        let Some(at) = line.find(&marker) else { continue };
        let mut parts = line[..at].rsplitn(3, ':');
        let col = parts.next()?.parse().ok()?;
        let row = parts.next()?.parse().ok()?;
        let file = parts.next()?.to_string();
        let message = line[at + marker.len()..].to_string();
        return Some(Diagnostic { file, line: row, col, severity: severity.to_string(), message });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_colons_in_the_path_and_message_parse() {
        let d = parse_line("/tmp/a:b.c:12:7: error: expected ';' (got: '}')").unwrap();
        assert_eq!((d.file.as_str(), d.line, d.col), ("/tmp/a:b.c", 12, 7));
        assert_eq!((d.severity.as_str(), d.message.as_str()), ("error", "expected ';' (got: '}')"));
        assert_eq!(parse_line("x.c:3:1: warning: unused").unwrap().severity, "warning");
        assert_eq!(parse_line("play() crashed: SIGSEGV"), None);
    }
}
