//! Issue 16 part 4: scripts/install.sh puts clavm, a desktop entry that
//! passes desktop-file-validate (Exec=clavm %f), its icon and the MIME
//! association for C files into a prefix; launched the way the entry says
//! (in a Wayland compositor, with a headless PipeWire as the session's
//! sound), `clavm FILE.c` plays the file; scripts/uninstall.sh leaves the
//! prefix as it found it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::jack::{drain_stderr, frequency};
use common::pipewire::{loud_middle, PipeWire};
use common::sway::Sway;

fn script(name: &str, args: &[&str]) -> std::process::Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts").join(name);
    Command::new("bash").arg(path).args(args).output().unwrap()
}

fn tree(root: &Path) -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd {
            let p = e.unwrap().path();
            v.push(p.display().to_string());
            v.extend(tree(&p));
        }
    }
    v.sort();
    v
}

#[test]
fn install_validates_associates_c_files_plays_a_file_as_the_entry_says_and_uninstalls_to_nothing() {
    let root = tempfile::tempdir().unwrap();
    let prefix = root.path().join("prefix");
    let p = prefix.to_str().unwrap();
    let out = script("install.sh", &["--prefix", p, "--bin", env!("CARGO_BIN_EXE_clavm")]);
    assert!(
        out.status.success(),
        "install: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let entry = prefix.join("share/applications/clavm.desktop");
    let v =
        Command::new("desktop-file-validate").arg(&entry).output().expect("desktop-file-validate (desktop-file-utils)");
    let said = format!("{}{}", String::from_utf8_lossy(&v.stdout), String::from_utf8_lossy(&v.stderr));
    assert!(v.status.success() && !said.contains("error"), "desktop-file-validate: {said}");
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(text.lines().any(|l| l == "Exec=clavm %f"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("MimeType=") && l.contains("text/x-csrc;")), "{text}");
    assert!(text.lines().any(|l| l == "Icon=clavm"), "{text}");
    let icon = std::fs::read_to_string(prefix.join("share/icons/hicolor/scalable/apps/clavm.svg")).unwrap();
    assert!(icon.contains("<svg"), "the icon is an SVG");
    assert!(prefix.join("bin/clavm").is_file());

    // The MIME association as a file manager finds it (the desktop database of the prefix).
    let config = root.path().join("config");
    std::fs::create_dir(&config).unwrap();
    let share = prefix.join("share");
    let q = Command::new("xdg-mime")
        .args(["query", "default", "text/x-csrc"])
        .env("XDG_DATA_HOME", &share)
        .env("XDG_DATA_DIRS", &share)
        .env("XDG_CONFIG_HOME", &config)
        .env_remove("XDG_CURRENT_DESKTOP")
        .output()
        .expect("xdg-mime (xdg-utils)");
    assert_eq!(String::from_utf8_lossy(&q.stdout).trim(), "clavm.desktop", "{}", String::from_utf8_lossy(&q.stderr));
    let cache = std::fs::read_to_string(prefix.join("share/applications/mimeinfo.cache")).unwrap();
    assert!(cache.contains("text/x-csrc=clavm.desktop;"), "{cache}");

    // Launched as the entry says: Exec with %f replaced by the file, clavm found on PATH.
    let pw = PipeWire::start();
    let sway = Sway::start(1024, 700);
    let dir = tempfile::tempdir().unwrap();
    let patch = dir.path().join("tone.c");
    std::fs::write(&patch, "void play(void) { float s = 0.25f * Cycle(220.0f); _out(0, s); _out(1, s); }\n").unwrap();
    let exec: Vec<String> = text
        .lines()
        .find_map(|l| l.strip_prefix("Exec="))
        .unwrap()
        .split(' ')
        .map(|a| if a == "%f" { patch.display().to_string() } else { a.to_string() })
        .collect();
    let rec = pw.record(&dir.path().join("rec.wav"), Some(&pw.sink));
    let path = format!("{}:{}", prefix.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let mut app = pw
        .command(&exec[0])
        .args(&exec[1..])
        .env("PATH", path)
        .env("WAYLAND_DISPLAY", sway.runtime().join(&sway.display))
        .env("XDG_STATE_HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = drain_stderr(&mut app);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(8) && app.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let early = app.try_wait().unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(app.id() as i32, libc::SIGTERM) };
    let _ = app.wait();
    let err = err.join().unwrap();
    let recorded = rec.finish();
    assert!(early.is_none(), "the app ended by itself ({early:?}): {err}");
    let middle = loud_middle(&recorded, 1.0);
    assert!(middle.len() > 24000, "the file did not play through PipeWire: {} frames of sound\n{err}", middle.len());
    let f = frequency(middle);
    assert!((f - 220.0).abs() < 2.0, "{f:.1} Hz played, the file says 220\n{err}");
    drop(sway);
    drop(pw);

    let out = script("uninstall.sh", &["--prefix", p]);
    assert!(out.status.success(), "uninstall: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!prefix.exists(), "left behind: {:?}", tree(&prefix));

    // A prefix that holds other things keeps them, and only them.
    std::fs::create_dir_all(prefix.join("share/applications")).unwrap();
    std::fs::write(
        prefix.join("share/applications/other.desktop"),
        "[Desktop Entry]\nType=Application\nName=Other\nExec=other\n",
    )
    .unwrap();
    let before = tree(&prefix);
    assert!(script("install.sh", &["--prefix", p, "--bin", env!("CARGO_BIN_EXE_clavm")]).status.success());
    assert!(script("uninstall.sh", &["--prefix", p]).status.success());
    assert_eq!(tree(&prefix), before, "uninstall removes exactly what install added");
}
