//! Every file TinyCC opens passes through here.
//!
//! A patch is hostile input, and the C preprocessor is a file reader: before
//! this module, `#include "/dev/zero"` made `clavm check` grow to several GB,
//! and checks on the patch text kept being bypassed (`#include_next`, a line
//! splice inside `include`, a comment between `#` and `include`, a name built
//! by a macro, a header that includes a FIFO...). Any check that reads the
//! source has to predict what TinyCC's preprocessor will do; this one does not
//! predict, it is asked. The build script (`build.rs`) links a copy of
//! Debian's `libtcc.a` in which:
//!
//! - every call of `open()` (the preprocessor's includes, `tcc_add_file`, the
//!   libraries `#pragma comment(lib)` would load) calls [`clavm_tcc_open`];
//! - the preprocessor's call of `tcc_open()` calls [`clavm_tcc_include_open`],
//!   because `tcc_open("-")` reads standard input without calling `open()`
//!   (`#include "-"` in a patch compiled from a string resolves to exactly "-").
//!
//! libtcc 0.9.27 offers no hook of its own (`-nostdinc` and the include paths
//! change where it looks, not what it may open: absolute paths and the
//! including file's folder are always searched), hence the renamed symbols.
//!
//! What may be opened: a regular file (after following symlinks) inside one
//! of the allowed folders (the compile's include paths, the system header
//! folders, TinyCC's runtime folder), of at most [`MAX_FILE_BYTES`], read-only.
//! The file is never handed to TinyCC: it is read here, bounded, into an
//! anonymous memory file, and TinyCC reads that copy, so a file that grows or
//! changes after the check cannot feed it more. A device, FIFO, socket or
//! directory is never opened at all (it is refused on `stat`), nor is anything
//! outside the allowed folders. One compile may open at most [`MAX_OPENS`]
//! files and read [`MAX_TOTAL_BYTES`] in all, which bounds include recursion
//! (TinyCC stops at 32 levels, but a header including itself twice per level
//! would open 2^32 files).
//!
//! A refused file is, for TinyCC, a file that is not there: it goes on
//! searching the next include folder, and if nothing is found its "include
//! file 'x' not found" message is replaced by the reason of the refusal.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, OsStr};
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::sys;

/// Largest file TinyCC may read (a header, or the runtime archive).
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Most bytes one compile may read from files, all includes together.
pub const MAX_TOTAL_BYTES: u64 = 8 << 20;
/// Most files one compile may open (`<math.h>` opens about ten).
pub const MAX_OPENS: u32 = 512;

/// What a refused file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
    Other,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Directory => "a directory",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Fifo => "a FIFO (named pipe)",
            FileKind::Socket => "a socket",
            FileKind::Other => "not a plain file",
        })
    }
}

/// Why a file TinyCC asked for was not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefusalReason {
    #[error("\"-\" would make TinyCC read its standard input")]
    Stdin,
    #[error("TinyCC asked to open it for writing")]
    Write,
    #[error("{} is {kind}, not a regular file", .resolved.display())]
    NotRegular { resolved: PathBuf, kind: FileKind },
    #[error(
        "{} is outside the folders a patch may include from (its own folder, -I folders, the system headers)",
        .resolved.display()
    )]
    Outside { resolved: PathBuf },
    #[error("{} is {bytes} bytes, over the {max}-byte limit for an included file", .resolved.display())]
    TooBig { resolved: PathBuf, bytes: u64, max: u64 },
    #[error("{} changed while it was being checked", .resolved.display())]
    Changed { resolved: PathBuf },
    #[error("{} cannot be read: {error}", .resolved.display())]
    Unreadable { resolved: PathBuf, error: String },
    #[error("this compile already opened {opens} files and read {bytes} bytes (is an #include recursive?)")]
    Budget { opens: u32, bytes: u64 },
}

/// A file TinyCC asked for and did not get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The path exactly as TinyCC asked for it (an include folder joined with the name).
    pub path: String,
    pub reason: RefusalReason,
}

/// The policy and the record of one compile, installed on the compiling thread.
struct Watch {
    roots: Vec<PathBuf>,
    opens: u32,
    bytes: u64,
    refusals: Vec<Refusal>,
}

thread_local! {
    static WATCH: RefCell<Option<Watch>> = const { RefCell::new(None) };
}

/// The folders TinyCC searches for `#include <...>` by default (its own, then
/// the system's), as configured in Debian's build.
pub fn system_include_dirs() -> Vec<PathBuf> {
    let ma = crate::MULTIARCH;
    vec![
        Path::new(crate::RUNTIME_DIR).join("include"),
        format!("/usr/local/include/{ma}").into(),
        "/usr/local/include".into(),
        format!("/usr/include/{ma}").into(),
        "/usr/include".into(),
    ]
}

