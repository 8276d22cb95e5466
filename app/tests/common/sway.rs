//! A real Wayland compositor for the window's tests: sway, headless (no
//! GPU, no input devices, pixman rendering), run as an unprivileged user
//! (sway refuses root; as root the harness drops to `nobody` with setpriv).
//! It offers what the tests need: screencopy for `grim`, the virtual
//! keyboard for `wtype`, IPC for `swaymsg`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Sway {
    child: Child,
    runtime: tempfile::TempDir,
    pub display: String,
    pub socket: PathBuf,
}

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

impl Sway {
    pub fn start(width: u32, height: u32) -> Sway {
        let runtime = tempfile::tempdir().unwrap();
        let config = runtime.path().join("sway.cfg");
        std::fs::write(&config, format!("output HEADLESS-1 resolution {width}x{height}\ndefault_border none\nfocus_on_window_activation focus\n")).unwrap();
        let mut cmd = if is_root() {
            let path = std::ffi::CString::new(runtime.path().to_str().unwrap()).unwrap();
            // SAFETY: chown of our own temporary directory and file to nobody.
            unsafe {
                libc::chown(path.as_ptr(), NOBODY, NOBODY);
                libc::chmod(path.as_ptr(), 0o700);
            }
            let mut c = Command::new("setpriv");
            c.args(["--reuid", &NOBODY.to_string(), "--regid", &NOBODY.to_string(), "--clear-groups", "sway"]);
            c
        } else {
            Command::new("sway")
        };
        let log =
            std::fs::File::create(std::env::temp_dir().join(format!("clavm-test-sway-{}.log", std::process::id())))
                .unwrap();
        let child = cmd
            .arg("-c")
            .arg(&config)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("XDG_RUNTIME_DIR", runtime.path())
            .env("WLR_BACKENDS", "headless")
            .env("WLR_LIBINPUT_NO_DEVICES", "1")
            .env("WLR_RENDERER", "pixman")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sway must be installed (scripts/setup.sh)");
        let t0 = Instant::now();
        let (display, socket) = loop {
            let names: Vec<String> = std::fs::read_dir(runtime.path())
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect();
            let display = names.iter().find(|n| n.starts_with("wayland-") && !n.ends_with(".lock")).cloned();
            let socket = names.iter().find(|n| n.starts_with("sway-ipc.")).cloned();
            if let (Some(d), Some(s)) = (display, socket) {
                break (d, runtime.path().join(s));
            }
            assert!(t0.elapsed() < Duration::from_secs(15), "sway did not start (see the clavm-test-sway log in /tmp)");
            std::thread::sleep(Duration::from_millis(50));
        };
        Sway { child, runtime, display, socket }
    }

    pub fn runtime(&self) -> &Path {
        self.runtime.path()
    }

    /// Points `cmd` at this compositor.
    pub fn env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("XDG_RUNTIME_DIR", self.runtime.path())
            .env("WAYLAND_DISPLAY", &self.display)
            .env("SWAYSOCK", &self.socket)
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut c = Command::new(program);
        self.env(&mut c).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"))
    }

    /// The whole output as RGBA (via grim's PNG).
    pub fn screenshot(&self, save_as: &Path) -> (u32, u32, Vec<u8>) {
        let o = self.run("grim", &[save_as.to_str().unwrap()]);
        assert!(o.status.success(), "grim: {}", String::from_utf8_lossy(&o.stderr));
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(save_as).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let rgba = match info.color_type {
            png::ColorType::Rgba => buf,
            png::ColorType::Rgb => buf.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
            other => panic!("grim wrote {other:?}"),
        };
        (info.width, info.height, rgba)
    }

    pub fn msg(&self, args: &[&str]) -> Output {
        self.run("swaymsg", args)
    }

    /// Types with the virtual keyboard (wtype's arguments). Each wtype run
    /// is a new virtual keyboard with its own keymap: it waits a moment first
    /// so the client has the keymap before the first key, and types at a
    /// human-ish pace.
    pub fn wtype(&self, args: &[&str]) {
        let mut all = vec!["-s", "250", "-d", "4"];
        all.extend_from_slice(args);
        let o = self.run("wtype", &all);
        assert!(o.status.success(), "wtype: {}", String::from_utf8_lossy(&o.stderr));
    }

    /// Kills the compositor (as if it crashed).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sway {
    fn drop(&mut self) {
        self.kill();
    }
}
