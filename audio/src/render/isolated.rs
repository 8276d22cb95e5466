//! The parent side of a sandboxed offline render: spawn `EXE __offline`,
//! send it the spec, and turn its stream back into sink calls, events and a
//! summary, as [`render_with`](super::render_with) would have produced them.
//!
//! The child runs patch code, so it is hostile: every message is bounded and
//! checked against the spec before anything is allocated or passed on, a
//! garbled or short stream is an error naming the patch, and a child that
//! stops making progress for `timeout` is asked where it is (SIGUSR1, answered
//! by its crash handler) and killed. The child is always killed and reaped
//! before this returns.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::wire::{Crash, Dec, Enc, Failure, Kind, HEADER, MAX_PAYLOAD};
use super::{Progress, RenderError, RenderEvent, RenderSpec, Summary};

/// The most event bytes a child may send (a report is ~100 bytes).
const MAX_EVENT_BYTES: usize = 16 << 20;
/// How long a child asked where it is (SIGUSR1) has to answer before it is killed.
const PROBE_GRACE: Duration = Duration::from_millis(500);
/// How long a child that closed its stream has to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// What went wrong with the child process itself.
#[derive(Debug, thiserror::Error)]
pub enum ChildProblem {
    #[error("cannot start it: {0}")]
    Spawn(std::io::Error),
    #[error("cannot read its output: {0}")]
    Io(std::io::Error),
    #[error("it could not enter the sandbox, so the patch was not run: {0}")]
    Sandbox(String),
    #[error("it could not read the render's description: {0}")]
    Spec(String),
    #[error("its output is garbled: {0}")]
    Garbled(String),
    #[error("it ended after {frames} of {total} frames without saying why ({status})")]
    EndedEarly { frames: u64, total: u64, status: String },
    #[error("{0}")]
    Other(String),
}

/// The text the crash messages give for a signal.
pub fn describe_signal(signal: i32, stack_overflow: bool) -> &'static str {
    match signal {
        libc::SIGSEGV if stack_overflow => "stack overflow: runaway recursion?",
        libc::SIGSEGV => "SIGSEGV: invalid memory access",
        libc::SIGBUS => "SIGBUS: invalid memory access",
        libc::SIGFPE => "SIGFPE: integer division by zero?",
        libc::SIGILL => "SIGILL: illegal instruction",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT: aborted",
        libc::SIGSYS => "SIGSYS: forbidden system call",
        libc::SIGXCPU => "SIGXCPU: CPU time limit",
        libc::SIGKILL => "SIGKILL: killed (out of memory?)",
        _ => "signal",
    }
}

/// Renders `spec` in a sandboxed child process (`exe __offline`, see
/// [`child`](super::child)): `sink` gets exactly the blocks [`render_with`](super::render_with)
/// would give it, `progress` follows the blocks received. A child that makes
/// no progress for `timeout` is killed ([`RenderError::Hung`]); one that
/// crashes gives [`RenderError::Crashed`].
pub fn render_isolated(
    exe: &Path,
    timeout: Duration,
    spec: &RenderSpec,
    progress: &Progress,
    sink: &mut dyn FnMut(&[f32]) -> Result<(), RenderError>,
) -> Result<Summary, RenderError> {
    let names: Vec<&str> =
        std::iter::once(&spec.patch).chain(spec.swaps.iter().map(|s| &s.patch)).map(|p| p.name.as_str()).collect();
    let mut run = Run {
        names: &names,
        spec,
        progress,
        done: 0,
        patch: 0,
        compiling: false,
        events: Vec::new(),
        event_bytes: 0,
        samples: Vec::new(),
    };
    let child = Command::new(exe)
        .arg("__offline")
        .arg(std::process::id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| run.problem(ChildProblem::Spawn(e)))?;
    let mut child = Reaped(child);
    let mut spec_bytes = Enc::default();
    spec_bytes.spec(spec);
    // The child reads all of its input before it writes anything, so this
    // cannot deadlock. A child that died first shows in what follows.
    if let Some(mut stdin) = child.0.stdin.take() {
        let _ = stdin.write_all(&spec_bytes.0);
    }
    let Some(stdout) = child.0.stdout.take() else {
        return Err(run.problem(ChildProblem::Other("no pipe from it".into())));
    };
    let chunks = read_chunks(stdout);
    run.stream(&mut child, &chunks, timeout, sink)
}