/// Installs the policy for one compile on this thread until dropped. The
/// caller holds the TinyCC lock, so there is one at a time per process.
pub(crate) struct Session(());

impl Session {
    /// Files may come from `include_paths`, the system header folders and TinyCC's runtime folder.
    pub(crate) fn start(include_paths: &[PathBuf]) -> Session {
        let roots = include_paths
            .iter()
            .cloned()
            .chain(system_include_dirs())
            .chain([PathBuf::from(crate::RUNTIME_DIR)])
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .collect();
        let watch = Watch { roots, opens: 0, bytes: 0, refusals: Vec::new() };
        WATCH.with(|w| *w.borrow_mut() = Some(watch));
        Session(())
    }

    /// The files refused so far.
    pub(crate) fn refusals(&self) -> Vec<Refusal> {
        WATCH.with(|w| w.borrow().as_ref().map(|w| w.refusals.clone()).unwrap_or_default())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        WATCH.with(|w| w.borrow_mut().take());
    }
}

/// The outcome of one request to open a file.
enum Outcome {
    Opened(OwnedFd),
    /// Not there (or not reachable): TinyCC goes on searching. The errno.
    Missing(c_int),
    Refused(RefusalReason),
}

fn kind_of(t: std::fs::FileType) -> FileKind {
    if t.is_dir() {
        FileKind::Directory
    } else if t.is_char_device() {
        FileKind::CharDevice
    } else if t.is_block_device() {
        FileKind::BlockDevice
    } else if t.is_fifo() {
        FileKind::Fifo
    } else if t.is_socket() {
        FileKind::Socket
    } else {
        FileKind::Other
    }
}

/// Decides on `path` and, if allowed, returns a descriptor of a bounded copy.
fn open_checked(watch: &mut Watch, path: &Path, flags: c_int) -> Outcome {
    let writes = libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND;
    if flags & writes != 0 {
        return Outcome::Refused(RefusalReason::Write);
    }
    if watch.opens >= MAX_OPENS || watch.bytes >= MAX_TOTAL_BYTES {
        return Outcome::Refused(RefusalReason::Budget { opens: watch.opens, bytes: watch.bytes });
    }
    // Symlinks resolved, so the checks below are about the file itself. `stat`
    // never opens it: a FIFO would block, and opening some devices has effects.
    let missing = |e: std::io::Error| Outcome::Missing(e.raw_os_error().unwrap_or(libc::ENOENT));
    let resolved = match std::fs::canonicalize(path) {
        Ok(r) => r,
        Err(e) => return missing(e),
    };
    let meta = match std::fs::metadata(&resolved) {
        Ok(m) => m,
        Err(e) => return missing(e),
    };
    if !meta.is_file() {
        return Outcome::Refused(RefusalReason::NotRegular { kind: kind_of(meta.file_type()), resolved });
    }
    if !watch.roots.iter().any(|r| resolved.starts_with(r)) {
        return Outcome::Refused(RefusalReason::Outside { resolved });
    }
    if meta.len() > MAX_FILE_BYTES {
        return Outcome::Refused(RefusalReason::TooBig { resolved, bytes: meta.len(), max: MAX_FILE_BYTES });
    }
    let unreadable = |resolved: PathBuf, e: std::io::Error| {
        Outcome::Refused(RefusalReason::Unreadable { resolved, error: e.to_string() })
    };
    // O_NONBLOCK and O_NOFOLLOW: if the path was swapped for a FIFO or a
    // symlink since the `stat`, this neither blocks nor follows it.
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW)
        .open(&resolved)
    {
        Ok(f) => f,
        Err(e) => return unreadable(resolved, e),
    };
    match file.metadata() {
        Ok(m) if m.is_file() && m.dev() == meta.dev() && m.ino() == meta.ino() => {}
        Ok(_) => return Outcome::Refused(RefusalReason::Changed { resolved }),
        Err(e) => return unreadable(resolved, e),
    }
    let mut text = Vec::with_capacity(meta.len() as usize + 1);
    if let Err(e) = (&mut file).take(MAX_FILE_BYTES + 1).read_to_end(&mut text) {
        return unreadable(resolved, e);
    }
    if text.len() as u64 > MAX_FILE_BYTES {
        return Outcome::Refused(RefusalReason::TooBig { resolved, bytes: text.len() as u64, max: MAX_FILE_BYTES });
    }
    watch.opens += 1;
    watch.bytes += text.len() as u64;
    match memory_copy(&text) {
        Ok(fd) => Outcome::Opened(fd),
        Err(e) => unreadable(resolved, e),
    }
}

