//! The word stream the root receives: one 9-slot word per bar, in pre-order.
//!
//! Slots, in the order they travel (slot 0 first):
//!
//! | slot | meaning |
//! |---|---|
//! | 0-2 | length code, most significant first: the [`Interval`] index |
//! | 3 | axis of the connector the bar hangs by: 0 = faces (N/S), 1 = ends (E/W) |
//! | 4 | touch switch: 1 = held |
//! | 5-7 | for the other three connectors, clockwise after the one it hangs by: 1 = no child |
//! | 8 | more words follow in this stream |
//!
//! A 1 is the idle (released) level of the open-drain line, so an empty
//! connector, which nobody answers, reads as "no child" without extra work.
//! The hanging connector's gender is the opposite of the parent connector's,
//! so the axis bit names it exactly; the root's connector is female.
//!
//! Delimiting: the child flags alone fix where the tree ends (each word uses
//! up one pending slot and opens one per child), and slot 8 says the same
//! thing independently: in the stream any bar sends upward (its subtree), slot
//! 8 is 1 on every word but the last. A relaying bar needs no stack: it passes
//! its children's words up and only rewrites slot 8 of each child's last word.
//! The decoder demands that both agree, which catches truncation and most
//! corruption. An empty stream is a root with nothing plugged in.

use thiserror::Error;

use crate::model::{
    Axis, Bar, BarId, BarTree, Connector, Interval, Parent, TreeError, MAX_BARS, ROOT_CONNECTOR_GENDER,
};

/// Slots per word.
pub const WORD_SLOTS: usize = 9;

/// One bar's word; bit i is slot i.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Word(u16);

const AXIS: u16 = 1 << 3;
const TOUCHED: u16 = 1 << 4;
const NO_CHILD: u16 = 0b111 << 5;
const MORE: u16 = 1 << 8;

impl Word {
    /// `has_child[k]` is for the k-th connector clockwise after `by`.
    pub fn new(interval: Interval, by_axis: Axis, touched: bool, has_child: [bool; 3], more: bool) -> Word {
        let code = interval.code() as u16;
        let mut bits = ((code >> 2) & 1) | (((code >> 1) & 1) << 1) | ((code & 1) << 2);
        if by_axis == Axis::Ends {
            bits |= AXIS;
        }
        if touched {
            bits |= TOUCHED;
        }
        for (k, has) in has_child.iter().enumerate() {
            if !has {
                bits |= 1 << (5 + k);
            }
        }
        if more {
            bits |= MORE;
        }
        Word(bits)
    }

    /// A word from its 9 slots as bits 0..9; None if higher bits are set.
    pub fn from_bits(bits: u16) -> Option<Word> {
        (bits < 1 << WORD_SLOTS).then_some(Word(bits))
    }

    pub fn bits(self) -> u16 {
        self.0
    }

    pub fn slot(self, i: usize) -> bool {
        self.0 >> i & 1 == 1
    }

    /// The length code (0-7); every code is a valid interval.
    pub fn code(self) -> u8 {
        ((self.0 & 1) << 2 | (self.0 >> 1 & 1) << 1 | (self.0 >> 2 & 1)) as u8
    }

    pub fn interval(self) -> Interval {
        Interval::from_code(self.code()).expect("three bits always name an interval")
    }

    pub fn by_axis(self) -> Axis {
        if self.0 & AXIS != 0 {
            Axis::Ends
        } else {
            Axis::Faces
        }
    }

    pub fn touched(self) -> bool {
        self.0 & TOUCHED != 0
    }

    pub fn has_child(self, k: usize) -> bool {
        self.0 >> (5 + k) & 1 == 0
    }

    pub fn child_count(self) -> u32 {
        3 - (self.0 & NO_CHILD).count_ones()
    }

    pub fn more(self) -> bool {
        self.0 & MORE != 0
    }

    pub fn with_more(self, more: bool) -> Word {
        Word(if more { self.0 | MORE } else { self.0 & !MORE })
    }
}

