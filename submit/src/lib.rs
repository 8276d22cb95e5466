//! Sending patches to a running CLAVM engine over shared memory.
//!
//! - [`protocol`]: the messages, byte for byte, shared by editors and engines;
//! - [`client`]: connect, send, wait for the reply (used by `clavm submit`);
//! - the C ABI (`libclavm_submit.so`, `include/clavm_submit.h`) for LuaJIT's
//!   FFI, which answers in JSON.

pub mod client;
mod diagnostics;
mod ffi;
pub mod protocol;

pub use client::{send, send_quantised, set_param, Client, SubmitError};
pub use diagnostics::{parse_line, Diagnostic};
pub use protocol::{Outcome, ParamKind, Reply};

/// The engine name used when none is given (`--engine`, `CLAVM_ENGINE`).
pub const DEFAULT_ENGINE: &str = "default";
