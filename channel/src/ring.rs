//! The two ends of a channel.

use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::layout::{Config, Header, Mode, Stats, CANCELLED};
use crate::map::Mapping;
use crate::{futex, path_of, process, Error, RecvError, SendError, ShmSafe};

/// Compare-and-swap attempts a claim or a reservation makes before it gives
/// up: honest contention settles in a few; only a process flipping the words
/// on purpose would exhaust them, and it must not make us spin.
const MAX_ATTEMPTS: usize = 1 << 12;

/// A slot reserved by a producer that has not published it for this long is
/// given up on even if its writer still lives (stopped, or stuck): a producer
/// normally holds a slot for the microseconds of a copy.
const ABANDON_AFTER: Duration = Duration::from_secs(2);
/// How often a consumer stuck behind an unpublished slot looks at its writer.
const STUCK_RECHECK: Duration = Duration::from_millis(10);

/// How a blocking receive waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Sleep on the futex at once (no CPU while idle; a wake-up costs a few µs).
    Sleep,
    /// Spin for this long, then sleep: the latency of spinning for bursts.
    SpinThenSleep(Duration),
    /// Spin until the deadline: lowest latency, burns a core.
    Spin,
}

fn claim(word: &AtomicU32, path: &std::path::Path) -> Result<(), Error> {
    let me = process::own_pid();
    let mut holder = 0;
    for _ in 0..MAX_ATTEMPTS {
        holder = word.load(Ordering::Acquire);
        if holder == me || (holder != 0 && process::alive(holder, None)) {
            if holder == me {
                return Ok(());
            }
            return Err(Error::InUse { path: path.to_path_buf(), pid: holder });
        }
        // Free, or held by a dead process: take it.
        if word.compare_exchange(holder, me, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return Ok(());
        }
    }
    Err(Error::InUse { path: path.to_path_buf(), pid: holder })
}

fn unclaim(word: &AtomicU32) {
    let _ = word.compare_exchange(process::own_pid(), 0, Ordering::AcqRel, Ordering::Relaxed);
}

/// The producing end. `try_send` never blocks; it may be called from a realtime thread.
pub struct Sender {
    map: Mapping,
    pid: u32,
}

impl Sender {
    /// Opens the existing channel `channel` of engine `engine` to send on it.
    pub fn open(engine: &str, channel: &str) -> Result<Sender, Error> {
        Self::with(Mapping::open(&path_of(engine, channel)?)?)
    }

    /// Creates (and owns) a channel this process sends on, e.g. an audio tap.
    pub fn create(engine: &str, channel: &str, config: Config) -> Result<Sender, Error> {
        Self::with(Mapping::create(&path_of(engine, channel)?, config)?)
    }

    fn with(map: Mapping) -> Result<Sender, Error> {
        if map.config.mode == Mode::Spsc {
            claim(&map.header().producer_pid, &map.path)?;
        }
        Ok(Sender { map, pid: process::own_pid() })
    }

    pub fn config(&self) -> Config {
        self.map.config
    }

    pub fn stats(&self) -> Stats {
        self.map.header().stats()
    }

    /// Whether the channel's owner still runs (for a client waiting on an engine).
    pub fn owner_alive(&self) -> bool {
        self.map.owner_alive()
    }

    /// Whether the channel is still the one under its name, whole (its owner
    /// replaces a channel whose file was cut or changed): a cached sender
    /// that is not should be opened again.
    pub fn intact(&self) -> bool {
        self.map.intact()
    }

    /// Sends a copy of `bytes`.
    pub fn try_send_bytes(&self, bytes: &[u8]) -> Result<(), SendError> {
        let mut g = self.try_reserve(bytes.len())?;
        g.bytes_mut()[..bytes.len()].copy_from_slice(bytes);
        g.commit(bytes.len())
    }

    /// Sends a plain-old-data value.
    pub fn try_send<T: ShmSafe + bytemuck::Pod>(&self, value: &T) -> Result<(), SendError> {
        self.try_send_bytes(bytemuck::bytes_of(value))
    }

