//! Interval bars: physical bars that plug into each other, each one musical
//! interval, read by a root box over a one-wire protocol.
//!
//! - [`model`]: bars, connectors, the eight intervals, exact pitches, layout.
//! - [`text`]: the `.bars` text format (load and save, errors with line numbers).
//! - [`wire`]: the 9-slot word stream the root receives, encoder and decoder.
//! - [`sim`]: a discrete-event simulator of a network of bars running the prime
//!   and data protocol on open-drain lines, with random plugging.
//!
//! The design, the formats and the protocol are in docs/BARS.md.

pub mod model;
pub mod sim;
pub mod text;
pub mod wire;

pub use model::{BarId, BarTree, Connector, Gender, Interval, Parent, Pitch, Placement, TreeError, MAX_BARS};