/// An anonymous memory file holding `text`, positioned at its start.
fn memory_copy(text: &[u8]) -> std::io::Result<OwnedFd> {
    // SAFETY: a plain system call with a NUL-terminated name; the result is checked.
    let fd = unsafe { libc::memfd_create(c"clavm-include".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    let mut f = unsafe { File::from_raw_fd(fd) };
    f.write_all(text)?;
    f.seek(SeekFrom::Start(0))?;
    Ok(OwnedFd::from(f))
}

fn set_errno(e: c_int) {
    // SAFETY: glibc's errno location is valid for the calling thread.
    unsafe { *libc::__errno_location() = e };
}

fn refuse(path: &[u8], reason: RefusalReason) -> c_int {
    let path = String::from_utf8_lossy(path).into_owned();
    WATCH.with(|w| {
        if let Ok(mut w) = w.try_borrow_mut() {
            if let Some(w) = w.as_mut() {
                w.refusals.push(Refusal { path, reason });
            }
        }
    });
    set_errno(libc::EACCES);
    -1
}

/// Decides on one `open(path, flags)` from libtcc.
fn hook_open(path: &CStr, flags: c_int) -> c_int {
    let bytes = path.to_bytes();
    let outcome = WATCH.with(|w| match w.try_borrow_mut() {
        Ok(mut w) => match w.as_mut() {
            Some(watch) => open_checked(watch, Path::new(OsStr::from_bytes(bytes)), flags),
            // No compile in progress on this thread: nothing may be opened.
            None => Outcome::Refused(RefusalReason::Outside { resolved: PathBuf::from(OsStr::from_bytes(bytes)) }),
        },
        Err(_) => Outcome::Missing(libc::EBUSY),
    });
    match outcome {
        Outcome::Opened(fd) => fd.into_raw_fd(),
        Outcome::Missing(e) => {
            set_errno(e);
            -1
        }
        Outcome::Refused(reason) => refuse(bytes, reason),
    }
}

/// libtcc's `open()`, renamed by the build script. TinyCC calls it with two
/// arguments (read-only opens) or three (`O_CREAT` with a mode, for output
/// files, which are refused): only the first two are read. On x86_64 and
/// aarch64 the named arguments of a variadic call are passed exactly as those
/// of a plain call, so this non-variadic definition receives them intact.
///
/// # Safety
/// `path` must be a NUL-terminated string, as every caller in libtcc passes.
#[no_mangle]
pub unsafe extern "C" fn clavm_tcc_open(path: *const c_char, flags: c_int) -> c_int {
    if path.is_null() {
        set_errno(libc::EFAULT);
        return -1;
    }
    // SAFETY: libtcc passes a NUL-terminated file name (see the function's contract).
    let path = unsafe { CStr::from_ptr(path) };
    hook_open(path, flags)
}

/// The preprocessor's `tcc_open()`, renamed by the build script: refuses "-"
/// (standard input, which `tcc_open` reads without calling `open()`), then
/// lets TinyCC open the file, through [`clavm_tcc_open`].
///
/// # Safety
/// Called by TinyCC's preprocessor with its live state and a NUL-terminated name.
#[no_mangle]
pub unsafe extern "C" fn clavm_tcc_include_open(s1: *mut sys::TCCState, filename: *const c_char) -> c_int {
    if filename.is_null() {
        return -1;
    }
    // SAFETY: the preprocessor passes a NUL-terminated path buffer.
    let name = unsafe { CStr::from_ptr(filename) };
    if name.to_bytes() == b"-" {
        return refuse(b"-", RefusalReason::Stdin);
    }
    // SAFETY: the arguments are TinyCC's own, passed on unchanged to the function they were meant for.
    unsafe { sys::tcc_open(s1, filename) }
}

/// Keeps the hooks in the link: libtcc.a refers to them, but the linker reads
/// it after this crate, so something here must use them first.
pub(crate) fn hooks() -> [usize; 2] {
    [clavm_tcc_open as *const () as usize, clavm_tcc_include_open as *const () as usize]
}

/// Replaces TinyCC's "include file 'x' not found" (or "file 'x' not found")
/// by the reason a candidate for it was refused, if one was.
pub(crate) fn explain(text: &str, refusals: &[Refusal]) -> Option<String> {
    let rest = text.strip_prefix("include file '").or_else(|| text.strip_prefix("file '"))?;
    let name = rest.strip_suffix("' not found")?;
    let found = refusals.iter().find(|r| r.path == name || r.path.ends_with(&format!("/{name}")))?;
    Some(format!("#include '{name}' refused: {}", found.reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_watch<T>(roots: &[PathBuf], f: impl FnOnce() -> T) -> (T, Vec<Refusal>) {
        let s = Session::start(roots);
        let out = f();
        let r = s.refusals();
        (out, r)
    }

    fn open(path: &str) -> c_int {
        let c = std::ffi::CString::new(path).unwrap();
        // SAFETY: a NUL-terminated path.
        unsafe { clavm_tcc_open(c.as_ptr(), libc::O_RDONLY) }
    }

    fn read_all(fd: c_int) -> Vec<u8> {
        assert!(fd >= 0);
        // SAFETY: the hook returned a fresh descriptor we now own.
        let mut f = unsafe { File::from_raw_fd(fd) };
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        v
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("clavm-files-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_header_in_an_allowed_folder_is_served_as_a_copy() {
        let d = tmpdir("ok");
        std::fs::write(d.join("h.h"), "int h;\n").unwrap();
        let (fd, refused) = with_watch(std::slice::from_ref(&d), || open(&d.join("h.h").to_string_lossy()));
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(read_all(fd), b"int h;\n");
        let (fd, refused) = with_watch(&[], || open("/usr/include/math.h"));
        assert!(refused.is_empty(), "{refused:?}");
        assert!(read_all(fd).len() > 100);
    }

    #[test]
    fn devices_fifos_directories_and_outsiders_are_refused_unopened() {
        let d = tmpdir("bad");
        let fifo = d.join("fifo.h");
        let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path; the result is checked.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink("/dev/zero", d.join("zero.h")).unwrap();
        std::fs::write(d.join("big.h"), vec![b' '; MAX_FILE_BYTES as usize + 1]).unwrap();
        let outside = tmpdir("outside");
        std::fs::write(outside.join("o.h"), "int o;\n").unwrap();
        let roots = [d.clone()];
        let paths = [fifo.clone(), d.join("zero.h"), d.clone(), d.join("big.h"), outside.join("o.h")];
        let (fds, refused) =
            with_watch(&roots, || paths.iter().map(|p| open(&p.to_string_lossy())).collect::<Vec<_>>());
        assert!(fds.iter().all(|&fd| fd == -1), "{fds:?}");
        let kinds: Vec<_> = refused.iter().map(|r| r.reason.clone()).collect();
        assert!(matches!(&kinds[0], RefusalReason::NotRegular { kind: FileKind::Fifo, .. }), "{kinds:?}");
        assert!(
            matches!(&kinds[1], RefusalReason::NotRegular { kind: FileKind::CharDevice, resolved } if resolved == Path::new("/dev/zero"))
        );
        assert!(matches!(&kinds[2], RefusalReason::NotRegular { kind: FileKind::Directory, .. }));
        assert!(matches!(&kinds[3], RefusalReason::TooBig { .. }));
        assert!(matches!(&kinds[4], RefusalReason::Outside { .. }));
        // A missing file is not a refusal: TinyCC searches on.
        let (fd, refused) = with_watch(&roots, || open(&d.join("none.h").to_string_lossy()));
        assert_eq!((fd, refused.len()), (-1, 0));
        // Writing is refused, and with no compile in progress nothing opens.
        let (fd, refused) = with_watch(&roots, || {
            let c = std::ffi::CString::new(d.join("w.h").to_string_lossy().as_bytes()).unwrap();
            // SAFETY: a NUL-terminated path.
            unsafe { clavm_tcc_open(c.as_ptr(), libc::O_WRONLY | libc::O_CREAT) }
        });
        assert_eq!(fd, -1);
        assert_eq!(refused[0].reason, RefusalReason::Write);
        assert!(!d.join("w.h").exists());
        assert_eq!(open("/usr/include/math.h"), -1);
    }

    #[test]
    fn the_budget_stops_runaway_includes() {
        let d = tmpdir("budget");
        std::fs::write(d.join("h.h"), "int h;\n").unwrap();
        let p = d.join("h.h").to_string_lossy().into_owned();
        let (fds, refused) =
            with_watch(std::slice::from_ref(&d), || (0..MAX_OPENS + 1).map(|_| open(&p)).collect::<Vec<_>>());
        for &fd in &fds[..MAX_OPENS as usize] {
            // SAFETY: descriptors returned by the hook, closed once.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        assert_eq!(fds[MAX_OPENS as usize], -1);
        assert!(matches!(refused[0].reason, RefusalReason::Budget { opens: MAX_OPENS, .. }), "{refused:?}");
    }

    #[test]
    fn a_not_found_message_is_explained_by_its_refusal() {
        let r = [Refusal {
            path: "/dev/zero".into(),
            reason: RefusalReason::NotRegular { resolved: "/dev/zero".into(), kind: FileKind::CharDevice },
        }];
        assert_eq!(
            explain("include file '/dev/zero' not found", &r).as_deref(),
            Some("#include '/dev/zero' refused: /dev/zero is a character device, not a regular file")
        );
        assert_eq!(explain("include file 'x.h' not found", &r), None);
        assert_eq!(explain("'y' undeclared", &r), None);
    }
}