    /// Reserves a slot for a message of up to `len` bytes, written in place.
    pub fn try_reserve(&self, len: usize) -> Result<Grant<'_>, SendError> {
        if self.map.broken() {
            return Err(SendError::Broken);
        }
        let h = self.map.header();
        let max = self.map.config.slot_size;
        if len > max {
            h.dropped_too_large.fetch_add(1, Ordering::Relaxed);
            return Err(SendError::TooLarge { len, max });
        }
        let mask = self.map.config.slot_count as u64 - 1;
        let mut pos = h.head.load(Ordering::Relaxed);
        for _ in 0..MAX_ATTEMPTS {
            let slot = self.map.slot((pos & mask) as usize);
            let seq = slot.seq.load(Ordering::Acquire);
            if self.map.broken() {
                return Err(SendError::Broken);
            }
            match seq.wrapping_sub(pos) as i64 {
                0 => match h.head.compare_exchange_weak(pos, pos.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed)
                {
                    Ok(_) => {
                        slot.writer.store(self.pid, Ordering::Relaxed);
                        return Ok(Grant { tx: self, pos, index: (pos & mask) as usize, done: false });
                    }
                    Err(now) => pos = now,
                },
                // Honestly `pos + 1 - count` or `pos - count` (the consumer has not freed it yet): full.
                d if d < 0 && d.unsigned_abs() <= mask + 1 => {
                    h.dropped_full.fetch_add(1, Ordering::Relaxed);
                    return Err(SendError::Full);
                }
                // Ahead of us: another producer took `pos`, and `head` moved on. If it did not,
                // the number is garbage (the consumer resets the ring when it gets there).
                d => {
                    let now = h.head.load(Ordering::Relaxed);
                    if now == pos || d < 0 {
                        h.garbage.fetch_add(1, Ordering::Relaxed);
                        return Err(SendError::Garbage);
                    }
                    pos = now;
                }
            }
        }
        h.dropped_full.fetch_add(1, Ordering::Relaxed);
        Err(SendError::Full)
    }

    fn publish(&self, pos: u64, index: usize, len: u32) -> Result<(), SendError> {
        let h = self.map.header();
        let slot = self.map.slot(index);
        slot.len.store(len, Ordering::Relaxed);
        slot.writer.store(0, Ordering::Relaxed);
        // SeqCst, with the SeqCst load of `consumer_waiting` below, pairs with
        // the consumer's store and fence before it sleeps: one of the two sees
        // the other, so a sleeping consumer is never missed (and no fence here).
        if slot.seq.compare_exchange(pos, pos.wrapping_add(1), Ordering::SeqCst, Ordering::Relaxed).is_err() {
            return Err(SendError::Abandoned);
        }
        if len == CANCELLED {
            h.cancelled.fetch_add(1, Ordering::Relaxed);
        }
        if h.consumer_waiting.load(Ordering::SeqCst) != 0 {
            h.signal.fetch_add(1, Ordering::Release);
            h.wakeups.fetch_add(1, Ordering::Relaxed);
            futex::wake(&h.signal);
        }
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if self.map.config.mode == Mode::Spsc {
            unclaim(&self.map.header().producer_pid);
        }
    }
}

/// A reserved slot: write the message into [`Grant::bytes_mut`], then
/// [`Grant::commit`]. Dropped uncommitted, the slot is skipped by the consumer.
pub struct Grant<'a> {
    tx: &'a Sender,
    pos: u64,
    index: usize,
    done: bool,
}

impl Grant<'_> {
    /// The whole slot (`slot_size` bytes).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the slot is ours between the reservation and the publish: the
        // consumer reads it only after `seq` says published.
        unsafe { std::slice::from_raw_parts_mut(self.tx.map.payload(self.index), self.tx.map.config.slot_size) }
    }

    /// Publishes the first `len` bytes (more than the slot holds: the slot is
    /// cancelled and the message refused).
    pub fn commit(mut self, len: usize) -> Result<(), SendError> {
        let max = self.tx.map.config.slot_size;
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        self.done = true;
        self.tx.publish(self.pos, self.index, len as u32)
    }
}

impl Drop for Grant<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.tx.publish(self.pos, self.index, CANCELLED);
        }
    }
}

