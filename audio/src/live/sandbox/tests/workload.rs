//! What a sandboxed process still does: the worker's and the offline
//! renderer's whole workload. Every example patch and every builtin render
//! inside the sandbox to the same bytes as outside it (offline rendering is
//! deterministic), system headers and a patch's own includes are read, later
//! swaps compile inside, and a crash still reaches the crash handler on its
//! alternate stack.

use super::*;
use crate::builtins::api::functions;
use crate::engine::EngineConfig;
use crate::patch::PatchSource;
use crate::render::{render_with, Progress, RenderSpec, Swap};
use crate::Frames;

/// Renders `patch` (then, if given, a swap at half time) offline, as
/// `clavm __offline` does: 48 kHz stereo, 128-frame blocks.
pub(super) fn render_swapping(patch: PatchSource, swap: Option<PatchSource>, frames: u64) -> Vec<f32> {
    let spec = RenderSpec {
        patch,
        length: Frames(frames),
        config: EngineConfig::new(48000.0, 2),
        swaps: swap.into_iter().map(|patch| Swap { at: Frames(frames / 2), patch }).collect(),
        params: Vec::new(),
        block: 128,
        input: None,
        samples: Vec::new(),
        notes: Vec::new(),
    };
    let mut samples = Vec::new();
    let progress = Progress::new();
    render_with(&spec, &progress, &mut |block| {
        samples.extend_from_slice(block);
        Ok(())
    })
    .unwrap_or_else(|e| panic!("render: {e}"));
    samples
}

pub(super) fn render_offline(patch: PatchSource, frames: u64) -> Vec<f32> {
    render_swapping(patch, None, frames)
}

pub(super) fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// FNV-1a over the samples' bits: equal renders, equal fingerprints.
fn fingerprint(x: &[f32]) -> u64 {
    x.iter()
        .flat_map(|v| v.to_bits().to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// A patch that calls every function of the patch API (the builtin table),
/// each with harmless arguments, and sounds.
fn every_builtin_patch() -> String {
    let mut body = String::new();
    // The C library's memory functions (allocation, memset...) take or give
    // `void *`: not called here (allocation is for compiled(); play() gets NULL).
    for f in functions().iter().filter(|f| f.ret != "void *" && !f.params.contains('*')) {
        let name = f.name.to_str().unwrap();
        let args: Vec<&str> = f
            .params
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty() && *p != "void" && *p != "int site")
            .map(|p| if p.starts_with("int") { "0" } else { "0.5f" })
            .collect();
        let call = format!("{name}({})", args.join(", "));
        body.push_str(&match f.ret {
            "void" => format!("    {call};\n"),
            r if r.ends_with('*') => format!("    acc += *{call};\n"),
            _ => format!("    acc += (double){call};\n"),
        });
    }
    format!(
        "void play(void) {{\n    double acc = 0;\n{body}    _out(0, 0.1f * (float)tanh(acc * 0.01) + 0.2f * Cycle(330));\n    _out(1, 0.2f * Cycle(440));\n}}\n"
    )
}

/// The patches rendered in and outside the sandbox: every example, every
/// builtin, system headers, a patch's own include, and a swap compiled mid-render.
fn workload_patches(dir: &Path) -> Vec<(String, PatchSource, Option<PatchSource>)> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/patches");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    let mut v: Vec<(String, PatchSource, Option<PatchSource>)> = names
        .iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), PatchSource::from_file(p).unwrap(), None))
        .collect();
    let headers = "#include <math.h>\n#include <stdint.h>\n#include <float.h>\n#include \"local.h\"\n\
                   void play(void) { _out(0, GAIN * (float)sin(2.0 * M_PI * Phasor(220)) + (float)(FLT_EPSILON * (int32_t)1)); }\n";
    let with_headers = || PatchSource { name: "headers.c".into(), text: headers.into(), dir: Some(dir.to_path_buf()) };
    v.push(("builtins.c".into(), PatchSource::from_text("builtins.c", &every_builtin_patch()), Some(with_headers())));
    v.push(("headers.c".into(), with_headers(), None));
    v
}

