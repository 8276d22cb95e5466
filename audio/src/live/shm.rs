//! The live engine's shared memory: what the engine shares with its worker
//! processes, as separate memory files so that each worker can reach only
//! what it must.
//!
//! - **The state file**: the three state memories (live, shadow, test) and
//!   the two delay pools, each page-aligned and followed by a guard page.
//!   Every worker maps these regions (any of them may run on any memory).
//! - **One slot file per worker**: its request/response handshake and payloads.
//!   A worker maps only its own.
//!
//! Nothing the engine depends on lives in shared memory: the layout and the
//! engine's configuration are the engine's own (`Layout`, computed by the
//! same binary on both sides; the worker reads its sample rate and channel
//! counts from its slot, written by the engine before the spawn). So a worker
//! that writes anything it can reach hurts only itself and the patch's state,
//! and the engine validates that state before using it (see
//! `StateMemory::free_sites_and_rebuild`).
//!
//! The files are sealed against resizing: no process, even one holding a
//! descriptor, can shrink one under the engine's mappings (a SIGBUS on the
//! audio thread). A worker gets its two files as descriptors 3 and 4
//! ([`WORKER_STATE_FD`], [`WORKER_SLOT_FD`]), maps them over a reservation
//! that keeps the guard pages unmapped, and closes every descriptor but
//! stdin, stdout and stderr before it runs any patch.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::slot::{Slot, SlotConfig};
use crate::state::{heap, ExtentSet, StateMemory, DELAY_POOL_BYTES, HEAP_BYTES};

/// The marker for what may live in shared memory (see `clavm_channel::ShmSafe`);
/// here also: all zeroes is a valid initial value, and nothing a worker wrote is
/// trusted without checking (workers run patches).
pub use clavm_channel::ShmSafe;

// SAFETY: repr(C), plain numbers and arrays, all-zero is the initial state.
unsafe impl ShmSafe for StateMemory {}

/// Active, backup, the idle one the next version compiles on, and a warm
/// spare: after a failure the spare becomes the backup at once, and the
/// killed worker's replacement starts afterwards (its start-up, ~5-10 ms, is
/// then off the path that restores protection).
pub const WORKERS: usize = 4;

/// The descriptor a worker finds the state file at.
pub const WORKER_STATE_FD: RawFd = 3;
/// The descriptor a worker finds its slot file at.
pub const WORKER_SLOT_FD: RawFd = 4;

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

/// A byte range of a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Region {
    pub offset: usize,
    pub len: usize,
}

/// Where everything is in the state file: computed, never read from shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Each state memory: the `StateMemory`, then (page-aligned, at
    /// `heap_at` into the region) its heap. One region, so that a worker can
    /// map a whole memory at its canonical address in one call.
    pub state: [Region; 3],
    /// Where the heap starts within a state region.
    pub heap_at: usize,
    pub delays: Region,
    pub test_delays: Region,
    /// Size of the state file.
    pub state_total: usize,
    /// Size of one slot file.
    pub slot_len: usize,
}

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_PAGESIZE) }) as usize
}

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

impl Layout {
    /// Each region page-aligned and followed by one guard page.
    pub fn new() -> Layout {
        let p = page();
        let mut at = 0usize;
        let mut next = |size: usize| {
            let r = Region { offset: at, len: round_up(size, p) };
            at += r.len + p;
            r
        };
        let heap_at = round_up(std::mem::size_of::<StateMemory>(), p);
        let s = heap_at + HEAP_BYTES;
        let state = [next(s), next(s), next(s)];
        let delays = next(DELAY_POOL_BYTES);
        let test_delays = next(DELAY_POOL_BYTES);
        Layout {
            state,
            heap_at,
            delays,
            test_delays,
            state_total: at,
            slot_len: round_up(std::mem::size_of::<Slot>(), p),
        }
    }

    /// The `StateMemory` part of state region `m` (what is worth keeping resident).
    fn state_only(&self, m: usize) -> Region {
        Region { offset: self.state[m].offset, len: self.heap_at }
    }
}

impl Default for Layout {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("cannot create shared memory: {0}")]
    Create(std::io::Error),
    #[error("cannot map shared memory: {0}")]
    Map(std::io::Error),
    #[error("shared memory is not CLAVM's (bad size or configuration)")]
    Invalid,
}

/// A mapping this process made, unmapped on drop.
struct Mapping {
    base: *mut u8,
    len: usize,
}