/// The consuming end (one per channel).
pub struct Receiver {
    map: Mapping,
    /// The position we are stuck at behind an unpublished slot, since when, and when we last looked.
    stuck: Option<(u64, Instant, Instant)>,
}

impl Receiver {
    /// Creates (and owns) a channel this process receives on.
    pub fn create(engine: &str, channel: &str, config: Config) -> Result<Receiver, Error> {
        Self::with(Mapping::create(&path_of(engine, channel)?, config)?)
    }

    /// Opens an existing channel to receive on it (e.g. an audio tap).
    pub fn open(engine: &str, channel: &str) -> Result<Receiver, Error> {
        Self::with(Mapping::open(&path_of(engine, channel)?)?)
    }

    fn with(map: Mapping) -> Result<Receiver, Error> {
        claim(&map.header().consumer_pid, &map.path)?;
        Ok(Receiver { map, stuck: None })
    }

    pub fn config(&self) -> Config {
        self.map.config
    }

    pub fn stats(&self) -> Stats {
        self.map.header().stats()
    }

    /// Whether the channel's owner still runs.
    pub fn owner_alive(&self) -> bool {
        self.map.owner_alive()
    }

    fn header(&self) -> &Header {
        self.map.header()
    }

    /// Whether this process created the channel (and so may [`Receiver::renew`] it).
    pub fn is_owner(&self) -> bool {
        self.map.is_owner()
    }

    /// Whether the channel is still the one we opened (see [`RecvError::Broken`]):
    /// an owner looks when idle, and [`Receiver::renew`]s a channel that is not.
    pub fn intact(&self) -> bool {
        self.map.intact()
    }

    /// Replaces a channel this process created with a fresh, empty one of the
    /// same name and shape (after [`RecvError::Broken`]: its file was truncated).
    pub fn renew(self) -> Result<Receiver, Error> {
        let (path, config) = (self.map.path.clone(), self.map.config);
        if !self.map.is_owner() {
            return Err(Error::Corrupt { path, why: "only its creator may renew a channel".into() });
        }
        drop(self);
        Self::with(Mapping::create(&path, config)?)
    }

