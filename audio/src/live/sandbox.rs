//! The worker sandbox: what a `clavm __worker` process may still do once it
//! serves requests.
//!
//! A worker runs performer-written C, compiled by TinyCC into its own address
//! space, with all the power of native code. [`enter`] takes away what such code
//! has no business doing, for the rest of the process's life:
//!
//! 1. `PR_SET_NO_NEW_PRIVS`, so nothing can gain privileges (and so the two
//!    layers below may be installed without `CAP_SYS_ADMIN`).
//! 2. **Landlock** (best effort, when the kernel has it): every filesystem
//!    *write* right is handled and none is granted, so no file can be written,
//!    created, renamed, linked, truncated or deleted anywhere. Reading stays
//!    allowed everywhere (TinyCC reads headers and `libtcc1.a`). Where the
//!    kernel knows them, TCP bind/connect and signals or abstract UNIX sockets
//!    reaching outside the sandbox are denied too. A kernel without Landlock is
//!    reported ([`LandlockStatus::NotSupported`]), not an error.
//! 3. **seccomp-bpf** (x86_64 and aarch64): a filter, synchronised to every
//!    thread, under which the system calls in [`DENIED`] fail. They fail with
//!    `EPERM` (or `ENOSYS` for `clone3` and `openat2`, so that glibc falls back
//!    to `clone`/`openat`, which are checked); nothing is killed, so a patch
//!    that tries gets an error code and the worker keeps its crash reporting.
//!    Everything else stays allowed: read, read-only `open`/`openat`, `mmap`,
//!    `mprotect` (TinyCC makes its pages executable), futex, clocks, signals
//!    to the worker itself, write to inherited descriptors, `_exit`...
//!
//! The filter is a deny list, not an allow list: the worker's own needs (glibc,
//! Rust's std, TinyCC, the crash handler) are then never at risk of a missing
//! entry, while everything that reaches outside the process is listed:
//! processes, sockets, filesystem changes, other processes' memory and
//! signals, mounts and namespaces, identities, and the kernel interfaces that
//! bypass the rest (`io_uring` performs opens and connects that seccomp never
//! sees; `open_by_handle_at` opens files without a path). System calls of the
//! other ABIs of the machine (i386 `int 0x80` on x86_64, the x32 numbers) all
//! fail with `ENOSYS`, since the list is written in native numbers.
//!
//! `enter` must be called by a single-threaded process: Landlock restricts the
//! calling thread only (kernels before 7.0 cannot do more); the seccomp filter
//! covers every thread. Once it has run, no thread can be created (`clone` is
//! denied), nor any process.
//!
//! Not covered, on purpose or as harmless: descriptors the worker inherited
//! (the shared memory, stdout, stderr) stay writable; anonymous memory files
//! (`memfd_create`), System V IPC and POSIX message queues can still be
//! created. Other processes' memory is out of reach through `/proc/PID/mem`
//! too where Landlock is enforced (it denies ptrace access outside the sandbox).
//!
//! On the development machine (Linux 6.18, Landlock ABI 7, securityfs not
//! mounted) both layers are enforced: seccomp on, Landlock fully enforced; the
//! test `reports_what_is_enforced` prints what a machine enforces.

use std::fmt;
use std::io;

/// How much of the Landlock ruleset the kernel enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LandlockStatus {
    /// Everything requested: the filesystem write rights (ABI 3), TCP
    /// bind/connect (ABI 4) and the signal and abstract-socket scopes (ABI 6).
    FullyEnforced {
        /// The kernel's Landlock ABI version.
        abi: u32,
    },
    /// What the kernel's older Landlock knows is enforced: ABI 1 denies writing,
    /// creating and removing files; ABI 2 adds renames and links across
    /// directories ("refer"); ABI 3 adds truncation; ABI 4 TCP; ABI 6 the scopes.
    PartiallyEnforced {
        /// The kernel's Landlock ABI version.
        abi: u32,
    },
    /// The kernel has no Landlock, or it is not enabled; the reason says which.
    NotSupported(String),
}

impl fmt::Display for LandlockStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LandlockStatus::FullyEnforced { abi } => write!(f, "fully enforced (ABI {abi})"),
            LandlockStatus::PartiallyEnforced { abi } => {
                write!(f, "partially enforced (ABI {abi})")
            }
            LandlockStatus::NotSupported(why) => write!(f, "not supported: {why}"),
        }
    }
}

