//! Is a process still the one that wrote its pid into a channel?

/// This process's pid.
pub(crate) fn own_pid() -> u32 {
    std::process::id()
}

/// The start time of `pid` in clock ticks since boot (field 22 of
/// `/proc/PID/stat`), which tells a live process from a recycled pid.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 3 is the first after it; the start time is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` exists (any state but a zombie) and, if `start` is given, started then.
pub(crate) fn alive(pid: u32, start: Option<u64>) -> bool {
    if pid == 0 {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let Some(close) = stat.rfind(')') else { return false };
    let mut fields = stat[close + 1..].split_whitespace();
    if matches!(fields.next(), Some("Z") | Some("X") | None) {
        return false;
    }
    match start {
        None => true,
        Some(s) => fields.nth(18).and_then(|f| f.parse::<u64>().ok()) == Some(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not_it() {
        let me = own_pid();
        let start = start_time(me).expect("own start time");
        assert!(alive(me, Some(start)));
        assert!(alive(me, None));
        assert!(!alive(me, Some(start + 1)));
        assert!(!alive(0, None));
    }

    #[test]
    fn a_reaped_child_and_a_zombie_are_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Wait until it exits without reaping: a zombie.
        let t0 = std::time::Instant::now();
        while alive(pid, None) {
            assert!(t0.elapsed() < std::time::Duration::from_secs(5), "child never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child.wait().unwrap();
        assert!(!alive(pid, None));
    }
}
