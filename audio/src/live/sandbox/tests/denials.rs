//! What a sandboxed process cannot do: write files, start processes, reach
//! the network, make any call the allow-list does not name.

use super::*;
use std::ffi::CString;

#[test]
fn reports_what_is_enforced() {
    const CASE: &str = "reports_what_is_enforced";
    if child(CASE).is_some() {
        // Asked before: the sandbox denies Landlock's own calls.
        let abi = landlock::abi();
        let report = enter_or_die();
        assert!(report.seccomp && report.no_new_privs);
        assert_eq!(report.allowed_syscalls, entries().len());
        assert!(report.allowed_by_argument > 10 && report.allowed_by_argument < report.allowed_syscalls);
        assert!(report.filter_len > report.allowed_syscalls);
        // Landlock's own calls were allowed only until the filter was in.
        assert_eq!(sys(libc::SYS_landlock_create_ruleset, [0, 0, 1, 0, 0, 0]), EPERM);
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string());
        assert_eq!(field("NoNewPrivs:").as_deref(), Some("1"));
        assert_eq!(field("Seccomp:").as_deref(), Some("2")); // filter mode
        println!("threads at entry: {:?}", report.threads);
        println!("LANDLOCK: {}", report.landlock);
        match abi {
            Ok(abi) if abi >= 6 => {
                assert_eq!(report.landlock, LandlockStatus::FullyEnforced { abi })
            }
            Ok(abi) => {
                assert_eq!(report.landlock, LandlockStatus::PartiallyEnforced { abi })
            }
            Err(_) => assert!(matches!(report.landlock, LandlockStatus::NotSupported(_))),
        }
        done();
        return;
    }
    let dir = Scratch::new(CASE);
    let out = run_child(module_path!(), CASE, &dir.0);
    let line = out.lines().find(|l| l.starts_with("LANDLOCK:")).unwrap();
    eprintln!("on this machine: seccomp on, {line}");
}

#[test]
fn processes_cannot_be_started() {
    const CASE: &str = "processes_cannot_be_started";
    if let Some(dir) = child(CASE) {
        enter_or_die();
        assert!(Command::new("/bin/true").status().is_err());
        assert!(Command::new("/bin/sh").arg("-c").arg("true").output().is_err());
        let cmd = CString::new(format!("touch {}", dir.join("X").display())).unwrap();
        // SAFETY: a NUL-terminated command line.
        let r = unsafe { libc::system(cmd.as_ptr()) };
        println!("system() returned {r}");
        assert!(!dir.join("X").exists());
        // SAFETY: fork in a test child; a child, if one were made, exits at once.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: ends the (unexpected) child at once.
            unsafe { libc::_exit(0) };
        }
        assert_eq!(pid, -1);
        assert_eq!(errno(), libc::EPERM);
        assert!(std::thread::Builder::new().spawn(|| ()).is_err());
        done();
        return;
    }
    let dir = Scratch::new(CASE);
    run_child(module_path!(), CASE, &dir.0);
    assert!(!dir.0.join("X").exists());
}

