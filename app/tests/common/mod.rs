//! Helpers shared by the end-to-end test files (each file uses some of them).
#![allow(dead_code)]

pub mod jack;

/// How many `clavm __worker` processes the engine in process `pid` has running.
pub fn workers_of(pid: u32) -> usize {
    let pid = pid.to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            args.len() > 4 && args[1] == b"__worker" && args[4] == pid.as_bytes()
        })
        .count()
}
