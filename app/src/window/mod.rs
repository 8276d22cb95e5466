//! The desktop app's window: Wayland through smithay-client-toolkit (no
//! winit, no toolkit), frames drawn by our renderer (egui and the visuals in
//! one pass) and presented through shared memory (`shm.rs`); the live engine
//! plays underneath. The loop sleeps until something happens: a Wayland
//! event, an engine event, a due autosave; it draws on the compositor's
//! frame callbacks while audio moves the visuals, and not at all when idle.

mod autosave;
mod bar_motion;
mod dmabuf;
mod handlers;
mod keys;
mod present;
mod recorder;
mod scale;
mod shm;
mod stats;
mod swapchain;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clavm_audio::live::LiveEvent;
use clavm_audio::PatchSource;
use clavm_render::analysis::Analysis;
use clavm_render::draw::Canvas;
use clavm_render::gpu::{Gpu, GpuChoice, GpuOptions};
use clavm_render::ui::UiFrame;
use clavm_render::Renderer;
use smithay_client_toolkit::compositor::CompositorState;
use smithay_client_toolkit::data_device_manager::data_device::DataDevice;
use smithay_client_toolkit::data_device_manager::DataDeviceManagerState;
use smithay_client_toolkit::output::OutputState;
use smithay_client_toolkit::reexports::calloop::channel as loop_channel;
use smithay_client_toolkit::reexports::calloop::EventLoop;
use smithay_client_toolkit::reexports::calloop_wayland_source::WaylandSource;
use smithay_client_toolkit::registry::RegistryState;
use smithay_client_toolkit::seat::keyboard::Modifiers;
use smithay_client_toolkit::seat::SeatState;
use smithay_client_toolkit::shell::xdg::window::{Window, WindowDecorations};
use smithay_client_toolkit::shell::xdg::XdgShell;
use smithay_client_toolkit::shell::WaylandSurface;
use smithay_client_toolkit::shm::Shm;
use wayland_client::globals::registry_queue_init;
use wayland_client::protocol::{wl_keyboard, wl_pointer};
use wayland_client::{Connection, QueueHandle};

use crate::live::{AudioOptions, LiveSession};
use crate::picture::live_feed::TapFeed;
use crate::ui::{Action, Diagnostic, Editor, Studio};

pub use dmabuf::PresentChoice;

/// What the window can be asked for on the command line.
#[derive(Clone, Debug, clap::Args)]
pub struct WindowArgs {
    /// How frames reach the compositor: dmabuf (zero-copy, needs a GPU that
    /// exports them), shm (a copy through shared memory), or auto.
    #[arg(long, value_enum, default_value_t = PresentChoice::Auto)]
    pub present: PresentChoice,
    /// Vulkan device: auto (a GPU first, else lavapipe), an index, or part of a name.
    #[arg(long, default_value = "auto")]
    pub gpu: GpuChoice,
    #[command(flatten)]
    pub audio: AudioOptions,
    /// Record the window and its sound to this video from the start (.mp4, .mkv or .mov).
    #[arg(long, value_name = "OUT.mp4")]
    pub record: Option<PathBuf>,
    /// Start watching the bars' protocol simulator plug and unplug bars (the bars pane; its menu stops it).
    #[arg(long)]
    pub simulate_bars: bool,
}

/// Why the window could not open, as the caller must act on it.
#[derive(Debug)]
pub enum OpenError {
    /// No Wayland display: say so and offer the headless commands.
    NoDisplay(String),
    Other(anyhow::Error),
}

/// Files dropped or pasted text arriving from a reader thread.
enum Incoming {
    Dropped(Result<Vec<u8>, String>),
    /// A dropped `.dsp` file, translated by the Faust compiler on a thread.
    Faust(Result<crate::faust::Translated, String>),
    Pasted {
        text: String,
        first_try: bool,
    },
}

