//! Last line of defence for a `clavm` process that must not die with a bare
//! "Segmentation fault" or hang: one line, exit status 1, partial files removed.
//!
//! No command runs patch code in this process any more: `render`,
//! `snapshot`, `record` and the headless fallback run it in a sandboxed child
//! (`clavm_audio::render::render_isolated`, which reports the child's crashes
//! and hangs itself), `play` in workers. Two uses remain:
//! - `check` runs TinyCC here (compiling only, never the patch's code), so
//!   [`arm`] and the watchdog guard it as before;
//! - the offline commands [`arm_host`]: if `clavm` itself crashes (a bug, or
//!   the Vulkan driver under `snapshot`/`record`), the handler says so, kills
//!   ffmpeg and removes the partial files.
//!
//! The signal handler, on its own stack, writes one line with
//! async-signal-safe calls only and exits; a watchdog thread ends a compile
//! that makes no progress.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What the process is doing, for the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Idle = 0,
    /// TinyCC is compiling the patch named to [`arm`].
    Compiling = 1,
}

static PHASE: AtomicU8 = AtomicU8::new(0);
/// Armed by [`arm_host`]: a crash is clavm's own, not a patch's.
static HOST: AtomicBool = AtomicBool::new(false);
static STACK_LO: AtomicUsize = AtomicUsize::new(0);
/// The name of the patch being compiled, set once before TinyCC runs.
static PATCH: OnceLock<Vec<u8>> = OnceLock::new();

/// Partial output files to remove if the process dies or is interrupted
/// (NUL-terminated, leaked on purpose: a handler may be reading one while
/// the main thread forgets it): a WAV, a PNG, a video's temporary streams.
static CLEANUP: [AtomicPtr<libc::c_char>; 8] = [const { AtomicPtr::new(std::ptr::null_mut()) }; 8];

/// Asks the crash and interrupt handlers and the watchdog to delete `path`
/// before exiting.
pub fn remove_on_crash(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return };
    let raw = c.into_raw();
    for slot in &CLEANUP {
        if slot.compare_exchange(std::ptr::null_mut(), raw, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            return;
        }
    }
    // SAFETY: `raw` came from CString::into_raw above and was not stored.
    drop(unsafe { std::ffi::CString::from_raw(raw) });
}

/// `path` was moved into place (or removed): a handler must not delete
/// whatever has that name later.
pub fn forget_file(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    for slot in &CLEANUP {
        let p = slot.load(Ordering::SeqCst);
        // SAFETY: non-null slots hold leaked, never-freed CStrings.
        if !p.is_null() && unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes() == path.as_os_str().as_bytes() {
            let _ = slot.compare_exchange(p, std::ptr::null_mut(), Ordering::SeqCst, Ordering::SeqCst);
        }
    }
}

/// A helper process writing one of those files (ffmpeg), killed first so it
/// cannot write or re-create a file after it was removed. 0: none.
static CHILD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Asks the crash handler and the watchdog to kill `pid` before removing files.
pub fn kill_on_crash(pid: u32) {
    CHILD.store(pid as i32, Ordering::SeqCst);
}

/// The helper process has exited (or been waited for): forget its pid, which
/// the system may give to another process.
pub fn forget_child() {
    CHILD.store(0, Ordering::SeqCst);
}

/// Kills the helper process and removes the partial files, async-signal-safely.
fn cleanup() {
    let child = CHILD.swap(0, Ordering::SeqCst);
    if child > 0 {
        // SAFETY: kill(2) and waitpid(2) are async-signal-safe; the pid is our
        // own child, not yet waited for (forget_child runs after the wait).
        unsafe {
            libc::kill(child, libc::SIGKILL);
            libc::waitpid(child, std::ptr::null_mut(), 0);
        }
    }
    for slot in &CLEANUP {
        let p = slot.swap(std::ptr::null_mut(), Ordering::SeqCst);
        if !p.is_null() {
            // SAFETY: unlink(2) with a leaked, valid NUL-terminated path; async-signal-safe.
            unsafe {
                libc::unlink(p);
            }
        }
    }
}