/// What the sandbox enforced (for the worker to report at start-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxReport {
    /// `PR_SET_NO_NEW_PRIVS` is set (always, once `enter` succeeded).
    pub no_new_privs: bool,
    /// The seccomp filter is installed on every thread (always, once `enter` succeeded).
    pub seccomp: bool,
    /// How much of the Landlock ruleset the kernel enforces.
    pub landlock: LandlockStatus,
    /// How many system calls the filter denies, conditionally or not (see [`DENIED`]).
    pub denied_syscalls: usize,
    /// Threads in the process when `enter` ran (1 as it should be; `None` if
    /// `/proc` could not tell). Landlock restricts only the calling thread.
    pub threads: Option<usize>,
}

impl fmt::Display for SandboxReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seccomp {} ({} system calls denied), Landlock {}, no_new_privs {}",
            if self.seccomp { "on" } else { "off" },
            self.denied_syscalls,
            self.landlock,
            if self.no_new_privs { "on" } else { "off" },
        )?;
        match self.threads {
            Some(1) | None => Ok(()),
            Some(n) => write!(f, " ({n} threads: Landlock covers only the calling one)"),
        }
    }
}

/// Why the sandbox could not be entered. The worker should not serve requests then.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the worker sandbox needs Linux on x86_64 or aarch64")]
    UnsupportedPlatform,
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(io::Error),
    #[error("cannot apply the Landlock ruleset: {0}")]
    Landlock(#[from] landlock::RulesetError),
    #[error("cannot install the seccomp filter: {0}")]
    Seccomp(io::Error),
    #[error("cannot install the seccomp filter on every thread (thread {0} refused)")]
    SeccompThreadSync(i64),
}

/// Called once by a worker process after its start-up (shared memory mapped,
/// TinyCC warmed up), before it serves any request. Irreversible.
pub fn enter() -> Result<SandboxReport, SandboxError> {
    if ARCH.is_none() {
        return Err(SandboxError::UnsupportedPlatform);
    }
    let threads = std::fs::read_dir("/proc/self/task").ok().map(|d| d.count());
    set_no_new_privs()?;
    let landlock = apply_landlock()?;
    // SAFETY: plain syscall without pointers.
    let pid = unsafe { libc::getpid() } as u32;
    let rules = rules(pid);
    let filter = compile_filter(&rules);
    install_filter(&filter)?;
    Ok(SandboxReport { no_new_privs: true, seccomp: true, landlock, denied_syscalls: rules.len(), threads })
}

fn set_no_new_privs() -> Result<(), SandboxError> {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if r != 0 {
        return Err(SandboxError::NoNewPrivs(io::Error::last_os_error()));
    }
    Ok(())
}

/// The kernel's Landlock ABI version, or why it has none.
fn landlock_abi() -> Result<u32, String> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute and this flag the call only returns the version.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if v > 0 {
        return Ok(v as u32);
    }
    let err = io::Error::last_os_error();
    Err(match err.raw_os_error() {
        Some(libc::ENOSYS) => "the kernel is built without Landlock (ENOSYS)".to_string(),
        Some(libc::EOPNOTSUPP) => "Landlock is built in but not enabled at boot (EOPNOTSUPP; see lsm=)".to_string(),
        _ => format!("Landlock version query failed: {err}"),
    })
}

/// Denies every filesystem write right (and, where known, TCP and outside
/// signals) to the calling thread and its future children. Best effort.
fn apply_landlock() -> Result<LandlockStatus, SandboxError> {
    use landlock::{AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetStatus, Scope, ABI};
    let abi = match landlock_abi() {
        Ok(abi) => abi,
        Err(why) => return Ok(LandlockStatus::NotSupported(why)),
    };
    // ABI 3's write set: write file, remove dir/file, make char/dir/reg/sock/fifo/
    // block/sym, refer, truncate. (ABI 5's IoctlDev is left out: not a write.)
    let status = Ruleset::default()
        .handle_access(AccessFs::from_write(ABI::V3))?
        .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)?
        .scope(Scope::Signal | Scope::AbstractUnixSocket)?
        .create()?
        .restrict_self()?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => LandlockStatus::FullyEnforced { abi },
        RulesetStatus::PartiallyEnforced => LandlockStatus::PartiallyEnforced { abi },
        RulesetStatus::NotEnforced => {
            LandlockStatus::NotSupported(format!("the kernel reports Landlock ABI {abi} but enforced nothing"))
        }
    })
}

// ---------------------------------------------------------------------------
// The seccomp filter.

/// The system calls the filter denies, by name, and how: `"EPERM"`,
/// `"ENOSYS"`, or a condition under which they fail with `EPERM`. For this
/// machine's architecture.
pub static DENIED: std::sync::LazyLock<Vec<(&'static str, &'static str)>> = std::sync::LazyLock::new(|| {
    rules(0)
        .iter()
        .map(|e| {
            let how = match e.rule {
                Rule::Fail(libc::ENOSYS) => "ENOSYS",
                Rule::Fail(_) => "EPERM",
                Rule::FailIfAnyBit { .. } => "EPERM if opened for writing or creating",
                Rule::FailIfOneOf { .. } => "EPERM for TIOCSTI and TIOCLINUX",
                Rule::FailUnless { .. } => "EPERM unless aimed at the worker itself",
            };
            (e.name, how)
        })
        .collect()
});

