//! The engine's state memory: everything a patch keeps between samples.
//!
//! It is one `#[repr(C)]` block of plain data in which all-zero bytes are the
//! valid initial state, so it can be allocated zeroed (and, for the live
//! engine, placed in shared memory that outlives a worker process). Nothing in
//! it is a pointer: cells link to each other by index.
//!
//! - `_float`/`_double`/`_int` slots, zeroed at start, kept across recompiles;
//! - one [`Site`] per stateful call site of the patch, indexed by its
//!   [`SiteId`](crate::patch::sites::SiteId);
//! - a pool of [`Cell`]s, one per *occurrence* of a call site within one
//!   `play()` (a call in a loop or a macro used twice has several), chained
//!   from the site;
//! - free lists for cells and delay lines, so that nothing is allocated while
//!   audio runs.

mod delay_pool;
pub mod heap;

pub use delay_pool::{DelayPool, DELAY_LINES, DELAY_LINE_LEN, DELAY_POOL_BYTES};
pub use heap::{Extent, ExtentSet, OwnedHeap, HEAP_BYTES, HEAP_EXTENTS, HEAP_EXTENT_BYTES};

use bytemuck::Zeroable;

pub const FLOAT_SLOTS: usize = 4096;
pub const DOUBLE_SLOTS: usize = 4096;
pub const INT_SLOTS: usize = 4096;
/// Most stateful call sites one patch may have.
pub const MAX_SITES: usize = 4096;
/// Most live builtin states (all occurrences of all sites).
pub const MAX_CELLS: usize = 16384;

/// Per call site: where its chain of occurrence cells starts, and which
/// occurrence the current `play()` is at.
#[repr(C)]
#[derive(Clone, Copy, Debug, Zeroable)]
pub struct Site {
    /// The `play()` call (epoch) this site was last used in; 0 = never.
    pub epoch: u64,
    /// First cell index + 1 (0 = none yet).
    pub first: u32,
    /// Cell index + 1 of the occurrence used last in `epoch`.
    pub cursor: u32,
    /// How many occurrences ran in `epoch` so far.
    pub count: u32,
    pub _pad: u32,
}

/// One builtin's state. Its fields mean what the builtin says (see `builtins`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Zeroable)]
pub struct Cell {
    pub a: f64,
    pub b: f64,
    pub u: u64,
    /// Next occurrence's cell index + 1 (0 = none), or the next free cell on the free list.
    pub next: u32,
    /// Delay line index + 1 (0 = none), for `Delay`.
    pub line: u32,
}

#[repr(C)]
#[derive(Zeroable)]
pub struct StateMemory {
    pub seed: u64,
    /// Cells in use are all below this index (so copies copy only this prefix).
    pub cells_high: u32,
    /// Head of the cell free list (index + 1; 0 = empty).
    pub cell_free: u32,
    /// Head of the delay-line free list (index + 1; 0 = empty), and the next never-used line.
    pub line_free: u32,
    pub lines_high: u32,
    /// Bytes used in each extent of the heap beside this memory (see
    /// [`heap`]); reset by a version's `compiled()`, bounded wherever read.
    pub heap_used: [u32; HEAP_EXTENTS],
    pub floats: [f32; FLOAT_SLOTS],
    pub doubles: [f64; DOUBLE_SLOTS],
    pub ints: [i32; INT_SLOTS],
    pub sites: [Site; MAX_SITES],
    pub line_next: [u32; DELAY_LINES],
    pub cells: [Cell; MAX_CELLS],
}

impl StateMemory {
    pub fn new_boxed(seed: u64) -> Box<StateMemory> {
        let mut m: Box<StateMemory> = bytemuck::zeroed_box();
        m.seed = seed;
        m
    }

    /// Makes `self` a copy of `other` (only the used prefix of the cell pool is copied).
    pub fn copy_from(&mut self, other: &StateMemory) {
        self.seed = other.seed;
        self.cells_high = other.cells_high;
        self.cell_free = other.cell_free;
        self.line_free = other.line_free;
        self.lines_high = other.lines_high;
        self.heap_used = other.heap_used;
        self.floats = other.floats;
        self.doubles = other.doubles;
        self.ints = other.ints;
        self.sites = other.sites;
        self.line_next = other.line_next;
        // Bounded: `cells_high` is written by worker processes, which run patches.
        let n = (other.cells_high as usize).min(MAX_CELLS);
        self.cells[..n].copy_from_slice(&other.cells[..n]);
    }

