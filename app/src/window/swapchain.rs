//! The dmabuf swapchain: frames drawn straight into images the compositor
//! reads (no read-back, no copy). The surface's linux-dmabuf feedback (v4)
//! names the compositor's main device and the format/modifier pairs it can
//! import; the Vulkan device must be that device. Images come from
//! `clavm_render::target::DmabufImages`, each wrapped in a wl_buffer.
//!
//! Buffers are tracked by `BufferRing`: a buffer is drawn into only after
//! the compositor released it, a new one is made when all are held (up to
//! a cap), and on resize a new set is made while the old buffers live until
//! both their release and the GPU fence of their last frame.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clavm_render::gpu::{Gpu, BGRA_FORMAT};
use clavm_render::target::{DmabufFrame, DmabufImages, DmabufLayout};
use clavm_render::{FrameTicket, Renderer};
use smithay_client_toolkit::dmabuf::{DmabufFeedback, DmabufHandler, DmabufState};
use smithay_client_toolkit::reexports::calloop::EventLoop;
use smithay_client_toolkit::shell::WaylandSurface;
use wayland_client::globals::GlobalList;
use wayland_client::protocol::{wl_buffer, wl_surface::WlSurface};
use wayland_client::{Connection, QueueHandle};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1, zwp_linux_dmabuf_feedback_v1::ZwpLinuxDmabufFeedbackV1,
};

use super::dmabuf::{
    choose_modifier, common_modifiers, match_device, parse_dev, tranche_formats, DrmNodes, FormatModifier,
    DRM_FORMAT_ARGB8888, DRM_FORMAT_XRGB8888,
};
use super::App;

/// Buffers made at most for one size: more would mean the compositor is
/// holding them all, which waiting for a release answers better.
const MAX_BUFFERS: usize = 4;

/// How long the window waits for the surface's first feedback before
/// deciding without it (shared memory).
const FEEDBACK_WAIT: Duration = Duration::from_secs(1);

/// Which buffer: its set (one per size) and its index in that set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferId {
    pub generation: u32,
    pub index: usize,
}

/// Where a buffer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufState {
    /// Ours: released by the compositor (or never attached).
    Free,
    /// A frame is being drawn into it.
    Drawing,
    /// Attached and committed: the compositor's until `wl_buffer.release`.
    Held,
}

/// What `acquire` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired<F> {
    /// A free buffer, now `Drawing`, with the last frame drawn into it
    /// (which must have finished before it is drawn into again).
    Buffer(BufferId, Option<F>),
    /// None is free and the set is below the cap: make one, then `added`.
    Grow,
    /// All held at the cap: skip the frame until a release.
    Busy,
}

struct Entry<F> {
    id: BufferId,
    state: BufState,
    last_frame: Option<F>,
}

/// The buffers' state machine, without Wayland or Vulkan, so its rules are
/// tested: only released buffers are reused, all-busy grows up to a cap,
/// a resize retires the old set, and a retired buffer is destroyed only
/// once released and its last frame is done on the GPU. `F` is the frame's
/// ticket.
pub struct BufferRing<F> {
    entries: Vec<Entry<F>>,
    generation: u32,
    cap: usize,
}

impl<F: Copy> BufferRing<F> {
    pub fn new(cap: usize) -> BufferRing<F> {
        BufferRing { entries: Vec::new(), generation: 0, cap }
    }

    /// The current set's generation (buffers of older ones are retired).
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Buffers in the current set.
    pub fn live(&self) -> usize {
        self.entries.iter().filter(|e| e.id.generation == self.generation).count()
    }

    /// A buffer to draw the next frame into: the first free one of the
    /// current set (in creation order), never one the compositor holds.
    pub fn acquire(&mut self) -> Acquired<F> {
        let generation = self.generation;
        if let Some(e) = self.entries.iter_mut().find(|e| e.id.generation == generation && e.state == BufState::Free) {
            e.state = BufState::Drawing;
            return Acquired::Buffer(e.id, e.last_frame);
        }
        if self.live() < self.cap {
            Acquired::Grow
        } else {
            Acquired::Busy
        }
    }