/// What the filter does with one system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Always fails with this errno.
    Fail(i32),
    /// Fails with EPERM when `args[arg] & mask != 0` (low 32 bits).
    FailIfAnyBit { arg: usize, mask: u32 },
    /// Fails with EPERM when `args[arg]` (low 32 bits) is one of `values`.
    FailIfOneOf { arg: usize, values: &'static [u32] },
    /// Fails with EPERM unless `args[arg]` (low 32 bits) is `value`.
    FailUnless { arg: usize, value: u32 },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    name: &'static str,
    nr: i64,
    rule: Rule,
}

/// Syscall numbers: libc's, plus the ones this libc does not name yet (the
/// numbers from 424 on are the same on every architecture).
#[allow(non_upper_case_globals, unused_imports)]
mod sys {
    pub use libc::*;
    pub const SYS_fchmodat2: c_long = 452;
    pub const SYS_setxattrat: c_long = 463;
    pub const SYS_removexattrat: c_long = 466;
    pub const SYS_open_tree_attr: c_long = 467;
    #[cfg(target_arch = "aarch64")]
    pub const SYS_renameat: c_long = 38;
}

/// Flags that make `open`/`openat` write or create.
const WRITE_FLAGS: u32 = (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) as u32;

/// `ioctl`s that push input into a terminal (and so into the shell that owns it).
const TTY_INJECT: &[u32] = &[libc::TIOCSTI as u32, libc::TIOCLINUX as u32];

macro_rules! push {
    ($v:ident, $rule:expr; $($name:ident),+ $(,)?) => {
        $( $v.push(Entry {
            name: stringify!($name).trim_start_matches("SYS_"),
            nr: sys::$name as i64,
            rule: $rule,
        }); )+
    };
}

/// The deny list for this architecture; `pid` is the worker's own (signals to
/// it stay allowed so that `abort` and `raise` work).
fn rules(pid: u32) -> Vec<Entry> {
    let mut v = Vec::with_capacity(128);
    let eperm = Rule::Fail(libc::EPERM);
    let enosys = Rule::Fail(libc::ENOSYS);
    let self_only = |arg| Rule::FailUnless { arg, value: pid };

    // New programs and processes (and threads: the worker is single-threaded).
    push!(v, eperm; SYS_execve, SYS_execveat, SYS_clone);
    push!(v, enosys; SYS_clone3);
    // Networking (sockets cannot even be created).
    push!(v, eperm; SYS_socket, SYS_socketpair, SYS_connect, SYS_bind, SYS_listen,
        SYS_accept, SYS_accept4, SYS_sendto, SYS_sendmsg, SYS_sendmmsg);
    // Opening for writing or creating.
    push!(v, Rule::FailIfAnyBit { arg: 2, mask: WRITE_FLAGS }; SYS_openat);
    push!(v, enosys; SYS_openat2);
    push!(v, eperm; SYS_open_by_handle_at);
    // Changing the filesystem.
    push!(v, eperm; SYS_unlinkat, SYS_renameat, SYS_renameat2, SYS_mkdirat, SYS_linkat,
        SYS_symlinkat, SYS_mknodat, SYS_truncate, SYS_ftruncate, SYS_fchmod, SYS_fchmodat,
        SYS_fchmodat2, SYS_fchown, SYS_fchownat, SYS_utimensat, SYS_setxattr, SYS_lsetxattr,
        SYS_fsetxattr, SYS_setxattrat, SYS_removexattr, SYS_lremovexattr, SYS_fremovexattr,
        SYS_removexattrat);
    // Other processes: their memory, their descriptors, signals.
    push!(v, eperm; SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev, SYS_pidfd_open,
        SYS_pidfd_getfd, SYS_pidfd_send_signal);
    push!(v, self_only(0); SYS_kill, SYS_tkill, SYS_tgkill, SYS_rt_sigqueueinfo,
        SYS_rt_tgsigqueueinfo);
    push!(v, Rule::FailIfOneOf { arg: 1, values: TTY_INJECT }; SYS_ioctl);
    // Mounts and namespaces.
    push!(v, eperm; SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot, SYS_fsopen,
        SYS_fsconfig, SYS_fsmount, SYS_fspick, SYS_move_mount, SYS_open_tree,
        SYS_open_tree_attr, SYS_mount_setattr, SYS_unshare, SYS_setns);
    // Identities.
    push!(v, eperm; SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setresuid,
        SYS_setresgid, SYS_setgroups, SYS_setfsuid, SYS_setfsgid);
    // Kernel interfaces that bypass this filter, or that no worker needs.
    push!(v, eperm; SYS_io_uring_setup, SYS_io_uring_enter, SYS_io_uring_register, SYS_bpf,
        SYS_perf_event_open, SYS_userfaultfd, SYS_keyctl, SYS_add_key, SYS_request_key,
        SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_kexec_load,
        SYS_kexec_file_load, SYS_reboot, SYS_swapon, SYS_swapoff, SYS_acct, SYS_sethostname,
        SYS_setdomainname);

    // x86_64's legacy calls (aarch64 has only the *at forms).
    #[cfg(target_arch = "x86_64")]
    {
        push!(v, eperm; SYS_fork, SYS_vfork);
        push!(v, Rule::FailIfAnyBit { arg: 1, mask: WRITE_FLAGS }; SYS_open);
        push!(v, eperm; SYS_creat, SYS_unlink, SYS_rename, SYS_rmdir, SYS_mkdir, SYS_link,
            SYS_symlink, SYS_mknod, SYS_chmod, SYS_chown, SYS_lchown, SYS_utime, SYS_utimes,
            SYS_futimesat);
    }
    v
}

