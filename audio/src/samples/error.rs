//! Why a sound file cannot be a sample: one line that names the file.

use std::path::PathBuf;

use super::decode::Format;
use super::resample::RATES;
use super::MAX_CHANNELS;

/// A file that cannot be loaded; shown as `FILE: problem`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct SampleError {
    pub path: PathBuf,
    pub problem: SampleProblem,
}

#[derive(Debug, thiserror::Error)]
pub enum SampleProblem {
    #[error("cannot open it: {0}")]
    Open(std::io::Error),
    #[error("not a WAV, FLAC, Ogg Vorbis or MP3 file (or one too damaged to recognise)")]
    Unrecognised,
    #[error("its name says {named} but it holds {holds}: rename it")]
    Mislabelled { named: Format, holds: Format },
    #[error("it holds no audio track this build decodes")]
    NoTrack,
    #[error("its header gives no sample rate")]
    NoRate,
    #[error("its sample rate is {0} Hz; a sample must be {lo}..={hi} Hz", lo = RATES.start(), hi = RATES.end())]
    Rate(u32),
    #[error("its header gives no channel count")]
    NoChannels,
    #[error("{0} channels; a sample has at most {MAX_CHANNELS}")]
    Channels(usize),
    #[error("it holds no audio (0 frames)")]
    Empty,
    #[error("it needs {} MiB, more than the {} MiB left of the {} MiB sample memory (raise --sample-memory)", mib(*.needed), mib(*.left), mib(*.limit))]
    TooBig { needed: u64, left: u64, limit: u64 },
    #[error("truncated: its header promises {promised} frames, it holds {found}")]
    Truncated { promised: u64, found: u64 },
    #[error("damaged: {0}")]
    Corrupt(String),
    #[error("the decoder changed to {0} channels in the middle of the file")]
    ChannelsChanged(usize),
    #[error("cannot resample it: {0}")]
    Resample(String),
}

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}
