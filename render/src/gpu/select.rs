//! Which physical device to use: a discrete or integrated GPU first, a
//! software rasteriser (lavapipe) as the fallback, or the one `--gpu` names.
//! Pure over [`Candidate`]s so the policy is tested without hardware.

use std::fmt;

use crate::RenderError;

/// What `--gpu` asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum GpuChoice {
    /// The best usable device.
    #[default]
    Auto,
    /// The n-th device the loader lists (as `clavm gpus` prints them).
    Index(usize),
    /// The first device whose name contains this text (case-insensitive),
    /// e.g. `llvmpipe` or `radeon`.
    Name(String),
}

impl std::str::FromStr for GpuChoice {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<GpuChoice, Self::Err> {
        Ok(match s.trim() {
            "" | "auto" => GpuChoice::Auto,
            t => t.parse().map(GpuChoice::Index).unwrap_or_else(|_| GpuChoice::Name(t.to_owned())),
        })
    }
}

/// The kind of device, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeviceKind {
    Discrete,
    Integrated,
    Virtual,
    Other,
    Software,
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceKind::Discrete => "discrete GPU",
            DeviceKind::Integrated => "integrated GPU",
            DeviceKind::Virtual => "virtual GPU",
            DeviceKind::Other => "other",
            DeviceKind::Software => "software rasteriser",
        })
    }
}

/// One device as the loader lists it, with why it cannot be used (if so).
#[derive(Clone, Debug)]
pub struct Candidate {
    pub index: usize,
    pub name: String,
    pub kind: DeviceKind,
    /// (major, minor) of the device's Vulkan version.
    pub api: (u32, u32),
    /// Empty when the device has everything the renderer needs.
    pub missing: Vec<String>,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({}, Vulkan {}.{})", self.index, self.name, self.kind, self.api.0, self.api.1)?;
        if !self.missing.is_empty() {
            write!(f, " - unusable, lacks {}", self.missing.join(", "))?;
        }
        Ok(())
    }
}

/// Picks the device for `choice`, or says why none can be used.
pub fn choose(candidates: &[Candidate], choice: &GpuChoice) -> Result<usize, RenderError> {
    let list = || candidates.iter().map(|c| format!("  {c}")).collect::<Vec<_>>().join("\n");
    if candidates.is_empty() {
        return Err(RenderError::NoDevice(
            "the Vulkan loader lists no device (Debian: install mesa-vulkan-drivers for the lavapipe software device)"
                .into(),
        ));
    }
    let named = match choice {
        GpuChoice::Auto => None,
        GpuChoice::Index(i) => Some(candidates.iter().find(|c| c.index == *i).ok_or_else(|| {
            RenderError::DeviceChoice(format!("--gpu {i}: there is no device {i}; the devices are:\n{}", list()))
        })?),
        GpuChoice::Name(n) => {
            let needle = n.to_lowercase();
            Some(candidates.iter().find(|c| c.name.to_lowercase().contains(&needle)).ok_or_else(|| {
                RenderError::DeviceChoice(format!(
                    "--gpu {n}: no device's name contains it; the devices are:\n{}",
                    list()
                ))
            })?)
        }
    };
    if let Some(c) = named {
        return if c.missing.is_empty() {
            Ok(c.index)
        } else {
            Err(RenderError::DeviceChoice(format!(
                "--gpu: {} cannot be used: it lacks {}",
                c.name,
                c.missing.join(", ")
            )))
        };
    }
    candidates
        .iter()
        .filter(|c| c.missing.is_empty())
        .min_by_key(|c| (c.kind, c.index))
        .map(|c| c.index)
        .ok_or_else(|| RenderError::NoDevice(format!("no device has what the renderer needs:\n{}", list())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(index: usize, name: &str, kind: DeviceKind, missing: &[&str]) -> Candidate {
        Candidate {
            index,
            name: name.into(),
            kind,
            api: (1, 3),
            missing: missing.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_real_gpu_comes_before_the_software_fallback() {
        let c = [
            cand(0, "llvmpipe (LLVM 15)", DeviceKind::Software, &[]),
            cand(1, "Intel UHD", DeviceKind::Integrated, &[]),
            cand(2, "Radeon RX", DeviceKind::Discrete, &[]),
        ];
        assert_eq!(choose(&c, &GpuChoice::Auto).unwrap(), 2);
        assert_eq!(choose(&c[..2], &GpuChoice::Auto).unwrap(), 1);
        assert_eq!(choose(&c[..1], &GpuChoice::Auto).unwrap(), 0);
    }

    #[test]
    fn a_device_without_the_features_is_skipped_or_refused_by_name() {
        let c = [
            cand(0, "Old GPU", DeviceKind::Discrete, &["Vulkan 1.3 (has 1.1)"]),
            cand(1, "llvmpipe", DeviceKind::Software, &[]),
        ];
        assert_eq!(choose(&c, &GpuChoice::Auto).unwrap(), 1);
        let e = choose(&c, &GpuChoice::Name("old".into())).unwrap_err().to_string();
        assert!(e.contains("Old GPU cannot be used") && e.contains("Vulkan 1.3"), "{e}");
        let e = choose(&c[..1], &GpuChoice::Auto).unwrap_err();
        assert!(e.is_unavailable() && e.to_string().contains("lacks Vulkan 1.3"), "{e}");
    }

    #[test]
    fn gpu_flag_parses_to_index_or_name_and_errors_list_devices() {
        assert_eq!("1".parse::<GpuChoice>().unwrap(), GpuChoice::Index(1));
        assert_eq!("auto".parse::<GpuChoice>().unwrap(), GpuChoice::Auto);
        assert_eq!("llvm".parse::<GpuChoice>().unwrap(), GpuChoice::Name("llvm".into()));
        let c = [cand(0, "llvmpipe", DeviceKind::Software, &[])];
        assert_eq!(choose(&c, &GpuChoice::Name("LLVM".into())).unwrap(), 0);
        let e = choose(&c, &GpuChoice::Index(3)).unwrap_err().to_string();
        assert!(e.contains("no device 3") && e.contains("0: llvmpipe"), "{e}");
        let e = choose(&[], &GpuChoice::Auto).unwrap_err();
        assert!(e.is_unavailable() && e.to_string().contains("mesa-vulkan-drivers"), "{e}");
    }
}
