//! The Wayland side of the window: smithay-client-toolkit's handlers, which
//! turn protocol events into window state and egui input.

use std::io::Read;

use smithay_client_toolkit::compositor::{CompositorHandler, FrameCallbackData};
use smithay_client_toolkit::data_device_manager::data_device::DataDeviceHandler;
use smithay_client_toolkit::data_device_manager::data_offer::{DataOfferHandler, DragOffer};
use smithay_client_toolkit::data_device_manager::data_source::DataSourceHandler;
use smithay_client_toolkit::data_device_manager::WritePipe;
use smithay_client_toolkit::output::{OutputHandler, OutputState};
use smithay_client_toolkit::registry::{ProvidesRegistryState, RegistryState};
use smithay_client_toolkit::seat::keyboard::{KeyEvent, KeyboardHandler, Keysym, Modifiers, RawModifiers};
use smithay_client_toolkit::seat::pointer::{PointerEvent, PointerEventKind, PointerHandler};
use smithay_client_toolkit::seat::{Capability, SeatHandler, SeatState};
use smithay_client_toolkit::shell::xdg::window::{Window, WindowConfigure, WindowHandler};
use smithay_client_toolkit::shell::WaylandSurface;
use smithay_client_toolkit::shm::{Shm, ShmHandler};
use smithay_client_toolkit::{delegate_registry, registry_handlers};
use wayland_client::protocol::wl_data_device::WlDataDevice;
use wayland_client::protocol::wl_data_device_manager::DndAction;
use wayland_client::protocol::wl_data_source::WlDataSource;
use wayland_client::protocol::{wl_keyboard, wl_output, wl_pointer, wl_seat, wl_surface};
use wayland_client::{Connection, QueueHandle};

use super::keys::{egui_key, egui_modifiers, typed_text};
use super::{App, Incoming};

/// The mime types a dropped file list comes as, and text as.
const URI_LIST: &str = "text/uri-list";
const TEXT: [&str; 3] = ["text/plain;charset=utf-8", "UTF8_STRING", "text/plain"];

impl CompositorHandler for App {
    fn scale_factor_changed(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &wl_surface::WlSurface, factor: i32) {
        self.set_scale(super::scale::Scale::Integer(factor.max(1) as u32));
        self.needs_redraw = true;
    }
    fn transform_changed(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_surface::WlSurface,
        _: wl_output::Transform,
    ) {
    }
    fn frame(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &wl_surface::WlSurface, _: u32) {
        self.frame_pending = false;
        self.stats.frame_presented();
    }
    fn surface_enter(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_surface::WlSurface,
        _: &wl_output::WlOutput,
    ) {
    }
    fn surface_leave(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_surface::WlSurface,
        _: &wl_output::WlOutput,
    ) {
    }
}

impl OutputHandler for App {
    fn output_state(&mut self) -> &mut OutputState {
        &mut self.outputs
    }
    fn new_output(&mut self, _: &Connection, _: &QueueHandle<Self>, _: wl_output::WlOutput) {}
    fn update_output(&mut self, _: &Connection, _: &QueueHandle<Self>, _: wl_output::WlOutput) {}
    fn output_destroyed(&mut self, _: &Connection, _: &QueueHandle<Self>, _: wl_output::WlOutput) {}
}

impl WindowHandler for App {
    fn request_close(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &Window) {
        self.exit = Some("closed".into());
    }

    fn configure(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &Window, c: WindowConfigure, _: u32) {
        let w = c.new_size.0.map_or(self.size.0, |v| v.get());
        let h = c.new_size.1.map_or(self.size.1, |v| v.get());
        // A resize storm just means the next frame is drawn at the last size.
        self.size = (w.clamp(1, 16384), h.clamp(1, 16384));
        self.fullscreen = c.is_fullscreen();
        self.maximized = c.is_maximized();
        self.configured = true;
        self.needs_redraw = true;
        // The first frame must answer this configure even if a callback is pending.
        self.frame_pending = false;
    }
}

