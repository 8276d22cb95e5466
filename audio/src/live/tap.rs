//! The audio tap: every block the device plays, published on a shared-memory
//! channel (`ENGINE.tap`) for whoever draws or records it (the scope, the
//! waveforms, `clavm tap`). The audio thread never waits for a reader: a full
//! ring drops the block and counts it.
//!
//! Format: a [`TapHeader`], then the block's output (`frames * channels`
//! interleaved f32), then, when the engine has live inputs, what the inputs
//! brought in the same block (`frames * inputs` interleaved f32). `inputs`
//! took the place of a padding word that was always 0, so a message without
//! inputs is byte for byte what it was before inputs existed; a reader that
//! predates them and meets a message with inputs refuses it by its length
//! (one line), never plays the inputs as output.

use clavm_channel::{Config, Mode, Sender, ShmSafe};

/// The channel's name beside the engine's.
pub const TAP_CHANNEL: &str = "tap";
/// Blocks the ring holds (at 128 frames and 48 kHz: 170 ms).
pub const TAP_SLOTS: usize = 64;
/// The largest block published whole; larger device blocks are published in pieces.
pub const TAP_MAX_FRAMES: usize = 1024;

/// The fixed part of a tap message; `frames * channels` interleaved f32 of
/// output follow, then `frames * inputs` interleaved f32 of input.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct TapHeader {
    /// The engine's frame count at the block's first frame.
    pub frame: u64,
    pub sample_rate: f64,
    /// When the block was published: CLOCK_MONOTONIC in nanoseconds, the
    /// same clock in every process (see [`monotonic_ns`]). A reader knows
    /// how old the audio it draws is.
    pub published_ns: u64,
    pub channels: u32,
    pub frames: u32,
    /// The engine's DSP load for the block: process time over block time.
    pub dsp_load: f32,
    /// Live input channels carried after the output (0: none; this word was
    /// padding, always 0, before inputs existed).
    pub inputs: u32,
}
// SAFETY: repr(C) numbers, no padding.
unsafe impl ShmSafe for TapHeader {}

/// The tap channel's shape for `channels` output and `inputs` input channels.
pub fn tap_config(channels: usize, inputs: usize) -> Config {
    Config::new(Mode::Spsc, std::mem::size_of::<TapHeader>() + TAP_MAX_FRAMES * (channels + inputs) * 4, TAP_SLOTS)
}

/// The audio thread's end: publishes without waiting or allocating.
pub struct Tap {
    tx: Sender,
    /// Input channels each message carries (fixed when the channel is made).
    inputs: usize,
}

impl Tap {
    /// Creates `ENGINE.tap` for `channels` outputs and `inputs` live inputs
    /// (before the audio starts: this does file I/O).
    pub fn create(engine: &str, channels: usize, inputs: usize) -> Result<Tap, clavm_channel::Error> {
        Ok(Tap { tx: Sender::create(engine, TAP_CHANNEL, tap_config(channels, inputs))?, inputs })
    }

    /// Publishes one interleaved block played at `frame` with its DSP load,
    /// and the input the engine got for it (`frames * inputs` interleaved;
    /// missing samples are published as silence). Realtime-safe: no
    /// allocation, no waiting, no system call.
    pub fn publish(&self, frame: u64, sample_rate: f64, channels: usize, block: &[f32], input: &[f32], dsp_load: f32) {
        let hl = std::mem::size_of::<TapHeader>();
        let published_ns = monotonic_ns();
        let channels = channels.max(1);
        let ins = self.inputs;
        for (i, piece) in block.chunks(TAP_MAX_FRAMES * channels).enumerate() {
            let frames = piece.len() / channels;
            let out_len = frames * channels;
            let in_len = frames * ins;
            let Ok(mut g) = self.tx.try_reserve(hl + (out_len + in_len) * 4) else { return };
            let h = TapHeader {
                frame: frame + (i * TAP_MAX_FRAMES) as u64,
                sample_rate,
                published_ns,
                channels: channels as u32,
                frames: frames as u32,
                dsp_load,
                inputs: ins as u32,
            };
            let bytes = g.bytes_mut();
            bytes[..hl].copy_from_slice(bytemuck::bytes_of(&h));
            let (out_bytes, in_bytes) = bytes[hl..hl + (out_len + in_len) * 4].split_at_mut(out_len * 4);
            out_bytes.copy_from_slice(bytemuck::cast_slice(&piece[..out_len]));
            let start = i * TAP_MAX_FRAMES * ins;
            let have = input.get(start..).unwrap_or(&[]);
            let n = have.len().min(in_len);
            in_bytes[..n * 4].copy_from_slice(bytemuck::cast_slice(&have[..n]));
            in_bytes[n * 4..].fill(0);
            let _ = g.commit(hl + (out_len + in_len) * 4);
        }
    }
}

