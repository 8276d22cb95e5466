//! Decoding a file into a [`SampleData`]: symphonia for the containers and
//! codecs, every bound checked from the header before allocating and again
//! while decoding.

use std::fs::File;
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymErr;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::error::{SampleError, SampleProblem};
use super::precheck;
use super::resample::{resample, resampled_frames, RATES};
use super::{MemoryBudget, SampleData, MAX_CHANNELS};

/// The file formats a sample may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Wav,
    Flac,
    OggVorbis,
    Mp3,
}

impl Format {
    /// What a file's name says it is (`None`: a name that says nothing we
    /// know, and the content decides).
    pub fn from_extension(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "wav" | "wave" => Format::Wav,
            "flac" => Format::Flac,
            "ogg" | "oga" => Format::OggVorbis,
            "mp3" => Format::Mp3,
            _ => return None,
        })
    }

    /// Whether `path`'s name says it is a sound file this loader reads (a
    /// file dropped on the window is loaded as a sample when it does).
    pub fn is_sound_file(path: &Path) -> bool {
        Format::from_extension(path).is_some()
    }

    /// The format a decoder's short name belongs to.
    fn from_codec(short_name: &str) -> Option<Format> {
        Some(match short_name {
            n if n.starts_with("pcm") => Format::Wav,
            "flac" => Format::Flac,
            "vorbis" => Format::OggVorbis,
            "mp3" => Format::Mp3,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Wav => "WAV",
            Format::Flac => "FLAC",
            Format::OggVorbis => "Ogg Vorbis",
            Format::Mp3 => "MP3",
        })
    }
}

/// Decodes `path` and resamples it to `rate` Hz, taking its size from
/// `budget` (untouched on failure).
pub fn load(path: &Path, rate: u32, budget: &mut MemoryBudget) -> Result<SampleData, SampleError> {
    let fail = |problem| SampleError { path: path.to_path_buf(), problem };
    let data = decode(path, rate, budget).map_err(fail)?;
    budget.used += data.bytes();
    Ok(data)
}

fn decode(path: &Path, rate: u32, budget: &MemoryBudget) -> Result<SampleData, SampleProblem> {
    let mut file = File::open(path).map_err(SampleProblem::Open)?;
    // A directory opens; reading it fails later with a less clear message.
    if file.metadata().map(|m| !m.is_file()).unwrap_or(true) {
        return Err(SampleProblem::Open(std::io::Error::other("not a regular file")));
    }
    precheck::riff(&mut file)?;
    precheck::quietly(|| decode_file(file, path, rate, budget))
}

fn decode_file(file: File, path: &Path, rate: u32, budget: &MemoryBudget) -> Result<SampleData, SampleProblem> {
    let named = Format::from_extension(path);
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &FormatOptions::default(), &MetadataOptions::default())
        .map_err(|_| SampleProblem::Unrecognised)?;
    let mut reader = probed.format;
    let track =
        reader.tracks().iter().find(|t| t.codec_params.codec != CODEC_TYPE_NULL).ok_or(SampleProblem::NoTrack)?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let codecs = symphonia::default::get_codecs();
    let holds = codecs.get_codec(params.codec).and_then(|d| Format::from_codec(d.short_name));
    let Some(holds) = holds else { return Err(SampleProblem::NoTrack) };
    if let Some(named) = named.filter(|n| *n != holds) {
        return Err(SampleProblem::Mislabelled { named, holds });
    }
    // The header's bounds, before any audio is allocated.
    let source_rate = params.sample_rate.ok_or(SampleProblem::NoRate)?;
    if !RATES.contains(&source_rate) {
        return Err(SampleProblem::Rate(source_rate));
    }
    let channels = params.channels.map(|c| c.count()).ok_or(SampleProblem::NoChannels)?;
    if channels == 0 {
        return Err(SampleProblem::NoChannels);
    }
    if channels > MAX_CHANNELS {
        return Err(SampleProblem::Channels(channels));
    }
    let too_big = |frames: u64| {
        let bytes = |f: u64| f.saturating_mul(channels as u64).saturating_mul(4);
        let needed = bytes(frames).max(bytes(resampled_frames(frames, source_rate, rate)));
        (needed > budget.left()).then_some(SampleProblem::TooBig { needed, left: budget.left(), limit: budget.limit })
    };
    if let Some(promised) = params.n_frames {
        if promised == 0 {
            return Err(SampleProblem::Empty);
        }
        if let Some(e) = too_big(promised) {
            return Err(e);
        }
    }
    let mut decoder =
        codecs.make(&params, &DecoderOptions::default()).map_err(|e| SampleProblem::Corrupt(e.to_string()))?;
    // Reserved from the header only where it was checked above; a lie costs
    // at most the budget.
    let mut out: Vec<f32> = Vec::new();
    if let Some(promised) = params.n_frames {
        out.reserve_exact((promised as usize).saturating_mul(channels));
    }
    let mut buffer: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match reader.next_packet() {
            Ok(p) => p,
            Err(SymErr::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(SampleProblem::Corrupt(e.to_string())),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = decoder.decode(&packet).map_err(|e| SampleProblem::Corrupt(e.to_string()))?;
        let spec = *decoded.spec();
        if spec.channels.count() != channels {
            return Err(SampleProblem::ChannelsChanged(spec.channels.count()));
        }
        let frames = decoded.frames();
        if frames == 0 {
            continue;
        }
        if let Some(e) = too_big((out.len() / channels + frames) as u64) {
            return Err(e);
        }
        let b = match &mut buffer {
            // `capacity()` counts samples here and frames there.
            Some(b) if b.capacity() >= decoded.capacity() * channels => b,
            b => b.insert(SampleBuffer::new(decoded.capacity() as u64, spec)),
        };
        b.copy_interleaved_ref(decoded);
        // A NaN would smear over a whole resampler chunk, and play forever in a loop.
        out.extend(b.samples().iter().map(|s| if s.is_finite() { *s } else { 0.0 }));
    }
    let found = (out.len() / channels) as u64;
    if found == 0 {
        return Err(SampleProblem::Empty);
    }
    if let Some(promised) = params.n_frames {
        // PCM must be exact; compressed formats may differ by their encoder
        // delay and padding (a frame or two of codec frames).
        let slack = if holds == Format::Wav { 0 } else { (promised / 100).max(4096) };
        if found + slack < promised {
            return Err(SampleProblem::Truncated { promised, found });
        }
    }
    let frames = found as usize;
    let samples = if source_rate == rate {
        out
    } else {
        resample(&out, channels, frames, source_rate, rate).map_err(SampleProblem::Resample)?
    };
    if samples.len() < channels {
        return Err(SampleProblem::Empty);
    }
    Ok(SampleData { channels, samples })
}
