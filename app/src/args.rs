//! Numbers from the command line, checked where clap parses them: a value out
//! of range is a usage error (clap's message, naming the allowed range, exit
//! status 2), so no number reaches code that could panic on it
//! (`Duration::from_secs_f64(1e300)`, a `u16` channel count of 65536, ...).
//!
//! Exit statuses (README): 2 for usage errors (what the command line says is
//! malformed or out of range), 1 for runtime errors (a missing or unreadable
//! file, a patch that does not compile or crashes, an unwritable output).

use std::ops::RangeInclusive;

/// A usage error found after clap's parsing (a combination of values, a
/// number inside a `N=V` argument): one line, exit status 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// `Err(Usage(...))` as an `anyhow::Error`, formatted.
#[macro_export]
macro_rules! usage {
    ($($t:tt)*) => {
        anyhow::Error::new($crate::args::Usage(format!($($t)*)))
    };
}

/// The longest render, snapshot time or recording, in seconds (an hour: a
/// WAV of 2 channels of f32 at 384 kHz stays under the format's 4 GiB).
pub const MAX_SECONDS: f64 = 3600.0;

/// A finite number in `range`; `open_low` excludes its lower end.
fn float_in(s: &str, range: RangeInclusive<f64>, open_low: bool, unit: &str) -> Result<f64, String> {
    let (lo, hi) = (*range.start(), *range.end());
    let allowed = if open_low { format!("{lo} < x <= {hi}{unit}") } else { format!("{lo}..={hi}{unit}") };
    let v: f64 = s.trim().parse().map_err(|_| format!("not a number (allowed: {allowed})"))?;
    let ok = v.is_finite() && v <= hi && if open_low { v > lo } else { v >= lo };
    if ok {
        Ok(v)
    } else {
        Err(format!("out of range (allowed: {allowed})"))
    }
}

fn int_in<T: std::str::FromStr + TryFrom<u64> + Copy>(s: &str, range: RangeInclusive<u64>) -> Result<T, String> {
    let allowed = format!("{}..={}", range.start(), range.end());
    let v: u64 = s.trim().parse().map_err(|_| format!("not a whole number (allowed: {allowed})"))?;
    if !range.contains(&v) {
        return Err(format!("out of range (allowed: {allowed})"));
    }
    T::try_from(v).map_err(|_| format!("out of range (allowed: {allowed})"))
}

/// A length of audio or video: 0 < S <= 3600 seconds.
pub fn seconds(s: &str) -> Result<f64, String> {
    float_in(s, 0.0..=MAX_SECONDS, true, " seconds")
}

/// A moment from the start: 0..=3600 seconds.
pub fn moment(s: &str) -> Result<f64, String> {
    float_in(s, 0.0..=MAX_SECONDS, false, " seconds")
}

/// A watchdog's limit: 1..=3600 seconds. It counts whole seconds without
/// progress (its message says "for N s"); below a second a slow start of the
/// sandboxed process would pass for a hang.
pub fn timeout(s: &str) -> Result<f64, String> {
    float_in(s, 1.0..=MAX_SECONDS, false, " seconds")
}

/// A swap's crossfade: 0..=10000 ms.
pub fn crossfade_ms(s: &str) -> Result<f64, String> {
    float_in(s, 0.0..=10_000.0, false, " ms")
}

/// How long a live snapshot listens: 0..=60 seconds.
pub fn listen(s: &str) -> Result<f64, String> {
    float_in(s, 0.0..=60.0, false, " seconds")
}

/// How long `play` runs: 0 < S <= one year, in seconds.
pub fn play_seconds(s: &str) -> Result<f64, String> {
    float_in(s, 0.0..=31_536_000.0, true, " seconds")
}

/// The simulator's mean gap between changes: 1..=1e9 cycles.
pub fn mean_gap(s: &str) -> Result<f64, String> {
    float_in(s, 1.0..=1e9, false, " cycles")
}

