//! Named shared-memory channels between processes.
//!
//! A channel is a file in `/dev/shm` holding a ring of fixed-size slots
//! (Vyukov's bounded queue: a sequence number per slot, so producers and the
//! consumer never share a lock). One process creates a channel and owns it;
//! others open it by name. Messages are raw bytes, written and read in place
//! (zero-copy), or plain-old-data values marked [`ShmSafe`].
//!
//! What it promises:
//! - **Never blocks a producer.** A full ring drops the message, counts the
//!   drop and says so; realtime threads may send.
//! - **Waits without polling.** A consumer sleeps on a futex in the ring and a
//!   producer wakes it only when it is asleep; optional spinning first.
//! - **Survives dead peers.** A producer that dies halfway through a message
//!   is detected (its pid is in the slot) and skipped; a channel left behind
//!   by a killed owner is detected (pid and start time) and replaced on the
//!   next `create`; a client whose owner is gone gets [`Error::OwnerGone`].
//! - **Distrusts the bytes.** Sizes and indices read from the ring are checked:
//!   a garbage file is refused, a garbage slot is skipped and counted, a ring
//!   whose counters make no sense is reset, and a file truncated under its
//!   mapping is abandoned (the SIGBUS is caught, see `bus_guard`). No
//!   operation loops on what it reads: each does bounded work, and every
//!   wait keeps its deadline.
//! - **Belongs to its user.** Names carry the uid (`/dev/shm/clavm-UID-ENGINE.CHANNEL`),
//!   files are created exclusively with mode 0600, and a file is opened only
//!   when `fstat` shows it is ours and closed to others: another user's file
//!   is never mapped, written or removed, and the error names its owner.

mod bus_guard;
mod error;
pub mod futex;
#[cfg(test)]
mod fuzz;
mod layout;
mod map;
mod namespace;
mod process;
mod ring;

pub use error::{Error, RecvError, SendError};
pub use layout::{Config, Mode, Stats};
pub use ring::{Grant, Message, Receiver, Sender, Wait};

/// Types that may be placed in shared memory and read by another process:
/// `#[repr(C)]`, no pointers or references (indices instead), no padding, and
/// every bit pattern a valid value (`bytemuck::Pod`). The other side may be a
/// different build or a broken process: check what a value means before using it.
///
/// # Safety
/// Implementors must meet all of the above (iceoryx2's `ZeroCopySend`, in short).
pub unsafe trait ShmSafe: 'static {}

pub use namespace::{path_of, uid};

/// Removes the channels of `engine` whose owner is gone, and half-built ones
/// of creators that died: what killed processes leave in `/dev/shm` under
/// names no one will create again (a client's reply channel). A channel is
/// also replaced when its name is created again; this is for the rest.
/// Only this user's files are looked at, and only ours are removed.
/// Returns how many files were removed.
pub fn remove_stale(engine: &str) -> Result<usize, Error> {
    let path = path_of(engine, "x")?;
    let dir = path.parent().unwrap_or(std::path::Path::new(namespace::DIR));
    let ours = namespace::prefix(engine);
    let building = format!(".{ours}");
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(|source| Error::Io { what: "listing", path: dir.into(), source })? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = if name.starts_with(&ours) {
            matches!(
                map::Mapping::open(&entry.path()),
                Err(Error::OwnerGone { .. } | Error::Corrupt { .. } | Error::OpenToOthers { .. })
            )
        } else if let Some(rest) = name.strip_prefix(&building).and_then(|r| r.strip_suffix(".tmp")) {
            // `.clavm-UID-ENGINE.CHANNEL.PID.N.tmp`, written by `Mapping::create`.
            let pid = rest.rsplit('.').nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
            !process::alive(pid, None)
        } else {
            false
        };
        // Checked again right before removing: never another user's file (root could remove it).
        if stale && namespace::owned_by_us(&entry.path()) && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}
