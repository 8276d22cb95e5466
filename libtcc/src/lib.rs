//! A small, safe binding over the system's libtcc.
//!
//! Three promises, each one a lesson from the original CLAVM:
//! - every libtcc call runs under one process-wide lock, because TinyCC keeps
//!   global state and two compilations at once corrupt each other;
//! - the caller sees TinyCC's own messages (never a generic "relocate failed"),
//!   split into file, line, severity and text;
//! - compiled code lives as long as its [`Code`] value: the memory is released
//!   by `tcc_delete` only in `Drop`, so whoever owns a `Code` decides when
//!   nothing can still be executing it;
//! - TinyCC opens no file CLAVM did not allow: every open goes through
//!   [`files`], which refuses devices, FIFOs, directories, oversized files and
//!   anything outside the include folders (see that module for how and why).

pub mod files;
mod sys;

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard};

/// TinyCC's runtime directory (holds `libtcc1.a` and TinyCC's `include/`), found at build time.
pub const RUNTIME_DIR: &str = env!("CLAVM_TCC_RUNTIME_DIR");
/// The target's multiarch triple (`x86_64-linux-gnu`), for system include paths.
pub const MULTIARCH: &str = env!("CLAVM_MULTIARCH");

pub use files::{system_include_dirs, FileKind, Refusal, RefusalReason, MAX_FILE_BYTES};

static TCC_LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    // A panic while holding the lock cannot leave TinyCC half-way: the guard is
    // only held around FFI calls, which do not unwind. So poisoning is harmless.
    TCC_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// How serious a TinyCC message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One message from TinyCC, parsed from its `FILE:LINE: error: TEXT` form.
/// Link-time messages (undefined symbols) carry no file or line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub file: Option<String>,
    pub line: Option<u32>,
    pub severity: Severity,
    pub text: String,
    /// TinyCC's message exactly as it was printed.
    pub raw: String,
}

impl Message {
    fn parse(raw: &str) -> Message {
        // TinyCC prints "FILE:LINE: error: TEXT", "FILE:LINE: warning: TEXT",
        // "tcc: error: TEXT" (link stage), or "In file included from FILE:LINE:".
        const INCLUDED: &str = "In file included from ";
        let preamble: Vec<&str> = raw.lines().take_while(|l| l.starts_with(INCLUDED)).collect();
        if let Some(outer) = preamble.first() {
            // TinyCC formats a message into 2 KiB: 32 nested includes' preamble
            // fill it and cut the message itself off. Place it at the outermost include.
            let rest = raw.lines().skip(preamble.len()).collect::<Vec<_>>().join("\n");
            if !rest.contains("error: ") && !rest.contains("warning: ") {
                let site = outer[INCLUDED.len()..].trim_end().trim_end_matches(':');
                let (file, line) =
                    site.rsplit_once(':').map_or((None, None), |(f, l)| (Some(f.to_string()), l.parse().ok()));
                let text = format!(
                    "#include nested {} deep or more (TinyCC cut its message off): does a header include itself?",
                    preamble.len()
                );
                return Message { file, line, severity: Severity::Error, text, raw: raw.to_string() };
            }
        }
        let (severity, head, text) = if let Some(i) = raw.find("warning: ") {
            (Severity::Warning, &raw[..i], &raw[i + 9..])
        } else if let Some(i) = raw.find("error: ") {
            (Severity::Error, &raw[..i], &raw[i + 7..])
        } else {
            (Severity::Error, "", raw)
        };
        let head = head.trim_end().trim_end_matches(':');
        let (file, line) = match head.rsplit_once(':') {
            Some((f, l)) if l.parse::<u32>().is_ok() => {
                // Strip an "In file included from X:N:\n" preamble if TinyCC added one.
                let f = f.rsplit('\n').next().unwrap_or(f).trim();
                (Some(f.to_string()), l.parse().ok())
            }
            _ => (None, None),
        };
        Message { file, line, severity, text: text.trim().to_string(), raw: raw.to_string() }
    }
}

