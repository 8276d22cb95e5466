//! The allow-list: every system call a sandboxed process may make, and with
//! which arguments.
//!
//! Found by tracing real workers (`strace -f clavm bench --live`: compiles,
//! runs, crashes, stalls) and the sandbox tests (every example patch, every
//! builtin, `#include <math.h>`, crashes on the alternate stack), then kept to
//! what glibc, Rust's std, TinyCC and the crash handler need:
//!
//! - reading files (TinyCC's headers and `libtcc1.a`, a patch's includes):
//!   read-only opens, `read`, `lseek`, `stat`s, directory listings;
//! - memory: `mmap`/`mprotect` (TinyCC makes its pages executable), `brk`...;
//! - futex waits and wakes (the slot protocol), clocks, sleeping;
//! - signals: handlers, masks, the alternate stack, and signals to itself
//!   (`abort`, `raise`); `exit_group`;
//! - scheduling and limits on itself (`worker.rs::set_priority`, `setrlimit`);
//! - writing to stdout (the offline renderer's audio) and stderr.
//!
//! A call that could aim at another process is allowed only aimed at this one
//! ([`When::OwnPid`], [`When::OwnPidOrZero`], [`When::OwnProcess`]).

use std::fmt;

/// Under which arguments an allowed system call passes. Argument values are
/// compared on their low 32 bits, as the kernel reads them (`int`, `pid_t`,
/// `unsigned int`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Always.
    Always,
    /// `args[arg]` is the process's own pid (`kill`, `tgkill`: 0 there would
    /// mean the process group, which includes the engine).
    OwnPid { arg: u8 },
    /// `args[arg]` is 0 (the caller) or the process's own pid (scheduling,
    /// limits: the process is single-threaded, so its one tid is its pid).
    OwnPidOrZero { arg: u8 },
    /// `args[which]` is the "process" kind (`PRIO_PROCESS`,
    /// `IOPRIO_WHO_PROCESS`) and `args[who]` is 0 or the own pid: not a
    /// process group or a user, which would include the engine.
    OwnProcess { which: u8, kind: u32, who: u8 },
    /// None of `mask`'s bits is set in `args[arg]` (opening read-only).
    NoBits { arg: u8, mask: u32 },
    /// `args[arg]` is one of `values` (`ioctl`, `fcntl`, `prctl` operations;
    /// writes to descriptors 1 and 2).
    OneOf { arg: u8, values: &'static [u32] },
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            When::Always => write!(f, "always"),
            When::OwnPid { arg } => write!(f, "if argument {arg} is the own pid"),
            When::OwnPidOrZero { arg } => write!(f, "if argument {arg} is 0 or the own pid"),
            When::OwnProcess { which, kind, who } => {
                write!(f, "if argument {which} is {kind} (a process) and argument {who} is 0 or the own pid")
            }
            When::NoBits { arg, mask } => write!(f, "if argument {arg} has none of the bits {mask:#x}"),
            When::OneOf { arg, values } => write!(f, "if argument {arg} is one of {values:#x?}"),
        }
    }
}

/// One allowed system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    pub name: &'static str,
    pub nr: i64,
    pub when: When,
}

