//! How other processes reach a running engine: patches over the submit
//! channel, parameters over the param channel, OSC and MIDI.

pub mod osc;
pub mod params;
pub mod submit;

/// The engine name: `--engine`, else `CLAVM_ENGINE`, else "default".
pub fn engine_name(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("CLAVM_ENGINE").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| clavm_submit::DEFAULT_ENGINE.to_string())
}
