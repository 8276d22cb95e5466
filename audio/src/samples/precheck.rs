//! What symphonia 0.5 must not see: a RIFF/WAVE header whose channel count
//! or rate makes it panic (a rate of 0 is a zero time base, 33 or more
//! channels overflow a channel mask shift). The fmt chunk is read here,
//! bounded, and refused with the loader's own error first; any other panic
//! inside the decoder is caught by [`quietly`] and becomes an error.

use std::cell::Cell;
use std::io::{Read, Seek, SeekFrom};

use super::error::SampleProblem;
use super::resample::RATES;
use super::MAX_CHANNELS;

/// How far into a file the fmt chunk is looked for.
const SCAN: u64 = 1 << 16;

/// Refuses a WAV whose fmt chunk has a channel count or rate out of bounds;
/// anything that is not RIFF/WAVE, or has no fmt chunk in reach, is left to
/// the decoder. Leaves the file at its start.
pub fn riff(file: &mut (impl Read + Seek)) -> Result<(), SampleProblem> {
    let mut head = Vec::new();
    file.by_ref().take(SCAN).read_to_end(&mut head).map_err(SampleProblem::Open)?;
    file.seek(SeekFrom::Start(0)).map_err(SampleProblem::Open)?;
    if head.len() < 12 || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Ok(());
    }
    let mut at = 12usize;
    while at + 8 <= head.len() {
        let id = &head[at..at + 4];
        let len = u32::from_le_bytes([head[at + 4], head[at + 5], head[at + 6], head[at + 7]]) as usize;
        let body = at + 8;
        if id == b"fmt " {
            let Some(fmt) = head.get(body..body + 8) else { return Ok(()) };
            let channels = usize::from(u16::from_le_bytes([fmt[2], fmt[3]]));
            let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
            if channels == 0 {
                return Err(SampleProblem::NoChannels);
            }
            if channels > MAX_CHANNELS {
                return Err(SampleProblem::Channels(channels));
            }
            if !RATES.contains(&rate) {
                return Err(SampleProblem::Rate(rate));
            }
            return Ok(());
        }
        // Chunks are padded to an even length.
        at = body.saturating_add(len).saturating_add(len & 1);
    }
    Ok(())
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a call into the decoder); a panic inside becomes
/// [`SampleProblem::Corrupt`] and prints nothing (the file's one error line
/// says it all). Panics on other threads meanwhile print as usual.
pub fn quietly<R>(f: impl FnOnce() -> Result<R, SampleProblem>) -> Result<R, SampleProblem> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    r.unwrap_or_else(|_| Err(SampleProblem::Corrupt("the decoder could not make sense of it".to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(channels: u16, rate: u32) -> std::io::Cursor<Vec<u8>> {
        let mut b = b"RIFF\0\0\0\0WAVEjunk\x03\0\0\0abc\0fmt \x10\0\0\0\x01\0".to_vec();
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        std::io::Cursor::new(b)
    }

    #[test]
    fn the_fmt_chunk_is_found_past_padded_chunks_and_checked() {
        assert!(riff(&mut wav(2, 44100)).is_ok());
        assert!(matches!(riff(&mut wav(0, 44100)), Err(SampleProblem::NoChannels)));
        assert!(matches!(riff(&mut wav(64, 44100)), Err(SampleProblem::Channels(64))));
        assert!(matches!(riff(&mut wav(1, 0)), Err(SampleProblem::Rate(0))));
        assert!(riff(&mut std::io::Cursor::new(b"RIFF".to_vec())).is_ok(), "too short: the decoder decides");
    }

    #[test]
    fn a_panic_inside_is_an_error() {
        let r: Result<(), _> = quietly(|| panic!("inside the decoder"));
        assert!(matches!(r, Err(SampleProblem::Corrupt(_))));
        assert_eq!(quietly(|| Ok(3)).unwrap(), 3);
    }
}