pub struct App {
    // Wayland.
    registry: RegistryState,
    seats: SeatState,
    outputs: OutputState,
    _compositor: CompositorState,
    shm: Shm,
    _xdg: XdgShell,
    data_devices_state: Option<DataDeviceManagerState>,
    data_devices: Vec<DataDevice>,
    window: Window,
    qh: QueueHandle<App>,
    keyboard: Option<wl_keyboard::WlKeyboard>,
    /// Keyboards whose capability went away (see `remove_capability`).
    old_keyboards: Vec<wl_keyboard::WlKeyboard>,
    pointer: Option<wl_pointer::WlPointer>,
    incoming: loop_channel::Sender<Incoming>,
    /// The folder of the last Faust program dropped (its generated C and
    /// wrapper, which the editor shows), removed when the next replaces it.
    faust: Option<crate::faust::Translated>,
    loop_handle: smithay_client_toolkit::reexports::calloop::LoopHandle<'static, App>,
    /// What we offer as the clipboard, while we own it.
    clipboard: Option<(smithay_client_toolkit::data_device_manager::data_source::CopyPasteSource, String)>,
    // Window state.
    /// Logical size (surface coordinates).
    size: (u32, u32),
    scale: scale::Scale,
    /// Fractional scaling, when the compositor offers it (else integer scales).
    fractional: Option<scale::Fractional>,
    configured: bool,
    fullscreen: bool,
    maximized: bool,
    exit: Option<String>,
    frame_pending: bool,
    needs_redraw: bool,
    last_serial: u32,
    // egui.
    egui: egui::Context,
    events: Vec<egui::Event>,
    modifiers: Modifiers,
    // Drawing.
    gpu: Arc<Gpu>,
    renderer: Renderer,
    presenter: Option<present::Presenter>,
    /// The linux-dmabuf global and the surface's feedback (see `swapchain.rs`).
    dmabuf: swapchain::DmabufLink,
    canvas: Canvas,
    analysis: Analysis,
    // Audio.
    session: LiveSession,
    /// Sample numbers taken by `--sample` (a dropped sound file gets another).
    cli_samples: Vec<usize>,
    feed: Option<TapFeed>,
    playing: bool,
    submitted: Option<(clavm_audio::live::SubmitId, String)>,
    // Interface.
    studio: Studio,
    autosave: autosave::Autosave,
    frame_times: std::collections::VecDeque<Instant>,
    stats: stats::Stats,
    recorder: Option<recorder::Recorder>,
    /// The bar the pointer holds, and each bar's touch from the tree file
    /// (what a released bar returns to).
    touched_bar: Option<usize>,
    bar_gates: Vec<bool>,
    /// The tree the patch plays and the bars pane shows (edited from the pane).
    bar_tree: clavm_bars::BarTree,
    /// The protocol simulator when watched: its network, when the watch
    /// started, and the root's last words.
    bar_sim: Option<(clavm_bars::sim::Sim, Instant, Vec<u16>)>,
    /// A tree change in motion (see `bar_motion.rs`).
    bar_motion: Option<bar_motion::BarMotion>,
    /// Where the next recording goes (`--record`, or one named by the time).
    record_path: Option<PathBuf>,
    /// egui's clock starts here (its animations need time to advance).
    started: Instant,
}

/// Opens the window on `patch` (or the default patch) and runs until it closes.
pub fn run(patch: Option<PathBuf>, args: WindowArgs) -> Result<ExitCode, OpenError> {
    let conn = Connection::connect_to_env().map_err(|e| OpenError::NoDisplay(e.to_string()))?;
    let (text, path) = match &patch {
        Some(p) => match read_patch_file(p) {
            Ok(t) => (t, Some(p.clone())),
            Err(e) => return Err(OpenError::Other(e)),
        },
        None => (crate::commands::DEFAULT_PATCH.to_string(), None),
    };
    run_on(conn, text, path, args).map_err(OpenError::Other)
}

/// Reads a patch for the editor: text, at most 1 MiB (a performer's patch
/// is kilobytes; a 50 MB file is a mistake, not a patch).
pub fn read_patch_file(p: &Path) -> anyhow::Result<String> {
    const MAX: u64 = 1 << 20;
    let meta = std::fs::metadata(p).with_context(|| format!("cannot open {}", p.display()))?;
    anyhow::ensure!(meta.is_file(), "{} is not a file", p.display());
    anyhow::ensure!(meta.len() <= MAX, "{} is {} bytes: a patch is at most 1 MiB", p.display(), meta.len());
    let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{} is not text (not UTF-8): not a C patch", p.display()))
}

