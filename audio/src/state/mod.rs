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

pub use delay_pool::{DelayPool, DELAY_LINES, DELAY_LINE_LEN, DELAY_POOL_BYTES};

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
        self.floats = other.floats;
        self.doubles = other.doubles;
        self.ints = other.ints;
        self.sites = other.sites;
        self.line_next = other.line_next;
        let n = other.cells_high as usize;
        self.cells[..n].copy_from_slice(&other.cells[..n]);
    }

    /// Takes a cell from the pool, zeroed. `None` when the pool is exhausted.
    pub fn alloc_cell(&mut self) -> Option<u32> {
        let idx = if self.cell_free != 0 {
            let idx = self.cell_free - 1;
            self.cell_free = self.cells[idx as usize].next;
            idx
        } else if (self.cells_high as usize) < MAX_CELLS {
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
        if self.line_free != 0 {
            let idx = self.line_free - 1;
            self.line_free = self.line_next[idx as usize];
            Some(idx)
        } else if (self.lines_high as usize) < DELAY_LINES {
            self.lines_high += 1;
            Some(self.lines_high - 1)
        } else {
            None
        }
    }

    /// Returns every cell (and delay line) of a call site to the pools and forgets the site.
    pub fn free_site(&mut self, site: usize) {
        let mut link = self.sites[site].first;
        while link != 0 {
            let idx = (link - 1) as usize;
            let next = self.cells[idx].next;
            if self.cells[idx].line != 0 {
                let line = self.cells[idx].line - 1;
                self.line_next[line as usize] = self.line_free;
                self.line_free = line + 1;
            }
            self.cells[idx] = Cell::zeroed();
            self.cells[idx].next = self.cell_free;
            self.cell_free = idx as u32 + 1;
            link = next;
        }
        self.sites[site] = Site::zeroed();
    }

    /// Number of cells in use (for tests and stats).
    pub fn cells_in_use(&self) -> usize {
        let mut free = 0;
        let mut link = self.cell_free;
        while link != 0 {
            free += 1;
            link = self.cells[(link - 1) as usize].next;
        }
        self.cells_high as usize - free
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
        m.free_site(3);
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
}