/// Why a compilation failed. All TinyCC's messages are kept, warnings included.
#[derive(Debug, thiserror::Error)]
pub enum TccError {
    #[error("TinyCC could not start a compilation (tcc_new returned NULL)")]
    OutOfMemory,
    #[error("the source contains a NUL byte at offset {0}")]
    NulInSource(usize),
    #[error("{}", .messages.iter().map(|m| m.raw.as_str()).collect::<Vec<_>>().join("\n"))]
    Compile { messages: Vec<Message> },
    #[error("{}", .messages.iter().map(|m| m.raw.as_str()).collect::<Vec<_>>().join("\n"))]
    Link { messages: Vec<Message> },
}

impl TccError {
    /// TinyCC's own messages, if the failure came from TinyCC.
    pub fn messages(&self) -> &[Message] {
        match self {
            TccError::Compile { messages } | TccError::Link { messages } => messages,
            _ => &[],
        }
    }
}

/// Everything one in-memory compilation needs.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The complete C source (use `#line` to name the file in messages).
    pub source: &'a str,
    /// Host symbols the code may call or read, bound with `tcc_add_symbol`.
    pub symbols: &'a [(&'a CStr, *const c_void)],
    /// Extra `-I` paths (the patch's own folder, say). With the system header
    /// folders and TinyCC's runtime folder, the only places files are read from.
    pub include_paths: &'a [PathBuf],
    /// Skip libc and TinyCC's default runtime; [`RUNTIME_DIR`]`/libtcc1.a` is added explicitly.
    pub nostdlib: bool,
}

/// Compiled, relocated code. The code memory stays mapped until this is dropped.
pub struct Code {
    state: NonNull<sys::TCCState>,
    warnings: Vec<Message>,
}

// SAFETY: the TCCState is only touched under the global lock (symbol look-up and
// delete), and the relocated code itself is immutable machine code.
unsafe impl Send for Code {}
// SAFETY: as above; `symbol` takes the global lock, nothing else reads the state.
unsafe impl Sync for Code {}

impl Code {
    /// Address of a global symbol of the compiled code, if it defines one.
    pub fn symbol(&self, name: &CStr) -> Option<NonNull<c_void>> {
        let _g = lock();
        // SAFETY: `state` is a live, relocated TCCState owned by self; the lock is held.
        NonNull::new(unsafe { sys::tcc_get_symbol(self.state.as_ptr(), name.as_ptr()) })
    }

    /// Warnings TinyCC printed while compiling this code.
    pub fn warnings(&self) -> &[Message] {
        &self.warnings
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        let _g = lock();
        // SAFETY: we own the state; `Code` is dropped only when its owner knows no
        // thread runs the code any more (that is the owner's contract, see crate docs).
        unsafe { sys::tcc_delete(self.state.as_ptr()) }
    }
}

/// Collects TinyCC's messages during one compilation.
unsafe extern "C" fn on_message(opaque: *mut c_void, msg: *const c_char) {
    // SAFETY: `opaque` is the `Vec<String>` that `compile` passed and keeps alive
    // for the whole compilation; TinyCC hands us a NUL-terminated string.
    let sink = unsafe { &mut *(opaque as *mut Vec<String>) };
    let text = unsafe { CStr::from_ptr(msg) }.to_string_lossy().into_owned();
    sink.push(text);
}

/// An owned TCCState that is deleted on every early return.
struct Session(NonNull<sys::TCCState>);

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: only reached under the lock taken in `compile`, for a state we created.
        unsafe { sys::tcc_delete(self.0.as_ptr()) }
    }
}

fn cstring(s: &str) -> CString {
    CString::new(s).unwrap_or_else(|_| CString::new(s.replace('\0', "")).expect("NULs removed"))
}

fn path_cstring(p: &Path) -> CString {
    cstring(&p.to_string_lossy())
}