/// Why a stream is not a tree.
#[derive(Debug, Error, PartialEq)]
pub enum DecodeError {
    #[error("{bits} bits is not a whole number of 9-slot words")]
    PartialWord { bits: usize },
    #[error("word {index}: value {value:#x} has bits beyond slot 8")]
    NotAWord { index: usize, value: u16 },
    #[error("word {index} says no more words follow, but the tree still expects {missing} bar(s)")]
    EndedEarly { index: usize, missing: u32 },
    #[error("word {index} says more words follow, but the tree is complete")]
    MoreAfterComplete { index: usize },
    #[error("word {index} comes after the last word")]
    AfterEnd { index: usize },
    #[error("stream stopped after {words} word(s) with {missing} bar(s) still expected")]
    Truncated { words: usize, missing: u32 },
    #[error("more than {MAX_BARS} bars")]
    TooManyBars,
    #[error("decoded bars do not form a tree: {0}")]
    Tree(#[from] TreeError),
}

/// Checks a stream word by word with two counters: what the root runs as
/// words arrive (no allocation, no stack).
#[derive(Clone, Copy, Debug)]
pub struct StreamCheck {
    pending: u32,
    words: usize,
    complete: bool,
}

impl Default for StreamCheck {
    fn default() -> Self {
        StreamCheck { pending: 1, words: 0, complete: false }
    }
}

impl StreamCheck {
    /// Takes the next word; Ok(true) when it was the last.
    pub fn push(&mut self, w: Word) -> Result<bool, DecodeError> {
        let index = self.words;
        if self.complete || self.pending == 0 {
            return Err(DecodeError::AfterEnd { index });
        }
        self.words += 1;
        if self.words > MAX_BARS {
            return Err(DecodeError::TooManyBars);
        }
        self.pending = self.pending - 1 + w.child_count();
        match (w.more(), self.pending) {
            (true, 0) => Err(DecodeError::MoreAfterComplete { index }),
            (false, missing) if missing > 0 => Err(DecodeError::EndedEarly { index, missing }),
            (more, _) => {
                self.complete = !more;
                Ok(self.complete)
            }
        }
    }

    /// After the last word arrived (or the line went quiet).
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.words == 0 || self.complete {
            Ok(())
        } else {
            Err(DecodeError::Truncated { words: self.words, missing: self.pending })
        }
    }

    pub fn words(&self) -> usize {
        self.words
    }
}

/// The tree's words in wire order.
pub fn encode(tree: &BarTree) -> Vec<Word> {
    let mut out = Vec::with_capacity(tree.len());
    encode_into(tree, &mut out);
    out
}

/// As [`encode`], into a reused buffer.
pub fn encode_into(tree: &BarTree, out: &mut Vec<Word>) {
    out.clear();
    let order = tree.preorder();
    for (k, &id) in order.iter().enumerate() {
        let bar = tree.bar(id);
        let children = tree.children(id);
        let others = bar.by.others_clockwise();
        let has = others.map(|c| children[c.index()].is_some());
        out.push(Word::new(bar.interval, bar.by.axis(), bar.touched, has, k + 1 < order.len()));
    }
}

/// Rebuilds the tree (bars numbered in wire order, named b1, b2, ...).
pub fn decode(words: &[Word], base_hz: f64) -> Result<BarTree, DecodeError> {
    let mut check = StreamCheck::default();
    for w in words {
        check.push(*w)?;
    }
    check.finish()?;
    // The check guarantees the slots below balance exactly.
    let mut bars = Vec::with_capacity(words.len());
    let mut slots: Vec<Parent> = vec![Parent::Root];
    for w in words {
        let Some(parent) = slots.pop() else { break };
        let at_gender = match parent {
            Parent::Root => ROOT_CONNECTOR_GENDER,
            Parent::Bar(_, c) => c.gender(),
        };
        let by = Connector::of(at_gender.opposite(), w.by_axis());
        let id = BarId(bars.len() as u8);
        for (k, c) in by.others_clockwise().iter().enumerate().rev() {
            if w.has_child(k) {
                slots.push(Parent::Bar(id, *c));
            }
        }
        bars.push(Bar { interval: w.interval(), parent, by, touched: w.touched() });
    }
    Ok(BarTree::new(base_hz, bars, Vec::new())?)
}

