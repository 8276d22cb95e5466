//! The two ends of a channel.

use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::layout::{Config, Header, Mode, Stats, CANCELLED};
use crate::map::Mapping;
use crate::{futex, path_of, process, Error, RecvError, SendError, ShmSafe};

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
    loop {
        let holder = word.load(Ordering::Acquire);
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
        let h = self.map.header();
        let max = self.map.config.slot_size;
        if len > max {
            h.dropped_too_large.fetch_add(1, Ordering::Relaxed);
            return Err(SendError::TooLarge { len, max });
        }
        let mask = self.map.config.slot_count as u64 - 1;
        let mut pos = h.head.load(Ordering::Relaxed);
        loop {
            let slot = self.map.slot((pos & mask) as usize);
            let seq = slot.seq.load(Ordering::Acquire);
            match seq.wrapping_sub(pos) as i64 {
                0 => match h.head.compare_exchange_weak(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => {
                        slot.writer.store(self.pid, Ordering::Relaxed);
                        return Ok(Grant { tx: self, pos, index: (pos & mask) as usize, done: false });
                    }
                    Err(now) => pos = now,
                },
                d if d < 0 => {
                    h.dropped_full.fetch_add(1, Ordering::Relaxed);
                    return Err(SendError::Full);
                }
                _ => pos = h.head.load(Ordering::Relaxed),
            }
        }
    }

    fn publish(&self, pos: u64, index: usize, len: u32) -> Result<(), SendError> {
        let h = self.map.header();
        let slot = self.map.slot(index);
        slot.len.store(len, Ordering::Relaxed);
        slot.writer.store(0, Ordering::Relaxed);
        // SeqCst, with the SeqCst load of `consumer_waiting` below, pairs with
        // the consumer's store and fence before it sleeps: one of the two sees
        // the other, so a sleeping consumer is never missed (and no fence here).
        if slot.seq.compare_exchange(pos, pos + 1, Ordering::SeqCst, Ordering::Relaxed).is_err() {
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

    /// Publishes the first `len` bytes.
    pub fn commit(mut self, len: usize) -> Result<(), SendError> {
        assert!(len <= self.tx.map.config.slot_size, "commit of {len} bytes exceeds the slot");
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

    /// Takes the next message without waiting; the slot is freed when the
    /// returned [`Message`] is dropped.
    pub fn try_recv_bytes(&mut self) -> Result<Message<'_>, RecvError> {
        match self.next() {
            Some((pos, index, len)) => Ok(Message { rx: self, pos, index, len }),
            None => Err(RecvError::Empty),
        }
    }

    /// Waits up to `timeout` for the next message.
    pub fn recv_bytes(&mut self, wait: Wait, timeout: Duration) -> Result<Message<'_>, RecvError> {
        match self.wait_next(wait, timeout) {
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

    fn wait_next(&mut self, wait: Wait, timeout: Duration) -> Option<(u64, usize, u32)> {
        let start = Instant::now();
        let deadline = start + timeout;
        let spin_until = match wait {
            Wait::Sleep => start,
            Wait::SpinThenSleep(d) => start + d,
            Wait::Spin => deadline,
        };
        loop {
            if let Some(found) = self.next() {
                return Some(found);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            if now < spin_until {
                std::hint::spin_loop();
                continue;
            }
            let h = self.header();
            h.consumer_waiting.store(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let seen = h.signal.load(Ordering::Acquire);
            if let Some(found) = self.next() {
                self.header().consumer_waiting.store(0, Ordering::Relaxed);
                return Some(found);
            }
            // Behind a slot whose producer may be dead nobody will wake us: look again soon.
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
    /// cancelled, garbage and abandoned slots.
    fn next(&mut self) -> Option<(u64, usize, u32)> {
        let count = self.map.config.slot_count as u64;
        loop {
            let h = self.map.header();
            let pos = h.tail.load(Ordering::Relaxed);
            let index = (pos & (count - 1)) as usize;
            let slot = self.map.slot(index);
            let seq = slot.seq.load(Ordering::Acquire);
            if seq == pos + 1 {
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
                return Some((pos, index, len));
            }
            if h.head.load(Ordering::Acquire) <= pos {
                self.stuck = None;
                return None;
            }
            // Reserved, not published (or a slot scribbled over): wait for its writer, within reason.
            if !give_up_on(&mut self.stuck, pos, slot.writer.load(Ordering::Relaxed)) {
                return None;
            }
            if slot.seq.compare_exchange(seq, pos + count, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                let counter = if seq == pos { &h.skipped_dead } else { &h.garbage };
                counter.fetch_add(1, Ordering::Relaxed);
                h.tail.store(pos + 1, Ordering::Release);
            }
            self.stuck = None;
        }
    }

    fn release(&self, pos: u64, index: usize) {
        let h = self.map.header();
        let count = self.map.config.slot_count as u64;
        self.map.slot(index).seq.store(pos + count, Ordering::Release);
        h.tail.store(pos + 1, Ordering::Release);
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
            (now, now - STUCK_RECHECK)
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
        received.store(received.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.rx.release(self.pos, self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn a_garbage_file_is_refused_and_replaced_by_the_next_owner() {
        let e = engine("garbage");
        let path = path_of(&e, "c").unwrap();
        std::fs::write(&path, vec![0x5a; 4096]).unwrap();
        assert!(matches!(Sender::open(&e, "c"), Err(Error::Corrupt { .. })));
        let mut rx = Receiver::create(&e, "c", Config::new(Mode::Spsc, 8, 2)).unwrap();
        Sender::open(&e, "c").unwrap().try_send_bytes(b"ok").unwrap();
        assert_eq!(&*rx.try_recv_bytes().unwrap(), b"ok");
        drop(rx);
        assert!(!path.exists(), "the owner removes its channel");
    }
}
