//! Checks a patch must pass before TinyCC sees it. TinyCC is not hardened
//! against hostile input: deeply nested brackets overflow its parser's stack,
//! and `#include "/dev/zero"` would read forever. Each check answers with a
//! diagnostic at the offending token instead.
//!
//! Includes are guarded in two layers, and only the second is a guarantee.
//! Checking the patch's text cannot be made airtight: the preprocessor decides
//! what it opens only as it runs (a name built by macros, a `#line`, a header
//! that includes another, `#include_next`, splices and comments in the
//! directive, a header swapped for a FIFO after the check). So every file
//! TinyCC opens goes through a hook in the libtcc binding (`libtcc::files`),
//! which refuses anything but a regular, size-bounded file inside the
//! patch's folder, the `-I` folders or the system headers, and hands TinyCC a
//! bounded copy. [`check_includes`] here is the first layer: on the
//! directives' logical text (splices and comments removed, as the
//! preprocessor sees them), it refuses what a patch has no use for
//! (`#include MACRO`, `#include_next`, `#include "-"`) with the exact position.

use super::diagnostics::Diagnostic;
use super::lexer::{logical, Kind, Token};

/// Largest patch (and included file) accepted. A live patch this size already
/// takes ~1 ms per 10 kB to recompile; 10 MB would stall every edit. The same
/// bound as the libtcc hook's for every file TinyCC reads.
pub const MAX_SOURCE_BYTES: usize = libtcc::MAX_FILE_BYTES as usize;
/// Deepest bracket nesting, or longest run of prefix operators, accepted.
pub const MAX_NESTING: usize = 256;

/// Text a patch is made of: the bytes must be UTF-8 without NULs, and not too many.
pub fn check_bytes(name: &str, bytes: &[u8]) -> Result<(), Diagnostic> {
    if bytes.len() > MAX_SOURCE_BYTES {
        return Err(Diagnostic::error(
            name,
            1,
            1,
            format!(
                "patch is {:.1} MB; patches are limited to {} KiB (a source this big could not recompile live)",
                bytes.len() as f64 / 1e6,
                MAX_SOURCE_BYTES / 1024
            ),
        ));
    }
    let bad = bytes.iter().position(|&b| b == 0).or_else(|| std::str::from_utf8(bytes).err().map(|e| e.valid_up_to()));
    if let Some(at) = bad {
        let (line, col) = position_of(bytes, at);
        return Err(Diagnostic::error(
            name,
            line,
            col,
            format!("this is not C source text (byte 0x{:02x} at offset {at}): is it a binary file?", bytes[at]),
        ));
    }
    Ok(())
}