/// The sample rates the engine runs at: 8000..=384000 Hz.
pub const RATES: RangeInclusive<u64> = 8000..=384_000;

pub fn rate(s: &str) -> Result<u32, String> {
    int_in(s, RATES)
}

/// Output channels of an offline render: 1..=16 (the engine's limit).
pub fn channels(s: &str) -> Result<usize, String> {
    int_in(s, 1..=clavm_audio::builtins::api::MAX_CHANNELS as u64)
}

/// Live input channels: 0..=16 (the engine's limit; 0 = no input).
pub fn inputs(s: &str) -> Result<u16, String> {
    int_in(s, 0..=clavm_audio::builtins::api::MAX_CHANNELS as u64)
}

/// Output channels of the visuals (the analysis draws at most 8).
pub fn visual_channels(s: &str) -> Result<usize, String> {
    int_in(s, 1..=8)
}

/// Video frames per second: 1..=240.
pub fn fps(s: &str) -> Result<u32, String> {
    int_in(s, 1..=240)
}

/// Simulator threads: 1..=256 (one stream each; more only costs memory).
pub fn threads(s: &str) -> Result<usize, String> {
    int_in(s, 1..=256)
}

/// Bars in a simulated network: 1..=MAX_BARS.
pub fn sim_bars(s: &str) -> Result<usize, String> {
    int_in(s, 1..=clavm_bars::MAX_BARS as u64)
}

/// Simulated configurations: 1..=10^12.
pub fn configs(s: &str) -> Result<u64, String> {
    int_in(s, 1..=1_000_000_000_000)
}

/// How long `clavm tap` records: 0 < S <= one day, in seconds.
pub fn tap_seconds(s: &str) -> Result<f64, String> {
    float_in(s, 0.0..=86_400.0, true, " seconds")
}

/// How long `clavm submit` waits for the engine's reply: 0..=3600 seconds.
pub fn reply_timeout(s: &str) -> Result<f64, String> {
    float_in(s, 0.0..=MAX_SECONDS, false, " seconds")
}

/// A parameter number: 0..=127 (`_p`, `_i` and `_cc` have 128 each).
pub fn param_index(s: &str) -> Result<u8, String> {
    int_in(s, 0..=127)
}