/// Opens `ENGINE.tap` to read it from now on: the blocks that piled up while
/// nobody read (up to [`TAP_SLOTS`], old) are skipped.
pub fn open_tap(engine: &str) -> Result<clavm_channel::Receiver, clavm_channel::Error> {
    let mut rx = clavm_channel::Receiver::open(engine, TAP_CHANNEL)?;
    // Bounded: a producer that never stops (or a scribbled ring) cannot keep us here.
    for _ in 0..2 * TAP_SLOTS {
        if rx.try_recv_bytes().is_err() {
            break;
        }
    }
    Ok(rx)
}

/// The sample rates a tap may claim.
pub const TAP_RATES: std::ops::RangeInclusive<f64> = 1000.0..=1_536_000.0;
/// The channel counts a tap may claim.
pub const TAP_CHANNELS: std::ops::RangeInclusive<u32> = 1..=64;
/// The input counts a tap may claim.
pub const TAP_INPUTS: std::ops::RangeInclusive<u32> = 0..=64;

/// Why a tap message cannot be used: the tap is another process's memory,
/// so a forged or scribbled one must end a reader with a sentence, not a panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BadTap {
    #[error("a tap message of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("the tap claims a sample rate of {0} Hz (a tap plays at 1000..=1536000 Hz)")]
    Rate(f64),
    #[error("the tap claims {0} channels (a tap has 1..=64)")]
    Channels(u32),
    #[error("the tap claims {0} input channels (a tap has 0..=64)")]
    Inputs(u32),
    #[error("the tap claims {0} frames in one block (at most {TAP_MAX_FRAMES})")]
    Frames(u32),
    #[error("the tap message is {len} bytes where its header says {expected}")]
    Length { len: usize, expected: usize },
}

/// Checks a tap message and splits it into its header and output samples
/// (into a buffer the caller reuses: a reader that runs every frame
/// allocates nothing once warm). The inputs, if any, are skipped: see
/// [`decode_tap_with_inputs`].
pub fn decode_tap(bytes: &[u8], samples: &mut Vec<f32>) -> Result<TapHeader, BadTap> {
    let h = check_tap(bytes)?;
    let hl = std::mem::size_of::<TapHeader>();
    let out_end = hl + h.frames as usize * h.channels as usize * 4;
    samples.clear();
    samples.extend(bytes[hl..out_end].chunks_exact(4).map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])));
    Ok(h)
}

/// As [`decode_tap`], also splitting out what the live inputs brought
/// (`frames * inputs` interleaved; empty when the engine has none).
pub fn decode_tap_with_inputs(
    bytes: &[u8],
    samples: &mut Vec<f32>,
    inputs: &mut Vec<f32>,
) -> Result<TapHeader, BadTap> {
    let h = decode_tap(bytes, samples)?;
    let start = std::mem::size_of::<TapHeader>() + samples.len() * 4;
    inputs.clear();
    inputs.extend(bytes[start..].chunks_exact(4).map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]])));
    Ok(h)
}

