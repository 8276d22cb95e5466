//! A worker process (`clavm __worker SLOT PARENT`, its files at descriptors 3, 4 and 5): compiles patches with
//! TinyCC and runs them on the shared state memory, one request at a time.
//!
//! It is expendable by design. If the patch crashes it, the signal handler
//! (on its own stack) writes what happened into the slot and completes the
//! request, so the engine hears of it at once; if the patch hangs, the engine
//! stops waiting at its deadline and the control thread kills this process.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::arena::{WorkerArena, WORKER_SAMPLES_FD};
use super::futex;
use super::shm::{Memory, WorkerShm, WORKER_SLOT_FD, WORKER_STATE_FD};
use super::slot::{get_string, put_bytes, RequestKind, Slot, Status, MAX_BLOCK};
use crate::builtins::api::{Ctx, MAX_CHANNELS};
use crate::patch::{self, PatchSource, Program};
use crate::samples::SampleTable;
use crate::state::{DelayPool, Extent};

static SLOT: AtomicPtr<Slot> = AtomicPtr::new(std::ptr::null_mut());
static IN_COMPILED: AtomicBool = AtomicBool::new(false);
static STACK_LO: AtomicUsize = AtomicUsize::new(0);

/// Runs the worker; never returns.
/// `sandbox` is false only when `clavm bench --live` measures the sandbox's cost.
pub fn main(slot_index: usize, parent: u32, sandbox: bool) -> ! {
    // Die with the engine: PDEATHSIG, then check the parent did not die before it was set.
    // SAFETY: prctl and getppid have no memory preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() as u32 != parent {
            libc::_exit(3);
        }
    }
    // Nothing inherited but stdio and our two files: whatever else the engine's
    // process had open (by accident, or from whoever started it) is closed
    // before any patch could use it.
    close_descriptors_from(WORKER_SAMPLES_FD + 1);
    // Start at normal priority whatever we inherited: a starting worker must
    // never compete with the audio thread (see docs/LIVE_PROTOCOL.md).
    set_priority(0);
    // SAFETY: the engine mapped its files to these descriptors at spawn; `open` closes them.
    let mut shm = match unsafe { WorkerShm::open(WORKER_STATE_FD, WORKER_SLOT_FD) } {
        Ok(s) => s,
        Err(_) => std::process::exit(4),
    };
    let slot_ptr = shm.slot();
    // SAFETY: our own slot, mapped for the life of the process.
    let Some((sr, channels, inputs)) = (unsafe { (*slot_ptr).config }).check(slot_index) else {
        std::process::exit(5);
    };
    SLOT.store(slot_ptr, Ordering::SeqCst);
    // SAFETY: the engine mapped its sample arena to this descriptor at spawn; `open` closes it.
    let arena = unsafe { WorkerArena::open(WORKER_SAMPLES_FD) };
    bounded_memory(arena.len());
    bounded_realtime_cpu();
    // First bound the stack: the crash handler reads the stack's extent, which
    // for the main thread glibc derives from the limit in force.
    bounded_stack();
    install_crash_handler();
    // SAFETY: our own slot, mapped for the life of the process.
    let slot = unsafe { &mut *slot_ptr };

    // SAFETY: the pools live in the mapping, which lives until exit.
    let mut pools = [Memory::Live, Memory::Shadow, Memory::Test].map(|m| unsafe { DelayPool::from_raw(shm.delays(m)) });
    let params = &raw const slot.req.params;
    // Every context runs on the canonical window (`WorkerShm::select` puts the
    // request's memory there), so patches see one address for their state.
    let (state, heap) = (shm.canonical_state(), shm.canonical_heap());
    // The samples of the program held (one version at a time), read through `arena`.
    // Leaked: it lives as long as the process, and the contexts point to it.
    let samples: *mut SampleTable = Box::into_raw(Box::new(SampleTable::EMPTY));
    let mut ctxs = [Memory::Live, Memory::Shadow, Memory::Test].map(|m| {
        // SAFETY: the window, heap and pool outlive the contexts (all live until exit);
        // the engine does not touch a memory while it has a request on it with us.
        let mut c = unsafe { Ctx::new(state, &mut pools[m as usize], heap, params, sr, channels, inputs) };
        c.may_take_lines = m != Memory::Shadow;
        // SAFETY: the table lives until exit; it changes only in `compile`, when no program runs.
        unsafe { c.set_samples(samples) };
        c
    });

    // Warm TinyCC up (its runtime archive, its tables) before the sandbox closes.
    let _ =
        patch::compile_rewritten(&PatchSource::from_text("warm-up.c", "void play(void) {}"), "void play(void) {}", &[]);
    #[cfg(target_os = "linux")]
    let sandboxed = sandbox && super::sandbox_enter();
    // The baseline comes first: a request sent the moment we say "ready" must
    // look new to us, not like one we have already served.
    let mut seen = slot.request.load(Ordering::Acquire);
    slot.pid.store(std::process::id(), Ordering::SeqCst);
    slot.ready.store(if sandboxed { 2 } else { 1 }, Ordering::Release);
    futex::wake(&slot.ready);

    let mut program: Option<Program> = None;
    let mut priority = 0;
    loop {
        let now = slot.request.load(Ordering::Acquire);
        if now == seen {
            futex::wait(&slot.request, seen, Duration::from_secs(1));
            continue;
        }
        seen = now;
        let t0 = Instant::now();
        // Normal-priority requests (compiles, test runs) always set it: the
        // engine may have raised us behind our back (before handing us to the
        // audio thread), and a compile must never run at realtime priority.
        if slot.req.priority != priority || slot.req.priority == 0 {
            priority = slot.req.priority;
            set_priority(priority);
        }
        let status = match RequestKind::from_u32(slot.req.kind) {
            Some(RequestKind::Compile) => {
                let status = compile(slot, &mut program, &mut ctxs);
                // SAFETY: the leaked table above; no program runs during a request
                // but this one, so nothing reads it now. The views are checked.
                unsafe { *samples = arena.table(&slot.req.samples) };
                status
            }
            Some(RequestKind::Run) => match &program {
                Some(p) => run(slot, p, &mut shm, &mut ctxs, channels, inputs),
                None => Status::NoProgram,
            },
            Some(RequestKind::Quit) => {
                respond(slot, Status::Ok, seen, t0);
                std::process::exit(0);
            }
            None => Status::BadRequest,
        };
        respond(slot, status, seen, t0);
    }
}