    /// After `Grow`: the new buffer (the next index of the current set), `Drawing`.
    pub fn added(&mut self) -> BufferId {
        let id = BufferId { generation: self.generation, index: self.live() };
        self.entries.push(Entry { id, state: BufState::Drawing, last_frame: None });
        id
    }

    /// The frame drawn into `id` was attached and committed.
    pub fn presented(&mut self, id: BufferId, frame: F) {
        if let Some(e) = self.entry(id) {
            e.state = BufState::Held;
            e.last_frame = Some(frame);
        }
    }

    /// The frame for `id` was not presented (it failed): the buffer is free again.
    pub fn abandon(&mut self, id: BufferId) {
        if let Some(e) = self.entry(id).filter(|e| e.state == BufState::Drawing) {
            e.state = BufState::Free;
        }
    }

    /// The compositor released `id`.
    pub fn released(&mut self, id: BufferId) {
        if let Some(e) = self.entry(id).filter(|e| e.state == BufState::Held) {
            e.state = BufState::Free;
        }
    }

    /// A new size: the current set is retired, the next frames use a new one.
    pub fn resize(&mut self) {
        self.generation += 1;
    }

    /// Removes the retired buffers that are free and whose last frame is
    /// `done`; returns them, for the caller to destroy.
    pub fn collect(&mut self, mut done: impl FnMut(&F) -> bool) -> Vec<BufferId> {
        let generation = self.generation;
        let mut gone = Vec::new();
        self.entries.retain(|e| {
            let dead = e.id.generation != generation
                && e.state == BufState::Free
                && e.last_frame.as_ref().is_none_or(&mut done);
            if dead {
                gone.push(e.id);
            }
            !dead
        });
        gone
    }

    /// Whether any buffer of `generation` is still tracked.
    pub fn has_generation(&self, generation: u32) -> bool {
        self.entries.iter().any(|e| e.id.generation == generation)
    }

    #[cfg(test)]
    pub fn state(&self, id: BufferId) -> Option<BufState> {
        self.entries.iter().find(|e| e.id == id).map(|e| e.state)
    }

    fn entry(&mut self, id: BufferId) -> Option<&mut Entry<F>> {
        self.entries.iter_mut().find(|e| e.id == id)
    }
}

/// What the feedback settled: the DRM format and how to lay images out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub drm_format: u32,
    pub layout: DmabufLayout,
}

/// The Wayland half of the dmabuf path, which exists whatever path frames
/// take (sctk's handler needs the state): the bound global, the surface's
/// feedback, and the format table cached because a compositor may not
/// resend it with later feedback.
pub struct DmabufLink {
    pub state: DmabufState,
    feedback: Option<ZwpLinuxDmabufFeedbackV1>,
    cache: FeedbackCache,
    /// The dmabuf path was chosen (`choose`), and whether `--present dmabuf` asked for it.
    pub wanted: bool,
    pub required: bool,
    /// The last negotiation, once feedback came; the reason it failed otherwise.
    pub negotiated: Option<Result<Negotiated, String>>,
    /// The compositor refused a buffer (`failed`).
    pub refused: bool,
}

impl DmabufLink {
    pub fn new(globals: &GlobalList, qh: &QueueHandle<App>, wanted: bool, required: bool) -> DmabufLink {
        DmabufLink {
            state: DmabufState::new(globals, qh),
            feedback: None,
            cache: FeedbackCache::default(),
            wanted,
            required,
            negotiated: None,
            refused: false,
        }
    }

    /// Settles format and layout for `gpu` from the last feedback.
    fn negotiate(&self, gpu: &Gpu) -> Result<Negotiated, String> {
        let info = gpu.info();
        let device_modifiers: Vec<u64> = gpu.drm_modifiers(BGRA_FORMAT).iter().map(|m| m.modifier).collect();
        negotiate(self.cache.main, &self.cache.tranches, info.drm, &info.name, &device_modifiers)
    }
}

