//! OSC 1.0 packets as any local user may send them: decoded without
//! recursion and without allocation, with bounded size and nesting.
//!
//! Why our own decoder rather than `rosc` (0.11.4, the newest): its decoder
//! recurses once per bundle level through several nom frames, so 3,000 nested
//! bundles in one 60 KB datagram overflowed the OSC thread's stack and aborted
//! the engine; it has no depth limit to set. Its result is an owned tree
//! (`Vec`s of `String`s) whose `Drop` and `Debug` recurse as well (arrays nest
//! in type tags), so checking the depth beforehand would mean parsing the
//! packet twice, once by hand anyway. We need three addresses with two numbers
//! each: walking the bytes in place with an explicit, fixed-size stack of
//! bundle ends is smaller than that check, and it cannot overflow, allocate or
//! loop (every step moves forward). `rosc` stays as a dev-dependency: tests
//! encode with it, and the fuzz test checks that both decoders agree.
//!
//! A packet is checked whole before any of its messages is handed out, so a
//! bundle with a bad element sets no parameter at all (as `rosc` did).

use std::fmt;

/// The largest packet decoded. A `/clavm/p` message is 24 bytes, so this holds
/// a bundle of some 600 changes, far more than any controller sends at once;
/// the cap bounds the work one datagram can cost (the walk is linear in it).
pub const MAX_PACKET: usize = 16 * 1024;

/// The deepest bundle nesting decoded (a packet that is a bundle is at depth
/// 1). Senders use one level, or two when forwarding; the OSC spec sets no
/// limit, so one is ours to choose.
pub const MAX_DEPTH: usize = 16;

const BUNDLE_TAG: &[u8; 8] = b"#bundle\0";
/// The bundle tag and its time tag.
const BUNDLE_HEADER: usize = 16;

/// Why a packet was refused. Offsets are byte positions in the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OscError {
    #[error("more than {MAX_PACKET} bytes")]
    Oversized,
    #[error("{0} bytes, not a positive multiple of 4")]
    Unaligned(usize),
    #[error("bundles nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("cut short: what starts at byte {0} runs past its end")]
    Truncated(usize),
    #[error("an element at byte {at} declares {declared} bytes, but its bundle has {left} left")]
    BadLength { at: usize, declared: i64, left: usize },
    #[error("neither a message (/...) nor a bundle (#bundle) at byte {0}")]
    NotAPacket(usize),
    #[error("nonzero padding after the string at byte {0}")]
    BadPadding(usize),
    #[error("the type tags at byte {0} do not start with ','")]
    NoTypeTags(usize),
    #[error("unknown type tag {tag:?} in the message at byte {at}")]
    UnknownType { at: usize, tag: char },
    #[error("unbalanced array brackets in the type tags of the message at byte {0}")]
    Unbalanced(usize),
    #[error("bytes left over after the arguments of the message at byte {0}")]
    TrailingBytes(usize),
}

