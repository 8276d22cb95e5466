//! The sandbox of the processes that run patches (`clavm __worker`, and
//! `clavm __offline`): what such a process may still do once it runs
//! performer-written C.
//!
//! A patch is compiled by TinyCC into the process's own address space and runs
//! with all the power of native code (inline `syscall` included). [`enter`]
//! takes away what such code has no business doing, for the rest of the
//! process's life:
//!
//! 1. `PR_SET_NO_NEW_PRIVS`, so nothing can gain privileges (and so the two
//!    layers below may be installed without `CAP_SYS_ADMIN`).
//! 2. **Landlock** (best effort, when the kernel has it; [`landlock`]): every
//!    filesystem *write* right is handled and none is granted, so no file can be
//!    written, created, renamed, linked, truncated or deleted anywhere. Reading
//!    stays allowed everywhere (TinyCC reads headers and `libtcc1.a`, a patch its
//!    own includes). Where the kernel knows them, TCP bind/connect and signals or
//!    abstract UNIX sockets reaching outside the sandbox are denied too.
//! 3. **seccomp-bpf** (x86_64 and aarch64; [`filter`]): an **allow-list**,
//!    synchronised to every thread. Only the system calls in [`allow`] pass,
//!    some only with the arguments listed there (scheduling, limits and signals
//!    aimed at the process itself, read-only opens, a few `ioctl`, `fcntl` and
//!    `prctl` operations, writes to stdout and stderr). Everything else fails
//!    with `EPERM`; `clone3` and `openat2` fail with `ENOSYS` so that glibc
//!    falls back to `clone` (denied) and `openat` (checked). System calls of the
//!    machine's other ABIs (i386 `int 0x80` on x86_64, the x32 numbers) all fail
//!    with `ENOSYS`. Nothing is killed: a patch that tries gets an error code,
//!    and the process keeps its crash reporting.
//!
//! **Why an allow-list.** The deny list it replaces missed calls that reach
//! other processes or outlive the engine (issue 12, finding 3): scheduling and
//! limits aimed at the engine's threads, `clock_settime`, `fanotify`, `syslog`,
//! System V shared memory, `prctl(PR_SET_PDEATHSIG, 0)`. A new kernel adds
//! calls every release; an allow-list is closed to all of them by default.
//!
//! **Why EPERM by default, not ENOSYS.** Every call the workload makes is
//! allowed by name, including the newer forms glibc tries first (`statx`,
//! `faccessat2`), so no fallback is needed; EPERM then says what happened (a
//! refusal, as from a missing capability), where ENOSYS would tell libraries
//! the kernel lacks the call and send them down fallback paths. ENOSYS stays
//! for `clone3` and `openat2`, whose glibc fallbacks are the checked calls.
//!
//! **A process cannot outlive the engine.** The worker sets
//! `PR_SET_PDEATHSIG(SIGKILL)` before `enter` (`worker.rs`); afterwards every
//! way to undo it is closed: `prctl` allows only a few reads, `execve` (which
//! clears it for set-id programs) and the `set*id` calls (which clear it on a
//! change of credentials) are not allowed, and neither is making a child
//! (`fork`, `clone`: a child would not inherit it), nor `ptrace`. `setsid` and
//! `setpgid` would not undo it (the death signal follows the parent, not the
//! session) and are not allowed anyway. Nothing created can outlive the
//! process either: System V IPC, POSIX message queues, keys, `memfd`s (no
//! socket can pass one on) and files (Landlock, read-only opens) are all out.
//!
//! `enter` must be called by a single-threaded process: Landlock restricts the
//! calling thread only (kernels before 7.0 cannot do more); the seccomp filter
//! covers every thread. Once it has run, no thread can be created, nor any
//! process.
//!
//! On the development machine (Linux 6.18, Landlock ABI 7, securityfs not
//! mounted) both layers are enforced: seccomp on, Landlock fully enforced; the
//! test `reports_what_is_enforced` prints what a machine enforces.