#[test]
fn files_cannot_be_changed() {
    const CASE: &str = "files_cannot_be_changed";
    if let Some(dir) = child(CASE) {
        enter_or_die();
        let existing = dir.join("existing");
        let is_eperm = |r: io::Result<()>| {
            let e = r.expect_err("must fail");
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        };
        is_eperm(std::fs::File::create(dir.join("new")).map(drop));
        is_eperm(std::fs::write(&existing, b"overwritten"));
        is_eperm(std::fs::OpenOptions::new().append(true).open(&existing).map(drop));
        is_eperm(std::fs::remove_file(&existing));
        is_eperm(std::fs::rename(&existing, dir.join("renamed")));
        is_eperm(std::fs::hard_link(&existing, dir.join("linked")));
        is_eperm(std::os::unix::fs::symlink(&existing, dir.join("sym")));
        is_eperm(std::fs::create_dir(dir.join("sub")));
        is_eperm(std::fs::remove_dir(dir.join("subdir")));
        use std::os::unix::fs::PermissionsExt;
        let perms = std::fs::Permissions::from_mode(0o777);
        is_eperm(std::fs::set_permissions(&existing, perms));
        let f = std::fs::File::open(&existing).unwrap();
        is_eperm(f.set_len(0));
        assert_eq!(std::fs::read_to_string(&existing).unwrap(), "precious");
        done();
        return;
    }
    let dir = Scratch::new(CASE);
    std::fs::write(dir.0.join("existing"), "precious").unwrap();
    std::fs::create_dir(dir.0.join("subdir")).unwrap();
    run_child(module_path!(), CASE, &dir.0);
    let mut names: Vec<_> =
        std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["existing", "subdir"]);
    let content = std::fs::read_to_string(dir.0.join("existing")).unwrap();
    assert_eq!(content, "precious");
}

#[test]
fn network_is_unreachable() {
    const CASE: &str = "network_is_unreachable";
    if child(CASE).is_some() {
        enter_or_die();
        let e = std::net::TcpStream::connect("127.0.0.1:9").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        assert!(std::net::TcpListener::bind("127.0.0.1:0").is_err());
        assert!(std::net::UdpSocket::bind("127.0.0.1:0").is_err());
        assert!(std::os::unix::net::UnixStream::pair().is_err());
        done();
        return;
    }
    let dir = Scratch::new(CASE);
    run_child(module_path!(), CASE, &dir.0);
}

/// Every call the allow-list does not name (every number up to 1023), and
/// every listed one whose condition all-ones arguments fail, made directly
/// with arguments that would be harmless (all ones: bad pointers,
/// descriptors, flags) if it were not denied.
#[test]
fn every_denied_call_fails() {
    const CASE: &str = "every_denied_call_fails";
    if let Some(dir) = child(CASE) {
        enter_or_die();
        let listed: std::collections::HashMap<i64, When> = entries().iter().map(|e| (e.nr, e.when)).collect();
        let enosys: Vec<i64> = ENOSYS_CALLS.iter().map(|c| c.1).collect();
        let mut tried = 0;
        for nr in 0..1024i64 {
            // These would make a process if the filter let them through.
            #[cfg(target_arch = "x86_64")]
            if nr == libc::SYS_fork || nr == libc::SYS_vfork {
                continue;
            }
            // uretprobe (335) and uprobe (336) bypass seccomp by design (Linux
            // 6.14 on): called from outside a probe trampoline, the kernel kills
            // the caller with SIGILL, which harms nobody else.
            #[cfg(target_arch = "x86_64")]
            if nr == 335 || nr == 336 {
                continue;
            }
            if nr == libc::SYS_clone {
                continue;
            }
            let expected = match listed.get(&nr) {
                None if enosys.contains(&nr) => (-1, libc::ENOSYS),
                None => EPERM,
                // All ones is never the own pid, nor one of the listed operations,
                // and has every write flag.
                Some(When::OwnPid { .. } | When::OwnPidOrZero { .. } | When::OwnProcess { .. })
                | Some(When::NoBits { .. } | When::OneOf { .. }) => EPERM,
                Some(When::Always) => continue,
            };
            assert_eq!(sys(nr as libc::c_long, [u64::MAX; 6]), expected, "syscall {nr}");
            tried += 1;
        }
        println!("{tried} calls denied");
        // SAFETY: TIOCSTI is denied before the (bad) pointer is read.
        let r = unsafe { libc::ioctl(0, libc::TIOCSTI, std::ptr::null::<u8>()) };
        assert_eq!((r, errno()), (-1, libc::EPERM));
        // Opening: read-only works, every write or create flag fails.
        let path = CString::new(dir.join("input").into_os_string().into_encoded_bytes()).unwrap();
        for flags in [
            libc::O_WRONLY,
            libc::O_RDWR,
            libc::O_CREAT | libc::O_RDONLY,
            libc::O_TRUNC,
            libc::O_APPEND,
            libc::O_TMPFILE | libc::O_RDWR,
        ] {
            // SAFETY: a valid path; the call is denied.
            let r = unsafe { libc::openat(libc::AT_FDCWD, path.as_ptr(), flags, 0o600) };
            assert_eq!((r, errno()), (-1, libc::EPERM), "flags {flags:#o}");
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: as above.
                let r = unsafe { libc::syscall(libc::SYS_open, path.as_ptr(), flags, 0o600) };
                assert_eq!((r, errno()), (-1, libc::EPERM), "open flags {flags:#o}");
            }
        }
        // SAFETY: a valid path, read-only.
        let fd = unsafe { libc::openat(libc::AT_FDCWD, path.as_ptr(), libc::O_RDONLY) };
        assert!(fd >= 0);
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(fd) };
        // The i386 ABI (int 0x80) is cut off entirely.
        #[cfg(target_arch = "x86_64")]
        {
            let r: i64;
            // SAFETY: i386 getpid (20) through int 0x80; it takes no arguments.
            unsafe {
                std::arch::asm!("int 0x80", inlateout("rax") 20i64 => r,
                    out("r8") _, out("r9") _, out("r10") _, out("r11") _,
                    options(nostack));
            }
            assert_eq!(r, -(libc::ENOSYS as i64));
            // And so is x32 (native numbers with the x32 bit).
            let x32_getpid = libc::SYS_getpid | X32_SYSCALL_BIT as libc::c_long;
            assert_eq!(sys(x32_getpid, [0; 6]), (-1, libc::ENOSYS));
        }
        done();
        return;
    }
    let dir = Scratch::new(CASE);
    std::fs::write(dir.0.join("input"), "some input").unwrap();
    run_child(module_path!(), CASE, &dir.0);
    let mut names: Vec<_> =
        std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["input"]);
}

