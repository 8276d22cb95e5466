//! What travels between editors and an engine, byte for byte.
//!
//! An engine named NAME owns two channels: `NAME.submit` (patches, many
//! producers) and `NAME.param` (parameter changes, many producers). A client
//! owns its reply channel `NAME.reply-PID-N` and names it in each submit.
//! Everything read from a channel is checked: the other side may be a
//! different build, or garbage.

use std::time::Duration;

use clavm_channel::{Config, Mode, ShmSafe};

pub const SUBMIT_CHANNEL: &str = "submit";
pub const PARAM_CHANNEL: &str = "param";
/// The largest patch an engine takes (the engine's own source limit).
pub const MAX_PATCH_BYTES: usize = 1 << 20;
/// The longest patch name (a path, shown in diagnostics).
pub const MAX_NAME_BYTES: usize = 4096;
/// The longest reply text (diagnostics); longer text is cut at a line with a note saying so.
pub const MAX_REPLY_TEXT: usize = 60 * 1024;
/// A reply channel's name is at most this long.
pub const MAX_CHANNEL_NAME: usize = 64;

const SUBMIT_MAGIC: u32 = u32::from_le_bytes(*b"CLSB");
const REPLY_MAGIC: u32 = u32::from_le_bytes(*b"CLRP");
const PARAM_MAGIC: u32 = u32::from_le_bytes(*b"CLPM");
/// 2: a submit says where it lands (`quant`); a reply may say it waits for its boundary.
const PROTOCOL: u32 = 2;

pub fn submit_config() -> Config {
    Config::new(Mode::Mpsc, std::mem::size_of::<SubmitHeader>() + MAX_NAME_BYTES + MAX_PATCH_BYTES, 4)
}

pub fn reply_config() -> Config {
    Config::new(Mode::Spsc, std::mem::size_of::<ReplyHeader>() + MAX_REPLY_TEXT, 2)
}

pub fn param_config() -> Config {
    Config::new(Mode::Mpsc, std::mem::size_of::<ParamMsg>(), 1024)
}

/// The fixed part of a submit; the name and the code follow it.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SubmitHeader {
    pub magic: u32,
    pub protocol: u32,
    pub request: u64,
    /// The client's reply channel, NUL-padded.
    pub reply: [u8; MAX_CHANNEL_NAME],
    pub name_len: u32,
    pub code_len: u32,
    /// Beats to quantise the swap to (0: the next block); negative or NaN: the engine's default.
    pub quant: f64,
}
// SAFETY: repr(C) numbers and bytes, no padding.
unsafe impl ShmSafe for SubmitHeader {}

/// A decoded submit, borrowing the channel's bytes.
#[derive(Debug, PartialEq)]
pub struct Submit<'a> {
    pub request: u64,
    pub reply: &'a str,
    pub name: &'a str,
    pub code: &'a str,
    /// Beats to quantise the swap to (0: the next block); None: the engine's default.
    /// Not checked here: the engine knows its range.
    pub quant: Option<f64>,
}

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed message: {0}")]
pub struct Malformed(pub String);

impl<'a> Submit<'a> {
    /// The size of the encoded message.
    pub fn encoded_len(&self) -> usize {
        std::mem::size_of::<SubmitHeader>() + self.name.len() + self.code.len()
    }