    /// Takes a cell from the pool, zeroed. `None` when the pool is exhausted
    /// (or its bookkeeping was overwritten past repair: the next swap rebuilds it).
    pub fn alloc_cell(&mut self) -> Option<u32> {
        let free = self.cell_free;
        let idx = if free != 0 && (free as usize) <= MAX_CELLS {
            let idx = free - 1;
            self.cell_free = self.cells[idx as usize].next;
            idx
        } else if (self.cells_high as usize) < MAX_CELLS {
            // An out-of-range free list (a patch wrote it) is dropped, not followed.
            self.cell_free = 0;
            self.cells_high += 1;
            self.cells_high - 1
        } else {
            return None;
        };
        self.cells[idx as usize] = Cell::zeroed();
        Some(idx)
    }

    /// Takes a delay line from the pool. `None` when all are in use.
    pub fn alloc_line(&mut self) -> Option<u32> {
        let free = self.line_free;
        if free != 0 && (free as usize) <= DELAY_LINES {
            let idx = free - 1;
            self.line_free = self.line_next[idx as usize];
            Some(idx)
        } else if (self.lines_high as usize) < DELAY_LINES {
            self.line_free = 0;
            self.lines_high += 1;
            Some(self.lines_high - 1)
        } else {
            None
        }
    }

    /// Forgets the call sites `sites` and rebuilds the free lists from what
    /// the remaining sites still hold.
    ///
    /// Everything here was written by worker processes, which run patches: a
    /// patch that writes past its own state can set any count, index or link.
    /// So nothing is followed blindly: every index is range-checked, every
    /// walk is bounded and marks what it visited (a cycle or a cell claimed
    /// twice is cut), and the free lists are rebuilt from scratch rather than
    /// trusted. O(`MAX_CELLS` + `MAX_SITES` + `DELAY_LINES`), no allocation:
    /// fit for the audio thread at the end of a swap.
    pub fn free_sites_and_rebuild(&mut self, sites: impl IntoIterator<Item = usize>) -> Integrity {
        let mut integrity = Integrity::Sound;
        for site in sites {
            match self.sites.get_mut(site) {
                Some(s) => *s = Site::zeroed(),
                None => integrity = Integrity::Repaired,
            }
        }
        if self.rebuild_free_lists() == Integrity::Repaired {
            integrity = Integrity::Repaired;
        }
        integrity
    }

    /// Rebuilds both free lists from the cells and lines the sites' chains
    /// reach, cutting whatever is out of range, cyclic or claimed twice (see
    /// [`free_sites_and_rebuild`](Self::free_sites_and_rebuild)).
    pub fn rebuild_free_lists(&mut self) -> Integrity {
        let mut repaired = false;
        if self.cells_high as usize > MAX_CELLS {
            self.cells_high = MAX_CELLS as u32;
            repaired = true;
        }
        if self.lines_high as usize > DELAY_LINES {
            self.lines_high = DELAY_LINES as u32;
            repaired = true;
        }
        let high = self.cells_high;
        let lines_high = self.lines_high;
        let mut cells_used = Bits::<{ MAX_CELLS / 64 }>::new();
        let mut lines_used = Bits::<{ DELAY_LINES.div_ceil(64) }>::new();
        for site in 0..MAX_SITES {
            // `prev`: the cell whose `next` holds the link being followed (None: the site's `first`).
            let mut prev: Option<usize> = None;
            let mut link = self.sites[site].first;
            while link != 0 {
                let idx = link as usize - 1;
                if link > high || cells_used.get(idx) {
                    // Out of range, or already reached (a cycle, or two chains
                    // sharing a cell): the chain ends before it.
                    match prev {
                        Some(p) => self.cells[p].next = 0,
                        None => self.sites[site].first = 0,
                    }
                    repaired = true;
                    break;
                }
                cells_used.set(idx);
                let line = self.cells[idx].line;
                if line != 0 {
                    let l = line as usize - 1;
                    if line > lines_high || lines_used.get(l) {
                        self.cells[idx].line = 0;
                        repaired = true;
                    } else {
                        lines_used.set(l);
                    }
                }
                prev = Some(idx);
                link = self.cells[idx].next;
            }
            // The cursor is only meaningful within one `play()`; a stale one is harmless, a wild one is not.
            let s = &mut self.sites[site];
            if s.cursor > high {
                s.cursor = 0;
                s.epoch = 0;
                repaired = true;
            }
        }
        self.cell_free = 0;
        for idx in (0..high as usize).rev() {
            if !cells_used.get(idx) {
                self.cells[idx] = Cell::zeroed();
                self.cells[idx].next = self.cell_free;
                self.cell_free = idx as u32 + 1;
            }
        }
        self.line_free = 0;
        for l in (0..lines_high as usize).rev() {
            if !lines_used.get(l) {
                self.line_next[l] = self.line_free;
                self.line_free = l as u32 + 1;
            }
        }
        if repaired {
            Integrity::Repaired
        } else {
            Integrity::Sound
        }
    }