/// Landlock alone (no seccomp) denies writes, with its own EACCES.
#[test]
fn landlock_alone_denies_writes() {
    const CASE: &str = "landlock_alone_denies_writes";
    if let Some(dir) = child(CASE) {
        set_no_new_privs().unwrap();
        let status = landlock::apply().unwrap();
        println!("landlock alone: {status}");
        if let LandlockStatus::NotSupported(_) = status {
            println!("(nothing to check without Landlock)");
            done();
            return;
        }
        let existing = dir.join("existing");
        let denied = |r: io::Result<()>| {
            let e = r.expect_err("must fail");
            let code = e.raw_os_error();
            assert!(code == Some(libc::EACCES) || code == Some(libc::EXDEV), "{e}");
        };
        denied(std::fs::File::create(dir.join("new")).map(drop));
        denied(std::fs::write(&existing, b"overwritten"));
        denied(std::fs::remove_file(&existing));
        denied(std::fs::rename(&existing, dir.join("renamed")));
        denied(std::fs::create_dir(dir.join("sub")));
        denied(std::fs::hard_link(&existing, dir.join("linked")));
        // Truncation needs ABI 3: open read-only works, truncating does not.
        if landlock::abi().unwrap() >= 3 {
            let f = std::fs::File::open(&existing).unwrap();
            assert!(f.set_len(0).is_err());
            // SAFETY: a valid path; O_TRUNC is the truncate right.
            let p = CString::new(existing.clone().into_os_string().into_encoded_bytes()).unwrap();
            let r = unsafe { libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_TRUNC) };
            assert_eq!((r, errno()), (-1, libc::EACCES));
        }
        // Other processes' memory is out of reach (Landlock's ptrace restriction).
        // SAFETY: getppid is plain.
        let parent_mem = format!("/proc/{}/mem", unsafe { libc::getppid() });
        let e = std::fs::File::open(&parent_mem).expect_err("the parent's memory");
        println!("open {parent_mem}: {e}");
        // Reading is untouched, and so are processes (seccomp's job).
        assert_eq!(std::fs::read_to_string(&existing).unwrap(), "precious");
        assert!(Command::new("/bin/true").status().unwrap().success());
        done();
        return;
    }
    let dir = Scratch::new(CASE);
    std::fs::write(dir.0.join("existing"), "precious").unwrap();
    run_child(module_path!(), CASE, &dir.0);
    let names: Vec<_> =
        std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, ["existing"]);
    let content = std::fs::read_to_string(dir.0.join("existing")).unwrap();
    assert_eq!(content, "precious");
}