/// One argument, borrowed from the packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arg<'a> {
    Int(i32),
    Float(f32),
    String(&'a [u8]),
    Symbol(&'a [u8]),
    Blob(&'a [u8]),
    Long(i64),
    Double(f64),
    Time {
        seconds: u32,
        fraction: u32,
    },
    Char(u32),
    /// Red, green, blue, alpha.
    Color([u8; 4]),
    /// Port, status, data 1, data 2.
    Midi([u8; 4]),
    True,
    False,
    Nil,
    Inf,
    ArrayStart,
    ArrayEnd,
}

/// A message of a checked packet.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The address, without its terminating null.
    pub address: &'a [u8],
    /// The type tags after the ',' (empty when the sender left them out, as
    /// OSC 1.0 asks receivers to accept).
    pub tags: &'a [u8],
    data: &'a [u8],
    /// Where `data` starts in the packet, for error offsets.
    at: usize,
}

impl<'a> Message<'a> {
    /// The arguments, in order (array brackets included as markers).
    pub fn args(&self) -> impl Iterator<Item = Arg<'a>> + 'a {
        // The message was checked when it was decoded: no argument fails here.
        Args { tags: self.tags, data: self.data, pos: 0, at: self.at }.map_while(Result::ok)
    }
}

/// Checks `packet` whole, then hands each of its messages to `each`, in
/// order. Returns how many there were. On an error no message is handed out.
pub fn decode<'a>(packet: &'a [u8], mut each: impl FnMut(Message<'a>)) -> Result<usize, OscError> {
    if packet.len() > MAX_PACKET {
        return Err(OscError::Oversized);
    }
    walk(packet, &mut |_| {})?;
    walk(packet, &mut each)
}

/// The walk over a packet: bundles are entered by pushing their end on a
/// fixed stack, elements are visited in order, and every step moves forward.
/// Safe on a packet of any size (the cap in `decode` only bounds the work).
fn walk<'a>(packet: &'a [u8], each: &mut dyn FnMut(Message<'a>)) -> Result<usize, OscError> {
    if packet.is_empty() || !packet.len().is_multiple_of(4) {
        return Err(OscError::Unaligned(packet.len()));
    }
    // Element sizes are checked to be multiples of 4, so every position below is aligned.
    let mut bundle_ends = [0usize; MAX_DEPTH];
    let mut depth = 0;
    let (mut pos, mut end) = (0, packet.len());
    let mut count = 0;
    loop {
        // One element: packet[pos..end].
        let element = &packet[pos..end];
        if element.starts_with(BUNDLE_TAG) {
            if depth == MAX_DEPTH {
                return Err(OscError::TooDeep);
            }
            if element.len() < BUNDLE_HEADER {
                return Err(OscError::Truncated(pos));
            }
            bundle_ends[depth] = end;
            depth += 1;
            pos += BUNDLE_HEADER;
        } else if element.first() == Some(&b'/') {
            each(message(packet, pos, end)?);
            count += 1;
            pos = end;
        } else {
            return Err(OscError::NotAPacket(pos));
        }
        // The next element: leave every bundle that ends here, then read a size.
        loop {
            let Some(depth_now) = depth.checked_sub(1) else { return Ok(count) };
            let bundle_end = bundle_ends[depth_now];
            if pos == bundle_end {
                depth = depth_now;
                continue;
            }
            let size = read_i32(packet, pos, bundle_end)?;
            let left = bundle_end - pos - 4;
            match usize::try_from(size) {
                Ok(n) if n > 0 && n.is_multiple_of(4) && n <= left => {
                    pos += 4;
                    end = pos + n;
                    break;
                }
                _ => return Err(OscError::BadLength { at: pos, declared: size.into(), left }),
            }
        }
    }
}

/// The message in `packet[pos..end]`, checked to its last argument.
fn message(packet: &[u8], pos: usize, end: usize) -> Result<Message<'_>, OscError> {
    let (address, next) = string(packet, pos, end)?;
    let (tags, next) = if next == end {
        (&[][..], next)
    } else {
        let (tags, after) = string(packet, next, end)?;
        match tags.split_first() {
            Some((b',', rest)) => (rest, after),
            _ => return Err(OscError::NoTypeTags(next)),
        }
    };
    let m = Message { address, tags, data: &packet[next..end], at: next };
    let mut args = Args { tags, data: m.data, pos: 0, at: next };
    let mut open = 0usize;
    for arg in &mut args {
        match arg? {
            Arg::ArrayStart => open += 1,
            Arg::ArrayEnd => open = open.checked_sub(1).ok_or(OscError::Unbalanced(pos))?,
            _ => {}
        }
    }
    if open != 0 {
        return Err(OscError::Unbalanced(pos));
    }
    if args.pos != m.data.len() {
        return Err(OscError::TrailingBytes(pos));
    }
    Ok(m)
}

/// An OSC string at `pos` (null-terminated, null-padded to 4 bytes) within
/// `..end`: its bytes and the position after its padding.
fn string(packet: &[u8], pos: usize, end: usize) -> Result<(&[u8], usize), OscError> {
    let region = &packet[pos..end];
    let len = region.iter().position(|&b| b == 0).ok_or(OscError::Truncated(pos))?;
    let padded = (len + 4) & !3;
    let padding = region.get(len..padded).ok_or(OscError::Truncated(pos))?;
    if padding.iter().any(|&b| b != 0) {
        return Err(OscError::BadPadding(pos));
    }
    Ok((&region[..len], pos + padded))
}

fn read_i32(packet: &[u8], pos: usize, end: usize) -> Result<i32, OscError> {
    Ok(i32::from_be_bytes(take::<4>(packet, pos, end)?))
}

