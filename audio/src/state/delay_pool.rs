//! Sample memory for `Delay`: a fixed number of power-of-two ring buffers,
//! allocated once (zeroed, lazily by the OS) before audio starts.
//!
//! A line is never cleared when it is reused: each `Delay` cell counts how
//! many samples it has written, and reading further back than that returns 0.
//! So taking a line is O(1) on the audio thread.

/// How many `Delay` call-site occurrences can be alive at once.
pub const DELAY_LINES: usize = 64;
/// Samples per line (2^18: 5.46 s at 48 kHz). Longer delays are clamped and reported.
pub const DELAY_LINE_LEN: usize = 1 << 18;

pub struct DelayPool {
    samples: Box<[f32]>,
}

impl DelayPool {
    pub fn new() -> DelayPool {
        DelayPool {
            samples: vec![0.0f32; DELAY_LINES * DELAY_LINE_LEN].into_boxed_slice(),
        }
    }

    /// Touches every page so that first use on the audio thread takes no page
    /// fault (the zeroed allocation is otherwise mapped lazily by the kernel).
    pub fn prefault(&mut self) {
        for page in self.samples.chunks_mut(1024) {
            // SAFETY: a volatile write of the value already there, so the compiler keeps it.
            unsafe { std::ptr::write_volatile(page.as_mut_ptr(), 0.0) };
        }
    }

    /// The ring of line `index` (< `DELAY_LINES`).
    #[inline]
    pub fn line(&mut self, index: u32) -> &mut [f32] {
        let start = index as usize * DELAY_LINE_LEN;
        &mut self.samples[start..start + DELAY_LINE_LEN]
    }
}

impl Default for DelayPool {
    fn default() -> Self {
        Self::new()
    }
}
