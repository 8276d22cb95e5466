//! The bars as a musician holds them: a tree of bars hanging from the root box,
//! each bar one interval, each connection a male connector in a female one.

mod connector;
mod interval;
mod layout;
mod pitch;
mod tree;

pub mod edit;

pub use connector::{Axis, Connector, Gender};
pub use interval::Interval;
pub use layout::{Direction, Placement, BAR_WIDTH, OCTAVE_LENGTH};
pub use pitch::{NoteName, Pitch};
pub use tree::{Bar, BarId, BarTree, Parent, TreeError, DEFAULT_BASE_HZ, MAX_BARS, ROOT_CONNECTOR_GENDER};