    /// Takes the next message without waiting; the slot is freed when the
    /// returned [`Message`] is dropped.
    pub fn try_recv_bytes(&mut self) -> Result<Message<'_>, RecvError> {
        match self.next()? {
            Some((pos, index, len)) => Ok(Message { rx: self, pos, index, len }),
            None => Err(RecvError::Empty),
        }
    }

    /// Waits up to `timeout` for the next message.
    pub fn recv_bytes(&mut self, wait: Wait, timeout: Duration) -> Result<Message<'_>, RecvError> {
        match self.wait_next(wait, timeout)? {
            Some((pos, index, len)) => Ok(Message { rx: self, pos, index, len }),
            None => Err(RecvError::Timeout),
        }
    }

    /// Takes the next plain-old-data value without waiting.
    pub fn try_recv<T: ShmSafe + bytemuck::Pod>(&mut self) -> Result<T, RecvError> {
        let m = self.try_recv_bytes()?;
        m.value()
    }

    /// Waits up to `timeout` for the next plain-old-data value.
    pub fn recv<T: ShmSafe + bytemuck::Pod>(&mut self, wait: Wait, timeout: Duration) -> Result<T, RecvError> {
        let m = self.recv_bytes(wait, timeout)?;
        m.value()
    }

    fn wait_next(&mut self, wait: Wait, timeout: Duration) -> Result<Option<(u64, usize, u32)>, RecvError> {
        let start = Instant::now();
        let deadline = start.checked_add(timeout).unwrap_or(start + Duration::from_secs(86400 * 365));
        let spin_until = match wait {
            Wait::Sleep => start,
            Wait::SpinThenSleep(d) => start.checked_add(d).unwrap_or(deadline),
            Wait::Spin => deadline,
        };
        loop {
            if let Some(found) = self.next()? {
                return Ok(Some(found));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            if now < spin_until {
                std::hint::spin_loop();
                continue;
            }
            let h = self.header();
            h.consumer_waiting.store(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let seen = h.signal.load(Ordering::Acquire);
            match self.next() {
                Ok(None) => {}
                found => {
                    self.header().consumer_waiting.store(0, Ordering::Relaxed);
                    return found;
                }
            }
            // Behind a slot whose producer may be dead, or with more left to
            // skip, nobody will wake us: look again soon.
            let mut nap = deadline - now;
            if self.stuck.is_some() {
                nap = nap.min(STUCK_RECHECK);
            }
            let h = self.header();
            futex::wait(&h.signal, seen, nap);
            h.consumer_waiting.store(0, Ordering::Relaxed);
        }
    }

    /// The next published message (position, slot, length), skipping
    /// cancelled, garbage and abandoned slots. Bounded: it looks at no more
    /// than a lap of slots per call, whatever the ring holds.
    fn next(&mut self) -> Result<Option<(u64, usize, u32)>, RecvError> {
        let count = self.map.config.slot_count as u64;
        for _ in 0..count {
            let h = self.map.header();
            let pos = h.tail.load(Ordering::Relaxed);
            let index = (pos & (count - 1)) as usize;
            let slot = self.map.slot(index);
            let seq = slot.seq.load(Ordering::Acquire);
            let head = h.head.load(Ordering::Acquire);
            // Those loads may have been what found the file truncated (and read zeros).
            if self.map.broken() {
                return Err(RecvError::Broken);
            }
            // Producers are at most a lap ahead, and the slot at the tail is
            // free (`pos`) or published (`pos + 1`): anything else is garbage.
            if head.wrapping_sub(pos) > count || (seq != pos && seq != pos.wrapping_add(1)) {
                self.reset();
                return Err(RecvError::Reset);
            }
            if seq == pos.wrapping_add(1) {
                self.stuck = None;
                let len = slot.len.load(Ordering::Relaxed);
                if len == CANCELLED {
                    self.release(pos, index);
                    continue;
                }
                if len as usize > self.map.config.slot_size {
                    h.garbage.fetch_add(1, Ordering::Relaxed);
                    self.release(pos, index);
                    continue;
                }
                return Ok(Some((pos, index, len)));
            }
            if head == pos {
                self.stuck = None;
                return Ok(None);
            }
            // Reserved, not published: wait for its writer, within reason.
            if !give_up_on(&mut self.stuck, pos, slot.writer.load(Ordering::Relaxed)) {
                return Ok(None);
            }
            if slot.seq.compare_exchange(seq, pos.wrapping_add(count), Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                h.skipped_dead.fetch_add(1, Ordering::Relaxed);
                h.tail.store(pos.wrapping_add(1), Ordering::Release);
            }
            self.stuck = None;
        }
        // A lap of skipped slots: the rest on the next call.
        self.stuck = Some((u64::MAX, Instant::now(), Instant::now()));
        Ok(None)
    }

    /// Empties a ring whose counters or sequence numbers make no sense: every
    /// slot free for the lap starting at the tail. A producer caught halfway
    /// loses its message (its publish fails); what was queued is dropped.
    fn reset(&mut self) {
        let h = self.map.header();
        let count = self.map.config.slot_count as u64;
        let tail = h.tail.load(Ordering::Relaxed);
        for i in 0..count {
            let pos = tail.wrapping_add(i);
            let slot = self.map.slot((pos & (count - 1)) as usize);
            slot.len.store(0, Ordering::Relaxed);
            slot.writer.store(0, Ordering::Relaxed);
            slot.seq.store(pos, Ordering::Release);
        }
        h.head.store(tail, Ordering::Release);
        h.garbage.fetch_add(1, Ordering::Relaxed);
        self.stuck = None;
    }

    fn release(&self, pos: u64, index: usize) {
        let h = self.map.header();
        let count = self.map.config.slot_count as u64;
        self.map.slot(index).seq.store(pos.wrapping_add(count), Ordering::Release);
        h.tail.store(pos.wrapping_add(1), Ordering::Release);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        unclaim(&self.map.header().consumer_pid);
    }
}

/// Whether to skip the unpublished slot at `pos` written by `writer`: the
/// writer is dead, or the slot has waited too long. `stuck` remembers since
/// when we wait at `pos` and when we last looked at the writer.
fn give_up_on(stuck: &mut Option<(u64, Instant, Instant)>, pos: u64, writer: u32) -> bool {
    let now = Instant::now();
    let (since, last_look) = match *stuck {
        Some((p, since, look)) if p == pos => (since, look),
        _ => {
            *stuck = Some((pos, now, now));
            (now, now.checked_sub(STUCK_RECHECK).unwrap_or(now))
        }
    };
    if now.duration_since(since) >= ABANDON_AFTER {
        return true;
    }
    if now.duration_since(last_look) < STUCK_RECHECK {
        return false;
    }
    *stuck = Some((pos, since, now));
    writer != 0 && !process::alive(writer, None)
}

/// A received message, read in place; its slot is freed on drop.
pub struct Message<'a> {
    rx: &'a Receiver,
    pos: u64,
    index: usize,
    len: u32,
}