/// The header of a tap message, if every field is in range and the length matches it.
fn check_tap(bytes: &[u8]) -> Result<TapHeader, BadTap> {
    let hl = std::mem::size_of::<TapHeader>();
    let h: TapHeader = bytemuck::pod_read_unaligned(bytes.get(..hl).ok_or(BadTap::Short(bytes.len()))?);
    if !TAP_RATES.contains(&h.sample_rate) {
        return Err(BadTap::Rate(h.sample_rate));
    }
    if !TAP_CHANNELS.contains(&h.channels) {
        return Err(BadTap::Channels(h.channels));
    }
    if !TAP_INPUTS.contains(&h.inputs) {
        return Err(BadTap::Inputs(h.inputs));
    }
    if h.frames as usize > TAP_MAX_FRAMES {
        return Err(BadTap::Frames(h.frames));
    }
    // All bounded above: no overflow.
    let expected = hl + h.frames as usize * (h.channels + h.inputs) as usize * 4;
    if bytes.len() != expected {
        return Err(BadTap::Length { len: bytes.len(), expected });
    }
    Ok(h)
}

/// Splits a tap message into its header and samples; `None` if it is not a valid one.
pub fn read_tap(bytes: &[u8]) -> Option<(TapHeader, Vec<f32>)> {
    let mut samples = Vec::new();
    read_tap_into(bytes, &mut samples).map(|h| (h, samples))
}

/// As [`read_tap`], into a buffer the caller reuses; see [`decode_tap`] for why not.
pub fn read_tap_into(bytes: &[u8], samples: &mut Vec<f32>) -> Option<TapHeader> {
    decode_tap(bytes, samples).ok()
}

