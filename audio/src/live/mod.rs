//! The live engine: patches run in worker processes that share the state
//! memory, so a patch that crashes or hangs costs at most one block, never
//! the sound. The protocol is in docs/LIVE_PROTOCOL.md.

pub mod arena;
mod control;
mod process;
mod resume;
pub use clavm_channel::futex;
mod rt;
pub mod sandbox;
pub mod shm;
pub mod slot;
pub mod tap;
pub mod worker;

pub use control::{LiveConfig, LiveEngine, LiveError, LiveEvent, SubmitId, Submitter};
pub use rt::{LiveProcessor, Meters, Recovery, SilenceCause, Worker, WorkerFault};

/// Enters the worker sandbox; true if it was enforced.
fn sandbox_enter() -> bool {
    sandbox::enter().is_ok()
}
