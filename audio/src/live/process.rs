//! Starting a worker process: `posix_spawn` (never fork: the engine is a
//! realtime process whose size would make a fork cost milliseconds), with
//! exactly the descriptors the worker needs, at fixed numbers.
//!
//! std's `Command` cannot place a descriptor at a given number without a
//! `pre_exec` hook, which makes it fork; nix's `posix_spawn` takes the file
//! actions directly. The engine's memory files are close-on-exec, so a worker
//! receives only its own slot's file, the state file and the sample arena
//! opened read-only (`dup2` onto 3, 4 and 5 clears the flag on the copies), and no other process the engine starts
//! (ffmpeg, another worker) ever inherits them.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::spawn::{posix_spawn, PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::arena::WORKER_SAMPLES_FD;
use super::shm::{WORKER_SLOT_FD, WORKER_STATE_FD};

/// A running (or exited, not yet reaped) worker process.
#[derive(Debug)]
pub struct WorkerProcess {
    pid: Pid,
    reaped: bool,
}

/// What a worker is started with.
pub struct Spawn<'a> {
    pub exe: &'a Path,
    pub slot: usize,
    pub state_fd: RawFd,
    pub slot_fd: RawFd,
    /// The sample arena, opened read-only.
    pub samples_fd: RawFd,
    /// Keep the engine's stderr (for debugging workers); otherwise /dev/null.
    pub stderr: bool,
    /// False only to measure what the sandbox costs (`--unsandboxed`).
    pub sandbox: bool,
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in an argument"))
}

impl WorkerProcess {
    /// Starts `exe __worker SLOT PARENT` with the state file at descriptor 3
    /// and the slot file at 4, stdin and stdout on /dev/null.
    pub fn spawn(s: &Spawn) -> io::Result<WorkerProcess> {
        // Sources must not be one of the targets, or the first dup2 would clobber the second's source.
        if [s.state_fd, s.slot_fd, s.samples_fd].iter().any(|fd| (0..=WORKER_SAMPLES_FD).contains(fd)) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "memory file descriptor below 6"));
        }
        let mut actions = PosixSpawnFileActions::init()?;
        actions.add_open(0, c"/dev/null", OFlag::O_RDONLY, Mode::empty())?;
        actions.add_open(1, c"/dev/null", OFlag::O_WRONLY, Mode::empty())?;
        if !s.stderr {
            actions.add_open(2, c"/dev/null", OFlag::O_WRONLY, Mode::empty())?;
        }
        actions.add_dup2(s.state_fd, WORKER_STATE_FD)?;
        actions.add_dup2(s.slot_fd, WORKER_SLOT_FD)?;
        actions.add_dup2(s.samples_fd, WORKER_SAMPLES_FD)?;
        let mut attr = PosixSpawnAttr::init()?;
        // Signals as a new program expects them, whatever this thread blocked.
        attr.set_sigmask(&SigSet::empty())?;
        let mut defaults = SigSet::empty();
        defaults.add(Signal::SIGPIPE);
        attr.set_sigdefault(&defaults)?;
        attr.set_flags(PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF)?;
        let exe = cstring(s.exe.as_os_str())?;
        let mut args = vec![
            exe.clone(),
            c"__worker".to_owned(),
            cstring(OsStr::new(&s.slot.to_string()))?,
            cstring(OsStr::new(&std::process::id().to_string()))?,
        ];
        if !s.sandbox {
            args.push(c"--unsandboxed".to_owned());
        }
        let env: Vec<CString> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        let pid = posix_spawn(exe.as_c_str(), &actions, &attr, &args, &env)?;
        Ok(WorkerProcess { pid, reaped: false })
    }

    pub fn id(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Whether the process has exited (reaping it if so).
    pub fn has_exited(&mut self) -> bool {
        if self.reaped {
            return true;
        }
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => false,
            Ok(_) | Err(_) => {
                self.reaped = true;
                true
            }
        }
    }

    /// Kills the process and waits for it.
    pub fn kill_and_reap(&mut self) {
        if self.reaped {
            return;
        }
        let _ = kill(self.pid, Signal::SIGKILL);
        while let Err(nix::errno::Errno::EINTR) = waitpid(self.pid, None) {}
        self.reaped = true;
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}
