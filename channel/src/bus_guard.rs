//! Surviving a channel file that shrinks under its mapping.
//!
//! A shared mapping of a file faults with SIGBUS where the file no longer
//! has pages: anyone who can write the file (its owner, or root) can
//! truncate it while we read it, and no check made before the access can
//! close that window. So every channel mapping is registered here, and a
//! process-wide SIGBUS handler that finds the faulting address inside one
//! puts private zero pages over the rest of that mapping (the technique of
//! Wayland compositors for client shm pools), marks it broken and returns:
//! the access is retried, reads zeros, and the channel's next operation
//! sees the mark and abandons the channel. A SIGBUS anywhere else goes to
//! the handler that was there before (the default one kills the process,
//! as it would have).
//!
//! `signal-hook-registry` was considered: it refuses SIGBUS unless
//! unchecked, and does not pass a fault on to a previous *default*
//! disposition, so a foreign fault would re-fault forever.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

/// Channel mappings one process may hold at once (each client submit opens
/// one reply channel on the engine side for the submit's lifetime).
const ENTRIES: usize = 1024;

struct Entry {
    /// 0 free, 1 taken.
    state: AtomicU8,
    start: AtomicUsize,
    len: AtomicUsize,
    broken: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Entry = Entry {
    state: AtomicU8::new(0),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    broken: AtomicBool::new(false),
};
static TABLE: [Entry; ENTRIES] = [FREE; ENTRIES];
static INSTALL: Once = Once::new();
/// The disposition before ours, to pass foreign faults on to (set once, before our handler is installed).
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
/// The page size, to align the replacement pages.
static PAGE: AtomicUsize = AtomicUsize::new(4096);

/// A registered mapping; unregistered on drop (before the caller unmaps it).
pub(crate) struct Guard(usize);

impl Guard {
    /// Registers `len` bytes at `start`; `None` if the table is full.
    pub fn register(start: *mut u8, len: usize) -> Option<Guard> {
        INSTALL.call_once(install);
        let i =
            TABLE.iter().position(|e| e.state.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed).is_ok())?;
        let e = &TABLE[i];
        e.broken.store(false, Ordering::Relaxed);
        e.len.store(len, Ordering::Relaxed);
        e.start.store(start as usize, Ordering::Release);
        Some(Guard(i))
    }

    /// Whether a fault has replaced part of the mapping with zero pages.
    pub fn broken(&self) -> bool {
        TABLE[self.0].broken.load(Ordering::Acquire)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let e = &TABLE[self.0];
        e.start.store(0, Ordering::Release);
        e.len.store(0, Ordering::Relaxed);
        e.state.store(0, Ordering::Release);
    }
}

fn install() {
    // SAFETY: sysconf and sigaction with zeroed-then-filled structs.
    unsafe {
        let page = libc::sysconf(libc::_SC_PAGESIZE);
        if page > 0 {
            PAGE.store(page as usize, Ordering::Relaxed);
        }
        let mut old: libc::sigaction = std::mem::zeroed();
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigbus as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) == 0 {
            let _ = PREVIOUS.set(old);
        }
        libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
    }
}

/// Async-signal-safe: atomics, mmap and sigaction only.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    if code > 0 {
        for e in TABLE.iter() {
            let start = e.start.load(Ordering::Acquire);
            let len = e.len.load(Ordering::Relaxed);
            if start == 0 || addr < start || addr >= start + len {
                continue;
            }
            let page = addr & !(PAGE.load(Ordering::Relaxed) - 1);
            let end = start + len;
            // SAFETY: replaces pages of a live mapping of ours (registered, so
            // not yet unmapped) with private zero pages, from the faulting
            // page to its end; the faulting access then reads zeros.
            let p = unsafe {
                libc::mmap(
                    page as *mut libc::c_void,
                    end - page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                e.broken.store(true, Ordering::Release);
                return;
            }
        }
    }
    // Not ours: what would have happened without us.
    match PREVIOUS.get() {
        Some(old) if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN => {
            if old.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler was installed as an SA_SIGINFO handler with this signature.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(old.sa_sigaction) };
                f(sig, info, ctx);
            } else {
                // SAFETY: the previous handler was installed as a plain handler with this signature.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(old.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            // SAFETY: restoring the default disposition and raising again: a
            // hardware fault re-faults on return, a sent signal is delivered
            // once this handler returns; either way the process dies of it.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
                libc::raise(libc::SIGBUS);
            }
        }
    }
}