fn position_of(bytes: &[u8], at: usize) -> (u32, u32) {
    let before = &bytes[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    (line, (at - line_start) as u32 + 1)
}

/// Structural checks on the token stream of the patch itself.
pub fn check_tokens(name: &str, src: &str, tokens: &[Token]) -> Result<(), Diagnostic> {
    if tokens.is_empty() {
        return Err(Diagnostic::error(name, 1, 1, "the patch is empty: define `void play(void) { ... }`"));
    }
    let (mut depth, mut prefix_run) = (0usize, 0usize);
    let mut prev: Option<&str> = None;
    for t in tokens {
        let text = t.text(src);
        match text {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_NESTING {
            return Err(Diagnostic::error(
                name,
                t.line,
                t.col,
                format!("brackets nested more than {MAX_NESTING} deep"),
            ));
        }
        // A prefix operator follows an operator or an opening bracket (not a value).
        let is_prefix_op = matches!(text, "-" | "+" | "!" | "~" | "*" | "&" | "++" | "--")
            && prev.is_none_or(|p| {
                !(p == ")"
                    || p == "]"
                    || p.chars().next().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"' || c == '\''))
            });
        prefix_run = if is_prefix_op { prefix_run + 1 } else { 0 };
        if prefix_run > MAX_NESTING {
            return Err(Diagnostic::error(
                name,
                t.line,
                t.col,
                format!("more than {MAX_NESTING} prefix operators in a row"),
            ));
        }
        prev = Some(text);
        if t.kind == Kind::Directive {
            check_directive(name, &logical(text), t)?;
        }
    }
    Ok(())
}

fn directive_word(text: &str) -> (&str, &str) {
    let rest = text.trim_start_matches('#').trim_start();
    let end = rest.find(|c: char| !c.is_ascii_alphanumeric() && c != '_').unwrap_or(rest.len());
    (&rest[..end], rest[end..].trim())
}

fn check_directive(name: &str, text: &str, t: &Token) -> Result<(), Diagnostic> {
    let (word, arg) = directive_word(text);
    if word == "pragma" && arg.starts_with("comment") {
        return Err(Diagnostic::error(
            name,
            t.line,
            t.col,
            "#pragma comment(lib, ...) is not allowed in a patch: it would load a library",
        ));
    }
    Ok(())
}

/// Lines that belong to preprocessor directives (continuations included).
fn directive_lines(src: &str) -> Vec<bool> {
    let mut out = Vec::new();
    let mut continued = false;
    for line in src.lines() {
        let is = continued || line.trim_start().starts_with('#');
        continued = is && line.trim_end().ends_with('\\');
        out.push(is);
    }
    out
}

fn warning(name: &str, t: &Token, message: String) -> Diagnostic {
    let mut d = Diagnostic::error(name, t.line, t.col, message);
    d.severity = super::Severity::Warning;
    d
}

const RESTARTS: &str = "restarts at every recompile: keep state in _float(n), _double(n) or _int(n)";

/// Warns about state that silently restarts at every recompile: global
/// variables and `static` locals (constants are fine). The patch API's slots
/// are what survives.
pub fn lint_state(name: &str, src: &str, tokens: &[Token]) -> Vec<Diagnostic> {
    let in_directive = directive_lines(src);
    let toks: Vec<&Token> =
        tokens.iter().filter(|t| !in_directive.get(t.line as usize - 1).copied().unwrap_or(false)).collect();
    let mut out = Vec::new();
    let (mut brace, mut paren) = (0usize, 0usize);
    let mut stmt: Vec<&Token> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let text = t.text(src);
        if brace > 0 {
            // Inside a function body or a top-level initializer.
            let in_function = stmt.is_empty();
            if in_function && text == "static" && toks.get(i + 1).is_none_or(|n| n.text(src) != "const") {
                out.push(warning(name, t, format!("a static variable {RESTARTS}")));
            }
            match text {
                "{" => brace += 1,
                "}" => brace -= 1,
                _ => {}
            }
            continue;
        }
        match text {
            "(" => paren += 1,
            ")" => paren = paren.saturating_sub(1),
            "{" if paren == 0 => {
                brace = 1;
                if stmt.last().is_some_and(|l| l.text(src) == ")") {
                    stmt.clear(); // a function body follows
                } else {
                    stmt.push(t); // an initializer or a struct body: part of the statement
                }
                continue;
            }
            ";" if paren == 0 => {
                out.extend(global_declaration(name, src, &stmt));
                stmt.clear();
                continue;
            }
            _ => {}
        }
        stmt.push(t);
    }
    out
}

/// A warning if the top-level statement `stmt` declares a mutable global variable.
fn global_declaration(name: &str, src: &str, stmt: &[&Token]) -> Option<Diagnostic> {
    let first = stmt.first()?.text(src);
    if matches!(first, "typedef" | "extern" | "struct" | "union" | "enum") {
        return None;
    }
    // Up to the initializer: a prototype has parentheses, a constant has `const`.
    let head: Vec<&&Token> = stmt.iter().take_while(|t| t.text(src) != "=").collect();
    if head.len() < 2 || head.iter().any(|t| matches!(t.text(src), "(" | "const")) {
        return None;
    }
    // A pointer is how a patch reaches memory that is kept: `_float()`'s
    // slots, or what `compiled()` allocated (a Faust DSP), set again by every
    // `compiled()`. Its restarting is what it wants.
    if head.iter().any(|t| t.text(src) == "*") {
        return None;
    }
    let var = head.iter().rev().find(|t| t.kind == Kind::Ident)?;
    Some(warning(name, var, format!("global variable '{}' {RESTARTS}", var.text(src))))
}

/// Checks the patch's own `#include`s on their logical text (see
/// [`logical`]), so that a refusal points at the line and column: computed
/// includes (`#include MACRO`), `#include_next`, `#include "-"` (which
/// TinyCC reads from standard input), and a `#line` that renames the file
/// (`#line 1 "/dev/zero"` would make every message name a device). What files may be read is not decided
/// here but in `libtcc::files`, for every file TinyCC opens.
pub fn check_includes(name: &str, src: &str, tokens: &[Token]) -> Result<(), Diagnostic> {
    for t in tokens.iter().filter(|t| t.kind == Kind::Directive) {
        let text = logical(t.text(src));
        let (word, arg) = directive_word(&text);
        let err = |msg: String| Err(Diagnostic::error(name, t.line, t.col, msg));
        match word {
            "line" if arg.split_whitespace().nth(1).is_some() => {
                return err(format!(
                    "#line {arg}: a patch may renumber its lines but not rename its file (messages must name the patch)"
                ))
            }
            "include_next" => {
                return err("#include_next is not allowed in a patch: use #include with the file's name".into())
            }
            "include" => {}
            _ => continue,
        }
        let target = if let Some(r) = arg.strip_prefix('"') {
            r.split('"').next().unwrap_or("")
        } else if let Some(r) = arg.strip_prefix('<') {
            r.split('>').next().unwrap_or("")
        } else {
            return err(format!(
                "computed #include ({arg}) is not supported in patches: name the file in quotes or <>"
            ));
        };
        if target == "-" {
            return err("#include \"-\" is not allowed: TinyCC would read its standard input".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::lexer::tokenize;

    fn tokens_check(src: &str) -> Result<(), Diagnostic> {
        check_tokens("p.c", src, &tokenize(src))
    }

    #[test]
    fn refuses_binary_and_oversized_input_with_a_position() {
        let e = check_bytes("p.c", b"int x;\nab\0c").unwrap_err();
        assert_eq!((e.line, e.col), (2, 3));
        assert!(e.message.contains("binary"), "{e}");
        let e = check_bytes("p.c", &[0xff, 0xfe, 0x00]).unwrap_err();
        assert!(e.message.contains("not C source"), "{e}");
        let big = vec![b' '; MAX_SOURCE_BYTES + 1];
        assert!(check_bytes("p.c", &big).unwrap_err().message.contains("limited"));
    }

    #[test]
    fn refuses_empty_deeply_nested_and_library_loading_sources() {
        assert!(tokens_check("  // nothing\n").unwrap_err().message.contains("empty"));
        let deep = format!("int x = {}1{};", "(".repeat(300), ")".repeat(300));
        let e = tokens_check(&deep).unwrap_err();
        assert_eq!((e.line, e.col), (1, 9 + MAX_NESTING as u32));
        let neg = format!("int x = {}1;", "- ".repeat(300));
        assert!(tokens_check(&neg).unwrap_err().message.contains("prefix"));
        assert!(tokens_check("#pragma comment(lib, \"m\")\n").is_err());
        assert!(tokens_check("int a = b - -c * -d; void play(void) { int i = -(-(1)); }").is_ok());
    }

    #[test]
    fn warns_about_globals_and_statics_but_not_constants_or_functions() {
        let src = "#define N 4\n#define M(x) \\\n  ((x) * 2)\nfloat g;\nint h[4] = {1, 2};\n\
                   const float t[2] = {1, 2};\nstatic const int k = 3;\nfloat f(float);\ntypedef float real;\n\
                   struct S { int a; };\nfloat f(float x) { static float s; static const float c = 1; \
                   float local = x; return s + c + local; }\nvoid play(void) {}\n\
                   static struct S *dsp;\nfloat *slots, *more;\n";
        let w = lint_state("p.c", src, &tokenize(src));
        let got: Vec<(u32, u32)> = w.iter().map(|d| (d.line, d.col)).collect();
        assert_eq!(got, [(4, 7), (5, 5), (11, 20)], "{w:?}");
        assert!(w[0].to_string().starts_with("p.c:4:7: warning: global variable 'g' restarts at every recompile"));
        assert!(w[1].message.contains("'h'"));
        assert!(w[2].message.starts_with("a static variable"));
    }

    fn include_check(src: &str) -> Result<(), Diagnostic> {
        check_includes("p.c", src, &tokenize(src))
    }

    #[test]
    fn refuses_computed_next_and_stdin_includes_however_they_are_spelt() {
        let refused = [
            ("#define H <math.h>\n#include H\n", "computed", (2, 1)),
            ("#include_next <math.h>\n", "include_next", (1, 1)),
            ("#include \"-\"\n", "standard input", (1, 1)),
            ("int x;\n  # /**/ include_next \"/dev/zero\"\n", "include_next", (2, 3)),
            ("#inc\\\nlude_next <x.h>\n", "include_next", (1, 1)),
            ("#inc\\\r\nlude F\n", "computed", (1, 1)),
            ("/* a */ # /* b\n c */ include \"\\\n-\"\n", "standard input", (1, 9)),
            ("#line 1 \"/dev/zero\"\n", "rename", (1, 1)),
            ("#define F \"/dev/zero\"\n#line 7 F\n", "rename", (2, 1)),
        ];
        for (src, what, at) in refused {
            let e = include_check(src).expect_err(src);
            assert!(e.message.contains(what), "{src:?}: {e}");
            assert_eq!((e.line, e.col), at, "{src:?}: {e}");
        }
        assert!(include_check("#include <math.h>\n#include \"no-such-file.h\"\n#include \"a/*b*/c.h\"\n").is_ok());
        assert!(include_check("#line 40\n#line 7 // a comment\n").is_ok());
        // Not directives: `#` after a token (a splice joins the lines), and trigraphs, which TinyCC ignores.
        assert!(include_check("int x; \\\n#include_next <x.h>\n??=include_next <x.h>\n").is_ok());
    }

    #[test]
    fn a_library_pragma_is_refused_through_comments_and_splices() {
        assert!(tokens_check("# /**/ pragma /**/ comment(lib, \"m\")\n").is_err());
        assert!(tokens_check("#prag\\\nma comm\\\nent(lib, \"m\")\n").is_err());
    }
}