/// Closes every descriptor numbered `from` or above.
fn close_descriptors_from(from: i32) {
    // SAFETY: close_range closes only descriptors; nothing of ours uses them yet.
    let r = unsafe { libc::syscall(libc::SYS_close_range, from as libc::c_uint, libc::c_uint::MAX, 0) };
    if r != 0 {
        // Kernels before 5.9: one by one, up to the limit.
        // SAFETY: as above; close on a descriptor that is not open is harmless.
        let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(0, 1 << 20) as i32;
        for fd in from..max {
            // SAFETY: as above.
            unsafe { libc::close(fd) };
        }
    }
}

/// Realtime (SCHED_FIFO at `p`) while serving the audio thread, normal otherwise.
fn set_priority(p: i32) {
    let (policy, p) = if p > 0 { (libc::SCHED_FIFO, p.min(98)) } else { (libc::SCHED_OTHER, 0) };
    // SAFETY: on ourselves, with a valid param; failure (no permission) leaves us as we were.
    unsafe {
        let param = libc::sched_param { sched_priority: p };
        libc::sched_setscheduler(0, policy, &param);
    }
}

/// Caps the worker's address space: a patch that declares and touches a huge
/// array fails inside its own worker instead of exhausting the machine's memory.
/// Caps the CPU time a worker may use at realtime priority without blocking:
/// a healthy worker sleeps on its futex after every request (well under 1 ms
/// of CPU), so only a runaway loop reaches this, and SIGXCPU turns it into a
/// crash report at once, instead of a core spinning at realtime priority until
/// the worker is declared hung and killed (which starved everything else).
fn bounded_realtime_cpu() {
    // SAFETY: setrlimit with a valid struct on ourselves (microseconds).
    unsafe {
        let lim = libc::rlimit { rlim_cur: REALTIME_CPU_US, rlim_max: 2 * REALTIME_CPU_US };
        libc::setrlimit(libc::RLIMIT_RTTIME, &lim);
    }
}

/// See `bounded_realtime_cpu`.
pub const REALTIME_CPU_US: libc::rlim_t = 10_000;

/// `mapped` more for the sample arena's read-only mapping.
fn bounded_memory(mapped: usize) {
    const LIMIT: libc::rlim_t = 4 << 30;
    let limit = LIMIT.saturating_add(mapped as libc::rlim_t);
    // SAFETY: setrlimit with a valid struct on ourselves.
    unsafe {
        let lim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
        libc::setrlimit(libc::RLIMIT_AS, &lim);
    }
}

/// Caps the stack at `STACK` bytes and faults all of it in now: runaway
/// recursion then faults within microseconds (instead of growing the stack a
/// page fault at a time past the deadline), and normal calls never fault.
fn bounded_stack() {
    const STACK: usize = 2 << 20;
    // SAFETY: setrlimit with a valid struct; lowering our own soft limit.
    unsafe {
        let lim = libc::rlimit { rlim_cur: STACK as libc::rlim_t, rlim_max: libc::RLIM_INFINITY };
        let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::getrlimit(libc::RLIMIT_STACK, &mut old);
        let lim = libc::rlimit { rlim_max: old.rlim_max, ..lim };
        libc::setrlimit(libc::RLIMIT_STACK, &lim);
    }
    #[inline(never)]
    fn touch(depth: usize) {
        let mut page = [0u8; 16 * 1024];
        std::hint::black_box(&mut page);
        if depth > 0 {
            touch(depth - 1);
        }
    }
    // Most of the 2 MB: what the worker's own frames above us already use stays free.
    touch((STACK - 256 * 1024) / (16 * 1024));
}