/// Compiles and relocates `req.source` in memory.
pub fn compile(req: &Request<'_>) -> Result<Code, TccError> {
    if let Some(at) = req.source.bytes().position(|b| b == 0) {
        return Err(TccError::NulInSource(at));
    }
    let source = cstring(req.source);
    let mut messages: Vec<String> = Vec::new();
    let _g = lock();
    std::hint::black_box(files::hooks());
    let watch = files::Session::start(req.include_paths);
    // SAFETY: plain constructor; the lock is held for the whole session.
    let state = NonNull::new(unsafe { sys::tcc_new() }).ok_or(TccError::OutOfMemory)?;
    let session = Session(state);
    let s = session.0.as_ptr();
    let runtime = cstring(RUNTIME_DIR);
    // SAFETY (whole block): `s` is the live state created above, every string is a
    // NUL-terminated CString that outlives the call, and `messages` outlives the
    // session (the error function is only called during the calls below).
    unsafe {
        sys::tcc_set_lib_path(s, runtime.as_ptr());
        sys::tcc_set_error_func(s, &mut messages as *mut Vec<String> as *mut c_void, Some(on_message));
        if req.nostdlib {
            sys::tcc_set_options(s, c"-nostdlib".as_ptr());
        }
        sys::tcc_set_output_type(s, sys::TCC_OUTPUT_MEMORY);
        for p in req.include_paths {
            sys::tcc_add_include_path(s, path_cstring(p).as_ptr());
        }
        if sys::tcc_compile_string(s, source.as_ptr()) < 0 {
            return Err(TccError::Compile { messages: explained(messages, &watch.refusals()) });
        }
        if req.nostdlib {
            let libtcc1 = Path::new(RUNTIME_DIR).join("libtcc1.a");
            if libtcc1.exists() {
                sys::tcc_add_file(s, path_cstring(&libtcc1).as_ptr());
            }
        }
        for (name, addr) in req.symbols {
            sys::tcc_add_symbol(s, name.as_ptr(), *addr);
        }
        if sys::tcc_relocate(s, sys::TCC_RELOCATE_AUTO) < 0 {
            return Err(TccError::Link { messages: explained(messages, &watch.refusals()) });
        }
    }
    let state = session.0;
    std::mem::forget(session);
    let all = parse_all(messages);
    Ok(Code { state, warnings: all })
}

fn parse_all(raw: Vec<String>) -> Vec<Message> {
    raw.iter().map(|m| Message::parse(m)).collect()
}