/// The allow-list of this machine's architecture, by name, with its condition
/// (for reports and tests; [`entries`] is what the filter is built from).
pub static ALLOWED: std::sync::LazyLock<Vec<(&'static str, String)>> =
    std::sync::LazyLock::new(|| entries().iter().map(|e| (e.name, e.when.to_string())).collect());

/// Flags that make `open`/`openat` write or create (`O_TMPFILE` needs one of
/// the write modes, so it is covered).
pub const WRITE_FLAGS: u32 = (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) as u32;

/// `ioctl`s that only ask a terminal about itself (`isatty`, its size).
/// Everything else is out, `TIOCSTI` and `TIOCLINUX` (which push input into
/// the terminal, and so into the shell that owns it) first of all.
#[allow(clippy::unnecessary_cast)] // `Ioctl` is u64 on glibc, i32 on musl
pub const IOCTLS: &[u32] = &[libc::TCGETS as u32, libc::TIOCGWINSZ as u32];

/// `fcntl`s on descriptor flags only: no duplicating (`F_DUPFD*`), no locks,
/// no `F_SETOWN`/`F_SETSIG` (which route SIGIO to another process).
pub const FCNTLS: &[u32] = &[libc::F_GETFD as u32, libc::F_SETFD as u32, libc::F_GETFL as u32];

/// `prctl`s that only read. Never `PR_SET_PDEATHSIG` (a worker would outlive
/// the engine), `PR_SET_DUMPABLE`, `PR_SET_SECCOMP`, `PR_SET_PTRACER`,
/// `PR_SET_CHILD_SUBREAPER`, `PR_SET_MM`...
pub const PRCTLS: &[u32] = &[libc::PR_GET_PDEATHSIG as u32, libc::PR_GET_NAME as u32];

/// `memfd_create`'s flags: close-on-exec only (no sealing games, no huge
/// pages). TinyCC's include hook serves every header it reads as a bounded
/// in-memory copy (`libtcc::files`), so a compile inside the sandbox needs one.
pub const MEMFD_FLAGS: &[u32] = &[libc::MFD_CLOEXEC];

/// `getpriority`/`setpriority`'s "a process" (not a process group or a user).
#[allow(clippy::unnecessary_cast)] // `__priority_which_t` is u32 on glibc, i32 on musl
const PRIO_PROCESS: u32 = libc::PRIO_PROCESS as u32;

macro_rules! push {
    ($v:ident, $when:expr; $($name:ident),+ $(,)?) => {
        $( $v.push(Allowed {
            name: stringify!($name).trim_start_matches("SYS_"),
            nr: libc::$name as i64,
            when: $when,
        }); )+
    };
}

/// The allow-list for this architecture. The process's own pid goes into the
/// filter when it is compiled (see [`When`]).
pub fn entries() -> Vec<Allowed> {
    let mut v = Vec::with_capacity(96);
    let always = When::Always;

    // Files, read-only (Landlock denies writes too; this keeps the
    // descriptors honest: nothing is ever opened for writing).
    push!(v, When::NoBits { arg: 2, mask: WRITE_FLAGS }; SYS_openat);
    push!(v, always; SYS_read, SYS_readv, SYS_pread64, SYS_lseek, SYS_close, SYS_fstat,
        SYS_newfstatat, SYS_statx, SYS_getdents64, SYS_readlinkat, SYS_faccessat,
        SYS_faccessat2, SYS_getcwd);
    // Writing, to any descriptor: what a sandboxed process can hold open for
    // writing is only stdio, the offline renderer's protocol pipe and memory
    // files it made itself (opens are read-only, and no socket or pipe can be
    // made); a memory file's size is bounded by RLIMIT_FSIZE (see `enter`).
    push!(v, always; SYS_write, SYS_writev);
    push!(v, When::OneOf { arg: 1, values: MEMFD_FLAGS }; SYS_memfd_create);
    push!(v, When::OneOf { arg: 1, values: IOCTLS }; SYS_ioctl);
    push!(v, When::OneOf { arg: 1, values: FCNTLS }; SYS_fcntl);
    // Memory (TinyCC maps its code and makes it executable).
    push!(v, always; SYS_mmap, SYS_munmap, SYS_mprotect, SYS_brk, SYS_madvise);
    // mremap: glibc's realloc (MREMAP_MAYMOVE), and a worker showing the
    // memory a request runs on at its canonical address (MAYMOVE|FIXED with
    // an old size of 0: the same shared pages again, see `live::shm`). Both
    // need FIXED or MAYMOVE allowed; nothing needs DONTUNMAP, which is not.
    push!(v, When::NoBits { arg: 3, mask: libc::MREMAP_DONTUNMAP as u32 }; SYS_mremap);
    // Waiting and time.
    push!(v, always; SYS_futex, SYS_sched_yield, SYS_nanosleep, SYS_clock_nanosleep,
        SYS_clock_gettime, SYS_clock_getres, SYS_gettimeofday, SYS_restart_syscall);
    // Signals: handlers, masks, the crash handler's stack; sending only to itself.
    push!(v, always; SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_sigaltstack);
    push!(v, When::OwnPid { arg: 0 }; SYS_kill, SYS_tkill, SYS_tgkill, SYS_rt_sigqueueinfo,
        SYS_rt_tgsigqueueinfo);
    // Who am I; leaving.
    push!(v, always; SYS_getpid, SYS_gettid, SYS_getppid, SYS_getuid, SYS_geteuid, SYS_getgid,
        SYS_getegid, SYS_uname, SYS_getrandom, SYS_exit, SYS_exit_group);
    push!(v, When::OneOf { arg: 0, values: PRCTLS }; SYS_prctl);
    // Scheduling and limits, on itself only (the engine's threads are the
    // obvious other target: issue 12, finding 3).
    push!(v, When::OwnPidOrZero { arg: 0 }; SYS_sched_setscheduler, SYS_sched_getscheduler,
        SYS_sched_setparam, SYS_sched_getparam, SYS_sched_setattr, SYS_sched_getattr,
        SYS_sched_setaffinity, SYS_sched_getaffinity, SYS_prlimit64);
    push!(v, always; SYS_sched_get_priority_max, SYS_sched_get_priority_min);
    push!(v, When::OwnProcess { which: 0, kind: PRIO_PROCESS, who: 1 };
        SYS_getpriority, SYS_setpriority);

    // x86_64's legacy calls that glibc or a patch may still use (aarch64 has
    // only the *at forms).
    #[cfg(target_arch = "x86_64")]
    {
        push!(v, When::NoBits { arg: 1, mask: WRITE_FLAGS }; SYS_open);
        push!(v, always; SYS_stat, SYS_lstat, SYS_access, SYS_readlink, SYS_getrlimit,
            SYS_time);
        // setrlimit is the process's own (it takes no pid).
        push!(v, always; SYS_setrlimit);
    }
    #[cfg(target_arch = "aarch64")]
    {
        push!(v, always; SYS_getrlimit, SYS_setrlimit);
    }
    v
}
