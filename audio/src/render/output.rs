//! Where an output file goes, safely, whatever the path names.
//!
//! - A regular file (or nothing yet) is written whole or not at all: the work
//!   goes to a temporary file beside it, created exclusively (`O_CREAT|O_EXCL`,
//!   which never follows a symbolic link, with a random part in its name), and
//!   renamed into place at the end. Dropped unfinished, it is removed.
//! - A character device or a FIFO (`/dev/null`, a pipe to a player) and `-`
//!   (stdout) are streamed to, if the format can be streamed; the node itself
//!   is never replaced.
//!   `/dev/stdout` and its kin are our standard output even when that is a
//!   regular file, and are streamed to as `-` is; a terminal is refused.
//! - A directory, a block device or a socket is refused.
//!
//! The temporary name is recognisable, `.NAME.TAG-PID-RANDOM[.EXT]`, so that
//! after a SIGKILL the next run for the same output removes the leftover: only
//! files with that exact shape, regular, owned by us, whose process is gone.
//!
//! Why `tempfile` and not hand-written `O_TMPFILE` + `linkat`: `tempfile`'s
//! named files are created `O_CREAT|O_EXCL` with a random name (no link is
//! followed, no name can be squatted in advance), removed on drop, and renamed
//! by `persist`; an unnamed `O_TMPFILE` would still need a named step to
//! replace an existing target (`linkat` cannot), needs `/proc` for
//! `AT_SYMLINK_FOLLOW` without privileges, and needs the exclusive-create
//! fallback anyway on file systems without it: two code paths, both unsafe.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tempfile::TempPath;

/// Why an output cannot be written. The messages carry the OS error once (no
/// `source` chain to print it again).
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {path}: it is a directory")]
    Directory { path: PathBuf },
    #[error("cannot write {path}: it is a {kind}; write to a regular file, a character device, a FIFO or - (stdout)")]
    Unsupported { path: PathBuf, kind: NodeKind },
    #[error("cannot write {path}: it is a {kind}, and {why}; write to a regular file")]
    NotStreamable { path: PathBuf, kind: NodeKind, why: &'static str },
    #[error("refusing to write {output}: it is the same file as the input {input}")]
    SameFile { output: PathBuf, input: PathBuf },
    #[error("cannot write {path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
}

/// What kind of node an output path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Stdout,
    /// Standard output when it is a terminal.
    Terminal,
    CharDevice,
    Fifo,
    BlockDevice,
    Socket,
}

impl std::fmt::Display for NodeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NodeKind::Stdout => "standard output",
            NodeKind::Terminal => "terminal",
            NodeKind::CharDevice => "character device",
            NodeKind::Fifo => "FIFO",
            NodeKind::BlockDevice => "block device",
            NodeKind::Socket => "socket",
        })
    }
}

/// Whether the caller's format can go to a stream (no seeking back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streaming {
    Allowed,
    /// Refused, for this reason (said in the error).
    Refused(&'static str),
}

/// An output being written: a temporary file to rename into place, or a stream.
#[derive(Debug)]
pub struct Output {
    path: PathBuf,
    /// The temporary file (removed when dropped); None for a stream.
    temp: Option<TempPath>,
    kind: Option<NodeKind>,
}

impl Output {
    /// Opens the output `path` (see the module's text) and returns the file to
    /// write. `tag` names the temporary file's purpose (`partial`, `video`).
    pub fn create(path: &Path, tag: &str, streaming: Streaming) -> Result<(Output, File), OutputError> {
        let io = |error: std::io::Error| OutputError::Io { path: path.to_path_buf(), error };
        if path.as_os_str() == "-" {
            return stream_to_stdout(path, streaming);
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => return Err(OutputError::Directory { path: path.to_path_buf() }),
            // `/dev/stdout`, `/dev/fd/1`: our own standard output, even when it
            // is a regular file; a rename would replace the link in /dev.
            Ok(m) if is_stdout(&m) => return stream_to_stdout(path, streaming),
            Ok(m) if !m.is_file() => return open_stream(path, kind_of(&m.file_type()), streaming),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path.file_name().ok_or_else(|| io(std::io::Error::other("not a file name")))?;
        remove_leftovers(dir, name, tag);
        let prefix = temp_prefix(name, tag, std::process::id());
        let suffix = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
        // tempfile picks the random names (retrying on a collision) and removes
        // the file on drop; the open is ours: exclusive, never through a
        // link, 0666 less the umask as File::create would (tempfile's own is
        // 0600), and its OS error unwrapped (tempfile's adds the temporary name).
        let named = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(&suffix)
            .rand_bytes(RANDOM_CHARS)
            .make_in(dir, |p| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o666)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(p)
            })
            .map_err(io)?;
        let (file, temp) = named.into_parts();
        Ok((Output { path: path.to_path_buf(), temp: Some(temp), kind: None }, file))
    }

    /// The temporary file, until [`commit`](Self::commit) (for crash and
    /// signal handlers to remove); None when streaming.
    pub fn temporary_path(&self) -> Option<&Path> {
        self.temp.as_deref()
    }

    /// The node streamed to, if the output is a stream.
    pub fn stream_kind(&self) -> Option<NodeKind> {
        self.kind
    }

    /// The output path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the finished temporary file into place (nothing for a stream).
    /// On failure the temporary file is removed.
    pub fn commit(mut self) -> Result<(), OutputError> {
        match self.temp.take() {
            None => Ok(()),
            // A failed persist hands the TempPath back; dropping it removes the file.
            Some(t) => t.persist(&self.path).map_err(|e| OutputError::Io { path: self.path.clone(), error: e.error }),
        }
    }
}

