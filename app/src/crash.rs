//! Last line of defence for the offline commands, which run patch code in
//! this process: a patch that crashes (segfault, division by zero, runaway
//! recursion) or hangs must end `clavm` with a clear message and exit status
//! 1, never a bare "Segmentation fault" or a hang.
//!
//! The live engine does better (patches run in worker processes that may
//! die); here the signal handler, on its own stack, writes one line with
//! async-signal-safe calls only and exits, and a watchdog thread ends a run
//! that makes no progress.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clavm_audio::render::Progress;

/// What the process is doing, for the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Idle = 0,
    Compiling = 1,
    Running = 2,
}

static PHASE: AtomicU8 = AtomicU8::new(0);
/// Where the render is: frames done, and which patch plays (the render loop stores into it).
pub static PROGRESS: Progress = Progress::new();
static SAMPLE_RATE: AtomicU64 = AtomicU64::new(48000);
static STACK_LO: AtomicUsize = AtomicUsize::new(0);
/// The names of the patches, in `Progress::patch` order, set once before any patch code runs.
static PATCHES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();

/// Partial output files to remove if the process dies (NUL-terminated):
/// a WAV, or a video's temporary streams.
static CLEANUP: [OnceLock<std::ffi::CString>; 4] = [const { OnceLock::new() }; 4];

/// Asks the crash handler and the watchdog to delete `path` before exiting.
pub fn remove_on_crash(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) {
        let mut c = Some(c);
        for slot in &CLEANUP {
            if let Some(v) = c.take() {
                if let Err(v) = slot.set(v) {
                    c = Some(v);
                }
            }
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
    for p in CLEANUP.iter().filter_map(|slot| slot.get()) {
        // SAFETY: unlink(2) with a valid NUL-terminated path; async-signal-safe.
        unsafe {
            libc::unlink(p.as_ptr());
        }
    }
}

pub fn set_phase(p: Phase) {
    PHASE.store(p as u8, Ordering::SeqCst);
}

/// Installs the handlers for this process and this thread. Call on the thread
/// that runs patches. `patches` are the names in `Progress::patch` order.
pub fn arm(patches: &[&str], sample_rate: f64) {
    let _ = PATCHES.set(patches.iter().map(|p| p.as_bytes().to_vec()).collect());
    SAMPLE_RATE.store(sample_rate as u64, Ordering::SeqCst);
    STACK_LO.store(clavm_audio::crash_signals::stack_low(), Ordering::SeqCst);
    clavm_audio::crash_signals::install(on_signal);
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

/// "t=12.345s" from the progress counter, without floating point formatting.
fn raw_write_time() {
    let frames = PROGRESS.frames.load(Ordering::Relaxed);
    let sr = SAMPLE_RATE.load(Ordering::Relaxed).max(1);
    let ms = frames * 1000 / sr;
    raw_write(b"t=");
    raw_write_u64(ms / 1000);
    raw_write(b".");
    let frac = ms % 1000;
    raw_write(&[b'0' + (frac / 100) as u8, b'0' + (frac / 10 % 10) as u8, b'0' + (frac % 10) as u8]);
    raw_write(b"s");
}

fn raw_write_patch() {
    let i = PROGRESS.patch.load(Ordering::Relaxed);
    match PATCHES.get().and_then(|p| p.get(i)) {
        Some(p) => raw_write(p),
        None => raw_write(b"the patch"),
    }
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let lo = STACK_LO.load(Ordering::Relaxed);
    let near_stack_end = lo != 0 && addr < lo + 64 * 1024 && addr + 1024 * 1024 > lo;
    raw_write(b"clavm: error: ");
    raw_write_patch();
    let phase = PHASE.load(Ordering::Relaxed);
    raw_write(if phase == Phase::Compiling as u8 {
        b": TinyCC crashed while compiling it ("
    } else {
        b": the patch crashed at "
    });
    if phase != Phase::Compiling as u8 {
        raw_write_time();
        raw_write(b" (");
    }
    let what: &[u8] = match sig {
        libc::SIGSEGV if near_stack_end => b"stack overflow: runaway recursion?",
        libc::SIGSEGV => b"SIGSEGV: invalid memory access",
        libc::SIGBUS => b"SIGBUS: invalid memory access",
        libc::SIGFPE => b"SIGFPE: integer division by zero?",
        libc::SIGILL => b"SIGILL: illegal instruction",
        libc::SIGTRAP => b"SIGTRAP",
        libc::SIGABRT => b"SIGABRT: aborted",
        libc::SIGSYS => b"SIGSYS: forbidden system call",
        _ => b"signal",
    };
    raw_write(what);
    raw_write(b")\n");
    cleanup();
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(1) }
}

/// Ends the process if the current phase makes no progress for `limit`.
pub fn start_watchdog(limit: Duration) {
    std::thread::Builder::new()
        .name("clavm-watchdog".into())
        .spawn(move || {
            let mut last = (PROGRESS.frames.load(Ordering::Relaxed), PHASE.load(Ordering::Relaxed));
            let mut since = Instant::now();
            loop {
                std::thread::sleep(Duration::from_millis(50));
                let now = (PROGRESS.frames.load(Ordering::Relaxed), PHASE.load(Ordering::Relaxed));
                if now != last || now.1 == Phase::Idle as u8 {
                    last = now;
                    since = Instant::now();
                    continue;
                }
                if since.elapsed() >= limit {
                    raw_write(b"clavm: error: ");
                    raw_write_patch();
                    if now.1 == Phase::Compiling as u8 {
                        raw_write(b": compiling took longer than ");
                    } else {
                        raw_write(b": the patch made no progress at ");
                        raw_write_time();
                        raw_write(b" for ");
                    }
                    raw_write_u64(limit.as_secs().max(1));
                    raw_write(b" s (an infinite loop in play() or compiled()?)\n");
                    cleanup();
                    // SAFETY: ends the process at once; the patch thread may be stuck in a loop.
                    unsafe { libc::_exit(1) }
                }
            }
        })
        .expect("spawn watchdog");
}