pub fn set_phase(p: Phase) {
    PHASE.store(p as u8, Ordering::SeqCst);
}

/// Installs the handlers for this process and this thread, which is about
/// to compile `patch` with TinyCC (`clavm check`).
pub fn arm(patch: &str) {
    let _ = PATCH.set(patch.as_bytes().to_vec());
    STACK_LO.store(clavm_audio::crash_signals::stack_low(), Ordering::SeqCst);
    clavm_audio::crash_signals::install(on_signal);
}

/// Installs the handlers for a process that runs no patch code (the offline
/// commands' parent): a crash is reported as clavm's own, and the partial
/// files registered with [`remove_on_crash`] are removed; so are they on
/// SIGINT, SIGTERM and SIGHUP (see [`on_interrupt`]).
pub fn arm_host() {
    HOST.store(true, Ordering::SeqCst);
    clavm_audio::crash_signals::install(on_signal);
    for sig in INTERRUPTS {
        // SAFETY: sigaction with a zeroed, then filled, struct; the handler
        // only makes async-signal-safe calls.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_interrupt as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            for s in INTERRUPTS {
                // One interrupt at a time: the cleanup runs once to its end.
                libc::sigaddset(&mut sa.sa_mask, s);
            }
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The signals that ask a process to stop (Ctrl-C, `kill`, a closed terminal).
const INTERRUPTS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Stops ffmpeg and removes the partial files, then dies of the same signal
/// with its default action, so the shell sees the usual status (130 for
/// SIGINT, 143 for SIGTERM) and a shell loop around us stops too.
extern "C" fn on_interrupt(sig: libc::c_int) {
    cleanup();
    // SAFETY: signal(2) and raise(3) are async-signal-safe. The signal is
    // blocked while this handler runs; it is delivered, with the default
    // action (terminate), as the handler returns.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Writes to stderr without allocating (async-signal-safe).
fn raw_write(bytes: &[u8]) {
    // SAFETY: write(2) with a valid buffer.
    unsafe {
        libc::write(2, bytes.as_ptr() as *const libc::c_void, bytes.len());
    }
}

fn raw_write_u64(mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    raw_write(&buf[i..]);
}

fn raw_write_patch() {
    match PATCH.get() {
        Some(p) => raw_write(p),
        None => raw_write(b"the patch"),
    }
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let lo = STACK_LO.load(Ordering::Relaxed);
    let near_stack_end = lo != 0 && addr < lo + 64 * 1024 && addr + 1024 * 1024 > lo;
    let what = clavm_audio::render::describe_signal(sig, sig == libc::SIGSEGV && near_stack_end).as_bytes();
    raw_write(b"clavm: error: ");
    if HOST.load(Ordering::Relaxed) || PHASE.load(Ordering::Relaxed) != Phase::Compiling as u8 {
        raw_write(b"clavm itself crashed (");
        raw_write(what);
        raw_write(b"; patches run in a separate process)\n");
    } else {
        raw_write_patch();
        raw_write(b": TinyCC crashed while compiling it (");
        raw_write(what);
        raw_write(b")\n");
    }
    cleanup();
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(1) }
}

/// Ends the process if a compile takes longer than `limit`.
pub fn start_watchdog(limit: Duration) {
    std::thread::Builder::new()
        .name("clavm-watchdog".into())
        .spawn(move || {
            let mut since = Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(50));
                if PHASE.load(Ordering::Relaxed) != Phase::Compiling as u8 {
                    since = Instant::now();
                    continue;
                }
                if since.elapsed() >= limit {
                    raw_write(b"clavm: error: ");
                    raw_write_patch();
                    raw_write(b": compiling took longer than ");
                    raw_write_u64(limit.as_secs().max(1));
                    raw_write(b" s\n");
                    cleanup();
                    // SAFETY: ends the process at once; the compiling thread may be stuck.
                    unsafe { libc::_exit(1) }
                }
            }
        })
        .expect("spawn watchdog");
}
