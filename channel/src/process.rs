//! Is a process still the one that wrote its pid into a channel?

/// This process's pid.
pub(crate) fn own_pid() -> u32 {
    std::process::id()
}

/// The state (field 3) and start time (field 22, clock ticks since boot) of
/// `pid` from `/proc/PID/stat`; the start time tells a live process from a recycled pid.
fn stat(pid: u32) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: skip past the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.to_string();
    Some((state, fields.nth(18)?.parse().ok()?))
}

/// The start time of `pid`.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// Whether `pid` exists (any state but a zombie) and, if `start` is given, started then.
pub(crate) fn alive(pid: u32, start: Option<u64>) -> bool {
    match (pid, stat(pid)) {
        (0, _) | (_, None) => false,
        (_, Some((state, _))) if state == "Z" || state == "X" => false,
        (_, Some((_, started))) => start.is_none_or(|s| s == started),
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