/// The native audit architecture and whether it has the x32 ABI.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
const ARCH: Option<(u32, bool)> = Some((0xC000_003E, true)); // AUDIT_ARCH_X86_64
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
const ARCH: Option<(u32, bool)> = Some((0xC000_00B7, false)); // AUDIT_ARCH_AARCH64
#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
const ARCH: Option<(u32, bool)> = None;

/// x32 system calls are native numbers with this bit set.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// Classic BPF, as seccomp runs it.
const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
const BPF_JSET_K: u16 = 0x05 | 0x40; // BPF_JMP | BPF_JSET | BPF_K
const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K

const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
const fn ret_errno(errno: i32) -> u32 {
    0x0005_0000 | (errno as u32 & 0xffff) // SECCOMP_RET_ERRNO | errno
}

// struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// The low 32 bits of `args[i]`.
const fn off_arg_low(i: usize) -> u32 {
    16 + 8 * i as u32 + if cfg!(target_endian = "big") { 4 } else { 0 }
}

const fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt: 0, jf: 0, k }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter program: a check of the ABI, then one block per entry (a
/// comparison of the number, then the verdict), then allow.
fn compile_filter(rules: &[Entry]) -> Vec<libc::sock_filter> {
    let (arch, x32) = ARCH.unwrap_or((0, false));
    let mut p = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JEQ_K, arch, 1, 0),
        stmt(BPF_RET_K, ret_errno(libc::ENOSYS)), // another ABI (i386 int 0x80...)
        stmt(BPF_LD_W_ABS, OFF_NR),
    ];
    if x32 {
        p.push(jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1));
        p.push(stmt(BPF_RET_K, ret_errno(libc::ENOSYS)));
    }
    let eperm = ret_errno(libc::EPERM);
    for e in rules {
        let nr = e.nr as u32;
        // Each block starts with the number still in the accumulator, and either
        // skips itself entirely (another number) or ends in a verdict.
        let block: Vec<libc::sock_filter> = match e.rule {
            Rule::Fail(errno) => vec![stmt(BPF_RET_K, ret_errno(errno))],
            Rule::FailIfAnyBit { arg, mask } => vec![
                stmt(BPF_LD_W_ABS, off_arg_low(arg)),
                jump(BPF_JSET_K, mask, 0, 1),
                stmt(BPF_RET_K, eperm),
                stmt(BPF_RET_K, RET_ALLOW),
            ],
            Rule::FailIfOneOf { arg, values } => {
                let n = values.len();
                let mut b = vec![stmt(BPF_LD_W_ABS, off_arg_low(arg))];
                for (i, &value) in values.iter().enumerate() {
                    // On a match, jump over the remaining comparisons and the allow.
                    b.push(jump(BPF_JEQ_K, value, (n - i) as u8, 0));
                }
                b.push(stmt(BPF_RET_K, RET_ALLOW));
                b.push(stmt(BPF_RET_K, eperm));
                b
            }
            Rule::FailUnless { arg, value } => vec![
                stmt(BPF_LD_W_ABS, off_arg_low(arg)),
                jump(BPF_JEQ_K, value, 0, 1),
                stmt(BPF_RET_K, RET_ALLOW),
                stmt(BPF_RET_K, eperm),
            ],
        };
        p.push(jump(BPF_JEQ_K, nr, 0, block.len() as u8));
        p.extend(block);
    }
    p.push(stmt(BPF_RET_K, RET_ALLOW));
    p
}