/// Parsed messages, a "not found" replaced by why a candidate file was refused.
fn explained(raw: Vec<String>, refusals: &[Refusal]) -> Vec<Message> {
    let mut msgs = parse_all(raw);
    for m in &mut msgs {
        if let Some(text) = files::explain(&m.text, refusals) {
            m.raw = m.raw.replace(&m.text, &text);
            m.text = text;
        }
    }
    msgs
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" fn twice(x: i32) -> i32 {
        2 * x
    }

    fn req(source: &str) -> Request<'_> {
        Request { source, symbols: &[], include_paths: &[], nostdlib: true }
    }

    #[test]
    fn compiles_and_calls_a_function_with_a_host_symbol() {
        let symbols = [(c"twice", twice as *const c_void)];
        let src = "int twice(int); int f(int x) { return twice(x) + 1; }";
        let code = compile(&Request { symbols: &symbols, ..req(src) }).expect("compiles");
        let f = code.symbol(c"f").expect("f defined");
        // SAFETY: `f` was compiled from the signature above.
        let f: extern "C" fn(i32) -> i32 = unsafe { std::mem::transmute(f.as_ptr()) };
        assert_eq!(f(20), 41);
        assert!(code.symbol(c"missing").is_none());
    }

    #[test]
    fn reports_tinycc_own_error_text_with_file_and_line() {
        let src = "#line 1 \"p.c\"\nint f(void) {\n  return y;\n}\n";
        let err = compile(&req(src)).err().expect("fails");
        let m = &err.messages()[0];
        assert_eq!(m.file.as_deref(), Some("p.c"));
        assert_eq!(m.line, Some(2));
        assert_eq!(m.severity, Severity::Error);
        assert!(m.text.contains("'y' undeclared"), "{m:?}");
    }

    #[test]
    fn undefined_symbol_is_named_not_a_generic_relocate_failure() {
        let src = "int nowhere_to_be_found(int); int f(void) { return nowhere_to_be_found(1); }";
        let err = compile(&req(src)).err().expect("fails to link");
        assert!(matches!(err, TccError::Link { .. }));
        assert!(err.to_string().contains("nowhere_to_be_found"), "{err}");
    }

    #[test]
    fn compilations_from_many_threads_are_serialised() {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || {
                    for j in 0..25 {
                        let src = format!("int f(void) {{ return {i} * 100 + {j}; }}");
                        let code = compile(&req(&src)).expect("compiles");
                        let f = code.symbol(c"f").unwrap();
                        // SAFETY: compiled from the signature above.
                        let f: extern "C" fn() -> i32 = unsafe { std::mem::transmute(f.as_ptr()) };
                        assert_eq!(f(), i * 100 + j);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    fn first_error(src: &str, include_paths: &[PathBuf]) -> String {
        let err = compile(&Request { include_paths, ..req(src) }).err().expect("fails");
        err.messages().first().map(|m| m.text.clone()).unwrap_or_else(|| err.to_string())
    }

    #[test]
    fn includes_of_devices_stdin_and_outside_files_are_refused_with_the_reason() {
        let e = first_error("#include \"/dev/zero\"\nint x;", &[]);
        assert_eq!(e, "#include '/dev/zero' refused: /dev/zero is a character device, not a regular file");
        // The top-level file is "<string>": a quoted "-" resolves to exactly "-", stdin.
        let e = first_error("#include \"-\"\nint x;", &[]);
        assert!(e.contains("standard input"), "{e}");
        // Through a macro, after #line, with include_next: the same hook decides.
        let e = first_error("#define F \"/dev/zero\"\n#include F\nint x;", &[]);
        assert!(e.contains("character device"), "{e}");
        let e = first_error("#line 1 \"/dev/x.c\"\n#include \"zero\"\nint x;", &["/dev".into()]);
        assert!(e.contains("character device"), "{e}");
        let e = first_error("#include_next \"/etc/passwd\"\nint x;", &[]);
        assert!(e.contains("outside the folders"), "{e}");
        assert!(compile(&req("#include <stddef.h>\n#include <math.h>\nsize_t f(void) { return 1; }")).is_ok());
    }

    #[test]
    fn a_header_that_includes_itself_twice_stops_at_the_budget() {
        let d = std::env::temp_dir().join(format!("clavm-libtcc-rec-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("twice.h"), "#include \"twice.h\"\n#include \"twice.h\"\n").unwrap();
        let e = first_error("#include \"twice.h\"\nint x;", std::slice::from_ref(&d));
        // TinyCC stops 32 levels deep on its own, or the open budget ends it first.
        assert!(e.contains("recursi"), "{e}");
    }

    #[test]
    fn a_message_cut_off_by_nested_includes_is_placed_at_the_outermost_include() {
        let raw = "In file included from p.c:3:\nIn file included from /d/h.h:1:\nIn file incl";
        let m = Message::parse(raw);
        assert_eq!((m.file.as_deref(), m.line), (Some("p.c"), Some(3)));
        assert!(m.text.starts_with("#include nested 2 deep"), "{m:?}");
        let m = Message::parse("In file included from p.c:3:\n/d/h.h:7: error: 'x' undeclared");
        assert_eq!((m.file.as_deref(), m.line, m.text.as_str()), (Some("/d/h.h"), Some(7), "'x' undeclared"));
    }

    #[test]
    fn nul_bytes_are_refused_before_tinycc_sees_them() {
        assert!(matches!(compile(&req("int x;\0garbage")), Err(TccError::NulInSource(6))));
    }
}
