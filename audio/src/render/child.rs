//! The child of [`render_isolated`](super::render_isolated): `clavm __offline
//! PARENT`. It reads the [`RenderSpec`](super::RenderSpec) from stdin, keeps
//! no descriptor but its own, enters the sandbox, and only then compiles and
//! runs patch code, streaming what [`render_with`](super::render_with) does
//! as framed messages ([`wire`](super::wire)) on a private duplicate of its
//! stdout. Its stdin and stdout then point at `/dev/null`, so a patch that
//! writes to "stdout" cannot pose as the protocol by accident (on purpose it
//! can write to any descriptor it finds; the parent trusts no byte).
//!
//! If the patch crashes, a handler on its own stack writes a fixed-size crash
//! message (the signal, whether it was a stack overflow, the patch, how far
//! the render got) and exits. The parent asks for the same message with
//! SIGUSR1 before it kills a child that made no progress.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::wire::{Crash, Dec, Enc, Failure};
use super::{render_observed, Progress, RenderError, Step};

/// The protocol descriptor, for the crash handler (-1 until it exists).
static PROTOCOL_FD: AtomicI32 = AtomicI32::new(-1);
/// Where the render is (frames done, the patch playing).
static PROGRESS: Progress = Progress::new();
/// TinyCC is compiling patch `COMPILING_PATCH`.
static COMPILING: AtomicBool = AtomicBool::new(false);
static COMPILING_PATCH: AtomicUsize = AtomicUsize::new(0);
static STACK_LO: AtomicUsize = AtomicUsize::new(0);

/// The largest spec read from stdin (patches are at most 1 MiB each; the
/// samples are bounded by the largest `--sample-memory`).
const MAX_SPEC: u64 = (256 << 20) + (crate::samples::MAX_MEMORY_MIB << 20);
/// Blocks are sent once this much is buffered...
const FLUSH_BYTES: usize = 32 * 1024;
/// ...or this long after the last send, whichever is first (the parent's
/// watchdog sees progress; a crash loses at most this much of the stream,
/// and the crash message carries the exact position anyway).
const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// Exit statuses when the protocol itself cannot be set up (the parent reports
/// the missing messages with the status).
const EXIT_NO_PARENT: i32 = 3;
const EXIT_NO_DESCRIPTORS: i32 = 4;

/// Runs the child; never returns. Call before anything else in the process
/// (no threads, no logging): the sandbox covers only a single-threaded process.
pub fn main(parent: u32) -> ! {
    os::die_with_parent(parent);
    let mut input = Vec::new();
    let read = std::io::stdin().lock().take(MAX_SPEC).read_to_end(&mut input);
    let protocol = match isolate_descriptors() {
        Ok(fd) => fd,
        Err(_) => std::process::exit(EXIT_NO_DESCRIPTORS),
    };
    PROTOCOL_FD.store(protocol.as_raw_fd(), Ordering::SeqCst);
    let mut out = Output { file: std::fs::File::from(protocol), enc: Enc::default(), sent: Instant::now() };
    let spec = match read.map_err(|e| e.to_string()).and_then(|_| Dec::new(&input).spec().map_err(|e| e.to_string())) {
        Ok(s) => s,
        Err(e) => out.fail(&Failure::Spec(e)),
    };
    drop(input);
    STACK_LO.store(crate::crash_signals::stack_low(), Ordering::SeqCst);
    crate::crash_signals::install(on_crash);
    os::route_probe(on_crash);
    // Before any patch is compiled: TinyCC parses patch text, so the sandbox
    // covers compiling too.
    if let Err(e) = crate::live::sandbox::enter() {
        out.fail(&Failure::Sandbox(e.to_string()));
    }
    // The sink and the observer both write to `out`, one at a time (the
    // render calls them in turn, never one inside the other).
    let out = std::cell::RefCell::new(out);
    let result = render_observed(&spec, &PROGRESS, &mut |b| out.borrow_mut().block(b), &mut |step| {
        out.borrow_mut().step(step);
    });
    let mut out = out.into_inner();
    match result {
        Ok(summary) => {
            out.enc.done(summary.channels, summary.sample_rate);
            let _ = out.send();
            std::process::exit(0)
        }
        Err(RenderError::Patch(e)) => out.fail(&Failure::Patch(e)),
        Err(RenderError::Config(e)) => out.fail(&Failure::Config(e)),
        Err(other) => out.fail(&Failure::Other(other.to_string())),
    }
}

/// The protocol stream: messages buffered and sent in batches.
struct Output {
    file: std::fs::File,
    enc: Enc,
    sent: Instant,
}

impl Output {
    fn send(&mut self) -> Result<(), RenderError> {
        let r = self.file.write_all(&self.enc.0);
        self.enc.0.clear();
        self.sent = Instant::now();
        r.map_err(|source| RenderError::Write { path: "the parent's pipe".into(), source })
    }

    fn block(&mut self, samples: &[f32]) -> Result<(), RenderError> {
        self.enc.block(samples);
        if self.enc.0.len() >= FLUSH_BYTES || self.sent.elapsed() >= FLUSH_EVERY {
            self.send()?;
        }
        Ok(())
    }

