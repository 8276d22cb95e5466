//! The engine's end of the submit path: patches arrive on the shared-memory
//! channel `ENGINE.submit`, go to the live engine, and each client gets one
//! reply on its own channel when its patch plays, or why it does not.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use clavm_audio::clock::Quant;
use clavm_audio::live::{LiveEngine, LiveEvent, SubmitId, Submitter};
use clavm_audio::PatchSource;
use clavm_channel::{Receiver, RecvError, Sender, Wait};
use clavm_submit::protocol::{submit_config, Outcome, Reply, Submit, SUBMIT_CHANNEL};

/// How often the server threads look at their stop flag while idle.
const IDLE: Duration = Duration::from_millis(200);

/// A client waiting for the outcome of its submit.
struct Waiting {
    reply: Sender,
    request: u64,
}

impl Waiting {
    fn answer(self, reply: Reply) {
        let bytes = Reply { request: self.request, ..reply }.encode();
        if let Err(e) = self.reply.try_send_bytes(&bytes) {
            tracing::warn!("cannot reply to a submit: {e}");
        }
    }
}

#[derive(Default)]
struct Pending {
    by_submit: HashMap<SubmitId, Waiting>,
    /// Compiled and installed; waiting for the first block: (client, compile, test, warnings).
    by_version: BTreeMap<u64, (Waiting, Duration, Duration, String)>,
}

/// Serves `ENGINE.submit` until dropped.
pub struct SubmitServer {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    engine: String,
}

impl SubmitServer {
    pub fn start(engine_name: &str, engine: &LiveEngine) -> anyhow::Result<SubmitServer> {
        let rx = Receiver::create(engine_name, SUBMIT_CHANNEL, submit_config()).with_context(|| {
            format!("opening the submit channel of engine '{engine_name}' (another engine of that name? use --engine)")
        })?;
        // Reply channels of clients killed while this name last ran.
        let _ = clavm_channel::remove_stale(engine_name);
        let stop = Arc::new(AtomicBool::new(false));
        let pending = Arc::new(Mutex::new(Pending::default()));
        let events = engine.subscribe();
        let submitter = engine.submitter();
        let engine = engine_name.to_string();
        let receive = {
            let (stop, pending) = (stop.clone(), pending.clone());
            std::thread::Builder::new()
                .name("clavm-submit".into())
                .spawn(move || receive(rx, &engine, submitter, &pending, &stop))?
        };
        let answer = {
            let (stop, pending) = (stop.clone(), pending.clone());
            std::thread::Builder::new().name("clavm-reply".into()).spawn(move || answer(events, &pending, &stop))?
        };
        Ok(SubmitServer { stop, threads: vec![receive, answer], engine: engine_name.to_string() })
    }
}

impl Drop for SubmitServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // Clients that exited without closing (an editor's cached connection) leave their reply channels.
        let _ = clavm_channel::remove_stale(&self.engine);
    }
}

/// What a receive loop does about a channel that failed it: a ring of
/// garbage was reset (said, then served on); a file that was cut, changed or
/// removed is replaced by a fresh channel (said), or, if that fails too,
/// given up (said: the engine plays on without that input). A timeout is
/// when the file is looked at. `None`: stop serving.
pub(crate) fn recover(rx: Receiver, e: RecvError, what: &str) -> Option<Receiver> {
    let e = match e {
        RecvError::Timeout if !rx.intact() => RecvError::Broken,
        e => e,
    };
    match e {
        RecvError::Reset => {
            eprintln!("clavm: the {what} channel held garbage: reset (anything queued on it was dropped)");
            Some(rx)
        }
        RecvError::Broken => {
            match rx.renew() {
                Ok(rx) => {
                    eprintln!("clavm: the {what} channel's file was cut or changed: replaced by a new one");
                    Some(rx)
                }
                Err(e) => {
                    eprintln!("clavm: the {what} channel's file was cut or changed and cannot be replaced ({e}): no more {what}s");
                    None
                }
            }
        }
        _ => Some(rx),
    }
}

