//! The compile path end to end: prelude, TinyCC, diagnostics, bad input.

use super::*;
use std::path::Path;

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

/// The hostile include corpus: `(file, expected substring)` from each patch's `// expect:` line.
fn include_corpus() -> Vec<(std::path::PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/hostile/patches");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("include-"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let expect =
                text.lines().nth(1).and_then(|l| l.strip_prefix("// expect: compile-error: ")).map(str::to_string);
            (p.clone(), expect.unwrap_or_else(|| panic!("{}: no compile-error expectation", p.display())))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_include_bypass_in_the_corpus_is_refused_with_a_one_line_diagnostic_naming_the_patch() {
    let corpus = include_corpus();
    assert!(corpus.len() >= 10, "{corpus:?}");
    for (path, expect) in corpus {
        let source = PatchSource::from_file(&path).unwrap();
        let e = compile(&source, &SiteRegistry::default(), &CompileOptions::default()).expect_err(&source.name);
        let d = e.diagnostics().first().unwrap_or_else(|| panic!("{}: no diagnostic: {e}", source.name)).clone();
        assert_eq!((d.file.as_str(), d.severity), (source.name.as_str(), Severity::Error), "{d}");
        assert!(d.message.contains(&expect), "{}: expected {expect:?} in {d}", source.name);
        assert!(!d.to_string().contains('\n'), "{d}");
    }
}

#[test]
fn headers_next_to_the_patch_and_system_headers_still_work_through_the_hook() {
    let dir = std::env::temp_dir().join(format!("clavm-includes-ok-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("gain.h"), "#include \"sub/half.h\"\n#define GAIN (HALF * 0.4f)\n").unwrap();
    std::fs::write(dir.join("sub/half.h"), "#include <math.h>\n#define HALF 0.5f\n").unwrap();
    let patch = dir.join("p.c");
    std::fs::write(&patch, "#include \"gain.h\"\nvoid play(void) { _out(0, GAIN * Cycle(440)); }\n").unwrap();
    let source = PatchSource::from_file(&patch).unwrap();
    let p = compile(&source, &SiteRegistry::default(), &CompileOptions::default()).unwrap();
    assert_eq!(p.plan.sites.len(), 1);
    // A header swapped for a FIFO or a device link is refused, not read.
    std::fs::remove_file(dir.join("sub/half.h")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("sub/half.h")).unwrap();
    let e = compile(&source, &SiteRegistry::default(), &CompileOptions::default()).unwrap_err();
    let d = &e.diagnostics()[0];
    assert!(d.file.ends_with("gain.h") && d.line == 1, "{d}");
    assert!(d.message.contains("character device"), "{d}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `n` tokens of a patch body, all on one line or one statement per line.
fn n_tokens(n: usize, one_line: bool) -> String {
    let sep = if one_line { " " } else { "\n" };
    let stmts = vec!["x = x + 1;"; n / 6].join(sep);
    format!("void play(void) {{ float x = 0;{sep}{stmts}{sep}_out(0, x * Cycle(440)); }}\n")
}

#[test]
fn preparing_a_long_line_is_linear_not_quadratic() {
    let (one, many) = (n_tokens(100_000, true), n_tokens(100_000, false));
    let work = |text: &str| {
        let source = PatchSource::from_text("p.c", text);
        let mut prepared = None;
        let w = lexer::column_work(|| {
            prepared = Some(prepare(&source, &SiteRegistry::default(), &CompileOptions::default()).unwrap())
        });
        (w, prepared.unwrap())
    };
    let ((w_one, p_one), (w_many, p_many)) = (work(&one), work(&many));
    assert!(w_one <= 2 * w_many.max(one.len()), "one line: {w_one}, many lines: {w_many}");
    assert!(w_one <= one.len(), "{w_one} bytes stepped over for {} bytes", one.len());
    assert_eq!((p_one.plan.sites.len(), p_many.plan.sites.len()), (1, 1));
    assert_eq!(p_one.plan.sites[0].col as usize, one.find("Cycle").unwrap() + 1);
}

#[test]
fn thousands_of_warnings_become_a_bounded_list() {
    let text = format!("void play(void) {{ int *p; {} _out(0, 0); }}\n", "p = 1; ".repeat(5000));
    let p = compile_text(&text).unwrap();
    assert_eq!(p.program.warnings.len(), MAX_REPORTED + 1);
    assert!(
        p.program.warnings.last().unwrap().message.contains("4950 more messages"),
        "{:?}",
        p.program.warnings.last()
    );
}

/// The CLAVM notes' own API and builtin declarations, verbatim.
const SEED_DECLARATIONS: &str = "float* _float(int);\ndouble* _double(int);\nint* _int(int);\n\
void _out(int,float);\nfloat _in(int);\nfloat _cc(int);\nfloat _p(int);\nint _i(int);\n\
double _time(void);\ndouble _samplerate(void);\nfloat Phasor(float);\nfloat Cycle(float);\n\
float Tri(float);\nfloat Pulse(float,float);\nfloat Onepole(float,float);\nfloat History(float);\n\
float Delay(float,float);\nfloat Dust(float);\nfloat Uniform(float);\nfloat Normal(float);\n";

const SEED_BODY: &str =
    "void play(void) {\n  _out(0, 0.3f * Cycle(220) * Phasor(2) + 0.1f * Tri(3) + 0.0f * Normal(0));\n}\n";

#[test]
fn the_seeds_prototypes_compile_verbatim_and_play_as_without_them() {
    use crate::engine::EngineConfig;
    use crate::render::{render, Progress, RenderSpec};
    let with = format!("{SEED_DECLARATIONS}{SEED_BODY}");
    let p = compile_text(&with).unwrap();
    assert_eq!(p.plan.sites.len(), 4, "only the calls are call sites, not the prototypes");
    let spec = |text: &str| RenderSpec {
        patch: PatchSource::from_text("p.c", text),
        length: crate::Frames(4800),
        config: EngineConfig::new(48000.0, 1),
        swaps: Vec::new(),
        params: Vec::new(),
        block: 128,
        input: None,
        samples: Vec::new(),
        notes: Vec::new(),
    };
    let a = render(&spec(&with), &Progress::new()).unwrap().samples;
    let b = render(&spec(SEED_BODY), &Progress::new()).unwrap().samples;
    assert!(a.iter().any(|s| s.abs() > 0.05), "it plays");
    assert_eq!(a, b, "the prototypes change nothing");
    // Prototypes with parameter names, `void`-less or split over lines are prototypes too.
    compile_text("float Pulse(float freq, float width);\nfloat\nHistory(\n float x);\nvoid play(void) { _out(0, Pulse(2, 0.5f) + History(0)); }").unwrap();
}

#[test]
fn a_name_of_a_builtin_is_not_taken_by_the_patch() {
    // Chosen: a builtin is never shadowed (its calls are rewritten with a
    // call-site id); defining or declaring it otherwise is a diagnostic.
    let d = first_error("float Cycle(float f) { return f; }\nvoid play(void) { _out(0, Cycle(1)); }");
    assert_eq!((d.line, d.col), (1, 7));
    assert!(
        d.message.contains("'Cycle' is a builtin (float Cycle(float freq))") && d.message.contains("another name"),
        "{d}"
    );
    let d = first_error("double Phasor(double);\nvoid play(void) { _out(0, 0); }");
    assert!(d.message.contains("does not match it: float Phasor(float freq)"), "{d}");
    let d = first_error("float Pulse(float);\nvoid play(void) { _out(0, 0); }");
    assert!(d.message.contains("does not match it: float Pulse(float freq, float width)"), "{d}");
    let d = first_error("void play(void) { float Tri = 1; _out(0, Tri); }");
    assert!(d.message.contains("'Tri' is a builtin"), "{d}");
    // Calls after a cast or an operator are still calls.
    let p = compile_text("void play(void) { float x = (float)Cycle(1) * Tri(2); _out(0, x); }").unwrap();
    assert_eq!(p.plan.sites.len(), 2);
}
