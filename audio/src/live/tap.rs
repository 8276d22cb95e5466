//! The audio tap: every block the device plays, published on a shared-memory
//! channel (`ENGINE.tap`) for whoever draws or records it (the scope, the
//! waveforms, `clavm tap`). The audio thread never waits for a reader: a full
//! ring drops the block and counts it.

use clavm_channel::{Config, Mode, Sender, ShmSafe};

/// The channel's name beside the engine's.
pub const TAP_CHANNEL: &str = "tap";
/// Blocks the ring holds (at 128 frames and 48 kHz: 170 ms).
pub const TAP_SLOTS: usize = 64;
/// The largest block published whole; larger device blocks are published in pieces.
pub const TAP_MAX_FRAMES: usize = 1024;

/// The fixed part of a tap message; `frames * channels` interleaved f32 follow.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TapHeader {
    /// The engine's frame count at the block's first frame.
    pub frame: u64,
    pub sample_rate: f64,
    pub channels: u32,
    pub frames: u32,
}
// SAFETY: repr(C) numbers, no padding.
unsafe impl ShmSafe for TapHeader {}

/// The tap channel's shape for `channels` channels.
pub fn tap_config(channels: usize) -> Config {
    Config::new(Mode::Spsc, std::mem::size_of::<TapHeader>() + TAP_MAX_FRAMES * channels * 4, TAP_SLOTS)
}

/// The audio thread's end: publishes without waiting or allocating.
pub struct Tap {
    tx: Sender,
}

impl Tap {
    /// Creates `ENGINE.tap` (before the audio starts: this does file I/O).
    pub fn create(engine: &str, channels: usize) -> Result<Tap, clavm_channel::Error> {
        Ok(Tap { tx: Sender::create(engine, TAP_CHANNEL, tap_config(channels))? })
    }

    /// Publishes one interleaved block played at `frame` (realtime-safe).
    pub fn publish(&self, frame: u64, sample_rate: f64, channels: usize, block: &[f32]) {
        let hl = std::mem::size_of::<TapHeader>();
        for (i, piece) in block.chunks(TAP_MAX_FRAMES * channels).enumerate() {
            let Ok(mut g) = self.tx.try_reserve(hl + piece.len() * 4) else { return };
            let frames = piece.len() / channels;
            let h = TapHeader {
                frame: frame + (i * TAP_MAX_FRAMES) as u64,
                sample_rate,
                channels: channels as u32,
                frames: frames as u32,
            };
            let bytes = g.bytes_mut();
            bytes[..hl].copy_from_slice(bytemuck::bytes_of(&h));
            bytes[hl..hl + piece.len() * 4].copy_from_slice(bytemuck::cast_slice(piece));
            let _ = g.commit(hl + piece.len() * 4);
        }
    }
}

/// Opens `ENGINE.tap` to read it from now on: the blocks that piled up while
/// nobody read (up to [`TAP_SLOTS`], old) are skipped.
pub fn open_tap(engine: &str) -> Result<clavm_channel::Receiver, clavm_channel::Error> {
    let mut rx = clavm_channel::Receiver::open(engine, TAP_CHANNEL)?;
    while rx.try_recv_bytes().is_ok() {}
    Ok(rx)
}

/// Splits a tap message into its header and samples; `None` if it is not one.
pub fn read_tap(bytes: &[u8]) -> Option<(TapHeader, Vec<f32>)> {
    let hl = std::mem::size_of::<TapHeader>();
    let h: TapHeader = bytemuck::pod_read_unaligned(bytes.get(..hl)?);
    let n = (h.frames as usize).checked_mul(h.channels as usize)?;
    let body = bytes.get(hl..hl + n * 4).filter(|_| bytes.len() == hl + n * 4)?;
    Some((h, bytemuck::pod_collect_to_vec(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clavm_channel::Receiver;

    #[test]
    fn blocks_arrive_whole_in_order_and_a_late_reader_costs_only_drops() {
        let engine = format!("taptest{}", std::process::id());
        let tap = Tap::create(&engine, 2).unwrap();
        let mut rx = Receiver::open(&engine, TAP_CHANNEL).unwrap();
        let block: Vec<f32> = (0..256).map(|i| i as f32).collect();
        tap.publish(1000, 48000.0, 2, &block);
        let m = rx.try_recv_bytes().unwrap();
        let (h, samples) = read_tap(&m).unwrap();
        assert_eq!((h.frame, h.channels, h.frames, h.sample_rate), (1000, 2, 128, 48000.0));
        assert_eq!(samples, block);
        drop(m);
        // A device block larger than a tap message goes in pieces, frames numbered on.
        let big = vec![0.5f32; (TAP_MAX_FRAMES + 10) * 2];
        tap.publish(5000, 48000.0, 2, &big);
        let (h1, _) = read_tap(&rx.try_recv_bytes().unwrap()).unwrap();
        let (h2, s2) = read_tap(&rx.try_recv_bytes().unwrap()).unwrap();
        assert_eq!(
            (h1.frame, h1.frames, h2.frame, h2.frames),
            (5000, TAP_MAX_FRAMES as u32, 5000 + TAP_MAX_FRAMES as u64, 10)
        );
        assert_eq!(s2.len(), 20);
        // Nobody reading: the ring fills and drops, publishing never waits.
        for i in 0..TAP_SLOTS as u64 + 10 {
            tap.publish(i * 128, 48000.0, 2, &block);
        }
        assert_eq!(rx.stats().dropped_full, 10);
        assert!(read_tap(&[1, 2, 3]).is_none());
    }
}
