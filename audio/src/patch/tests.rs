//! The compile path end to end: prelude, TinyCC, diagnostics, bad input.

use super::*;

fn compile_text(text: &str) -> Result<Prepared, PatchError> {
    compile(&PatchSource::from_text("p.c", text), &SiteRegistry::default(), &CompileOptions::default())
}

fn first_error(text: &str) -> Diagnostic {
    let e = compile_text(text).expect_err("should not compile");
    e.diagnostics().first().cloned().unwrap_or_else(|| panic!("no diagnostic: {e}"))
}

#[test]
fn a_patch_needs_no_include_for_the_api_and_math() {
    let p =
        compile_text("void play(void) { _out(0, sinf(M_PI * Phasor(1)) + tanhf(_p(0)) + (float)pow(2.0, _time())); }")
            .unwrap();
    assert!(p.program.warnings.is_empty(), "{:?}", p.program.warnings);
    assert_eq!(p.plan.sites.len(), 1);
}

#[test]
fn including_math_h_still_works_and_does_not_warn() {
    let p =
        compile_text("#include <math.h>\nvoid play(void) { _out(0, sinf(M_PI * 0.5f) * (float)fabs(-1.0)); }").unwrap();
    assert!(p.program.warnings.is_empty(), "{:?}", p.program.warnings);
}

#[test]
fn errors_point_at_file_line_and_column_with_tinyccs_text() {
    let d = first_error("void play(void) {\n  float x = 1;\n  _out(0, x + yy);\n}\n");
    assert_eq!(d.to_string(), "p.c:3:15: error: 'yy' undeclared");
    let d = first_error("void play(void) {\n  float x = 1\n}\n");
    assert_eq!((d.line, d.severity), (3, Severity::Error));
    assert!(d.message.contains("';' expected"), "{d}");
}

#[test]
fn an_undefined_function_is_named_at_its_first_use_not_as_relocate_failed() {
    let e = compile_text("void play(void) {\n  _out(0, nosuchfn(1));\n}\n").expect_err("link fails");
    let err = e.diagnostics().iter().find(|d| d.severity == Severity::Error).unwrap();
    assert!(err.message.contains("nosuchfn"), "{err}");
    assert!(!err.message.contains("relocate"), "{err}");
    assert_eq!((err.line, err.col), (2, 11));
}

#[test]
fn missing_play_and_wrong_signatures_are_explained() {
    let d = first_error("void compiled(void) {}\n");
    assert!(d.message.contains("defines no `void play(void)`"), "{d}");
    let d = first_error("\nint play(int x) { return x; }\n");
    assert_eq!(d.line, 2);
    assert!(d.message.contains("must be declared `void NAME(void)`"), "{d}");
    let d = first_error("float play;\n");
    assert!(d.message.contains("play"), "{d}");
}

#[test]
fn empty_binary_huge_and_hostile_sources_get_clear_errors() {
    assert!(first_error("").message.contains("empty"));
    assert!(first_error("\n/* just a comment */\n").message.contains("empty"));
    let e = PatchSource::from_bytes("g.c", vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0], None).unwrap_err();
    assert!(e.to_string().starts_with("g.c:1:8: error: this is not C source text"), "{e}");
    let big = "int x;\n".repeat(2_000_000).into_bytes();
    let e = PatchSource::from_bytes("big.c", big, None).unwrap_err();
    assert!(e.to_string().contains("14.0 MB"), "{e}");
    assert!(first_error("#include \"/dev/zero\"\nvoid play(void){}").message.contains("not a regular file"));
    assert!(first_error("#include <no/such/header.h>\nvoid play(void){}").message.contains("not found"));
    let deep = format!("void play(void) {{ float x = {}1{}; }}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(first_error(&deep).message.contains("nested"));
}

#[test]
fn a_patch_that_recurses_compiles_fine() {
    // Runtime recursion is the engine's and the CLI's business (see crash tests), not the compiler's.
    compile_text("int f(int n) { return f(n + 1); }\nvoid play(void) { if (_i(0)) f(0); }").unwrap();
}

#[test]
fn prepared_text_keeps_line_numbers() {
    let src = PatchSource::from_text("x.c", "// 1\n// 2\nvoid play(void) { _out(0, Cycle(3)); }\n");
    let rewritten = prepare(&src, &SiteRegistry::default(), &CompileOptions::default()).unwrap();
    let full = rewritten.with_prelude("x.c");
    let body = full.split("#line 1 \"x.c\"\n").nth(1).unwrap();
    assert_eq!(body.lines().nth(2), Some("void play(void) { _out(0, Cycle(0,3)); }"));
}
