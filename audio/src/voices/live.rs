//! The voices as the live audio thread runs them: note events arrive through
//! the parameter table's bounded ring, at most [`EVENTS_PER_BLOCK`] a block
//! (the rest wait for the next one, so a flood costs latency and drops,
//! never a long block), and the voice table travels to the worker inside
//! every request's `Params`.

use rtrb::Consumer;

use super::{NoteEvent, Release, VoiceAllocator, VoiceCount, VoiceView};
use crate::params::ParamTable;

/// Most note events applied at one block boundary.
pub const EVENTS_PER_BLOCK: usize = 256;

pub struct LiveVoices {
    alloc: VoiceAllocator,
    rx: Option<Consumer<NoteEvent>>,
    config: (VoiceCount, Release),
}

impl LiveVoices {
    /// Takes `table`'s note ring (call before the audio thread runs: it locks once).
    pub fn new(table: &ParamTable, sample_rate: f64) -> LiveVoices {
        let config = table.voices();
        LiveVoices { alloc: VoiceAllocator::new(config.0, config.1, sample_rate), rx: table.take_notes(), config }
    }

    /// Applies the waiting events and the table's voice settings, and fills
    /// `view` for a block of `frames` at `frame0`. No allocation, no lock.
    pub fn begin_block(&mut self, table: &ParamTable, frame0: u64, frames: usize, view: &mut VoiceView) {
        let config = table.voices();
        if config != self.config {
            self.config = config;
            self.alloc.configure(config.0, config.1);
        }
        if let Some(rx) = &mut self.rx {
            for _ in 0..EVENTS_PER_BLOCK {
                match rx.pop() {
                    Ok(e) => self.alloc.apply(e),
                    Err(_) => break,
                }
            }
        }
        self.alloc.begin_block(frame0, frames, view);
    }
}
