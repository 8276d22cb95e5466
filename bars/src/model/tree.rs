//! A tree of bars hanging from the root box.

use std::fmt;

use thiserror::Error;

use super::connector::{Connector, Gender};
use super::interval::Interval;
use super::layout::{self, Placement};
use super::pitch::Pitch;

/// The root reads bar counts into a byte and the wire has no longer streams.
pub const MAX_BARS: usize = 255;
/// The root box's pitch when nobody turned the knob.
pub const DEFAULT_BASE_HZ: f64 = 440.0;
/// The root box has one connector, a socket: bars plug in by N or W.
pub const ROOT_CONNECTOR_GENDER: Gender = Gender::Female;

/// Index of a bar in its tree (0..len).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BarId(pub u8);

impl BarId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What a bar is plugged into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Parent {
    /// The root box's only connector.
    Root,
    /// Another bar's connector.
    Bar(BarId, Connector),
}

/// One bar as described: its interval, where it hangs, and its switch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bar {
    pub interval: Interval,
    pub parent: Parent,
    /// This bar's own connector that is plugged into `parent`.
    pub by: Connector,
    /// The touch switch: a held bar sounds (its gate is on).
    pub touched: bool,
}

/// Why a set of bars is not a tree that could hang from a root box.
#[derive(Debug, Error, PartialEq)]
pub enum TreeError {
    #[error("{0} bars: a tree holds at most {MAX_BARS}")]
    TooManyBars(usize),
    #[error("bar {bar} is plugged into itself")]
    PluggedIntoItself { bar: usize },
    #[error("bar {bar} hangs from bar {parent}, which does not exist")]
    UnknownParent { bar: usize, parent: usize },
    #[error("bar {bar}: its {by} ({by_gender:?}) cannot mate with {at} ({at_gender:?}); male mates only with female")]
    GenderMismatch { bar: usize, by: Connector, by_gender: Gender, at: String, at_gender: Gender },
    #[error("bars {first} and {second} are both plugged into {at}")]
    ConnectorTaken { first: usize, second: usize, at: String },
    #[error("bar {bar} is plugged into {at}, but that is the connector bar {parent} hangs by")]
    ParentsOwnConnector { bar: usize, parent: usize, at: String },
    #[error("bars {0:?} form a cycle, not connected to the root")]
    Cycle(Vec<usize>),
    #[error("base pitch {0} Hz is not a positive finite frequency")]
    BadBase(f64),
}

/// A validated tree of at most 255 bars, with each bar's pitch worked out.
///
/// Per-bar frequency and gate sit in flat slices (`frequencies()`,
/// `gate()`), so a patch can read them every block without allocating;
/// touching a bar or turning the base knob updates them in place.
#[derive(Clone, Debug)]
pub struct BarTree {
    base_hz: f64,
    bars: Vec<Bar>,
    names: Vec<String>,
    /// The child plugged into each connector, by connector index.
    children: Vec<[Option<BarId>; 4]>,
    root_child: Option<BarId>,
    /// Bars in wire order: depth first, children clockwise.
    preorder: Vec<BarId>,
    /// The pitch at each bar's male connectors (its low end).
    low: Vec<Pitch>,
    frequencies: Vec<f64>,
}

fn describe(parent: Parent) -> String {
    match parent {
        Parent::Root => "the root".to_string(),
        Parent::Bar(id, c) => format!("bar {}'s {c}", id.0),
    }
}

impl BarTree {
    /// A root box with nothing plugged in, at the default base pitch.
    pub fn empty() -> BarTree {
        BarTree::new(DEFAULT_BASE_HZ, Vec::new(), Vec::new()).expect("an empty tree is valid")
    }