const RANDOM_CHARS: usize = 6;

fn temp_prefix(name: &OsStr, tag: &str, pid: u32) -> String {
    format!(".{}.{tag}-{pid}-", name.to_string_lossy())
}

fn kind_of(t: &std::fs::FileType) -> NodeKind {
    if t.is_char_device() {
        NodeKind::CharDevice
    } else if t.is_fifo() {
        NodeKind::Fifo
    } else if t.is_block_device() {
        NodeKind::BlockDevice
    } else {
        NodeKind::Socket
    }
}

/// Whether `m` describes the file our standard output is (same device and inode).
fn is_stdout(m: &std::fs::Metadata) -> bool {
    use std::os::fd::AsFd;
    let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() else { return false };
    File::from(fd).metadata().is_ok_and(|out| out.dev() == m.dev() && out.ino() == m.ino())
}

fn stream_to_stdout(path: &Path, streaming: Streaming) -> Result<(Output, File), OutputError> {
    use std::io::IsTerminal;
    use std::os::fd::AsFd;
    if let Streaming::Refused(why) = streaming {
        return Err(OutputError::NotStreamable { path: path.to_path_buf(), kind: NodeKind::Stdout, why });
    }
    if std::io::stdout().is_terminal() {
        let why = "binary data would garble it (redirect or pipe it)";
        return Err(OutputError::NotStreamable { path: path.to_path_buf(), kind: NodeKind::Terminal, why });
    }
    let fd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|error| OutputError::Io { path: path.to_path_buf(), error })?;
    Ok((Output { path: path.to_path_buf(), temp: None, kind: Some(NodeKind::Stdout) }, File::from(fd)))
}

/// Opens a device or FIFO in place: no create, no truncate; checked again
/// after opening, so a path swapped for a regular file meanwhile is not
/// overwritten in place.
fn open_stream(path: &Path, kind: NodeKind, streaming: Streaming) -> Result<(Output, File), OutputError> {
    let path_buf = path.to_path_buf();
    if matches!(kind, NodeKind::BlockDevice | NodeKind::Socket) {
        return Err(OutputError::Unsupported { path: path_buf, kind });
    }
    if let Streaming::Refused(why) = streaming {
        return Err(OutputError::NotStreamable { path: path_buf, kind, why });
    }
    let io = |error: std::io::Error| OutputError::Io { path: path.to_path_buf(), error };
    // A FIFO blocks here until a reader opens it, as `cat > fifo` does.
    let file = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NOCTTY).open(path).map_err(io)?;
    let now = file.metadata().map_err(io)?.file_type();
    if now.is_file() || kind_of(&now) != kind {
        return Err(io(std::io::Error::other("it changed while being opened")));
    }
    Ok((Output { path: path_buf, temp: None, kind: Some(kind) }, file))
}

/// Removes the temporary files of earlier runs for the same output that were
/// killed before they could (SIGKILL, a power cut): names of exactly our
/// shape, regular files owned by our user, whose process no longer exists.
/// A process that is still alive (or a reused pid) keeps its file.
pub fn remove_leftovers(dir: &Path, name: &OsStr, tag: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let head = format!(".{}.{tag}-", name.to_string_lossy());
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    let uid = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = leftover_pid(file_name.as_bytes(), head.as_bytes()) else { continue };
        if pid == std::process::id() || process_exists(pid) {
            continue;
        }
        // lstat: a symbolic link or anything else of that name is not ours.
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
        if meta.file_type().is_file() && meta.uid() == uid {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The pid in `.NAME.TAG-PID-RANDOM[.EXT]`, if `file_name` has that shape.
fn leftover_pid(file_name: &[u8], head: &[u8]) -> Option<u32> {
    let rest = file_name.strip_prefix(head)?;
    let dash = rest.iter().position(|&b| b == b'-')?;
    let (digits, tail) = (&rest[..dash], &rest[dash + 1..]);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let random = tail.split(|&b| b == b'.').next()?;
    if random.len() != RANDOM_CHARS || !random.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok().filter(|&p| p > 0)
}

fn process_exists(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else { return true };
    // Signal 0 checks existence; EPERM means it exists under another user.
    !matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None), Err(nix::errno::Errno::ESRCH))
}