fn install_filter(filter: &[libc::sock_filter]) -> Result<(), SandboxError> {
    let prog =
        libc::sock_fprog { len: filter.len() as libc::c_ushort, filter: filter.as_ptr() as *mut libc::sock_filter };
    // TSYNC: every thread gets the filter. SPEC_ALLOW: keep the speculation
    // mitigations as they were; the patch already runs native code in this
    // process, so forcing them on (the kernel's `seccomp` mitigation mode) would
    // only cost DSP time. Kernels older than 4.17 do not know SPEC_ALLOW.
    let tsync = libc::SECCOMP_FILTER_FLAG_TSYNC as libc::c_ulong;
    for flags in [tsync | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as libc::c_ulong, tsync] {
        // SAFETY: `prog` points into `filter`, which outlives the call; the kernel copies it.
        let r = unsafe {
            libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, flags, &prog as *const libc::sock_fprog)
        };
        match r {
            0 => return Ok(()),
            r if r > 0 => return Err(SandboxError::SeccompThreadSync(r)),
            _ => {
                let err = io::Error::last_os_error();
                if err.raw_os_error() != Some(libc::EINVAL) || flags == tsync {
                    return Err(SandboxError::Seccomp(err));
                }
            }
        }
    }
    unreachable!("the last attempt returns")
}

#[cfg(test)]
mod tests {
    //! The sandbox is irreversible, so every test that enters it does so in a
    //! child: the test re-runs this test binary for itself alone, with
    //! `CLAVM_SANDBOX_CHILD` naming it; the child sees the variable, enters the
    //! sandbox, tries its case and prints [`DONE`] if every check held. The
    //! parent checks the exit status and the marker, and what the child left
    //! (or did not leave) in a scratch folder.

    use super::*;
    use std::ffi::CString;
    use std::path::{Path, PathBuf};
    use std::process::Command;

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

    /// In the parent: runs this module's test `case` in a child, returns its stdout.
    fn run_child(case: &str, dir: &Path) -> String {
        let module = module_path!();
        let module = module.split_once("::").map_or(module, |(_, rest)| rest);
        let name = format!("{module}::{case}");
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &name, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, case)
            .env(DIR_ENV, dir)
            .output()
            .expect("re-run the test binary");
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

    // --- The filter program, checked without installing it. ---

