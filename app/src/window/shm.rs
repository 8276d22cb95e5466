//! Presenting through wl_shm: the frame is rendered into an offscreen
//! image (BGRA, which is Wayland's XRGB8888 in memory), read back, and
//! copied into a buffer of a shared-memory pool. A buffer is reused only
//! after the compositor released it (sctk's slot pool tracks that); when
//! all are busy a new one is made, never an assumption about release order.

use std::sync::Arc;

use anyhow::Context;
use clavm_render::gpu::Gpu;
use clavm_render::target::Offscreen;
use smithay_client_toolkit::shm::slot::{Buffer, SlotPool};
use smithay_client_toolkit::shm::Shm;
use wayland_client::protocol::{wl_shm, wl_surface::WlSurface};

/// Buffers kept at most; more would mean the compositor holds them all.
const MAX_BUFFERS: usize = 4;

pub struct ShmPresenter {
    pool: SlotPool,
    buffers: Vec<Buffer>,
    pub target: Offscreen,
    size: (u32, u32),
}

impl ShmPresenter {
    pub fn new(shm: &Shm, gpu: &Arc<Gpu>, width: u32, height: u32) -> anyhow::Result<ShmPresenter> {
        let pool = SlotPool::new((width * height * 4) as usize * 2, shm).context("creating the shm pool")?;
        let target = Offscreen::with_format(gpu, width, height, clavm_render::gpu::BGRA_FORMAT)?;
        Ok(ShmPresenter { pool, buffers: Vec::new(), target, size: (width, height) })
    }

    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    /// A new size: new target and buffers (the caller has finished every
    /// frame drawn into the old target; old buffers the compositor still
    /// holds are destroyed by sctk when it releases them).
    pub fn resize(&mut self, gpu: &Arc<Gpu>, width: u32, height: u32) -> anyhow::Result<()> {
        if (width, height) == self.size {
            return Ok(());
        }
        self.target = Offscreen::with_format(gpu, width, height, clavm_render::gpu::BGRA_FORMAT)?;
        self.buffers.clear();
        self.size = (width, height);
        Ok(())
    }

    /// Copies the finished frame of target slot `slot` into a free buffer
    /// and attaches it to `surface` (the caller damages and commits).
    pub fn present(&mut self, surface: &WlSurface, slot: usize) -> anyhow::Result<()> {
        let pixels = self.target.pixels(slot);
        let (w, h) = self.size;
        let stride = w as i32 * 4;
        let free = self.buffers.iter().position(|b| b.canvas(&mut self.pool).is_some());
        let index = match free {
            Some(i) => i,
            None => {
                let (buffer, _) = self
                    .pool
                    .create_buffer(w as i32, h as i32, stride, wl_shm::Format::Xrgb8888)
                    .context("creating an shm buffer")?;
                if self.buffers.len() >= MAX_BUFFERS {
                    // The oldest is still held; let sctk free it on release.
                    self.buffers.remove(0);
                }
                self.buffers.push(buffer);
                self.buffers.len() - 1
            }
        };
        let buffer = &self.buffers[index];
        let canvas = buffer.canvas(&mut self.pool).context("a free buffer has no canvas")?;
        let n = canvas.len().min(pixels.len());
        canvas[..n].copy_from_slice(&pixels[..n]);
        buffer.attach_to(surface).context("attaching the buffer")?;
        Ok(())
    }
}
