//! Choosing how frames reach the compositor, and the negotiation the dmabuf
//! path needs: the compositor's format table, its main device, the Vulkan
//! device that matches it, and the modifiers both can use.
//!
//! `choose` decides before the window exists, from what the compositor and
//! the device offer; the swapchain (`swapchain.rs`) then finishes the
//! negotiation on the surface's feedback and builds the dmabufs. Under
//! `auto` any step that fails means shared memory, with the reason shown;
//! `--present dmabuf` fails with it instead.

use clavm_render::gpu::{DeviceInfo, DeviceKind};
use wayland_client::globals::GlobalList;

/// `--present`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PresentChoice {
    Auto,
    Dmabuf,
    Shm,
}

/// The path frames take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresentPath {
    Dmabuf,
    Shm,
}

/// The version of `zwp_linux_dmabuf_v1` the compositor offers, if any.
pub fn offered(globals: &GlobalList) -> Option<u32> {
    globals.contents().with_list(|l| l.iter().find(|g| g.interface == "zwp_linux_dmabuf_v1").map(|g| g.version))
}

/// The path for `choice`, with the reason shown in the status bar; `Err`
/// with the reason when `--present dmabuf` asked for what cannot work.
pub fn choose(choice: PresentChoice, dmabuf: Option<u32>, info: &DeviceInfo) -> Result<(PresentPath, String), String> {
    let why_not = if dmabuf.is_none() {
        Some("the compositor offers no linux-dmabuf".to_string())
    } else if info.kind == DeviceKind::Software {
        Some(format!("{} cannot export dmabufs (a software rasteriser has no render node)", info.name))
    } else if dmabuf.is_some_and(|v| v < 4) {
        Some("the compositor's linux-dmabuf is older than v4 (no per-surface feedback)".to_string())
    } else if !info.dmabuf_export {
        Some(format!("{} cannot export dmabufs (no VK_EXT_external_memory_dma_buf)", info.name))
    } else if info.drm.is_none() {
        Some(format!(
            "{} names no DRM node to match the compositor's device (no VK_EXT_physical_device_drm)",
            info.name
        ))
    } else {
        None
    };
    match (choice, why_not) {
        (PresentChoice::Shm, _) => Ok((PresentPath::Shm, "shm (chosen with --present shm)".into())),
        (PresentChoice::Dmabuf, Some(why)) => Err(why),
        (PresentChoice::Auto, Some(why)) => Ok((PresentPath::Shm, format!("shm: {why}"))),
        (_, None) => Ok((PresentPath::Dmabuf, "dmabuf".into())),
    }
}

/// A DRM fourcc code.
pub const fn fourcc(s: &[u8; 4]) -> u32 {
    (s[0] as u32) | (s[1] as u32) << 8 | (s[2] as u32) << 16 | (s[3] as u32) << 24
}
pub const DRM_FORMAT_XRGB8888: u32 = fourcc(b"XR24");
pub const DRM_FORMAT_ARGB8888: u32 = fourcc(b"AR24");
pub const DRM_FORMAT_MOD_LINEAR: u64 = 0;
pub const DRM_FORMAT_MOD_INVALID: u64 = 0x00ff_ffff_ffff_ffff;

/// One entry of the feedback's format table (sctk maps the table itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatModifier {
    pub format: u32,
    pub modifier: u64,
}

/// The entries a tranche names: its `formats` array is u16 indices into the table.
pub fn tranche_formats(table: &[FormatModifier], indices: &[u8]) -> Result<Vec<FormatModifier>, String> {
    if !indices.len().is_multiple_of(2) {
        return Err("tranche format indices are not 16-bit".into());
    }
    indices
        .chunks_exact(2)
        .map(|c| {
            let i = u16::from_ne_bytes([c[0], c[1]]) as usize;
            table.get(i).copied().ok_or_else(|| format!("tranche names entry {i} of a {}-entry table", table.len()))
        })
        .collect()
}

