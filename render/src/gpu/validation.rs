//! Validation-layer messages: collected per `Gpu` so a test can fail on any
//! error, and logged through `tracing`.

use std::ffi::{c_void, CStr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use ash::vk;

/// Whether to load `VK_LAYER_KHRONOS_validation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    Off,
    /// On if installed, with a warning if not (debug builds).
    IfAvailable,
    /// On, or fail (tests).
    Required,
}

impl Validation {
    /// Debug builds validate when they can; release builds don't.
    /// `CLAVM_VALIDATION=off|on|require` overrides.
    pub fn from_env_or_build() -> Validation {
        match std::env::var("CLAVM_VALIDATION").as_deref() {
            Ok("off") | Ok("0") => Validation::Off,
            Ok("require") => Validation::Required,
            Ok(_) => Validation::IfAvailable,
            Err(_) if cfg!(debug_assertions) => Validation::IfAvailable,
            Err(_) => Validation::Off,
        }
    }
}

/// Errors and warnings the layers reported. Error messages are kept (the first
/// 64) so a failing test can print them.
#[derive(Default)]
pub struct ValidationLog {
    errors: AtomicU64,
    warnings: AtomicU64,
    messages: Mutex<Vec<String>>,
}

impl ValidationLog {
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
    pub fn warnings(&self) -> u64 {
        self.warnings.load(Ordering::Relaxed)
    }
    /// The kept error messages.
    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }

    fn record(&self, severity: vk::DebugUtilsMessageSeverityFlagsEXT, text: &str) {
        if severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::ERROR) {
            self.errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(target: "vulkan", "{text}");
            if let Ok(mut m) = self.messages.lock() {
                if m.len() < 64 {
                    m.push(text.to_owned());
                }
            }
        } else if severity.contains(vk::DebugUtilsMessageSeverityFlagsEXT::WARNING) {
            self.warnings.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(target: "vulkan", "{text}");
        } else {
            tracing::debug!(target: "vulkan", "{text}");
        }
    }
}

/// The messenger callback; `user` is the `ValidationLog` the `Gpu` owns
/// (kept alive in an `Arc` until the messenger is destroyed).
pub(crate) unsafe extern "system" fn on_message(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    _types: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    user: *mut c_void,
) -> vk::Bool32 {
    // SAFETY: the layer passes a valid callback-data pointer for the call's
    // duration; `user` is the pointer given at creation, to a ValidationLog
    // that outlives the messenger (see Gpu::drop).
    unsafe {
        let text = if data.is_null() || (*data).p_message.is_null() {
            "(no message)".into()
        } else {
            CStr::from_ptr((*data).p_message).to_string_lossy()
        };
        if let Some(log) = (user as *const ValidationLog).as_ref() {
            log.record(severity, &text);
        }
    }
    vk::FALSE
}
