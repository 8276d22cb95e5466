//! From C text to runnable code: input checks, call-site identity, the
//! prelude, TinyCC, and diagnostics a performer (or an editor) can act on.

pub mod diagnostics;
pub mod guard;
pub mod lexer;
pub mod pragma;
pub mod sites;

use std::ffi::{c_void, CStr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use diagnostics::{Diagnostic, Severity};
use sites::{SitePlan, SiteRegistry};

use crate::builtins::api;

/// The text of a patch and where it came from (for messages and relative `#include`s).
#[derive(Debug, Clone)]
pub struct PatchSource {
    /// Shown in messages: the path as the user gave it.
    pub name: String,
    pub text: String,
    /// Folder searched first for `#include "..."`.
    pub dir: Option<PathBuf>,
}

/// Why a patch could not become a program.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    /// One or more diagnostics, at least one an error.
    #[error("{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    Rejected(Vec<Diagnostic>),
}

impl PatchError {
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            PatchError::Rejected(d) => d,
            PatchError::Read { .. } => &[],
        }
    }
}

impl From<Diagnostic> for PatchError {
    fn from(d: Diagnostic) -> Self {
        PatchError::Rejected(vec![d])
    }
}

impl PatchSource {
    pub fn from_file(path: &Path) -> Result<PatchSource, PatchError> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| PatchError::Read { path: name.clone(), source })?;
        if !meta.is_file() {
            let source = std::io::Error::other("not a regular file");
            return Err(PatchError::Read { path: name, source });
        }
        if meta.len() as usize > guard::MAX_SOURCE_BYTES {
            // Refuse before reading 10 MB into memory.
            let big = vec![b' '; guard::MAX_SOURCE_BYTES + 1];
            let mut d = guard::check_bytes(&name, &big).unwrap_err();
            d.message = d.message.replacen(
                &format!("{:.1}", big.len() as f64 / 1e6),
                &format!("{:.1}", meta.len() as f64 / 1e6),
                1,
            );
            return Err(d.into());
        }
        let bytes = std::fs::read(path).map_err(|source| PatchError::Read { path: name.clone(), source })?;
        let dir = path.parent().map(|p| if p.as_os_str().is_empty() { PathBuf::from(".") } else { p.to_path_buf() });
        Self::from_bytes(&name, bytes, dir)
    }

    pub fn from_bytes(name: &str, bytes: Vec<u8>, dir: Option<PathBuf>) -> Result<PatchSource, PatchError> {
        guard::check_bytes(name, &bytes)?;
        let text = String::from_utf8(bytes).expect("checked above");
        Ok(PatchSource { name: name.to_string(), text, dir })
    }

    /// A patch from a string (tests, the editor).
    pub fn from_text(name: &str, text: &str) -> PatchSource {
        PatchSource { name: name.to_string(), text: text.to_string(), dir: None }
    }
}

type PatchFn = unsafe extern "C" fn();

/// Compiled patch code, ready to run. Dropping it frees the code: the engine
/// hands programs back to a non-realtime thread for that, only once nothing runs them.
pub struct Program {
    code: libtcc::Code,
    play: PatchFn,
    compiled: Option<PatchFn>,
    pub name: String,
    pub warnings: Vec<Diagnostic>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Program {
    /// Calls `play()` once.
    ///
    /// # Safety
    /// Runs arbitrary patch code: the caller must have entered an API context
    /// (see [`api::Ctx::enter`]) and accept that the patch may crash or hang.
    #[inline]
    pub unsafe fn play(&self) {
        // SAFETY: the symbol was checked to exist and declared `void play(void)` by the prelude.
        unsafe { (self.play)() }
    }

    /// Calls `compiled()` if the patch defines it.
    ///
    /// # Safety
    /// As for [`play`](Self::play).
    pub unsafe fn compiled(&self) {
        if let Some(f) = self.compiled {
            // SAFETY: as for `play`.
            unsafe { f() }
        }
    }

    /// Address of any other symbol the patch defines.
    pub fn symbol(&self, name: &CStr) -> Option<*const c_void> {
        self.code.symbol(name).map(|p| p.as_ptr() as *const c_void)
    }
}

/// A compiled program together with its call-site plan, ready to install.
#[derive(Debug)]
pub struct Prepared {
    pub program: Program,
    pub plan: SitePlan,
    /// The samples this version plays (none until the caller sets them:
    /// loading is not the compiler's business).
    pub samples: crate::samples::Samples,
    pub timings: CompileTimings,
}

/// Where the time of one compile went.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompileTimings {
    /// Checks, tokenising, call-site matching and rewriting.
    pub prepare: Duration,
    /// TinyCC: compile, link and relocate.
    pub tcc: Duration,
}

impl CompileTimings {
    pub fn total(&self) -> Duration {
        self.prepare + self.tcc
    }
}