/// A device number (`dev_t`) from the feedback's `main_device` array, as
/// (major, minor) with glibc's encoding.
pub fn parse_dev(bytes: &[u8]) -> Result<(u32, u32), String> {
    let raw: [u8; 8] = bytes.try_into().map_err(|_| format!("a dev_t of {} bytes", bytes.len()))?;
    let dev = u64::from_ne_bytes(raw);
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    Ok((major as u32, minor as u32))
}

/// A Vulkan device's DRM nodes (from VK_EXT_physical_device_drm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrmNodes {
    pub index: usize,
    pub primary: Option<(u32, u32)>,
    pub render: Option<(u32, u32)>,
}

/// The Vulkan device whose primary or render node is the compositor's main device.
pub fn match_device(main: (u32, u32), devices: &[DrmNodes]) -> Option<usize> {
    devices.iter().find(|d| d.render == Some(main) || d.primary == Some(main)).map(|d| d.index)
}

/// The modifiers to allocate with, when an explicit one is possible: those
/// both the compositor (in the tranche) and the device support for
/// `format`, in the device's order, without LINEAR and the implicit one
/// (which `choose_modifier` falls back to).
pub fn common_modifiers(format: u32, tranche: &[FormatModifier], device_modifiers: &[u64]) -> Vec<u64> {
    let offered = |m: u64| tranche.iter().any(|e| e.format == format && e.modifier == m);
    device_modifiers
        .iter()
        .copied()
        .filter(|&m| m != DRM_FORMAT_MOD_LINEAR && m != DRM_FORMAT_MOD_INVALID && offered(m))
        .collect()
}

