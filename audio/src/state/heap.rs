//! The patch heap: where `calloc`/`malloc` called from `compiled()` get
//! their memory (Faust's `newmydsp()` is one `calloc` of the whole DSP).
//!
//! It lives beside each state memory (offline: owned; live: in the state
//! file, after each `StateMemory`), so what a patch allocates survives a
//! worker's crash and every worker sees it. It is cut into
//! [`HEAP_EXTENTS`] extents of [`HEAP_EXTENT_BYTES`]; each patch version
//! allocates in its own extent, handed to it by whoever installs it, so the
//! version fading out, the backup and the new version never share bytes.
//! Allocation is a bump within the extent, reset at each `compiled()`: the
//! same calls return the same offsets in every worker and every memory, which
//! is what lets a pointer a patch keeps in a `static` stay right (see
//! docs/ARCHITECTURE.md, "Patches may allocate in `compiled()`"). Nothing is
//! freed one by one: an extent is reused when its version is gone.
//!
//! How much of each extent is used is kept in the state memory
//! (`StateMemory::heap_used`), which patches can overwrite: every use of it
//! is bounded by the extent's size.

/// Extents: the versions that can be alive at once (the one playing, the
/// ones kept to be loaded again, the one being compiled), with room to spare.
pub const HEAP_EXTENTS: usize = 6;
/// Bytes one version may allocate (a Faust reverb takes a few hundred KiB).
pub const HEAP_EXTENT_BYTES: usize = 4 << 20;
/// Bytes of one heap (address space; only touched pages take memory).
pub const HEAP_BYTES: usize = HEAP_EXTENTS * HEAP_EXTENT_BYTES;
/// Every allocation is aligned to this (what `malloc` guarantees on x86-64).
pub const HEAP_ALIGN: usize = 16;

/// An extent of the heap, the one a version allocates in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extent(u8);

impl Extent {
    /// Extent `i`, if there is one.
    pub fn new(i: usize) -> Option<Extent> {
        (i < HEAP_EXTENTS).then_some(Extent(i as u8))
    }

    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The bit of this extent in an [`ExtentSet`].
    pub fn bit(self) -> ExtentSet {
        ExtentSet(1 << self.0)
    }
}

/// Which extents a copy between memories must carry (the versions that may
/// still run on the destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtentSet(pub u8);

impl ExtentSet {
    pub const NONE: ExtentSet = ExtentSet(0);

    pub fn with(self, e: Option<Extent>) -> ExtentSet {
        ExtentSet(self.0 | e.map_or(0, |e| e.bit().0))
    }

    pub fn contains(self, e: Extent) -> bool {
        self.0 & e.bit().0 != 0
    }
}

/// Takes `bytes` from `extent` of the heap at `heap`, whose used length is
/// `*used` (patch-writable: any value is handled). Returns the offset from
/// `heap`, or `None` when the extent is full. The bytes are zeroed.
///
/// # Safety
/// `heap` must be valid for writes of [`HEAP_BYTES`].
pub unsafe fn bump(heap: *mut u8, extent: Extent, used: &mut u32, bytes: usize) -> Option<usize> {
    let start = (*used as usize).min(HEAP_EXTENT_BYTES).next_multiple_of(HEAP_ALIGN);
    let end = start.checked_add(bytes.max(1))?;
    if end > HEAP_EXTENT_BYTES {
        return None;
    }
    *used = end as u32;
    let off = extent.index() * HEAP_EXTENT_BYTES + start;
    // SAFETY: `off + bytes` is inside the extent, inside the heap (caller's contract).
    unsafe { std::ptr::write_bytes(heap.add(off), 0, end - start) };
    Some(off)
}