impl SeatHandler for App {
    fn seat_state(&mut self) -> &mut SeatState {
        &mut self.seats
    }
    fn new_seat(&mut self, _: &Connection, qh: &QueueHandle<Self>, seat: wl_seat::WlSeat) {
        if let Some(m) = &self.data_devices_state {
            self.data_devices.push(m.get_data_device(qh, &seat));
        }
    }
    fn new_capability(&mut self, _: &Connection, qh: &QueueHandle<Self>, seat: wl_seat::WlSeat, c: Capability) {
        if c == Capability::Keyboard && self.keyboard.is_none() {
            // Client-side repeat calls this callback, not `repeat_key`: both go to one place.
            let repeat = Box::new(|app: &mut App, _: &wl_keyboard::WlKeyboard, e: KeyEvent| app.key(e, true, true));
            match self.seats.get_keyboard_with_repeat(qh, &seat, None, self.loop_handle.clone(), repeat) {
                Ok(k) => self.keyboard = Some(k),
                Err(e) => self.studio.status.last_error = format!("no keyboard: {e}"),
            }
        }
        if c == Capability::Pointer && self.pointer.is_none() {
            self.pointer = self.seats.get_pointer(qh, &seat).ok();
        }
    }
    fn remove_capability(&mut self, _: &Connection, _: &QueueHandle<Self>, _: wl_seat::WlSeat, c: Capability) {
        // The capability flaps whenever the last keyboard device goes (a
        // virtual keyboard exiting): the old wl_keyboard is then inert and
        // the next device needs a new one. The old one is kept, not
        // released: releasing drops sctk's key-repeat timer from inside the
        // event loop's dispatch, which calloop refuses (a panic).
        if c == Capability::Keyboard {
            self.modifiers = Modifiers::default();
            if let Some(k) = self.keyboard.take() {
                self.old_keyboards.push(k);
            }
        }
        if c == Capability::Pointer {
            if let Some(p) = self.pointer.take() {
                p.release();
            }
        }
    }
    fn remove_seat(&mut self, _: &Connection, _: &QueueHandle<Self>, _: wl_seat::WlSeat) {}
}

impl App {
    /// A key pressed (or repeated, or released): egui's key event, and text.
    fn key(&mut self, e: KeyEvent, pressed: bool, repeat: bool) {
        if pressed {
            self.stats.key_arrived();
        }
        if pressed && self.modifiers.ctrl && (e.keysym == Keysym::v || e.keysym == Keysym::V) {
            self.paste(true);
            return;
        }
        if let Some(key) = egui_key(e.keysym) {
            self.events.push(egui::Event::Key {
                key,
                physical_key: None,
                pressed,
                repeat,
                modifiers: egui_modifiers(&self.modifiers),
            });
        }
        if pressed {
            if let Some(text) = typed_text(e.utf8.as_deref(), &self.modifiers) {
                self.events.push(egui::Event::Text(text));
            }
        }
        self.needs_redraw = true;
    }

    /// Reads the clipboard (the current selection) on a thread; the text
    /// arrives as an egui paste. `first_try`: an empty read is tried once
    /// more, with the offer the compositor made since (see `on_incoming`).
    pub(super) fn paste(&mut self, first_try: bool) {
        let Some(offer) = self.data_devices.first().and_then(|d| d.data().selection_offer()) else {
            tracing::info!("paste: the clipboard is empty");
            return;
        };
        let Some(mime) =
            offer.with_mime_types(|m| TEXT.iter().find(|t| m.iter().any(|x| x == *t)).map(|s| s.to_string()))
        else {
            tracing::info!("paste: the clipboard holds no text");
            return;
        };
        let pipe = match offer.receive(mime) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("paste: cannot read the clipboard: {e}");
                return;
            }
        };
        let tx = self.incoming.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::File::from(std::os::fd::OwnedFd::from(pipe));
            let mut bytes = Vec::new();
            if f.by_ref().take(1 << 20).read_to_end(&mut bytes).is_ok() {
                let _ = tx.send(Incoming::Pasted { text: String::from_utf8_lossy(&bytes).into_owned(), first_try });
            }
        });
    }

    /// Offers `text` as the clipboard's selection.
    pub(super) fn copy_to_clipboard(&mut self, text: String) {
        let (Some(m), Some(device)) = (&self.data_devices_state, self.data_devices.first()) else { return };
        let source = m.create_copy_paste_source(&self.qh, TEXT);
        source.set_selection(device, self.last_serial);
        self.clipboard = Some((source, text));
    }
}

