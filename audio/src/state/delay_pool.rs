//! Sample memory for `Delay`: a fixed number of power-of-two ring buffers,
//! allocated once before audio starts, either owned (offline) or in shared
//! memory (the live engine, where worker processes run the patches).
//!
//! A line is never cleared when it is reused: each `Delay` cell counts how
//! many samples it has written, and reading further back than that returns 0.
//! So taking a line is O(1) on the audio thread.

/// How many `Delay` call-site occurrences can be alive at once.
pub const DELAY_LINES: usize = 64;
/// Samples per line (2^18: 5.46 s at 48 kHz). Longer delays are clamped and reported.
pub const DELAY_LINE_LEN: usize = 1 << 18;
/// Bytes of one pool.
pub const DELAY_POOL_BYTES: usize = DELAY_LINES * DELAY_LINE_LEN * std::mem::size_of::<f32>();

pub struct DelayPool {
    samples: *mut f32,
    /// Owns the memory when not in shared memory.
    _owned: Option<Box<[f32]>>,
}

// SAFETY: the pool is only used by one thread at a time (the engine's), and the
// memory it points to lives as long as the pool (owned) or the mapping (shared).
unsafe impl Send for DelayPool {}

impl DelayPool {
    pub fn new() -> DelayPool {
        let mut owned = vec![0.0f32; DELAY_LINES * DELAY_LINE_LEN].into_boxed_slice();
        DelayPool { samples: owned.as_mut_ptr(), _owned: Some(owned) }
    }

    /// A pool over `DELAY_POOL_BYTES` of memory at `samples` (zeroed or not: see module docs).
    ///
    /// # Safety
    /// `samples` must be valid for reads and writes of `DELAY_POOL_BYTES`, aligned
    /// for f32, for as long as the pool is used.
    pub unsafe fn from_raw(samples: *mut f32) -> DelayPool {
        DelayPool { samples, _owned: None }
    }

    /// Touches every page so that first use on the audio thread takes no page
    /// fault (the zeroed allocation is otherwise mapped lazily by the kernel).
    pub fn prefault(&mut self) {
        for page in (0..DELAY_LINES * DELAY_LINE_LEN).step_by(1024) {
            // SAFETY: in bounds; a volatile write of zero, so the compiler keeps it.
            unsafe { std::ptr::write_volatile(self.samples.add(page), 0.0) };
        }
    }

    /// The ring of line `index` (< `DELAY_LINES`).
    #[inline]
    pub fn line(&mut self, index: u32) -> &mut [f32] {
        let index = (index as usize).min(DELAY_LINES - 1);
        // SAFETY: in bounds (index clamped), valid per the constructor's contract.
        unsafe { std::slice::from_raw_parts_mut(self.samples.add(index * DELAY_LINE_LEN), DELAY_LINE_LEN) }
    }
}

impl Default for DelayPool {
    fn default() -> Self {
        Self::new()
    }
}