/// The modifier to allocate with: one both the compositor (in the tranche)
/// and the device support for `format`, preferring the device's order
/// (drivers list their fastest first) and LINEAR last.
pub fn choose_modifier(format: u32, tranche: &[FormatModifier], device_modifiers: &[u64]) -> Option<u64> {
    let offered = |m: u64| tranche.iter().any(|e| e.format == format && e.modifier == m);
    device_modifiers
        .iter()
        .copied()
        .filter(|&m| m != DRM_FORMAT_MOD_LINEAR && m != DRM_FORMAT_MOD_INVALID)
        .find(|&m| offered(m))
        .or_else(|| offered(DRM_FORMAT_MOD_LINEAR).then_some(DRM_FORMAT_MOD_LINEAR))
        .or_else(|| offered(DRM_FORMAT_MOD_INVALID).then_some(DRM_FORMAT_MOD_INVALID))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tranches_name_table_entries_and_bad_indices_are_refused() {
        let tiled = 0x0100_0000_0000_0001u64;
        let table = [
            FormatModifier { format: DRM_FORMAT_XRGB8888, modifier: DRM_FORMAT_MOD_LINEAR },
            FormatModifier { format: DRM_FORMAT_XRGB8888, modifier: tiled },
            FormatModifier { format: DRM_FORMAT_ARGB8888, modifier: 0 },
        ];
        let idx: Vec<u8> = [1u16, 0].iter().flat_map(|i| i.to_ne_bytes()).collect();
        let tranche = tranche_formats(&table, &idx).unwrap();
        assert_eq!(tranche[0].modifier, tiled);
        let bad: Vec<u8> = 7u16.to_ne_bytes().to_vec();
        assert!(tranche_formats(&table, &bad).unwrap_err().contains("entry 7"));
        assert!(tranche_formats(&table, &[0]).unwrap_err().contains("16-bit"));
    }

    fn device(kind: DeviceKind, export: bool, drm: bool) -> DeviceInfo {
        DeviceInfo {
            name: "dev".into(),
            kind,
            api: (1, 3),
            max_image_size: 16384,
            drm: drm.then_some(clavm_render::gpu::DrmNodes { primary: Some((226, 0)), render: Some((226, 128)) }),
            dmabuf_export: export,
            drm_modifiers: export,
            sync_fd: export,
        }
    }

    #[test]
    fn auto_takes_dmabuf_only_when_compositor_and_device_can_and_says_why_not() {
        let gpu = device(DeviceKind::Discrete, true, true);
        assert_eq!(choose(PresentChoice::Auto, Some(4), &gpu).unwrap().0, PresentPath::Dmabuf);
        assert_eq!(choose(PresentChoice::Shm, Some(4), &gpu).unwrap().0, PresentPath::Shm);
        let (path, why) = choose(PresentChoice::Auto, None, &gpu).unwrap();
        assert_eq!((path, why.as_str()), (PresentPath::Shm, "shm: the compositor offers no linux-dmabuf"));
        assert!(choose(PresentChoice::Auto, Some(3), &gpu).unwrap().1.contains("older than v4"));
        let lavapipe = device(DeviceKind::Software, false, false);
        assert!(choose(PresentChoice::Auto, Some(4), &lavapipe).unwrap().1.contains("software rasteriser"));
        assert!(choose(PresentChoice::Auto, Some(4), &device(DeviceKind::Integrated, false, true))
            .unwrap()
            .1
            .contains("export"));
        assert!(choose(PresentChoice::Auto, Some(4), &device(DeviceKind::Integrated, true, false))
            .unwrap()
            .1
            .contains("DRM node"));
        // Asked for and impossible: refused with the reason.
        assert_eq!(
            choose(PresentChoice::Dmabuf, None, &lavapipe).unwrap_err(),
            "the compositor offers no linux-dmabuf"
        );
        assert_eq!(choose(PresentChoice::Dmabuf, Some(4), &gpu).unwrap().0, PresentPath::Dmabuf);
    }

    #[test]
    fn the_main_device_matches_a_vulkan_device_by_its_nodes() {
        // 226:128 (/dev/dri/renderD128) as glibc's makedev encodes it.
        let dev: u64 = ((226u64 & 0xfff) << 8) | (128 & 0xff);
        assert_eq!(parse_dev(&dev.to_ne_bytes()).unwrap(), (226, 128));
        assert!(parse_dev(&[0; 4]).is_err());
        let devices = [
            DrmNodes { index: 0, primary: None, render: None }, // lavapipe
            DrmNodes { index: 1, primary: Some((226, 0)), render: Some((226, 128)) },
        ];
        assert_eq!(match_device((226, 128), &devices), Some(1));
        assert_eq!(match_device((226, 0), &devices), Some(1));
        assert_eq!(match_device((226, 129), &devices), None);
    }

    #[test]
    fn the_modifier_is_one_both_sides_support_and_linear_is_the_last_resort() {
        let tiled_a = 0x0100_0000_0000_0002u64;
        let tiled_b = 0x0100_0000_0000_0005u64;
        let tranche = [
            FormatModifier { format: DRM_FORMAT_XRGB8888, modifier: DRM_FORMAT_MOD_LINEAR },
            FormatModifier { format: DRM_FORMAT_XRGB8888, modifier: tiled_b },
            FormatModifier { format: DRM_FORMAT_ARGB8888, modifier: tiled_a },
        ];
        assert_eq!(choose_modifier(DRM_FORMAT_XRGB8888, &tranche, &[tiled_a, tiled_b, 0]), Some(tiled_b));
        assert_eq!(choose_modifier(DRM_FORMAT_XRGB8888, &tranche, &[tiled_a]), Some(DRM_FORMAT_MOD_LINEAR));
        assert_eq!(choose_modifier(DRM_FORMAT_ARGB8888, &tranche, &[tiled_b]), None);
        assert_eq!(common_modifiers(DRM_FORMAT_XRGB8888, &tranche, &[tiled_a, tiled_b, 0]), vec![tiled_b]);
        assert!(common_modifiers(DRM_FORMAT_XRGB8888, &tranche, &[0]).is_empty());
    }
}