impl KeyboardHandler for App {
    fn enter(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_keyboard::WlKeyboard,
        _: &wl_surface::WlSurface,
        serial: u32,
        _: &[u32],
        _: &[Keysym],
    ) {
        self.last_serial = serial;
    }
    fn leave(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_keyboard::WlKeyboard,
        _: &wl_surface::WlSurface,
        _: u32,
    ) {
        self.modifiers = Modifiers::default();
    }
    fn press_key(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_keyboard::WlKeyboard,
        serial: u32,
        e: KeyEvent,
    ) {
        self.last_serial = serial;
        self.key(e, true, false);
    }
    fn repeat_key(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &wl_keyboard::WlKeyboard, _: u32, e: KeyEvent) {
        self.key(e, true, true);
    }
    fn release_key(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &wl_keyboard::WlKeyboard, _: u32, e: KeyEvent) {
        self.key(e, false, false);
    }
    fn update_modifiers(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_keyboard::WlKeyboard,
        _: u32,
        m: Modifiers,
        _: RawModifiers,
        _: u32,
    ) {
        self.modifiers = m;
        self.events.push(egui::Event::ModifiersChanged(egui_modifiers(&m)));
    }
}

impl PointerHandler for App {
    fn pointer_frame(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        _: &wl_pointer::WlPointer,
        events: &[PointerEvent],
    ) {
        let modifiers = egui_modifiers(&self.modifiers);
        for e in events {
            if &e.surface != self.window.wl_surface() {
                continue;
            }
            let pos = egui::pos2(e.position.0 as f32, e.position.1 as f32);
            match e.kind {
                PointerEventKind::Enter { serial } => {
                    self.last_serial = serial;
                    self.events.push(egui::Event::PointerMoved(pos));
                }
                PointerEventKind::Leave { .. } => self.events.push(egui::Event::PointerGone),
                PointerEventKind::Motion { .. } => self.events.push(egui::Event::PointerMoved(pos)),
                PointerEventKind::Press { button, serial, .. } | PointerEventKind::Release { button, serial, .. } => {
                    self.last_serial = serial;
                    let pressed = matches!(e.kind, PointerEventKind::Press { .. });
                    let button = match button {
                        0x110 => egui::PointerButton::Primary,
                        0x111 => egui::PointerButton::Secondary,
                        0x112 => egui::PointerButton::Middle,
                        _ => continue,
                    };
                    self.events.push(egui::Event::PointerButton { pos, button, pressed, modifiers });
                }
                PointerEventKind::Axis { horizontal, vertical, .. } => {
                    // egui scrolls the other way round from Wayland's axis values.
                    self.events.push(egui::Event::MouseWheel {
                        unit: egui::MouseWheelUnit::Point,
                        delta: egui::vec2(-horizontal.absolute as f32, -vertical.absolute as f32),
                        phase: egui::TouchPhase::Move,
                        source: egui::MouseWheelSource::Unknown,
                        modifiers,
                    });
                }
            }
        }
        self.needs_redraw = true;
    }
}

impl ShmHandler for App {
    fn shm_state(&mut self) -> &mut Shm {
        &mut self.shm
    }
}

