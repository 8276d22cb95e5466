//! Links the system's static libtcc (Debian `libtcc-dev`) and records where
//! TinyCC's runtime directory (`libtcc1.a`, its own `stddef.h`...) lives, so the
//! binary can find it without looking it up at every compile.
//!
//! The archive is not linked as installed: a copy in `OUT_DIR` has its file
//! opens renamed to CLAVM's hooks (see `src/files.rs` for why), with binutils'
//! `objcopy --redefine-sym`. The system library itself is never modified.
use std::path::{Path, PathBuf};
use std::process::Command;

/// What libtcc calls to open a file, and the hook each call is routed to.
const OPEN: (&str, &str) = ("open", "clavm_tcc_open");
/// The preprocessor's call that opens an `#include` (it bypasses `open` for "-", stdin).
const INCLUDE_OPEN: (&str, &str) = ("tcc_open", "clavm_tcc_include_open");
/// The archive member whose `#include` handling calls `tcc_open`.
const PREPROCESSOR: &str = "tccpp.o";
/// Ways of opening a file that the hooks would not see: none may remain.
const UNHOOKED: &[&str] = &["open", "open64", "openat", "openat64", "fopen", "fopen64", "freopen", "creat", "creat64"];

fn run(cmd: &mut Command) {
    let shown = format!("{cmd:?}");
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{shown} failed ({s}): binutils (objcopy, ar) are needed to route libtcc's file opens"),
        Err(e) => panic!("cannot run {shown}: {e}: install binutils (objcopy, ar)"),
    }
}

/// `nm -A` of the archive: (member, kind, symbol) triples.
fn symbols(archive: &Path) -> Vec<(String, String, String)> {
    let out = Command::new("nm").arg("-A").arg(archive).output().unwrap_or_else(|e| panic!("cannot run nm: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace().rev();
            let (sym, kind) = (parts.next()?, parts.next()?);
            let member = l.split(':').nth(1)?.to_string();
            Some((member, kind.to_string(), sym.to_string()))
        })
        .collect()
}

/// Copies `libtcc.a` into `out` with every file open routed through the hooks,
/// and checks that nothing else in it opens files.
fn hooked_archive(system: &Path, out: &Path) {
    let work = out.join("tcc-members");
    std::fs::create_dir_all(&work).expect("create OUT_DIR/tcc-members");
    let copy = out.join("libtcc.a");
    std::fs::copy(system, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", system.display()));
    let objcopy = std::env::var("OBJCOPY").unwrap_or_else(|_| "objcopy".into());
    let ar = std::env::var("AR").unwrap_or_else(|_| "ar".into());
    run(Command::new(&objcopy).arg(format!("--redefine-sym={}={}", OPEN.0, OPEN.1)).arg(&copy));
    // Only the preprocessor's reference to `tcc_open` is renamed: its definition
    // (in libtcc.o) stays, and the hook calls it once a name is allowed.
    run(Command::new(&ar).current_dir(&work).arg("x").arg(&copy).arg(PREPROCESSOR));
    run(Command::new(&objcopy)
        .arg(format!("--redefine-sym={}={}", INCLUDE_OPEN.0, INCLUDE_OPEN.1))
        .arg(work.join(PREPROCESSOR)));
    run(Command::new(&ar).current_dir(&work).arg("r").arg(&copy).arg(PREPROCESSOR));

    let syms = symbols(&copy);
    let undefined = |m: &str, s: &str| syms.iter().any(|(mm, k, ss)| mm == m && k == "U" && ss == s);
    let left: Vec<_> = syms.iter().filter(|(_, k, s)| k == "U" && UNHOOKED.contains(&s.as_str())).collect();
    assert!(
        left.is_empty(),
        "this libtcc opens files in ways CLAVM's hooks do not see: {left:?} (expected TinyCC 0.9.27 as in Debian)"
    );
    assert!(
        undefined(PREPROCESSOR, INCLUDE_OPEN.1) && !undefined(PREPROCESSOR, INCLUDE_OPEN.0),
        "this libtcc's preprocessor does not open #includes through tcc_open (expected TinyCC 0.9.27 as in Debian)"
    );
    assert!(syms.iter().any(|(_, k, s)| k == "U" && s == OPEN.1), "libtcc.a does not call open() any more?");
}

fn multiarch() -> Option<String> {
    let out = std::process::Command::new("gcc").arg("-print-multiarch").output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTCC_DIR");
    println!("cargo:rerun-if-env-changed=CLAVM_TCC_RUNTIME_DIR");
    let arch = multiarch().unwrap_or_else(|| "x86_64-linux-gnu".into());
    let mut lib_dirs: Vec<PathBuf> = Vec::new();
    if let Ok(d) = std::env::var("LIBTCC_DIR") {
        lib_dirs.push(d.into());
    }
    lib_dirs.extend([PathBuf::from(format!("/usr/lib/{arch}")), "/usr/lib".into(), "/usr/local/lib".into()]);
    let Some(lib_dir) = lib_dirs.iter().find(|d| d.join("libtcc.a").exists()) else {
        panic!(
            "libtcc.a not found in {lib_dirs:?}: install it with `apt-get install libtcc-dev tcc` \
             (or set LIBTCC_DIR to the folder holding libtcc.a)"
        );
    };
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    hooked_archive(&lib_dir.join("libtcc.a"), &out);
    println!("cargo:rerun-if-changed={}", lib_dir.join("libtcc.a").display());
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=tcc");
    println!("cargo:rustc-link-lib=dylib=dl");
    println!("cargo:rustc-link-lib=dylib=m");
    println!("cargo:rustc-link-lib=dylib=pthread");

    // TinyCC's runtime directory: libtcc1.a and TinyCC's own headers (package `tcc`).
    let runtime = std::env::var("CLAVM_TCC_RUNTIME_DIR").map(PathBuf::from).ok().or_else(|| {
        [PathBuf::from(format!("/usr/lib/{arch}/tcc")), "/usr/lib/tcc".into(), "/usr/local/lib/tcc".into()]
            .into_iter()
            .find(|d| Path::new(d).join("libtcc1.a").exists())
    });
    let runtime = runtime.unwrap_or_else(|| {
        println!(
            "cargo:warning=TinyCC's runtime (libtcc1.a) was not found: install the `tcc` package; \
             patches that need its helpers will fail to link"
        );
        PathBuf::from(format!("/usr/lib/{arch}/tcc"))
    });
    println!("cargo:rustc-env=CLAVM_TCC_RUNTIME_DIR={}", runtime.display());
    println!("cargo:rustc-env=CLAVM_MULTIARCH={arch}");
}
