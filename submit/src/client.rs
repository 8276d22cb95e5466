//! The editor's side: send a patch, wait for the engine's reply.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clavm_channel::{Error as ChannelError, Receiver, RecvError, SendError, Sender, Wait};

use crate::protocol::{
    reply_config, Malformed, ParamKind, ParamMsg, Reply, Submit, MAX_NAME_BYTES, MAX_PATCH_BYTES, PARAM_CHANNEL,
    SUBMIT_CHANNEL,
};

/// While waiting for a reply, how often to look whether the engine still runs.
const LIVENESS_CHECK: Duration = Duration::from_millis(50);
/// While the engine is not there (yet), how often to look for it again.
const RECONNECT: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// No engine of that name answered within the timeout: not running,
    /// restarting, stuck, or killed mid-reply.
    #[error("engine {engine:?} not responding: {why}")]
    NotResponding { engine: String, why: String },
    #[error("{name} is {len} bytes; the engine takes patches up to {max} bytes")]
    TooLarge { name: String, len: usize, max: usize },
    #[error("the engine's submit queue is full; try again")]
    Busy,
    #[error("the engine's parameter queue is full; try again")]
    ParamQueueFull,
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

impl SubmitError {
    /// The process exit status for `clavm submit`: 2 when the engine did not answer, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            // 2 is a usage error for every clavm command (README).
            SubmitError::NotResponding { .. } => 3,
            _ => 1,
        }
    }
}

/// A connection to one engine: its submit channel and our reply channel.
pub struct Client {
    engine: String,
    submit: Sender,
    reply: Receiver,
    reply_name: String,
    next_request: u64,
}

fn connect_error(engine: &str, e: ChannelError) -> SubmitError {
    match e {
        ChannelError::NotFound(_) => {
            SubmitError::NotResponding { engine: engine.to_string(), why: "it is not running".into() }
        }
        ChannelError::OwnerGone { pid, .. } => {
            SubmitError::NotResponding { engine: engine.to_string(), why: format!("its process ({pid}) has exited") }
        }
        e => SubmitError::Channel(e),
    }
}

impl Client {
    /// Connects to `engine`, waiting up to `timeout` for it to appear (it may be starting).
    pub fn connect(engine: &str, timeout: Duration) -> Result<Client, SubmitError> {
        let deadline = Instant::now() + timeout;
        let submit = loop {
            match Sender::open(engine, SUBMIT_CHANNEL) {
                Ok(s) => break s,
                Err(e @ (ChannelError::NotFound(_) | ChannelError::OwnerGone { .. })) => {
                    if Instant::now() + RECONNECT > deadline {
                        return Err(connect_error(engine, e));
                    }
                    std::thread::sleep(RECONNECT);
                }
                Err(e) => return Err(e.into()),
            }
        };
        // Reply channels of clients that were killed are never created again: sweep them.
        let _ = clavm_channel::remove_stale(engine);
        static N: AtomicU64 = AtomicU64::new(0);
        // A name of ours someone else took (squatted) is skipped, never used: take the next.
        let mut tries = 0;
        let (reply, reply_name) = loop {
            let name = format!("reply-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
            match Receiver::create(engine, &name, reply_config()) {
                Ok(r) => break (r, name),
                Err(ChannelError::NotOurs { .. } | ChannelError::InUse { .. }) if tries < 16 => tries += 1,
                Err(e) => return Err(e.into()),
            }
        };
        Ok(Client { engine: engine.to_string(), submit, reply, reply_name, next_request: 1 })
    }

    pub fn engine(&self) -> &str {
        &self.engine
    }

    /// Whether the engine this client talks to still runs, on the channel we
    /// hold (it replaces a submit channel whose file was cut or changed).
    pub fn engine_alive(&self) -> bool {
        self.submit.owner_alive() && self.submit.intact()
    }

    /// Sends `code` (shown as `name` in diagnostics) and waits up to `timeout` for the reply.
    pub fn send(&mut self, name: &str, code: &str, timeout: Duration) -> Result<Reply, SubmitError> {
        self.send_quantised(name, code, None, timeout)
    }

    /// As [`Client::send`], landing on the next multiple of `quant` beats (None:
    /// the engine's default; Some(0.0): the next block).
    pub fn send_quantised(
        &mut self,
        name: &str,
        code: &str,
        quant: Option<f64>,
        timeout: Duration,
    ) -> Result<Reply, SubmitError> {
        if code.len() > MAX_PATCH_BYTES {
            return Err(SubmitError::TooLarge { name: name.to_string(), len: code.len(), max: MAX_PATCH_BYTES });
        }
        let mut cut = name.len().min(MAX_NAME_BYTES);
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        let request = self.next_request;
        self.next_request += 1;
        let msg = Submit { request, reply: &self.reply_name, name: &name[..cut], code, quant };
        let start = Instant::now();
        let deadline = start.checked_add(timeout).unwrap_or(start);
        let mut grant = loop {
            match self.submit.try_reserve(msg.encoded_len()) {
                Ok(g) => break g,
                Err(SendError::Full) if !self.submit.owner_alive() => {
                    return Err(self.not_responding("its process has exited"));
                }
                Err(SendError::Full | SendError::Abandoned) => return Err(SubmitError::Busy),
                Err(SendError::TooLarge { len, max }) => {
                    return Err(SubmitError::TooLarge { name: name.to_string(), len, max })
                }
                Err(SendError::Broken) => return Err(self.not_responding("its submit channel was truncated")),
                // The engine resets a scribbled ring when it next looks at it: try again until the deadline.
                Err(SendError::Garbage) => {
                    if Instant::now() + RECONNECT > deadline {
                        return Err(self.not_responding("its submit channel holds garbage"));
                    }
                    std::thread::sleep(RECONNECT);
                }
            }
        };
        let len = msg.encode(grant.bytes_mut());
        grant.commit(len).map_err(|_| SubmitError::Busy)?;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.not_responding(&format!("no reply in {:.1} s", timeout.as_secs_f64())));
            }
            let got = match self.reply.recv_bytes(Wait::Sleep, (deadline - now).min(LIVENESS_CHECK)) {
                Ok(m) => Some(Reply::decode(&m)),
                Err(RecvError::Broken) => Some(Err(Malformed("reply channel that was truncated".into()))),
                Err(_) => None,
            };
            match got {
                // A late reply to an earlier request that timed out: not ours.
                Some(Ok(r)) if r.request != request => continue,
                Some(Ok(r)) => return Ok(r),
                Some(Err(e)) => return Err(self.not_responding(&format!("it sent a {e}"))),
                None if !self.submit.owner_alive() => {
                    return Err(self.not_responding("its process exited before replying"))
                }
                None => continue,
            }
        }
    }

    fn not_responding(&self, why: &str) -> SubmitError {
        SubmitError::NotResponding { engine: self.engine.clone(), why: why.to_string() }
    }
}

