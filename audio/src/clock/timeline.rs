//! A beat timeline shared with others (Ableton Link), and what the engine
//! publishes of its own clock for the transport display and the tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Bpm, Meter};

/// Where a shared timeline puts the block about to be rendered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// The beat at the moment the block's first frame is heard.
    pub beat: f64,
    pub bpm: Bpm,
    /// That moment, on the timeline's clock (microseconds, CLOCK_MONOTONIC on Linux).
    pub heard_at_micros: i64,
}

/// A beat timeline the tempo clock follows. Asked once per block on the
/// audio thread: an implementation must not allocate, lock or block.
pub trait BeatTimeline: Send {
    /// Where the block starting at engine frame `frame` falls: `until_heard`
    /// is how long after now its first frame reaches the listener (the
    /// output's latency plus the block). `meter` is the bar the phase is kept in.
    fn place(&mut self, frame: u64, until_heard: Duration, meter: Meter) -> Option<Placement>;

    /// This engine was asked for a new tempo (`clavm tempo`, OSC): the whole
    /// session takes it.
    fn request_tempo(&mut self, bpm: Bpm, frame: u64, until_heard: Duration);

    /// How many others share the timeline (for the status line).
    fn peers(&self) -> u64;
}

/// A linear fit of host time against frames: audio callbacks come with
/// jitter, the frame count does not. Fixed-size, allocation-free.
#[derive(Debug, Clone)]
pub struct HostTimeFilter {
    points: [(f64, f64); Self::POINTS],
    len: usize,
    next: usize,
    origin: Option<(u64, i64)>,
}

impl Default for HostTimeFilter {
    fn default() -> Self {
        HostTimeFilter { points: [(0.0, 0.0); Self::POINTS], len: 0, next: 0, origin: None }
    }
}

impl HostTimeFilter {
    /// About 1.4 s of 128-frame blocks at 48 kHz.
    const POINTS: usize = 512;

    /// The host time (µs) of `frame`, given that it was `host_micros` when
    /// the callback for it ran.
    pub fn host_time(&mut self, frame: u64, host_micros: i64) -> i64 {
        // Relative to the first point, so that f64 keeps microseconds exact.
        let (f0, h0) = *self.origin.get_or_insert((frame, host_micros));
        let x = frame.wrapping_sub(f0) as f64;
        let y = (host_micros - h0) as f64;
        self.points[self.next] = (x, y);
        self.next = (self.next + 1) % Self::POINTS;
        self.len = (self.len + 1).min(Self::POINTS);
        let n = self.len as f64;
        if self.len < 2 {
            return host_micros;
        }
        let pts = &self.points[..self.len];
        let (mx, my) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
        let (sxy, sxx) = pts.iter().fold((0.0, 0.0), |(a, b), (px, py)| {
            let dx = px - mx;
            (a + dx * (py - my), b + dx * dx)
        });
        if sxx <= 0.0 {
            return host_micros;
        }
        let slope = sxy / sxx;
        (h0 as f64 + my + slope * (x - mx)).round() as i64
    }
}

/// The engine's clock as the transport display (and tests) see it: the beat
/// and tempo at the last block, and when that block is heard. Written by the
/// audio thread, read anywhere (a sequence count guards against torn reads).
#[derive(Debug, Default)]
pub struct ClockMeter {
    seq: AtomicU64,
    beat: AtomicU64,
    bpm: AtomicU64,
    heard_at_micros: AtomicU64,
    peers: AtomicU64,
}

/// One consistent reading of a [`ClockMeter`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockReading {
    pub beat: f64,
    pub bpm: f64,
    pub heard_at_micros: i64,
    /// Others sharing the timeline (0 without Link).
    pub peers: u64,
}

impl ClockReading {
    /// The beat heard at `micros` on the same clock, at this reading's tempo.
    pub fn beat_at_micros(&self, micros: i64) -> f64 {
        self.beat + (micros - self.heard_at_micros) as f64 * self.bpm / 60e6
    }
}

impl ClockMeter {
    pub fn publish(&self, r: ClockReading) {
        self.seq.fetch_add(1, Ordering::AcqRel);
        self.beat.store(r.beat.to_bits(), Ordering::Relaxed);
        self.bpm.store(r.bpm.to_bits(), Ordering::Relaxed);
        self.heard_at_micros.store(r.heard_at_micros as u64, Ordering::Relaxed);
        self.peers.store(r.peers, Ordering::Relaxed);
        self.seq.fetch_add(1, Ordering::AcqRel);
    }

    /// The last published reading (None before the first block).
    pub fn read(&self) -> Option<ClockReading> {
        for _ in 0..100 {
            let s0 = self.seq.load(Ordering::Acquire);
            if s0 == 0 {
                return None;
            }
            let r = ClockReading {
                beat: f64::from_bits(self.beat.load(Ordering::Relaxed)),
                bpm: f64::from_bits(self.bpm.load(Ordering::Relaxed)),
                heard_at_micros: self.heard_at_micros.load(Ordering::Relaxed) as i64,
                peers: self.peers.load(Ordering::Relaxed),
            };
            if s0.is_multiple_of(2) && self.seq.load(Ordering::Acquire) == s0 {
                return Some(r);
            }
            std::hint::spin_loop();
        }
        None
    }
}

/// Microseconds on CLOCK_MONOTONIC: the clock Link uses on Linux, so an
/// engine without Link publishes on the same scale.
pub fn monotonic_micros() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000 + ts.tv_nsec / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_removes_callback_jitter() {
        let mut f = HostTimeFilter::default();
        let mut worst: f64 = 0.0;
        for i in 0..2000u64 {
            let frame = i * 128;
            let truth = 1_000_000_000 + (frame as f64 / 48000.0 * 1e6) as i64;
            // ±300 µs of scheduling noise, deterministic.
            let noise = ((i * 7919) % 601) as i64 - 300;
            let got = f.host_time(frame, truth + noise);
            if i > 200 {
                worst = worst.max((got - truth).abs() as f64);
            }
        }
        assert!(worst < 60.0, "filtered error {worst} µs");
    }

    #[test]
    fn readings_are_published_whole() {
        let m = ClockMeter::default();
        assert_eq!(m.read(), None);
        let r = ClockReading { beat: 3.5, bpm: 120.0, heard_at_micros: 1_000_000, peers: 1 };
        m.publish(r);
        assert_eq!(m.read(), Some(r));
        // Half a second later at 120 BPM: one beat on.
        assert_eq!(r.beat_at_micros(1_500_000), 4.5);
    }
}