/// Kills and reaps the child when dropped, however the render ended.
struct Reaped(Child);

impl Reaped {
    /// The child's status once it has exited, waiting up to `grace` (then killing it).
    fn status(&mut self, grace: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + grace;
        loop {
            match self.0.try_wait() {
                Ok(Some(s)) => return Some(s),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    let _ = self.0.kill();
                    return self.0.wait().ok();
                }
            }
        }
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the reader thread hands over: bytes, or the end of the stream.
enum Chunk {
    Bytes(Vec<u8>),
    End(Option<std::io::Error>),
}

/// Reads the child's stdout on a thread (so the wait for it can time out
/// without `poll`), in chunks, through a short queue: a slow sink slows the
/// child instead of filling memory. The thread ends at the stream's end,
/// which killing the child brings at once.
fn read_chunks(mut from: impl Read + Send + 'static) -> Receiver<Chunk> {
    let (tx, rx) = sync_channel(8);
    let spawned = std::thread::Builder::new().name("clavm-offline-reader".into()).spawn(move || loop {
        let mut buf = vec![0u8; 64 * 1024];
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = tx.send(Chunk::End(None));
                return;
            }
            Ok(n) => {
                buf.truncate(n);
                if tx.send(Chunk::Bytes(buf)).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Chunk::End(Some(e)));
                return;
            }
        }
    });
    if let Err(e) = spawned {
        // The receiver then sees the end of the stream with the reason.
        let (tx, rx) = sync_channel(1);
        let _ = tx.send(Chunk::End(Some(e)));
        return rx;
    }
    rx
}

/// One render's state on the parent's side.
struct Run<'a> {
    names: &'a [&'a str],
    spec: &'a RenderSpec,
    progress: &'a Progress,
    /// Frames received.
    done: u64,
    /// The patch playing, or being compiled when `compiling`.
    patch: usize,
    compiling: bool,
    events: Vec<RenderEvent>,
    event_bytes: usize,
    samples: Vec<f32>,
}

/// How a message ended the stream (or did not).
enum Next {
    More,
    Done(Summary),
    Crash(Crash),
}

