//! The window's two ways of handing frames to the compositor behind one
//! enum, so `draw()` has one route: shared memory (a copy, works
//! everywhere) or the dmabuf swapchain (no copy, needs a GPU the compositor
//! can import from). A dmabuf failure at run time under `auto` falls back
//! to shared memory and says why.

use clavm_render::ui::UiFrame;
use smithay_client_toolkit::shell::WaylandSurface;

use super::shm::ShmPresenter;
use super::swapchain::DmabufPresenter;
use super::App;

pub(super) enum Presenter {
    Shm(ShmPresenter),
    Dmabuf(DmabufPresenter),
}

impl App {
    /// Makes or resizes the presenter for a `w`x`h` frame, and for dmabuf
    /// picks the buffer it draws into. False when every buffer is held by
    /// the compositor: the frame waits for a release.
    pub(super) fn prepare_presenter(&mut self, w: u32, h: u32) -> anyhow::Result<bool> {
        if std::mem::take(&mut self.dmabuf.refused) && matches!(self.presenter, Some(Presenter::Dmabuf(_))) {
            self.renderer.finish_all()?;
            self.presenter = None;
            self.dmabuf_unusable("the compositor refused a dmabuf buffer")?;
        }
        if self.presenter.is_none() && self.dmabuf.wanted {
            let made = match &self.dmabuf.negotiated {
                Some(Ok(n)) => DmabufPresenter::new(&self.gpu, n.clone(), w, h).map_err(|e| format!("{e:#}")),
                Some(Err(why)) => Err(why.clone()),
                None => Err("the compositor sent no dmabuf feedback".into()),
            };
            match made {
                Ok(p) => self.presenter = Some(Presenter::Dmabuf(p)),
                Err(why) => self.dmabuf_unusable(&why)?,
            }
        }
        let failed = match &mut self.presenter {
            Some(Presenter::Shm(p)) => {
                if p.size() != (w, h) {
                    // The old target is dropped: no frame may still draw into it.
                    self.renderer.finish_all()?;
                    p.resize(&self.gpu, w, h)?;
                }
                None
            }
            Some(Presenter::Dmabuf(p)) => {
                let recording = self.recorder.is_some();
                let acquired = p
                    .resize(&self.gpu, w, h)
                    .and_then(|()| p.acquire(&mut self.renderer, &self.dmabuf.state, &self.qh, recording));
                match acquired {
                    Ok(true) => None,
                    Ok(false) => return Ok(false),
                    Err(e) => Some(format!("{e:#}")),
                }
            }
            None => {
                self.presenter = Some(Presenter::Shm(ShmPresenter::new(&self.shm, &self.gpu, w, h)?));
                None
            }
        };
        if let Some(why) = failed {
            self.renderer.finish_all()?;
            self.presenter = None;
            self.dmabuf_unusable(&why)?;
            self.presenter = Some(Presenter::Shm(ShmPresenter::new(&self.shm, &self.gpu, w, h)?));
        }
        Ok(true)
    }

    /// Renders the frame into the prepared presenter and attaches its
    /// buffer to the surface (the caller damages and commits); a recording
    /// gets the frame's pixels.
    pub(super) fn render_and_attach(&mut self, ui: UiFrame<'_>, w: u32, h: u32) -> anyhow::Result<()> {
        let surface = self.window.wl_surface().clone();
        match self.presenter.as_mut().expect("prepare_presenter made it") {
            Presenter::Shm(p) => {
                let ticket = self.renderer.render_with_ui(&mut self.canvas, ui, &p.target)?;
                self.renderer.finish(ticket)?;
                if let Some(r) = &mut self.recorder {
                    r.frame(p.target.pixels(ticket.slot), w, h);
                    self.studio.status.recording = Some(r.describe());
                }
                p.present(&surface, ticket.slot)?;
            }
            Presenter::Dmabuf(p) => {
                let ticket = match self.renderer.render_with_ui(&mut self.canvas, ui, &p.target()) {
                    Ok(t) => t,
                    Err(e) => {
                        p.abandon();
                        return Err(e.into());
                    }
                };
                p.present(&mut self.renderer, &surface, ticket)?;
                if let Some(r) = &mut self.recorder {
                    // Read back alongside the hand-over (only while recording).
                    self.renderer.finish(ticket)?;
                    if let Some(pixels) = p.pixels(ticket.slot) {
                        r.frame(pixels, w, h);
                    }
                    self.studio.status.recording = Some(r.describe());
                }
            }
        }
        Ok(())
    }
}
