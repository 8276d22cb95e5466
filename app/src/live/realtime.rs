//! Realtime priority for a cpal stream's callback thread, the way the
//! sound servers do it for their own clients (PipeWire's module-rt,
//! PulseAudio's): first SCHED_FIFO directly (root, CAP_SYS_NICE, or an
//! RLIMIT_RTPRIO such as the audio group's), else through rtkit on the
//! system bus. JACK's native client needs none of this: the server runs its
//! clients' process threads at its own realtime priority.
//!
//! The callback's first call asks for SCHED_FIFO itself (one system call,
//! no allocation), so that the engine, which gives its workers a priority
//! below the callback's when it first runs, sees it already raised. When
//! that is refused it hands its thread's ids to a helper thread through a
//! one-slot ring (no allocation, no lock, no waiting); the helper asks rtkit
//! over D-Bus, which may block, and prints one line when that fails too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Our priority under SCHED_FIFO: below the servers' own threads (PipeWire
/// 88, JACK's server), above the desktop.
const FIFO_PRIORITY: i32 = 70;

/// How the callback thread's priority was raised (for the log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Direct,
    Rtkit,
    Denied,
}

/// The helper thread (dropping it stops it).
pub struct Promoter {
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

/// The callback's end: `ask()` on every call costs one branch after the first.
pub struct Request {
    /// The thread to raise, and why SCHED_FIFO was refused (an errno).
    tx: rtrb::Producer<(i32, i32, audio_thread_priority::RtPriorityThreadInfo)>,
    helper: std::thread::Thread,
    asked: bool,
}

impl Request {
    /// Call from the audio callback.
    pub fn ask(&mut self) {
        if self.asked {
            return;
        }
        self.asked = true;
        // SAFETY: gettid has no preconditions and cannot fail.
        let tid = unsafe { libc::gettid() };
        let errno = match fifo(tid) {
            Ok(()) => 0,
            Err(e) => e.raw_os_error().unwrap_or(libc::EPERM),
        };
        // Reads this thread's ids and scheduling policy (system calls, no allocation).
        if let Ok(info) = audio_thread_priority::get_current_thread_info() {
            let _ = self.tx.push((tid, errno, info));
            self.helper.unpark();
        }
    }
}

impl Promoter {
    /// A helper for the stream on `host` ("PipeWire"), playing `frames`-frame blocks at `rate`.
    pub fn start(host: &'static str, frames: u32, rate: u32) -> std::io::Result<(Promoter, Request)> {
        let (tx, mut rx) = rtrb::RingBuffer::new(1);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let join = std::thread::Builder::new().name("clavm-rt".into()).spawn(move || {
            let (tid, errno, info) = loop {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(got) = rx.pop() {
                    break got;
                }
                std::thread::park();
            };
            let result = match errno {
                0 => Outcome::Direct,
                errno => match audio_thread_priority::promote_thread_to_real_time(info, frames.max(64), rate) {
                    // The handle only demotes when asked to; the thread ends with the stream.
                    Ok(_handle) => Outcome::Rtkit,
                    Err(rtkit) => {
                        eprintln!(
                            "clavm: note: the {host} audio thread runs at normal priority (SCHED_FIFO: {}; rtkit: {rtkit}): grant RLIMIT_RTPRIO (the audio group) or run rtkit",
                            std::io::Error::from_raw_os_error(errno)
                        );
                        Outcome::Denied
                    }
                },
            };
            tracing::debug!("{host} audio thread {tid}: {result:?}");
        })?;
        let helper = join.thread().clone();
        Ok((Promoter { stop, join: Some(join) }, Request { tx, helper, asked: false }))
    }
}

impl Drop for Promoter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(j) = self.join.take() {
            j.thread().unpark();
            let _ = j.join();
        }
    }
}

/// SCHED_FIFO for thread `tid` of this process (reset for any child it forks).
fn fifo(tid: i32) -> Result<(), std::io::Error> {
    let param = libc::sched_param { sched_priority: FIFO_PRIORITY };
    // SAFETY: `param` is a valid sched_param for the call's duration; `tid` is a thread of ours.
    let r = unsafe { libc::sched_setscheduler(tid, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
