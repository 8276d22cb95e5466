//! The sample arena: one memory file holding every sample the live engine
//! plays, written by the control thread and mapped read-only by workers.
//!
//! - Created at engine start, sized to the sample memory bound and sparse
//!   (pages exist only where a sample was written), sealed against resizing
//!   like the other memory files.
//! - The control thread decodes a sample (never the audio thread, never a
//!   worker) and copies it into a free extent of the engine's read-write
//!   mapping.
//! - A worker gets a descriptor opened `O_RDONLY` (at [`WORKER_SAMPLES_FD`])
//!   and maps it `PROT_READ`: without a writable descriptor the kernel
//!   refuses to make a shared mapping writable (`mprotect` fails with
//!   EACCES), so a patch cannot change a sample another version plays.
//! - What a version plays is a table of [`ArenaView`]s (offset, frames,
//!   channels) sent with its compile request: a new sample set swaps in with
//!   the version that uses it. The worker checks every view against the
//!   arena's size before it becomes a pointer.
//! - An extent no kept version uses is freed with a punched hole (its pages
//!   go back to the system; a worker still mapping it would read zeros,
//!   never fault).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::shm::ShmError;
use crate::samples::{SampleData, SampleTable, SampleView, MAX_CHANNELS, SLOTS};

/// The descriptor a worker finds the sample arena at.
pub const WORKER_SAMPLES_FD: RawFd = 5;

/// One sample as a version's compile request carries it: where in the
/// arena, how long. `frames == 0` is an empty number. Written by the control
/// thread into a slot; a worker checks it before use.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArenaView {
    pub offset: u64,
    pub frames: u64,
    pub channels: u32,
    pub _pad: u32,
}

/// A version's samples, by number.
pub type ArenaTable = [ArenaView; SLOTS];

/// A version that plays no samples.
pub const NO_SAMPLES: ArenaTable = [ArenaView { offset: 0, frames: 0, channels: 0, _pad: 0 }; SLOTS];

/// A range of the arena in use, page-aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub offset: usize,
    pub len: usize,
}

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_PAGESIZE) }) as usize
}

/// The engine's side: the file, its read-only twin for workers, the
/// read-write mapping and the free extents.
pub struct SampleArena {
    fd: OwnedFd,
    ro_fd: OwnedFd,
    base: *mut u8,
    len: usize,
    /// Free extents, sorted by offset, never adjacent (merged on release).
    free: Vec<Extent>,
}

// SAFETY: the mapping is process-wide memory used by the control thread only
// (workers have their own read-only mappings).
unsafe impl Send for SampleArena {}

