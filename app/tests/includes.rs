//! End-to-end: `clavm check` on every hostile include patch exits 1 with one
//! diagnostic line naming the patch, under an address-space limit (an include
//! that read /dev/zero grew to several GB) and with standard input held open
//! (an include of "-" would wait on it forever).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Far more than a check takes; only a hang reaches it.
const HANG: Duration = Duration::from_secs(60);

fn corpus() -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/hostile/patches");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("include-"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let expect = text.lines().nth(1).and_then(|l| l.strip_prefix("// expect: compile-error: "));
            let expect = expect.unwrap_or_else(|| panic!("{}: no compile-error expectation", p.display())).to_string();
            (p, expect)
        })
        .collect();
    out.sort();
    out
}

/// Runs `clavm check PATCH` with at most 2 GiB of address space (when
/// prlimit exists); returns the exit code and stderr, or None on a hang.
fn check(patch: &Path) -> Option<(Option<i32>, String)> {
    let bin = env!("CARGO_BIN_EXE_clavm");
    let mut cmd = if Path::new("/usr/bin/prlimit").exists() {
        let mut c = Command::new("/usr/bin/prlimit");
        c.arg("--as=2147483648").arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let mut child = cmd
        .arg("check")
        .arg(patch)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run clavm");
    let _stdin = child.stdin.take(); // held open, never written
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            return Some((status.code(), err));
        }
        if t0.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_hostile_include_is_one_line_naming_the_patch_with_bounded_memory() {
    let corpus = corpus();
    assert!(corpus.len() >= 10, "{corpus:?}");
    for (patch, expect) in corpus {
        let (code, err) = check(&patch).unwrap_or_else(|| panic!("{}: clavm check hung", patch.display()));
        assert_eq!(code, Some(1), "{}: {err}", patch.display());
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{}: {err}", patch.display());
        let prefix = format!("{}:", patch.display());
        assert!(lines[0].starts_with(&prefix) && lines[0].contains(": error: "), "{}", lines[0]);
        assert!(lines[0].contains(&expect), "expected {expect:?} in {}", lines[0]);
    }
}

#[test]
fn the_example_patches_still_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/patches");
    let mut n = 0;
    for p in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
        if p.extension().is_some_and(|e| e == "c") {
            let (code, err) = check(&p).unwrap_or_else(|| panic!("{}: clavm check hung", p.display()));
            assert_eq!(code, Some(0), "{}: {err}", p.display());
            n += 1;
        }
    }
    assert!(n > 5);
}
