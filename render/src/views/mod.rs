//! The panels.
