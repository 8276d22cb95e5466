//! Whose channels are whose: names carry the user's id, and a file is used
//! only when it is ours and closed to everyone else.
//!
//! `/dev/shm` is shared by every user (mode 1777), so anyone can create any
//! name there. The uid in the name (`clavm-UID-ENGINE.CHANNEL`) keeps two
//! users' engines of the same name apart; the checks here keep a file
//! another user put under *our* name (squatted, or with a lax mode) from
//! ever being written to, mapped or removed: the error names its owner.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::Error;

/// Where channels live.
pub const DIR: &str = "/dev/shm";

/// The user whose namespace this process uses (the effective uid: the one
/// files are created as).
pub fn uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// The start of every channel name of `engine` for this user: `clavm-UID-ENGINE.`.
pub(crate) fn prefix(engine: &str) -> String {
    format!("clavm-{}-{engine}.", uid())
}

/// Where channel `channel` of `engine` lives for this user: `/dev/shm/clavm-UID-ENGINE.CHANNEL`.
pub fn path_of(engine: &str, channel: &str) -> Result<PathBuf, Error> {
    for part in [engine, channel] {
        let ok = !part.is_empty()
            && part.len() <= 64
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(Error::BadName(part.to_string()));
        }
    }
    Ok(PathBuf::from(format!("{DIR}/{}{channel}", prefix(engine))))
}

/// A user's name for messages ("uid N" is printed beside it anyway).
pub(crate) fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => format!("#{uid}"),
    }
}

/// Whether a file with this owner and mode may be used as a channel: ours,
/// a regular file, and no permission bits for the group or others.
pub(crate) fn check(path: &Path, uid: u32, mode: u32) -> Result<(), Error> {
    if uid != self::uid() {
        return Err(Error::NotOurs { path: path.to_path_buf(), user: user_name(uid), uid });
    }
    if mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::Corrupt { path: path.to_path_buf(), why: "not a regular file".into() });
    }
    if mode & 0o077 != 0 {
        return Err(Error::OpenToOthers { path: path.to_path_buf(), mode: mode & 0o7777 });
    }
    Ok(())
}

/// Whether the file at `path` itself (a link is not followed) is ours.
pub(crate) fn owned_by_us(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.uid() == uid())
}
