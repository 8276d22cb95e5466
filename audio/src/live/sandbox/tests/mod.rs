//! The sandbox is irreversible, so every test that enters it does so in a
//! child: the test re-runs this test binary for itself alone, with
//! `CLAVM_SANDBOX_CHILD` naming it; the child sees the variable, enters the
//! sandbox, tries its case and prints [`DONE`] if every check held. The
//! parent checks the exit status and the marker, and what the child left
//! (or did not leave) in a scratch folder, or in the parent itself.
//!
//! - this file: the helpers, and the filter program checked without installing it;
//! - `denials`: what a sandboxed process cannot do (files, processes, network...);
//! - `findings`: issue 12 finding 3, one test per escape the deny list missed;
//! - `workload`: what it still can: every example patch, every builtin,
//!   system headers, the crash handler.

use super::allow::{entries, When, FCNTLS, IOCTLS, PRCTLS, WRITE_FLAGS};
use super::filter::{
    compile, ret_errno, ARCH, BPF_JEQ_K, BPF_JGE_K, BPF_LD_W_ABS, BPF_RET_K, ENOSYS_CALLS, RET_ALLOW, X32_SYSCALL_BIT,
};
use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;

mod denials;
mod findings;
mod workload;

const CHILD_ENV: &str = "CLAVM_SANDBOX_CHILD";
const DIR_ENV: &str = "CLAVM_SANDBOX_DIR";
const DONE: &str = "CLAVM-SANDBOX-CASE-DONE";

/// In a child run for `case`: its scratch folder.
fn child(case: &str) -> Option<PathBuf> {
    (std::env::var(CHILD_ENV).as_deref() == Ok(case))
        .then(|| PathBuf::from(std::env::var_os(DIR_ENV).expect("scratch folder")))
}

fn done() {
    use std::io::Write;
    println!("{DONE}");
    std::io::stdout().flush().unwrap();
}

/// A scratch folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(case: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("clavm-sandbox-{}-{case}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The command that re-runs this test binary for the test `module::case` alone.
fn child_command(module: &str, case: &str, dir: &Path) -> Command {
    let module = module.split_once("::").map_or(module, |(_, rest)| rest);
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", &format!("{module}::{case}"), "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, case)
        .env(DIR_ENV, dir);
    c
}