/// What the feedback said, with the format table kept across feedback that
/// does not resend it.
#[derive(Default)]
struct FeedbackCache {
    table: Vec<FormatModifier>,
    /// The compositor's main device, and each tranche's target device with
    /// its formats, in preference order.
    main: Option<(u32, u32)>,
    tranches: Vec<((u32, u32), Vec<FormatModifier>)>,
}

impl FeedbackCache {
    fn take(&mut self, feedback: &DmabufFeedback) {
        let table = feedback.format_table();
        if !table.is_empty() {
            self.table = table.iter().map(|f| FormatModifier { format: f.format, modifier: f.modifier }).collect();
        }
        self.main = parse_dev(&feedback.main_device().to_ne_bytes()).ok();
        self.tranches = feedback
            .tranches()
            .iter()
            .filter_map(|t| {
                let device = parse_dev(&t.device.to_ne_bytes()).ok()?;
                let indices: Vec<u8> = t.formats.iter().flat_map(|i| i.to_ne_bytes()).collect();
                match tranche_formats(&self.table, &indices) {
                    Ok(formats) => Some((device, formats)),
                    Err(e) => {
                        tracing::warn!("dmabuf feedback: {e}: tranche ignored");
                        None
                    }
                }
            })
            .collect();
    }
}

/// The format and layout for a device with DRM nodes `nodes` and
/// `device_modifiers`, from the compositor's main device and tranches.
fn negotiate(
    main: Option<(u32, u32)>,
    tranches: &[((u32, u32), Vec<FormatModifier>)],
    nodes: Option<clavm_render::gpu::DrmNodes>,
    name: &str,
    device_modifiers: &[u64],
) -> Result<Negotiated, String> {
    let main = main.ok_or("the compositor's feedback names no main device")?;
    let nodes = nodes.ok_or_else(|| format!("{name} names no DRM node"))?;
    let ours = [DrmNodes { index: 0, primary: nodes.primary, render: nodes.render }];
    if match_device(main, &ours).is_none() {
        return Err(format!(
            "the compositor composites on device {}:{}, not on {name} (render node {:?})",
            main.0, main.1, nodes.render
        ));
    }
    // Tranches for our device, in the compositor's preference order; an
    // opaque format before one with alpha.
    for (_, formats) in tranches.iter().filter(|(d, _)| match_device(*d, &ours).is_some()) {
        for drm_format in [DRM_FORMAT_XRGB8888, DRM_FORMAT_ARGB8888] {
            let common = common_modifiers(drm_format, formats, device_modifiers);
            if !common.is_empty() {
                return Ok(Negotiated { drm_format, layout: DmabufLayout::Modifiers(common) });
            }
            if let Some(modifier) = choose_modifier(drm_format, formats, device_modifiers) {
                return Ok(Negotiated { drm_format, layout: DmabufLayout::Linear { modifier } });
            }
        }
    }
    Err("the compositor offers no XRGB8888/ARGB8888 layout the device can draw into".into())
}

/// Before the first frame, when dmabuf was chosen: asks for the surface's
/// feedback, waits for it (briefly), and settles the negotiation. Under
/// `auto` a failure means shared memory with the reason in the status bar;
/// under `--present dmabuf` it is an error.
pub fn settle(event_loop: &mut EventLoop<'static, App>, app: &mut App) -> anyhow::Result<()> {
    if !app.dmabuf.wanted {
        return Ok(());
    }
    let surface = app.window.wl_surface().clone();
    match app.dmabuf.state.get_surface_feedback(&surface, &app.qh) {
        Ok(f) => app.dmabuf.feedback = Some(f),
        Err(e) => app.dmabuf.negotiated = Some(Err(format!("no surface feedback: {e}"))),
    }
    let start = Instant::now();
    while app.dmabuf.negotiated.is_none() && start.elapsed() < FEEDBACK_WAIT {
        event_loop.dispatch(Some(Duration::from_millis(50)), app).context("waiting for the dmabuf feedback")?;
    }
    let outcome = app.dmabuf.negotiated.clone().unwrap_or_else(|| Err("the compositor sent no dmabuf feedback".into()));
    match outcome {
        Ok(n) => {
            tracing::info!("presentation: dmabuf, format {:#x}, {:?}", n.drm_format, n.layout);
            Ok(())
        }
        Err(why) => app.dmabuf_unusable(&why),
    }
}

