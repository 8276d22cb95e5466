//! Issue 12, finding 3: what a hostile patch did that the deny list missed.
//! Each test makes the attack from a sandboxed child against its parent (the
//! test process, standing in for the engine) and asserts that it failed AND
//! left no trace: the parent's scheduling, limits, IPC objects are as before.

use super::*;
use std::io::BufRead;

/// The parent's threads a test watches: the main thread and the one running
/// the test (others come and go with the test harness).
fn watched_threads() -> [libc::pid_t; 2] {
    // SAFETY: plain calls without arguments.
    unsafe { [libc::getpid(), libc::gettid()] }
}

/// A thread's scheduling as others could change it: policy, priority, CPU
/// affinity, nice value, I/O priority.
#[derive(Debug, PartialEq, Eq)]
struct Scheduling {
    policy: i32,
    priority: i32,
    affinity: Vec<usize>,
    nice: i64,
    ioprio: i64,
}

fn scheduling(tid: libc::pid_t) -> Scheduling {
    // SAFETY: queries about a thread of this process into local storage.
    unsafe {
        let policy = libc::sched_getscheduler(tid);
        let mut param = libc::sched_param { sched_priority: 0 };
        libc::sched_getparam(tid, &mut param);
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        let affinity = (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect();
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) as i64;
        let ioprio = libc::syscall(libc::SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, tid) as i64;
        Scheduling { policy, priority: param.sched_priority, affinity, nice, ioprio }
    }
}

/// The engine (the parent) and every one of its threads, as a patch would find them.
fn parent_and_its_threads() -> Vec<u64> {
    // SAFETY: plain call.
    let ppid = unsafe { libc::getppid() };
    let mut tids = vec![ppid as u64];
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{ppid}/task")) {
        tids.extend(
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok()).filter(|&t| t != ppid as u64),
        );
    }
    assert!(tids.len() > 1, "the test process has several threads: {tids:?}");
    tids
}

