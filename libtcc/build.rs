//! Links the system's static libtcc (Debian `libtcc-dev`) and records where
//! TinyCC's runtime directory (`libtcc1.a`, its own `stddef.h`...) lives, so the
//! binary can find it without looking it up at every compile.
use std::path::{Path, PathBuf};

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
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
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