impl Mapping {
    /// Maps all of `fd` (`len` bytes) shared and read-write.
    fn whole(fd: &OwnedFd, len: usize) -> Result<Mapping, ShmError> {
        // SAFETY: a fresh shared mapping of a file we hold; no existing memory is affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(ShmError::Map(std::io::Error::last_os_error()));
        }
        Ok(Mapping { base: base as *mut u8, len })
    }

    /// Reserves `len` bytes of address space, inaccessible.
    fn reserve(len: usize) -> Result<Mapping, ShmError> {
        // SAFETY: an anonymous PROT_NONE reservation; affects no existing memory.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(ShmError::Map(std::io::Error::last_os_error()));
        }
        Ok(Mapping { base: base as *mut u8, len })
    }

    /// Maps region `r` of `fd` over this reservation, `at` bytes in plus the region's offset.
    fn map_region(&self, at: usize, fd: &OwnedFd, r: Region, prefault: bool) -> Result<(), ShmError> {
        if at + r.offset + r.len > self.len {
            return Err(ShmError::Invalid);
        }
        let populate = if prefault { libc::MAP_POPULATE } else { 0 };
        // SAFETY: MAP_FIXED over a range inside our own reservation (checked above).
        let p = unsafe {
            libc::mmap(
                self.base.add(at + r.offset) as *mut libc::c_void,
                r.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED | populate,
                fd.as_raw_fd(),
                r.offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(ShmError::Map(std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Faults `r` in now and locks it (best effort: mlock is limited without privileges).
    fn populate(&self, r: Region) {
        // SAFETY: a range of our mapping; both calls only change residency.
        unsafe {
            let p = self.base.add(r.offset) as *mut libc::c_void;
            libc::madvise(p, r.len, 23 /* MADV_POPULATE_WRITE */);
            libc::mlock(p, r.len);
        }
    }

    fn at<T>(&self, r: Region) -> *mut T {
        debug_assert!(std::mem::size_of::<T>() <= r.len && r.offset + r.len <= self.len);
        // SAFETY: inside the mapping; page-aligned regions satisfy T's alignment.
        unsafe { self.base.add(r.offset) as *mut T }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what we mapped (or reserved).
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.len);
        }
    }
}

/// A sealed memory file of `len` zero bytes, close-on-exec (a worker gets it
/// only through an explicit descriptor mapping at spawn).
pub(super) fn memfd(name: &std::ffi::CStr, len: usize) -> Result<OwnedFd, ShmError> {
    let create = |e| ShmError::Create(std::io::Error::from_raw_os_error(e));
    // SAFETY: memfd_create with a valid name.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(ShmError::Create(std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh fd we own.
    let low = unsafe { OwnedFd::from_raw_fd(fd) };
    // Numbered 10 or above, so that mapping it onto 3 or 4 in a worker never clobbers the other file.
    // SAFETY: fcntl on our own fd; the duplicate is close-on-exec too.
    let fd = unsafe { libc::fcntl(low.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if fd < 0 {
        return Err(ShmError::Create(std::io::Error::last_os_error()));
    }
    drop(low);
    // SAFETY: a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: resizing our own memfd; new bytes are zero.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
        return Err(ShmError::Create(std::io::Error::last_os_error()));
    }
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on our own fd with an integer argument.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(create(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL)));
    }
    Ok(fd)
}

/// The engine's view: every file, mapped whole.
pub struct Shm {
    layout: Layout,
    /// What every worker is told (rewritten into a slot before each spawn:
    /// the worker that used the slot before may have overwritten it).
    sample_rate: f64,
    channels: u32,
    inputs: u32,
    state_fd: OwnedFd,
    state: Mapping,
    slot_fds: [OwnedFd; WORKERS],
    slots: [Mapping; WORKERS],
}

// SAFETY: the mappings are process-wide memory; access to their regions is
// coordinated by the protocol (docs/LIVE_PROTOCOL.md), not by Rust borrows.
unsafe impl Send for Shm {}
// SAFETY: as above.
unsafe impl Sync for Shm {}

impl Shm {
    /// Creates the memory (engine side).
    pub fn create(sample_rate: f64, channels: usize, inputs: usize, seed: u64) -> Result<Shm, ShmError> {
        let layout = Layout::new();
        let state_fd = memfd(c"clavm-state", layout.state_total)?;
        let state = Mapping::whole(&state_fd, layout.state_total)?;
        let mut slot_fds = Vec::with_capacity(WORKERS);
        let mut slots = Vec::with_capacity(WORKERS);
        for _ in 0..WORKERS {
            let fd = memfd(c"clavm-slot", layout.slot_len)?;
            let m = Mapping::whole(&fd, layout.slot_len)?;
            // Keep what the audio thread touches resident: no page faults there.
            m.populate(Region { offset: 0, len: layout.slot_len });
            slot_fds.push(fd);
            slots.push(m);
        }
        let shm = Shm {
            layout,
            sample_rate,
            channels: channels as u32,
            inputs: inputs as u32,
            state_fd,
            state,
            slot_fds: slot_fds.try_into().unwrap_or_else(|_| unreachable!("WORKERS fds")),
            slots: slots.try_into().unwrap_or_else(|_| unreachable!("WORKERS mappings")),
        };
        for m in [Memory::Live, Memory::Shadow, Memory::Test] {
            // SAFETY: the region is zeroed (a fresh memfd), so a valid StateMemory.
            unsafe { (*shm.state(m)).seed = seed };
        }
        // The heaps are not prefaulted: 24 MiB each that most patches never touch.
        for r in [layout.state_only(0), layout.state_only(1), layout.delays] {
            shm.state.populate(r);
        }
        Ok(shm)
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The state file's descriptor (close-on-exec; for the spawn's descriptor mapping).
    pub fn state_fd(&self) -> RawFd {
        self.state_fd.as_raw_fd()
    }

    /// Worker `i`'s slot file descriptor (close-on-exec; for the spawn's descriptor mapping).
    pub fn slot_fd(&self, i: usize) -> RawFd {
        self.slot_fds[i].as_raw_fd()
    }

    /// One of the three state memories.
    pub fn state(&self, m: Memory) -> *mut StateMemory {
        self.state.at(self.layout.state[m as usize])
    }

    /// The delay pool for `m` (Test has its own; Live and Shadow share one).
    pub fn delays(&self, m: Memory) -> *mut f32 {
        let r = if m == Memory::Test { self.layout.test_delays } else { self.layout.delays };
        self.state.at(r)
    }

    /// The heap beside state memory `m` (`HEAP_BYTES`).
    pub fn heap(&self, m: Memory) -> *mut u8 {
        // SAFETY: `heap_at + HEAP_BYTES` is the region's length (see `Layout::new`).
        unsafe { self.state(m).cast::<u8>().add(self.layout.heap_at) }
    }

    /// Makes memory `to` a copy of `from`: the state (its used prefix) and
    /// the used part of the heap extents in `heaps` (the versions that may
    /// run on `to`), never whole heaps: this runs on the audio thread.
    ///
    /// # Safety
    /// No worker may be running on `to`; one running on `from` makes the copy
    /// torn, not unsound (plain bytes).
    pub unsafe fn copy_memory(&self, to: Memory, from: Memory, heaps: ExtentSet) {
        // SAFETY: the caller guarantees nobody writes `to`; both are in our mapping.
        unsafe {
            let src = &*self.state(from);
            (*self.state(to)).copy_from(src);
            heap::copy_used(self.heap(to), self.heap(from), &src.heap_used, heaps);
        }
    }

    /// Worker `i`'s slot.
    pub fn slot(&self, i: usize) -> *mut Slot {
        self.slots[i].at(Region { offset: 0, len: self.layout.slot_len })
    }

    /// Makes slot `i` ready for a new worker: its configuration written again
    /// (the previous worker may have overwritten it) and not ready.
    ///
    /// # Safety
    /// No worker may be running in slot `i` (the previous one is dead and reaped).
    pub unsafe fn prepare_slot(&self, i: usize) {
        let config = SlotConfig::new(i as u32, self.sample_rate, self.channels, self.inputs);
        // SAFETY: the caller guarantees nobody else uses the slot now.
        let slot = unsafe { &mut *self.slot(i) };
        slot.config = config;
        slot.ready.store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Inaccessible address space a worker keeps around each of its mappings:
/// a wild pointer computed from `_float(0)` and the like faults instead of
/// landing in the other mapping or in the worker's own memory.
pub const WORKER_GUARD: usize = 16 << 20;

/// A worker's view: the state file's regions and its own slot, in one
/// reservation `[guard][state regions, guard pages between][guard][slot][guard][canonical][guard]`
/// whose unmapped parts fault.
///
/// The *canonical* window is where patches run: before serving a request
/// on memory M the worker maps M (its state and heap) there again
/// ([`select`](Self::select)), so every pointer a patch takes into its state
/// (`_float()`, what `calloc` returned in `compiled()`) is the same address
/// whichever memory it runs on and whichever worker runs it. A `static`
/// pointer kept by a patch (Faust's DSP) stays right across LIVE, SHADOW and
/// TEST and across a backup taking over.
pub struct WorkerShm {
    layout: Layout,
    space: Mapping,
    slot_at: usize,
    canon_at: usize,
    /// Which memory the canonical window shows now.
    canon: Option<Memory>,
}

impl WorkerShm {
    /// Maps the state file at `state_fd` and the slot file at `slot_fd`, then
    /// closes both descriptors: afterwards the process holds no way to map
    /// anything else of the engine's, nor to resize what it maps.
    ///
    /// # Safety
    /// The descriptors must be the engine's files, inherited by this process
    /// and not used by anything else in it.
    pub unsafe fn open(state_fd: RawFd, slot_fd: RawFd) -> Result<WorkerShm, ShmError> {
        // SAFETY: the caller hands both descriptors over; dropping them closes them.
        let (state_fd, slot_fd) = unsafe { (OwnedFd::from_raw_fd(state_fd), OwnedFd::from_raw_fd(slot_fd)) };
        let layout = Layout::new();
        if file_size(&state_fd) != Some(layout.state_total) || file_size(&slot_fd) != Some(layout.slot_len) {
            return Err(ShmError::Invalid);
        }
        let slot_at = WORKER_GUARD + layout.state_total + WORKER_GUARD;
        let canon_at = slot_at + layout.slot_len + WORKER_GUARD;
        let space = Mapping::reserve(canon_at + layout.state[0].len + WORKER_GUARD)?;
        // Nothing is prefaulted or locked here. Patches run on the canonical
        // window, not on these mappings (they are only its source), and
        // `mremap` gives the window the source's flags: a locked source made
        // every switch fault in and lock the whole 24 MiB heap (5 ms on the
        // audio path). The heaps and delay pools would also make every
        // worker's start and exit cost milliseconds of CPU in page tables,
        // right when a failed worker is replaced and the audio thread needs
        // the cores. What a patch touches faults in once per switch: a few
        // pages of state, a minor fault each.
        let wanted = [layout.state[0], layout.state[1], layout.state[2], layout.delays, layout.test_delays];
        for r in wanted {
            space.map_region(WORKER_GUARD, &state_fd, r, false)?;
        }
        space.map_region(slot_at, &slot_fd, Region { offset: 0, len: layout.slot_len }, true)?;
        let mut shm = WorkerShm { layout, space, slot_at, canon_at, canon: None };
        shm.select(Memory::Live)?;
        Ok(shm)
    }

    fn in_state(&self, r: Region) -> Region {
        Region { offset: WORKER_GUARD + r.offset, len: r.len }
    }

    /// Shows memory `m` in the canonical window (a no-op if it is there):
    /// `mremap` with an old size of 0 maps the same shared pages a second
    /// time, over the previous ones, with no descriptor needed.
    pub fn select(&mut self, m: Memory) -> Result<(), ShmError> {
        if self.canon == Some(m) {
            return Ok(());
        }
        let r = self.in_state(self.layout.state[m as usize]);
        // SAFETY: both ranges are inside our reservation: `r` is a shared
        // mapping of the state file made in `open`, the target is the
        // canonical window (MREMAP_FIXED replaces whatever was there, which
        // is ours: the reservation or the previous memory's pages).
        let p = unsafe {
            let to = self.space.base.add(self.canon_at) as *mut libc::c_void;
            libc::mremap(
                self.space.base.add(r.offset) as *mut libc::c_void,
                0,
                r.len,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                to,
            )
        };
        if p == libc::MAP_FAILED {
            self.canon = None;
            return Err(ShmError::Map(std::io::Error::last_os_error()));
        }
        self.canon = Some(m);
        Ok(())
    }

    /// The state memory patches run on: whichever [`select`](Self::select) showed last.
    pub fn canonical_state(&self) -> *mut StateMemory {
        self.space.at(Region { offset: self.canon_at, len: self.layout.state[0].len })
    }

    /// The heap of the canonical window.
    pub fn canonical_heap(&self) -> *mut u8 {
        // SAFETY: inside the canonical window (`heap_at + HEAP_BYTES` is its length).
        unsafe { self.canonical_state().cast::<u8>().add(self.layout.heap_at) }
    }

    /// One of the three state memories, at its own address (not for patches: see `select`).
    pub fn state(&self, m: Memory) -> *mut StateMemory {
        self.space.at(self.in_state(self.layout.state[m as usize]))
    }

    /// The delay pool for `m` (Test has its own; Live and Shadow share one).
    pub fn delays(&self, m: Memory) -> *mut f32 {
        let r = if m == Memory::Test { self.layout.test_delays } else { self.layout.delays };
        self.space.at(self.in_state(r))
    }

    /// This worker's slot.
    pub fn slot(&self) -> *mut Slot {
        self.space.at(Region { offset: self.slot_at, len: self.layout.slot_len })
    }
}

fn file_size(fd: &OwnedFd) -> Option<usize> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat fills the struct on success.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstat succeeded.
    Some(unsafe { st.assume_init() }.st_size as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_sealed_against_resizing() {
        let shm = Shm::create(48000.0, 2, 0, 1).unwrap();
        for fd in [shm.state_fd(), shm.slot_fd(0)] {
            // SAFETY: ftruncate on our own descriptors; both must be refused by the seals.
            assert_ne!(unsafe { libc::ftruncate(fd, 4096) }, 0, "shrink refused");
            assert_ne!(unsafe { libc::ftruncate(fd, 1 << 40) }, 0, "grow refused");
            // SAFETY: as above.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            assert_ne!(flags & libc::FD_CLOEXEC, 0, "never inherited by accident");
        }
    }

    #[test]
    fn each_slot_carries_its_configuration() {
        let shm = Shm::create(44100.0, 2, 1, 1).unwrap();
        for i in 0..WORKERS {
            // SAFETY: our own mapping, no worker.
            unsafe { (*shm.slot(i)).config = SlotConfig::new(9, f64::NAN, 99, 99) };
            // SAFETY: no worker in the slot.
            unsafe { shm.prepare_slot(i) };
            // SAFETY: our own mapping.
            let c = unsafe { (*shm.slot(i)).config };
            assert_eq!(c.check(i), Some((44100.0, 2, 1)));
        }
    }
}

#[cfg(test)]
mod canonical_tests {
    use super::*;

    #[test]
    fn every_memory_shows_at_one_canonical_address_state_and_heap() {
        let shm = Shm::create(48000.0, 2, 0, 1).unwrap();
        // SAFETY: fresh duplicates of the engine's descriptors, handed to the worker view.
        let (state_fd, slot_fd) = unsafe { (libc::dup(shm.state_fd()), libc::dup(shm.slot_fd(0))) };
        // SAFETY: the duplicates are ours alone; `open` closes them.
        let mut w = unsafe { WorkerShm::open(state_fd, slot_fd) }.unwrap();
        let (state, heap) = (w.canonical_state(), w.canonical_heap());
        for (m, v) in [(Memory::Live, 1.0), (Memory::Shadow, 2.0), (Memory::Test, 3.0)] {
            // SAFETY: our own mappings; nothing else runs on them.
            unsafe {
                (*shm.state(m)).floats[7] = v;
                *shm.heap(m).add(12345) = v as u8;
            }
        }
        for (m, v) in [(Memory::Test, 3.0), (Memory::Live, 1.0), (Memory::Shadow, 2.0), (Memory::Live, 1.0)] {
            w.select(m).unwrap();
            assert_eq!(w.canonical_state(), state, "one address");
            // SAFETY: the canonical window shows memory `m` now.
            unsafe {
                assert_eq!((*state).floats[7], v);
                assert_eq!(*heap.add(12345), v as u8);
                // And writes through it land in `m`, where the engine sees them.
                (*state).ints[1] = v as i32 * 10;
                assert_eq!((*shm.state(m)).ints[1], v as i32 * 10);
            }
        }
    }

    #[test]
    fn copies_carry_the_state_and_the_chosen_heap_extents_only() {
        use crate::state::{Extent, HEAP_EXTENT_BYTES};
        let shm = Shm::create(48000.0, 2, 0, 1).unwrap();
        let (e1, e2) = (Extent::new(1).unwrap(), Extent::new(2).unwrap());
        // SAFETY: our own mapping, no worker.
        unsafe {
            let live = &mut *shm.state(Memory::Live);
            live.floats[3] = 0.5;
            live.heap_used[1] = 8;
            live.heap_used[2] = 8;
            *shm.heap(Memory::Live).add(HEAP_EXTENT_BYTES) = 11;
            *shm.heap(Memory::Live).add(2 * HEAP_EXTENT_BYTES) = 22;
            shm.copy_memory(Memory::Shadow, Memory::Live, ExtentSet::NONE.with(Some(e1)));
            assert_eq!((*shm.state(Memory::Shadow)).floats[3], 0.5);
            assert_eq!(*shm.heap(Memory::Shadow).add(HEAP_EXTENT_BYTES), 11);
            assert_eq!(*shm.heap(Memory::Shadow).add(2 * HEAP_EXTENT_BYTES), 0, "{e2:?} not asked for");
        }
    }
}