impl Run<'_> {
    fn name(&self, i: usize) -> String {
        self.names.get(i).copied().unwrap_or("the patch").to_string()
    }

    fn problem(&self, problem: ChildProblem) -> RenderError {
        RenderError::Child { patch: self.name(self.patch), problem }
    }

    fn garbled(&self, what: impl std::fmt::Display) -> RenderError {
        self.problem(ChildProblem::Garbled(what.to_string()))
    }

    fn at_ms(&self, frames: u64) -> u64 {
        let sr = (self.spec.config.sample_rate as u64).max(1);
        frames.saturating_mul(1000) / sr
    }

    fn hung(&self, timeout: Duration, crash: Option<Crash>) -> RenderError {
        let (patch, compiling, frames) = match crash {
            Some(c) => (self.name(c.patch as usize), c.compiling, c.frames.max(self.done)),
            None => (self.name(self.patch), self.compiling, self.done),
        };
        RenderError::Hung { patch, compiling, at_ms: self.at_ms(frames), limit_s: timeout.as_secs().max(1) }
    }

    fn crashed(&self, c: Crash) -> RenderError {
        RenderError::Crashed {
            patch: self.name(c.patch as usize),
            compiling: c.compiling,
            at_ms: self.at_ms(c.frames.max(self.done)),
            signal: c.signal,
            stack_overflow: c.stack_overflow,
        }
    }

    /// Reads messages until the child's summary, its failure, its crash, a
    /// hang, or a broken stream.
    fn stream(
        &mut self,
        child: &mut Reaped,
        chunks: &Receiver<Chunk>,
        timeout: Duration,
        sink: &mut dyn FnMut(&[f32]) -> Result<(), RenderError>,
    ) -> Result<Summary, RenderError> {
        let mut pending: Vec<u8> = Vec::new();
        let mut last_progress = Instant::now();
        loop {
            let wait = timeout.saturating_sub(last_progress.elapsed());
            let chunk = match chunks.recv_timeout(wait) {
                Ok(c) => c,
                Err(RecvTimeoutError::Timeout) => return Err(self.probe(child, chunks, pending, timeout)),
                Err(RecvTimeoutError::Disconnected) => Chunk::End(None),
            };
            let bytes = match chunk {
                Chunk::Bytes(b) => b,
                Chunk::End(error) => return Err(self.ended(child, error, &pending)),
            };
            pending.extend_from_slice(&bytes);
            let mut at = 0;
            while let Some((kind, payload)) = self.message(&pending[at..])? {
                at += HEADER + payload.len();
                let before = (self.done, self.patch, self.compiling);
                match self.handle(kind, payload, sink)? {
                    Next::More => {}
                    Next::Done(summary) => {
                        if at != pending.len() {
                            return Err(self.garbled("bytes after the summary"));
                        }
                        return Ok(summary);
                    }
                    Next::Crash(c) => return Err(self.crashed(c)),
                }
                if (self.done, self.patch, self.compiling) != before {
                    last_progress = Instant::now();
                }
            }
            pending.drain(..at);
        }
    }

    /// The next complete message at the start of `b`, if there is one.
    fn message<'b>(&self, b: &'b [u8]) -> Result<Option<(Kind, &'b [u8])>, RenderError> {
        if b.len() < HEADER {
            return Ok(None);
        }
        let kind = Kind::from_u8(b[0]).ok_or_else(|| self.garbled(format!("unknown message kind {}", b[0])))?;
        let len = u32::from_le_bytes([b[1], b[2], b[3], b[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(self.garbled(format!("a message of {len} bytes")));
        }
        Ok(b.get(HEADER..HEADER + len).map(|p| (kind, p)))
    }

    fn handle(
        &mut self,
        kind: Kind,
        payload: &[u8],
        sink: &mut dyn FnMut(&[f32]) -> Result<(), RenderError>,
    ) -> Result<Next, RenderError> {
        match kind {
            Kind::Block => {
                let ch = self.spec.config.channels.max(1);
                let frames = payload.len() / 4 / ch;
                let block = self.spec.block.max(1);
                if frames == 0 || payload.len() != frames * ch * 4 || frames > block {
                    return Err(self.garbled(format!(
                        "a block of {} bytes ({ch} channels, at most {block} frames)",
                        payload.len()
                    )));
                }
                if self.done + frames as u64 > self.spec.length.0 {
                    return Err(self.garbled(format!("more than the {} frames asked for", self.spec.length.0)));
                }
                self.samples.clear();
                if cfg!(target_endian = "little") {
                    // The wire's byte order: one copy into aligned samples (the hot path).
                    self.samples.resize(payload.len() / 4, 0.0);
                    bytemuck::cast_slice_mut::<f32, u8>(&mut self.samples).copy_from_slice(payload);
                } else {
                    self.samples.extend(payload.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
                }
                sink(&self.samples)?;
                self.done += frames as u64;
                self.progress.frames.store(self.done, Ordering::Relaxed);
                Ok(Next::More)
            }
            Kind::Step => {
                let mut d = Dec::new(payload);
                let running = d.bool().map_err(|e| self.garbled(e))?;
                let patch = d.u32().map_err(|e| self.garbled(e))? as usize;
                d.end().map_err(|e| self.garbled(e))?;
                if patch >= self.names.len() {
                    return Err(self.garbled(format!("patch {patch} of {}", self.names.len())));
                }
                self.compiling = !running;
                self.patch = patch;
                if running {
                    self.progress.patch.store(patch, Ordering::SeqCst);
                }
                Ok(Next::More)
            }
            Kind::Event => {
                self.event_bytes += payload.len();
                if self.event_bytes > MAX_EVENT_BYTES {
                    return Err(self.garbled(format!("more than {MAX_EVENT_BYTES} bytes of events")));
                }
                let e = Dec::new(payload).event().map_err(|e| self.garbled(e))?;
                self.events.push(e);
                Ok(Next::More)
            }
            Kind::Done => {
                let mut d = Dec::new(payload);
                let channels = d.u32().map_err(|e| self.garbled(e))? as usize;
                let sample_rate = d.u32().map_err(|e| self.garbled(e))?;
                d.end().map_err(|e| self.garbled(e))?;
                if channels != self.spec.config.channels || sample_rate != self.spec.config.sample_rate as u32 {
                    return Err(self.garbled(format!("a summary of {channels} channels at {sample_rate} Hz")));
                }
                if self.done != self.spec.length.0 {
                    return Err(self.garbled(format!("a summary after {} of {} frames", self.done, self.spec.length.0)));
                }
                let events = std::mem::take(&mut self.events);
                Ok(Next::Done(Summary { channels, sample_rate, events }))
            }
            Kind::Failed => Err(match Dec::new(payload).failure().map_err(|e| self.garbled(e))? {
                Failure::Patch(e) => RenderError::Patch(e),
                Failure::Config(e) => RenderError::Config(e),
                Failure::Sandbox(s) => self.problem(ChildProblem::Sandbox(s)),
                Failure::Spec(s) => self.problem(ChildProblem::Spec(s)),
                Failure::Other(s) => self.problem(ChildProblem::Other(s)),
            }),
            Kind::Crash => Ok(Next::Crash(Crash::decode(payload).map_err(|e| self.garbled(e))?)),
        }
    }

    /// The stream ended without a summary: a crash that left no message (the
    /// status names the signal) or an early exit.
    fn ended(&self, child: &mut Reaped, error: Option<std::io::Error>, pending: &[u8]) -> RenderError {
        let status = child.status(EXIT_GRACE);
        if let Some(e) = error {
            return self.problem(ChildProblem::Io(e));
        }
        if let Some(signal) = status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s)) {
            return self.crashed(Crash {
                signal,
                stack_overflow: false,
                compiling: self.compiling,
                patch: self.patch as u32,
                frames: self.done,
            });
        }
        if !pending.is_empty() {
            return self.garbled(format!("it ended inside a message ({} bytes)", pending.len()));
        }
        let status = status.map_or_else(|| "status unknown".to_string(), |s| s.to_string());
        self.problem(ChildProblem::EndedEarly { frames: self.done, total: self.spec.length.0, status })
    }

    /// No progress for `timeout`: ask the child where it is (its crash handler
    /// answers SIGUSR1 with its exact position), then kill it.
    fn probe(
        &self,
        child: &mut Reaped,
        chunks: &Receiver<Chunk>,
        mut pending: Vec<u8>,
        timeout: Duration,
    ) -> RenderError {
        signal_child(&child.0, libc::SIGUSR1);
        let until = Instant::now() + PROBE_GRACE;
        let mut answer = None;
        'wait: while let Ok(Chunk::Bytes(b)) = chunks.recv_timeout(until.saturating_duration_since(Instant::now())) {
            pending.extend_from_slice(&b);
            let mut at = 0;
            // Only the crash message matters now; anything malformed ends the wait.
            while let Ok(Some((kind, payload))) = self.message(&pending[at..]) {
                at += HEADER + payload.len();
                if kind == Kind::Crash {
                    answer = Crash::decode(payload).ok();
                    break 'wait;
                }
            }
            pending.drain(..at);
        }
        let _ = child.0.kill();
        self.hung(timeout, answer)
    }
}

/// Sends `signal` to the child (not yet reaped, so its pid is still its own).
fn signal_child(child: &Child, signal: i32) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) takes no pointers; the pid is our unreaped child's.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}
