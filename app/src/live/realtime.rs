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
    /// `raise`: whether this stream's thread may run at SCHED_FIFO at all (see [`may_raise`]).
    pub fn start(host: &'static str, frames: u32, rate: u32, raise: bool) -> std::io::Result<(Promoter, Request)> {
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
        // Not raised: `ask` is a no-op from the first call.
        Ok((Promoter { stop, join: Some(join) }, Request { tx, helper, asked: !raise }))
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

/// Whether a stream on `host` through the device with id `device_id` may be
/// raised to SCHED_FIFO. On ALSA only a hardware PCM (`hw:...`): a plugin
/// (`default`, `pipewire`, `pulse`, `plughw`, dmix) may route to a sound
/// server whose own thread runs at normal priority, and cpal's stream thread
/// polling it then spins (measured with pipewire-alsa: 93% of a core per
/// stream); at SCHED_FIFO two such threads starve the workers on two cores.
/// cpal promotes only hardware PCM types for the same reason.
pub fn may_raise(host: &str, device_id: Option<&str>) -> bool {
    host != "ALSA" || device_id.is_some_and(|id| id.starts_with("hw:"))
}

/// One line saying why a stream stays at normal priority (printed once per
/// stream, from the thread that opens it).
pub fn note_not_raised(host: &str, device: &str) {
    eprintln!(
        "clavm: note: the {host} device '{device}' is a plugin that may route to a sound server: its audio thread stays at normal priority (choose a hw: device for realtime, or --host pipewire)"
    );
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

#[cfg(test)]
mod tests {
    use super::may_raise;

    #[test]
    fn alsa_raises_only_hardware_pcms_and_the_servers_always() {
        assert!(may_raise("ALSA", Some("hw:CARD=PCH,DEV=0")));
        for plugin in ["default", "pipewire", "pulse", "plughw:CARD=PCH,DEV=0", "dmix:CARD=PCH"] {
            assert!(!may_raise("ALSA", Some(plugin)), "{plugin}");
        }
        assert!(!may_raise("ALSA", None));
        assert!(may_raise("PipeWire", Some("default")) && may_raise("PulseAudio", None) && may_raise("JACK", None));
    }
}