    /// Writes the message into `buf` (at least `encoded_len` bytes); returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> usize {
        let mut reply = [0u8; MAX_CHANNEL_NAME];
        reply[..self.reply.len()].copy_from_slice(self.reply.as_bytes());
        let h = SubmitHeader {
            magic: SUBMIT_MAGIC,
            protocol: PROTOCOL,
            request: self.request,
            reply,
            name_len: self.name.len() as u32,
            code_len: self.code.len() as u32,
            quant: self.quant.unwrap_or(-1.0),
        };
        let hl = std::mem::size_of::<SubmitHeader>();
        buf[..hl].copy_from_slice(bytemuck::bytes_of(&h));
        buf[hl..hl + self.name.len()].copy_from_slice(self.name.as_bytes());
        let at = hl + self.name.len();
        buf[at..at + self.code.len()].copy_from_slice(self.code.as_bytes());
        at + self.code.len()
    }

    pub fn decode(bytes: &'a [u8]) -> Result<Submit<'a>, Malformed> {
        let bad = |s: &str| Err(Malformed(s.to_string()));
        let hl = std::mem::size_of::<SubmitHeader>();
        if bytes.len() < hl {
            return bad("shorter than a submit header");
        }
        let h: SubmitHeader = bytemuck::pod_read_unaligned(&bytes[..hl]);
        if h.magic != SUBMIT_MAGIC {
            return bad("not a submit (bad magic number)");
        }
        if h.protocol != PROTOCOL {
            return Err(Malformed(format!("submit protocol {} (this engine speaks {PROTOCOL})", h.protocol)));
        }
        let (name_len, code_len) = (h.name_len as usize, h.code_len as usize);
        if name_len > MAX_NAME_BYTES || code_len > MAX_PATCH_BYTES || hl + name_len + code_len != bytes.len() {
            return bad("lengths in the submit header do not match the message");
        }
        let reply_len = h.reply.iter().position(|b| *b == 0).unwrap_or(MAX_CHANNEL_NAME);
        let text = |b: &'a [u8], what: &str| {
            std::str::from_utf8(b).map_err(|e| Malformed(format!("{what} is not UTF-8 (byte {})", e.valid_up_to())))
        };
        let reply_bytes = &bytes[std::mem::offset_of!(SubmitHeader, reply)..][..reply_len];
        Ok(Submit {
            request: h.request,
            reply: text(reply_bytes, "the reply channel name")?,
            name: text(&bytes[hl..hl + name_len], "the patch name")?,
            code: text(&bytes[hl + name_len..], "the patch")?,
            quant: (h.quant >= 0.0).then_some(h.quant),
        })
    }
}

/// How a submit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Outcome {
    /// Compiled, passed its test run, and plays.
    Playing = 0,
    /// Refused by the compiler or the checks: the text holds `FILE:LINE:COL: error: ...` lines.
    Rejected = 1,
    /// Compiled but failed its test run (crash, NaN, infinite loop) or could not be installed.
    Failed = 2,
    /// The engine could not read the submit.
    Malformed = 3,
    /// Compiled and passed its test run; it waits for its beat (a quantised
    /// submit) and will play from there unless a newer submit replaces it.
    Waiting = 4,
}

impl Outcome {
    fn from_u32(v: u32) -> Option<Outcome> {
        [Outcome::Playing, Outcome::Rejected, Outcome::Failed, Outcome::Malformed, Outcome::Waiting]
            .into_iter()
            .find(|o| *o as u32 == v)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Playing => "playing",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
            Outcome::Malformed => "malformed",
            Outcome::Waiting => "waiting",
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ReplyHeader {
    pub magic: u32,
    pub outcome: u32,
    pub request: u64,
    pub version: u64,
    pub compile_ns: u64,
    pub test_ns: u64,
    pub swap_ns: u64,
    pub text_len: u32,
    pub _pad: u32,
}
// SAFETY: repr(C) numbers, no padding.
unsafe impl ShmSafe for ReplyHeader {}

/// The engine's answer to one submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub request: u64,
    pub outcome: Outcome,
    /// The version number the patch plays as (0 unless playing).
    pub version: u64,
    pub compile: Duration,
    pub test: Duration,
    /// From the end of the test run to the first block of new sound.
    pub swap: Duration,
    /// Diagnostics (warnings too), one per line, or why it failed.
    pub text: String,
}

impl Reply {
    pub fn encode(&self) -> Vec<u8> {
        let mut text = self.text.as_str();
        let mut note = "";
        if text.len() > MAX_REPLY_TEXT - 64 {
            let mut cut = MAX_REPLY_TEXT - 64;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            cut = text[..cut].rfind('\n').map_or(cut, |i| i + 1);
            text = &text[..cut];
            note = "(more diagnostics left out)\n";
        }
        let h = ReplyHeader {
            magic: REPLY_MAGIC,
            outcome: self.outcome as u32,
            request: self.request,
            version: self.version,
            compile_ns: self.compile.as_nanos() as u64,
            test_ns: self.test.as_nanos() as u64,
            swap_ns: self.swap.as_nanos() as u64,
            text_len: (text.len() + note.len()) as u32,
            _pad: 0,
        };
        let mut out = bytemuck::bytes_of(&h).to_vec();
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(note.as_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Reply, Malformed> {
        let hl = std::mem::size_of::<ReplyHeader>();
        if bytes.len() < hl {
            return Err(Malformed("shorter than a reply header".into()));
        }
        let h: ReplyHeader = bytemuck::pod_read_unaligned(&bytes[..hl]);
        let outcome = Outcome::from_u32(h.outcome).filter(|_| h.magic == REPLY_MAGIC);
        let Some(outcome) = outcome else { return Err(Malformed("not a reply".into())) };
        if hl + h.text_len as usize != bytes.len() {
            return Err(Malformed("reply length does not match".into()));
        }
        Ok(Reply {
            request: h.request,
            outcome,
            version: h.version,
            compile: Duration::from_nanos(h.compile_ns),
            test: Duration::from_nanos(h.test_ns),
            swap: Duration::from_nanos(h.swap_ns),
            text: String::from_utf8_lossy(&bytes[hl..]).into_owned(),
        })
    }
}

/// Which parameter a [`ParamMsg`] sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ParamKind {
    /// `_p(n)`
    P = 0,
    /// `_i(n)`
    I = 1,
    /// `_cc(n)`, 0..1
    Cc = 2,
    /// The tempo clock's beats per minute (the index is 0).
    Tempo = 3,
    /// A MIDI note event for the voices: the index is `kind << 8 | a` and
    /// the value `b` of the engine's packed `NoteEvent` (note on: kind 0,
    /// a the note, b the velocity; off: 1; bend: 2, b -8192..=8191; sustain: 3, a 0 or 1).
    Note = 4,
}

/// One parameter change on the `param` channel.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ParamMsg {
    pub magic: u32,
    pub kind: u32,
    pub index: u32,
    pub _pad: u32,
    pub value: f64,
}
// SAFETY: repr(C) numbers, no padding.
unsafe impl ShmSafe for ParamMsg {}

impl ParamMsg {
    pub fn new(kind: ParamKind, index: u32, value: f64) -> ParamMsg {
        ParamMsg { magic: PARAM_MAGIC, kind: kind as u32, index, _pad: 0, value }
    }