/// Copies the used part of each extent in `which` from heap `from` to heap
/// `to`, `used` being the source's used lengths (bounded here).
///
/// # Safety
/// Both heaps must be valid for [`HEAP_BYTES`] and not overlap.
pub unsafe fn copy_used(to: *mut u8, from: *const u8, used: &[u32; HEAP_EXTENTS], which: ExtentSet) {
    for (i, &u) in used.iter().enumerate() {
        let Some(e) = Extent::new(i) else { continue };
        if !which.contains(e) {
            continue;
        }
        let n = (u as usize).min(HEAP_EXTENT_BYTES);
        let off = i * HEAP_EXTENT_BYTES;
        // SAFETY: inside both heaps (caller's contract), which do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(from.add(off), to.add(off), n) };
    }
}

/// A heap owned by this process (offline, tests), zeroed lazily by the allocator.
pub struct OwnedHeap(Box<[u8]>);

impl OwnedHeap {
    pub fn new() -> OwnedHeap {
        OwnedHeap(vec![0u8; HEAP_BYTES].into_boxed_slice())
    }

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.0.as_mut_ptr()
    }
}

impl Default for OwnedHeap {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_is_aligned_zeroed_deterministic_and_bounded() {
        let mut heap = OwnedHeap::new();
        let p = heap.as_mut_ptr();
        let e = Extent::new(2).unwrap();
        let mut used = 0u32;
        // SAFETY: the owned heap is HEAP_BYTES long.
        let a = unsafe { bump(p, e, &mut used, 10) }.unwrap();
        assert_eq!(a, 2 * HEAP_EXTENT_BYTES);
        // SAFETY: as above; dirty the bytes, then take them again after a reset.
        unsafe { std::ptr::write_bytes(p.add(a), 0xff, 10) };
        let b = unsafe { bump(p, e, &mut used, 3) }.unwrap();
        assert_eq!(b % HEAP_ALIGN, 0);
        assert_eq!(b, a + 16);
        used = 0;
        let again = unsafe { bump(p, e, &mut used, 10) }.unwrap();
        assert_eq!(again, a, "the same calls give the same offsets");
        assert!(heap.0[a..a + 10].iter().all(|&x| x == 0), "calloc's bytes are zero");
        // Too big, a wild used length, an overflowing size: refused, never outside the extent.
        assert_eq!(unsafe { bump(p, e, &mut used, HEAP_EXTENT_BYTES) }, None);
        used = u32::MAX;
        assert_eq!(unsafe { bump(p, e, &mut used, 1) }, None);
        used = 0;
        assert_eq!(unsafe { bump(p, e, &mut used, usize::MAX) }, None);
        assert_eq!(Extent::new(HEAP_EXTENTS), None);
    }

    #[test]
    fn copies_carry_the_used_part_of_the_chosen_extents_only() {
        let (mut a, mut b) = (OwnedHeap::new(), OwnedHeap::new());
        a.0[HEAP_EXTENT_BYTES..HEAP_EXTENT_BYTES + 100].fill(7);
        a.0[3 * HEAP_EXTENT_BYTES] = 9;
        let mut used = [0u32; HEAP_EXTENTS];
        used[1] = 50;
        used[3] = u32::MAX; // patch-written garbage: bounded
        let which = ExtentSet::NONE.with(Extent::new(1));
        // SAFETY: two owned heaps of HEAP_BYTES.
        unsafe { copy_used(b.as_mut_ptr(), a.as_mut_ptr(), &used, which) };
        assert!(b.0[HEAP_EXTENT_BYTES..HEAP_EXTENT_BYTES + 50].iter().all(|&x| x == 7));
        assert_eq!(b.0[HEAP_EXTENT_BYTES + 50], 0, "only the used part");
        assert_eq!(b.0[3 * HEAP_EXTENT_BYTES], 0, "only the chosen extents");
        unsafe { copy_used(b.as_mut_ptr(), a.as_mut_ptr(), &used, which.with(Extent::new(3))) };
        assert_eq!(b.0[3 * HEAP_EXTENT_BYTES], 9);
    }
}
