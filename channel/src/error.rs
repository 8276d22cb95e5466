//! What can go wrong, by what the caller should do about it.

use std::path::PathBuf;

/// Creating or opening a channel.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad channel name {0:?}: use 1 to 64 letters, digits, '-' or '_'")]
    BadName(String),
    #[error("bad channel configuration: {0}")]
    BadConfig(String),
    /// Nobody has created the channel: the engine is not running.
    #[error("{} does not exist (is the engine running?)", .0.display())]
    NotFound(PathBuf),
    /// The process that created the channel has exited (it may be restarting).
    #[error("the process that owned {} (pid {pid}) is gone", path.display())]
    OwnerGone { path: PathBuf, pid: u32 },
    /// A live process owns the channel already: pick another name.
    #[error("{} is in use by a running process (pid {pid})", path.display())]
    InUse { path: PathBuf, pid: u32 },
    /// Another user's file sits where our channel would be (squatted, or a
    /// root-owned leftover): never mapped, written to or removed.
    #[error("{} belongs to user {user} (uid {uid}): not ours", path.display())]
    NotOurs { path: PathBuf, user: String, uid: u32 },
    /// Our own file, but other users could read or write it (made by an old
    /// build under a lax umask, or changed since): not trusted with a patch.
    #[error("{} has mode {mode:04o}: other users could read or write it, so it is not used", path.display())]
    OpenToOthers { path: PathBuf, mode: u32 },
    /// The file is not a channel of this version: refused, never trusted.
    #[error("{} is not a usable channel: {why}", path.display())]
    Corrupt { path: PathBuf, why: String },
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
}

/// Sending one message. The message is lost in every case (and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Larger than a slot: refused, never truncated.
    #[error("message of {len} bytes does not fit a slot of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// Every slot is waiting for the consumer: dropped.
    #[error("channel full: message dropped")]
    Full,
    /// The consumer gave up on this slot (it thought this producer dead).
    #[error("the consumer abandoned the message")]
    Abandoned,
    /// The ring's counters or sequence numbers make no sense (scribbled
    /// over): nothing is sent until its consumer resets it.
    #[error("the channel holds garbage: message dropped")]
    Garbage,
    /// The channel file was truncated under us: the channel is abandoned.
    #[error("the channel file was truncated: channel abandoned")]
    Broken,
}

/// Receiving one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    #[error("no message")]
    Empty,
    #[error("no message before the timeout")]
    Timeout,
    /// A typed receive found a message of another size: it was consumed and counted as garbage.
    #[error("message of {len} bytes where {expected} were expected")]
    WrongSize { len: usize, expected: usize },
    /// The ring held garbage (impossible counters or sequence numbers): what
    /// was queued is dropped and the ring starts again empty.
    #[error("the channel held garbage and was reset (queued messages dropped)")]
    Reset,
    /// The channel file was truncated under us: its pages are gone and the
    /// channel is abandoned (the owner may [`crate::Receiver::renew`] it).
    #[error("the channel file was truncated: channel abandoned")]
    Broken,
}