fn receive(mut rx: Receiver, engine: &str, submitter: Submitter, pending: &Mutex<Pending>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let e = match rx.recv_bytes(Wait::Sleep, IDLE) {
            Ok(msg) => {
                serve_one(&msg, engine, &submitter, pending);
                continue;
            }
            Err(e) => e,
        };
        if matches!(e, RecvError::Reset | RecvError::Broken | RecvError::Timeout) {
            match recover(rx, e, "submit") {
                Some(r) => rx = r,
                None => return,
            }
        }
    }
}

/// One submit off the channel: decoded (or refused, said), handed to the engine.
fn serve_one(msg: &[u8], engine: &str, submitter: &Submitter, pending: &Mutex<Pending>) {
    let submit = match Submit::decode(msg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("clavm: ignored a submit: {e}");
            return;
        }
    };
    let reply = match Sender::open(engine, submit.reply) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("clavm: a submit of {} came without a usable reply channel ({e}); not installed", submit.name);
            return;
        }
    };
    let source = PatchSource {
        name: submit.name.to_string(),
        text: submit.code.to_string(),
        dir: Path::new(submit.name).parent().filter(|d| d.is_dir()).map(Path::to_path_buf),
    };
    let waiting = Waiting { reply, request: submit.request };
    let quant = match submit.quant.map(Quant::new).transpose() {
        Ok(q) => q,
        Err(e) => {
            let text = format!("{}: {e}; not installed\n", submit.name);
            let refused = Reply {
                request: 0,
                outcome: Outcome::Malformed,
                version: 0,
                compile: Duration::ZERO,
                test: Duration::ZERO,
                swap: Duration::ZERO,
                text,
            };
            waiting.answer(refused);
            return;
        }
    };
    // Hold the lock across the submit: its outcome cannot be looked up before it is recorded.
    let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
    let id = submitter.submit_quantised(source, quant);
    p.by_submit.insert(id, waiting);
}

fn answer(events: std::sync::mpsc::Receiver<LiveEvent>, pending: &Mutex<Pending>, stop: &AtomicBool) {
    let failed = |outcome, text: String| Reply {
        request: 0,
        outcome,
        version: 0,
        compile: Duration::ZERO,
        test: Duration::ZERO,
        swap: Duration::ZERO,
        text,
    };
    while !stop.load(Ordering::Relaxed) {
        let Ok(e) = events.recv_timeout(IDLE) else { continue };
        let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
        match e {
            LiveEvent::Compiled { submit, version, compile, test, warnings, .. } => {
                if let Some(w) = p.by_submit.remove(&submit) {
                    let text: String = warnings.iter().map(|d| format!("{d}\n")).collect();
                    p.by_version.insert(version, (w, compile, test, text));
                }
            }
            LiveEvent::Rejected { submit, diagnostics, .. } => {
                if let Some(w) = p.by_submit.remove(&submit) {
                    w.answer(failed(Outcome::Rejected, diagnostics.iter().map(|d| format!("{d}\n")).collect()));
                }
            }
            LiveEvent::TestFailed { submit, name, reason } => {
                if let Some(w) = p.by_submit.remove(&submit) {
                    w.answer(failed(Outcome::Failed, format!("{name}: {reason}; the old code keeps playing\n")));
                }
            }
            LiveEvent::Waiting { version, .. } => {
                // Answered now: a bar can be long, and the editor wants to know it compiled.
                if let Some((w, compile, test, mut text)) = p.by_version.remove(&version) {
                    text.push_str(&format!("{}\n", e.describe(0.0).split(" (t=").next().unwrap_or("waiting")));
                    w.answer(Reply { version, compile, test, text, ..failed(Outcome::Waiting, String::new()) });
                }
            }
            LiveEvent::Playing { version, swap, .. } => {
                // Versions installed before this one and never played were replaced before their first block.
                let older: Vec<u64> = p.by_version.range(..version).map(|(v, _)| *v).collect();
                for v in older {
                    let (w, compile, test, mut text) = p.by_version.remove(&v).expect("listed");
                    text.push_str(&format!("note: replaced by version {version} before its first block\n"));
                    w.answer(Reply { version: v, compile, test, text, ..failed(Outcome::Playing, String::new()) });
                }
                if let Some((w, compile, test, text)) = p.by_version.remove(&version) {
                    w.answer(Reply { version, compile, test, swap, text, ..failed(Outcome::Playing, String::new()) });
                }
            }
            _ => {}
        }
    }
}