/// CLOCK_MONOTONIC in nanoseconds: comparable across processes (unlike
/// `Instant`), and read through the vDSO without a system call.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we pass; CLOCK_MONOTONIC exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use clavm_channel::Receiver;

    #[test]
    fn blocks_arrive_whole_in_order_and_a_late_reader_costs_only_drops() {
        let engine = format!("taptest{}", std::process::id());
        let tap = Tap::create(&engine, 2, 0).unwrap();
        let mut rx = Receiver::open(&engine, TAP_CHANNEL).unwrap();
        let block: Vec<f32> = (0..256).map(|i| i as f32).collect();
        let before = monotonic_ns();
        tap.publish(1000, 48000.0, 2, &block, &[], 0.25);
        let m = rx.try_recv_bytes().unwrap();
        let (h, samples) = read_tap(&m).unwrap();
        assert_eq!((h.frame, h.channels, h.frames, h.sample_rate, h.dsp_load), (1000, 2, 128, 48000.0, 0.25));
        assert!(h.published_ns >= before && h.published_ns <= monotonic_ns(), "stamped when published");
        assert_eq!(samples, block);
        drop(m);
        // A device block larger than a tap message goes in pieces, frames numbered on.
        let big = vec![0.5f32; (TAP_MAX_FRAMES + 10) * 2];
        tap.publish(5000, 48000.0, 2, &big, &[], 0.0);
        let (h1, _) = read_tap(&rx.try_recv_bytes().unwrap()).unwrap();
        let (h2, s2) = read_tap(&rx.try_recv_bytes().unwrap()).unwrap();
        assert_eq!(
            (h1.frame, h1.frames, h2.frame, h2.frames),
            (5000, TAP_MAX_FRAMES as u32, 5000 + TAP_MAX_FRAMES as u64, 10)
        );
        assert_eq!(s2.len(), 20);
        // Nobody reading: the ring fills and drops, publishing never waits.
        for i in 0..TAP_SLOTS as u64 + 10 {
            tap.publish(i * 128, 48000.0, 2, &block, &[], 0.0);
        }
        assert_eq!(rx.stats().dropped_full, 10);
        assert!(read_tap(&[1, 2, 3]).is_none());
    }

    fn forged(h: TapHeader, samples: usize) -> Vec<u8> {
        let mut bytes = bytemuck::bytes_of(&h).to_vec();
        bytes.resize(bytes.len() + samples * 4, 0);
        bytes
    }

    #[test]
    fn a_forged_tap_header_is_refused_with_a_reason() {
        let good = TapHeader {
            frame: 0,
            sample_rate: 48000.0,
            published_ns: 0,
            channels: 2,
            frames: 4,
            dsp_load: 0.0,
            inputs: 0,
        };
        let mut s = Vec::new();
        assert_eq!(decode_tap(&forged(good, 8), &mut s).map(|h| h.frames), Ok(4));
        assert_eq!(s.len(), 8);
        let nan = decode_tap(&forged(TapHeader { sample_rate: f64::NAN, ..good }, 8), &mut s).unwrap_err();
        assert!(matches!(nan, BadTap::Rate(r) if r.is_nan()));
        assert_eq!(decode_tap(&forged(TapHeader { sample_rate: 0.0, ..good }, 8), &mut s), Err(BadTap::Rate(0.0)));
        assert_eq!(decode_tap(&forged(TapHeader { channels: 0, ..good }, 0), &mut s), Err(BadTap::Channels(0)));
        assert_eq!(
            decode_tap(&forged(TapHeader { frames: u32::MAX, channels: 64, ..good }, 8), &mut s),
            Err(BadTap::Frames(u32::MAX))
        );
        assert_eq!(decode_tap(&forged(good, 7), &mut s), Err(BadTap::Length { len: 40 + 28, expected: 40 + 32 }));
        assert!(BadTap::Rate(f64::NAN).to_string().contains("NaN Hz"));
        assert_eq!(decode_tap(&forged(TapHeader { inputs: 65, ..good }, 8), &mut s), Err(BadTap::Inputs(65)));
        // Inputs the length does not cover: refused, not read past.
        assert_eq!(
            decode_tap(&forged(TapHeader { inputs: 1, ..good }, 8), &mut s),
            Err(BadTap::Length { len: 40 + 32, expected: 40 + 48 })
        );
    }

    #[test]
    fn inputs_follow_the_output_and_a_reader_of_outputs_only_skips_them() {
        let engine = format!("tapin{}", std::process::id());
        let tap = Tap::create(&engine, 2, 1).unwrap();
        let mut rx = Receiver::open(&engine, TAP_CHANNEL).unwrap();
        let out: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let input: Vec<f32> = (0..4).map(|i| -(i as f32) - 1.0).collect();
        tap.publish(0, 48000.0, 2, &out, &input, 0.0);
        // Input shorter than the block (a device that brought less): the rest is silence.
        tap.publish(4, 48000.0, 2, &out, &input[..1], 0.0);
        let (mut o, mut i) = (Vec::new(), Vec::new());
        let first = rx.try_recv_bytes().unwrap().to_vec();
        let h = decode_tap_with_inputs(&first, &mut o, &mut i).unwrap();
        assert_eq!((h.channels, h.inputs, h.frames), (2, 1, 4));
        assert_eq!((&o, &i), (&out, &input));
        // A reader of the output alone gets exactly the output.
        let mut only = Vec::new();
        decode_tap(&first, &mut only).unwrap();
        assert_eq!(only, out);
        let h = decode_tap_with_inputs(&rx.try_recv_bytes().unwrap(), &mut o, &mut i).unwrap();
        assert_eq!((h.frame, &o, i), (4, &out, vec![-1.0, 0.0, 0.0, 0.0]));
        // A message from before inputs existed (the word was padding, 0) reads as no inputs.
        let old = TapHeader {
            frame: 0,
            sample_rate: 48000.0,
            published_ns: 0,
            channels: 1,
            frames: 2,
            dsp_load: 0.0,
            inputs: 0,
        };
        let (mut o, mut i) = (Vec::new(), vec![9.0]);
        decode_tap_with_inputs(&forged(old, 2), &mut o, &mut i).unwrap();
        assert_eq!((o.len(), i.len()), (2, 0));
    }
}
