//! The protocol's timings, in cycles of the bar doing the waiting. Why each
//! number is what it is: docs/BARS.md, "Protocol".

/// An unprimed bar's idle loop reads all four pins at once every 4 cycles.
pub const IDLE_POLL: u16 = 4;
/// A primed bar waiting for its parent's request polls one pin every 3 cycles.
pub const AWAIT_POLL: u16 = 3;
/// Handshake edges are caught by an unrolled loop, within a cycle.
pub const EDGE_POLL: u16 = 1;
/// Waiting for a child's subtree to finish priming: a slower loop is fine.
pub const HOLD_POLL: u16 = 2;

/// Prime classification samples after the falling edge is seen: low, then
/// high, high, low (the last 37 cycles after the first).
pub const CLASSIFY_AT: [u16; 4] = [1, 9, 19, 38];
/// After the prime's last low, by when the line must have gone high.
pub const PRIME_TAIL_DEADLINE: u32 = 12;
/// Prime pattern length.
pub const PRIME_CYCLES: i64 = 43;
/// Cycles a responder spends on the 8-low 8-high part, plus set-up, before
/// it starts priming its own connectors.
pub const RESPONSE_SETUP: i64 = 18;
/// After its prime, how long a bar waits for the response to start.
pub const RESPONSE_DEADLINE: u32 = 16;
/// Response check samples after its falling edge: low, high, low.
pub const RESPONSE_CHECK_AT: [u16; 3] = [4, 12, 20];
/// Longest a child may hold the line low while priming its subtree: a whole
/// tree of 255 bars primes in about 52,000 cycles.
pub const HOLD_MAX: u32 = 60_000;
/// Cycles between finishing one connector and priming the next.
pub const NEXT_PORT_GAP: i64 = 2;

/// Request length (low).
pub const REQUEST_CYCLES: i64 = 16;
/// After its request, by when the sender's acknowledge low must be seen.
pub const ACK_DEADLINE: u32 = 8;
/// After the acknowledge, by when its rising edge (the sync) must come.
pub const SYNC_DEADLINE: u32 = 12;
/// Bit sample offsets after the sync edge: the middle of each 4-cycle bit.
pub const FIRST_BIT_AT: u16 = 6;
/// A failed request is repeated this many cycles after the previous one
/// started. Not near 38, so repeated requests never look like a prime to a
/// listener wherever it starts looking (28 would also do, and measured
/// slower: twice the retries for the same throughput).
pub const RETRY_PERIOD: i64 = 64;
/// Requests before a fetch is given up and the update aborted.
pub const FETCH_TRIES: u8 = 24;
/// Sender: after seeing a request, the sample that tells it from a prime.
pub const REQUEST_CHECK_AT: [u16; 2] = [1, 9];
/// Sender: by when the requester must release after the check.
pub const REQUEST_RELEASE_DEADLINE: u32 = 10;
/// Cycles after a burst ends before the sender does anything else.
pub const AFTER_BURST: i64 = 2;
/// A primed bar waits this long for the first request (the rest of the tree
/// may still be priming).
pub const FIRST_REQUEST_TIMEOUT: u32 = 60_000;
/// ...and this long for each later one.
pub const NEXT_REQUEST_TIMEOUT: u32 = 4_000;
/// After a line that looked like nothing known, wait at most this long for it
/// to go high before listening again.
pub const RECOVER_DEADLINE: u32 = 200;
/// The root's pause between updates.
pub const ROOT_GAP: i64 = 20;