/// One size's images and their wl_buffers.
struct BufferSet {
    generation: u32,
    images: DmabufImages,
    buffers: Vec<wl_buffer::WlBuffer>,
}

/// Presenting through the dmabuf swapchain.
pub struct DmabufPresenter {
    ring: BufferRing<FrameTicket>,
    sets: Vec<BufferSet>,
    negotiated: Negotiated,
    size: (u32, u32),
    /// The buffer acquired for the frame being drawn.
    current: Option<BufferId>,
    /// A frame was skipped because every buffer was held: a release wakes it.
    pub starved: bool,
}

impl DmabufPresenter {
    pub fn new(gpu: &Arc<Gpu>, negotiated: Negotiated, width: u32, height: u32) -> anyhow::Result<DmabufPresenter> {
        let images = DmabufImages::new(gpu, width, height, BGRA_FORMAT, &negotiated.layout)
            .context("making the dmabuf images")?;
        Ok(DmabufPresenter {
            ring: BufferRing::new(MAX_BUFFERS),
            sets: vec![BufferSet { generation: 0, images, buffers: Vec::new() }],
            negotiated,
            size: (width, height),
            current: None,
            starved: false,
        })
    }

    /// A new size: a new set; the old one lives until its buffers are
    /// released and their frames done (no wait here).
    pub fn resize(&mut self, gpu: &Arc<Gpu>, width: u32, height: u32) -> anyhow::Result<()> {
        if (width, height) == self.size {
            return Ok(());
        }
        let images = DmabufImages::new(gpu, width, height, BGRA_FORMAT, &self.negotiated.layout)
            .context("making the dmabuf images")?;
        self.ring.resize();
        self.sets.push(BufferSet { generation: self.ring.generation(), images, buffers: Vec::new() });
        self.size = (width, height);
        Ok(())
    }

    /// New feedback settled differently: the next frames use a new set.
    pub fn renegotiate(&mut self, gpu: &Arc<Gpu>, negotiated: Negotiated) -> anyhow::Result<()> {
        if negotiated == self.negotiated {
            return Ok(());
        }
        self.negotiated = negotiated;
        let (w, h) = self.size;
        self.size = (0, 0);
        self.resize(gpu, w, h)
    }

    fn set(&self, generation: u32) -> Option<&BufferSet> {
        self.sets.iter().find(|s| s.generation == generation)
    }

    /// Picks the buffer for the next frame (destroying retired buffers that
    /// are done first); false when all are held at the cap, so the frame
    /// waits for a release.
    pub fn acquire(
        &mut self,
        renderer: &mut Renderer,
        dmabuf: &DmabufState,
        qh: &QueueHandle<App>,
        recording: bool,
    ) -> anyhow::Result<bool> {
        self.collect(renderer)?;
        let generation = self.ring.generation();
        let id = match self.ring.acquire() {
            Acquired::Buffer(id, last) => {
                if let Some(t) = last {
                    // Almost always long done: the compositor released it.
                    renderer.finish(t)?;
                }
                id
            }
            Acquired::Grow => {
                let set = self.sets.iter_mut().find(|s| s.generation == generation).expect("the current set exists");
                let index = set.images.grow().context("exporting a dmabuf")?;
                let buffer = wrap(&set.images, index, self.negotiated.drm_format, dmabuf, qh)?;
                set.buffers.push(buffer);
                let id = self.ring.added();
                debug_assert_eq!(id.index, index);
                tracing::debug!("dmabuf swapchain: {} buffers at {:?}", self.ring.live(), self.size);
                id
            }
            Acquired::Busy => {
                self.starved = true;
                return Ok(false);
            }
        };
        self.starved = false;
        let set = self.sets.iter_mut().find(|s| s.generation == generation).expect("the current set exists");
        let prepared = set.images.set_readback(recording).and_then(|()| set.images.prepare(id.index));
        if let Err(e) = prepared {
            self.ring.abandon(id);
            return Err(e).context("preparing a dmabuf for drawing");
        }
        self.current = Some(id);
        Ok(true)
    }