/// Options for compiling patches.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// Extra `-I` folders.
    pub include_paths: Vec<PathBuf>,
}

fn symbols() -> &'static [(&'static CStr, *const c_void)] {
    struct Table(Vec<(&'static CStr, *const c_void)>);
    // SAFETY: function addresses, immutable for the program's life.
    unsafe impl Sync for Table {}
    // SAFETY: as above.
    unsafe impl Send for Table {}
    static SYMS: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    &SYMS
        .get_or_init(|| {
            let mut t: Vec<(&'static CStr, *const c_void)> =
                api::functions().iter().map(|f| (f.name, f.addr)).collect();
            for (name, stub) in api::BLOCKED {
                // Names are identifiers: leaking one small CString each, once, is fine.
                let c: &'static CStr = Box::leak(std::ffi::CString::new(*name).expect("no NUL").into_boxed_c_str());
                t.push((c, *stub as *const c_void));
            }
            Table(t)
        })
        .0
}

/// Quotes a file name for a `#line` directive.
fn c_string_literal(s: &str) -> String {
    s.chars().flat_map(|c| if c == '"' || c == '\\' { vec!['\\', c] } else { vec![c] }).collect()
}

/// A patch after the checks and call-site rewriting, before TinyCC.
#[derive(Debug, Clone)]
pub struct RewrittenSource {
    /// The patch with site ids written into its builtin calls (same lines as the original).
    pub body: String,
    pub plan: SitePlan,
    /// CLAVM's own warnings (state that will not survive a recompile).
    pub warnings: Vec<Diagnostic>,
}

impl RewrittenSource {
    /// The text TinyCC compiles: the prelude, then the body under the patch's own name.
    pub fn with_prelude(&self, name: &str) -> String {
        format!("{}#line 1 \"{}\"\n{}", api::prelude(), c_string_literal(name), self.body)
    }
}

/// Source checks, call-site plan and rewriting, without TinyCC. (`_options`
/// is kept for callers: which files may be included is decided when TinyCC
/// opens them, see [`guard`].)
pub fn prepare(
    source: &PatchSource,
    registry: &SiteRegistry,
    _options: &CompileOptions,
) -> Result<RewrittenSource, PatchError> {
    let name = &source.name;
    let tokens = lexer::tokenize(&source.text);
    // Prototypes of builtins (as the CLAVM notes write them) are blanked: the
    // real ones carry a hidden call-site id. Positions are unchanged.
    let own = sites::own_declarations(&source.text, &tokens)
        .map_err(|(line, col, msg)| Diagnostic::error(name, line, col, msg))?;
    let blanked;
    let (src, tokens) = if own.is_empty() {
        (&source.text, tokens)
    } else {
        blanked = sites::blank_out(&source.text, &own);
        (&blanked, lexer::tokenize(&blanked))
    };
    guard::check_tokens(name, src, &tokens)?;
    guard::check_includes(name, src, &tokens)?;
    sites::check_arity(src, &tokens).map_err(|(line, col, msg)| Diagnostic::error(name, line, col, msg))?;
    let warnings = guard::lint_state(name, src, &tokens);
    let plan = registry.plan(src, &tokens).map_err(|e| Diagnostic::error(name, e.line, e.col, e.to_string()))?;
    let body = sites::rewrite(src, &tokens, &plan.sites);
    Ok(RewrittenSource { body, plan, warnings })
}

/// Compiles a patch against the installed program's call sites.
pub fn compile(
    source: &PatchSource,
    registry: &SiteRegistry,
    options: &CompileOptions,
) -> Result<Prepared, PatchError> {
    let t0 = Instant::now();
    let rewritten = prepare(source, registry, options)?;
    let t1 = Instant::now();
    let (program, warnings) = compile_rewritten(source, &rewritten.body, &options.include_paths)?;
    let tcc = t1.elapsed();
    let mut program = program;
    let mut all = rewritten.warnings;
    all.extend(warnings);
    program.warnings = all;
    Ok(Prepared {
        program,
        plan: rewritten.plan,
        samples: Default::default(),
        timings: CompileTimings { prepare: t1 - t0, tcc },
    })
}

/// The TinyCC half of [`compile`]: `body` is the [`prepare`]d text of `source`.
/// This is what a live worker process runs. Returns the program and TinyCC's warnings.
pub fn compile_rewritten(
    source: &PatchSource,
    body: &str,
    include_paths: &[PathBuf],
) -> Result<(Program, Vec<Diagnostic>), PatchError> {
    let full = format!("{}#line 1 \"{}\"\n{}", api::prelude(), c_string_literal(&source.name), body);
    let mut include_paths = include_paths.to_vec();
    include_paths.extend(source.dir.iter().cloned());
    let req = libtcc::Request { source: &full, symbols: symbols(), include_paths: &include_paths, nostdlib: true };
    let code = libtcc::compile(&req).map_err(|e| PatchError::Rejected(to_diagnostics(source, &e)))?;
    let warnings = reported(source, code.warnings());
    let play = code.symbol(c"play").ok_or_else(|| {
        let (line, col) = diagnostics::first_use(&source.text, "play").unwrap_or((1, 1));
        Diagnostic::error(
            &source.name,
            line,
            col,
            "the patch defines no `void play(void)` (the function called for every sample)",
        )
    })?;
    let compiled = code.symbol(c"compiled");
    // SAFETY: the prelude declares `void play(void)` and `void compiled(void)`, so
    // TinyCC refused any definition with another type; these are function symbols.
    let (play, compiled) = unsafe {
        (
            std::mem::transmute::<*mut c_void, PatchFn>(play.as_ptr()),
            compiled.map(|c| std::mem::transmute::<*mut c_void, PatchFn>(c.as_ptr())),
        )
    };
    let program = Program { code, play, compiled, name: source.name.clone(), warnings: Vec::new() };
    Ok((program, warnings))
}

/// Turns one TinyCC message into a diagnostic, placed by `patch` (a
/// [`diagnostics::Locator`] over the patch) or, in an included file, by that
/// file's text (read once into `files`).
fn to_diagnostic(
    source: &PatchSource,
    m: &libtcc::Message,
    patch: &mut diagnostics::Locator<'_>,
    files: &mut std::collections::HashMap<String, String>,
) -> Diagnostic {
    let severity = match m.severity {
        libtcc::Severity::Error => Severity::Error,
        libtcc::Severity::Warning => Severity::Warning,
    };
    let mut message = m.text.clone();
    let is_patch = m.file.as_deref() == Some(source.name.as_str());
    let (file, line, col) = match (m.file.as_deref(), m.line) {
        (Some(f), Some(l)) if is_patch => {
            let (l, c) = patch.locate(l, &m.text);
            (f.to_string(), l, c)
        }
        (Some(f), Some(l)) if f != api::PRELUDE_NAME => {
            // In an included file: read it to find the column (if it is a plain file).
            let text = files
                .entry(f.to_string())
                .or_insert_with(|| diagnostics::read_named_file(f, guard::MAX_SOURCE_BYTES as u64).unwrap_or_default());
            let (l, c) = diagnostics::locate(text, l, &m.text);
            (f.to_string(), l, c)
        }
        _ => {
            // Link errors have no position: point at the first use of the symbol.
            let ident = diagnostics::quoted(&m.text);
            let (l, c) = ident.and_then(|i| diagnostics::first_use(&source.text, i)).unwrap_or((1, 1));
            if m.text.starts_with("undefined symbol") {
                message.push_str(": not a CLAVM builtin, a C math function, or defined in the patch");
            }
            (source.name.clone(), l, c)
        }
    };
    if message.contains("redefinition of 'play'") || message.contains("redefinition of 'compiled'") {
        message.push_str(" (it must be declared `void NAME(void)`)");
    }
    Diagnostic { file, line, col, severity, message }
}

/// Most of TinyCC's messages turned into diagnostics per compile. Placing one
/// costs a pass over the source, and a patch can make TinyCC warn once per
/// statement (20,000 warnings took the 10 s watchdog); past this many, one
/// line says how many more there were.
pub const MAX_REPORTED: usize = 50;

/// TinyCC's messages as diagnostics, errors first (editors jump to the first
/// line), at most [`MAX_REPORTED`] of them, then a count of the rest.
fn reported(source: &PatchSource, msgs: &[libtcc::Message]) -> Vec<Diagnostic> {
    let errors = msgs.iter().filter(|m| m.severity == libtcc::Severity::Error);
    let warnings = msgs.iter().filter(|m| m.severity == libtcc::Severity::Warning);
    let (mut patch, mut files) = (diagnostics::Locator::new(&source.text), std::collections::HashMap::new());
    let mut out: Vec<Diagnostic> =
        errors.chain(warnings).take(MAX_REPORTED).map(|m| to_diagnostic(source, m, &mut patch, &mut files)).collect();
    if msgs.len() > MAX_REPORTED {
        let n = msgs.len() - MAX_REPORTED;
        let mut more = Diagnostic::error(&source.name, 1, 1, format!("{n} more messages from TinyCC not shown"));
        more.severity = Severity::Warning;
        out.push(more);
    }
    out
}

fn to_diagnostics(source: &PatchSource, e: &libtcc::TccError) -> Vec<Diagnostic> {
    if e.messages().is_empty() {
        return vec![Diagnostic::error(&source.name, 1, 1, e.to_string())];
    }
    reported(source, e.messages())
}

#[cfg(test)]
mod tests;