    /// Runs a seccomp program the way the kernel does.
    fn run_filter(p: &[libc::sock_filter], nr: i64, arch: u32, args: [u64; 6]) -> u32 {
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
                BPF_JEQ_K => pc += skip(acc == ins.k),
                BPF_JGE_K => pc += skip(acc >= ins.k),
                BPF_JSET_K => pc += skip(acc & ins.k != 0),
                BPF_RET_K => return ins.k,
                c => panic!("unexpected BPF code {c:#x}"),
            }
        }
    }

    #[test]
    #[allow(clippy::unnecessary_cast)] // `Ioctl` is u64 on glibc, i32 on musl
    fn filter_program_verdicts() {
        let pid = 4242u32;
        let p = compile_filter(&rules(pid));
        assert!(p.len() < 4096, "{} instructions", p.len());
        let arch = ARCH.unwrap().0;
        let run = |nr: i64, args: [u64; 6]| run_filter(&p, nr, arch, args);
        let eperm = ret_errno(libc::EPERM);
        let enosys = ret_errno(libc::ENOSYS);
        let z = [0u64; 6];

        // What the worker needs.
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_close,
            libc::SYS_mmap,
            libc::SYS_mprotect,
            libc::SYS_munmap,
            libc::SYS_futex,
            libc::SYS_clock_gettime,
            libc::SYS_clock_nanosleep,
            libc::SYS_rt_sigaction,
            libc::SYS_rt_sigreturn,
            libc::SYS_exit_group,
            libc::SYS_getrandom,
            libc::SYS_prctl,
            libc::SYS_statx,
            libc::SYS_newfstatat,
        ] {
            assert_eq!(run(nr, z), RET_ALLOW, "syscall {nr}");
        }
        // openat: read-only allowed, any write or create flag denied.
        let rd = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
        assert_eq!(run(libc::SYS_openat, [0, 0, rd, 0, 0, 0]), RET_ALLOW);
        let dir = (libc::O_RDONLY | libc::O_DIRECTORY) as u64;
        assert_eq!(run(libc::SYS_openat, [0, 0, dir, 0, 0, 0]), RET_ALLOW);
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
            assert_eq!(run(libc::SYS_openat, [0, 0, f, 0, 0, 0]), eperm, "{f:#o}");
            // The kernel reads flags as an int: high bits do not change the verdict.
            assert_eq!(run(libc::SYS_openat, [0, 0, f | 1 << 40, 0, 0, 0]), eperm);
        }
        assert_eq!(run(libc::SYS_openat, [0, 0, rd | 1 << 40, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(libc::SYS_openat2, z), enosys);
        assert_eq!(run(libc::SYS_clone3, z), enosys);
        assert_eq!(run(libc::SYS_clone, z), eperm);
        assert_eq!(run(libc::SYS_execve, z), eperm);
        assert_eq!(run(libc::SYS_socket, z), eperm);
        assert_eq!(run(libc::SYS_unlinkat, z), eperm);
        assert_eq!(run(libc::SYS_io_uring_setup, z), eperm);
        // Signals: only to the worker itself.
        let me = pid as u64;
        assert_eq!(run(libc::SYS_kill, [me, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(libc::SYS_kill, [1, 0, 0, 0, 0, 0]), eperm);
        assert_eq!(run(libc::SYS_kill, [0, 0, 0, 0, 0, 0]), eperm);
        assert_eq!(run(libc::SYS_kill, [u64::MAX, 0, 0, 0, 0, 0]), eperm);
        assert_eq!(run(libc::SYS_tgkill, [me, 77, 6, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(libc::SYS_tgkill, [me + 1, me, 6, 0, 0, 0]), eperm);
        // Terminal injection.
        let sti = libc::TIOCSTI as u64;
        assert_eq!(run(libc::SYS_ioctl, [0, sti, 0, 0, 0, 0]), eperm);
        assert_eq!(run(libc::SYS_ioctl, [0, libc::TIOCLINUX as u64, 0, 0, 0, 0]), eperm);
        assert_eq!(run(libc::SYS_ioctl, [0, libc::FIONREAD as u64, 0, 0, 0, 0]), RET_ALLOW);
        // Every listed call is denied with all-zero arguments (self_only: pid 0 is not ours).
        for e in rules(pid) {
            let verdict = run(e.nr, z);
            let allowed_with_zeros =
                matches!(e.rule, Rule::FailIfAnyBit { .. }) || matches!(e.rule, Rule::FailIfOneOf { .. });
            assert_eq!(verdict == RET_ALLOW, allowed_with_zeros, "{}", e.name);
        }
        // Other ABIs.
        assert_eq!(run_filter(&p, 20, 0x4000_0003, z), enosys); // i386 getpid
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(run(libc::SYS_getpid | X32_SYSCALL_BIT as i64, z), enosys);
            assert_eq!(run(libc::SYS_fork, z), eperm);
            assert_eq!(run(libc::SYS_vfork, z), eperm);
            assert_eq!(run(libc::SYS_open, [0, rd, 0, 0, 0, 0]), RET_ALLOW);
            assert_eq!(run(libc::SYS_open, [0, libc::O_RDWR as u64, 0, 0, 0, 0]), eperm);
            assert_eq!(run(libc::SYS_creat, z), eperm);
        }
    }

    #[test]
    fn deny_list_has_no_duplicates() {
        let mut nrs: Vec<i64> = rules(1).iter().map(|e| e.nr).collect();
        let n = nrs.len();
        nrs.sort();
        nrs.dedup();
        assert_eq!(nrs.len(), n);
        assert_eq!(DENIED.len(), n);
    }

    // --- Live, in children. ---

    #[test]
    fn reports_what_is_enforced() {
        const CASE: &str = "reports_what_is_enforced";
        if child(CASE).is_some() {
            let report = enter_or_die();
            assert!(report.seccomp && report.no_new_privs);
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string());
            assert_eq!(field("NoNewPrivs:").as_deref(), Some("1"));
            assert_eq!(field("Seccomp:").as_deref(), Some("2")); // filter mode
            println!("threads at entry: {:?}", report.threads);
            println!("LANDLOCK: {}", report.landlock);
            match landlock_abi() {
                Ok(abi) if abi >= 6 => {
                    assert_eq!(report.landlock, LandlockStatus::FullyEnforced { abi })
                }
                Ok(abi) => {
                    assert_eq!(report.landlock, LandlockStatus::PartiallyEnforced { abi })
                }
                Err(_) => assert!(matches!(report.landlock, LandlockStatus::NotSupported(_))),
            }
            done();
            return;
        }
        let dir = Scratch::new(CASE);
        let out = run_child(CASE, &dir.0);
        let line = out.lines().find(|l| l.starts_with("LANDLOCK:")).unwrap();
        eprintln!("on this machine: seccomp on, {line}");
    }

    #[test]
    fn processes_cannot_be_started() {
        const CASE: &str = "processes_cannot_be_started";
        if let Some(dir) = child(CASE) {
            enter_or_die();
            assert!(Command::new("/bin/true").status().is_err());
            assert!(Command::new("/bin/sh").arg("-c").arg("true").output().is_err());
            let cmd = CString::new(format!("touch {}", dir.join("X").display())).unwrap();
            // SAFETY: a NUL-terminated command line.
            let r = unsafe { libc::system(cmd.as_ptr()) };
            println!("system() returned {r}");
            assert!(!dir.join("X").exists());
            // SAFETY: fork in a test child; a child, if one were made, exits at once.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                unsafe { libc::_exit(0) };
            }
            assert_eq!(pid, -1);
            assert_eq!(errno(), libc::EPERM);
            assert!(std::thread::Builder::new().spawn(|| ()).is_err());
            done();
            return;
        }
        let dir = Scratch::new(CASE);
        run_child(CASE, &dir.0);
        assert!(!dir.0.join("X").exists());
    }

    #[test]
    fn files_cannot_be_changed() {
        const CASE: &str = "files_cannot_be_changed";
        if let Some(dir) = child(CASE) {
            enter_or_die();
            let existing = dir.join("existing");
            let is_eperm = |r: io::Result<()>| {
                let e = r.expect_err("must fail");
                assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
            };
            is_eperm(std::fs::File::create(dir.join("new")).map(drop));
            is_eperm(std::fs::write(&existing, b"overwritten"));
            is_eperm(std::fs::OpenOptions::new().append(true).open(&existing).map(drop));
            is_eperm(std::fs::remove_file(&existing));
            is_eperm(std::fs::rename(&existing, dir.join("renamed")));
            is_eperm(std::fs::hard_link(&existing, dir.join("linked")));
            is_eperm(std::os::unix::fs::symlink(&existing, dir.join("sym")));
            is_eperm(std::fs::create_dir(dir.join("sub")));
            is_eperm(std::fs::remove_dir(dir.join("subdir")));
            use std::os::unix::fs::PermissionsExt;
            let perms = std::fs::Permissions::from_mode(0o777);
            is_eperm(std::fs::set_permissions(&existing, perms));
            let f = std::fs::File::open(&existing).unwrap();
            is_eperm(f.set_len(0));
            assert_eq!(std::fs::read_to_string(&existing).unwrap(), "precious");
            done();
            return;
        }
        let dir = Scratch::new(CASE);
        std::fs::write(dir.0.join("existing"), "precious").unwrap();
        std::fs::create_dir(dir.0.join("subdir")).unwrap();
        run_child(CASE, &dir.0);
        let mut names: Vec<_> =
            std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["existing", "subdir"]);
        let content = std::fs::read_to_string(dir.0.join("existing")).unwrap();
        assert_eq!(content, "precious");
    }

    #[test]
    fn network_is_unreachable() {
        const CASE: &str = "network_is_unreachable";
        if child(CASE).is_some() {
            enter_or_die();
            let e = std::net::TcpStream::connect("127.0.0.1:9").unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
            assert!(std::net::TcpListener::bind("127.0.0.1:0").is_err());
            assert!(std::net::UdpSocket::bind("127.0.0.1:0").is_err());
            assert!(std::os::unix::net::UnixStream::pair().is_err());
            done();
            return;
        }
        let dir = Scratch::new(CASE);
        run_child(CASE, &dir.0);
    }

    #[test]
    fn the_worker_still_works() {
        const CASE: &str = "the_worker_still_works";
        if let Some(dir) = child(CASE) {
            enter_or_die();
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
            assert!(t.elapsed() >= std::time::Duration::from_millis(1));
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
        run_child(CASE, &dir.0);
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
        let module = module_path!();
        let module = module.split_once("::").map_or(module, |(_, rest)| rest);
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &format!("{module}::{CASE}"), "--nocapture"])
            .env(CHILD_ENV, CASE)
            .env(DIR_ENV, &dir.0)
            .output()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(DONE), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{:?}", out.status);
    }

    /// Every denied call, made directly with arguments that would be harmless
    /// (all ones: bad pointers, descriptors, flags) if it were not denied.
    #[test]
    fn every_denied_call_fails() {
        const CASE: &str = "every_denied_call_fails";
        if let Some(dir) = child(CASE) {
            enter_or_die();
            let m = u64::MAX as libc::c_long;
            for e in rules(0) {
                // These would make a process if the filter let them through.
                if matches!(e.name, "fork" | "vfork" | "clone") {
                    continue;
                }
                let expected = match e.rule {
                    Rule::Fail(errno) => errno,
                    _ => libc::EPERM, // all ones: write flags, TIOCSTI no, not our pid
                };
                if e.name == "ioctl" {
                    continue; // all ones is not TIOCSTI; checked below
                }
                // SAFETY: the call is denied before the kernel looks at its arguments,
                // and they would be rejected anyway.
                let r = unsafe { libc::syscall(e.nr as libc::c_long, m, m, m, m, m, m) };
                assert_eq!((r, errno()), (-1, expected), "{}", e.name);
            }
            // SAFETY: TIOCSTI is denied before the (bad) pointer is read.
            let r = unsafe { libc::ioctl(0, libc::TIOCSTI, std::ptr::null::<u8>()) };
            assert_eq!((r, errno()), (-1, libc::EPERM));
            // Opening: read-only works, every write or create flag fails.
            let path = CString::new(dir.join("input").into_os_string().into_encoded_bytes()).unwrap();
            for flags in [
                libc::O_WRONLY,
                libc::O_RDWR,
                libc::O_CREAT | libc::O_RDONLY,
                libc::O_TRUNC,
                libc::O_APPEND,
                libc::O_TMPFILE | libc::O_RDWR,
            ] {
                // SAFETY: a valid path; the call is denied.
                let r = unsafe { libc::openat(libc::AT_FDCWD, path.as_ptr(), flags, 0o600) };
                assert_eq!((r, errno()), (-1, libc::EPERM), "flags {flags:#o}");
                #[cfg(target_arch = "x86_64")]
                {
                    let r = unsafe { libc::syscall(libc::SYS_open, path.as_ptr(), flags, 0o600) };
                    assert_eq!((r, errno()), (-1, libc::EPERM), "open flags {flags:#o}");
                }
            }
            // SAFETY: a valid path, read-only.
            let fd = unsafe { libc::openat(libc::AT_FDCWD, path.as_ptr(), libc::O_RDONLY) };
            assert!(fd >= 0);
            unsafe { libc::close(fd) };
            // The i386 ABI (int 0x80) is cut off entirely.
            #[cfg(target_arch = "x86_64")]
            {
                let r: i64;
                // SAFETY: i386 getpid (20) through int 0x80; it takes no arguments.
                unsafe {
                    std::arch::asm!("int 0x80", inlateout("rax") 20i64 => r,
                        out("r8") _, out("r9") _, out("r10") _, out("r11") _,
                        options(nostack));
                }
                assert_eq!(r, -(libc::ENOSYS as i64));
            }
            done();
            return;
        }
        let dir = Scratch::new(CASE);
        std::fs::write(dir.0.join("input"), "some input").unwrap();
        run_child(CASE, &dir.0);
        let mut names: Vec<_> =
            std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["input"]);
    }

    /// Landlock alone (no seccomp) denies writes, with its own EACCES.
    #[test]
    fn landlock_alone_denies_writes() {
        const CASE: &str = "landlock_alone_denies_writes";
        if let Some(dir) = child(CASE) {
            set_no_new_privs().unwrap();
            let status = apply_landlock().unwrap();
            println!("landlock alone: {status}");
            if let LandlockStatus::NotSupported(_) = status {
                println!("(nothing to check without Landlock)");
                done();
                return;
            }
            let existing = dir.join("existing");
            let denied = |r: io::Result<()>| {
                let e = r.expect_err("must fail");
                let code = e.raw_os_error();
                assert!(code == Some(libc::EACCES) || code == Some(libc::EXDEV), "{e}");
            };
            denied(std::fs::File::create(dir.join("new")).map(drop));
            denied(std::fs::write(&existing, b"overwritten"));
            denied(std::fs::remove_file(&existing));
            denied(std::fs::rename(&existing, dir.join("renamed")));
            denied(std::fs::create_dir(dir.join("sub")));
            denied(std::fs::hard_link(&existing, dir.join("linked")));
            // Truncation needs ABI 3: open read-only works, truncating does not.
            if landlock_abi().unwrap() >= 3 {
                let f = std::fs::File::open(&existing).unwrap();
                assert!(f.set_len(0).is_err());
                // SAFETY: a valid path; O_TRUNC is the truncate right.
                let p = CString::new(existing.clone().into_os_string().into_encoded_bytes()).unwrap();
                let r = unsafe { libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_TRUNC) };
                assert_eq!((r, errno()), (-1, libc::EACCES));
            }
            // Other processes' memory is out of reach (Landlock's ptrace restriction).
            // SAFETY: getppid is plain.
            let parent_mem = format!("/proc/{}/mem", unsafe { libc::getppid() });
            let e = std::fs::File::open(&parent_mem).expect_err("the parent's memory");
            println!("open {parent_mem}: {e}");
            // Reading is untouched, and so are processes (seccomp's job).
            assert_eq!(std::fs::read_to_string(&existing).unwrap(), "precious");
            assert!(Command::new("/bin/true").status().unwrap().success());
            done();
            return;
        }
        let dir = Scratch::new(CASE);
        std::fs::write(dir.0.join("existing"), "precious").unwrap();
        run_child(CASE, &dir.0);
        let names: Vec<_> =
            std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names, ["existing"]);
        let content = std::fs::read_to_string(dir.0.join("existing")).unwrap();
        assert_eq!(content, "precious");
    }
}