use std::fmt;
use std::io;

pub mod allow;
mod filter;
mod landlock;

pub use allow::ALLOWED;
pub use landlock::LandlockStatus;

/// What the sandbox enforced (for the worker to report at start-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxReport {
    /// `PR_SET_NO_NEW_PRIVS` is set (always, once `enter` succeeded).
    pub no_new_privs: bool,
    /// The seccomp filter is installed on every thread (always, once `enter` succeeded).
    pub seccomp: bool,
    /// How much of the Landlock ruleset the kernel enforces.
    pub landlock: LandlockStatus,
    /// How many system calls the allow-list lets through (see [`ALLOWED`]).
    pub allowed_syscalls: usize,
    /// How many of those only with some arguments (aimed at the process
    /// itself, read-only, one of a few operations).
    pub allowed_by_argument: usize,
    /// Instructions in the installed BPF program.
    pub filter_len: usize,
    /// Threads in the process when `enter` ran (1 as it should be; `None` if
    /// `/proc` could not tell). Landlock restricts only the calling thread.
    pub threads: Option<usize>,
}

impl fmt::Display for SandboxReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seccomp {} (allow-list: {} system calls, {} of them by argument), Landlock {}, no_new_privs {}",
            if self.seccomp { "on" } else { "off" },
            self.allowed_syscalls,
            self.allowed_by_argument,
            self.landlock,
            if self.no_new_privs { "on" } else { "off" },
        )?;
        match self.threads {
            Some(1) | None => Ok(()),
            Some(n) => write!(f, " ({n} threads: Landlock covers only the calling one)"),
        }
    }
}

/// Why the sandbox could not be entered. The process should not run patches then.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the worker sandbox needs Linux on x86_64 or aarch64")]
    UnsupportedPlatform,
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(io::Error),
    #[error("cannot apply the Landlock ruleset: {0}")]
    Landlock(#[from] ::landlock::RulesetError),
    #[error("cannot build the seccomp filter: {0}")]
    FilterBuild(#[from] seccompiler::BackendError),
    #[error("cannot install the seccomp filter: {0}")]
    Seccomp(io::Error),
    #[error("cannot install the seccomp filter on every thread (thread {0} refused)")]
    SeccompThreadSync(i64),
}

/// Called once by a worker (or offline) process after its start-up (shared
/// memory mapped, TinyCC warmed up, PDEATHSIG set), before it runs any patch.
/// Irreversible.
pub fn enter() -> Result<SandboxReport, SandboxError> {
    if filter::ARCH.is_none() {
        return Err(SandboxError::UnsupportedPlatform);
    }
    let threads = std::fs::read_dir("/proc/self/task").ok().map(|d| d.count());
    set_no_new_privs()?;
    bound_file_size();
    let landlock = landlock::apply()?;
    let pid = std::process::id();
    let entries = allow::entries();
    let program = filter::compile(&entries, pid)?;
    filter::install(&program)?;
    Ok(SandboxReport {
        no_new_privs: true,
        seccomp: true,
        landlock,
        allowed_syscalls: entries.len(),
        allowed_by_argument: entries.iter().filter(|e| e.when != allow::When::Always).count(),
        filter_len: program.len(),
        threads,
    })
}

/// Most bytes a sandboxed process may write into a file: the only files it
/// can write are memory files it made itself (TinyCC's include copies, 1 MiB
/// at most), and this keeps a patch from filling memory through them.
pub const MAX_FILE_SIZE: libc::rlim_t = 4 << 20;

fn bound_file_size() {
    // SAFETY: setrlimit on ourselves with a valid struct; lowering only.
    unsafe {
        let lim = libc::rlimit { rlim_cur: MAX_FILE_SIZE, rlim_max: MAX_FILE_SIZE };
        libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
    }
}

fn set_no_new_privs() -> Result<(), SandboxError> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if r != 0 {
        return Err(SandboxError::NoNewPrivs(io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