/// `N` bytes at `pos`, if they end by `end`.
fn take<const N: usize>(bytes: &[u8], pos: usize, end: usize) -> Result<[u8; N], OscError> {
    bytes.get(pos..end).and_then(|b| b.get(..N)).and_then(|b| b.try_into().ok()).ok_or(OscError::Truncated(pos))
}

/// The argument reader: one type tag and its data at a time.
struct Args<'a> {
    tags: &'a [u8],
    data: &'a [u8],
    /// How much of `data` has been read.
    pos: usize,
    /// Where `data` starts in the packet.
    at: usize,
}

impl<'a> Args<'a> {
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], OscError> {
        let b = take::<N>(self.data, self.pos, self.data.len()).map_err(|_| OscError::Truncated(self.at + self.pos))?;
        self.pos += N;
        Ok(b)
    }

    fn string(&mut self) -> Result<&'a [u8], OscError> {
        let (s, next) = string(self.data, self.pos, self.data.len()).map_err(|e| offset(e, self.at))?;
        self.pos = next;
        Ok(s)
    }

    fn blob(&mut self) -> Result<&'a [u8], OscError> {
        let at = self.at + self.pos;
        let size = i32::from_be_bytes(self.fixed::<4>()?);
        let left = self.data.len() - self.pos;
        let bad = OscError::BadLength { at, declared: size.into(), left };
        let n = usize::try_from(size).map_err(|_| bad)?;
        let padded = n.checked_add(3).map(|p| p & !3).filter(|&p| p <= left).ok_or(bad)?;
        let blob = &self.data[self.pos..self.pos + n];
        if self.data[self.pos + n..self.pos + padded].iter().any(|&b| b != 0) {
            return Err(OscError::BadPadding(at));
        }
        self.pos += padded;
        Ok(blob)
    }

    fn arg(&mut self, tag: u8) -> Result<Arg<'a>, OscError> {
        Ok(match tag {
            b'i' => Arg::Int(i32::from_be_bytes(self.fixed()?)),
            b'f' => Arg::Float(f32::from_be_bytes(self.fixed()?)),
            b'h' => Arg::Long(i64::from_be_bytes(self.fixed()?)),
            b'd' => Arg::Double(f64::from_be_bytes(self.fixed()?)),
            b's' => Arg::String(self.string()?),
            b'S' => Arg::Symbol(self.string()?),
            b'b' => Arg::Blob(self.blob()?),
            b't' => {
                let [s0, s1, s2, s3, f0, f1, f2, f3] = self.fixed()?;
                Arg::Time {
                    seconds: u32::from_be_bytes([s0, s1, s2, s3]),
                    fraction: u32::from_be_bytes([f0, f1, f2, f3]),
                }
            }
            b'c' => Arg::Char(u32::from_be_bytes(self.fixed()?)),
            b'r' => Arg::Color(self.fixed()?),
            b'm' => Arg::Midi(self.fixed()?),
            b'T' => Arg::True,
            b'F' => Arg::False,
            b'N' => Arg::Nil,
            b'I' => Arg::Inf,
            b'[' => Arg::ArrayStart,
            b']' => Arg::ArrayEnd,
            other => return Err(OscError::UnknownType { at: self.at, tag: char::from(other) }),
        })
    }
}

/// An error found inside a sub-slice, moved to its offset in the packet.
fn offset(e: OscError, by: usize) -> OscError {
    match e {
        OscError::Truncated(p) => OscError::Truncated(p + by),
        OscError::BadPadding(p) => OscError::BadPadding(p + by),
        other => other,
    }
}

impl<'a> Iterator for Args<'a> {
    type Item = Result<Arg<'a>, OscError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&tag, rest) = self.tags.split_first()?;
        self.tags = rest;
        let arg = self.arg(tag);
        if arg.is_err() {
            // One error ends the reading: nothing after it can be trusted.
            self.tags = &[];
        }
        Some(arg)
    }
}

/// Bytes from a packet shown on one bounded line: printable ASCII as is,
/// anything else escaped, at most 48 bytes.
pub struct Shown<'a>(pub &'a [u8]);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 48;
        let cut = self.0.len() > MAX;
        write!(f, "{}", self.0[..self.0.len().min(MAX)].escape_ascii())?;
        if cut {
            write!(f, "... ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
