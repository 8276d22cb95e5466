//! Offline input: a WAV file decoded, resampled to the render's rate and
//! trimmed to the render's length, for the patch's `_in(ch)`.
//!
//! The parent process does all of this (the sandboxed child never opens a
//! file): the result travels to the child inside the [`RenderSpec`](super::RenderSpec),
//! so its size is bounded here ([`MAX_INPUT_BYTES`]).
//!
//! Channel mapping: input channel `i` is file channel `i`, with nothing
//! mixed or duplicated; `_in(ch)` past the file's channels reads 0 (and the
//! engine reports it as it does live). Past the end of the file the input
//! is silence.

use std::path::{Path, PathBuf};

use crate::builtins::api::MAX_CHANNELS;
use crate::samples::resample::{resample, RATES, REACH as CHUNK};
use crate::Frames;

/// The most resampled input samples a render carries, in bytes (the child
/// reads a spec of at most 256 MiB).
pub const MAX_INPUT_BYTES: usize = 192 << 20;
/// The most samples decoded from a file before resampling, in bytes.
const MAX_DECODED_BYTES: usize = 512 << 20;

/// Audio for `_in(ch)`: interleaved, `channels` samples a frame, at the
/// render's rate, at most as long as the render.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputAudio {
    pub channels: usize,
    pub samples: Vec<f32>,
}

impl InputAudio {
    /// Frames held (past them the input is silence).
    pub fn frames(&self) -> usize {
        self.samples.len().checked_div(self.channels).unwrap_or(0)
    }

    /// The interleaved samples of frames `from..from + n`, shorter (or empty)
    /// where the file has ended.
    pub fn block(&self, from: usize, n: usize) -> &[f32] {
        let start = from.saturating_mul(self.channels).min(self.samples.len());
        let end = from.saturating_add(n).saturating_mul(self.channels).min(self.samples.len());
        &self.samples[start..end]
    }
}

/// A WAV input that cannot be used; shown as `FILE: problem`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct InputError {
    pub path: PathBuf,
    pub problem: InputProblem,
}