/// Refuses an output that is one of the inputs (same device and inode, so
/// links and other spellings count), before anything is written. A missing
/// output or input is no conflict (a missing input fails on its own).
pub fn refuse_same_file(output: &Path, inputs: &[&Path]) -> Result<(), OutputError> {
    if output.as_os_str() == "-" {
        return Ok(());
    }
    let Ok(out) = std::fs::metadata(output) else { return Ok(()) };
    for input in inputs {
        if let Ok(m) = std::fs::metadata(input) {
            if m.dev() == out.dev() && m.ino() == out.ino() {
                return Err(OutputError::SameFile { output: output.to_path_buf(), input: input.to_path_buf() });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_regular_output_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.wav");
        let (o, mut f) = Output::create(&out, "partial", Streaming::Allowed).unwrap();
        let tmp = o.temporary_path().unwrap().to_path_buf();
        let tmp_name = tmp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(tmp_name.starts_with(&format!(".x.wav.partial-{}-", std::process::id())), "{tmp_name}");
        assert!(tmp_name.ends_with(".wav"));
        std::io::Write::write_all(&mut f, b"data").unwrap();
        drop(o);
        assert!(names(dir.path()).is_empty(), "dropped unfinished: nothing left");
        let (o, mut f) = Output::create(&out, "partial", Streaming::Allowed).unwrap();
        std::io::Write::write_all(&mut f, b"data").unwrap();
        o.commit().unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"data");
        assert_eq!(names(dir.path()), ["x.wav"]);
    }

    #[test]
    fn a_failed_rename_after_the_work_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.wav");
        let (o, mut f) = Output::create(&out, "partial", Streaming::Allowed).unwrap();
        std::io::Write::write_all(&mut f, b"a whole render").unwrap();
        // The target became a folder with something in it meanwhile.
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("keep"), b"").unwrap();
        let e = o.commit().unwrap_err();
        assert!(e.to_string().starts_with(&format!("cannot write {}: ", out.display())), "{e}");
        assert_eq!(names(dir.path()), ["x.wav"], "the temporary file went with the error");
        assert_eq!(names(&out), ["keep"]);
    }

    #[test]
    fn a_planted_symlink_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        // Every name an attacker could predict: the old fixed name, and the
        // new prefix with each plausible random part is not enumerable, so
        // plant the old one and a dangling link at the target.
        let out = dir.path().join("x.wav");
        let old = dir.path().join(format!(".x.wav.partial-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &old).unwrap();
        let (o, mut f) = Output::create(&out, "partial", Streaming::Allowed).unwrap();
        std::io::Write::write_all(&mut f, b"render").unwrap();
        o.commit().unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&out).unwrap(), b"render");
        // A link at the target itself is replaced, not followed.
        std::fs::remove_file(&out).unwrap();
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        let (o, mut f) = Output::create(&out, "partial", Streaming::Allowed).unwrap();
        std::io::Write::write_all(&mut f, b"render").unwrap();
        o.commit().unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&out).unwrap().file_type().is_file());
    }

    #[test]
    fn leftovers_of_dead_processes_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        // A pid that cannot exist (above the kernel's pid_max limit of 2^22).
        let dead = 4_194_305u32;
        let alive = std::process::id();
        for n in [
            format!(".x.wav.partial-{dead}-abc123.wav"),
            format!(".x.wav.partial-{alive}-abc123.wav"),
            format!(".x.wav.partial-{dead}-toolongname.wav"),
            format!(".y.wav.partial-{dead}-abc123.wav"),
            "x.wav".to_string(),
        ] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(format!(".x.wav.partial-{dead}-zzz999.wav"))).unwrap();
        remove_leftovers(dir.path(), OsStr::new("x.wav"), "partial");
        let left = names(dir.path());
        assert!(!left.contains(&format!(".x.wav.partial-{dead}-abc123.wav")), "{left:?}");
        assert_eq!(left.len(), 6, "only the dead run's file went: {left:?}");
    }

    #[test]
    fn devices_and_fifos_are_streamed_to_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let null = Path::new("/dev/null");
        // Never write to /dev/null unless it is the device (a broken machine
        // could have a regular file there, which this would replace).
        assert!(std::fs::metadata(null).unwrap().file_type().is_char_device(), "/dev/null is not a device here");
        let (o, mut f) = Output::create(null, "partial", Streaming::Allowed).unwrap();
        assert_eq!(o.stream_kind(), Some(NodeKind::CharDevice));
        std::io::Write::write_all(&mut f, b"x").unwrap();
        o.commit().unwrap();
        assert!(std::fs::metadata(null).unwrap().file_type().is_char_device());
        let e = Output::create(null, "partial", Streaming::Refused("needs seeking")).unwrap_err();
        assert!(e.to_string().contains("character device, and needs seeking"), "{e}");
        let e = Output::create(dir.path(), "partial", Streaming::Allowed).unwrap_err();
        assert!(matches!(e, OutputError::Directory { .. }), "{e}");
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn the_same_file_as_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let patch = dir.path().join("p.c");
        std::fs::write(&patch, b"void play(void) {}").unwrap();
        let link = dir.path().join("link.c");
        std::fs::hard_link(&patch, &link).unwrap();
        let e = refuse_same_file(&link, &[Path::new("/nonexistent"), &patch]).unwrap_err();
        assert!(matches!(e, OutputError::SameFile { .. }), "{e}");
        refuse_same_file(&dir.path().join("new.wav"), &[&patch]).unwrap();
    }
}
