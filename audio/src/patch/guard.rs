//! Checks a patch must pass before TinyCC sees it. TinyCC is not hardened
//! against hostile input: deeply nested brackets overflow its parser's stack,
//! and `#include "/dev/zero"` would read forever. Each check answers with a
//! diagnostic at the offending token instead.

use std::path::{Path, PathBuf};

use super::diagnostics::Diagnostic;
use super::lexer::{tokenize, Kind, Token};

/// Largest patch (and included file) accepted. A live patch this size already
/// takes ~1 ms per 10 kB to recompile; 10 MB would stall every edit.
pub const MAX_SOURCE_BYTES: usize = 1 << 20;
/// Deepest bracket nesting, or longest run of prefix operators, accepted.
pub const MAX_NESTING: usize = 256;
const MAX_INCLUDE_DEPTH: usize = 16;

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
            check_directive(name, text, t)?;
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
    let var = head.iter().rev().find(|t| t.kind == Kind::Ident)?;
    Some(warning(name, var, format!("global variable '{}' {RESTARTS}", var.text(src))))
}

/// The directories searched for `#include <...>`: TinyCC's own, then the system's.
pub fn system_include_dirs() -> Vec<PathBuf> {
    let ma = libtcc::MULTIARCH;
    vec![
        Path::new(libtcc::RUNTIME_DIR).join("include"),
        format!("/usr/local/include/{ma}").into(),
        "/usr/local/include".into(),
        format!("/usr/include/{ma}").into(),
        "/usr/include".into(),
    ]
}

/// Follows the patch's `#include`s (and those of the files it includes, outside
/// the system directories) and refuses any that is not a regular file of
/// reasonable size, and any computed `#include MACRO`.
pub fn check_includes(
    name: &str,
    src: &str,
    tokens: &[Token],
    dir: Option<&Path>,
    user_dirs: &[PathBuf],
) -> Result<(), Diagnostic> {
    let system = system_include_dirs();
    walk_includes(name, src, tokens, dir, user_dirs, &system, 0)
}

fn walk_includes(
    name: &str,
    src: &str,
    tokens: &[Token],
    dir: Option<&Path>,
    user_dirs: &[PathBuf],
    system: &[PathBuf],
    depth: usize,
) -> Result<(), Diagnostic> {
    for t in tokens.iter().filter(|t| t.kind == Kind::Directive) {
        let (word, arg) = directive_word(t.text(src));
        if word != "include" {
            continue;
        }
        let err = |msg: String| Diagnostic::error(name, t.line, t.col, msg);
        let (target, quoted) = if let Some(r) = arg.strip_prefix('"') {
            (r.split('"').next().unwrap_or(""), true)
        } else if let Some(r) = arg.strip_prefix('<') {
            (r.split('>').next().unwrap_or(""), false)
        } else {
            return Err(err(format!(
                "computed #include ({arg}) is not supported in patches: name the file in quotes or <>"
            )));
        };
        let mut candidates: Vec<PathBuf> = Vec::new();
        if Path::new(target).is_absolute() {
            candidates.push(target.into());
        } else {
            if quoted {
                candidates.extend(dir.map(|d| d.join(target)));
            }
            candidates.extend(user_dirs.iter().map(|d| d.join(target)));
            candidates.extend(system.iter().map(|d| d.join(target)));
        }
        // Not found: TinyCC reports it ("include file 'x' not found").
        let Some(path) = candidates.into_iter().find(|p| p.exists()) else {
            continue;
        };
        let meta = std::fs::metadata(&path).map_err(|e| err(format!("cannot read #include '{target}': {e}")))?;
        if !meta.is_file() {
            return Err(err(format!(
                "#include '{target}' ({}) is not a regular file (a device, pipe or directory?)",
                path.display()
            )));
        }
        if meta.len() as usize > MAX_SOURCE_BYTES {
            return Err(err(format!(
                "#include '{target}' is {:.1} MB, over the {} KiB limit",
                meta.len() as f64 / 1e6,
                MAX_SOURCE_BYTES / 1024
            )));
        }
        let in_system = system.iter().any(|s| path.starts_with(s));
        if in_system {
            continue;
        }
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(err(format!("#include nested more than {MAX_INCLUDE_DEPTH} deep")));
        }
        let bytes = std::fs::read(&path).map_err(|e| err(format!("cannot read #include '{target}': {e}")))?;
        let inner_name = path.display().to_string();
        check_bytes(&inner_name, &bytes)?;
        let text = String::from_utf8_lossy(&bytes);
        let toks = tokenize(&text);
        check_tokens(&inner_name, &text, &toks).or(Ok::<(), Diagnostic>(())).ok();
        walk_includes(&inner_name, &text, &toks, path.parent(), user_dirs, system, depth + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
                   float local = x; return s + c + local; }\nvoid play(void) {}\n";
        let w = lint_state("p.c", src, &tokenize(src));
        let got: Vec<(u32, u32)> = w.iter().map(|d| (d.line, d.col)).collect();
        assert_eq!(got, [(4, 7), (5, 5), (11, 20)], "{w:?}");
        assert!(w[0].to_string().starts_with("p.c:4:7: warning: global variable 'g' restarts at every recompile"));
        assert!(w[1].message.contains("'h'"));
        assert!(w[2].message.starts_with("a static variable"));
    }

    #[test]
    fn refuses_device_and_computed_includes() {
        let check = |src: &str| check_includes("p.c", src, &tokenize(src), None, &[]);
        let e = check("#include \"/dev/zero\"\n").unwrap_err();
        assert!(e.message.contains("not a regular file"), "{e}");
        assert!(check("#define H <math.h>\n#include H\n").unwrap_err().message.contains("computed"));
        assert!(check("#include <math.h>\n#include \"no-such-file.h\"\n").is_ok());
    }
}
