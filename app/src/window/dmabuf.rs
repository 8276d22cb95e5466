//! Choosing how frames reach the compositor, and the negotiation the dmabuf
//! path needs: the compositor's format table, its main device, the Vulkan
//! device that matches it, and the modifier both can use.
//!
//! The dmabuf swapchain itself (exporting images as dmabufs, wrapping them
//! in wl_buffers, sync files) is not in this build: on the machines it is
//! built and tested on there is no render node, and lavapipe cannot export a
//! dmabuf. The negotiation is here and tested, so the swapchain lands on it;
//! `auto` says plainly why it chose shared memory.

use clavm_render::gpu::{DeviceKind, Gpu};
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

/// The path for `choice`, with the reason shown in the status bar.
pub fn choose(choice: PresentChoice, dmabuf: Option<u32>, gpu: &Gpu) -> (PresentPath, String) {
    let info = gpu.info();
    let why_not = if dmabuf.is_none() {
        Some("the compositor offers no linux-dmabuf".to_string())
    } else if info.kind == DeviceKind::Software {
        Some(format!("{} cannot export dmabufs (a software rasteriser has no render node)", info.name))
    } else if dmabuf.is_some_and(|v| v < 4) {
        Some("the compositor's linux-dmabuf is older than v4 (no per-surface feedback)".to_string())
    } else {
        Some("the dmabuf swapchain is not in this build".to_string())
    };
    match (choice, why_not) {
        (PresentChoice::Shm, _) => (PresentPath::Shm, "shm (chosen with --present shm)".into()),
        (PresentChoice::Dmabuf, Some(why)) => (PresentPath::Dmabuf, why),
        (PresentChoice::Auto, Some(why)) => (PresentPath::Shm, format!("shm: {why}")),
        (_, None) => (PresentPath::Dmabuf, "dmabuf".into()),
    }
}

// The negotiation below is used by the dmabuf swapchain, which is not in
// this build, and by its tests.
/// A DRM fourcc code.
#[allow(dead_code)]
pub const fn fourcc(s: &[u8; 4]) -> u32 {
    (s[0] as u32) | (s[1] as u32) << 8 | (s[2] as u32) << 16 | (s[3] as u32) << 24
}
#[allow(dead_code)]
pub const DRM_FORMAT_XRGB8888: u32 = fourcc(b"XR24");
#[allow(dead_code)]
pub const DRM_FORMAT_ARGB8888: u32 = fourcc(b"AR24");
#[allow(dead_code)]
pub const DRM_FORMAT_MOD_LINEAR: u64 = 0;
#[allow(dead_code)]
pub const DRM_FORMAT_MOD_INVALID: u64 = 0x00ff_ffff_ffff_ffff;

/// One entry of the feedback's format table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)]
pub struct FormatModifier {
    pub format: u32,
    pub modifier: u64,
}

/// Parses the format table the compositor shares by fd: 16-byte entries of
/// `{u32 format, u32 padding, u64 modifier}`, native endian. A trailing
/// partial entry is an error (the table is corrupt, not short).
#[allow(dead_code)]
pub fn parse_format_table(bytes: &[u8]) -> Result<Vec<FormatModifier>, String> {
    if !bytes.len().is_multiple_of(16) {
        return Err(format!("format table of {} bytes is not a whole number of 16-byte entries", bytes.len()));
    }
    Ok(bytes
        .chunks_exact(16)
        .map(|e| FormatModifier {
            format: u32::from_ne_bytes(e[0..4].try_into().expect("4 bytes")),
            modifier: u64::from_ne_bytes(e[8..16].try_into().expect("8 bytes")),
        })
        .collect())
}

/// The entries a tranche names: its `formats` array is u16 indices into the table.
#[allow(dead_code)]
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
#[allow(dead_code)]
pub fn parse_dev(bytes: &[u8]) -> Result<(u32, u32), String> {
    let raw: [u8; 8] = bytes.try_into().map_err(|_| format!("a dev_t of {} bytes", bytes.len()))?;
    let dev = u64::from_ne_bytes(raw);
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    Ok((major as u32, minor as u32))
}

/// A Vulkan device's DRM nodes (from VK_EXT_physical_device_drm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)]
pub struct DrmNodes {
    pub index: usize,
    pub primary: Option<(u32, u32)>,
    pub render: Option<(u32, u32)>,
}

/// The Vulkan device whose primary or render node is the compositor's main device.
#[allow(dead_code)]
pub fn match_device(main: (u32, u32), devices: &[DrmNodes]) -> Option<usize> {
    devices.iter().find(|d| d.render == Some(main) || d.primary == Some(main)).map(|d| d.index)
}

/// The modifier to allocate with: one both the compositor (in the tranche)
/// and the device support for `format`, preferring the device's order
/// (drivers list their fastest first) and LINEAR last.
#[allow(dead_code)]
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

    fn entry(format: u32, modifier: u64) -> [u8; 16] {
        let mut e = [0u8; 16];
        e[0..4].copy_from_slice(&format.to_ne_bytes());
        e[8..16].copy_from_slice(&modifier.to_ne_bytes());
        e
    }

    #[test]
    fn the_format_table_and_tranches_parse_and_bad_ones_are_refused() {
        let tiled = 0x0100_0000_0000_0001u64;
        let bytes: Vec<u8> = [
            entry(DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR),
            entry(DRM_FORMAT_XRGB8888, tiled),
            entry(DRM_FORMAT_ARGB8888, 0),
        ]
        .concat();
        let table = parse_format_table(&bytes).unwrap();
        assert_eq!(table.len(), 3);
        assert_eq!(table[1], FormatModifier { format: DRM_FORMAT_XRGB8888, modifier: tiled });
        assert!(parse_format_table(&bytes[..20]).unwrap_err().contains("16-byte"));
        let idx: Vec<u8> = [1u16, 0].iter().flat_map(|i| i.to_ne_bytes()).collect();
        let tranche = tranche_formats(&table, &idx).unwrap();
        assert_eq!(tranche[0].modifier, tiled);
        let bad: Vec<u8> = 7u16.to_ne_bytes().to_vec();
        assert!(tranche_formats(&table, &bad).unwrap_err().contains("entry 7"));
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
    }
}