#[test]
fn the_engines_scheduling_cannot_be_changed() {
    const CASE: &str = "the_engines_scheduling_cannot_be_changed";
    if child(CASE).is_some() {
        enter_or_die();
        let idle = libc::sched_param { sched_priority: 0 };
        let one_cpu = 1u64;
        let attr: [u32; 14] = [48, libc::SCHED_IDLE as u32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let p = |r: &libc::sched_param| r as *const _ as u64;
        for t in parent_and_its_threads() {
            assert_eq!(sys(libc::SYS_sched_setscheduler, [t, libc::SCHED_IDLE as u64, p(&idle), 0, 0, 0]), EPERM);
            assert_eq!(sys(libc::SYS_sched_setparam, [t, p(&idle), 0, 0, 0, 0]), EPERM);
            assert_eq!(sys(libc::SYS_sched_setattr, [t, attr.as_ptr() as u64, 0, 0, 0, 0]), EPERM);
            assert_eq!(sys(libc::SYS_sched_setaffinity, [t, 8, &one_cpu as *const u64 as u64, 0, 0, 0]), EPERM);
            assert_eq!(sys(libc::SYS_setpriority, [libc::PRIO_PROCESS as u64, t, 19, 0, 0, 0]), EPERM);
            assert_eq!(sys(libc::SYS_ioprio_set, [1, t, 3 << 13, 0, 0, 0]), EPERM);
        }
        // The whole process group and user (both include the engine).
        assert_eq!(sys(libc::SYS_setpriority, [libc::PRIO_PGRP as u64, 0, 19, 0, 0, 0]), EPERM);
        assert_eq!(sys(libc::SYS_setpriority, [libc::PRIO_USER as u64, 0, 19, 0, 0, 0]), EPERM);
        assert_eq!(sys(libc::SYS_ioprio_set, [2, 0, 3 << 13, 0, 0, 0]), EPERM);
        // On itself, as worker.rs::set_priority does: allowed.
        let other = libc::sched_param { sched_priority: 0 };
        assert_eq!(sys(libc::SYS_sched_setscheduler, [0, libc::SCHED_OTHER as u64, p(&other), 0, 0, 0]), (0, 0));
        let me = std::process::id() as u64;
        assert_eq!(sys(libc::SYS_sched_setscheduler, [me, libc::SCHED_BATCH as u64, p(&other), 0, 0, 0]), (0, 0));
        let mut set = [0u64; 16];
        let (r, e) = sys(libc::SYS_sched_getaffinity, [0, 128, set.as_mut_ptr() as u64, 0, 0, 0]);
        assert!(r > 0 && e == 0 && set.iter().any(|&w| w != 0));
        done();
        return;
    }
    let threads = watched_threads();
    let before: Vec<Scheduling> = threads.iter().map(|&t| scheduling(t)).collect();
    let dir = Scratch::new(CASE);
    run_child(module_path!(), CASE, &dir.0);
    let after: Vec<Scheduling> = threads.iter().map(|&t| scheduling(t)).collect();
    assert_eq!(after, before);
    assert_ne!(after[0].policy, libc::SCHED_IDLE);
    assert!(after[0].affinity.len() > 1 || before[0].affinity.len() == 1);
}

#[test]
fn the_engines_limits_cannot_be_changed() {
    const CASE: &str = "the_engines_limits_cannot_be_changed";
    if child(CASE).is_some() {
        enter_or_die();
        let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        let z = &zero as *const libc::rlimit as u64;
        for t in parent_and_its_threads() {
            for res in [libc::RLIMIT_NOFILE, libc::RLIMIT_CPU, libc::RLIMIT_RTTIME, libc::RLIMIT_AS] {
                assert_eq!(sys(libc::SYS_prlimit64, [t, res as u64, z, 0, 0, 0]), EPERM, "{t} {res}");
            }
            // Not even reading another process's limits.
            let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            let o = &mut old as *mut libc::rlimit as u64;
            assert_eq!(sys(libc::SYS_prlimit64, [t, libc::RLIMIT_NOFILE as u64, 0, o, 0, 0]), EPERM);
        }
        // Its own limits: readable and settable (setrlimit is prlimit64 on 0).
        let mut mine = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: valid pointers to locals.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut mine), 0);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &mine), 0);
        }
        let me = std::process::id() as u64;
        let m = &mut mine as *mut libc::rlimit as u64;
        assert_eq!(sys(libc::SYS_prlimit64, [me, libc::RLIMIT_NOFILE as u64, 0, m, 0, 0]), (0, 0));
        done();
        return;
    }
    let get = |res| {
        let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: a valid pointer to a local.
        assert_eq!(unsafe { libc::getrlimit(res, &mut l) }, 0);
        (l.rlim_cur, l.rlim_max)
    };
    let resources = [libc::RLIMIT_NOFILE, libc::RLIMIT_CPU, libc::RLIMIT_RTTIME, libc::RLIMIT_AS];
    let before: Vec<_> = resources.iter().map(|&r| get(r)).collect();
    let dir = Scratch::new(CASE);
    run_child(module_path!(), CASE, &dir.0);
    let after: Vec<_> = resources.iter().map(|&r| get(r)).collect();
    assert_eq!(after, before);
    assert!(after[0].0 > 0);
}