/// Sends one patch to `engine` and waits for the reply (connecting included).
pub fn send(engine: &str, name: &str, code: &str, timeout: Duration) -> Result<Reply, SubmitError> {
    send_quantised(engine, name, code, None, timeout)
}

/// As [`send`], landing on the next multiple of `quant` beats (None: the engine's default).
pub fn send_quantised(
    engine: &str,
    name: &str,
    code: &str,
    quant: Option<f64>,
    timeout: Duration,
) -> Result<Reply, SubmitError> {
    let t0 = Instant::now();
    let mut client = Client::connect(engine, timeout)?;
    client.send_quantised(name, code, quant, timeout.saturating_sub(t0.elapsed()))
}

/// Sets a live parameter in `engine` (fire and forget: it reaches `play()` within a block).
pub fn set_param(engine: &str, kind: ParamKind, index: u32, value: f64) -> Result<(), SubmitError> {
    let tx = Sender::open(engine, PARAM_CHANNEL).map_err(|e| connect_error(engine, e))?;
    match tx.try_send(&ParamMsg::new(kind, index, value)) {
        Ok(()) => Ok(()),
        Err(SendError::Full | SendError::Abandoned) => Err(SubmitError::ParamQueueFull),
        Err(SendError::Garbage) => Err(SubmitError::NotResponding {
            engine: engine.to_string(),
            why: "its param channel holds garbage (it resets it when it next reads; try again)".into(),
        }),
        Err(SendError::Broken) => Err(SubmitError::NotResponding {
            engine: engine.to_string(),
            why: "its param channel was truncated".into(),
        }),
        Err(e @ SendError::TooLarge { .. }) => Err(SubmitError::NotResponding {
            engine: engine.to_string(),
            why: format!("its param channel is not a param channel ({e})"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{param_config, submit_config};
    use std::os::unix::fs::FileExt;

    #[test]
    fn a_scribbled_submit_ring_ends_a_send_at_its_deadline_and_a_full_param_ring_is_named() {
        let engine = format!("client{}", std::process::id());
        // An "engine" that never reads: its submit ring's first slot says "taken" though nobody took it.
        let _submit = Receiver::create(&engine, SUBMIT_CHANNEL, submit_config()).unwrap();
        let path = clavm_channel::path_of(&engine, SUBMIT_CHANNEL).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&(1u64 << 40).to_ne_bytes(), 320).unwrap();
        let e = send(&engine, "a.c", "void play(void) {}", Duration::from_millis(200)).unwrap_err();
        assert!(matches!(&e, SubmitError::NotResponding { why, .. } if why.contains("garbage")), "{e}");
        assert_eq!(e.exit_code(), 3);

        let _param = Receiver::create(&engine, PARAM_CHANNEL, param_config()).unwrap();
        let mut last = Ok(());
        for _ in 0..=param_config().slot_count {
            last = set_param(&engine, ParamKind::P, 0, 0.5);
        }
        let e = last.unwrap_err();
        assert!(matches!(e, SubmitError::ParamQueueFull), "{e}");
        assert_eq!(e.to_string(), "the engine's parameter queue is full; try again");
    }
}