impl SampleArena {
    /// A sparse arena of `len` bytes (rounded up to pages; at least one page).
    pub fn create(len: usize) -> Result<SampleArena, ShmError> {
        let p = page();
        let len = len.max(1).div_ceil(p) * p;
        let fd = super::shm::memfd(c"clavm-samples", len)?;
        // The workers' descriptor: the same file, opened read-only.
        let path = format!("/proc/self/fd/{}\0", fd.as_raw_fd());
        // SAFETY: a NUL-terminated path; open returns a new descriptor or -1.
        let raw = unsafe { libc::open(path.as_ptr() as *const libc::c_char, libc::O_RDONLY | libc::O_CLOEXEC) };
        if raw < 0 {
            return Err(ShmError::Create(std::io::Error::last_os_error()));
        }
        // SAFETY: a fresh descriptor we own.
        let low = unsafe { OwnedFd::from_raw_fd(raw) };
        // Numbered 10 or above, like the other files (see `shm::memfd`).
        // SAFETY: fcntl on our own descriptor; the duplicate is close-on-exec too.
        let raw = unsafe { libc::fcntl(low.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
        if raw < 0 {
            return Err(ShmError::Create(std::io::Error::last_os_error()));
        }
        // SAFETY: a fresh descriptor we own.
        let ro_fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: a fresh shared mapping of a file we hold.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(ShmError::Map(std::io::Error::last_os_error()));
        }
        Ok(SampleArena { fd, ro_fd, base: base as *mut u8, len, free: vec![Extent { offset: 0, len }] })
    }

    /// The read-only descriptor workers map (close-on-exec; for the spawn's descriptor mapping).
    pub fn ro_fd(&self) -> RawFd {
        self.ro_fd.as_raw_fd()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes not in any extent.
    pub fn free_bytes(&self) -> usize {
        self.free.iter().map(|e| e.len).sum()
    }

    /// The largest extent that could be stored now.
    pub fn largest_free(&self) -> usize {
        self.free.iter().map(|e| e.len).max().unwrap_or(0)
    }

    /// Copies `data` into a free extent (first fit); `None` when none is big enough.
    pub fn store(&mut self, data: &SampleData) -> Option<(Extent, ArenaView)> {
        let bytes = data.samples.len().checked_mul(4)?;
        let want = bytes.max(1).div_ceil(page()) * page();
        let i = self.free.iter().position(|e| e.len >= want)?;
        let at = self.free[i].offset;
        if self.free[i].len == want {
            self.free.remove(i);
        } else {
            self.free[i] = Extent { offset: at + want, len: self.free[i].len - want };
        }
        // SAFETY: `at..at + bytes` lies inside our mapping (a free extent) and
        // nothing else uses it: no version refers to a free extent.
        unsafe { std::ptr::copy_nonoverlapping(data.samples.as_ptr() as *const u8, self.base.add(at), bytes) };
        let view =
            ArenaView { offset: at as u64, frames: data.frames() as u64, channels: data.channels as u32, _pad: 0 };
        Some((Extent { offset: at, len: want }, view))
    }

    /// Gives `e` back: its pages are punched out of the file and the extent
    /// merges with its free neighbours.
    pub fn release(&mut self, e: Extent) {
        if e.len == 0 || e.offset.checked_add(e.len).is_none_or(|end| end > self.len) {
            return;
        }
        // SAFETY: fallocate on our own memfd, within its size; keeps the size.
        unsafe {
            libc::fallocate(
                self.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                e.offset as libc::off_t,
                e.len as libc::off_t,
            );
        }
        let i = self.free.partition_point(|f| f.offset < e.offset);
        self.free.insert(i, e);
        // Merge with the next, then the previous.
        if i + 1 < self.free.len() && self.free[i].offset + self.free[i].len == self.free[i + 1].offset {
            self.free[i].len += self.free[i + 1].len;
            self.free.remove(i + 1);
        }
        if i > 0 && self.free[i - 1].offset + self.free[i - 1].len == self.free[i].offset {
            self.free[i - 1].len += self.free[i].len;
            self.free.remove(i);
        }
    }
}

impl Drop for SampleArena {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what we mapped.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

/// A worker's read-only mapping of the arena (empty if it has none).
pub struct WorkerArena {
    base: *const u8,
    len: usize,
}

impl WorkerArena {
    /// Maps the arena at `fd` read-only and closes `fd`. An arena that cannot
    /// be mapped is an empty one (every sample then plays 0).
    ///
    /// # Safety
    /// `fd` must be the engine's arena descriptor, inherited by this process
    /// and used by nothing else in it.
    pub unsafe fn open(fd: RawFd) -> WorkerArena {
        // SAFETY: the caller hands the descriptor over; dropping it closes it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat fills the struct on success.
        let len = if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } == 0 {
            // SAFETY: fstat succeeded.
            unsafe { st.assume_init() }.st_size.max(0) as usize
        } else {
            0
        };
        if len == 0 {
            return WorkerArena { base: std::ptr::null(), len: 0 };
        }
        // SAFETY: a fresh read-only shared mapping of the file we were given.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return WorkerArena { base: std::ptr::null(), len: 0 };
        }
        WorkerArena { base: base as *const u8, len }
    }

    /// Bytes mapped.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// An arena with nothing in it (tests, or a worker started without one).
    pub fn none() -> WorkerArena {
        WorkerArena { base: std::ptr::null(), len: 0 }
    }

    /// `views` made into pointers; a view that does not lie inside the arena
    /// (a corrupted or hostile slot) or has an impossible shape is empty.
    pub fn table(&self, views: &ArenaTable) -> SampleTable {
        let mut t = SampleTable::EMPTY;
        for (out, v) in t.views.iter_mut().zip(views) {
            let fits = (1..=MAX_CHANNELS as u32).contains(&v.channels)
                && v.frames > 0
                && v.offset % 4 == 0
                && v.frames
                    .checked_mul(u64::from(v.channels))
                    .and_then(|n| n.checked_mul(4))
                    .and_then(|b| b.checked_add(v.offset))
                    .is_some_and(|end| end <= self.len as u64);
            if fits && !self.base.is_null() {
                *out = SampleView {
                    // SAFETY: offset + the view's bytes lie inside the mapping (checked above).
                    data: unsafe { self.base.add(v.offset as usize) } as *const f32,
                    frames: v.frames,
                    channels: v.channels,
                    _pad: 0,
                };
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(frames: usize, channels: usize, v: f32) -> SampleData {
        SampleData { channels, samples: vec![v; frames * channels] }
    }

    #[test]
    fn stored_samples_read_back_through_a_read_only_mapping() {
        let mut a = SampleArena::create(1 << 20).unwrap();
        let (_, v1) = a.store(&data(100, 2, 0.5)).unwrap();
        let (e2, v2) = a.store(&data(10, 1, -0.25)).unwrap();
        assert_ne!(v1.offset, v2.offset);
        // SAFETY: a duplicate of the arena's read-only descriptor, handed to the mapping.
        let w = unsafe { WorkerArena::open(libc::dup(a.ro_fd())) };
        let mut views = [ArenaView::default(); SLOTS];
        views[3] = v1;
        views[9] = v2;
        let t = w.table(&views);
        // SAFETY: in range of the stored samples.
        unsafe {
            assert_eq!(t.views[3].at(99, 1), 0.5);
            assert_eq!(t.views[9].at(9, 0), -0.25);
        }
        assert!(t.views[0].is_empty());
        // A worker cannot make its mapping writable: the descriptor was read-only.
        let p = t.views[3].data as *mut libc::c_void;
        let page_start = (p as usize / page() * page()) as *mut libc::c_void;
        // SAFETY: mprotect on our own mapping; it must be refused.
        let r = unsafe { libc::mprotect(page_start, page(), libc::PROT_READ | libc::PROT_WRITE) };
        assert_eq!(r, -1);
        assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EACCES));
        // Freed: the pages read zero, and the extent is used again.
        a.release(e2);
        // SAFETY: still mapped (sparse, reads zero).
        assert_eq!(unsafe { t.views[9].at(0, 0) }, 0.0);
        let (_, v3) = a.store(&data(10, 1, 1.0)).unwrap();
        assert_eq!(v3.offset, v2.offset);
    }

    #[test]
    fn views_outside_the_arena_are_empty() {
        let a = SampleArena::create(1 << 16).unwrap();
        // SAFETY: as above.
        let w = unsafe { WorkerArena::open(libc::dup(a.ro_fd())) };
        let mut views = [ArenaView::default(); SLOTS];
        views[0] = ArenaView { offset: 0, frames: 1 << 20, channels: 1, _pad: 0 };
        views[1] = ArenaView { offset: u64::MAX - 3, frames: 1, channels: 1, _pad: 0 };
        views[2] = ArenaView { offset: 0, frames: u64::MAX, channels: 8, _pad: 0 };
        views[3] = ArenaView { offset: 0, frames: 4, channels: 9, _pad: 0 };
        views[4] = ArenaView { offset: 2, frames: 4, channels: 1, _pad: 0 };
        views[5] = ArenaView { offset: 0, frames: 4, channels: 1, _pad: 0 };
        let t = w.table(&views);
        assert!(t.views[..5].iter().all(|v| v.is_empty()));
        assert!(!t.views[5].is_empty());
    }

    #[test]
    fn extents_merge_and_the_arena_fills_up() {
        let mut a = SampleArena::create(4 * page()).unwrap();
        let one = data(page() / 4, 1, 0.0);
        let e: Vec<Extent> = (0..4).map(|_| a.store(&one).unwrap().0).collect();
        assert!(a.store(&one).is_none(), "full");
        a.release(e[1]);
        a.release(e[2]);
        assert_eq!(a.largest_free(), 2 * page(), "neighbours merge");
        a.release(e[0]);
        a.release(e[3]);
        assert_eq!(a.free_bytes(), 4 * page());
        assert_eq!(a.largest_free(), 4 * page());
    }
}