/// Compares the renders of a sandboxed child with the same renders here.
#[test]
fn every_example_patch_and_builtin_renders_as_outside() {
    const CASE: &str = "every_example_patch_and_builtin_renders_as_outside";
    const FRAMES: u64 = 9600;
    if let Some(dir) = child(CASE) {
        enter_or_die();
        for (name, patch, swap) in workload_patches(&dir) {
            let samples = render_swapping(patch, swap, FRAMES);
            println!("RENDER {name} {:016x} {:.4}", fingerprint(&samples), rms(&samples));
        }
        done();
        return;
    }
    let dir = Scratch::new(CASE);
    std::fs::write(dir.0.join("local.h"), "#define GAIN 0.25f\n").unwrap();
    let out = run_child(module_path!(), CASE, &dir.0);
    let patches = workload_patches(&dir.0);
    for (name, patch, swap) in patches {
        let samples = render_swapping(patch, swap, FRAMES);
        let expected = format!("RENDER {name} {:016x} {:.4}", fingerprint(&samples), rms(&samples));
        assert!(out.lines().any(|l| l == expected), "{name}: expected `{expected}` in\n{out}");
        if name == "builtins.c" || name == "headers.c" {
            assert!(rms(&samples) > 0.05, "{name} sounds");
        }
    }
    assert!(every_builtin_patch().matches('(').count() > functions().len());
}

/// The crash handler as the workers install it, reporting by a write to
/// stdout and exiting with a code of its own.
extern "C" fn report_crash(sig: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let digits = [b'0' + (sig / 10) as u8, b'0' + (sig % 10) as u8];
    let mut msg = *b"CRASH-HANDLED __\n";
    msg[14] = digits[0];
    msg[15] = digits[1];
    // SAFETY: async-signal-safe calls on a local buffer.
    unsafe {
        libc::write(1, msg.as_ptr() as *const libc::c_void, msg.len());
        libc::_exit(77);
    }
}

