//! Which audio system plays: `--host auto|pipewire|pulse|jack|alsa`, which of
//! them are running, the devices they offer, and the one-line errors for a
//! host that is not running, a device that does not exist and a rate or
//! block size a device refuses.
//!
//! A daemon counts as running when its socket accepts a connection (a
//! socket file left behind by a dead daemon does not). Asking the client
//! libraries instead could start a server (libjack does) or wait for one.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::anyhow;
use cpal::traits::{DeviceTrait, HostTrait};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Host {
    /// PipeWire if its daemon runs, else JACK if a server runs, else ALSA.
    Auto,
    /// PipeWire, natively.
    Pipewire,
    /// PulseAudio (or PipeWire's pipewire-pulse), natively.
    Pulse,
    /// JACK (a native duplex client).
    Jack,
    /// ALSA (its "default" device is PipeWire's or Pulse's where their ALSA plugins are installed).
    Alsa,
}

/// A host that is not `Auto`: the one that plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Running {
    PipeWire,
    Pulse,
    Jack,
    Alsa,
}

impl Running {
    pub const ALL: [Running; 4] = [Running::PipeWire, Running::Pulse, Running::Jack, Running::Alsa];

    pub fn name(self) -> &'static str {
        match self {
            Running::PipeWire => "PipeWire",
            Running::Pulse => "PulseAudio",
            Running::Jack => "JACK",
            Running::Alsa => "ALSA",
        }
    }

    /// The `--host` value that names it.
    pub fn flag(self) -> &'static str {
        match self {
            Running::PipeWire => "pipewire",
            Running::Pulse => "pulse",
            Running::Jack => "jack",
            Running::Alsa => "alsa",
        }
    }

    pub fn is_running(self) -> bool {
        match self {
            Running::PipeWire => pipewire_running(),
            Running::Pulse => pulse_running(),
            Running::Jack => super::jack_running(),
            // The kernel's sound API: there is nothing to start (a machine
            // without a card still has ALSA's plugins and "null").
            Running::Alsa => true,
        }
    }

    /// cpal's host for it (JACK plays through our own client; cpal's JACK
    /// host only lists its ports).
    pub fn cpal_id(self) -> cpal::HostId {
        match self {
            Running::PipeWire => cpal::HostId::PipeWire,
            Running::Pulse => cpal::HostId::PulseAudio,
            Running::Jack => cpal::HostId::Jack,
            Running::Alsa => cpal::HostId::Alsa,
        }
    }

    /// The server resamples a stream to its own rate: any rate is granted.
    pub fn resamples(self) -> bool {
        matches!(self, Running::PipeWire | Running::Pulse)
    }
}

/// The hosts running now, in the order `auto` prefers them (then Pulse).
pub fn running() -> Vec<Running> {
    [Running::PipeWire, Running::Jack, Running::Pulse, Running::Alsa].into_iter().filter(|h| h.is_running()).collect()
}

fn running_list() -> String {
    running().iter().map(|h| h.flag()).collect::<Vec<_>>().join(", ")
}

/// The host `choice` means now; a named host that is not running is a one-line error naming the running ones.
pub fn resolve(choice: Host) -> anyhow::Result<Running> {
    let named = match choice {
        Host::Auto => {
            return Ok(if pipewire_running() {
                Running::PipeWire
            } else if super::jack_running() {
                Running::Jack
            } else {
                Running::Alsa
            })
        }
        Host::Pipewire => Running::PipeWire,
        Host::Pulse => Running::Pulse,
        Host::Jack => Running::Jack,
        Host::Alsa => Running::Alsa,
    };
    if named.is_running() {
        Ok(named)
    } else {
        Err(not_running(named))
    }
}

fn not_running(h: Running) -> anyhow::Error {
    anyhow!("--host {}: {} is not running (running: {})", h.flag(), h.name(), running_list())
}

/// cpal's host for `h` (running, or the error says which are).
pub fn cpal_host(h: Running) -> anyhow::Result<cpal::Host> {
    cpal::host_from_id(h.cpal_id())
        .map_err(|e| anyhow!("--host {}: {} is not available: {e} (running: {})", h.flag(), h.name(), running_list()))
}

fn runtime_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()).map(PathBuf::from)
}

fn accepts(path: &std::path::Path) -> bool {
    UnixStream::connect(path).is_ok()
}

/// PipeWire's socket ($PIPEWIRE_RUNTIME_DIR or $XDG_RUNTIME_DIR, `$PIPEWIRE_REMOTE` or pipewire-0) accepts.
pub fn pipewire_running() -> bool {
    let name = std::env::var("PIPEWIRE_REMOTE").unwrap_or_else(|_| "pipewire-0".into());
    let dir =
        std::env::var_os("PIPEWIRE_RUNTIME_DIR").filter(|d| !d.is_empty()).map(PathBuf::from).or_else(runtime_dir);
    dir.is_some_and(|d| accepts(&d.join(name)))
}

