//! The channel file: created (replacing a stale one of ours), opened and
//! checked (owner, mode, size), mapped under the SIGBUS guard.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::bus_guard::Guard;
use crate::layout::{Config, Header, SlotHeader, MAGIC, VERSION};
use crate::{namespace, process, Error};

/// A whole channel file mapped shared. Unmapped on drop; the owner also
/// removes the file (if the name still holds it).
pub(crate) struct Mapping {
    base: *mut u8,
    len: usize,
    pub config: Config,
    pub path: PathBuf,
    /// The file we created (device, inode): what the owner may remove.
    created: Option<(u64, u64)>,
    /// Unregistered (before unmapping) on drop.
    guard: Option<Guard>,
    /// The file, to see whether it is still what we mapped.
    file: File,
}

// SAFETY: the mapping is plain shared memory; every access to it goes through
// atomics or through slots the ring protocol has handed to one side.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { what, path: path.to_path_buf(), source }
}

/// How often `create` retries a name that keeps changing under it.
const CREATE_TRIES: usize = 100;

impl Mapping {
    /// Creates the channel at `path`, owned by this process. A file of ours
    /// left by a process that is gone (or garbage) is replaced; one whose
    /// owner runs is refused; another user's is never touched.
    pub fn create(path: &Path, config: Config) -> Result<Mapping, Error> {
        config.check().map_err(Error::BadConfig)?;
        // Build the file under a private name, then link it into place: a
        // reader never sees a half-initialised channel.
        let dir = path.parent().unwrap_or(Path::new(namespace::DIR));
        let (tmp, file) = tempfile_in(dir, path)?;
        let len = config.file_len();
        let result = (|| {
            file.set_len(len as u64).map_err(io("sizing", &tmp))?;
            let meta = file.metadata().map_err(io("reading", &tmp))?;
            let mut mapping = Mapping::map(&file, len, config, path)?;
            mapping.initialise();
            for _ in 0..CREATE_TRIES {
                match std::fs::hard_link(&tmp, path) {
                    Ok(()) => {
                        mapping.created = Some((meta.dev(), meta.ino()));
                        return Ok(mapping);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match Mapping::open(path) {
                        Ok(live) => {
                            let pid = live.header().owner_pid;
                            return Err(Error::InUse { path: path.to_path_buf(), pid });
                        }
                        // Ours, and gone, stale or garbage: replace it (and race any other starter fairly).
                        Err(Error::OwnerGone { .. } | Error::Corrupt { .. } | Error::OpenToOthers { .. })
                            if namespace::owned_by_us(path) =>
                        {
                            let _ = std::fs::remove_file(path);
                        }
                        Err(Error::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    },
                    Err(e) => return Err(io("creating", path)(e)),
                }
            }
            Err(Error::Corrupt { path: path.to_path_buf(), why: "it kept changing while being replaced".into() })
        })();
        let _ = std::fs::remove_file(&tmp);
        result
    }

    /// Opens an existing channel, checking that it is ours and closed to
    /// others, well-formed, and that its owner lives. Nothing of a file that
    /// fails the ownership check is mapped or written.
    pub fn open(path: &Path) -> Result<Mapping, Error> {
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotFound(path.to_path_buf())),
            Err(e) => {
                // A link, or a file we may not open: say whose it is.
                if let Ok(m) = std::fs::symlink_metadata(path) {
                    namespace::check(path, m.uid(), m.mode())?;
                }
                return Err(io("opening", path)(e));
            }
        };
        let meta = file.metadata().map_err(io("reading", path))?;
        namespace::check(path, meta.uid(), meta.mode())?;
        let corrupt = |why: &str| Error::Corrupt { path: path.to_path_buf(), why: why.to_string() };
        let file_len = usize::try_from(meta.len()).map_err(|_| corrupt("too large"))?;
        if file_len < std::mem::size_of::<Header>() {
            return Err(corrupt("shorter than a channel header"));
        }
        // Map the header only, check it against the file's size, then map the whole verified size.
        let config = {
            let head = Mapping::map(&file, std::mem::size_of::<Header>(), Config::new(crate::Mode::Mpsc, 1, 2), path)?;
            let h = head.header();
            if h.magic.load(Ordering::Acquire) != MAGIC {
                return Err(corrupt("no channel magic number"));
            }
            if h.version != VERSION {
                return Err(corrupt(&format!("channel version {} (this build speaks {VERSION})", h.version)));
            }
            let config = h.config().filter(|c| c.file_len() == file_len);
            if head.broken() {
                return Err(corrupt("truncated while being opened"));
            }
            config.ok_or_else(|| corrupt("sizes in the header do not match the file"))?
        };
        let mapping = Mapping::map(&file, file_len, config, path)?;
        let h = mapping.header();
        // Re-checked on the mapping we keep: the file may have changed between the two.
        if h.config() != Some(config) || mapping.broken() {
            return Err(corrupt("changed while being opened"));
        }
        if !process::alive(h.owner_pid, Some(h.owner_start)) {
            return Err(Error::OwnerGone { path: path.to_path_buf(), pid: h.owner_pid });
        }
        Ok(mapping)
    }

