//! The live engine's shared memory: one memfd, laid out in page-aligned
//! regions with a guard page between each, created by the engine and mapped by
//! every worker.
//!
//! The engine maps the whole file. A worker reserves the whole range as
//! inaccessible and maps only the regions it needs over it, so the guard pages
//! (and the other workers' slots) stay unmapped: a patch's wild write past the
//! state memory faults instead of corrupting a neighbour.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::slot::Slot;
use crate::state::{StateMemory, DELAY_POOL_BYTES};

/// The marker for what may live in shared memory (see `clavm_channel::ShmSafe`);
/// here also: all zeroes is a valid initial value, and nothing a worker wrote is
/// trusted without checking (workers run patches).
pub use clavm_channel::ShmSafe;

// SAFETY: repr(C), plain numbers and arrays, all-zero is the initial state.
unsafe impl ShmSafe for StateMemory {}

pub const WORKERS: usize = 3;
const MAGIC: u64 = 0x434c_4156_4d5f_3031; // "CLAVM_01"

/// Which state memory a request runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Memory {
    /// The real state.
    Live = 0,
    /// A copy the old program fades out on.
    Shadow = 1,
    /// A copy a new program is test-run on (with its own delay lines).
    Test = 2,
}

impl Memory {
    pub fn from_u32(v: u32) -> Option<Memory> {
        [Memory::Live, Memory::Shadow, Memory::Test].into_iter().find(|m| *m as u32 == v)
    }
}

/// The first page: what a worker needs to know to map the rest.
#[repr(C)]
pub struct Header {
    pub magic: u64,
    pub total: u64,
    pub sample_rate: f64,
    pub channels: u32,
    pub inputs: u32,
    pub engine_pid: u32,
    pub _pad: u32,
    pub state: [Region; 3],
    pub delays: Region,
    pub test_delays: Region,
    pub slots: [Region; WORKERS],
}

// SAFETY: repr(C) numbers only.
unsafe impl ShmSafe for Header {}

/// A byte range of the file.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Region {
    pub offset: u64,
    pub len: u64,
}

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_PAGESIZE) }) as usize
}

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// Computes the layout: each region page-aligned, followed by one guard page.
fn layout() -> (Vec<Region>, usize) {
    let p = page();
    let sizes = [
        std::mem::size_of::<Header>(),
        std::mem::size_of::<StateMemory>(),
        std::mem::size_of::<StateMemory>(),
        std::mem::size_of::<StateMemory>(),
        DELAY_POOL_BYTES,
        DELAY_POOL_BYTES,
    ]
    .into_iter()
    .chain(std::iter::repeat_n(std::mem::size_of::<Slot>(), WORKERS));
    let mut regions = Vec::new();
    let mut at = 0usize;
    for s in sizes {
        let len = round_up(s, p);
        regions.push(Region { offset: at as u64, len: len as u64 });
        at += len + p;
    }
    (regions, at)
}

#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("cannot create shared memory: {0}")]
    Create(std::io::Error),
    #[error("cannot map shared memory: {0}")]
    Map(std::io::Error),
    #[error("shared memory is not CLAVM's (bad magic or size)")]
    Invalid,
}

/// A mapping of the shared memory (the engine's whole view, or a worker's partial one).
pub struct Shm {
    fd: OwnedFd,
    base: *mut u8,
    total: usize,
    header: Header,
}

// SAFETY: the mapping is process-wide memory; access to its regions is
// coordinated by the protocol (docs/LIVE_PROTOCOL.md), not by Rust borrows.
unsafe impl Send for Shm {}
// SAFETY: as above.
unsafe impl Sync for Shm {}

