//! The other real compositor for the window's tests: weston 10 with its
//! headless backend (pixman, no GPU). It offers wl_shm, xdg_wm_base and
//! wp_viewporter but neither linux-dmabuf nor fractional scaling, and it
//! runs as root; `--scale` gives its output an integer scale.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Weston {
    child: Child,
    runtime: tempfile::TempDir,
    pub display: String,
    pub log: PathBuf,
}

impl Weston {
    /// A headless output of `width` x `height` pixels at integer `scale`.
    pub fn start(width: u32, height: u32, scale: u32) -> Weston {
        let runtime = tempfile::tempdir().unwrap();
        let display = "wayland-clavm-test".to_string();
        let log = std::env::temp_dir().join(format!("clavm-test-weston-{}.log", std::process::id()));
        let child = Command::new("weston")
            .args(["--backend=headless-backend.so", "--idle-time=0", "--no-config"])
            .arg(format!("--width={width}"))
            .arg(format!("--height={height}"))
            .arg(format!("--scale={scale}"))
            .arg(format!("--socket={display}"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("XDG_RUNTIME_DIR", runtime.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("weston must be installed (scripts/setup.sh)");
        let socket = runtime.path().join(&display);
        let t0 = Instant::now();
        while !socket.exists() {
            assert!(t0.elapsed() < Duration::from_secs(15), "weston did not start (see {})", log.display());
            std::thread::sleep(Duration::from_millis(50));
        }
        Weston { child, runtime, display, log }
    }

    /// Points `cmd` at this compositor.
    pub fn env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("XDG_RUNTIME_DIR", self.runtime.path()).env("WAYLAND_DISPLAY", &self.display)
    }
}

impl Drop for Weston {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
