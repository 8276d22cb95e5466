//! Sample-rate conversion shared by `--input` (`render/input.rs`) and the
//! sample loader: rubato's FFT resampler (a fixed ratio, band-limited, the
//! same bytes every run).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

/// File sample rates accepted, in Hz: wide enough for any real recording,
/// narrow enough that the resampler's FFT sizes stay small.
pub const RATES: std::ops::RangeInclusive<u32> = 1000..=768_000;

/// Frames per resampler chunk.
const CHUNK: usize = 1024;

/// The frames the resampler may read past what it is asked for.
pub const REACH: usize = CHUNK;

/// `frames` interleaved frames of `channels` at `from` Hz, converted to `to` Hz.
pub fn resample(data: &[f32], channels: usize, frames: usize, from: u32, to: u32) -> Result<Vec<f32>, String> {
    let mut r =
        Fft::<f32>::new(from as usize, to as usize, CHUNK, channels, FixedSync::Input).map_err(|e| e.to_string())?;
    let input = InterleavedSlice::new(data, channels, frames).map_err(|e| e.to_string())?;
    let out = r.process_all(&input, frames, None).map_err(|e| e.to_string())?;
    Ok(out.take_data())
}

/// Frames `frames` at `from` Hz become at `to` Hz (rounded up).
pub fn resampled_frames(frames: u64, from: u32, to: u32) -> u64 {
    let n = (u128::from(frames) * u128::from(to)).div_ceil(u128::from(from.max(1)));
    u64::try_from(n).unwrap_or(u64::MAX)
}
