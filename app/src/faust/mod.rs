//! Faust programs (`.dsp`): `clavm FILE.dsp` and a `.dsp` dropped on the
//! window run the Faust compiler (`faust -lang c -cn mydsp`) into a temporary
//! folder, beside a wrapper patch generated for it, and play the wrapper.
//!
//! The generated C is an ordinary patch: `newmydsp()` (one `calloc`) and
//! `initmydsp()` in `compiled()`, `computemydsp()` for one frame in `play()`
//! (docs/PATCH_API.md, "Faust"). Nothing here is trusted more than a patch:
//! the output is compiled and sandboxed like any other.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The class name every generated DSP gets (`newmydsp`, `computemydsp`, ...).
pub const CLASS: &str = "mydsp";
/// The file the Faust compiler writes, beside the wrapper.
const GENERATED: &str = "mydsp.c";
/// How long the Faust compiler may take (a pathological program can make it
/// run for minutes).
const FAUST_TIMEOUT: Duration = Duration::from_secs(60);
/// Environment variable naming the Faust compiler to run (default `faust`).
pub const FAUST_ENV: &str = "CLAVM_FAUST";

/// Whether `path` names a Faust program.
pub fn is_dsp(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("dsp"))
}

/// Why a `.dsp` could not be turned into a patch. Each is one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum FaustError {
    #[error("{0}: cannot compile Faust: the faust compiler is not installed (Debian/Ubuntu: apt-get install faust)")]
    Missing(String),
    #[error("{file}: cannot run the faust compiler: {source}")]
    Run { file: String, source: std::io::Error },
    #[error("{file}: faust: {message}")]
    Failed { file: String, message: String },
    #[error("{0}: the faust compiler took longer than {1} s; stopped")]
    Timeout(String, u64),
    #[error("{file}: cannot write the wrapper patch: {source}")]
    Write { file: String, source: std::io::Error },
}

/// A translated `.dsp`: the wrapper patch and the folder holding it and
/// the generated C (removed when this is dropped).
#[derive(Debug)]
pub struct Translated {
    dir: tempfile::TempDir,
    /// The wrapper patch (`NAME.c`), which includes `mydsp.c` beside it.
    pub patch: PathBuf,
}

/// Runs the Faust compiler (`$CLAVM_FAUST`, default `faust`) on `dsp` and
/// writes the wrapper beside its output.
pub fn translate(dsp: &Path) -> Result<Translated, FaustError> {
    let faust = std::env::var_os(FAUST_ENV).unwrap_or_else(|| "faust".into());
    translate_using(dsp, &faust)
}

/// [`translate`] with the compiler `faust`.
pub fn translate_using(dsp: &Path, faust: &std::ffi::OsStr) -> Result<Translated, FaustError> {
    let file = dsp.display().to_string();
    let dir = tempfile::Builder::new()
        .prefix("clavm-faust-")
        .tempdir()
        .map_err(|source| FaustError::Write { file: file.clone(), source })?;
    let generated = dir.path().join(GENERATED);
    let mut child = match Command::new(faust)
        .args(["-lang", "c", "-cn", CLASS, "-o"])
        .arg(&generated)
        .arg(dsp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(FaustError::Missing(file)),
        Err(source) => return Err(FaustError::Run { file, source }),
    };
    // Read stderr on a thread: a chatty compiler must not block on a full pipe.
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stderr {
            use std::io::Read;
            let _ = s.by_ref().take(64 * 1024).read_to_string(&mut text);
        }
        text
    });
    let t0 = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if t0.elapsed() < FAUST_TIMEOUT => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(FaustError::Timeout(file, FAUST_TIMEOUT.as_secs()));
            }
            Err(source) => return Err(FaustError::Run { file, source }),
        }
    };
    let errors = reader.join().unwrap_or_default();
    if !status.success() || !generated.is_file() {
        let message = one_line(&errors).unwrap_or_else(|| format!("failed ({status})"));
        return Err(FaustError::Failed { file, message });
    }
    let stem = dsp.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "faust".into());
    let patch = dir.path().join(format!("{stem}.c"));
    std::fs::write(&patch, wrapper(&file)).map_err(|source| FaustError::Write { file, source })?;
    Ok(Translated { dir, patch })
}

impl Translated {
    /// The folder holding the generated C and the wrapper.
    pub fn folder(&self) -> &Path {
        self.dir.path()
    }
}

/// The compiler's messages on one line (the first few lines, joined).
fn one_line(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).take(3).collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

/// The wrapper patch for a DSP translated from `origin`: the usual few lines.
pub fn wrapper(origin: &str) -> String {
    let origin: String = origin.chars().filter(|c| !c.is_control()).collect();
    format!(
        r#"// Generated by clavm for {origin}: the Faust DSP in {GENERATED}, one frame per play().
// Faust's C expects these two (its own minimal.c architecture defines them).
#define max(a, b) ((a) < (b) ? (b) : (a))
#define min(a, b) ((a) < (b) ? (a) : (b))
#include <faust/gui/CInterface.h>
#include "{GENERATED}"

// Its memory comes from compiled()'s heap (calloc), in the patch's state:
// the same address in every worker, so it survives a crash of one.
static {CLASS} *dsp;

void compiled(void) {{
    dsp = new{CLASS}();
    init{CLASS}(dsp, (int)_samplerate());
}}

void play(void) {{
    float in[16], out[16];
    float *ins[16], *outs[16];
    int ni = getNumInputs{CLASS}(dsp), no = getNumOutputs{CLASS}(dsp);
    if (ni > 16) ni = 16;
    if (no > 16) no = 16;
    for (int i = 0; i < 16; i++) {{
        in[i] = i < ni ? _in(i) : 0.0f;
        out[i] = 0.0f;
        ins[i] = &in[i];
        outs[i] = &out[i];
    }}
    compute{CLASS}(dsp, 1, ins, outs);
    if (no == 1) {{
        _out(0, out[0]);
        _out(1, out[0]);
    }} else {{
        for (int i = 0; i < no; i++) _out(i, out[i]);
    }}
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsp_files_are_recognised_by_extension() {
        assert!(is_dsp(Path::new("/a/reverb.dsp")));
        assert!(is_dsp(Path::new("X.DSP")));
        assert!(!is_dsp(Path::new("a.c")));
        assert!(!is_dsp(Path::new("dsp")));
    }

    #[test]
    fn a_missing_compiler_is_one_line_naming_the_file_and_the_fix() {
        let e = translate_using(Path::new("/tmp/x.dsp"), "/nonexistent/faust".as_ref()).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("/tmp/x.dsp: "), "{text}");
        assert!(text.contains("apt-get install faust") && !text.contains('\n'), "{text}");
    }

    #[test]
    fn the_wrapper_names_its_origin_and_uses_the_class() {
        let w = wrapper("/x/rev.dsp\nnot a comment");
        assert!(w.starts_with("// Generated by clavm for /x/rev.dspnot a comment:"));
        assert!(w.contains("dsp = newmydsp();") && w.contains("computemydsp(dsp, 1, ins, outs);"));
    }
}
