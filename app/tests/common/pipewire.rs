//! A private headless PipeWire (pipewire, wireplumber and pipewire-pulse
//! under `dbus-run-session`, with a runtime dir of its own), a recorder of
//! its default sink's monitor (`pw-record -P '{ stream.capture.sink=true }'`),
//! and `clavm play` on it. A daemon that does not come up fails the test
//! with its logs: nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SR: u32 = 48000;

/// The daemons, in a process group of their own; killed on drop.
pub struct PipeWire {
    group: Child,
    pub dir: tempfile::TempDir,
    /// The default sink's node name (PipeWire's "Dummy Output" is `auto_null`).
    pub sink: String,
}

impl PipeWire {
    pub fn start() -> PipeWire {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        // PipeWire wants its runtime dir private.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let script = "pipewire >\"$XDG_RUNTIME_DIR/pipewire.log\" 2>&1 &\n\
             sleep 0.3\n\
             pipewire-pulse >\"$XDG_RUNTIME_DIR/pipewire-pulse.log\" 2>&1 &\n\
             exec wireplumber >\"$XDG_RUNTIME_DIR/wireplumber.log\" 2>&1\n";
        let mut cmd = Command::new("dbus-run-session");
        cmd.args(["--", "sh", "-c", script]);
        env(&mut cmd, dir.path());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let group = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-run-session (Debian package dbus) must be installed: run scripts/setup.sh");
        let mut pw = PipeWire { group, dir, sink: String::new() };
        pw.sink = pw.wait_for_sink();
        pw
    }

    fn logs(&self) -> String {
        ["pipewire.log", "pipewire-pulse.log", "wireplumber.log"]
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
                format!(
                    "--- {f}:\n{}",
                    text.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The default sink once pipewire-pulse names one; a null sink when the
    /// session manager made none within 10 s (headless, it may not).
    fn wait_for_sink(&mut self) -> String {
        let t0 = Instant::now();
        let mut loaded = false;
        loop {
            if let Ok(Some(status)) = self.group.try_wait() {
                panic!(
                    "the PipeWire session ended at once ({status}); is pipewire installed (scripts/setup.sh)?\n{}",
                    self.logs()
                );
            }
            let sinks = self.tool("pactl", &["list", "short", "sinks"]);
            let default = self.tool("pactl", &["get-default-sink"]);
            let default = String::from_utf8_lossy(&default.stdout).trim().to_string();
            if sinks.status.success()
                && String::from_utf8_lossy(&sinks.stdout)
                    .lines()
                    .any(|l| l.split('\t').nth(1) == Some(default.as_str()))
            {
                return default;
            }
            if !loaded && t0.elapsed() > Duration::from_secs(10) && sinks.status.success() {
                let made = self.tool("pactl", &["load-module", "module-null-sink", "sink_name=clavm_null"]);
                assert!(made.status.success(), "no sink, and no null sink: {}", String::from_utf8_lossy(&made.stderr));
                self.tool("pactl", &["set-default-sink", "clavm_null"]);
                loaded = true;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(25),
                "the headless PipeWire gave no default sink in 25 s (pactl: {} {})\n{}",
                String::from_utf8_lossy(&sinks.stdout),
                String::from_utf8_lossy(&sinks.stderr),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A command run against these daemons.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        env(&mut cmd, self.dir.path());
        cmd
    }

    /// A PipeWire or Pulse tool, run to its end.
    pub fn tool(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program} must be installed (scripts/setup.sh): {e}"))
    }

    /// `clavm play PATCH --host HOST [extra]` on these daemons, stderr piped.
    pub fn play(&self, patch: &Path, host: &str, extra: &[&str]) -> Child {
        self.command(env!("CARGO_BIN_EXE_clavm"))
            .args(["play", patch.to_str().unwrap(), "--host", host, "--no-osc", "--midi", "none"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Records the monitor of `sink` (default: the default sink) into `wav`; stop it with `Recorder::finish`.
    pub fn record(&self, wav: &Path, sink: Option<&str>) -> Recorder {
        let mut cmd = self.command("pw-record");
        cmd.args(["-P", "{ stream.capture.sink=true }", "--rate", "48000", "--channels", "2", "--format", "f32"]);
        if let Some(s) = sink {
            cmd.args(["--target", s]);
        }
        let child = cmd
            .arg(wav)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pw-record (Debian package pipewire-bin) must be installed: run scripts/setup.sh");
        Recorder { child, wav: wav.to_path_buf() }
    }
}

/// The environment of a client of these daemons (and nothing of the caller's session).
fn env(cmd: &mut Command, dir: &Path) {
    for var in [
        "PIPEWIRE_RUNTIME_DIR",
        "PIPEWIRE_REMOTE",
        "PULSE_SERVER",
        "PULSE_RUNTIME_PATH",
        "JACK_DEFAULT_SERVER",
        "DBUS_SESSION_BUS_ADDRESS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("XDG_RUNTIME_DIR", dir)
        .env("HOME", dir.join("home"))
        .env("XDG_CONFIG_HOME", dir.join("home/.config"))
        .env("XDG_STATE_HOME", dir.join("home/.state"))
        // A JACK server of another test must not be "auto"'s choice or libjack's.
        .env("JACK_NO_START_SERVER", "1");
}

impl Drop for PipeWire {
    fn drop(&mut self) {
        let pgid = self.group.id() as i32;
        // SAFETY: signalling the process group we made for our own children.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let t0 = Instant::now();
        while self.group.try_wait().ok().flatten().is_none() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above; whatever did not leave on SIGTERM.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.group.wait();
    }
}

/// A running `pw-record`.
pub struct Recorder {
    child: Child,
    wav: PathBuf,
}

impl Recorder {
    /// Stops the recording (SIGINT: pw-record writes the WAV header) and reads it, channel 0.
    pub fn finish(self) -> Vec<f32> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let out = self.child.wait_with_output().unwrap();
        let mut reader = hound::WavReader::open(&self.wav).unwrap_or_else(|e| {
            panic!("pw-record wrote no readable {} ({e}): {}", self.wav.display(), String::from_utf8_lossy(&out.stderr))
        });
        let channels = usize::from(reader.spec().channels);
        let samples: Vec<f32> = reader.samples::<f32>().map(Result::unwrap).collect();
        samples.chunks_exact(channels).map(|f| f[0]).collect()
    }
}

/// The middle of the loud part of `x` (where |x| is over a tenth of its peak), at most `seconds` long.
pub fn loud_middle(x: &[f32], seconds: f64) -> &[f32] {
    let peak = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let first = x.iter().position(|v| v.abs() > peak / 10.0).unwrap_or(0);
    let last = x.iter().rposition(|v| v.abs() > peak / 10.0).unwrap_or(0);
    let len = ((seconds * f64::from(SR)) as usize).min(last.saturating_sub(first));
    let mid = (first + last) / 2;
    &x[mid - len / 2..mid - len / 2 + len]
}

/// The median RMS of `x`'s 20 ms windows: robust to a few blocks of silence from a busy machine.
pub fn steady_rms(x: &[f32]) -> f64 {
    let mut w: Vec<f64> = x.chunks_exact((SR / 50) as usize).map(super::jack::rms).collect();
    if w.is_empty() {
        return 0.0;
    }
    w.sort_by(|a, b| a.total_cmp(b));
    w[w.len() / 2]
}
