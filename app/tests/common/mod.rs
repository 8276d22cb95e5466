//! Helpers shared by the end-to-end test files (each file uses some of them).
#![allow(dead_code)]

pub mod dnd;
pub mod jack;
pub mod pipewire;
pub mod sway;
pub mod weston;

use std::path::PathBuf;

/// A temporary directory for one test, removed when dropped.
pub struct Dir(pub tempfile::TempDir);

impl Dir {
    pub fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    /// Every name in the directory (hidden ones too), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.0.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
    /// Asserts the directory holds exactly `names` (nothing written, nothing left over).
    pub fn assert_holds(&self, names: &[&str]) {
        let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(self.names(), want, "directory contents");
    }
}

/// How many `clavm __worker` processes the engine in process `pid` has running.
pub fn workers_of(pid: u32) -> usize {
    worker_pids(pid).len()
}

/// The pids of the `clavm __worker` processes serving the engine in process `pid`.
pub fn worker_pids(pid: u32) -> Vec<u32> {
    let pid = pid.to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            args.len() > 3 && args[1] == b"__worker" && args[3] == pid.as_bytes()
        })
        .collect()
}
