//! The Landlock layer: no filesystem writes anywhere, no TCP, no signals or
//! abstract UNIX sockets outside the sandbox. Best effort: a kernel without
//! Landlock is reported, not an error (the seccomp allow-list still holds).

use std::fmt;
use std::io;

use super::SandboxError;

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

/// The kernel's Landlock ABI version, or why it has none.
pub(super) fn abi() -> Result<u32, String> {
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
pub(super) fn apply() -> Result<LandlockStatus, SandboxError> {
    use landlock::{AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetStatus, Scope, ABI};
    let abi = match abi() {
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