    /// Number of cells in use (for tests and stats). Bounded: a cyclic free
    /// list (a patch wrote it) counts each cell once.
    pub fn cells_in_use(&self) -> usize {
        let high = (self.cells_high as usize).min(MAX_CELLS);
        let mut free = Bits::<{ MAX_CELLS / 64 }>::new();
        let mut n = 0;
        let mut link = self.cell_free as usize;
        while link != 0 && link <= high && !free.get(link - 1) {
            free.set(link - 1);
            n += 1;
            link = self.cells[link - 1].next as usize;
        }
        high - n
    }
}

/// What the engine found when it checked worker-written bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// Everything was in range and linked once.
    Sound,
    /// Something was out of range, cyclic or shared, and was cut: a patch
    /// wrote over the state memory's bookkeeping.
    Repaired,
}

/// A fixed bitset on the stack (the audio thread must not allocate).
struct Bits<const WORDS: usize>([u64; WORDS]);

impl<const WORDS: usize> Bits<WORDS> {
    fn new() -> Self {
        Bits([0; WORDS])
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_memory_is_the_initial_state_and_cells_recycle() {
        let mut m = StateMemory::new_boxed(7);
        assert_eq!(m.floats[100], 0.0);
        let a = m.alloc_cell().unwrap();
        let b = m.alloc_cell().unwrap();
        m.sites[3].first = a + 1;
        m.cells[a as usize].next = b + 1;
        m.cells[a as usize].line = m.alloc_line().unwrap() + 1;
        assert_eq!(m.cells_in_use(), 2);
        assert_eq!(m.free_sites_and_rebuild([3]), Integrity::Sound);
        assert_eq!(m.cells_in_use(), 0);
        assert_eq!(m.sites[3].first, 0);
        // Recycled cells come back zeroed; the freed line is reused first.
        let c = m.alloc_cell().unwrap();
        assert!(c == a || c == b);
        assert_eq!(m.cells[c as usize].line, 0);
        assert_eq!(m.alloc_line(), Some(0));
    }

    #[test]
    fn copy_takes_the_used_prefix() {
        let mut m = StateMemory::new_boxed(1);
        let i = m.alloc_cell().unwrap();
        m.cells[i as usize].a = 0.25;
        m.floats[5] = 3.0;
        let mut s = StateMemory::new_boxed(0);
        s.copy_from(&m);
        assert_eq!(s.cells[i as usize].a, 0.25);
        assert_eq!(s.floats[5], 3.0);
        assert_eq!(s.seed, 1);
    }

    /// A pseudo-random sequence, for corruption tests without a dependency.
    fn mix(x: &mut u64) -> u64 {
        *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A memory with a few sites, chains of occurrences and delay lines, as patches make them.
    fn populated() -> Box<StateMemory> {
        let mut m = StateMemory::new_boxed(3);
        for site in 0..40usize {
            let mut prev: Option<u32> = None;
            for occ in 0..(site % 4 + 1) {
                let c = m.alloc_cell().unwrap();
                if occ == 0 && site % 5 == 0 {
                    m.cells[c as usize].line = m.alloc_line().map_or(0, |l| l + 1);
                }
                match prev {
                    None => m.sites[site].first = c + 1,
                    Some(p) => m.cells[p as usize].next = c + 1,
                }
                prev = Some(c);
            }
        }
        m
    }

    /// Every cell below `cells_high` is either on exactly one site chain or
    /// on the free list, once; every line likewise. What a sound pool means.
    fn assert_consistent(m: &StateMemory) {
        let high = m.cells_high as usize;
        assert!(high <= MAX_CELLS && m.lines_high as usize <= DELAY_LINES);
        let mut seen = vec![0u8; high];
        let mut lines = vec![0u8; m.lines_high as usize];
        for site in &m.sites {
            let mut link = site.first as usize;
            while link != 0 {
                assert!(link <= high, "chain link in range");
                seen[link - 1] += 1;
                assert_eq!(seen[link - 1], 1, "a cell on one chain only, once");
                let c = &m.cells[link - 1];
                if c.line != 0 {
                    lines[c.line as usize - 1] += 1;
                }
                link = c.next as usize;
            }
        }
        let mut link = m.cell_free as usize;
        while link != 0 {
            assert!(link <= high);
            seen[link - 1] += 1;
            assert_eq!(seen[link - 1], 1, "a free cell is on no chain and free once");
            link = m.cells[link - 1].next as usize;
        }
        assert!(seen.iter().all(|&n| n == 1), "no cell lost");
        let mut link = m.line_free as usize;
        while link != 0 {
            lines[link - 1] += 1;
            link = m.line_next[link - 1] as usize;
        }
        assert!(lines.iter().all(|&n| n == 1), "every line used once or free once");
    }

    #[test]
    fn a_sound_memory_is_kept_as_it_is() {
        let mut m = populated();
        let before_first: Vec<u32> = m.sites.iter().map(|s| s.first).collect();
        let in_use = m.cells_in_use();
        assert_eq!(m.rebuild_free_lists(), Integrity::Sound);
        assert_consistent(&m);
        assert_eq!(m.cells_in_use(), in_use);
        assert!(m.sites.iter().map(|s| s.first).eq(before_first));
        assert_eq!(m.free_sites_and_rebuild([0, 1, 2]), Integrity::Sound);
        assert_consistent(&m);
        assert!(m.cells_in_use() < in_use);
    }

    #[test]
    fn cycles_shared_cells_and_wild_indices_are_cut_not_followed() {
        // The three ways a patch's stray writes broke the engine before.
        let mut m = populated();
        let a = m.sites[3].first;
        m.cells[a as usize - 1].next = a; // a chain that loops on itself
        assert_eq!(m.free_sites_and_rebuild([7]), Integrity::Repaired);
        assert_consistent(&m);

        let mut m = populated();
        m.sites[8].first = m.sites[9].first; // two sites sharing a chain
        m.cell_free = 5; // and a free list through cells in use
        m.cells[4].next = 5;
        assert_eq!(m.free_sites_and_rebuild([8]), Integrity::Repaired);
        assert_consistent(&m);

        let mut m = populated();
        m.cells_high = u32::MAX;
        m.lines_high = u32::MAX;
        m.cell_free = u32::MAX;
        m.sites[1].first = u32::MAX;
        m.sites[2].cursor = 999_999;
        m.cells[0].line = u32::MAX;
        assert_eq!(m.free_sites_and_rebuild([usize::MAX, 5]), Integrity::Repaired);
        assert_consistent(&m);
        // And the worker side takes cells and lines again without following garbage
        // (the rest of the pool comes back at the next rebuild).
        let mut m = populated();
        m.cell_free = u32::MAX;
        m.line_free = u32::MAX;
        assert_eq!(m.alloc_cell(), Some(m.cells_high - 1));
        assert_eq!(m.alloc_line(), Some(m.lines_high - 1));
    }

    #[test]
    fn any_bytes_in_the_bookkeeping_give_a_consistent_pool() {
        // Random garbage over every bookkeeping word, as a patch writing through
        // a wild pointer leaves it: the walk is bounded and the pool comes out sound.
        let mut x = 12345u64;
        for round in 0..300 {
            let mut m = populated();
            let writes = 1 + mix(&mut x) % 64;
            for _ in 0..writes {
                let v = match mix(&mut x) % 4 {
                    0 => 0,
                    1 => (mix(&mut x) % 64) as u32,
                    2 => (mix(&mut x) % (MAX_CELLS as u64 + 10)) as u32,
                    _ => mix(&mut x) as u32,
                };
                match mix(&mut x) % 7 {
                    0 => m.cells_high = v,
                    1 => m.cell_free = v,
                    2 => m.line_free = v,
                    3 => m.lines_high = v,
                    4 => m.sites[(mix(&mut x) % 64) as usize].first = v,
                    5 => m.cells[(mix(&mut x) % 128) as usize].next = v,
                    _ => m.cells[(mix(&mut x) % 128) as usize].line = v,
                }
            }
            let mut copy = StateMemory::new_boxed(0);
            copy.copy_from(&m);
            let _ = m.cells_in_use();
            m.free_sites_and_rebuild([(round % 50) as usize]);
            assert_consistent(&m);
            for _ in 0..10 {
                let _ = m.alloc_cell();
                let _ = m.alloc_line();
            }
        }
    }
}
