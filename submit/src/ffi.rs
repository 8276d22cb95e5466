//! The C ABI of `libclavm_submit.so` (see `include/clavm_submit.h`): strings
//! in, a JSON string out, never a crash across the boundary.

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;

use crate::client::{Client, SubmitError};
use crate::protocol::{Outcome, ParamKind, Reply};
use crate::{parse_line, DEFAULT_ENGINE};

/// One connection per engine, kept between calls (an editor sends often).
static CLIENTS: Mutex<BTreeMap<String, Client>> = Mutex::new(BTreeMap::new());

fn reply_json(r: &Reply) -> serde_json::Value {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let diagnostics: Vec<_> = r.text.lines().filter_map(parse_line).collect();
    json!({
        "status": r.outcome.as_str(),
        "ok": matches!(r.outcome, Outcome::Playing | Outcome::Waiting),
        "version": r.version,
        "compile_us": us(r.compile),
        "test_us": us(r.test),
        "swap_us": us(r.swap),
        "message": r.text,
        "diagnostics": diagnostics,
    })
}

/// A reply for a submit that did not reach the engine, or could not start.
fn failure(status: &str, message: &str) -> serde_json::Value {
    json!({ "status": status, "ok": false, "message": message, "diagnostics": [] })
}

fn error_json(e: &SubmitError) -> serde_json::Value {
    let status = match e {
        SubmitError::NotResponding { .. } => "not_responding",
        SubmitError::TooLarge { .. } => "too_large",
        SubmitError::Busy | SubmitError::ParamQueueFull => "busy",
        SubmitError::Channel(_) => "error",
    };
    failure(status, &e.to_string())
}

fn send(engine: &str, name: &str, code: &str, quant: Option<f64>, timeout: Duration) -> serde_json::Value {
    let deadline = std::time::Instant::now() + timeout;
    let cached = CLIENTS.lock().unwrap_or_else(|e| e.into_inner()).remove(engine);
    // A cached connection to an engine that has since restarted is replaced.
    let client = match cached.filter(|c| c.engine_alive()) {
        Some(c) => Ok(c),
        None => Client::connect(engine, timeout),
    };
    let mut client = match client {
        Ok(c) => c,
        Err(e) => return error_json(&e),
    };
    let result =
        client.send_quantised(name, code, quant, deadline.saturating_duration_since(std::time::Instant::now()));
    match result {
        Ok(r) => {
            CLIENTS.lock().unwrap_or_else(|e| e.into_inner()).insert(engine.to_string(), client);
            reply_json(&r)
        }
        Err(e) => error_json(&e),
    }
}

/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn text(p: *const c_char, default: &str) -> Result<&str, &'static str> {
    if p.is_null() {
        return Ok(default);
    }
    // SAFETY: non-null and NUL-terminated, by the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| "not UTF-8")
}

fn out(v: serde_json::Value) -> *const c_char {
    // JSON escapes NUL, so this cannot fail.
    CString::new(v.to_string()).unwrap_or_default().into_raw()
}

fn guarded(f: impl FnOnce() -> serde_json::Value) -> *const c_char {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => out(v),
        Err(_) => out(failure("error", "internal error in libclavm_submit")),
    }
}

/// Sends `code` to `engine` (NULL: "default"), waits up to `timeout_ms`, and
/// returns the reply as JSON; free it with `clavm_free`.
///
/// # Safety
/// The pointers are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn clavm_send(engine: *const c_char, code: *const c_char, timeout_ms: c_int) -> *const c_char {
    // SAFETY: forwarded caller contract.
    unsafe { clavm_send_named(engine, std::ptr::null(), code, timeout_ms) }
}

/// As `clavm_send`, with the name diagnostics should show (a path; NULL: "submit.c").
///
/// # Safety
/// The pointers are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn clavm_send_named(
    engine: *const c_char,
    name: *const c_char,
    code: *const c_char,
    timeout_ms: c_int,
) -> *const c_char {
    // SAFETY: forwarded caller contract.
    unsafe { clavm_send_quant(engine, name, code, -1.0, timeout_ms) }
}

/// As `clavm_send_named`, landing on the next multiple of `quant` beats
/// (0: the next block; negative or NaN: the engine's own --quant).
///
/// # Safety
/// The pointers are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn clavm_send_quant(
    engine: *const c_char,
    name: *const c_char,
    code: *const c_char,
    quant: f64,
    timeout_ms: c_int,
) -> *const c_char {
    guarded(|| {
        // SAFETY: the caller's contract.
        let args = unsafe { (text(engine, DEFAULT_ENGINE), text(name, "submit.c"), text(code, "")) };
        let (Ok(engine), Ok(name), Ok(code)) = args else {
            return failure("error", "arguments must be UTF-8");
        };
        if code.is_empty() {
            return failure("error", "no code to send");
        }
        let timeout = Duration::from_millis(if timeout_ms > 0 { timeout_ms as u64 } else { 2000 });
        send(engine, name, code, (quant >= 0.0).then_some(quant), timeout)
    })
}

/// Sets `_p(index)` (kind 0), `_i(index)` (1), `_cc(index)` (2) or the tempo (3, index 0) in `engine`;
/// returns 0, or -1 if the engine is not there or its queue is full.
///
/// # Safety
/// `engine` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn clavm_param(engine: *const c_char, kind: c_int, index: c_int, value: f64) -> c_int {
    // SAFETY: the caller's contract.
    let Ok(engine) = (unsafe { text(engine, DEFAULT_ENGINE) }) else { return -1 };
    let kind = match kind {
        0 => ParamKind::P,
        1 => ParamKind::I,
        2 => ParamKind::Cc,
        3 => ParamKind::Tempo,
        _ => return -1,
    };
    if index < 0 {
        return -1;
    }
    match crate::client::set_param(engine, kind, index as u32, value) {
        Ok(()) => 0,
        Err(_) => -1,
    }
}

/// Frees a string returned by `clavm_send` or `clavm_send_named` (NULL is ignored).
///
/// # Safety
/// `reply` is NULL or a pointer those functions returned, freed once.
#[no_mangle]
pub unsafe extern "C" fn clavm_free(reply: *const c_char) {
    if !reply.is_null() {
        // SAFETY: it came from CString::into_raw in `out`, by the caller's contract.
        drop(unsafe { CString::from_raw(reply as *mut c_char) });
    }
}
