//! The reference: the same rewritten patch built by `gcc -O2` as a shared
//! object, its API function pointers filled with the very same Rust builtins.

use std::ffi::{c_void, CString};
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};
use clavm_audio::builtins::api;
use clavm_audio::patch::{self, sites::SiteRegistry, CompileOptions};
use clavm_audio::PatchSource;

pub struct Gcc {
    dir: PathBuf,
}

/// A loaded shared object; closed on drop.
struct Library(*mut c_void);

impl Drop for Library {
    fn drop(&mut self) {
        // SAFETY: a handle from dlopen, closed once; nothing from it is used afterwards.
        unsafe {
            libc::dlclose(self.0);
        }
    }
}

impl Library {
    fn symbol(&self, name: &str) -> Option<*mut c_void> {
        let c = CString::new(name).ok()?;
        // SAFETY: a valid handle and a NUL-terminated name.
        let p = unsafe { libc::dlsym(self.0, c.as_ptr()) };
        (!p.is_null()).then_some(p)
    }
}

impl Gcc {
    pub fn find() -> anyhow::Result<Gcc> {
        let ok = Command::new("gcc").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
        if !ok {
            bail!("gcc is not installed");
        }
        let dir = std::env::temp_dir().join(format!("clavm-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Gcc { dir })
    }

    /// Builds the patch with gcc -O2 and loads it, its API pointers bound.
    pub fn load(&self, source: &PatchSource) -> anyhow::Result<Reference> {
        let rewritten = patch::prepare(source, &SiteRegistry::default(), &CompileOptions::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let stem = source.name.rsplit('/').next().unwrap_or("patch").trim_end_matches(".c");
        let c_file = self.dir.join(format!("{stem}.c"));
        let so_file = self.dir.join(format!("{stem}.so"));
        let text = format!("{}#line 1 \"{}\"\n{}", api::gcc_prelude(), source.name, rewritten.body);
        std::fs::write(&c_file, text)?;
        let out = Command::new("gcc")
            .args(["-O2", "-fPIC", "-shared", "-o"])
            .arg(&so_file)
            .arg(&c_file)
            .arg("-lm")
            .output()
            .context("running gcc")?;
        if !out.status.success() {
            bail!("gcc failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        let path = CString::new(so_file.to_string_lossy().as_bytes())?;
        // SAFETY: dlopen of a library we just built; it has no constructors of its own.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            bail!("dlopen {} failed", so_file.display());
        }
        let lib = Library(handle);
        for f in api::functions().iter().filter(|f| f.clavm) {
            let name = f.name.to_str()?;
            let slot = lib.symbol(name).with_context(|| format!("{name} pointer missing"))?;
            // SAFETY: the gcc prelude declares `name` as a function pointer variable of the right type.
            unsafe { *(slot as *mut *const c_void) = f.addr };
        }
        let play = lib.symbol("play").context("no play()")?;
        let compiled = lib.symbol("compiled");
        // SAFETY: `play` and `compiled` are `void f(void)` functions of the library, alive while `lib` is.
        let (play, compiled): (extern "C" fn(), Option<extern "C" fn()>) = unsafe {
            (
                std::mem::transmute::<*mut c_void, extern "C" fn()>(play),
                compiled.map(|c| std::mem::transmute::<*mut c_void, extern "C" fn()>(c)),
            )
        };
        Ok(Reference { _lib: lib, play, compiled })
    }
}

/// A patch built by gcc, loaded; its code stays mapped while this lives.
pub struct Reference {
    _lib: Library,
    play: extern "C" fn(),
    compiled: Option<extern "C" fn()>,
}

impl Reference {
    pub fn runner(&self) -> super::Runner<'_> {
        let (play, compiled) = (self.play, self.compiled);
        super::Runner::new(
            move |ctx| ctx.enter(|| play()),
            move |ctx| {
                if let Some(c) = compiled {
                    ctx.enter(|| c())
                }
            },
        )
    }
}

impl Drop for Gcc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
