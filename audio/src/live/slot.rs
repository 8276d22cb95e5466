//! One worker's slot in the shared memory: the futex words of the
//! request/response handshake (docs/LIVE_PROTOCOL.md) and the payloads.
//! Everything a worker writes here is untrusted: a patch runs in that process.

use std::sync::atomic::AtomicU32;

use super::shm::ShmSafe;
use crate::builtins::api::{Faults, Params, MAX_CHANNELS};
use crate::patch::guard::MAX_SOURCE_BYTES;

/// Most frames one request renders (larger device blocks are split).
pub const MAX_BLOCK: usize = 2048;
/// Room for a patch plus the prelude and call-site ids.
pub const SOURCE_CAP: usize = MAX_SOURCE_BYTES + 128 * 1024;
pub const DIAG_CAP: usize = 64 * 1024;
pub const NAME_CAP: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum RequestKind {
    /// Compile `text` (source and rewritten body) and keep the program.
    Compile = 1,
    /// Run `frames` frames of the program (after `compiled()` if asked).
    Run = 2,
    /// Exit.
    Quit = 3,
}

impl RequestKind {
    pub fn from_u32(v: u32) -> Option<RequestKind> {
        [RequestKind::Compile, RequestKind::Run, RequestKind::Quit].into_iter().find(|k| *k as u32 == v)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    Ok = 1,
    /// The compile failed; diagnostics are in `text.diag`.
    CompileError = 2,
    /// The worker crashed (its signal handler wrote this); it is exiting.
    Crashed = 3,
    /// A run was asked of a worker with no program.
    NoProgram = 4,
    BadRequest = 5,
}

impl Status {
    pub fn from_u32(v: u32) -> Option<Status> {
        [Status::Ok, Status::CompileError, Status::Crashed, Status::NoProgram, Status::BadRequest]
            .into_iter()
            .find(|k| *k as u32 == v)
    }
}

#[repr(C)]
pub struct RequestBlock {
    pub kind: u32,
    /// A `shm::Memory`.
    pub memory: u32,
    pub call_compiled: u32,
    pub frames: u32,
    pub frame: u64,
    pub compiled_epoch: u64,
    /// SCHED_FIFO priority to serve this request at (0: normal scheduling).
    /// The audio thread asks for one below its own; the control thread for 0.
    pub priority: i32,
    /// The heap extent (`state::Extent`) `compiled()` allocates in: the
    /// version's, assigned by the control thread.
    pub heap_extent: u32,
    pub params: Params,
    /// With `Compile`: the samples the version plays, in the sample arena
    /// (checked by the worker before use).
    pub samples: super::arena::ArenaTable,
    pub input: [f32; MAX_BLOCK * MAX_CHANNELS],
}

#[repr(C)]
pub struct ResponseBlock {
    /// A `Status`.
    pub status: u32,
    pub signal: i32,
    pub stack_overflow: u32,
    /// Whether the crash was in `compiled()` rather than `play()`.
    pub in_compiled: u32,
    pub fault_addr: u64,
    pub elapsed_ns: u64,
    /// Non-finite output samples in this run (test runs reject code that makes any).
    pub nonfinite: u32,
    pub _pad: u32,
    pub faults: Faults,
    pub output: [f32; MAX_BLOCK * MAX_CHANNELS],
}

#[repr(C)]
pub struct TextBlock {
    pub name_len: u32,
    pub dir_len: u32,
    pub source_len: u32,
    pub body_len: u32,
    pub diag_len: u32,
    pub _pad: u32,
    pub name: [u8; NAME_CAP],
    pub dir: [u8; NAME_CAP],
    pub source: [u8; SOURCE_CAP],
    pub body: [u8; SOURCE_CAP],
    pub diag: [u8; DIAG_CAP],
}

/// What a worker is told at start, written into its slot by the engine
/// before each spawn (the worker reads its own slot; the engine never reads
/// this back).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlotConfig {
    pub magic: u64,
    pub sample_rate: f64,
    pub slot: u32,
    pub channels: u32,
    pub inputs: u32,
    pub _pad: u32,
}

const SLOT_MAGIC: u64 = 0x434c_4156_4d5f_3032; // "CLAVM_02"

impl SlotConfig {
    pub fn new(slot: u32, sample_rate: f64, channels: u32, inputs: u32) -> SlotConfig {
        SlotConfig { magic: SLOT_MAGIC, sample_rate, slot, channels, inputs, _pad: 0 }
    }

    /// `(sample_rate, channels, inputs)` if this is a configuration for slot `slot` within bounds.
    pub fn check(&self, slot: usize) -> Option<(f64, usize, usize)> {
        let ok = self.magic == SLOT_MAGIC
            && self.slot as usize == slot
            && self.sample_rate.is_finite()
            && (1000.0..=1_000_000.0).contains(&self.sample_rate)
            && (1..=MAX_CHANNELS as u32).contains(&self.channels)
            && self.inputs as usize <= MAX_CHANNELS;
        ok.then_some((self.sample_rate, self.channels as usize, self.inputs as usize))
    }
}

#[repr(C)]
pub struct Slot {
    /// Written by the engine before the worker starts (see [`SlotConfig`]).
    pub config: SlotConfig,
    /// Sequence number of the latest request (the owner writes, the worker waits).
    pub request: AtomicU32,
    /// Sequence number of the latest finished request (the worker writes, the owner waits).
    pub response: AtomicU32,
    /// Non-zero once the worker has started up and entered its sandbox.
    pub ready: AtomicU32,
    pub pid: AtomicU32,
    pub req: RequestBlock,
    pub resp: ResponseBlock,
    pub text: TextBlock,
}

// SAFETY: repr(C), numbers and arrays (atomics are plain u32), all-zero valid.
unsafe impl ShmSafe for Slot {}

/// Copies `s` into a fixed buffer, truncating; returns the length stored.
pub fn put_bytes(buf: &mut [u8], s: &[u8]) -> u32 {
    let n = s.len().min(buf.len());
    buf[..n].copy_from_slice(&s[..n]);
    n as u32
}

/// Reads back a string stored by `put_bytes` (lossy: the writer may be a crashed worker).
pub fn get_string(buf: &[u8], len: u32) -> String {
    String::from_utf8_lossy(&buf[..(len as usize).min(buf.len())]).into_owned()
}