/// Groups bits (slot 0 first) into words.
pub fn words_from_bits(bits: &[bool]) -> Result<Vec<Word>, DecodeError> {
    if bits.len() / WORD_SLOTS * WORD_SLOTS != bits.len() {
        return Err(DecodeError::PartialWord { bits: bits.len() });
    }
    Ok(bits
        .chunks(WORD_SLOTS)
        .map(|c| Word(c.iter().enumerate().fold(0u16, |acc, (i, b)| acc | (*b as u16) << i)))
        .collect())
}

/// Words from raw 16-bit values, rejecting bits beyond slot 8.
pub fn words_from_values(values: &[u16]) -> Result<Vec<Word>, DecodeError> {
    values
        .iter()
        .enumerate()
        .map(|(index, &value)| Word::from_bits(value).ok_or(DecodeError::NotAWord { index, value }))
        .collect()
}

/// Bits of a word stream, slot 0 first.
pub fn to_bits(words: &[Word]) -> Vec<bool> {
    words.iter().flat_map(|w| (0..WORD_SLOTS).map(move |i| w.slot(i))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Gender;

    fn chain(n: usize) -> BarTree {
        let bars = (0..n)
            .map(|i| Bar {
                interval: Interval::MajorSecond,
                parent: if i == 0 { Parent::Root } else { Parent::Bar(BarId(i as u8 - 1), Connector::E) },
                by: Connector::W,
                touched: i % 2 == 0,
            })
            .collect();
        BarTree::new(440.0, bars, vec![]).unwrap()
    }

    #[test]
    #[allow(clippy::unusual_byte_groupings)] // grouped by field: more, flags, touched, axis, code
    fn slots_are_where_the_docs_say() {
        let w = Word::new(Interval::MajorThird, Axis::Ends, true, [true, false, false], false);
        // code 3 = 011: slot0=0 slot1=1 slot2=1; axis; touched; flags 0,1,1; more 0.
        assert_eq!(w.bits(), 0b0_110_1_1_110);
        assert_eq!(w.code(), 3);
        assert_eq!(w.child_count(), 1);
    }

    #[test]
    fn chain_round_trips() {
        let t = chain(5);
        let words = encode(&t);
        assert!(words[..4].iter().all(|w| w.more()) && !words[4].more());
        let back = decode(&words, 440.0).unwrap();
        assert!(back.same_structure(&t));
    }

    #[test]
    fn truncation_and_bad_ends_are_errors() {
        let words = encode(&chain(3));
        assert_eq!(decode(&words[..2], 440.0).unwrap_err(), DecodeError::Truncated { words: 2, missing: 1 });
        let mut early = words.clone();
        early[1] = early[1].with_more(false);
        assert_eq!(decode(&early, 440.0).unwrap_err(), DecodeError::EndedEarly { index: 1, missing: 1 });
        let mut late = words.clone();
        late[2] = late[2].with_more(true);
        assert_eq!(decode(&late, 440.0).unwrap_err(), DecodeError::MoreAfterComplete { index: 2 });
        let mut extra = words.clone();
        extra.push(words[2]);
        assert_eq!(decode(&extra, 440.0).unwrap_err(), DecodeError::AfterEnd { index: 3 });
        assert!(decode(&[], 440.0).unwrap().is_empty());
        assert_eq!(words_from_bits(&[true; 10]).unwrap_err(), DecodeError::PartialWord { bits: 10 });
        assert_eq!(words_from_values(&[0x200]).unwrap_err(), DecodeError::NotAWord { index: 0, value: 0x200 });
    }

    #[test]
    fn root_child_hangs_by_a_male_connector() {
        let t = decode(&[Word::new(Interval::Fifth, Axis::Faces, false, [false; 3], false)], 440.0).unwrap();
        assert_eq!(t.bar(BarId(0)).by, Connector::N);
        assert_eq!(t.bar(BarId(0)).by.gender(), Gender::Male);
    }
}
