//! The bytes of a channel file: a header of five cache lines, then the slots.
//!
//! ```text
//! [ Header: identity | producers | consumer | wake-up | rare counts ][ slot 0 ][ slot 1 ] ...
//! slot = [ SlotHeader (16 bytes) | payload (slot_size bytes) ], padded to 64 bytes
//! ```
//! A slot's `seq` is Vyukov's sequence number: `pos` when free for the producer
//! of position `pos`, `pos + 1` once that message is published, and
//! `pos + count` once the consumer has taken it (free for the next lap).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

pub(crate) const MAGIC: u64 = 0x434c_4156_4d43_4831; // "CLAVMCH1"
pub(crate) const VERSION: u32 = 2;
pub(crate) const LINE: usize = 64;
/// `len` of a slot whose producer cancelled it (a dropped [`crate::Grant`]).
pub(crate) const CANCELLED: u32 = u32::MAX;
const MAX_SLOT_SIZE: usize = 64 << 20;
const MAX_SLOT_COUNT: usize = 1 << 20;

/// Who may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Mode {
    /// One producer at a time (claimed on open; a dead claimant's claim is taken over).
    Spsc = 1,
    /// Any number of producers.
    Mpsc = 2,
}

/// A channel's shape, fixed when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub mode: Mode,
    /// Largest message in bytes.
    pub slot_size: usize,
    /// Messages that can wait for the consumer; a power of two.
    pub slot_count: usize,
}

impl Config {
    pub fn new(mode: Mode, slot_size: usize, slot_count: usize) -> Config {
        Config { mode, slot_size, slot_count }
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.slot_size == 0 || self.slot_size > MAX_SLOT_SIZE {
            return Err(format!("slot size {} is not in 1..={MAX_SLOT_SIZE}", self.slot_size));
        }
        if !self.slot_count.is_power_of_two() || self.slot_count < 2 || self.slot_count > MAX_SLOT_COUNT {
            return Err(format!("slot count {} is not a power of two in 2..={MAX_SLOT_COUNT}", self.slot_count));
        }
        Ok(())
    }

    pub(crate) fn stride(&self) -> usize {
        (std::mem::size_of::<SlotHeader>() + self.slot_size).next_multiple_of(LINE)
    }

    pub(crate) fn file_len(&self) -> usize {
        std::mem::size_of::<Header>() + self.slot_count * self.stride()
    }
}

/// The first bytes of the file. Identity fields are written before `magic`
/// is published and never change after.
#[repr(C, align(64))]
pub(crate) struct Header {
    // Identity (read-only after creation).
    pub magic: AtomicU64,
    pub version: u32,
    pub mode: u32,
    pub slot_size: u64,
    pub slot_count: u64,
    pub file_len: u64,
    /// The creating process, and its start time (so a recycled pid is not taken for it).
    pub owner_pid: u32,
    pub _pad0: u32,
    pub owner_start: u64,
    pub _pad1: [u8; 8],
    // Producer side.
    pub head: AtomicU64,
    /// The claiming producer of an SPSC channel (0 = none).
    pub producer_pid: AtomicU32,
    pub _pad2: [u8; 52],
    // Consumer side: written by the consumer for every message, so on a line
    // of its own (producers read it only to report stats).
    pub tail: AtomicU64,
    /// Messages the consumer has taken.
    pub received: AtomicU64,
    /// The claiming consumer (0 = none).
    pub consumer_pid: AtomicU32,
    pub _pad3: [u8; 44],
    // Wake-up: read by every publish, written only when the consumer goes to
    // sleep, so it must not share a line with `tail`.
    /// Non-zero while the consumer sleeps (or is about to) on `signal`.
    pub consumer_waiting: AtomicU32,
    /// The futex word: bumped by a producer that saw the consumer waiting.
    pub signal: AtomicU32,
    pub _pad4: [u8; 56],
    // Rare events (written by either side, relaxed). Sends are counted by `head`.
    pub cancelled: AtomicU64,
    pub dropped_full: AtomicU64,
    pub dropped_too_large: AtomicU64,
    pub skipped_dead: AtomicU64,
    pub garbage: AtomicU64,
    pub wakeups: AtomicU64,
    pub _pad5: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<Header>() == 5 * LINE);

impl Header {
    pub fn config(&self) -> Option<Config> {
        let mode = match self.mode {
            1 => Mode::Spsc,
            2 => Mode::Mpsc,
            _ => return None,
        };
        let slot_size = usize::try_from(self.slot_size).ok()?;
        let slot_count = usize::try_from(self.slot_count).ok()?;
        let c = Config { mode, slot_size, slot_count };
        c.check().ok()?;
        (c.file_len() as u64 == self.file_len).then_some(c)
    }

    pub fn stats(&self) -> Stats {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let head = r(&self.head);
        let tail = r(&self.tail);
        Stats {
            sent: head.saturating_sub(r(&self.cancelled)),
            received: r(&self.received),
            dropped_full: r(&self.dropped_full),
            dropped_too_large: r(&self.dropped_too_large),
            skipped_dead_producer: r(&self.skipped_dead),
            garbage: r(&self.garbage),
            wakeups: r(&self.wakeups),
            queued: head.saturating_sub(tail),
        }
    }
}

/// Counters of a channel, shared by both sides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages sent (or being written now).
    pub sent: u64,
    pub received: u64,
    /// Sends refused because every slot was full.
    pub dropped_full: u64,
    /// Sends refused because the message was larger than a slot.
    pub dropped_too_large: u64,
    /// Slots skipped because their producer died halfway through writing them.
    pub skipped_dead_producer: u64,
    /// Slots whose contents made no sense (bad length), or typed messages of the wrong size.
    pub garbage: u64,
    /// Times a producer had to wake a sleeping consumer.
    pub wakeups: u64,
    /// Messages reserved or waiting now.
    pub queued: u64,
}

/// Each slot's first 16 bytes.
#[repr(C)]
pub(crate) struct SlotHeader {
    pub seq: AtomicU64,
    /// Payload length, or [`CANCELLED`].
    pub len: AtomicU32,
    /// The producer writing this slot, 0 once published.
    pub writer: AtomicU32,
}