/// The clock calls get invalid values (a nanosecond field of 2 s): let
/// through, they would fail with EINVAL and change nothing; EPERM shows the
/// filter stopped them first.
#[test]
fn the_clock_cannot_be_set() {
    const CASE: &str = "the_clock_cannot_be_set";
    if child(CASE).is_some() {
        enter_or_die();
        let bad_ts = libc::timespec { tv_sec: 0, tv_nsec: 2_000_000_000 };
        let ts = &bad_ts as *const libc::timespec as u64;
        assert_eq!(sys(libc::SYS_clock_settime, [libc::CLOCK_REALTIME as u64, ts, 0, 0, 0, 0]), EPERM);
        let bad_tv = libc::timeval { tv_sec: 0, tv_usec: 2_000_000 };
        let tv = &bad_tv as *const libc::timeval as u64;
        assert_eq!(sys(libc::SYS_settimeofday, [tv, 0, 0, 0, 0, 0]), EPERM);
        // SAFETY: an all-zero timex is valid (modes 0: a read, if it were let through).
        let mut tx: libc::timex = unsafe { std::mem::zeroed() };
        let t = &mut tx as *mut libc::timex as u64;
        assert_eq!(sys(libc::SYS_adjtimex, [t, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(sys(libc::SYS_clock_adjtime, [libc::CLOCK_REALTIME as u64, t, 0, 0, 0, 0]), EPERM);
        // Reading the clocks is fine.
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        let n = &mut now as *mut libc::timespec as u64;
        assert_eq!(sys(libc::SYS_clock_gettime, [libc::CLOCK_REALTIME as u64, n, 0, 0, 0, 0]), (0, 0));
        assert!(now.tv_sec > 0);
        done();
        return;
    }
    let dir = Scratch::new(CASE);
    run_child(module_path!(), CASE, &dir.0);
}

#[test]
fn fanotify_is_denied() {
    const CASE: &str = "fanotify_is_denied";
    if child(CASE).is_some() {
        enter_or_die();
        // As root (the tests' machine) this would return a descriptor.
        assert_eq!(sys(libc::SYS_fanotify_init, [0 /* FAN_CLASS_NOTIF */, libc::O_RDONLY as u64, 0, 0, 0, 0]), EPERM);
        assert_eq!(sys(libc::SYS_fanotify_mark, [3, 1, 0x20, libc::AT_FDCWD as u64, 0, 0]), EPERM);
        assert_eq!(sys(libc::SYS_inotify_init1, [0; 6]), EPERM);
        done();
        return;
    }
    let dir = Scratch::new(CASE);
    run_child(module_path!(), CASE, &dir.0);
}

#[test]
fn the_kernel_log_is_out_of_reach() {
    const CASE: &str = "the_kernel_log_is_out_of_reach";
    if child(CASE).is_some() {
        enter_or_die();
        // SYSLOG_ACTION_SIZE_BUFFER would return the size as root; READ_ALL
        // with a null buffer would fail with EINVAL.
        assert_eq!(sys(libc::SYS_syslog, [10, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(sys(libc::SYS_syslog, [3, 0, 0, 0, 0, 0]), EPERM);
        done();
        return;
    }
    let dir = Scratch::new(CASE);
    run_child(module_path!(), CASE, &dir.0);
}

/// System V IPC objects (and POSIX message queues, memfds) outlive the
/// process that makes them; none can be made.
#[test]
fn no_ipc_object_can_be_made() {
    const CASE: &str = "no_ipc_object_can_be_made";
    const MQ: &std::ffi::CStr = c"/clavm-escape-sandbox-test";
    if child(CASE).is_some() {
        enter_or_die();
        let create = (libc::IPC_CREAT | 0o600) as u64;
        assert_eq!(sys(libc::SYS_shmget, [libc::IPC_PRIVATE as u64, 4096, create, 0, 0, 0]), EPERM);
        assert_eq!(sys(libc::SYS_shmat, [0, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(sys(libc::SYS_shmctl, [0, libc::IPC_RMID as u64, 0, 0, 0, 0]), EPERM);
        assert_eq!(sys(libc::SYS_semget, [libc::IPC_PRIVATE as u64, 1, create, 0, 0, 0]), EPERM);
        assert_eq!(sys(libc::SYS_msgget, [libc::IPC_PRIVATE as u64, create, 0, 0, 0, 0]), EPERM);
        let name = MQ.as_ptr() as u64;
        let flags = (libc::O_CREAT | libc::O_RDWR) as u64;
        assert_eq!(sys(libc::SYS_mq_open, [name + 1, flags, 0o600, 0, 0, 0]), EPERM);
        assert_eq!(sys(libc::SYS_memfd_create, [name + 1, 0, 0, 0, 0, 0]), EPERM);
        done();
        return;
    }
    let dir = Scratch::new(CASE);
    let mut cmd = child_command(module_path!(), CASE, &dir.0);
    let child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains(DONE), "{stdout}");
    // No segment made by the child: /proc/sysvipc/shm's cpid column.
    let shm = std::fs::read_to_string("/proc/sysvipc/shm").unwrap_or_default();
    let header: Vec<&str> = shm.lines().next().unwrap_or("").split_whitespace().collect();
    if let Some(col) = header.iter().position(|&h| h == "cpid") {
        for line in shm.lines().skip(1) {
            assert_ne!(line.split_whitespace().nth(col), Some(pid.to_string().as_str()), "{line}");
        }
    }
    assert!(!Path::new("/dev/mqueue/clavm-escape-sandbox-test").exists());
}

/// A process that set PDEATHSIG before the sandbox cannot undo it, and dies
/// with its parent. Three processes: this test's child is a subreaper (so the
/// orphan comes back to it, to be waited for); its child (the "engine") starts
/// the sandboxed grandchild, waits until it has tried, and exits.
#[test]
fn the_death_signal_cannot_be_undone() {
    const CASE: &str = "the_death_signal_cannot_be_undone";
    const ROLE: &str = "CLAVM_SANDBOX_ROLE";
    if let Some(dir) = child(CASE) {
        match std::env::var(ROLE).as_deref() {
            Ok("sandboxed") => {
                // As worker.rs does, before the sandbox.
                // SAFETY: prctl with integer arguments.
                assert_eq!(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) }, 0);
                enter_or_die();
                assert_eq!(sys(libc::SYS_prctl, [libc::PR_SET_PDEATHSIG as u64, 0, 0, 0, 0, 0]), EPERM);
                let mut sig: libc::c_int = 0;
                let s = &mut sig as *mut libc::c_int as u64;
                assert_eq!(sys(libc::SYS_prctl, [libc::PR_GET_PDEATHSIG as u64, s, 0, 0, 0, 0]), (0, 0));
                assert_eq!(sig, libc::SIGKILL);
                // Nor anything else that could keep it alive or let it escape its parent.
                assert_eq!(sys(libc::SYS_setsid, [0; 6]), EPERM);
                assert_eq!(sys(libc::SYS_setpgid, [0; 6]), EPERM);
                assert_eq!(sys(libc::SYS_prctl, [libc::PR_SET_CHILD_SUBREAPER as u64, 1, 0, 0, 0, 0]), EPERM);
                assert_eq!(sys(libc::SYS_prctl, [libc::PR_SET_DUMPABLE as u64, 1, 0, 0, 0, 0]), EPERM);
                assert_eq!(sys(libc::SYS_ptrace, [libc::PTRACE_TRACEME as u64, 0, 0, 0, 0, 0]), EPERM);
                assert_eq!(sys(libc::SYS_setresuid, [u64::MAX, u64::MAX, u64::MAX, 0, 0, 0]), EPERM);
                assert_eq!(sys(libc::SYS_seccomp, [0, 0, 0, 0, 0, 0]), EPERM);
                // SAFETY: ignoring SIGTERM (SIGKILL cannot be).
                unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
                println!("SANDBOXED-READY");
                done();
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            }
            Ok("engine") => {
                let mut c = child_command(module_path!(), CASE, &dir);
                c.env(ROLE, "sandboxed").stdout(std::process::Stdio::piped());
                let mut sandboxed = c.spawn().unwrap();
                let lines = std::io::BufReader::new(sandboxed.stdout.take().unwrap()).lines();
                let mut ready = false;
                for line in lines {
                    let line = line.unwrap();
                    println!("sandboxed: {line}");
                    if line.contains(DONE) {
                        ready = true;
                        break;
                    }
                }
                println!("GRANDCHILD {} {}", sandboxed.id(), if ready { "ready" } else { "failed" });
                // Dies now, leaving the sandboxed process to its death signal.
                std::process::exit(0);
            }
            _ => {
                // SAFETY: prctl with integer arguments.
                assert_eq!(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }, 0);
                let mut c = child_command(module_path!(), CASE, &dir);
                let out = c.env(ROLE, "engine").output().unwrap();
                let stdout = String::from_utf8_lossy(&out.stdout);
                print!("{stdout}");
                let line = stdout.lines().find_map(|l| l.strip_prefix("GRANDCHILD ")).expect("the engine's report");
                let (pid, state) = line.split_once(' ').unwrap();
                let pid: libc::pid_t = pid.parse().unwrap();
                // It was reparented to us; wait for it (a bounded time, then kill it and fail).
                let mut status = 0;
                let mut reaped = 0;
                for _ in 0..2000 {
                    // SAFETY: waiting for our (adopted) child with a valid status pointer.
                    reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
                    if reaped != 0 {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                if reaped == 0 {
                    // SAFETY: our adopted child, still alive.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                        libc::waitpid(pid, &mut status, 0);
                    }
                    panic!("the sandboxed process outlived its parent");
                }
                assert_eq!(state, "ready", "{stdout}");
                assert_eq!(reaped, pid);
                assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL, "status {status:#x}");
                done();
            }
        }
        return;
    }
    let dir = Scratch::new(CASE);
    run_child(module_path!(), CASE, &dir.0);
}

/// The hostile corpus patches of this finding, played offline inside the
/// sandbox: each attack fails, and each patch keeps sounding (a patch whose
/// attack worked goes silent).
#[test]
fn the_hostile_patches_of_this_finding_are_denied() {
    const CASE: &str = "the_hostile_patches_of_this_finding_are_denied";
    const PATCHES: [&str; 7] = [
        "sched-other-thread.c",
        "prlimit-engine.c",
        "clock-settime.c",
        "fanotify.c",
        "syslog.c",
        "sysv-shm.c",
        "pdeathsig.c",
    ];
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/hostile/patches");
    if child(CASE).is_some() {
        enter_or_die();
        for name in PATCHES {
            let source = crate::patch::PatchSource::from_file(&folder.join(name)).unwrap();
            let samples = workload::render_offline(source, 4800);
            let rms = workload::rms(&samples);
            println!("HOSTILE {name} {rms:.4}");
        }
        done();
        return;
    }
    for name in PATCHES {
        let text = std::fs::read_to_string(folder.join(name)).unwrap();
        let mut lines = text.lines();
        assert!(lines.next().unwrap().starts_with("// finding: #12 finding 3: "), "{name}");
        assert_eq!(lines.next(), Some("// expect: denied"), "{name}");
    }
    let dir = Scratch::new(CASE);
    let out = run_child(module_path!(), CASE, &dir.0);
    for name in PATCHES {
        let line = out.lines().find_map(|l| l.strip_prefix(&format!("HOSTILE {name} "))).unwrap();
        let rms: f64 = line.parse().unwrap();
        // 0.2 * a sine on one of two channels: rms 0.1 over whole periods.
        assert!(rms > 0.09, "{name}: rms {rms} (an attack succeeded?)");
    }
    // The attacks are real: outside the sandbox, as root, the harmless ones
    // (reading the kernel log, a fanotify descriptor closed at once) succeed,
    // and the patch goes silent.
    // SAFETY: plain call.
    if unsafe { libc::geteuid() } == 0 && cfg!(target_arch = "x86_64") {
        for name in ["syslog.c", "fanotify.c"] {
            let source = crate::patch::PatchSource::from_file(&folder.join(name)).unwrap();
            let rms = workload::rms(&workload::render_offline(source, 4800));
            assert_eq!(rms, 0.0, "{name} outside the sandbox");
        }
    }
}