/// The Pulse server's socket ($PULSE_SERVER's `unix:` path, or $XDG_RUNTIME_DIR/pulse/native) accepts.
pub fn pulse_running() -> bool {
    if let Ok(server) = std::env::var("PULSE_SERVER") {
        return server.split_whitespace().filter_map(|s| s.strip_prefix("unix:")).any(|p| accepts(p.as_ref()));
    }
    runtime_dir().is_some_and(|d| accepts(&d.join("pulse/native")))
}

/// A device's name as users see it and type it (`--device`).
pub fn device_name(d: &cpal::Device) -> String {
    d.to_string()
}

/// A device's stable id on its host (PipeWire's node name, ALSA's PCM name), also accepted by `--device`.
pub fn device_id(d: &cpal::Device) -> Option<String> {
    d.id().ok().map(|id| id.id().to_string())
}

fn names(devices: &[cpal::Device]) -> String {
    let list: Vec<String> = devices.iter().map(|d| format!("'{}'", device_name(d))).collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// The output (or input) device called `name` (its name or its id); else an error listing the ones there are.
pub fn find_device(host: &cpal::Host, h: Running, name: &str, input: bool) -> anyhow::Result<cpal::Device> {
    let (flag, kind) = if input { ("--input-device", "input") } else { ("--device", "output") };
    let devices: Vec<cpal::Device> =
        if input { host.input_devices()?.collect() } else { host.output_devices()?.collect() };
    if let Some(d) = devices.iter().find(|d| device_name(d) == name || device_id(d).as_deref() == Some(name)) {
        return Ok(d.clone());
    }
    Err(anyhow!("{flag} '{name}': no such {kind} device on {} (devices: {})", h.name(), names(&devices)))
}

/// What a device offers, for one line: "rates 44100, 48000 Hz; blocks 32..=2048 frames; channels 2".
/// Ranges are summed up by their extremes (ALSA's plugins list one per channel count).
pub fn offers(ranges: &[cpal::SupportedStreamConfigRange]) -> String {
    let mut rates: Vec<(u32, u32)> = ranges.iter().map(|r| (r.min_sample_rate(), r.max_sample_rate())).collect();
    rates.sort_unstable();
    rates.dedup();
    let rates = if rates.is_empty() {
        "?".to_string()
    } else if rates.iter().all(|&(lo, hi)| lo == hi) {
        rates.iter().map(|&(r, _)| r.to_string()).collect::<Vec<_>>().join(", ")
    } else {
        let lo = rates.iter().map(|r| r.0).min().unwrap_or(0);
        let hi = rates.iter().map(|r| r.1).max().unwrap_or(0);
        format!("{lo}..={hi}")
    };
    let blocks: Vec<(u32, u32)> = ranges
        .iter()
        .filter_map(|r| match *r.buffer_size() {
            cpal::SupportedBufferSize::Range { min, max } => Some((min, max)),
            cpal::SupportedBufferSize::Unknown => None,
        })
        .collect();
    let blocks = match (blocks.iter().map(|b| b.0).min(), blocks.iter().map(|b| b.1).max()) {
        (Some(lo), Some(hi)) => format!("{lo}..={hi}"),
        _ => "any".to_string(),
    };
    let mut channels: Vec<u16> = ranges.iter().map(|r| r.channels()).collect();
    channels.sort_unstable();
    channels.dedup();
    let channels = match channels.as_slice() {
        [] => "?".to_string(),
        [one] => one.to_string(),
        [lo, .., hi] if usize::from(hi - lo) + 1 == channels.len() => format!("{lo}..={hi}"),
        many => many.iter().map(u16::to_string).collect::<Vec<_>>().join(", "),
    };
    format!("rates {rates} Hz; blocks {blocks} frames; channels {channels}")
}

/// Checks `rate` and `buffer` against what the device says it takes, before
/// a stream is built: a refusal is one line with what it offers. A server
/// that resamples (PipeWire, Pulse) takes any rate.
pub fn check_config(
    d: &cpal::Device,
    h: Running,
    input: bool,
    rate: Option<u32>,
    buffer: Option<u32>,
) -> anyhow::Result<()> {
    let ranges: Vec<cpal::SupportedStreamConfigRange> = if input {
        d.supported_input_configs().map(Iterator::collect).unwrap_or_default()
    } else {
        d.supported_output_configs().map(Iterator::collect).unwrap_or_default()
    };
    if ranges.is_empty() {
        // Nothing to check against (a host that cannot tell): the stream decides.
        return Ok(());
    }
    let what = if input { "input" } else { "output" };
    let name = device_name(d);
    if let Some(r) = rate.filter(|_| !h.resamples()) {
        if !ranges.iter().any(|c| c.contains_rate(r)) {
            anyhow::bail!("--rate {r}: the {} {what} '{name}' refuses it (offers {})", h.name(), offers(&ranges));
        }
    }
    if let Some(n) = buffer {
        let fits = ranges.iter().any(|c| match *c.buffer_size() {
            cpal::SupportedBufferSize::Range { min, max } => (min..=max).contains(&n) || max == 0,
            cpal::SupportedBufferSize::Unknown => true,
        });
        if !fits {
            anyhow::bail!("--buffer {n}: the {} {what} '{name}' refuses it (offers {})", h.name(), offers(&ranges));
        }
    }
    Ok(())
}

/// A stream that would not build, as one line: a refused configuration says what the device offers.
pub fn build_error(
    d: &cpal::Device,
    h: Running,
    input: bool,
    config: &cpal::StreamConfig,
    e: &cpal::Error,
) -> anyhow::Error {
    let what = if input { "input" } else { "output" };
    let name = device_name(d);
    let block = match config.buffer_size {
        cpal::BufferSize::Fixed(n) => format!(", {n}-frame blocks"),
        _ => String::new(),
    };
    let asked = format!("{} Hz, {} ch{block}", config.sample_rate, config.channels);
    if e.kind() == cpal::ErrorKind::UnsupportedConfig {
        let ranges: Vec<cpal::SupportedStreamConfigRange> = if input {
            d.supported_input_configs().map(Iterator::collect).unwrap_or_default()
        } else {
            d.supported_output_configs().map(Iterator::collect).unwrap_or_default()
        };
        if !ranges.is_empty() {
            return anyhow!("the {} {what} '{name}' refuses {asked}: {e} (offers {})", h.name(), offers(&ranges));
        }
    }
    anyhow!("opening the {} {what} '{name}' at {asked}: {e}", h.name())
}

/// `clavm devices`: every host, running or not, its devices with their rates and block sizes.
pub fn report() -> String {
    let mut s = String::new();
    for h in Running::ALL {
        if !h.is_running() {
            s += &format!("{} (--host {}): not running\n", h.name(), h.flag());
            continue;
        }
        let host = match cpal::host_from_id(h.cpal_id()) {
            Ok(host) => host,
            Err(e) => {
                s += &format!("{} (--host {}): unavailable: {e}\n", h.name(), h.flag());
                continue;
            }
        };
        s += &format!("{} (--host {}): running\n", h.name(), h.flag());
        if h == Running::Jack {
            s += "  (JACK: clavm is its own client; connect its ports, --device names the client)\n";
        }
        let default_out = host.default_output_device().map(|d| device_name(&d));
        let default_in = host.default_input_device().map(|d| device_name(&d));
        let devices: Vec<cpal::Device> = host.devices().map(Iterator::collect).unwrap_or_default();
        for d in &devices {
            let name = device_name(d);
            let mut line = format!("  '{name}'");
            if let Some(id) = device_id(d).filter(|id| *id != name) {
                line += &format!(" (id {id})");
            }
            let mut marks = Vec::new();
            if default_out.as_deref() == Some(name.as_str()) {
                marks.push("default output");
            }
            if default_in.as_deref() == Some(name.as_str()) {
                marks.push("default input");
            }
            if !marks.is_empty() {
                line += &format!(" [{}]", marks.join(", "));
            }
            s += &line;
            s += "\n";
            for (input, what) in [(false, "output"), (true, "input")] {
                let ranges: Vec<cpal::SupportedStreamConfigRange> = if input {
                    d.supported_input_configs().map(Iterator::collect).unwrap_or_default()
                } else {
                    d.supported_output_configs().map(Iterator::collect).unwrap_or_default()
                };
                if !ranges.is_empty() {
                    let resample = if h.resamples() { " (any rate: the server resamples)" } else { "" };
                    s += &format!("    {what}: {}{resample}\n", offers(&ranges));
                }
            }
        }
        if devices.is_empty() {
            s += "  no devices\n";
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_lists_rates_blocks_and_channels_once_each() {
        let r = |ch, lo, hi, min, max| {
            cpal::SupportedStreamConfigRange::new(
                ch,
                lo,
                hi,
                cpal::SupportedBufferSize::Range { min, max },
                cpal::SampleFormat::F32,
            )
        };
        let ranges = [r(2, 48000, 48000, 32, 2048), r(2, 44100, 44100, 32, 2048), r(1, 48000, 48000, 32, 2048)];
        assert_eq!(offers(&ranges), "rates 44100, 48000 Hz; blocks 32..=2048 frames; channels 1..=2");
        // ALSA's plugins: one range per channel count, each with its own largest block.
        let alsa: Vec<_> =
            (1..=8).map(|c| r(c, 1, 384000, 1, 8192 * 8 / u32::from(c))).chain([r(16, 1, 384000, 1, 64)]).collect();
        assert_eq!(offers(&alsa), "rates 1..=384000 Hz; blocks 1..=65536 frames; channels 1, 2, 3, 4, 5, 6, 7, 8, 16");
        assert_eq!(offers(&[]), "rates ? Hz; blocks any frames; channels ?");
    }
}