#[derive(Debug, thiserror::Error)]
pub enum InputProblem {
    /// Missing, unreadable, truncated or not a WAV file (hound's words).
    #[error("cannot read it as a WAV file: {0}")]
    Wav(#[from] hound::Error),
    #[error("it holds no audio (0 frames)")]
    Empty,
    #[error("it has no channels")]
    NoChannels,
    #[error("its sample rate is {0} Hz; an input must be {lo}..={hi} Hz", lo = RATES.start(), hi = RATES.end())]
    Rate(u32),
    #[error("{0} channels; an input has at most {MAX_CHANNELS}")]
    Channels(u16),
    #[error("too long: the render needs more than {} MiB of it", MAX_DECODED_BYTES >> 20)]
    TooLongDecoded,
    #[error("too long: resampled for this render it would take more than {} MiB (render less, or fewer channels)", MAX_INPUT_BYTES >> 20)]
    TooLong,
    #[error("cannot resample it: {0}")]
    Resample(String),
}

/// Reads `path` and makes it the input of a render of `length` frames at
/// `rate` Hz: resampled with rubato's FFT resampler (a fixed ratio,
/// band-limited; the same bytes every run; shared with the sample loader), trimmed to `length`.
pub fn load_wav(path: &Path, rate: u32, length: Frames) -> Result<InputAudio, InputError> {
    let fail = |problem| InputError { path: path.to_path_buf(), problem };
    let reader = hound::WavReader::open(path).map_err(|e| fail(e.into()))?;
    let spec = reader.spec();
    if spec.channels == 0 {
        return Err(fail(InputProblem::NoChannels));
    }
    if usize::from(spec.channels) > MAX_CHANNELS {
        return Err(fail(InputProblem::Channels(spec.channels)));
    }
    if !RATES.contains(&spec.sample_rate) {
        return Err(fail(InputProblem::Rate(spec.sample_rate)));
    }
    let channels = usize::from(spec.channels);
    let want = usize::try_from(length.0).unwrap_or(usize::MAX);
    // The file frames the render can use, plus the resampler's reach.
    let needed = (want as u128 * u128::from(spec.sample_rate)).div_ceil(u128::from(rate.max(1))) + CHUNK as u128;
    let needed = usize::try_from(needed).unwrap_or(usize::MAX).min(reader.duration() as usize);
    if needed.saturating_mul(channels).saturating_mul(4) > MAX_DECODED_BYTES {
        return Err(fail(InputProblem::TooLongDecoded));
    }
    let decoded = decode(reader, needed * channels).map_err(|e| fail(e.into()))?;
    let frames = decoded.len() / channels;
    if frames == 0 {
        return Err(fail(InputProblem::Empty));
    }
    let mut samples = if spec.sample_rate == rate {
        decoded
    } else {
        resample(&decoded, channels, frames, spec.sample_rate, rate).map_err(|e| fail(InputProblem::Resample(e)))?
    };
    samples.truncate(want.saturating_mul(channels));
    if samples.len().saturating_mul(4) > MAX_INPUT_BYTES {
        return Err(fail(InputProblem::TooLong));
    }
    Ok(InputAudio { channels, samples })
}

/// At most `limit` samples as f32 in -1..1; a sample that is not finite
/// becomes 0 (one NaN would smear over a whole resampler chunk).
fn decode<R: std::io::Read>(mut reader: hound::WavReader<R>, limit: usize) -> Result<Vec<f32>, hound::Error> {
    let spec = reader.spec();
    let mut out = Vec::with_capacity(limit.min(reader.len() as usize));
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for s in reader.samples::<f32>().take(limit) {
                let s = s?;
                out.push(if s.is_finite() { s } else { 0.0 });
            }
        }
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << spec.bits_per_sample.clamp(1, 32).saturating_sub(1)) as f64;
            for s in reader.samples::<i32>().take(limit) {
                out.push((f64::from(s?) * scale) as f32);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, rate: u32, channels: u16, frames: usize, f: impl Fn(usize, u16) -> f32) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for n in 0..frames {
            for c in 0..channels {
                w.write_sample(f(n, c)).unwrap();
            }
        }
        w.finalize().unwrap();
    }

    #[test]
    fn same_rate_is_exact_and_trimmed_to_the_render() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.wav");
        write(&p, 48000, 2, 1000, |n, c| n as f32 / 1000.0 + f32::from(c));
        let a = load_wav(&p, 48000, Frames(600)).unwrap();
        assert_eq!(a.channels, 2);
        assert_eq!(a.frames(), 600);
        assert_eq!(a.samples[2 * 10 + 1], 10.0 / 1000.0 + 1.0);
        assert_eq!(a.block(599, 10).len(), 2);
        assert!(a.block(600, 10).is_empty());
    }

    #[test]
    fn another_rate_is_resampled_to_the_render_length() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.wav");
        write(&p, 44100, 1, 44100, |n, _| (n as f32 * 0.01).sin());
        let a = load_wav(&p, 48000, Frames(96000)).unwrap();
        // One second of file is one second of render; the rest is silence.
        assert!((a.frames() as i64 - 48000).abs() < 8, "{}", a.frames());
    }

    #[test]
    fn bad_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.wav");
        std::fs::write(&empty, b"").unwrap();
        let text = dir.path().join("text.wav");
        std::fs::write(&text, b"not a wav file at all").unwrap();
        let silent = dir.path().join("zero.wav");
        write(&silent, 48000, 1, 0, |_, _| 0.0);
        let missing = dir.path().join("missing.wav");
        for p in [&empty, &text, &silent, &missing] {
            let e = load_wav(p, 48000, Frames(100)).unwrap_err();
            assert!(e.to_string().starts_with(&format!("{}: ", p.display())), "{e}");
        }
        assert!(matches!(load_wav(&silent, 48000, Frames(100)).unwrap_err().problem, InputProblem::Empty));
    }

    #[test]
    fn a_truncated_file_and_a_rate_of_zero_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("whole.wav");
        write(&whole, 48000, 1, 1000, |n, _| n as f32 / 1000.0);
        let bytes = std::fs::read(&whole).unwrap();
        let cut = dir.path().join("cut.wav");
        std::fs::write(&cut, &bytes[..bytes.len() - 1001]).unwrap();
        let e = load_wav(&cut, 48000, Frames(2000)).unwrap_err();
        assert!(matches!(e.problem, InputProblem::Wav(_)), "{e}");
        // The rate field of the fmt chunk (bytes 24..28 of a plain WAV header).
        let mut zero = bytes.clone();
        assert_eq!(&zero[24..28], &48000u32.to_le_bytes());
        zero[24..28].copy_from_slice(&0u32.to_le_bytes());
        let z = dir.path().join("zero-rate.wav");
        std::fs::write(&z, &zero).unwrap();
        let e = load_wav(&z, 48000, Frames(100)).unwrap_err();
        assert!(e.to_string().starts_with(&format!("{}: ", z.display())), "{e}");
    }
}