    /// Maps `len` bytes of `file` shared, under the SIGBUS guard.
    fn map(file: &File, len: usize, config: Config, path: &Path) -> Result<Mapping, Error> {
        // SAFETY: a fresh shared mapping of a file we hold open, of a length checked against it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io("mapping", path)(std::io::Error::last_os_error()));
        }
        let base = p as *mut u8;
        let Some(guard) = Guard::register(base, len) else {
            // SAFETY: unmapping what was just mapped; nothing refers to it.
            unsafe { libc::munmap(p, len) };
            return Err(Error::BadConfig("too many channels open in this process".into()));
        };
        let file = file.try_clone().map_err(io("duplicating", path))?;
        Ok(Mapping { base, len, config, path: path.to_path_buf(), created: None, guard: Some(guard), file })
    }

    /// Whether the file shrank under the mapping (a SIGBUS was caught in it):
    /// its contents are gone; abandon it.
    pub fn broken(&self) -> bool {
        self.guard.as_ref().is_some_and(Guard::broken)
    }

    /// Whether the channel is still the one we mapped: not truncated (caught
    /// or not: a cut inside the last page faults nowhere), its identity
    /// unchanged, and still reachable under its name (not removed or
    /// replaced by a newer channel of that name).
    /// A few system calls: for idle moments, not for every message.
    pub fn intact(&self) -> bool {
        let Ok(meta) = self.file.metadata() else { return false };
        if self.broken() || meta.len() != self.len as u64 {
            return false;
        }
        let h = self.header();
        let same = h.magic.load(Ordering::Acquire) == MAGIC && h.version == VERSION && h.config() == Some(self.config);
        let named = std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == (meta.dev(), meta.ino()));
        same && named && !self.broken()
    }

    /// Whether this process created the file.
    pub fn is_owner(&self) -> bool {
        self.created.is_some()
    }

    fn initialise(&self) {
        // SAFETY: the file is fresh, private (not yet linked) and zero-filled; nothing else maps it.
        let h = unsafe { &mut *(self.base as *mut Header) };
        h.version = VERSION;
        h.mode = self.config.mode as u32;
        h.slot_size = self.config.slot_size as u64;
        h.slot_count = self.config.slot_count as u64;
        h.file_len = self.config.file_len() as u64;
        h.owner_pid = process::own_pid();
        h.owner_start = process::start_time(h.owner_pid).unwrap_or(0);
        for i in 0..self.config.slot_count {
            self.slot(i).seq.store(i as u64, Ordering::Relaxed);
        }
        h.magic.store(MAGIC, Ordering::Release);
    }

    pub fn header(&self) -> &Header {
        // SAFETY: the mapping is at least a header long and page-aligned; Header is atomics and plain numbers.
        unsafe { &*(self.base as *const Header) }
    }

    /// Whether the process that created the channel still runs.
    pub fn owner_alive(&self) -> bool {
        let h = self.header();
        process::alive(h.owner_pid, Some(h.owner_start))
    }

    /// The header of slot `i` (`i < slot_count`).
    pub fn slot(&self, i: usize) -> &SlotHeader {
        debug_assert!(i < self.config.slot_count);
        // SAFETY: in bounds (the layout was checked against the file length), 64-byte aligned.
        unsafe { &*(self.base.add(self.slot_offset(i)) as *const SlotHeader) }
    }

    /// The payload bytes of slot `i`.
    pub fn payload(&self, i: usize) -> *mut u8 {
        // SAFETY: in bounds, as above; the payload follows the slot header.
        unsafe { self.base.add(self.slot_offset(i) + std::mem::size_of::<SlotHeader>()) }
    }

    fn slot_offset(&self, i: usize) -> usize {
        std::mem::size_of::<Header>() + i * self.config.stride()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Only the file we created: a newer owner may have replaced it after we were taken for dead.
        if let Some((dev, ino)) = self.created {
            if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == (dev, ino)) {
                let _ = std::fs::remove_file(&self.path);
            }
        }
        drop(self.guard.take());
        // SAFETY: unmapping exactly what `map` mapped (unregistered first); no reference into it outlives the Mapping.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

/// A new empty file beside `path` with a name no one else uses: created
/// exclusively, never through a link, mode 0600 whatever the umask.
fn tempfile_in(dir: &Path, path: &Path) -> Result<(PathBuf, File), Error> {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    let stem = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut last = None;
    for _ in 0..CREATE_TRIES {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{stem}.{}.{n}.tmp", process::own_pid()));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(file) => {
                // The umask may only take bits away; fchmod makes it exactly 0600 regardless.
                if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(0o600)) {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(io("setting the mode of", &tmp)(e));
                }
                return Ok((tmp, file));
            }
            // Someone else's (or a leftover) name: take the next.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((tmp, e)),
            Err(e) => return Err(io("creating", &tmp)(e)),
        }
    }
    let (tmp, e) = last.expect("tried at least once");
    Err(io("creating", &tmp)(e))
}
