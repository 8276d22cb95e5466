//! The seccomp program: a short hand-written prologue, then the allow-list
//! compiled by `seccompiler` (rust-vmm's, Firecracker's filter compiler).
//!
//! The prologue does what seccompiler does not: a system call of another ABI
//! (i386 `int 0x80` on x86_64, or an x32 number) fails with `ENOSYS` instead
//! of killing the process (seccompiler's own architecture check, which then
//! never fires), and `clone3`/`openat2` fail with `ENOSYS` (glibc falls back
//! to `clone`, denied, and `openat`, checked) where everything else unlisted
//! fails with `EPERM`. It only loads the architecture and the number, so the
//! kernel's per-syscall cache still lets the unconditional entries through
//! without running the filter.

use std::collections::BTreeMap;
use std::io;

use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

use super::allow::{Allowed, When};
use super::SandboxError;

/// The native audit architecture, whether it has the x32 ABI, and
/// seccompiler's name for it.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub(super) const ARCH: Option<(u32, bool, TargetArch)> = Some((0xC000_003E, true, TargetArch::x86_64)); // AUDIT_ARCH_X86_64
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
pub(super) const ARCH: Option<(u32, bool, TargetArch)> = Some((0xC000_00B7, false, TargetArch::aarch64)); // AUDIT_ARCH_AARCH64
#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
pub(super) const ARCH: Option<(u32, bool, TargetArch)> = None;

/// The kernel's limit on a seccomp program's length.
const BPF_MAXINSNS: usize = 4096;

/// x32 system calls are native numbers with this bit set.
pub(super) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Calls that fail with `ENOSYS` rather than `EPERM`: their glibc fallbacks
/// are the calls the list checks.
pub(super) const ENOSYS_CALLS: &[(&str, i64)] = &[("clone3", libc::SYS_clone3), ("openat2", libc::SYS_openat2)];

// Classic BPF, as seccomp runs it (the prologue's instructions).
pub(super) const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
pub(super) const BPF_JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
pub(super) const BPF_JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
pub(super) const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K

#[cfg(test)]
pub(super) const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
pub(super) const fn ret_errno(errno: i32) -> u32 {
    0x0005_0000 | (errno as u32 & 0xffff) // SECCOMP_RET_ERRNO | errno
}

// struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

const fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt: 0, jf: 0, k }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The prologue: other ABIs and the `ENOSYS` calls. Falls through to the
/// allow-list with nothing assumed about the accumulator.
fn prologue(arch: u32, x32: bool) -> Vec<libc::sock_filter> {
    let enosys = ret_errno(libc::ENOSYS);
    let mut p = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JEQ_K, arch, 1, 0),
        stmt(BPF_RET_K, enosys), // another ABI (i386 int 0x80...)
        stmt(BPF_LD_W_ABS, OFF_NR),
    ];
    if x32 {
        p.push(jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1));
        p.push(stmt(BPF_RET_K, enosys));
    }
    for &(_, nr) in ENOSYS_CALLS {
        p.push(jump(BPF_JEQ_K, nr as u32, 0, 1));
        p.push(stmt(BPF_RET_K, enosys));
    }
    p
}

/// A condition on the low 32 bits of `args[arg]`.
fn cond(arg: u8, op: SeccompCmpOp, value: u32) -> Result<SeccompCondition, SandboxError> {
    Ok(SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value.into())?)
}

/// seccompiler's rules for one entry: alternatives (any may match), each a
/// conjunction of conditions. No rule at all means "always".
fn rules(when: When, pid: u32) -> Result<Vec<SeccompRule>, SandboxError> {
    use SeccompCmpOp::{Eq, MaskedEq};
    let one = |c: Vec<SeccompCondition>| SeccompRule::new(c).map_err(SandboxError::from);
    Ok(match when {
        When::Always => Vec::new(),
        When::OwnPid { arg } => vec![one(vec![cond(arg, Eq, pid)?])?],
        When::OwnPidOrZero { arg } => vec![one(vec![cond(arg, Eq, 0)?])?, one(vec![cond(arg, Eq, pid)?])?],
        When::OwnProcess { which, kind, who } => vec![
            one(vec![cond(which, Eq, kind)?, cond(who, Eq, 0)?])?,
            one(vec![cond(which, Eq, kind)?, cond(who, Eq, pid)?])?,
        ],
        When::NoBits { arg, mask } => vec![one(vec![cond(arg, MaskedEq(mask.into()), 0)?])?],
        When::OneOf { arg, values } => {
            values.iter().map(|&v| one(vec![cond(arg, Eq, v)?])).collect::<Result<_, _>>()?
        }
    })
}

/// The whole program for `entries`, with `pid` as the process's own.
pub(super) fn compile(entries: &[Allowed], pid: u32) -> Result<Vec<libc::sock_filter>, SandboxError> {
    let (arch, x32, target) = ARCH.ok_or(SandboxError::UnsupportedPlatform)?;
    let mut map = BTreeMap::new();
    for e in entries {
        map.insert(e.nr, rules(e.when, pid)?);
    }
    let filter = SeccompFilter::new(map, SeccompAction::Errno(libc::EPERM as u32), SeccompAction::Allow, target)?;
    let body: seccompiler::BpfProgram = filter.try_into()?;
    let mut program = prologue(arch, x32);
    program.extend(body.iter().map(|i| libc::sock_filter { code: i.code, jt: i.jt, jf: i.jf, k: i.k }));
    if program.len() > BPF_MAXINSNS {
        return Err(SandboxError::FilterBuild(seccompiler::BackendError::FilterTooLarge(program.len())));
    }
    Ok(program)
}

/// Installs `filter` on every thread of the process.
pub(super) fn install(filter: &[libc::sock_filter]) -> Result<(), SandboxError> {
    let prog =
        libc::sock_fprog { len: filter.len() as libc::c_ushort, filter: filter.as_ptr() as *mut libc::sock_filter };
    // TSYNC: every thread gets the filter. SPEC_ALLOW: keep the speculation
    // mitigations as they were; the patch already runs native code in this
    // process, so forcing them on (the kernel's `seccomp` mitigation mode) would
    // only cost DSP time. Kernels older than 4.17 do not know SPEC_ALLOW.
    // (seccompiler's own `apply_filter_all_threads` has no SPEC_ALLOW.)
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
    Err(SandboxError::Seccomp(io::Error::from_raw_os_error(libc::EINVAL)))
}
