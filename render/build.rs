//! Compiles `shaders/*.vert|frag` (GLSL) to SPIR-V with Debian's
//! `glslangValidator` (package `glslang-tools`, the Khronos reference
//! compiler) into OUT_DIR, where `src/shaders.rs` embeds them: the binary
//! never reads a shader file at run time. Set `GLSLANG_VALIDATOR` to use
//! another copy of the tool.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    // Read at run time: a build-script binary reused from another checkout
    // (a shared target dir) must look in this one.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("../shaders");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let tool = std::env::var("GLSLANG_VALIDATOR").unwrap_or_else(|_| "glslangValidator".into());
    println!("cargo:rerun-if-changed={}", dir.display());
    println!("cargo:rerun-if-env-changed=GLSLANG_VALIDATOR");

    let mut sources: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("vert" | "frag" | "comp")))
        .collect();
    sources.sort();
    for src in sources {
        println!("cargo:rerun-if-changed={}", src.display());
        let name = src.file_name().and_then(|n| n.to_str()).expect("shader names are UTF-8");
        let spv = out.join(format!("{name}.spv"));
        let result = Command::new(&tool).args(["-V", "--target-env", "vulkan1.3", "-o"]).arg(&spv).arg(&src).output();
        match result {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`{tool}` not found: the shaders are compiled with glslangValidator. \
                 Install it with `apt install glslang-tools` (scripts/setup.sh does), \
                 or set GLSLANG_VALIDATOR to its path."
            ),
            Err(e) => panic!("cannot run `{tool}`: {e}"),
            Ok(o) if !o.status.success() => panic!(
                "shader {name} does not compile:\n{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Ok(_) => {}
        }
    }
}