    /// Steps are sent at once (the parent's watchdog and messages follow
    /// them); events go with the next batch.
    fn step(&mut self, step: Step) {
        match step {
            Step::Compiling(i) => {
                COMPILING_PATCH.store(i, Ordering::SeqCst);
                COMPILING.store(true, Ordering::SeqCst);
                self.enc.step(true, i);
                let _ = self.send();
            }
            Step::Running(i) => {
                COMPILING.store(false, Ordering::SeqCst);
                self.enc.step(false, i);
                let _ = self.send();
            }
            Step::Event(e) => self.enc.event(e),
        }
    }

    /// Sends a failure and everything before it, and exits.
    fn fail(&mut self, f: &Failure) -> ! {
        self.enc.failed(f);
        let _ = self.send();
        std::process::exit(1)
    }
}

/// Closes every descriptor but 0, 1 and 2 (the child inherits nothing else,
/// whatever its parent leaked), then moves the protocol to a private
/// duplicate of stdout and points stdin and stdout at `/dev/null`.
fn isolate_descriptors() -> std::io::Result<OwnedFd> {
    os::close_from(3)?;
    // Descriptor 3 exactly: the one the sandbox lets a process write to besides stdout and stderr.
    let protocol = os::duplicate_at(1, PROTOCOL_DESCRIPTOR)?;
    let null: OwnedFd = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?.into();
    os::redirect(&null, 0)?;
    os::redirect(&null, 1)?;
    Ok(protocol)
}

/// Where the protocol stream is: a fixed number, so that nothing else can be there by accident.
const PROTOCOL_DESCRIPTOR: i32 = 3;

/// The crash handler (and the parent's SIGUSR1 probe): one fixed-size
/// message, then exit. Async-signal-safe: atomics, stores, write, _exit.
extern "C" fn on_crash(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let addr = os::fault_address(info);
    let lo = STACK_LO.load(Ordering::Relaxed);
    let stack_overflow = sig == libc::SIGSEGV && lo != 0 && addr < lo + 64 * 1024 && addr + 1024 * 1024 > lo;
    let compiling = COMPILING.load(Ordering::Relaxed);
    let patch =
        if compiling { COMPILING_PATCH.load(Ordering::Relaxed) } else { PROGRESS.patch.load(Ordering::Relaxed) };
    let crash = Crash {
        signal: sig,
        stack_overflow,
        compiling,
        patch: patch as u32,
        frames: PROGRESS.frames.load(Ordering::Relaxed),
    };
    os::write_and_exit(PROTOCOL_FD.load(Ordering::Relaxed), &crash.frame(), 1);
}

/// The few system calls std does not wrap, each fenced here.
mod os {
    use std::os::fd::{AsRawFd, OwnedFd, RawFd};

    /// A close-on-exec duplicate of `fd` at exactly `at` (which must be the lowest free number from `at` on).
    pub fn duplicate_at(fd: RawFd, at: RawFd) -> std::io::Result<OwnedFd> {
        // SAFETY: fcntl takes no pointers; the new descriptor is ours.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, at) };
        if new < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(new) };
        if new != at {
            return Err(std::io::Error::other(format!("descriptor {at} is in use")));
        }
        Ok(owned)
    }

    /// PDEATHSIG, then the check that the parent did not die before it was set.
    pub fn die_with_parent(parent: u32) {
        // SAFETY: prctl and getppid take no pointers.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() as u32 != parent {
                libc::_exit(super::EXIT_NO_PARENT);
            }
        }
    }

    /// Closes every descriptor from `first` up. No Rust object owns any of
    /// them: nothing in this process has opened a file yet.
    pub fn close_from(first: u32) -> std::io::Result<()> {
        // SAFETY: close_range takes no pointers; see above for ownership.
        let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
        if r == 0 {
            return Ok(());
        }
        // Kernels before 5.9: close what /proc lists (the listing's own
        // descriptor is closed when the listing is).
        let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd >= first as RawFd)
            .collect();
        for fd in fds {
            // SAFETY: as above; a descriptor already gone gives EBADF, harmlessly.
            unsafe {
                libc::close(fd);
            }
        }
        Ok(())
    }

    /// Makes descriptor `to` a duplicate of `from`.
    pub fn redirect(from: &OwnedFd, to: RawFd) -> std::io::Result<()> {
        // SAFETY: dup2 on a descriptor we own onto a standard one, which no
        // Rust object owns (std's handles only refer to the number).
        if unsafe { libc::dup2(from.as_raw_fd(), to) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Routes SIGUSR1 (the parent's "where are you?") to `handler`, on the
    /// alternate stack `crash_signals::install` gave this thread.
    pub fn route_probe(handler: crate::crash_signals::Handler) {
        // SAFETY: sigaction with a zeroed, then filled, struct.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
        }
    }

    /// The faulting address of a signal (0 if none).
    pub fn fault_address(info: *mut libc::siginfo_t) -> usize {
        if info.is_null() {
            return 0;
        }
        // SAFETY: the kernel passes a valid siginfo to SA_SIGINFO handlers.
        unsafe { (*info).si_addr() as usize }
    }

    /// Writes `bytes` to `fd` (if valid) and ends the process at once.
    pub fn write_and_exit(fd: RawFd, bytes: &[u8], status: i32) -> ! {
        // SAFETY: write(2) from a valid buffer and _exit(2) are async-signal-safe.
        unsafe {
            if fd >= 0 {
                libc::write(fd, bytes.as_ptr() as *const libc::c_void, bytes.len());
            }
            libc::_exit(status)
        }
    }
}