impl DataDeviceHandler for App {
    fn enter(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        device: &WlDataDevice,
        _: f64,
        _: f64,
        _: &wl_surface::WlSurface,
    ) {
        let Some(offer) = self.data_devices.iter().find(|d| d.inner() == device).and_then(|d| d.data().drag_offer())
        else {
            return;
        };
        let has_files = offer.with_mime_types(|m| m.iter().any(|x| x == URI_LIST));
        offer.accept_mime_type(offer.serial, has_files.then(|| URI_LIST.to_string()));
        offer.set_actions(DndAction::Copy, DndAction::Copy);
        if !has_files {
            self.studio.status.notice = "that drop holds no files: only .c patches can be dropped".into();
            self.needs_redraw = true;
        }
    }
    fn leave(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &WlDataDevice) {}
    fn motion(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &WlDataDevice, _: f64, _: f64) {}
    fn selection(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &WlDataDevice) {}
    fn drop_performed(&mut self, _: &Connection, _: &QueueHandle<Self>, device: &WlDataDevice) {
        let Some(offer) = self.data_devices.iter().find(|d| d.inner() == device).and_then(|d| d.data().drag_offer())
        else {
            return;
        };
        let tx = self.incoming.clone();
        match offer.receive(URI_LIST.to_string()) {
            Ok(pipe) => {
                // The source writes after it sees our request: read on a
                // thread so the loop keeps serving the compositor meanwhile.
                let offer = offer.clone();
                std::thread::spawn(move || {
                    let mut f = std::fs::File::from(std::os::fd::OwnedFd::from(pipe));
                    let mut bytes = Vec::new();
                    let r =
                        f.by_ref().take(64 * 1024).read_to_end(&mut bytes).map(|_| bytes).map_err(|e| e.to_string());
                    let _ = tx.send(Incoming::Dropped(r));
                    offer.finish();
                    offer.destroy();
                });
            }
            Err(e) => {
                let _ = tx.send(Incoming::Dropped(Err(e.to_string())));
                offer.finish();
                offer.destroy();
            }
        }
    }
}

impl DataOfferHandler for App {
    fn source_actions(&mut self, _: &Connection, _: &QueueHandle<Self>, offer: &mut DragOffer, _: DndAction) {
        offer.set_actions(DndAction::Copy, DndAction::Copy);
    }
    fn selected_action(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &mut DragOffer, _: DndAction) {}
}

impl DataSourceHandler for App {
    fn accept_mime(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &WlDataSource, _: Option<String>) {}
    fn send_request(
        &mut self,
        _: &Connection,
        _: &QueueHandle<Self>,
        source: &WlDataSource,
        _: String,
        pipe: WritePipe,
    ) {
        if let Some((s, text)) = &self.clipboard {
            if s.inner() == source {
                let text = text.clone();
                // The reader may be slow (or another app blocked): write on a thread.
                std::thread::spawn(move || {
                    use std::io::Write;
                    let mut f = std::fs::File::from(std::os::fd::OwnedFd::from(pipe));
                    let _ = f.write_all(text.as_bytes());
                });
            }
        }
    }
    fn cancelled(&mut self, _: &Connection, _: &QueueHandle<Self>, source: &WlDataSource) {
        if self.clipboard.as_ref().is_some_and(|(s, _)| s.inner() == source) {
            self.clipboard = None;
        }
    }
    fn dnd_dropped(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &WlDataSource) {}
    fn dnd_finished(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &WlDataSource) {}
    fn action(&mut self, _: &Connection, _: &QueueHandle<Self>, _: &WlDataSource, _: DndAction) {}
}

impl ProvidesRegistryState for App {
    fn registry(&mut self) -> &mut RegistryState {
        &mut self.registry
    }
    registry_handlers![OutputState, SeatState];
}

delegate_registry!(App);
smithay_client_toolkit::delegate_dispatch2!(App);

/// The frame callback's data, as sctk's compositor expects it.
pub(super) fn frame_data(surface: &wl_surface::WlSurface) -> FrameCallbackData {
    FrameCallbackData(surface.clone())
}