fn run_on(conn: Connection, text: String, path: Option<PathBuf>, args: WindowArgs) -> anyhow::Result<ExitCode> {
    let (globals, queue) = registry_queue_init(&conn).context("reading the compositor's globals")?;
    let qh = queue.handle();
    let mut event_loop: EventLoop<App> = EventLoop::try_new().context("creating the event loop")?;
    WaylandSource::new(conn.clone(), queue)
        .insert(event_loop.handle())
        .map_err(|e| anyhow::anyhow!("watching the Wayland connection: {e}"))?;
    let compositor = CompositorState::bind(&globals, &qh).context("the compositor offers no wl_compositor")?;
    let xdg = XdgShell::bind(&globals, &qh)
        .context("the compositor offers no xdg_wm_base: it cannot show application windows")?;
    let shm = Shm::bind(&globals, &qh).context("the compositor offers no wl_shm: no buffer type this app can use")?;
    let dmabuf_global = dmabuf::offered(&globals);
    let data_devices_state = DataDeviceManagerState::bind(&globals, &qh).ok();

    let gpu = Gpu::new(&GpuOptions { choice: args.gpu.clone(), ..Default::default() })
        .context("opening the Vulkan device")?;
    let (present_path, present_reason) = dmabuf::choose(args.present, dmabuf_global, gpu.info())
        .map_err(|why| anyhow::anyhow!("--present dmabuf: {why}; use --present shm or auto"))?;
    tracing::info!("presentation: {present_reason}");
    let wants_dmabuf = present_path == dmabuf::PresentPath::Dmabuf;
    let dmabuf_link = swapchain::DmabufLink::new(&globals, &qh, wants_dmabuf, args.present == PresentChoice::Dmabuf);

    let surface = compositor.create_surface(&qh);
    let fractional = scale::Fractional::bind(&globals, &qh, &surface);
    tracing::info!(
        "scaling: {}",
        if fractional.as_ref().is_some_and(|f| f.forced.is_some()) {
            "fractional, forced by CLAVM_FRACTIONAL_SCALE (wp_viewporter)"
        } else if fractional.is_some() {
            "fractional (wp_fractional_scale_v1 + wp_viewporter)"
        } else {
            "integer buffer scales"
        }
    );
    let window = xdg.create_window(surface, WindowDecorations::RequestServer, &qh);
    let editor = Editor::new(text.clone(), path.clone());
    window.set_title(format!("{} — CLAVM", editor.name()));
    window.set_app_id("clavm");
    window.set_min_size(Some((480, 320)));
    window.commit();

    let session = LiveSession::start(&args.audio, true).context("starting the live engine")?;
    // Live inputs show in the meters and the scope after the outputs (and a recording carries them).
    let with_inputs = session.input_channels > 0;
    let feed = TapFeed::open(&session.name, Duration::from_secs(2), with_inputs).ok();
    let analysis = Analysis::new(session.rate as f64, args.audio.channels as usize + session.input_channels);
    let (autosave, offered) = autosave::Autosave::open(autosave::file_for(path.as_deref()), &text);
    let mut studio = Studio::new(editor);
    let bar_tree = match &args.audio.bars {
        Some(b) => crate::commands::load_bar_tree(b)?,
        None => clavm_bars::BarTree::empty(),
    };
    if args.audio.bars.is_some() {
        studio.set_bars(Some(crate::commands::bar_drawing(&bar_tree)));
    }
    studio.offered_autosave = offered;
    studio.status.output = session.output_name.clone();
    studio.status.meter = session.meter;
    studio.status.link = session.link;
    studio.bpm = args.audio.tempo.bpm.get();
    studio.quant = args.audio.quant.beats();
    studio.status.presentation = present_reason.clone();
    if session.output_name.starts_with("no audio device") {
        studio.status.last_error = session.output_name.clone();
    }

    let (incoming_tx, incoming_rx) = loop_channel::channel::<Incoming>();
    event_loop
        .handle()
        .insert_source(incoming_rx, |event, _, app: &mut App| {
            if let loop_channel::Event::Msg(m) = event {
                app.on_incoming(m);
            }
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Engine events arrive on their own thread's channel; a forwarder wakes the loop.
    let (engine_tx, engine_rx) = loop_channel::channel::<LiveEvent>();
    event_loop
        .handle()
        .insert_source(engine_rx, |event, _, app: &mut App| {
            if let loop_channel::Event::Msg(e) = event {
                app.on_engine_event(e);
            }
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let egui = egui::Context::default();
    egui.all_styles_mut(|s| s.visuals.text_cursor.blink = false);
    let mut app = App {
        registry: RegistryState::new(&globals),
        seats: SeatState::new(&globals, &qh),
        outputs: OutputState::new(&globals, &qh),
        _compositor: compositor,
        shm,
        _xdg: xdg,
        data_devices_state,
        data_devices: Vec::new(),
        window,
        qh: qh.clone(),
        keyboard: None,
        old_keyboards: Vec::new(),
        pointer: None,
        incoming: incoming_tx,
        faust: None,
        loop_handle: event_loop.handle(),
        clipboard: None,
        size: (1280, 800),
        scale: fractional.as_ref().and_then(|f| f.forced).map_or(scale::Scale::default(), scale::Scale::Fractional),
        fractional,
        configured: false,
        fullscreen: false,
        maximized: false,
        exit: None,
        frame_pending: false,
        needs_redraw: true,
        last_serial: 0,
        egui,
        events: Vec::new(),
        modifiers: Modifiers::default(),
        renderer: Renderer::new(&gpu)?,
        gpu,
        presenter: None,
        dmabuf: dmabuf_link,
        canvas: Canvas::new(1, 1),
        analysis,
        session,
        cli_samples: args.audio.samples.samples.iter().map(|s| s.n).collect(),
        feed,
        playing: false,
        submitted: None,
        studio,
        autosave,
        frame_times: Default::default(),
        stats: stats::Stats::default(),
        recorder: None,
        touched_bar: None,
        bar_gates: crate::commands::bar_notes(&bar_tree).into_iter().map(|(_, g)| g).collect(),
        bar_tree,
        bar_sim: None,
        bar_motion: None,
        record_path: args.record.clone(),
        started: Instant::now(),
    };
    // The dmabuf path settles on the surface's feedback before the first frame.
    swapchain::settle(&mut event_loop, &mut app)?;
    // sctk calls `new_seat` only for seats announced later: the seats there
    // at start get their data devices (drops, clipboard) here.
    if let Some(m) = &app.data_devices_state {
        let devices: Vec<DataDevice> = app.seats.seats().map(|seat| m.get_data_device(&qh, &seat)).collect();
        app.data_devices.extend(devices);
    }
    let record_at_start = args.record.is_some();
    app.forward_engine_events(engine_tx);
    if args.simulate_bars {
        app.studio.set_bars(Some(crate::commands::bar_drawing(&app.bar_tree)));
        app.act(Action::ToggleBarSim);
    }
    // The patch plays from the start, as `clavm play` would.
    app.submit();

    let started = Instant::now();
    let mut record_pending = record_at_start;
    let exit_after = std::env::var_os("CLAVM_EXIT_AFTER").and_then(|s| s.to_str()?.parse::<f64>().ok());
    loop {
        // The visuals move while sound does; silence (or no version playing)
        // leaves them still, and then nothing is drawn: a static window costs
        // no CPU beyond a glance at the audio tap four times a second.
        let animating = (app.playing && app.audible() || app.bar_sim.is_some()) && app.configured;
        let timeout = match (app.needs_redraw || animating, app.frame_pending, app.autosave.due_in()) {
            // Waiting for the compositor's frame callback (a Wayland event wakes us).
            (true, true, due) => due.or(Some(Duration::from_millis(250))),
            (true, false, _) => Some(Duration::ZERO),
            (false, _, due) => Some(due.unwrap_or(IDLE_POLL).min(IDLE_POLL)),
        };
        if let Err(e) = event_loop.dispatch(timeout, &mut app) {
            app.exit = Some(format!("the Wayland connection failed: {e}"));
        }
        if let Err(e) = app.autosave.tick(&app.studio.editor.text, false) {
            app.studio.status.last_error = format!("autosave failed: {e}");
        }
        if app.exit.is_some() {
            break;
        }
        app.drain_tap();
        app.step_bar_sim();
        app.step_bar_motion();
        if record_pending && app.configured && app.presenter.is_some() {
            record_pending = false;
            app.toggle_recording();
        }
        if app.configured
            && !app.frame_pending
            && (app.needs_redraw || (app.playing && app.audible()) || app.bar_sim.is_some())
        {
            if let Err(e) = app.draw() {
                app.exit = Some(format!("drawing failed: {e:#}"));
                break;
            }
        }
        if exit_after.is_some_and(|s| started.elapsed().as_secs_f64() > s) {
            app.exit = Some("CLAVM_EXIT_AFTER elapsed".into());
            break;
        }
    }
    if let Some(r) = app.recorder.take() {
        match r.stop() {
            Ok(take) => eprintln!("clavm: recorded {take}"),
            Err(e) => eprintln!("clavm: the recording failed: {e:#}"),
        }
    }
    if let Some(path) = std::env::var_os("CLAVM_STATS") {
        if let Err(e) = app.stats.write(Path::new(&path)) {
            eprintln!("clavm: cannot write the stats to {}: {e}", Path::new(&path).display());
        }
    }
    // Nothing typed is lost, whatever ended the loop.
    let saved = app.autosave.tick(&app.studio.editor.text, true);
    let autosave_path = app.autosave.path().to_path_buf();
    let reason = app.exit.take().unwrap_or_default();
    let App { session, .. } = app;
    session.shutdown();
    match reason.as_str() {
        "closed" | "CLAVM_EXIT_AFTER elapsed" => Ok(ExitCode::SUCCESS),
        other => {
            eprintln!("clavm: {other}");
            match saved {
                Ok(()) => eprintln!("clavm: the editor's text is kept in {}", autosave_path.display()),
                Err(e) => eprintln!("clavm: could not autosave the editor's text: {e}"),
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

impl App {
    /// A new scale from the compositor: the next frame is drawn at its size.
    /// Integer hints are ignored once fractional scaling is bound (it is the
    /// finer of the two and the compositor sends both).
    fn set_scale(&mut self, s: scale::Scale) {
        if matches!(s, scale::Scale::Integer(_)) && self.fractional.is_some() {
            return;
        }
        if s != self.scale {
            tracing::info!("scale {:.3}", s.factor());
            self.scale = s;
            self.needs_redraw = true;
        }
    }

    /// Audio from the tap into the visuals (and a recording's sound).
    fn drain_tap(&mut self) {
        if let Some(feed) = &mut self.feed {
            match &mut self.recorder {
                Some(r) => feed.drain_with(&mut self.analysis, |frame, at, samples| r.audio(frame, at, samples)),
                None => feed.drain(&mut self.analysis),
            };
        }
    }

    /// Starts recording the window (to `--record`'s file, or one named by the
    /// time), or stops and finishes the file.
    fn toggle_recording(&mut self) {
        if let Some(r) = self.recorder.take() {
            self.studio.status.recording = None;
            // Finishing muxes with ffmpeg (a moment); the window waits for it
            // rather than leave a half-written file behind.
            match r.stop() {
                Ok(take) => self.studio.status.notice = format!("recorded {take}"),
                Err(e) => self.studio.status.last_error = format!("the recording failed: {e:#}"),
            }
            self.record_path = None;
            return;
        }
        let path = self.record_path.clone().unwrap_or_else(|| {
            let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            PathBuf::from(format!("clavm-{secs}.mp4"))
        });
        let (w, h) = self.scale.buffer_size(self.size);
        match recorder::Recorder::start(&path, w, h, self.session.rate, self.analysis.channels()) {
            Ok(r) => {
                self.studio.status.recording = Some(r.describe());
                self.recorder = Some(r);
            }
            Err(e) => self.studio.status.last_error = format!("cannot record: {e:#}"),
        }
        self.needs_redraw = true;
    }
}

impl App {
    /// A new bar tree: the patch hears it from the next block, the pane
    /// moves to it over a quarter of a second.
    fn set_bar_tree(&mut self, tree: clavm_bars::BarTree) {
        let notes = crate::commands::bar_notes(&tree);
        self.bar_gates = notes.iter().map(|(_, g)| *g).collect();
        self.touched_bar = None;
        self.session.engine().params().set_bars(&notes);
        let old = crate::commands::bar_drawing(&self.bar_tree);
        let new = crate::commands::bar_drawing(&tree);
        self.bar_motion = Some(bar_motion::BarMotion::new(old, new));
        self.bar_tree = tree;
        self.needs_redraw = true;
    }

    /// The pane's drawing for this frame, while a change is in motion.
    fn step_bar_motion(&mut self) {
        if let Some(m) = &self.bar_motion {
            let (drawing, done) = m.at(Instant::now());
            self.studio.set_bars(Some(drawing));
            if done {
                self.bar_motion = None;
            } else {
                self.needs_redraw = true;
            }
        }
    }
}

/// How much slower than real time the watched simulator runs: a 40 ms
/// update takes a second to watch.
const SIM_SLOWDOWN: u32 = 25;

impl App {
    /// Advances the watched simulator to now; when the root's tree changed,
    /// it becomes the tree the patch plays and the pane shows.
    fn step_bar_sim(&mut self) {
        let Some((sim, since, last)) = &mut self.bar_sim else { return };
        let ps = since.elapsed().as_nanos() as i64 * 1000 / SIM_SLOWDOWN as i64;
        sim.run_for(ps);
        let words = sim.root_words();
        let bits: Vec<u16> = words.iter().map(|w| w.bits()).collect();
        if bits == *last {
            return;
        }
        *last = bits;
        match clavm_bars::wire::decode(&words, self.bar_tree.base_hz()) {
            Ok(tree) => self.set_bar_tree(tree),
            Err(e) => self.studio.status.last_error = format!("the simulated root read a bad stream: {e}"),
        }
        self.needs_redraw = true;
    }
}

/// How often a still window looks at the audio tap for sound to start.
const IDLE_POLL: Duration = Duration::from_millis(250);

impl App {
    /// Whether the visuals are moving: sound in the last seconds (the peak
    /// meter holds, then falls; the waveform scrolls for two seconds).
    fn audible(&self) -> bool {
        let m = self.analysis.meters();
        (0..self.analysis.channels()).any(|c| m.peak_db(c) > -100.0)
    }

    fn forward_engine_events(&mut self, tx: loop_channel::Sender<LiveEvent>) {
        // The engine's event queue is read by a small thread that wakes the
        // loop; it ends when the engine is gone (the channel closes).
        let events = self.session.engine.as_mut().expect("the engine runs").take_events();
        std::thread::Builder::new()
            .name("clavm-engine-events".into())
            .spawn(move || {
                while let Ok(e) = events.recv() {
                    if tx.send(e).is_err() {
                        break;
                    }
                }
            })
            .expect("spawning the engine event thread");
    }

    /// The editor's text as a patch: its file's name, and its folder (for
    /// relative `#include`s and sample pragmas).
    fn patch_source(&self) -> PatchSource {
        let path = self.studio.editor.path.as_ref();
        let name = path.map(|p| p.display().to_string()).unwrap_or_else(|| "untitled.c".into());
        let mut source = PatchSource::from_text(&name, &self.studio.editor.text);
        source.dir =
            path.and_then(|p| p.parent()).map(|d| if d.as_os_str().is_empty() { ".".into() } else { d.to_path_buf() });
        source
    }

    /// Compiles and plays the editor's text.
    fn submit(&mut self) {
        let source = self.patch_source();
        let text = source.text.clone();
        let quant = clavm_audio::clock::Quant::new(self.studio.quant).ok();
        let id = self.session.engine().submit_quantised(source, quant);
        self.submitted = Some((id, text));
        self.studio.status.compile = "compiling…".into();
        self.needs_redraw = true;
    }

    fn save(&mut self) {
        let Some(path) = self.studio.editor.path.clone() else {
            self.studio.status.last_error = "no file to save to: open one (Ctrl+O) or start clavm with a file".into();
            return;
        };
        let text = self.studio.editor.text.clone();
        let tmp = path.with_extension("c.clavm-saving");
        match std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, &path)) {
            Ok(()) => {
                self.studio.editor.saved = text.clone();
                self.autosave.saved(&text);
                self.studio.status.notice = format!("saved {}", path.display());
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                self.studio.status.last_error =
                    format!("cannot save {}: {e} (the text is kept in the autosave)", path.display());
            }
        }
    }

    fn on_engine_event(&mut self, e: LiveEvent) {
        let rate = self.session.rate as f64;
        match &e {
            LiveEvent::Compiled { submit, compile, test, warnings, .. } => {
                self.studio.status.compile = format!(
                    "compiled in {:.2} ms, tested in {:.2} ms",
                    compile.as_secs_f64() * 1e3,
                    test.as_secs_f64() * 1e3
                );
                self.studio.status.last_error.clear();
                if let Some((id, text)) = &self.submitted {
                    if id == submit {
                        let d = warnings.iter().map(diag).collect();
                        self.studio.editor.set_diagnostics(d, &text.clone());
                    }
                }
            }
            LiveEvent::Waiting { .. } => {
                let compiled = self.studio.status.compile.split(" · ").next().unwrap_or("").to_string();
                let waits = e.describe(rate);
                let waits = waits.split(" (t=").next().unwrap_or("");
                self.studio.status.compile = format!("{compiled} · {waits}");
            }
            LiveEvent::Playing { swap, .. } => {
                self.playing = true;
                self.studio.status.compile = format!(
                    "{} · playing ({:.2} ms to sound)",
                    self.studio.status.compile.split(" · ").next().unwrap_or(""),
                    swap.as_secs_f64() * 1e3
                );
            }
            LiveEvent::Rejected { submit, diagnostics, .. } => {
                self.studio.status.compile = "rejected: the previous version keeps playing".into();
                if let Some((id, text)) = &self.submitted {
                    if id == submit {
                        let d = diagnostics.iter().map(diag).collect();
                        self.studio.editor.set_diagnostics(d, &text.clone());
                    }
                }
                self.studio.status.last_error = diagnostics.first().map(|d| d.to_string()).unwrap_or_default();
            }
            LiveEvent::TestFailed { reason, .. } => {
                self.studio.status.compile = "test run failed: the previous version keeps playing".into();
                self.studio.status.last_error = reason.clone();
            }
            LiveEvent::Resumed { .. } => {
                self.studio.status.notice = e.describe(rate);
                self.studio.status.last_error.clear();
            }
            other => {
                let text = other.describe(rate);
                if matches!(
                    other,
                    LiveEvent::WorkerFailed { .. }
                        | LiveEvent::NotResumed { .. }
                        | LiveEvent::Fault { .. }
                        | LiveEvent::Error(_)
                        | LiveEvent::Protect(_)
                ) {
                    self.studio.status.last_error = text;
                } else {
                    tracing::info!("{text}");
                }
            }
        }
        self.needs_redraw = true;
    }

    fn on_incoming(&mut self, m: Incoming) {
        match m {
            // An empty read is a clipboard that changed under the request
            // (the compositor replaced its offer, as it does on a focus
            // change): pasting it would delete the selection. Read the
            // offer that replaced it, once.
            Incoming::Pasted { text, first_try: true } if text.is_empty() => self.paste(false),
            Incoming::Pasted { text, first_try: false } if text.is_empty() => {
                tracing::info!("paste: the clipboard gave nothing")
            }
            Incoming::Pasted { text, .. } => self.events.push(egui::Event::Paste(text)),
            Incoming::Dropped(Err(e)) => self.refuse(format!("drop failed: {e}")),
            Incoming::Dropped(Ok(bytes)) => {
                let list = String::from_utf8_lossy(&bytes);
                let files: Vec<PathBuf> = list
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .filter_map(uri_to_path)
                    .collect();
                match files.first() {
                    None => self.refuse("refused the drop: it holds no file".into()),
                    Some(p) if crate::faust::is_dsp(p) => self.translate_dsp(p.clone()),
                    Some(p) if clavm_audio::samples::Format::is_sound_file(p) => self.add_sample(p.clone()),
                    Some(p) if p.extension().and_then(|e| e.to_str()) != Some("c") => {
                        self.refuse(format!(
                            "refused {}: only .c patches can be dropped (and .dsp Faust programs and sound files: .wav .flac .ogg .mp3)",
                            p.display()
                        ));
                    }
                    Some(p) => self.open_file(p.clone()),
                }
            }
            Incoming::Faust(Err(e)) => self.refuse(e),
            Incoming::Faust(Ok(t)) => {
                self.open_file(t.patch.clone());
                self.faust = Some(t);
            }
        }
        self.needs_redraw = true;
    }

    /// Runs the Faust compiler on a dropped `.dsp` on a thread (it takes
    /// up to a second); its wrapper opens and plays when it is done.
    fn translate_dsp(&mut self, dsp: PathBuf) {
        self.studio.status.notice = format!("translating {} with faust...", dsp.display());
        let tx = self.incoming.clone();
        std::thread::spawn(move || {
            let _ = tx.send(Incoming::Faust(crate::faust::translate(&dsp).map_err(|e| e.to_string())));
        });
    }

    /// A dropped sound file becomes the next free sample number: a
    /// `#pragma clavm sample N "FILE"` line goes at the top of the patch (so
    /// the patch says what it plays, and saving keeps it) and the patch is
    /// submitted; the engine loads the file with the new version, and a bad
    /// file is its one error line while the old version plays on.
    fn add_sample(&mut self, file: PathBuf) {
        let source = self.patch_source();
        let pragmas = match clavm_audio::patch::pragma::sample_pragmas(&source) {
            Ok(p) => p,
            Err(d) => return self.refuse(format!("{d} (fix it before dropping a sound file)")),
        };
        let taken = |n: usize| self.cli_samples.contains(&n) || pragmas.iter().any(|p| p.n == n);
        let Some(n) = (0..clavm_audio::samples::SLOTS).find(|n| !taken(*n)) else {
            return self.refuse(format!("refused {}: all 64 sample numbers are taken", file.display()));
        };
        let quoted = file.display().to_string().replace('\\', "\\\\").replace('"', "\\\"");
        self.studio.editor.text = format!("#pragma clavm sample {n} \"{quoted}\"\n{}", self.studio.editor.text);
        self.studio.status.notice = format!("{} is sample {n}: Sample({n}, 1, trigger) plays it", file.display());
        self.submit();
    }

    /// A file that cannot be opened: said in the status bar (and the log);
    /// the editor and the sound stay as they were.
    fn refuse(&mut self, why: String) {
        tracing::warn!("{why}");
        self.studio.status.last_error = why;
        self.needs_redraw = true;
    }

    /// Loads a patch file into the editor and plays it; the old text stays
    /// in the autosave of its own file.
    fn open_file(&mut self, p: PathBuf) {
        match read_patch_file(&p) {
            Ok(text) => {
                let _ = self.autosave.tick(&self.studio.editor.text, true);
                let (autosave, offered) = autosave::Autosave::open(autosave::file_for(Some(&p)), &text);
                self.autosave = autosave;
                self.studio.offered_autosave = offered;
                self.studio.editor = Editor::new(text, Some(p.clone()));
                self.window.set_title(format!("{} — CLAVM", self.studio.editor.name()));
                self.studio.status.notice = format!("opened {}", p.display());
                self.submit();
            }
            Err(e) => self.refuse(format!("refused the file: {e:#}")),
        }
    }

    fn act(&mut self, a: Action) {
        match a {
            Action::Submit => self.submit(),
            Action::Save => {
                self.save();
                self.submit();
            }
            Action::OpenFile(p) => self.open_file(p),
            Action::Panic => {
                self.session.control.panic();
                self.studio.muted = true;
                self.studio.status.notice = "PANIC: output silenced and muted".into();
            }
            Action::SetMuted(m) => self.session.control.set_muted(m),
            Action::SetGain(g) => self.session.control.set_gain(g),
            Action::SetCrossfadeMs(ms) => self
                .session
                .engine()
                .set_crossfade(clavm_audio::Frames::from_seconds(ms as f64 / 1000.0, self.session.rate as f64)),
            Action::SetParam(n, v) => self.session.engine().set_param(clavm_audio::engine::Param::P(n, v)),
            Action::SetTempo(bpm) => match clavm_audio::clock::Bpm::new(bpm) {
                Ok(bpm) => self.session.engine().set_bpm(bpm),
                Err(e) => self.studio.status.last_error = e.to_string(),
            },
            Action::ToggleRecording => self.toggle_recording(),
            Action::ToggleMaximized => {
                if self.maximized {
                    self.window.unset_maximized();
                } else {
                    self.window.set_maximized();
                }
            }
            Action::ToggleFullscreen => {
                if self.fullscreen {
                    self.window.unset_fullscreen();
                } else {
                    self.window.set_fullscreen(None);
                }
                self.fullscreen = !self.fullscreen;
            }
            Action::TouchBar(bar) => {
                let params = self.session.engine().params();
                if let Some(old) = self.touched_bar.take() {
                    params.set_bar_gate(old, self.bar_gates.get(old).copied().unwrap_or(false));
                    self.studio.set_bar_touched(old, self.bar_gates.get(old).copied().unwrap_or(false));
                }
                if let Some(i) = bar {
                    params.set_bar_gate(i, true);
                    self.studio.set_bar_touched(i, true);
                    self.touched_bar = Some(i);
                }
                self.needs_redraw = true;
            }
            Action::ToggleBarSim => {
                self.bar_sim = match self.bar_sim.take() {
                    Some(_) => {
                        self.studio.status.notice = "simulator stopped: the tree stays as it was".into();
                        None
                    }
                    None => {
                        let plugging = clavm_bars::sim::Plugging { warmup_changes: 10, ..Default::default() };
                        let seed = self.started.elapsed().as_nanos() as u64;
                        self.studio.status.notice = format!(
                            "simulator: 12 bars plugged and unplugged at random, {SIM_SLOWDOWN}x slower than real (seed {seed})"
                        );
                        Some((clavm_bars::sim::Sim::new(12, seed, plugging), Instant::now(), Vec::new()))
                    }
                };
            }
            Action::EditBars(edit) => {
                use clavm_bars::model::edit::{add_bar, remove_bar, rotate_bar};
                let id = |i: usize| clavm_bars::BarId(i as u8);
                let result = match edit {
                    crate::ui::BarEdit::Add { parent, interval } => {
                        add_bar(&self.bar_tree, parent.map(id), interval).map(|(t, _)| t)
                    }
                    crate::ui::BarEdit::Rotate(i) => rotate_bar(&self.bar_tree, id(i)),
                    crate::ui::BarEdit::Remove(i) => remove_bar(&self.bar_tree, id(i)),
                };
                match result {
                    Ok(tree) => self.set_bar_tree(tree),
                    Err(e) => self.studio.status.last_error = format!("bars: {e}"),
                }
                self.needs_redraw = true;
            }
            Action::RestoreAutosave(yes) => {
                if let Some(t) = self.studio.offered_autosave.take() {
                    if yes {
                        self.studio.editor.text = t;
                        self.autosave.touch();
                    }
                }
            }
        }
    }

    /// Runs egui, renders the frame and presents it.
    fn draw(&mut self) -> anyhow::Result<()> {
        let t0 = Instant::now();
        self.stats.frame_started();
        let (w, h) = self.scale.buffer_size(self.size);
        if !self.prepare_presenter(w, h)? {
            // Every dmabuf is held by the compositor: a release wakes the loop
            // (see `swapchain.rs`), not a spin.
            self.frame_pending = true;
            return Ok(());
        }
        let m = self.session.engine().meters();
        self.studio.status.dsp_avg = m.load_avg();
        self.studio.status.dsp_peak = self.studio.status.dsp_peak.max(m.take_peak()) * 0.98;
        self.studio.status.xruns = self.session.xruns();
        self.studio.status.clock = m.clock.read();
        (self.studio.status.maximized, self.studio.status.fullscreen) = (self.maximized, self.fullscreen);
        let now = Instant::now();
        self.frame_times.push_back(now);
        while self.frame_times.front().is_some_and(|t| now - *t > Duration::from_secs(1)) {
            self.frame_times.pop_front();
        }
        self.studio.status.fps = self.frame_times.len() as f32;

        let ppp = self.scale.pixels_per_point();
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::vec2(self.size.0 as f32, self.size.1 as f32),
            )),
            viewports: std::iter::once((
                egui::ViewportId::ROOT,
                egui::ViewportInfo { native_pixels_per_point: Some(ppp), focused: Some(true), ..Default::default() },
            ))
            .collect(),
            events: std::mem::take(&mut self.events),
            time: Some(self.started.elapsed().as_secs_f64()),
            ..Default::default()
        };
        self.canvas.begin(w, h, clavm_render::views::Theme::with_scale(ppp).background);
        let (studio, canvas, analysis) = (&mut self.studio, &mut self.canvas, &mut self.analysis);
        let text_before = studio.editor.text.clone();
        let mut actions = Vec::new();
        let mut output = self.egui.run_ui(input, |ui| actions = studio.show(ui, canvas, analysis));
        if self.studio.editor.text != text_before {
            self.autosave.touch();
        }
        for a in actions {
            self.act(a);
        }
        for cmd in std::mem::take(&mut output.platform_output.commands) {
            if let egui::OutputCommand::CopyText(text) = cmd {
                self.copy_to_clipboard(text);
            }
        }
        let primitives = self.egui.tessellate(std::mem::take(&mut output.shapes), output.pixels_per_point);
        let ui = UiFrame { primitives: &primitives, textures: &mut output.textures_delta, pixels_per_point: ppp };
        self.render_and_attach(ui, w, h)?;
        let surface = self.window.wl_surface().clone();
        surface.set_buffer_scale(self.scale.buffer_scale());
        if let Some(f) = &self.fractional {
            f.set_destination(self.size);
        }
        surface.damage_buffer(0, 0, w as i32, h as i32);
        surface.frame(&self.qh, handlers::frame_data(&surface));
        self.window.commit();
        self.frame_pending = true;
        self.stats.frame_committed(t0.elapsed());
        (self.stats.logical, self.stats.buffer) = (self.size, (w, h));
        self.needs_redraw = output
            .viewport_output
            .get(&egui::ViewportId::ROOT)
            .is_some_and(|v| v.repaint_delay < Duration::from_millis(100));
        if self.gpu.validation().errors() > 0 {
            anyhow::bail!(
                "Vulkan validation: {}",
                self.gpu.validation().messages().first().cloned().unwrap_or_default()
            );
        }
        Ok(())
    }
}

fn diag(d: &clavm_audio::patch::Diagnostic) -> Diagnostic {
    Diagnostic {
        line: d.line as usize,
        col: d.col as usize,
        message: d.message.clone(),
        error: matches!(d.severity, clavm_audio::patch::Severity::Error),
    }
}

/// A `file://` URI from a `text/uri-list` as a path (percent-decoded).
fn uri_to_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let path = rest.find('/').map(|i| &rest[i..])?;
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    use std::os::unix::ffi::OsStringExt;
    Some(PathBuf::from(std::ffi::OsString::from_vec(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_uris_become_paths() {
        assert_eq!(uri_to_path("file:///home/me/My%20Patch.c"), Some(PathBuf::from("/home/me/My Patch.c")));
        assert_eq!(uri_to_path("file://host/tmp/a.c"), Some(PathBuf::from("/tmp/a.c")));
        assert_eq!(uri_to_path("http://x/a.c"), None);
    }

    #[test]
    fn patch_files_that_are_not_patches_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.c");
        std::fs::write(&big, vec![b'x'; (1 << 20) + 1]).unwrap();
        assert!(format!("{:#}", read_patch_file(&big).unwrap_err()).contains("at most 1 MiB"));
        let bin = dir.path().join("bin.c");
        std::fs::write(&bin, [0xff, 0xfe, 0x00, 0x80]).unwrap();
        assert!(format!("{:#}", read_patch_file(&bin).unwrap_err()).contains("not text"));
        assert!(format!("{:#}", read_patch_file(&dir.path().join("gone.c")).unwrap_err()).contains("cannot open"));
        let ok = dir.path().join("ok.c");
        std::fs::write(&ok, "void play(void) {}\n").unwrap();
        assert_eq!(read_patch_file(&ok).unwrap(), "void play(void) {}\n");
    }
}