/// Runs `patch` in a sandboxed child with the crash handler; returns its stdout.
fn crash_case(module: &str, case: &str) -> String {
    let dir = Scratch::new(case);
    let out = child_command(module, case, &dir.0).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(77), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn crash_in_sandbox(patch: &str) {
    crate::crash_signals::install(report_crash);
    enter_or_die();
    println!("{DONE}");
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    render_offline(PatchSource::from_text("crash.c", patch), 4800);
}

#[test]
fn a_crash_reaches_the_crash_handler() {
    const CASE: &str = "a_crash_reaches_the_crash_handler";
    if child(CASE).is_some() {
        crash_in_sandbox("void play(void) { _out(0, 0.2f * Cycle(440)); if (_time() > 0.01) *(volatile int *)0 = 1; }");
        return; // not reached: the handler exits
    }
    let out = crash_case(module_path!(), CASE);
    assert!(out.contains(DONE) && out.contains(&format!("CRASH-HANDLED {:02}", libc::SIGSEGV)), "{out}");
}

/// Runaway recursion: the handler runs on its alternate stack.
#[test]
fn a_stack_overflow_reaches_the_crash_handler() {
    const CASE: &str = "a_stack_overflow_reaches_the_crash_handler";
    if child(CASE).is_some() {
        crash_in_sandbox(
            "int deep(int n) { volatile char pad[4096]; pad[0] = (char)n; return deep(n + 1) + pad[0]; }\n\
             void play(void) { _out(0, 0.001f * (float)deep(0)); }",
        );
        return;
    }
    let out = crash_case(module_path!(), CASE);
    assert!(out.contains(DONE) && out.contains(&format!("CRASH-HANDLED {:02}", libc::SIGSEGV)), "{out}");
}

/// A division by zero: SIGFPE.
#[test]
fn a_division_by_zero_reaches_the_crash_handler() {
    const CASE: &str = "a_division_by_zero_reaches_the_crash_handler";
    if child(CASE).is_some() {
        crash_in_sandbox("void play(void) { volatile int z = 0; _out(0, (float)(7 / z)); }");
        return;
    }
    let out = crash_case(module_path!(), CASE);
    assert!(out.contains(DONE) && out.contains(&format!("CRASH-HANDLED {:02}", libc::SIGFPE)), "{out}");
}

#[test]
fn the_worker_still_works() {
    const CASE: &str = "the_worker_still_works";
    if let Some(dir) = child(CASE) {
        // Realtime on itself, as worker.rs::set_priority does for the audio
        // thread: allowed inside exactly when it was outside (root, or an
        // RLIMIT_RTPRIO).
        let realtime = |p: i32| {
            let param = libc::sched_param { sched_priority: p };
            let policy = if p > 0 { libc::SCHED_FIFO } else { libc::SCHED_OTHER };
            // SAFETY: on ourselves, with a valid param.
            unsafe { libc::sched_setscheduler(0, policy, &param) == 0 }
        };
        let outside = realtime(1);
        assert!(realtime(0));
        enter_or_die();
        assert_eq!(realtime(1), outside);
        assert!(realtime(0));
        // Futex waits (with a timeout) and wakes, as on the slots.
        // A wait that times out says ETIMEDOUT (a denied one would say EPERM).
        let word = std::sync::atomic::AtomicU32::new(0);
        let w = word.as_ptr() as u64;
        let ts = libc::timespec { tv_sec: 0, tv_nsec: 100_000 };
        let t = &ts as *const libc::timespec as u64;
        assert_eq!(sys(libc::SYS_futex, [w, libc::FUTEX_WAIT as u64, 0, t, 0, 0]), (-1, libc::ETIMEDOUT));
        assert_eq!(sys(libc::SYS_futex, [w, libc::FUTEX_WAKE as u64, 1, 0, 0, 0]), (0, 0));
        crate::live::futex::wake(&word);
        crate::live::futex::wait(&word, 1, std::time::Duration::from_millis(1));
        // Reading files.
        let text = std::fs::read_to_string(dir.join("input")).unwrap();
        assert_eq!(text, "some input");
        if Path::new("/etc/hostname").exists() {
            std::fs::read_to_string("/etc/hostname").unwrap();
        }
        assert!(std::fs::read_dir(&dir).unwrap().count() > 0);
        // Compiling and running C (TinyCC reads its runtime, maps, mprotects).
        let code = libtcc::compile(&libtcc::Request {
            source: "#include <stddef.h>\nint f(void){return 40 + (int)sizeof(char);}\n\
                     size_t g(void){return sizeof(size_t);}\n",
            symbols: &[],
            include_paths: &[],
            nostdlib: true,
        })
        .unwrap_or_else(|e| panic!("compile: {e}"));
        let f = code.symbol(c"f").expect("symbol f");
        // SAFETY: `f` is `int f(void)`, compiled above; `code` stays alive.
        let f: extern "C" fn() -> i32 = unsafe { std::mem::transmute(f.as_ptr()) };
        assert_eq!(f() + 1, 42);
        // mmap and mprotect(PROT_EXEC) directly.
        // SAFETY: an anonymous private mapping of one page, unmapped below.
        unsafe {
            let page = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(page, libc::MAP_FAILED);
            let r = libc::mprotect(page, 4096, libc::PROT_READ | libc::PROT_EXEC);
            assert_eq!(r, 0);
            assert_eq!(libc::munmap(page, 4096), 0);
        }
        // Clocks, sleeping (futex and clock_nanosleep), randomness, memory.
        let t = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert!(t.elapsed() > std::time::Duration::ZERO);
        let ts = libc::timespec { tv_sec: 0, tv_nsec: 100_000 };
        let ts = &ts as *const libc::timespec as u64;
        assert_eq!(sys(libc::SYS_clock_nanosleep, [libc::CLOCK_MONOTONIC as u64, 0, ts, 0, 0, 0]), (0, 0));
        let m = std::sync::Mutex::new(1);
        *m.lock().unwrap() += 1;
        let mut h = std::collections::HashMap::new();
        h.insert(vec![0u8; 1 << 20], 1);
        // Signals to itself are allowed; to anyone else, not.
        // SAFETY: signal 0 only checks; getpid/getppid/gettid are plain.
        unsafe {
            assert_eq!(libc::kill(libc::getpid(), 0), 0);
            assert_eq!(libc::syscall(libc::SYS_tgkill, libc::getpid(), libc::gettid(), 0), 0);
            assert_eq!(libc::kill(1, 0), -1);
            assert_eq!(errno(), libc::EPERM);
            assert_eq!(libc::kill(libc::getppid(), 0), -1);
            assert_eq!(libc::kill(0, 0), -1);
            assert_eq!(libc::kill(-1, 0), -1);
        }
        // Writing to inherited descriptors.
        use std::io::Write;
        writeln!(std::io::stderr(), "stderr still works").unwrap();
        done();
        return;
    }
    let dir = Scratch::new(CASE);
    std::fs::write(dir.0.join("input"), "some input").unwrap();
    run_child(module_path!(), CASE, &dir.0);
}

#[test]
fn raise_and_abort_reach_the_worker_itself() {
    const CASE: &str = "raise_and_abort_reach_the_worker_itself";
    if child(CASE).is_some() {
        enter_or_die();
        static CAUGHT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        extern "C" fn on_usr1(_: libc::c_int) {
            CAUGHT.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        // SAFETY: installs a handler that only stores an atomic.
        unsafe {
            libc::signal(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t);
            assert_eq!(libc::raise(libc::SIGUSR1), 0);
        }
        assert!(CAUGHT.load(std::sync::atomic::Ordering::SeqCst));
        done();
        // abort() must kill this process with SIGABRT (raise works), not
        // fall back to its last resort.
        std::process::abort();
    }
    let dir = Scratch::new(CASE);
    let out = child_command(module_path!(), CASE, &dir.0).output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(DONE), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{:?}", out.status);
}
