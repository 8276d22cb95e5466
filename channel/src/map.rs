//! The channel file: created (replacing a stale one), opened and checked, mapped.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use crate::layout::{Config, Header, SlotHeader, MAGIC, VERSION};
use crate::process;
use crate::Error;

/// A whole channel file mapped shared. Unmapped on drop; the owner also
/// removes the file.
pub(crate) struct Mapping {
    base: *mut u8,
    len: usize,
    pub config: Config,
    pub path: PathBuf,
    owner: bool,
}

// SAFETY: the mapping is plain shared memory; every access to it goes through
// atomics or through slots the ring protocol has handed to one side.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { what, path: path.to_path_buf(), source }
}

impl Mapping {
    /// Creates the channel at `path`, owned by this process. A file left by a
    /// process that is gone is replaced; one whose owner runs is refused.
    pub fn create(path: &Path, config: Config) -> Result<Mapping, Error> {
        config.check().map_err(Error::BadConfig)?;
        // Build the file under a private name, then link it into place: a
        // reader never sees a half-initialised channel.
        let dir = path.parent().unwrap_or(Path::new("/dev/shm"));
        let tmp = tempfile_in(dir, path)?;
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&tmp).map_err(io("opening", &tmp))?;
        let len = config.file_len();
        let result = (|| {
            file.set_len(len as u64).map_err(io("sizing", &tmp))?;
            let m = map(&file, len, &tmp)?;
            let mut mapping = Mapping { base: m, len, config, path: path.to_path_buf(), owner: false };
            mapping.initialise();
            loop {
                match std::fs::hard_link(&tmp, path) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match Mapping::open(path) {
                        Ok(live) => {
                            let pid = live.header().owner_pid;
                            return Err(Error::InUse { path: path.to_path_buf(), pid });
                        }
                        // Gone, stale or garbage: replace it (and race any other starter fairly).
                        Err(Error::OwnerGone { .. }) | Err(Error::Corrupt { .. }) => {
                            let _ = std::fs::remove_file(path);
                        }
                        Err(Error::NotFound(_)) => {}
                        Err(e) => return Err(e),
                    },
                    Err(e) => return Err(io("creating", path)(e)),
                }
            }
            mapping.owner = true;
            Ok(mapping)
        })();
        let _ = std::fs::remove_file(&tmp);
        result
    }

    /// Opens an existing channel, checking that it is well-formed and that its owner lives.
    pub fn open(path: &Path) -> Result<Mapping, Error> {
        let file = match std::fs::OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotFound(path.to_path_buf())),
            Err(e) => return Err(io("opening", path)(e)),
        };
        let corrupt = |why: &str| Error::Corrupt { path: path.to_path_buf(), why: why.to_string() };
        let file_len = file.metadata().map_err(io("reading", path))?.len() as usize;
        if file_len < std::mem::size_of::<Header>() {
            return Err(corrupt("shorter than a channel header"));
        }
        let m = map(&file, file_len, path)?;
        let mut mapping = Mapping {
            base: m,
            len: file_len,
            config: Config::new(crate::Mode::Mpsc, 1, 2),
            path: path.to_path_buf(),
            owner: false,
        };
        let h = mapping.header();
        if h.magic.load(Ordering::Acquire) != MAGIC {
            return Err(corrupt("no channel magic number"));
        }
        if h.version != VERSION {
            return Err(corrupt(&format!("channel version {} (this build speaks {VERSION})", h.version)));
        }
        let Some(config) = h.config().filter(|c| c.file_len() == file_len) else {
            return Err(corrupt("sizes in the header do not match the file"));
        };
        if !process::alive(h.owner_pid, Some(h.owner_start)) {
            return Err(Error::OwnerGone { path: path.to_path_buf(), pid: h.owner_pid });
        }
        mapping.config = config;
        Ok(mapping)
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
        if self.owner {
            // Only our own file: a newer owner may have replaced it after we were taken for dead.
            if self.header().owner_pid == process::own_pid() {
                let _ = std::fs::remove_file(&self.path);
            }
        }
        // SAFETY: unmapping exactly what `map` mapped; no reference into it outlives the Mapping.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

fn map(file: &std::fs::File, len: usize, path: &Path) -> Result<*mut u8, Error> {
    // SAFETY: a fresh shared mapping of a file we hold open, of its current length.
    let p = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, file.as_raw_fd(), 0)
    };
    if p == libc::MAP_FAILED {
        return Err(io("mapping", path)(std::io::Error::last_os_error()));
    }
    Ok(p as *mut u8)
}

/// A new empty file beside `path` with a name no one else uses.
fn tempfile_in(dir: &Path, path: &Path) -> Result<PathBuf, Error> {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    let stem = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    loop {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{stem}.{}.{n}.tmp", process::own_pid()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(_) => return Ok(tmp),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io("creating", &tmp)(e)),
        }
    }
}
