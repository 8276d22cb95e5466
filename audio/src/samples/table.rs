//! The table the builtins read samples through: one view (pointer, frames,
//! channels) per number, `#[repr(C)]` so that the live engine can fill one
//! with addresses in its read-only sample memory and the offline engine
//! with addresses of its own buffers.

use super::{SampleSet, SLOTS};

/// One sample as the builtins see it. `frames == 0` (or a null pointer) is
/// an empty number.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SampleView {
    pub data: *const f32,
    pub frames: u64,
    pub channels: u32,
    pub _pad: u32,
}

impl SampleView {
    pub const EMPTY: SampleView = SampleView { data: std::ptr::null(), frames: 0, channels: 0, _pad: 0 };

    /// Whether the view holds audio.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.data.is_null() || self.frames == 0 || self.channels == 0
    }

    /// The value of channel `ch` of frame `i` (both in range: the callers check).
    ///
    /// # Safety
    /// The view must describe `frames * channels` readable `f32`s (what
    /// [`SampleTable`]'s constructors guarantee), `i < frames`, `ch < channels`.
    #[inline]
    pub unsafe fn at(&self, i: u64, ch: u32) -> f32 {
        // SAFETY: in bounds by the caller's contract.
        unsafe { *self.data.add((i * u64::from(self.channels) + u64::from(ch)) as usize) }
    }
}

/// What one patch version plays: a view per sample number.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SampleTable {
    pub views: [SampleView; SLOTS],
}

// SAFETY: the views point to immutable audio that outlives the table (kept
// by `Samples`, or mapped read-only for the engine's life); nothing writes
// through them.
unsafe impl Sync for SampleTable {}
// SAFETY: as above.
unsafe impl Send for SampleTable {}

impl SampleTable {
    pub const EMPTY: SampleTable = SampleTable { views: [SampleView::EMPTY; SLOTS] };

    /// The table every context starts with: no samples.
    pub fn empty() -> &'static SampleTable {
        static EMPTY: SampleTable = SampleTable::EMPTY;
        &EMPTY
    }
}

/// A version's samples and the table that points into them: the table is
/// valid for as long as this value lives (the engine hands programs back to
/// be dropped off the audio thread, with their samples).
#[derive(Debug)]
pub struct Samples {
    table: Box<SampleTable>,
    set: SampleSet,
}

impl Samples {
    pub fn new(set: SampleSet) -> Samples {
        let mut table = Box::new(SampleTable::EMPTY);
        for (n, s) in set.iter() {
            table.views[n] = SampleView {
                data: s.samples.as_ptr(),
                frames: s.frames() as u64,
                channels: s.channels as u32,
                _pad: 0,
            };
        }
        Samples { table, set }
    }

    pub fn table(&self) -> &SampleTable {
        &self.table
    }

    pub fn set(&self) -> &SampleSet {
        &self.set
    }
}

impl Default for Samples {
    fn default() -> Self {
        Samples::new(SampleSet::default())
    }
}
