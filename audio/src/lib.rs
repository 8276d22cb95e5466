//! CLAVM's audio engine.
//!
//! - [`patch`]: C text to runnable code (TinyCC), with call-site identity so
//!   that a recompile keeps every oscillator's state;
//! - [`builtins`]: the patch API and the stateful builtins, in Rust;
//! - [`state`]: the plain-data memory all patch state lives in;
//! - [`engine`]: runs programs frame by frame, swaps them with a crossfade,
//!   and puts [`protect`]ion between the patch and the speakers;
//! - [`render`]: offline rendering to WAV, deterministic to the byte;
//! - [`samples`]: sound files decoded for the `Sample*` builtins.
//! - [`voices`]: MIDI notes on a fixed set of voices.

pub mod builtins;
pub mod clock;
pub mod crash_signals;
pub mod engine;
pub mod live;
pub mod params;
pub mod patch;
pub mod protect;
pub mod render;
pub mod samples;
pub mod state;
pub mod voices;

pub use engine::{Engine, EngineConfig, EngineHandle, Report};
pub use patch::{Diagnostic, PatchError, PatchSource};

/// A count of sample frames (one sample per channel), as opposed to samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Frames(pub u64);

impl Frames {
    pub fn from_seconds(seconds: f64, sample_rate: f64) -> Frames {
        Frames((seconds * sample_rate).round().max(0.0) as u64)
    }

    pub fn seconds(self, sample_rate: f64) -> f64 {
        self.0 as f64 / sample_rate
    }
}

/// In this crate's tests, the engine's block processing runs under
/// `assert_no_alloc`: an allocation there aborts the test run.
#[cfg(all(test, feature = "alloc-guard", debug_assertions))]
#[global_allocator]
static ALLOC_GUARD: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;
