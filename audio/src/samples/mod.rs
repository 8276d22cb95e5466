//! Samples: sound files decoded once, resampled to the engine's rate, and
//! played by the `Sample*` builtins.
//!
//! - [`load`] decodes WAV, FLAC, Ogg Vorbis and MP3 (symphonia) and resamples
//!   (rubato, the code `--input` uses). Every bound is checked from the
//!   file's header before anything is allocated, and again while decoding
//!   (a header can lie): the rate, the channels, the length, and the
//!   [`MemoryBudget`] shared by all the samples of an engine.
//! - A [`SampleSet`] is what one patch version plays: up to [`SLOTS`]
//!   samples by number. Sets share decoded audio ([`Arc`]).
//! - The builtins read a set through a [`SampleTable`], a `#[repr(C)]` array
//!   of views (pointer, frames, channels) that each version carries, so
//!   offline and live can place the audio where they like.
//!
//! Loading never happens in the engine's block: offline the parent process
//! loads before the render starts (the sandboxed child cannot open files).

mod decode;
mod error;
mod precheck;
pub mod resample;
mod table;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use decode::{load, Format};
pub use error::{SampleError, SampleProblem};
pub use table::{SampleTable, SampleView, Samples};

/// Sample numbers run from 0 to `SLOTS - 1`.
pub const SLOTS: usize = 64;
/// Most channels a sample may have (7.1 surround).
pub const MAX_CHANNELS: usize = 8;
/// The default bound on all the samples an engine holds, in MiB
/// (`--sample-memory`).
pub const DEFAULT_MEMORY_MIB: u64 = 1024;
/// The largest `--sample-memory` accepted, in MiB: a render's child reads
/// its samples from a pipe and a bound must exist for it too.
pub const MAX_MEMORY_MIB: u64 = 16 * 1024;

/// One decoded sample: interleaved `f32` frames at the engine's rate.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleData {
    /// 1..=[`MAX_CHANNELS`].
    pub channels: usize,
    /// Interleaved, `channels` values a frame, at least one frame.
    pub samples: Vec<f32>,
}

impl SampleData {
    pub fn frames(&self) -> usize {
        self.samples.len().checked_div(self.channels).unwrap_or(0)
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.samples.len() as u64 * 4
    }
}

/// The samples one patch version plays, by number.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleSet {
    slots: Vec<Option<Arc<SampleData>>>,
}

impl SampleSet {
    pub fn get(&self, n: usize) -> Option<&Arc<SampleData>> {
        self.slots.get(n).and_then(Option::as_ref)
    }

    /// Puts `data` at number `n` (`n` < [`SLOTS`]; larger numbers are ignored:
    /// the parsers refuse them first).
    pub fn set(&mut self, n: usize, data: Arc<SampleData>) {
        if n < SLOTS {
            if self.slots.len() <= n {
                self.slots.resize(n + 1, None);
            }
            self.slots[n] = Some(data);
        }
    }

    /// The numbers in use, with their samples.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Arc<SampleData>)> {
        self.slots.iter().enumerate().filter_map(|(n, s)| s.as_ref().map(|s| (n, s)))
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The first number without a sample (for a file dropped on the window).
    pub fn first_free(&self) -> Option<usize> {
        (0..SLOTS).find(|&n| self.get(n).is_none())
    }
}

/// The bound on the memory all loaded samples take together (default
/// [`DEFAULT_MEMORY_MIB`]). A file is refused before it is decoded when its
/// header says it would not fit, and while decoding as soon as it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    pub limit: u64,
    pub used: u64,
}

impl MemoryBudget {
    pub fn new(limit_mib: u64) -> MemoryBudget {
        MemoryBudget { limit: limit_mib.min(MAX_MEMORY_MIB) << 20, used: 0 }
    }

    pub fn left(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget::new(DEFAULT_MEMORY_MIB)
    }
}

/// Where a sample comes from: a number and a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSource {
    pub n: usize,
    pub path: PathBuf,
}

/// Loads `sources` (the same file once, whatever the numbers), each at
/// `rate` Hz, within `budget`. The first file that fails stops the load.
pub fn load_set(sources: &[SampleSource], rate: u32, budget: &mut MemoryBudget) -> Result<SampleSet, SampleError> {
    let mut sets = load_versions(std::slice::from_ref(&sources.to_vec()), rate, budget)?;
    Ok(sets.pop().unwrap_or_default())
}

/// [`load_set`] for several versions (a render's patch and its swaps): a
/// file named by several is loaded once and shared.
pub fn load_versions(
    versions: &[Vec<SampleSource>],
    rate: u32,
    budget: &mut MemoryBudget,
) -> Result<Vec<SampleSet>, SampleError> {
    let mut loaded: Vec<(&Path, Arc<SampleData>)> = Vec::new();
    let mut sets = Vec::with_capacity(versions.len());
    for sources in versions {
        let mut set = SampleSet::default();
        for s in sources {
            let data = match loaded.iter().find(|(p, _)| *p == s.path.as_path()) {
                Some((_, d)) => d.clone(),
                None => {
                    let d = Arc::new(load(&s.path, rate, budget)?);
                    loaded.push((&s.path, d.clone()));
                    d
                }
            };
            set.set(s.n, data);
        }
        sets.push(set);
    }
    Ok(sets)
}

/// Parses `N=FILE` (`--sample`): N from 0 to 63.
pub fn parse_arg(s: &str) -> Result<SampleSource, String> {
    let (n, file) = s.split_once('=').ok_or_else(|| format!("'{s}': expected N=FILE (N from 0 to {})", SLOTS - 1))?;
    let n: usize = n
        .trim()
        .parse()
        .ok()
        .filter(|n| *n < SLOTS)
        .ok_or_else(|| format!("'{n}': a sample number runs from 0 to {}", SLOTS - 1))?;
    if file.is_empty() {
        return Err(format!("'{s}': no file after '='"));
    }
    Ok(SampleSource { n, path: PathBuf::from(file) })
}

/// The sources of one version: the patch's pragmas, then the command line's
/// (which win for the same number).
pub fn merge(pragmas: &[SampleSource], command_line: &[SampleSource]) -> Vec<SampleSource> {
    let mut out: Vec<SampleSource> =
        pragmas.iter().filter(|p| !command_line.iter().any(|c| c.n == p.n)).cloned().collect();
    out.extend(command_line.iter().cloned());
    out
}

#[cfg(test)]
mod tests;