    /// Checks that `bars` form one tree under the root and works out pitches.
    /// `names` may be empty (names b1, b2, ... are made up) or one per bar.
    pub fn new(base_hz: f64, bars: Vec<Bar>, names: Vec<String>) -> Result<BarTree, TreeError> {
        if !(base_hz.is_finite() && base_hz > 0.0) {
            return Err(TreeError::BadBase(base_hz));
        }
        let n = bars.len();
        if n > MAX_BARS {
            return Err(TreeError::TooManyBars(n));
        }
        let names = if names.len() == n { names } else { (1..=n).map(|i| format!("b{i}")).collect() };
        let mut children = vec![[None; 4]; n];
        let mut root_child = None;
        for (i, bar) in bars.iter().enumerate() {
            let at_gender = match bar.parent {
                Parent::Root => {
                    if let Some(BarId(other)) = root_child {
                        return Err(TreeError::ConnectorTaken {
                            first: other as usize,
                            second: i,
                            at: describe(bar.parent),
                        });
                    }
                    root_child = Some(BarId(i as u8));
                    ROOT_CONNECTOR_GENDER
                }
                Parent::Bar(p, c) => {
                    if p.index() == i {
                        return Err(TreeError::PluggedIntoItself { bar: i });
                    }
                    if p.index() >= n {
                        return Err(TreeError::UnknownParent { bar: i, parent: p.index() });
                    }
                    if let Some(BarId(other)) = children[p.index()][c.index()] {
                        return Err(TreeError::ConnectorTaken {
                            first: other as usize,
                            second: i,
                            at: describe(bar.parent),
                        });
                    }
                    children[p.index()][c.index()] = Some(BarId(i as u8));
                    c.gender()
                }
            };
            if bar.by.gender() == at_gender {
                return Err(TreeError::GenderMismatch {
                    bar: i,
                    by: bar.by,
                    by_gender: bar.by.gender(),
                    at: describe(bar.parent),
                    at_gender,
                });
            }
        }
        for (i, bar) in bars.iter().enumerate() {
            // Nothing can plug into the connector a bar itself hangs by.
            if let Some(child) = children[i][bar.by.index()] {
                return Err(TreeError::ParentsOwnConnector {
                    bar: child.index(),
                    parent: i,
                    at: describe(Parent::Bar(BarId(i as u8), bar.by)),
                });
            }
        }
        // Depth first from the root; whatever is not reached hangs off a cycle.
        let mut preorder = Vec::with_capacity(n);
        let mut stack: Vec<BarId> = root_child.into_iter().collect();
        while let Some(id) = stack.pop() {
            preorder.push(id);
            let by = bars[id.index()].by;
            for c in by.others_clockwise().iter().rev() {
                if let Some(child) = children[id.index()][c.index()] {
                    stack.push(child);
                }
            }
        }
        if preorder.len() < n {
            let mut reached = vec![false; n];
            for id in &preorder {
                reached[id.index()] = true;
            }
            let start = (0..n).find(|&i| !reached[i]).unwrap_or(0);
            return Err(TreeError::Cycle(find_cycle(&bars, start)));
        }
        let mut tree = BarTree {
            base_hz,
            bars,
            names,
            children,
            root_child,
            preorder,
            low: vec![Pitch::UNISON; n],
            frequencies: vec![0.0; n],
        };
        tree.work_out_pitches();
        Ok(tree)
    }

    fn work_out_pitches(&mut self) {
        for k in 0..self.preorder.len() {
            let id = self.preorder[k];
            let bar = self.bars[id.index()];
            let at = match bar.parent {
                Parent::Root => Pitch::UNISON,
                Parent::Bar(p, c) => self.connector_pitch(p, c),
            };
            // Male connectors carry a bar's low pitch, female ones its high pitch.
            self.low[id.index()] = match bar.by.gender() {
                Gender::Male => at,
                Gender::Female => at - bar.interval.pitch(),
            };
        }
        self.update_frequencies();
    }

    fn update_frequencies(&mut self) {
        for i in 0..self.bars.len() {
            self.frequencies[i] = self.pitch(BarId(i as u8)).frequency(self.base_hz);
        }
    }

    pub fn len(&self) -> usize {
        self.bars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bars.is_empty()
    }

    pub fn base_hz(&self) -> f64 {
        self.base_hz
    }

    /// Turns the root's knob; frequencies update in place.
    pub fn set_base_hz(&mut self, base_hz: f64) -> Result<(), TreeError> {
        if !(base_hz.is_finite() && base_hz > 0.0) {
            return Err(TreeError::BadBase(base_hz));
        }
        self.base_hz = base_hz;
        self.update_frequencies();
        Ok(())
    }

    pub fn bar(&self, id: BarId) -> &Bar {
        &self.bars[id.index()]
    }

    pub fn bars(&self) -> &[Bar] {
        &self.bars
    }

    pub fn name(&self, id: BarId) -> &str {
        &self.names[id.index()]
    }

    pub fn ids(&self) -> impl Iterator<Item = BarId> {
        (0..self.bars.len()).map(|i| BarId(i as u8))
    }

    /// The bar plugged into the root, if any.
    pub fn root_child(&self) -> Option<BarId> {
        self.root_child
    }

    /// The child plugged into each of a bar's connectors (indexed N, E, S, W).
    pub fn children(&self, id: BarId) -> [Option<BarId>; 4] {
        self.children[id.index()]
    }

    /// Bars in wire order: depth first from the root, children clockwise
    /// starting after the connector the bar hangs by.
    pub fn preorder(&self) -> &[BarId] {
        &self.preorder
    }

