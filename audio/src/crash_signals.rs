//! Installing a crash handler that can run even when the stack is gone
//! (runaway recursion): an alternate signal stack, and the faulting signals
//! routed to one handler. Shared by the offline commands' crash guard and the
//! live engine's workers.

/// The faults a patch can cause. SIGXCPU is the kernel's answer to a
/// realtime task over its CPU limit (see the live workers).
pub const CRASH_SIGNALS: [libc::c_int; 8] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGABRT,
    libc::SIGSYS,
    libc::SIGXCPU,
];

/// A signal handler taking `siginfo` (SA_SIGINFO).
pub type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// The lowest address of the calling thread's stack (0 if unknown): a fault
/// just below it is a stack overflow. For the main thread glibc derives it
/// from RLIMIT_STACK, so call this after changing that limit.
pub fn stack_low() -> usize {
    // SAFETY: querying our own thread's attributes into local storage.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return 0;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        addr as usize
    }
}

/// Gives the calling thread a 256 KiB alternate stack and routes every signal
/// of [`CRASH_SIGNALS`] to `handler`, on that stack.
pub fn install(handler: Handler) {
    // SAFETY: plain libc calls with valid pointers. The alternate stack is
    // leaked on purpose: it must outlive every signal the thread may take.
    unsafe {
        let size = 256 * 1024;
        let stack = Box::leak(vec![0u8; size].into_boxed_slice());
        let ss = libc::stack_t { ss_sp: stack.as_mut_ptr() as *mut libc::c_void, ss_flags: 0, ss_size: size };
        libc::sigaltstack(&ss, std::ptr::null_mut());
        for sig in CRASH_SIGNALS {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}