    /// The acquired buffer as the frame's target.
    pub fn target(&self) -> DmabufFrame<'_> {
        let id = self.current.expect("acquire before drawing");
        self.set(id.generation).expect("the acquired buffer's set lives").images.frame(id.index)
    }

    /// The frame was not drawn (it failed): the acquired buffer is free again.
    pub fn abandon(&mut self) {
        if let Some(id) = self.current.take() {
            self.ring.abandon(id);
        }
    }

    /// After the frame's submit: attaches its completion to the dmabuf (or
    /// waits for it on the CPU where the kernel cannot), then attaches the
    /// buffer to `surface` (the caller damages and commits).
    pub fn present(&mut self, renderer: &mut Renderer, surface: &WlSurface, ticket: FrameTicket) -> anyhow::Result<()> {
        let id = self.current.take().context("present without a drawn buffer")?;
        let set = self.set(id.generation).expect("the acquired buffer's set lives");
        if set.images.publish(id.index, ticket.slot)? {
            renderer.finish(ticket)?;
        }
        surface.attach(Some(&set.buffers[id.index]), 0, 0);
        self.ring.presented(id, ticket);
        Ok(())
    }

    /// The pixels of slot `slot`'s finished frame, when recording.
    pub fn pixels(&self, slot: usize) -> Option<&[u8]> {
        self.set(self.ring.generation())?.images.pixels(slot)
    }

    /// The compositor released `buffer` (if it is one of ours).
    pub fn released(&mut self, buffer: &wl_buffer::WlBuffer) -> bool {
        for set in &self.sets {
            if let Some(index) = set.buffers.iter().position(|b| b == buffer) {
                self.ring.released(BufferId { generation: set.generation, index });
                return true;
            }
        }
        false
    }

    /// Destroys retired buffers that are released and done on the GPU, and
    /// a retired set once none of its buffers is left.
    fn collect(&mut self, renderer: &Renderer) -> anyhow::Result<()> {
        let mut failed = None;
        let gone = self.ring.collect(|t| match renderer.is_done(*t) {
            Ok(done) => done,
            Err(e) => {
                failed = Some(e);
                false
            }
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        for id in gone {
            if let Some(set) = self.sets.iter().find(|s| s.generation == id.generation) {
                set.buffers[id.index].destroy();
            }
        }
        let current = self.ring.generation();
        let ring = &self.ring;
        self.sets.retain(|s| s.generation == current || ring.has_generation(s.generation));
        Ok(())
    }
}

/// Wraps image `index` of `images` in a wl_buffer (one `add` per plane).
fn wrap(
    images: &DmabufImages,
    index: usize,
    drm_format: u32,
    dmabuf: &DmabufState,
    qh: &QueueHandle<App>,
) -> anyhow::Result<wl_buffer::WlBuffer> {
    let params = dmabuf.create_params(qh).context("the compositor's linux-dmabuf is gone")?;
    let modifier = images.modifier(index);
    for (plane, p) in images.planes(index).iter().enumerate() {
        let (offset, stride) = (u32::try_from(p.offset)?, u32::try_from(p.stride)?);
        params.add(images.fd(index), plane as u32, offset, stride, modifier);
    }
    let extent = images.extent();
    let (buffer, params) = params.create_immed(
        extent.width as i32,
        extent.height as i32,
        drm_format,
        zwp_linux_buffer_params_v1::Flags::empty(),
        qh,
    );
    params.destroy();
    Ok(buffer)
}

impl App {
    /// The dmabuf path cannot be used: an error under `--present dmabuf`,
    /// shared memory with the reason shown under `auto`.
    pub(super) fn dmabuf_unusable(&mut self, why: &str) -> anyhow::Result<()> {
        if self.dmabuf.required {
            anyhow::bail!("--present dmabuf: {why}; use --present shm or auto");
        }
        tracing::warn!("presentation: shm, because {why}");
        self.dmabuf.wanted = false;
        self.studio.status.presentation = format!("shm: {why}");
        Ok(())
    }
}

impl DmabufHandler for App {
    fn dmabuf_state(&mut self) -> &mut DmabufState {
        &mut self.dmabuf.state
    }

    fn dmabuf_feedback(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &ZwpLinuxDmabufFeedbackV1,
        feedback: DmabufFeedback,
    ) {
        self.dmabuf.cache.take(&feedback);
        let negotiated = self.dmabuf.negotiate(&self.gpu);
        if let (Ok(n), Some(super::present::Presenter::Dmabuf(p))) = (&negotiated, &mut self.presenter) {
            if let Err(e) = p.renegotiate(&self.gpu, n.clone()) {
                self.studio.status.last_error = format!("dmabuf: {e:#}");
            }
            self.needs_redraw = true;
        }
        self.dmabuf.negotiated = Some(negotiated);
    }

    fn created(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1,
        _: wl_buffer::WlBuffer,
    ) {
        // Buffers are made with create_immed: no `created` comes.
    }

    fn failed(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1,
    ) {
        self.dmabuf.refused = true;
        self.needs_redraw = true;
    }

    fn released(&mut self, _: &Connection, _: &QueueHandle<Self>, buffer: &wl_buffer::WlBuffer) {
        if let Some(super::present::Presenter::Dmabuf(p)) = &mut self.presenter {
            if p.released(buffer) && p.starved {
                // The skipped frame can be drawn now.
                self.frame_pending = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(ring: &mut BufferRing<u64>) -> BufferId {
        match ring.acquire() {
            Acquired::Buffer(id, _) => id,
            Acquired::Grow => ring.added(),
            Acquired::Busy => panic!("busy"),
        }
    }

    #[test]
    fn buffers_are_reused_in_release_order_never_while_held() {
        let mut ring = BufferRing::new(4);
        let a = take(&mut ring);
        ring.presented(a, 1);
        let b = take(&mut ring);
        assert_ne!(a, b, "a held buffer is not drawn into");
        ring.presented(b, 2);
        // The compositor releases b before a.
        ring.released(b);
        assert_eq!(ring.acquire(), Acquired::Buffer(b, Some(2)));
        ring.presented(b, 3);
        ring.released(a);
        assert_eq!(ring.acquire(), Acquired::Buffer(a, Some(1)));
        assert_eq!(ring.state(b), Some(BufState::Held));
        // A release for a buffer not held (a duplicate) changes nothing.
        ring.released(a);
        assert_eq!(ring.state(a), Some(BufState::Drawing));
    }

    #[test]
    fn all_busy_grows_up_to_the_cap_then_waits() {
        let mut ring = BufferRing::new(3);
        for frame in 0..3 {
            assert_eq!(ring.acquire(), Acquired::Grow);
            let id = ring.added();
            assert_eq!(id.index, frame as usize);
            ring.presented(id, frame);
        }
        assert_eq!(ring.acquire(), Acquired::Busy);
        assert_eq!(ring.live(), 3);
        ring.released(BufferId { generation: 0, index: 1 });
        assert_eq!(ring.acquire(), Acquired::Buffer(BufferId { generation: 0, index: 1 }, Some(1)));
    }

    #[test]
    fn a_resize_retires_the_old_set_until_released_and_done() {
        let mut ring = BufferRing::new(4);
        let old_a = take(&mut ring);
        ring.presented(old_a, 10);
        let old_b = take(&mut ring);
        ring.presented(old_b, 11);
        ring.released(old_a);
        ring.resize();
        // The new set starts empty: a free old buffer is not drawn into.
        assert_eq!(ring.acquire(), Acquired::Grow);
        let new = ring.added();
        assert_eq!(new, BufferId { generation: 1, index: 0 });
        ring.presented(new, 12);
        // old_a is released but its frame is still on the GPU; old_b is held.
        assert!(ring.collect(|&f| f != 10).is_empty());
        assert!(ring.has_generation(0));
        assert_eq!(ring.collect(|_| true), vec![old_a]);
        ring.released(old_b);
        assert_eq!(ring.collect(|_| true), vec![old_b]);
        assert!(!ring.has_generation(0));
        // The current set is never collected.
        ring.released(new);
        assert!(ring.collect(|_| true).is_empty());
        assert_eq!(ring.state(new), Some(BufState::Free));
    }

    #[test]
    fn an_abandoned_frame_frees_its_buffer() {
        let mut ring: BufferRing<u64> = BufferRing::new(2);
        let a = take(&mut ring);
        ring.abandon(a);
        assert_eq!(ring.acquire(), Acquired::Buffer(a, None));
        ring.presented(a, 1);
        ring.abandon(a); // not drawing: ignored
        assert_eq!(ring.state(a), Some(BufState::Held));
    }

    #[test]
    fn feedback_without_a_table_keeps_the_cached_one() {
        let mut cache = FeedbackCache {
            table: vec![FormatModifier { format: DRM_FORMAT_XRGB8888, modifier: 0 }],
            ..Default::default()
        };
        cache.take(&DmabufFeedback::default());
        assert_eq!(cache.table.len(), 1);
        assert_eq!(cache.main, Some((0, 0)));
    }

    #[test]
    fn negotiation_picks_our_tranche_an_explicit_modifier_or_linear_and_says_why_not() {
        use super::super::dmabuf::{DRM_FORMAT_MOD_INVALID, DRM_FORMAT_MOD_LINEAR};
        let gpu = Some(clavm_render::gpu::DrmNodes { primary: Some((226, 0)), render: Some((226, 128)) });
        let tiled = 0x0100_0000_0000_0001u64;
        let fm = |format, modifier| FormatModifier { format, modifier };
        let other_gpu = ((226, 129), vec![fm(DRM_FORMAT_XRGB8888, tiled)]);
        let ours = ((226, 128), vec![fm(DRM_FORMAT_ARGB8888, tiled), fm(DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR)]);
        let tranches = vec![other_gpu.clone(), ours];
        let n = negotiate(Some((226, 128)), &tranches, gpu, "gpu", &[tiled]).unwrap();
        // XRGB has only LINEAR in our tranche; ARGB has the tiled one, but the
        // opaque format comes first.
        assert_eq!(n, Negotiated { drm_format: DRM_FORMAT_XRGB8888, layout: DmabufLayout::Linear { modifier: 0 } });
        let implicit = vec![((226, 0), vec![fm(DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_INVALID)])];
        let n = negotiate(Some((226, 0)), &implicit, gpu, "gpu", &[]).unwrap();
        assert_eq!(n.layout, DmabufLayout::Linear { modifier: DRM_FORMAT_MOD_INVALID });
        let explicit = vec![((226, 128), vec![fm(DRM_FORMAT_XRGB8888, tiled)])];
        let n = negotiate(Some((226, 128)), &explicit, gpu, "gpu", &[tiled, 0]).unwrap();
        assert_eq!(n.layout, DmabufLayout::Modifiers(vec![tiled]));
        let e = negotiate(Some((226, 129)), &tranches, gpu, "gpu", &[tiled]).unwrap_err();
        assert!(e.contains("226:129"), "{e}");
        assert!(negotiate(Some((226, 128)), &[other_gpu], gpu, "gpu", &[tiled]).unwrap_err().contains("no XRGB8888"));
        assert!(negotiate(Some((226, 128)), &tranches, None, "lavapipe", &[]).unwrap_err().contains("no DRM node"));
    }
}
