//! A drag-and-drop source for the window's tests, as a file manager would
//! be: a small Wayland client with a window of its own. It presses the
//! virtual pointer's button on its window, starts a drag offering
//! `text/uri-list`, moves onto the point given, lets go there, and answers
//! the drop target's request with the list.
//!
//! sway headless has no real pointer, so the press comes from
//! `zwlr_virtual_pointer_v1`; the drag is an ordinary `wl_data_device` drag.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use wayland_client::globals::{registry_queue_init, GlobalListContents};
use wayland_client::protocol::{
    wl_buffer, wl_compositor, wl_data_device, wl_data_device_manager, wl_data_offer, wl_data_source, wl_pointer,
    wl_registry, wl_seat, wl_shm, wl_shm_pool, wl_surface,
};
use wayland_client::{event_created_child, Connection, Dispatch, EventQueue, QueueHandle, WEnum};
use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};
use wayland_protocols_wlr::virtual_pointer::v1::client::{zwlr_virtual_pointer_manager_v1, zwlr_virtual_pointer_v1};

use super::sway::Sway;

const BTN_LEFT: u32 = 0x110;

/// How a drag ended, from the source's side.
#[derive(Debug, Default)]
pub struct DragOutcome {
    /// The target asked for the data (and got the list).
    pub sent: bool,
    /// The target finished the drop.
    pub finished: bool,
    /// The compositor cancelled it (wlroots also says so after a finished
    /// drop, when the drag ends: `finished` is what tells a drop took).
    pub cancelled: bool,
}

#[derive(Default)]
struct State {
    configured: bool,
    /// The size the compositor gave the window (sway tiles it).
    size: Option<(i32, i32)>,
    press_serial: Option<u32>,
    pointer: Option<wl_pointer::WlPointer>,
    uris: String,
    outcome: DragOutcome,
}

/// Drags `uris` (a `text/uri-list`) from a new window of this client, at
/// `from`, to `to` (output coordinates of a `size` output), and drops it.
pub fn drag_uri_list(sway: &Sway, uris: &str, from: (f64, f64), to: (f64, f64), size: (u32, u32)) -> DragOutcome {
    let stream = UnixStream::connect(sway.runtime().join(&sway.display)).expect("connecting to sway");
    let conn = Connection::from_socket(stream).expect("a Wayland connection");
    let (globals, mut queue) = registry_queue_init::<State>(&conn).expect("the globals");
    let qh = queue.handle();
    let compositor: wl_compositor::WlCompositor = globals.bind(&qh, 1..=4, ()).expect("wl_compositor");
    let shm: wl_shm::WlShm = globals.bind(&qh, 1..=1, ()).expect("wl_shm");
    let wm: xdg_wm_base::XdgWmBase = globals.bind(&qh, 1..=2, ()).expect("xdg_wm_base");
    let seat: wl_seat::WlSeat = globals.bind(&qh, 1..=5, ()).expect("wl_seat");
    let ddm: wl_data_device_manager::WlDataDeviceManager = globals.bind(&qh, 3..=3, ()).expect("data devices");
    let vpm: zwlr_virtual_pointer_manager_v1::ZwlrVirtualPointerManagerV1 =
        globals.bind(&qh, 1..=2, ()).expect("the virtual pointer");
    let mut state = State { uris: uris.to_string(), ..Default::default() };

    // The virtual pointer gives the seat its pointer capability.
    let vp = vpm.create_virtual_pointer(Some(&seat), &qh, ());
    let device = ddm.get_data_device(&seat, &qh, ());
    let surface = compositor.create_surface(&qh, ());
    let xdg = wm.get_xdg_surface(&surface, &qh, ());
    let toplevel = xdg.get_toplevel(&qh, ());
    toplevel.set_title("clavm-test-drag-source".into());
    surface.commit();
    pump(&mut queue, &mut state, Duration::from_secs(5), |s| s.configured && s.pointer.is_some());
    assert!(state.configured, "the drag source's window was never configured");
    assert!(state.pointer.is_some(), "the seat never got the virtual pointer");

    // A plain grey buffer filling the tile: the window must be mapped, and
    // as large as its tile, to be pressed on where the caller points.
    let (w, h) = state.size.filter(|&(w, h)| w > 0 && h > 0).unwrap_or((64, 64));
    let file = tempfile::tempfile().unwrap();
    file.set_len((w * h * 4) as u64).unwrap();
    (&file).write_all(&vec![0x80; (w * h * 4) as usize]).unwrap();
    let pool = shm.create_pool(file.as_fd(), w * h * 4, &qh, ());
    let buffer = pool.create_buffer(0, w, h, w * 4, wl_shm::Format::Xrgb8888, &qh, ());
    surface.attach(Some(&buffer), 0, 0);
    surface.damage_buffer(0, 0, w, h);
    surface.commit();
    // sway tiles the new window beside the app; let it settle.
    pump(&mut queue, &mut state, Duration::from_millis(500), |_| false);

    let mut t = 0u32;
    let at = |vp: &zwlr_virtual_pointer_v1::ZwlrVirtualPointerV1, t: &mut u32, (x, y): (f64, f64)| {
        *t += 16;
        vp.motion_absolute(*t, x.round() as u32, y.round() as u32, size.0, size.1);
        vp.frame();
    };
    at(&vp, &mut t, from);
    pump(&mut queue, &mut state, Duration::from_millis(200), |_| false);
    vp.button(t + 1, BTN_LEFT, wayland_client::protocol::wl_pointer::ButtonState::Pressed);
    vp.frame();
    pump(&mut queue, &mut state, Duration::from_secs(3), |s| s.press_serial.is_some());
    let serial = state.press_serial.expect("the press on the source's window reached it");

    let source = ddm.create_data_source(&qh, ());
    source.offer("text/uri-list".into());
    source.set_actions(wl_data_device_manager::DndAction::Copy);
    device.start_drag(Some(&source), &surface, None, serial);
    pump(&mut queue, &mut state, Duration::from_millis(100), |_| false);
    for i in 1..=12 {
        let k = i as f64 / 12.0;
        at(&vp, &mut t, (from.0 + (to.0 - from.0) * k, from.1 + (to.1 - from.1) * k));
        pump(&mut queue, &mut state, Duration::from_millis(30), |_| false);
    }
    pump(&mut queue, &mut state, Duration::from_millis(300), |_| false);
    vp.button(t + 400, BTN_LEFT, wayland_client::protocol::wl_pointer::ButtonState::Released);
    vp.frame();
    pump(&mut queue, &mut state, Duration::from_secs(5), |s| s.outcome.finished || s.outcome.cancelled);

    source.destroy();
    buffer.destroy();
    pool.destroy();
    toplevel.destroy();
    xdg.destroy();
    surface.destroy();
    vp.destroy();
    let _ = conn.flush();
    state.outcome
}