/// A parameter's value: a number that stays finite as the f32 a patch reads.
pub fn param_value(s: &str) -> Result<f64, String> {
    let allowed = "a finite number, |x| <= 3.4e38";
    let v: f64 = s.trim().parse().map_err(|_| format!("not a number (allowed: {allowed})"))?;
    if v.is_finite() && (v as f32).is_finite() {
        Ok(v)
    } else {
        Err(format!("out of range (allowed: {allowed})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_out_of_range_say_the_range() {
        for bad in ["0", "-1", "NaN", "inf", "1e300", "", "x"] {
            let e = seconds(bad).unwrap_err();
            assert!(e.contains("0 < x <= 3600 seconds"), "{bad}: {e}");
        }
        assert_eq!(seconds("2.5"), Ok(2.5));
        assert_eq!(moment("0"), Ok(0.0));
        for bad in ["0", "65536", "-2", "4294967296", "1e3"] {
            let e = channels(bad).unwrap_err();
            assert!(e.contains("1..=16"), "{bad}: {e}");
        }
        assert_eq!(channels("16"), Ok(16));
        assert!(rate("0").unwrap_err().contains("8000..=384000"));
        assert_eq!(rate("48000"), Ok(48000));
        assert!(threads("100000").unwrap_err().contains("1..=256"));
    }
}

/// The tempo clock's options, on every command that plays a patch.
#[derive(Clone, Debug, clap::Args)]
pub struct TempoOptions {
    /// Tempo in beats per minute for _bpm(), _beat(), _bar() and --quant (10..=1000).
    #[arg(long, default_value = "120", value_parser = bpm, allow_negative_numbers = true)]
    pub bpm: clavm_audio::clock::Bpm,
    /// Beats per bar (1..=64).
    #[arg(long, default_value = "4", value_parser = meter, allow_negative_numbers = true)]
    pub meter: clavm_audio::clock::Meter,
}

pub fn bpm(s: &str) -> Result<clavm_audio::clock::Bpm, String> {
    s.parse()
}

pub fn meter(s: &str) -> Result<clavm_audio::clock::Meter, String> {
    s.parse()
}

pub fn quant(s: &str) -> Result<clavm_audio::clock::Quant, String> {
    s.parse()
}

/// `--sample N=FILE`: N from 0 to 63.
pub fn sample(s: &str) -> Result<clavm_audio::samples::SampleSource, String> {
    clavm_audio::samples::parse_arg(s)
}

/// `--sample-memory MiB`: 1..=16384.
pub fn sample_memory(s: &str) -> Result<u64, String> {
    int_in(s, 1..=clavm_audio::samples::MAX_MEMORY_MIB)
}

/// The sample options every command that plays a patch takes.
#[derive(clap::Args, Clone, Debug)]
pub struct SampleArgs {
    /// Load a sound file (WAV, FLAC, Ogg Vorbis, MP3) as sample N (0..=63)
    /// for Sample(N, ...): N=FILE (repeatable; wins over the patch's
    /// `#pragma clavm sample N "FILE"` for the same N).
    #[arg(long = "sample", value_name = "N=FILE", value_parser = sample)]
    pub samples: Vec<clavm_audio::samples::SampleSource>,
    /// The most memory all samples may take together, in MiB (1..=16384).
    #[arg(long, value_name = "MiB", default_value_t = clavm_audio::samples::DEFAULT_MEMORY_MIB, value_parser = sample_memory)]
    pub sample_memory: u64,
}

impl Default for SampleArgs {
    fn default() -> Self {
        SampleArgs { samples: Vec::new(), sample_memory: clavm_audio::samples::DEFAULT_MEMORY_MIB }
    }
}

impl SampleArgs {
    /// The files these options name (an output must not be one of them).
    pub fn files(&self) -> impl Iterator<Item = &std::path::Path> {
        self.samples.iter().map(|s| s.path.as_path())
    }

    /// Loads what each of `versions` plays at `rate` Hz: its pragmas, then
    /// these options. A bad pragma is its patch's FILE:LINE:COL error, a bad
    /// file one line naming it.
    pub fn load(
        &self,
        versions: &[&clavm_audio::PatchSource],
        rate: u32,
    ) -> anyhow::Result<Vec<clavm_audio::samples::SampleSet>> {
        use clavm_audio::samples;
        let mut sources = Vec::with_capacity(versions.len());
        for p in versions {
            let pragmas = clavm_audio::patch::pragma::sample_pragmas(p).map_err(|d| anyhow::anyhow!("{d}"))?;
            sources.push(samples::merge(&pragmas, &self.samples));
        }
        let mut budget = samples::MemoryBudget::new(self.sample_memory);
        Ok(samples::load_versions(&sources, rate, &mut budget)?)
    }
}

/// The MIDI voices' options, on every command that plays notes.
#[derive(Clone, Debug, clap::Args)]
pub struct VoiceOptions {
    /// Voices MIDI notes are spread over (`_voices()`, 1..=64); the oldest note is stolen beyond them.
    #[arg(long, default_value = "8", value_parser = voices, allow_negative_numbers = true)]
    pub voices: clavm_audio::voices::VoiceCount,
    /// How long a released note's `_gate()` takes to fall to 0, in ms (5..=10000);
    /// its voice stays allocated until then.
    #[arg(long, value_name = "MS", default_value = "100", value_parser = release, allow_negative_numbers = true)]
    pub release: clavm_audio::voices::Release,
}

pub fn voices(s: &str) -> Result<clavm_audio::voices::VoiceCount, String> {
    s.parse()
}

pub fn release(s: &str) -> Result<clavm_audio::voices::Release, String> {
    s.parse()
}