fn respond(slot: &mut Slot, status: Status, seq: u32, t0: Instant) {
    slot.resp.status = status as u32;
    slot.resp.elapsed_ns = t0.elapsed().as_nanos() as u64;
    slot.response.store(seq, Ordering::Release);
    futex::wake(&slot.response);
}

fn compile(slot: &mut Slot, program: &mut Option<Program>, ctxs: &mut [Ctx; 3]) -> Status {
    let t = &slot.text;
    let name = get_string(&t.name, t.name_len);
    let dir = get_string(&t.dir, t.dir_len);
    let source =
        PatchSource { name, text: get_string(&t.source, t.source_len), dir: (!dir.is_empty()).then(|| dir.into()) };
    let body = get_string(&t.body, t.body_len);
    // Free the previous program first: it is not running anywhere (we are idle).
    *program = None;
    let (status, lines) = match patch::compile_rewritten(&source, &body, &[]) {
        Ok((p, warnings)) => {
            *program = Some(p);
            for c in ctxs.iter_mut() {
                c.faults.clear();
            }
            (Status::Ok, warnings.iter().map(|d| d.to_string()).collect::<Vec<_>>())
        }
        Err(e) => (Status::CompileError, e.diagnostics().iter().map(|d| d.to_string()).collect()),
    };
    let text = lines.join("\n");
    slot.text.diag_len = put_bytes(&mut slot.text.diag, text.as_bytes());
    status
}

fn run(
    slot: &mut Slot,
    program: &Program,
    shm: &mut WorkerShm,
    ctxs: &mut [Ctx; 3],
    channels: usize,
    inputs: usize,
) -> Status {
    let req = &slot.req;
    let Some(memory) = Memory::from_u32(req.memory) else {
        return Status::BadRequest;
    };
    let Some(extent) = Extent::new(req.heap_extent as usize) else {
        return Status::BadRequest;
    };
    if shm.select(memory).is_err() {
        return Status::BadRequest;
    }
    let frames = (req.frames as usize).min(MAX_BLOCK);
    let ctx = &mut ctxs[memory as usize];
    if memory == Memory::Test {
        ctx.faults.clear();
    }
    if req.call_compiled != 0 {
        ctx.epoch = req.compiled_epoch;
        ctx.frame = req.frame;
        IN_COMPILED.store(true, Ordering::Relaxed);
        // SAFETY: the context is entered around the call; crashes are the handler's.
        ctx.enter_compiled(extent, || unsafe { program.compiled() });
        IN_COMPILED.store(false, Ordering::Relaxed);
    }
    let mut nonfinite = 0u32;
    for f in 0..frames {
        ctx.frame = req.frame + f as u64;
        ctx.epoch = ctx.frame + 1;
        ctx.out = [0.0; MAX_CHANNELS];
        for (i, v) in ctx.input.iter_mut().take(inputs).enumerate() {
            *v = req.input[f * inputs + i];
        }
        // SAFETY: as above.
        ctx.enter(|| unsafe { program.play() });
        for c in 0..channels {
            let v = ctx.out[c];
            nonfinite += (!v.is_finite()) as u32;
            slot.resp.output[f * channels + c] = v;
        }
    }
    slot.resp.nonfinite = nonfinite;
    slot.resp.faults = ctx.faults;
    ctx.faults.fresh = 0;
    Status::Ok
}

fn install_crash_handler() {
    STACK_LO.store(crate::crash_signals::stack_low(), Ordering::SeqCst);
    crate::crash_signals::install(on_crash);
}

/// Reports the crash through the slot and exits. Async-signal-safe: atomics,
/// plain stores, futex wake and `_exit` only.
extern "C" fn on_crash(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let slot = SLOT.load(Ordering::Relaxed);
    if !slot.is_null() {
        // SAFETY: the kernel passes a valid siginfo; the slot stays mapped.
        unsafe {
            let addr = (*info).si_addr() as usize;
            let lo = STACK_LO.load(Ordering::Relaxed);
            let s = &mut *slot;
            s.resp.status = Status::Crashed as u32;
            s.resp.signal = sig;
            s.resp.fault_addr = addr as u64;
            s.resp.stack_overflow = (lo != 0 && addr < lo + 64 * 1024 && addr + 1024 * 1024 > lo) as u32;
            s.resp.in_compiled = IN_COMPILED.load(Ordering::Relaxed) as u32;
            let seq = s.request.load(Ordering::Acquire);
            s.response.store(seq, Ordering::Release);
            futex::wake(&s.response);
        }
    }
    // SAFETY: ends the process at once.
    unsafe { libc::_exit(128 + sig) }
}
