//! CLAVM's Vulkan renderer: scope, XY, waveforms, spectrum and meters.
//!
//! - `analysis/`: audio blocks in, what the views draw out (CPU, deterministic).
//! - `draw/`: the canvas of shapes and text a frame is made of (CPU).
//! - `views/`: the panels, laid out on a canvas from the analysis.
//! - `gpu/`: the Vulkan device, validation and memory.
//! - `renderer.rs` + `target/`: one instanced draw of the canvas into a
//!   frame target (an offscreen image read back to memory, or images
//!   exported as dmabufs for a window), two frames in flight.

pub mod analysis;
pub mod draw;
mod error;
pub mod gpu;
mod pipeline;
mod renderer;
mod shaders;
pub mod target;
pub mod ui;
pub mod views;

pub use error::RenderError;
pub use renderer::{FrameTicket, Renderer};