impl Message<'_> {
    /// The message as a plain-old-data value (consumed either way).
    pub fn value<T: ShmSafe + bytemuck::Pod>(&self) -> Result<T, RecvError> {
        if self.len() != std::mem::size_of::<T>() {
            self.rx.header().garbage.fetch_add(1, Ordering::Relaxed);
            return Err(RecvError::WrongSize { len: self.len(), expected: std::mem::size_of::<T>() });
        }
        Ok(bytemuck::pod_read_unaligned(self))
    }
}

impl std::ops::Deref for Message<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: published and not yet released: producers do not touch the slot
        // until `release` moves its sequence on; `len` was checked against the slot size.
        unsafe { std::slice::from_raw_parts(self.rx.map.payload(self.index), self.len as usize) }
    }
}

impl Drop for Message<'_> {
    fn drop(&mut self) {
        // Only the consumer writes `received`: no read-modify-write needed.
        let received = &self.rx.header().received;
        received.store(received.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        self.rx.release(self.pos, self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::sync::atomic::AtomicUsize;

    /// A unique engine name per test, so tests run in parallel.
    fn engine(tag: &str) -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        format!("test{}-{tag}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
    }

    #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct Event {
        producer: u32,
        n: u32,
        value: f64,
    }
    // SAFETY: repr(C) numbers, no padding.
    unsafe impl ShmSafe for Event {}

    #[test]
    fn bytes_and_values_arrive_in_order_and_are_counted() {
        let e = engine("order");
        let mut rx = Receiver::create(&e, "c", Config::new(Mode::Spsc, 64, 8)).unwrap();
        let tx = Sender::open(&e, "c").unwrap();
        tx.try_send_bytes(b"hello").unwrap();
        tx.try_send(&Event { producer: 1, n: 2, value: 0.5 }).unwrap();
        assert_eq!(&*rx.try_recv_bytes().unwrap(), b"hello");
        assert_eq!(rx.try_recv::<Event>().unwrap(), Event { producer: 1, n: 2, value: 0.5 });
        assert_eq!(rx.try_recv_bytes().err(), Some(RecvError::Empty));
        let s = rx.stats();
        assert_eq!((s.sent, s.received, s.queued), (2, 2, 0));
    }

    #[test]
    fn a_full_ring_drops_and_an_oversized_message_is_refused_never_truncated() {
        let e = engine("full");
        let mut rx = Receiver::create(&e, "c", Config::new(Mode::Mpsc, 16, 4)).unwrap();
        let tx = Sender::open(&e, "c").unwrap();
        for i in 0..4u8 {
            tx.try_send_bytes(&[i]).unwrap();
        }
        assert_eq!(tx.try_send_bytes(&[9]), Err(SendError::Full));
        assert_eq!(tx.try_send_bytes(&[0; 17]), Err(SendError::TooLarge { len: 17, max: 16 }));
        for i in 0..4u8 {
            assert_eq!(&*rx.try_recv_bytes().unwrap(), &[i]);
        }
        let s = rx.stats();
        assert_eq!((s.dropped_full, s.dropped_too_large, s.received), (1, 1, 4));
        // Space again after the consumer caught up, across the wrap.
        for lap in 0..10u8 {
            tx.try_send_bytes(&[lap]).unwrap();
            assert_eq!(&*rx.try_recv_bytes().unwrap(), &[lap]);
        }
    }

    #[test]
    fn a_typed_receive_of_the_wrong_size_is_an_error_not_garbage_data() {
        let e = engine("size");
        let mut rx = Receiver::create(&e, "c", Config::new(Mode::Mpsc, 64, 4)).unwrap();
        let tx = Sender::open(&e, "c").unwrap();
        tx.try_send_bytes(b"abc").unwrap();
        assert_eq!(rx.try_recv::<Event>(), Err(RecvError::WrongSize { len: 3, expected: 16 }));
        assert_eq!(rx.stats().garbage, 1);
        assert_eq!(rx.try_recv::<Event>(), Err(RecvError::Empty));
    }

    #[test]
    fn many_producers_deliver_everything_in_each_producers_order() {
        let e = engine("mpsc");
        let mut rx = Receiver::create(&e, "c", Config::new(Mode::Mpsc, 16, 64)).unwrap();
        const PER: u32 = 20_000;
        let producers: Vec<_> = (0..4u32)
            .map(|p| {
                let tx = Sender::open(&e, "c").unwrap();
                std::thread::spawn(move || {
                    for n in 0..PER {
                        while tx.try_send(&Event { producer: p, n, value: 0.0 }).is_err() {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut next = [0u32; 4];
        let mut got = 0;
        while got < 4 * PER {
            let ev: Event = rx.recv(Wait::SpinThenSleep(Duration::from_micros(20)), Duration::from_secs(10)).unwrap();
            assert_eq!(ev.n, next[ev.producer as usize], "producer {} out of order", ev.producer);
            next[ev.producer as usize] += 1;
            got += 1;
        }
        for p in producers {
            p.join().unwrap();
        }
        let s = rx.stats();
        assert_eq!(s.received, 4 * PER as u64);
        assert_eq!(s.sent, 4 * PER as u64);
    }

    #[test]
    fn a_sleeping_receiver_is_woken_and_a_timeout_is_kept() {
        let e = engine("wake");
        let mut rx = Receiver::create(&e, "c", Config::new(Mode::Spsc, 16, 4)).unwrap();
        let t0 = Instant::now();
        assert_eq!(rx.recv_bytes(Wait::Sleep, Duration::from_millis(30)).err(), Some(RecvError::Timeout));
        let waited = t0.elapsed();
        assert!(waited >= Duration::from_millis(30) && waited < Duration::from_secs(2), "{waited:?}");
        let e2 = e.clone();
        let h = std::thread::spawn(move || {
            let tx = Sender::open(&e2, "c").unwrap();
            std::thread::sleep(Duration::from_millis(20));
            tx.try_send_bytes(b"x").unwrap();
        });
        assert_eq!(&*rx.recv_bytes(Wait::Sleep, Duration::from_secs(10)).unwrap(), b"x");
        h.join().unwrap();
        assert!(rx.stats().wakeups >= 1);
        // Spinning receives work too.
        let tx = Sender::open(&e, "c").unwrap();
        tx.try_send_bytes(b"y").unwrap();
        assert_eq!(&*rx.recv_bytes(Wait::Spin, Duration::from_secs(1)).unwrap(), b"y");
    }

    #[test]
    fn a_dropped_grant_is_skipped_and_a_grant_is_written_in_place() {
        let e = engine("grant");
        let mut rx = Receiver::create(&e, "c", Config::new(Mode::Spsc, 32, 4)).unwrap();
        let tx = Sender::open(&e, "c").unwrap();
        drop(tx.try_reserve(8).unwrap());
        let mut g = tx.try_reserve(32).unwrap();
        g.bytes_mut()[..4].copy_from_slice(b"abcd");
        g.commit(4).unwrap();
        assert_eq!(&*rx.try_recv_bytes().unwrap(), b"abcd");
        assert_eq!(rx.stats().sent, 1);
    }

    #[test]
    fn a_slot_held_by_a_dead_writer_is_skipped_and_a_garbage_length_is_counted() {
        let e = engine("dead");
        let mut rx = Receiver::create(&e, "c", Config::new(Mode::Mpsc, 16, 4)).unwrap();
        let tx = Sender::open(&e, "c").unwrap();
        // A reservation whose writer is a process that has exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let g = tx.try_reserve(4).unwrap();
        tx.map.slot(g.index).writer.store(dead, Ordering::Relaxed);
        std::mem::forget(g);
        tx.try_send_bytes(b"after").unwrap();
        assert_eq!(&*rx.recv_bytes(Wait::Sleep, Duration::from_secs(5)).unwrap(), b"after");
        assert_eq!(rx.stats().skipped_dead_producer, 1);
        // A published slot with a length past the slot size.
        tx.try_send_bytes(b"bad").unwrap();
        let pos = rx.header().tail.load(Ordering::Relaxed);
        rx.map.slot((pos & 3) as usize).len.store(1 << 20, Ordering::Relaxed);
        tx.try_send_bytes(b"good").unwrap();
        assert_eq!(&*rx.try_recv_bytes().unwrap(), b"good");
        assert_eq!(rx.stats().garbage, 1);
    }

    #[test]
    fn names_are_checked_and_a_live_owner_keeps_its_channel() {
        assert!(matches!(Receiver::create("a/b", "c", Config::new(Mode::Spsc, 8, 2)), Err(Error::BadName(_))));
        assert!(matches!(Sender::open("nobody-here", "c"), Err(Error::NotFound(_))));
        assert!(matches!(Receiver::create("x", "c", Config::new(Mode::Spsc, 8, 3)), Err(Error::BadConfig(_))));
        let e = engine("owned");
        let _rx = Receiver::create(&e, "c", Config::new(Mode::Spsc, 8, 2)).unwrap();
        assert!(matches!(Receiver::create(&e, "c", Config::new(Mode::Spsc, 8, 2)), Err(Error::InUse { .. })));
        // An SPSC channel has one producer at a time.
        let _tx = Sender::open(&e, "c").unwrap();
        let _same_process = Sender::open(&e, "c").unwrap();
    }

    #[test]
    fn names_carry_the_uid_and_files_are_owner_only_whatever_the_umask() {
        let e = engine("umask");
        let path = path_of(&e, "c").unwrap();
        assert_eq!(path.to_str().unwrap(), format!("/dev/shm/clavm-{}-{e}.c", crate::uid()));
        // SAFETY: umask only changes this process's creation mask; restored below.
        let old = unsafe { libc::umask(0) };
        let rx = Receiver::create(&e, "c", Config::new(Mode::Spsc, 8, 2));
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        let _rx = rx.unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.uid(), crate::uid());
    }

    #[test]
    fn a_link_in_place_of_a_channel_is_not_followed() {
        let e = engine("link");
        let path = path_of(&e, "c").unwrap();
        let target = std::env::temp_dir().join(format!("clavm-link-target-{e}"));
        std::fs::write(&target, b"precious").unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(matches!(Sender::open(&e, "c"), Err(Error::Corrupt { .. })));
        // Ours (we made the link): replaced by the channel, the target untouched.
        let _rx = Receiver::create(&e, "c", Config::new(Mode::Spsc, 8, 2)).unwrap();
        assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        std::fs::remove_file(&target).unwrap();
    }

    #[test]
    fn a_bad_sequence_number_fails_a_send_at_once_and_the_consumer_resets_the_ring() {
        let e = engine("badseq");
        let mut rx = Receiver::create(&e, "c", Config::new(Mode::Mpsc, 16, 4)).unwrap();
        let tx = Sender::open(&e, "c").unwrap();
        tx.try_send_bytes(b"one").unwrap();
        // The next producer's slot says "taken" but nobody moved `head`: no spinning on it.
        rx.map.slot(1).seq.store(1 << 40, Ordering::Relaxed);
        assert_eq!(tx.try_send_bytes(b"two"), Err(SendError::Garbage));
        assert_eq!(&*rx.try_recv_bytes().unwrap(), b"one");
        // The consumer arrives at the bad slot: the ring is reset, said once, and works again.
        assert_eq!(rx.try_recv_bytes().err(), Some(RecvError::Reset));
        tx.try_send_bytes(b"three").unwrap();
        assert_eq!(&*rx.try_recv_bytes().unwrap(), b"three");
        // A head far ahead of the tail: reset too.
        rx.header().head.store(u64::MAX - 3, Ordering::Relaxed);
        assert_eq!(rx.recv_bytes(Wait::Sleep, Duration::from_millis(10)).err(), Some(RecvError::Reset));
        tx.try_send_bytes(b"four").unwrap();
        assert_eq!(&*rx.try_recv_bytes().unwrap(), b"four");
        assert!(rx.stats().garbage >= 3);
    }

    #[test]
    fn a_truncated_file_is_abandoned_without_sigbus_and_its_owner_renews_it() {
        let e = engine("trunc");
        let mut rx = Receiver::create(&e, "c", Config::new(Mode::Mpsc, 8192, 4)).unwrap();
        let tx = Sender::open(&e, "c").unwrap();
        tx.try_send_bytes(b"before").unwrap();
        let path = path_of(&e, "c").unwrap();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
        // Every access past the end would be a SIGBUS: caught, and the channel abandoned.
        assert_eq!(rx.try_recv_bytes().err(), Some(RecvError::Broken));
        assert_eq!(tx.try_send_bytes(b"after"), Err(SendError::Broken));
        assert!(rx.is_owner());
        let mut rx = rx.renew().unwrap();
        assert!(rx.intact());
        assert!(!tx.intact(), "a sender of the replaced file knows to open again");
        let tx = Sender::open(&e, "c").unwrap();
        assert!(tx.intact());
        tx.try_send_bytes(b"renewed").unwrap();
        assert_eq!(&*rx.try_recv_bytes().unwrap(), b"renewed");
        // A half-truncated file is refused on open (sizes do not match), not mapped past its end.
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(1000).unwrap();
        assert!(matches!(Sender::open(&e, "c"), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn a_fault_outside_any_channel_still_kills_the_process() {
        let e = engine("bus");
        // In a child: a SIGBUS in a mapping that is not a channel is not swallowed by the guard.
        if let Ok(e) = std::env::var("CLAVM_CHANNEL_BUS_CHILD") {
            let _rx = Receiver::create(&e, "c", Config::new(Mode::Spsc, 8, 2)).unwrap();
            let file = tempfile::tempfile().unwrap();
            file.set_len(4096).unwrap();
            use std::os::fd::AsRawFd;
            // SAFETY: a shared mapping of our own temporary file; reading it after truncation is the test.
            unsafe {
                let p = libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), 0);
                assert_ne!(p, libc::MAP_FAILED);
                file.set_len(0).unwrap();
                let v = std::ptr::read_volatile(p as *const u8);
                println!("read {v} past the end and lived");
            }
            std::process::exit(0);
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "ring::tests::a_fault_outside_any_channel_still_kills_the_process", "--nocapture"])
            .env("CLAVM_CHANNEL_BUS_CHILD", &e)
            .output()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGBUS), "{out:?}");
        assert_eq!(crate::remove_stale(&e).unwrap(), 1, "the dead child's channel is swept");
    }

    #[test]
    fn a_garbage_file_is_refused_and_replaced_by_the_next_owner() {
        let e = engine("garbage");
        let path = path_of(&e, "c").unwrap();
        std::fs::write(&path, vec![0x5a; 4096]).unwrap();
        // Ours but readable by others: not trusted, whatever it holds.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(Sender::open(&e, "c"), Err(Error::OpenToOthers { mode: 0o644, .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(Sender::open(&e, "c"), Err(Error::Corrupt { .. })));
        let mut rx = Receiver::create(&e, "c", Config::new(Mode::Spsc, 8, 2)).unwrap();
        Sender::open(&e, "c").unwrap().try_send_bytes(b"ok").unwrap();
        assert_eq!(&*rx.try_recv_bytes().unwrap(), b"ok");
        drop(rx);
        assert!(!path.exists(), "the owner removes its channel");
    }
}