impl Shm {
    /// Creates the memory (engine side). The fd is inheritable: workers get it by number.
    pub fn create(sample_rate: f64, channels: usize, inputs: usize, seed: u64) -> Result<Shm, ShmError> {
        let (regions, total) = layout();
        // SAFETY: memfd_create with a valid name; no CLOEXEC so workers inherit it.
        let fd = unsafe { libc::memfd_create(c"clavm-live".as_ptr(), 0) };
        if fd < 0 {
            return Err(ShmError::Create(std::io::Error::last_os_error()));
        }
        // SAFETY: a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: resizing our own memfd; new bytes are zero.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), total as libc::off_t) } != 0 {
            return Err(ShmError::Create(std::io::Error::last_os_error()));
        }
        // SAFETY: mapping the whole file shared, read-write.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(ShmError::Map(std::io::Error::last_os_error()));
        }
        let header = Header {
            magic: MAGIC,
            total: total as u64,
            sample_rate,
            channels: channels as u32,
            inputs: inputs as u32,
            engine_pid: std::process::id(),
            _pad: 0,
            state: [regions[1], regions[2], regions[3]],
            delays: regions[4],
            test_delays: regions[5],
            slots: [regions[6], regions[7], regions[8]],
        };
        // SAFETY: the header region is at offset 0, page-sized, ours.
        unsafe { std::ptr::write(base as *mut Header, Header { ..header }) };
        let shm = Shm { fd, base: base as *mut u8, total, header };
        for m in [Memory::Live, Memory::Shadow, Memory::Test] {
            // SAFETY: the region is zeroed (a fresh memfd), so a valid StateMemory.
            unsafe { (*shm.state(m)).seed = seed };
        }
        // Keep what the audio thread touches resident: no page faults there.
        for r in [shm.header.state[0], shm.header.state[1], shm.header.delays] {
            shm.populate(r);
        }
        for r in shm.header.slots {
            shm.populate(r);
        }
        Ok(shm)
    }

    fn populate(&self, r: Region) {
        // SAFETY: a range of our mapping. MADV_POPULATE_WRITE faults pages in
        // now; mlock (best effort: limited without privileges) keeps them.
        unsafe {
            let p = self.base.add(r.offset as usize) as *mut libc::c_void;
            libc::madvise(p, r.len as usize, 23 /* MADV_POPULATE_WRITE */);
            libc::mlock(p, r.len as usize);
        }
    }

    /// Maps the memory a worker needs (worker side): the state memories, the
    /// delay pools and its own slot, with everything else inaccessible.
    ///
    /// # Safety
    /// `fd` must be the engine's memfd, inherited by this process.
    pub unsafe fn open_worker(fd: RawFd, slot: usize) -> Result<Shm, ShmError> {
        // SAFETY: the caller passes an fd this process owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut header = std::mem::MaybeUninit::<Header>::uninit();
        // SAFETY: reading the header bytes from the file into our buffer.
        let n = unsafe {
            libc::pread(fd.as_raw_fd(), header.as_mut_ptr() as *mut libc::c_void, std::mem::size_of::<Header>(), 0)
        };
        if n != std::mem::size_of::<Header>() as isize {
            return Err(ShmError::Invalid);
        }
        // SAFETY: fully written by pread; Header is plain numbers.
        let header = unsafe { header.assume_init() };
        let (regions, total) = layout();
        if header.magic != MAGIC
            || header.total as usize != total
            || slot >= WORKERS
            || header.slots[slot].offset != regions[6 + slot].offset
        {
            return Err(ShmError::Invalid);
        }
        // SAFETY: reserving address space, inaccessible.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(ShmError::Map(std::io::Error::last_os_error()));
        }
        let shm = Shm { fd, base: base as *mut u8, total, header };
        // (region, prefault?): the test run's memory is touched rarely; prefaulting
        // it would only make starting and exiting a worker slower.
        let h = &shm.header;
        let wanted = [
            (h.state[0], true),
            (h.state[1], true),
            (h.state[2], false),
            // Not prefaulted either: 64 MB of page tables would make every
            // worker's start and exit cost milliseconds of CPU, right when a
            // failed worker is replaced and the audio thread needs the cores.
            // A delay line touches a new page every 1024 samples: a minor fault.
            (h.delays, false),
            (h.test_delays, false),
            (h.slots[slot], true),
        ];
        for (r, prefault) in wanted {
            let populate = if prefault { libc::MAP_POPULATE } else { 0 };
            // SAFETY: mapping a region of the file over our own reservation.
            let p = unsafe {
                libc::mmap(
                    shm.base.add(r.offset as usize) as *mut libc::c_void,
                    r.len as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_FIXED | populate,
                    shm.fd.as_raw_fd(),
                    r.offset as libc::off_t,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(ShmError::Map(std::io::Error::last_os_error()));
            }
        }
        Ok(shm)
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn at<T: ShmSafe>(&self, r: Region) -> *mut T {
        debug_assert!(std::mem::size_of::<T>() <= r.len as usize);
        // SAFETY: inside the mapping; page-aligned regions satisfy T's alignment.
        unsafe { self.base.add(r.offset as usize) as *mut T }
    }

    /// One of the three state memories.
    pub fn state(&self, m: Memory) -> *mut StateMemory {
        self.at(self.header.state[m as usize])
    }

    /// The delay pool for `m` (Test has its own; Live and Shadow share one).
    pub fn delays(&self, m: Memory) -> *mut f32 {
        let r = if m == Memory::Test { self.header.test_delays } else { self.header.delays };
        // SAFETY: inside the mapping, page-aligned.
        unsafe { self.base.add(r.offset as usize) as *mut f32 }
    }

    /// Worker `i`'s slot (a worker maps only its own).
    pub fn slot(&self, i: usize) -> *mut Slot {
        self.at(self.header.slots[i])
    }
}

impl Drop for Shm {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what we mapped (or reserved).
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.total);
        }
    }
}