#[test]
fn memory_files_are_bounded() {
    // The one kind of file a sandboxed process can write (TinyCC's include
    // copies): close-on-exec only, and no bigger than MAX_FILE_SIZE.
    const CASE: &str = "memory_files_are_bounded";
    if child(CASE).is_some() {
        enter_or_die();
        // SAFETY: plain system calls with a NUL-terminated name.
        let sealable = unsafe { libc::memfd_create(c"x".as_ptr(), libc::MFD_ALLOW_SEALING) };
        assert_eq!(sealable, -1);
        // SAFETY: as above.
        let fd = unsafe { libc::memfd_create(c"x".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "{}", io::Error::last_os_error());
        // A write past the limit raises SIGXFSZ: ignore it to see the error instead.
        // SAFETY: setting a signal's disposition to SIG_IGN.
        unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
        // SAFETY: `fd` is ours.
        let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let chunk = vec![7u8; 1 << 20];
        let mut written = 0usize;
        let err = loop {
            match io::Write::write(&mut f, &chunk) {
                Ok(n) => written += n,
                Err(e) => break e,
            }
            assert!(written <= super::super::MAX_FILE_SIZE as usize, "wrote {written} bytes");
        };
        assert_eq!(err.raw_os_error(), Some(libc::EFBIG), "{err}");
        assert_eq!(written, super::super::MAX_FILE_SIZE as usize);
        done();
        return;
    }
    let dir = Scratch::new(CASE);
    run_child(module_path!(), CASE, &dir.0);
}

#[test]
fn mremap_may_show_a_shared_mapping_again_but_not_keep_the_old_one_behind() {
    const CASE: &str = "mremap_may_show_a_shared_mapping_again_but_not_keep_the_old_one_behind";
    if child(CASE).is_some() {
        enter_or_die();
        let len = 4096usize;
        // SAFETY: fresh anonymous mappings of our own: one shared page, one target.
        let (src, dst) = unsafe {
            let shared = libc::MAP_SHARED | libc::MAP_ANONYMOUS;
            let rw = libc::PROT_READ | libc::PROT_WRITE;
            let src = libc::mmap(std::ptr::null_mut(), len, rw, shared, -1, 0);
            let dst =
                libc::mmap(std::ptr::null_mut(), len, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            assert!(src != libc::MAP_FAILED && dst != libc::MAP_FAILED);
            *(src as *mut u8) = 42;
            (src as u64, dst as u64)
        };
        // What a worker does (live::shm::WorkerShm::select): the same pages, at the canonical place.
        let again = (libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED) as u64;
        assert_eq!(sys(libc::SYS_mremap, [src, 0, len as u64, again, dst, 0]), (dst as i64, 0));
        // SAFETY: `dst` now maps the shared page.
        assert_eq!(unsafe { *(dst as *const u8) }, 42);
        let dontunmap = (libc::MREMAP_MAYMOVE | libc::MREMAP_DONTUNMAP) as u64;
        assert_eq!(sys(libc::SYS_mremap, [src, len as u64, len as u64, dontunmap, 0, 0]), EPERM);
        done();
        return;
    }
    let dir = Scratch::new(CASE);
    run_child(module_path!(), CASE, &dir.0);
}
