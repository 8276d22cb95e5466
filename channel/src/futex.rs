//! Futexes on words in shared memory (JACK2's pattern): the waker stores then
//! wakes; the waiter sleeps only while the word still holds what it last saw,
//! and never past its deadline.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Wakes every process waiting on `word`.
#[inline]
pub fn wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a valid, aligned u32; shared (not private) because
    // waiters live in other processes. Cannot block.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            0,
            0,
        );
    }
}

/// Sleeps while `word == expected`, at most `timeout`. Spurious wake-ups are
/// possible: callers re-check their condition.
#[inline]
pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts =
        libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as libc::c_long };
    // SAFETY: FUTEX_WAIT on a valid, aligned u32 with a relative timeout; it
    // returns at once if the word no longer holds `expected`.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, &ts as *const libc::timespec, 0, 0);
    }
}

/// Waits until `word == target` or `deadline`, spinning for `spin` first
/// (a worker usually answers within microseconds). True if reached.
#[inline]
pub fn wait_for(word: &AtomicU32, target: u32, deadline: Instant, spin: Duration) -> bool {
    let spin_until = Instant::now() + spin;
    loop {
        let seen = word.load(Ordering::Acquire);
        if seen == target {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        if now < spin_until {
            std::hint::spin_loop();
            continue;
        }
        wait(word, seen, deadline - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_waiter_is_woken_and_a_deadline_is_kept() {
        let w = Arc::new(AtomicU32::new(0));
        let t0 = Instant::now();
        assert!(!wait_for(&w, 1, t0 + Duration::from_millis(20), Duration::ZERO));
        let waited = t0.elapsed();
        assert!(waited >= Duration::from_millis(20) && waited < Duration::from_millis(200), "{waited:?}");
        let w2 = w.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            w2.store(1, Ordering::Release);
            wake(&w2);
        });
        assert!(wait_for(&w, 1, Instant::now() + Duration::from_secs(5), Duration::ZERO));
        h.join().unwrap();
    }
}
