//! CLAVM's Vulkan renderer: scope, XY, waveforms, spectrum, meters and the
//! bar tree, headless on lavapipe and presented through our own dmabuf/shm
//! swapchain in the desktop app.
//!
//! Nothing is here yet: the renderer is its own issue (see
//! docs/ARCHITECTURE.md, "Crates"). The crate exists so the workspace shows
//! the architecture from the start; it has no code to pretend otherwise.