/// Dispatches events until `done` holds or `within` passes.
fn pump(queue: &mut EventQueue<State>, state: &mut State, within: Duration, done: impl Fn(&State) -> bool) {
    let t0 = Instant::now();
    loop {
        queue.roundtrip(state).expect("the compositor went away");
        if done(state) || t0.elapsed() >= within {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for State {
    fn event(
        _: &mut Self,
        _: &wl_registry::WlRegistry,
        _: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<xdg_wm_base::XdgWmBase, ()> for State {
    fn event(
        _: &mut Self,
        wm: &xdg_wm_base::XdgWmBase,
        e: xdg_wm_base::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_wm_base::Event::Ping { serial } = e {
            wm.pong(serial);
        }
    }
}

impl Dispatch<xdg_surface::XdgSurface, ()> for State {
    fn event(
        s: &mut Self,
        x: &xdg_surface::XdgSurface,
        e: xdg_surface::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_surface::Event::Configure { serial } = e {
            x.ack_configure(serial);
            s.configured = true;
        }
    }
}

impl Dispatch<wl_seat::WlSeat, ()> for State {
    fn event(s: &mut Self, seat: &wl_seat::WlSeat, e: wl_seat::Event, _: &(), _: &Connection, qh: &QueueHandle<Self>) {
        if let wl_seat::Event::Capabilities { capabilities: WEnum::Value(c) } = e {
            if c.contains(wl_seat::Capability::Pointer) && s.pointer.is_none() {
                s.pointer = Some(seat.get_pointer(qh, ()));
            }
        }
    }
}

impl Dispatch<wl_pointer::WlPointer, ()> for State {
    fn event(
        s: &mut Self,
        _: &wl_pointer::WlPointer,
        e: wl_pointer::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_pointer::Event::Button { serial, state: WEnum::Value(wl_pointer::ButtonState::Pressed), .. } = e {
            s.press_serial = Some(serial);
        }
    }
}

impl Dispatch<wl_data_source::WlDataSource, ()> for State {
    fn event(
        s: &mut Self,
        _: &wl_data_source::WlDataSource,
        e: wl_data_source::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match e {
            wl_data_source::Event::Send { fd, .. } => {
                let mut f = std::fs::File::from(fd);
                let _ = f.write_all(s.uris.as_bytes());
                s.outcome.sent = true;
            }
            wl_data_source::Event::DndFinished => s.outcome.finished = true,
            wl_data_source::Event::Cancelled => s.outcome.cancelled = true,
            _ => {}
        }
    }
}

impl Dispatch<wl_data_device::WlDataDevice, ()> for State {
    fn event(
        _: &mut Self,
        _: &wl_data_device::WlDataDevice,
        _: wl_data_device::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
    event_created_child!(State, wl_data_device::WlDataDevice, [
        wl_data_device::EVT_DATA_OFFER_OPCODE => (wl_data_offer::WlDataOffer, ()),
    ]);
}

/// Objects whose events this client has no use for.
macro_rules! ignore_events {
    ($($t:ty),*) => {$(
        impl Dispatch<$t, ()> for State {
            fn event(_: &mut Self, _: &$t, _: <$t as wayland_client::Proxy>::Event, _: &(), _: &Connection, _: &QueueHandle<Self>) {}
        }
    )*};
}
impl Dispatch<xdg_toplevel::XdgToplevel, ()> for State {
    fn event(
        s: &mut Self,
        _: &xdg_toplevel::XdgToplevel,
        e: xdg_toplevel::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_toplevel::Event::Configure { width, height, .. } = e {
            s.size = Some((width, height));
        }
    }
}

ignore_events!(
    wl_compositor::WlCompositor,
    wl_surface::WlSurface,
    wl_shm::WlShm,
    wl_shm_pool::WlShmPool,
    wl_buffer::WlBuffer,
    wl_data_device_manager::WlDataDeviceManager,
    wl_data_offer::WlDataOffer,
    zwlr_virtual_pointer_manager_v1::ZwlrVirtualPointerManagerV1,
    zwlr_virtual_pointer_v1::ZwlrVirtualPointerV1
);