    /// The change, if the message is one.
    pub fn decode(&self) -> Option<(ParamKind, u32, f64)> {
        let kind = [ParamKind::P, ParamKind::I, ParamKind::Cc, ParamKind::Tempo, ParamKind::Note]
            .into_iter()
            .find(|k| *k as u32 == self.kind)?;
        (self.magic == PARAM_MAGIC).then_some((kind, self.index, self.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submit_round_trips_and_garbage_is_refused() {
        let s = Submit { request: 7, reply: "reply-1-0", name: "a.c", code: "void play(void) {}", quant: Some(4.0) };
        let mut buf = vec![0; s.encoded_len()];
        assert_eq!(s.encode(&mut buf), buf.len());
        assert_eq!(Submit::decode(&buf).unwrap(), s);
        assert!(Submit::decode(&buf[..buf.len() - 1]).is_err(), "length mismatch");
        assert!(Submit::decode(&[0x5a; 200]).is_err(), "garbage");
        let mut bad_utf8 = buf.clone();
        *bad_utf8.last_mut().unwrap() = 0xff;
        assert!(Submit::decode(&bad_utf8).unwrap_err().0.contains("UTF-8"));
    }

    #[test]
    fn a_reply_round_trips_and_a_long_text_is_cut_at_a_line_with_a_note() {
        let r = Reply {
            request: 3,
            outcome: Outcome::Rejected,
            version: 0,
            compile: Duration::from_micros(120),
            test: Duration::ZERO,
            swap: Duration::ZERO,
            text: "a.c:1:2: error: x\n".to_string(),
        };
        assert_eq!(Reply::decode(&r.encode()).unwrap(), r);
        let long = Reply { text: "a.c:1:2: error: a long diagnostic line\n".repeat(5000), ..r };
        let bytes = long.encode();
        assert!(bytes.len() <= reply_config().slot_size);
        let back = Reply::decode(&bytes).unwrap();
        assert!(back.text.ends_with("a long diagnostic line\n(more diagnostics left out)\n"));
        assert!(Reply::decode(&[1, 2, 3]).is_err());
    }

    #[test]
    fn param_messages_decode_only_when_well_formed() {
        let m = ParamMsg::new(ParamKind::Cc, 7, 0.5);
        assert_eq!(m.decode(), Some((ParamKind::Cc, 7, 0.5)));
        assert_eq!(ParamMsg { kind: 9, ..m }.decode(), None);
        assert_eq!(ParamMsg { magic: 0, ..m }.decode(), None);
    }
}