    /// The pitch at one of a bar's connectors (male: low end, female: high end).
    pub fn connector_pitch(&self, id: BarId, c: Connector) -> Pitch {
        let low = self.low[id.index()];
        match c.gender() {
            Gender::Male => low,
            Gender::Female => low + self.bars[id.index()].interval.pitch(),
        }
    }

    /// The bar's note: the pitch at its far end from the root, the one pitch
    /// it adds to the tree.
    pub fn pitch(&self, id: BarId) -> Pitch {
        let bar = &self.bars[id.index()];
        let far = match bar.by.gender() {
            Gender::Male => Gender::Female,
            Gender::Female => Gender::Male,
        };
        self.connector_pitch(id, Connector::of(far, bar.by.axis()))
    }

    pub fn frequency(&self, id: BarId) -> f64 {
        self.frequencies[id.index()]
    }

    /// Every bar's frequency in Hz, indexed by `BarId`.
    pub fn frequencies(&self) -> &[f64] {
        &self.frequencies
    }

    /// Whether the bar's touch switch is held.
    pub fn gate(&self, id: BarId) -> bool {
        self.bars[id.index()].touched
    }

    pub fn set_touched(&mut self, id: BarId, touched: bool) {
        self.bars[id.index()].touched = touched;
    }

    /// Where each bar lies in the plane, indexed by `BarId`.
    pub fn layout(&self) -> Vec<Placement> {
        layout::place(self)
    }

    /// The same tree renumbered in wire order (what a decoder produces).
    pub fn to_preorder(&self) -> BarTree {
        let mut new_id = vec![0u8; self.len()];
        for (k, id) in self.preorder.iter().enumerate() {
            new_id[id.index()] = k as u8;
        }
        let bars = self
            .preorder
            .iter()
            .map(|id| {
                let mut b = self.bars[id.index()];
                if let Parent::Bar(p, c) = b.parent {
                    b.parent = Parent::Bar(BarId(new_id[p.index()]), c);
                }
                b
            })
            .collect();
        let names = self.preorder.iter().map(|id| self.names[id.index()].clone()).collect();
        BarTree::new(self.base_hz, bars, names).expect("renumbering a valid tree keeps it valid")
    }

    /// Same bars hanging the same way, ignoring names and numbering.
    pub fn same_structure(&self, other: &BarTree) -> bool {
        self.len() == other.len()
            && self.preorder.iter().zip(other.preorder.iter()).all(|(a, b)| {
                let (x, y) = (self.bar(*a), other.bar(*b));
                let parent_connector = |p: Parent| match p {
                    Parent::Root => None,
                    Parent::Bar(_, c) => Some(c),
                };
                x.interval == y.interval
                    && x.by == y.by
                    && x.touched == y.touched
                    && parent_connector(x.parent) == parent_connector(y.parent)
            })
            && self.preorder.iter().zip(other.preorder.iter()).all(|(a, b)| {
                // Same parent position in wire order.
                let pos = |t: &BarTree, id: BarId| match t.bar(id).parent {
                    Parent::Root => None,
                    Parent::Bar(p, _) => t.preorder.iter().position(|q| *q == p),
                };
                pos(self, *a) == pos(other, *b)
            })
    }
}

/// Follows parent links from `start` until one repeats; returns the loop.
fn find_cycle(bars: &[Bar], start: usize) -> Vec<usize> {
    let mut seen = vec![usize::MAX; bars.len()];
    let mut path = Vec::new();
    let mut i = start;
    loop {
        if seen[i] != usize::MAX {
            return path[seen[i]..].to_vec();
        }
        seen[i] = path.len();
        path.push(i);
        match bars[i].parent {
            Parent::Bar(p, _) if p.index() < bars.len() => i = p.index(),
            _ => return path,
        }
    }
}

impl fmt::Display for BarTree {
    /// One line per bar in wire order, indented by depth: name, interval, note.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut depth = vec![0usize; self.len()];
        for id in &self.preorder {
            if let Parent::Bar(p, _) = self.bar(*id).parent {
                depth[id.index()] = depth[p.index()] + 1;
            }
            let bar = self.bar(*id);
            let freq = self.frequency(*id);
            let dir = if bar.by.gender() == Gender::Male { "up" } else { "down" };
            writeln!(
                f,
                "{:indent$}{} {} {dir} -> {} = {:.3} Hz  {}{}",
                "",
                self.name(*id),
                bar.interval,
                self.pitch(*id),
                freq,
                super::pitch::NoteName::of(freq),
                if bar.touched { "  [touched]" } else { "" },
                indent = 2 * depth[id.index()]
            )?;
        }
        Ok(())
    }
}