/// In the parent: runs the test `case` of `module` (its `module_path!()`) in
/// a child, asserts it succeeded, returns its stdout.
fn run_child(module: &str, case: &str, dir: &Path) -> String {
    let out = child_command(module, case, dir).output().expect("re-run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(DONE),
        "child `{case}` failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    print!("{stdout}");
    stdout
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn enter_or_die() -> SandboxReport {
    let report = enter().expect("enter the sandbox");
    println!("sandbox: {report}");
    report
}

/// A raw system call's result and errno (0 when it succeeded).
fn sys(nr: libc::c_long, args: [u64; 6]) -> (i64, i32) {
    let a = args.map(|a| a as libc::c_long);
    // SAFETY: every caller passes arguments that are either rejected by the
    // filter before the kernel reads them or valid for the call (pointers to
    // live locals, or null where the call accepts it).
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    (r as i64, if r < 0 { errno() } else { 0 })
}

/// Denied: -1 with EPERM.
const EPERM: (i64, i32) = (-1, libc::EPERM);

// --- The filter program, checked without installing it. ---

/// Runs a seccomp program the way the kernel does (the instructions the
/// prologue and seccompiler emit).
fn run_filter(p: &[libc::sock_filter], nr: i64, arch: u32, args: [u64; 6]) -> u32 {
    const BPF_ALU_AND_K: u16 = 0x04 | 0x50;
    const BPF_JA: u16 = 0x05;
    const BPF_JGT_K: u16 = 0x05 | 0x20;
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&(nr as u32).to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let ins = p[pc];
        pc += 1;
        let skip = |taken: bool| if taken { ins.jt } else { ins.jf } as usize;
        match ins.code {
            BPF_LD_W_ABS => {
                let k = ins.k as usize;
                acc = u32::from_ne_bytes(data[k..k + 4].try_into().unwrap());
            }
            BPF_ALU_AND_K => acc &= ins.k,
            BPF_JA => pc += ins.k as usize,
            BPF_JEQ_K => pc += skip(acc == ins.k),
            BPF_JGT_K => pc += skip(acc > ins.k),
            BPF_JGE_K => pc += skip(acc >= ins.k),
            BPF_RET_K => return ins.k,
            c => panic!("unexpected BPF code {c:#x}"),
        }
    }
}

#[test]
#[allow(clippy::unnecessary_cast)] // `Ioctl` is u64 on glibc, i32 on musl
fn filter_program_verdicts() {
    let pid = 4242u32;
    let p = compile(&entries(), pid).unwrap();
    assert!(p.len() < 4096, "{} instructions", p.len());
    let arch = ARCH.unwrap().0;
    let run = |nr: i64, args: [u64; 6]| run_filter(&p, nr, arch, args);
    let eperm = ret_errno(libc::EPERM);
    let enosys = ret_errno(libc::ENOSYS);
    let z = [0u64; 6];
    let me = pid as u64;
    let with = |i: usize, v: u64| {
        let mut a = [0u64; 6];
        a[i] = v;
        a
    };

    // What the workload needs, unconditionally.
    for nr in [
        libc::SYS_read,
        libc::SYS_close,
        libc::SYS_mmap,
        libc::SYS_mprotect,
        libc::SYS_munmap,
        libc::SYS_futex,
        libc::SYS_clock_gettime,
        libc::SYS_clock_nanosleep,
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigreturn,
        libc::SYS_sigaltstack,
        libc::SYS_exit_group,
        libc::SYS_getrandom,
        libc::SYS_statx,
        libc::SYS_newfstatat,
        libc::SYS_lseek,
        libc::SYS_brk,
    ] {
        assert_eq!(run(nr, z), RET_ALLOW, "syscall {nr}");
    }
    // Unlisted: EPERM. (A sample of what the deny list had, and of what it missed.)
    for nr in [
        libc::SYS_clone,
        libc::SYS_execve,
        libc::SYS_socket,
        libc::SYS_unlinkat,
        libc::SYS_io_uring_setup,
        libc::SYS_ptrace,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_settimeofday,
        libc::SYS_adjtimex,
        libc::SYS_fanotify_init,
        libc::SYS_fanotify_mark,
        libc::SYS_syslog,
        libc::SYS_shmget,
        libc::SYS_shmat,
        libc::SYS_semget,
        libc::SYS_msgget,
        libc::SYS_mq_open,
        libc::SYS_memfd_create,
        libc::SYS_ioprio_set,
        libc::SYS_setsid,
        libc::SYS_setpgid,
        libc::SYS_seccomp,
        libc::SYS_dup3,
        libc::SYS_pipe2,
    ] {
        assert_eq!(run(nr, z), eperm, "syscall {nr}");
    }
    for &(name, nr) in ENOSYS_CALLS {
        assert_eq!(run(nr, z), enosys, "{name}");
    }

    // openat: read-only allowed, any write or create flag denied.
    let rd = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
    assert_eq!(run(libc::SYS_openat, with(2, rd)), RET_ALLOW);
    assert_eq!(run(libc::SYS_openat, with(2, (libc::O_RDONLY | libc::O_DIRECTORY) as u64)), RET_ALLOW);
    for f in [
        libc::O_WRONLY,
        libc::O_RDWR,
        libc::O_CREAT,
        libc::O_TRUNC,
        libc::O_APPEND,
        libc::O_TMPFILE | libc::O_RDWR,
        libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
    ] {
        let f = f as u64;
        assert_eq!(run(libc::SYS_openat, with(2, f)), eperm, "{f:#o}");
        // The kernel reads flags as an int: high bits do not change the verdict.
        assert_eq!(run(libc::SYS_openat, with(2, f | 1 << 40)), eperm);
    }
    assert_eq!(run(libc::SYS_openat, with(2, rd | 1 << 40)), RET_ALLOW);

    // Writing: to any descriptor (only stdio, the offline protocol and own
    // memory files can be open for writing); memory files close-on-exec only.
    for fd in [1, 2, 3, 7] {
        assert_eq!(run(libc::SYS_write, with(0, fd)), RET_ALLOW, "fd {fd}");
    }
    assert_eq!(run(libc::SYS_memfd_create, with(1, libc::MFD_CLOEXEC as u64)), RET_ALLOW);
    for flags in [0, libc::MFD_ALLOW_SEALING as u64, libc::MFD_HUGETLB as u64 | libc::MFD_CLOEXEC as u64] {
        assert_eq!(run(libc::SYS_memfd_create, with(1, flags)), eperm, "memfd flags {flags:#x}");
    }

    // Signals: only to the process itself (0 would be its process group).
    assert_eq!(run(libc::SYS_kill, with(0, me)), RET_ALLOW);
    for target in [0, 1, me + 1, u64::MAX, (-(pid as i64)) as u64] {
        assert_eq!(run(libc::SYS_kill, with(0, target)), eperm, "kill {target}");
    }
    assert_eq!(run(libc::SYS_tgkill, [me, 77, 6, 0, 0, 0]), RET_ALLOW);
    assert_eq!(run(libc::SYS_tgkill, [me + 1, me, 6, 0, 0, 0]), eperm);
    assert_eq!(run(libc::SYS_tkill, with(0, me)), RET_ALLOW);
    assert_eq!(run(libc::SYS_tkill, with(0, 1)), eperm);
    assert_eq!(run(libc::SYS_rt_sigqueueinfo, with(0, 1)), eperm);

    // Scheduling and limits: 0 (the caller) or the own pid, nobody else.
    for nr in [
        libc::SYS_sched_setscheduler,
        libc::SYS_sched_setparam,
        libc::SYS_sched_setattr,
        libc::SYS_sched_setaffinity,
        libc::SYS_sched_getaffinity,
        libc::SYS_prlimit64,
    ] {
        assert_eq!(run(nr, with(0, 0)), RET_ALLOW, "{nr} on 0");
        assert_eq!(run(nr, with(0, me)), RET_ALLOW, "{nr} on itself");
        assert_eq!(run(nr, with(0, 1)), eperm, "{nr} on 1");
        assert_eq!(run(nr, with(0, me - 1)), eperm, "{nr} on another");
    }
    // Priorities: PRIO_PROCESS on itself; not its process group or user, which
    // include the engine.
    let prio = |which: u32, who: u64| [which as u64, who, 19, 0, 0, 0];
    assert_eq!(run(libc::SYS_setpriority, prio(libc::PRIO_PROCESS as u32, 0)), RET_ALLOW);
    assert_eq!(run(libc::SYS_setpriority, prio(libc::PRIO_PROCESS as u32, me)), RET_ALLOW);
    assert_eq!(run(libc::SYS_setpriority, prio(libc::PRIO_PROCESS as u32, 1)), eperm);
    assert_eq!(run(libc::SYS_setpriority, prio(libc::PRIO_PGRP as u32, 0)), eperm);
    assert_eq!(run(libc::SYS_setpriority, prio(libc::PRIO_USER as u32, 0)), eperm);

    // ioctl, fcntl, prctl: the listed operations only.
    for &cmd in IOCTLS {
        assert_eq!(run(libc::SYS_ioctl, [1, cmd as u64, 0, 0, 0, 0]), RET_ALLOW);
    }
    for cmd in [libc::TIOCSTI as u64, libc::TIOCLINUX as u64, libc::FIONBIO as u64, libc::TIOCSCTTY as u64] {
        assert_eq!(run(libc::SYS_ioctl, [0, cmd, 0, 0, 0, 0]), eperm, "ioctl {cmd:#x}");
    }
    for &cmd in FCNTLS {
        assert_eq!(run(libc::SYS_fcntl, [3, cmd as u64, 0, 0, 0, 0]), RET_ALLOW);
    }
    for cmd in
        [libc::F_DUPFD, libc::F_DUPFD_CLOEXEC, libc::F_SETOWN, 10 /* F_SETSIG */, libc::F_SETFL, libc::F_SETLK]
    {
        assert_eq!(run(libc::SYS_fcntl, [3, cmd as u64, 0, 0, 0, 0]), eperm, "fcntl {cmd}");
    }
    for &op in PRCTLS {
        assert_eq!(run(libc::SYS_prctl, with(0, op as u64)), RET_ALLOW);
    }
    for op in [
        libc::PR_SET_PDEATHSIG,
        libc::PR_SET_DUMPABLE,
        libc::PR_SET_SECCOMP,
        libc::PR_SET_PTRACER,
        libc::PR_SET_CHILD_SUBREAPER,
        libc::PR_SET_MM,
        libc::PR_SET_NAME,
        libc::PR_SET_NO_NEW_PRIVS,
    ] {
        assert_eq!(run(libc::SYS_prctl, [op as u64, 0, 0, 0, 0, 0]), eperm, "prctl {op}");
    }

    // Other ABIs: ENOSYS, whatever the number.
    assert_eq!(run_filter(&p, 20, 0x4000_0003, z), enosys); // i386 getpid
    assert_eq!(run_filter(&p, libc::SYS_read, 0x4000_0003, z), enosys);
    #[cfg(target_arch = "x86_64")]
    {
        assert_eq!(run(libc::SYS_getpid | X32_SYSCALL_BIT as i64, z), enosys);
        assert_eq!(run(libc::SYS_read | X32_SYSCALL_BIT as i64, z), enosys);
        assert_eq!(run(libc::SYS_fork, z), eperm);
        assert_eq!(run(libc::SYS_vfork, z), eperm);
        assert_eq!(run(libc::SYS_open, with(1, rd)), RET_ALLOW);
        assert_eq!(run(libc::SYS_open, with(1, libc::O_RDWR as u64)), eperm);
        assert_eq!(run(libc::SYS_creat, z), eperm);
    }
}

/// Every entry's verdict follows its condition: all-zero arguments pass
/// exactly the entries whose condition zero satisfies; every number the
/// list does not name fails.
#[test]
fn filter_program_follows_the_list() {
    let pid = 4242u32;
    let list = entries();
    let p = compile(&list, pid).unwrap();
    let arch = ARCH.unwrap().0;
    let z = [0u64; 6];
    let eperm = ret_errno(libc::EPERM);
    for e in &list {
        let zero_passes = match e.when {
            When::Always | When::OwnPidOrZero { .. } | When::NoBits { .. } => true,
            When::OwnPid { .. } => false,
            When::OwnProcess { kind, .. } => kind == 0,
            When::OneOf { values, .. } => values.contains(&0),
        };
        let verdict = run_filter(&p, e.nr, arch, z);
        assert_eq!(verdict == RET_ALLOW, zero_passes, "{} ({})", e.name, e.when);
        assert!(verdict == RET_ALLOW || verdict == eperm, "{}", e.name);
    }
    let listed: std::collections::HashSet<i64> = list.iter().map(|e| e.nr).collect();
    let enosys: Vec<i64> = ENOSYS_CALLS.iter().map(|c| c.1).collect();
    for nr in 0..1024 {
        if !listed.contains(&nr) && !enosys.contains(&nr) {
            assert_eq!(run_filter(&p, nr, arch, z), eperm, "syscall {nr}");
        }
    }
    // O_TMPFILE always comes with a write mode, so it is covered by WRITE_FLAGS.
    assert_ne!(WRITE_FLAGS & (libc::O_WRONLY | libc::O_RDWR) as u32, 0);
}

#[test]
fn allow_list_has_no_duplicates() {
    let mut nrs: Vec<i64> = entries().iter().map(|e| e.nr).collect();
    let n = nrs.len();
    nrs.sort();
    nrs.dedup();
    assert_eq!(nrs.len(), n);
    assert_eq!(ALLOWED.len(), n);
    for &(name, nr) in ENOSYS_CALLS {
        assert!(!nrs.contains(&nr), "{name} is both allowed and ENOSYS");
    }
}
