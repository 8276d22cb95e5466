//! Implicit synchronisation on a dmabuf through sync files (Linux 6.0+):
//! the fences of the jobs using a buffer come out as a sync file, and a
//! sync file goes in as a fence the buffer's next users wait for. This is
//! how a frame's completion reaches the compositor without a CPU wait, and
//! how the compositor's last read of a buffer reaches our next frame.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::RenderError;

/// `_IOC` of linux/asm-generic/ioctl.h (x86, arm, aarch64, riscv; not the
/// powerpc, mips or sparc encodings): direction, size, type, number.
const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;
/// linux/dma-buf.h: `DMA_BUF_BASE`.
const DMA_BUF_BASE: u8 = b'b';

/// `struct dma_buf_export_sync_file` and `struct dma_buf_import_sync_file`
/// (linux/dma-buf.h): the same two 32-bit fields.
#[repr(C)]
#[derive(Debug, Default)]
struct SyncFileArg {
    flags: u32,
    fd: i32,
}

/// `DMA_BUF_SYNC_READ`: the fences a reader must wait for (the writers').
/// Only the tests name it: a frame overwrites, so it exports with WRITE.
#[cfg(test)]
pub const DMA_BUF_SYNC_READ: u32 = 1;
/// `DMA_BUF_SYNC_WRITE`: exporting gives every fence (readers' too), what a
/// writer must wait for; importing adds a write fence readers wait for.
pub const DMA_BUF_SYNC_WRITE: u32 = 2;

/// `DMA_BUF_IOCTL_EXPORT_SYNC_FILE`: `_IOWR(DMA_BUF_BASE, 2, struct dma_buf_export_sync_file)`.
pub const DMA_BUF_IOCTL_EXPORT_SYNC_FILE: u32 =
    ioc(IOC_READ | IOC_WRITE, DMA_BUF_BASE, 2, std::mem::size_of::<SyncFileArg>());
/// `DMA_BUF_IOCTL_IMPORT_SYNC_FILE`: `_IOW(DMA_BUF_BASE, 3, struct dma_buf_import_sync_file)`.
pub const DMA_BUF_IOCTL_IMPORT_SYNC_FILE: u32 = ioc(IOC_WRITE, DMA_BUF_BASE, 3, std::mem::size_of::<SyncFileArg>());

/// True when the error means the kernel has no such ioctl (before 6.0) or
/// the buffer's exporter does not take part: fall back, don't fail.
pub fn unsupported(e: &RenderError) -> bool {
    matches!(e, RenderError::Os { source, .. }
        if matches!(source.raw_os_error(), Some(libc::ENOTTY) | Some(libc::EINVAL) | Some(libc::EOPNOTSUPP)))
}

/// The fences a job must wait for before doing `flags` (`DMA_BUF_SYNC_WRITE`
/// to overwrite it) on the dmabuf, as a sync file.
pub fn export(dmabuf: BorrowedFd<'_>, flags: u32) -> Result<OwnedFd, RenderError> {
    let mut arg = SyncFileArg { flags, fd: -1 };
    // SAFETY: the ioctl reads and writes exactly one `SyncFileArg`, which
    // lives across the call; `dmabuf` is an open fd.
    let r = unsafe { libc::ioctl(dmabuf.as_raw_fd(), DMA_BUF_IOCTL_EXPORT_SYNC_FILE as _, &mut arg) };
    if r < 0 {
        return Err(RenderError::Os {
            call: "DMA_BUF_IOCTL_EXPORT_SYNC_FILE",
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: on success the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(arg.fd) })
}

/// Adds the sync file's fence to the dmabuf, for `flags` (`DMA_BUF_SYNC_WRITE`:
/// readers wait for it). The kernel takes its own reference.
pub fn import(dmabuf: BorrowedFd<'_>, sync_file: BorrowedFd<'_>, flags: u32) -> Result<(), RenderError> {
    let mut arg = SyncFileArg { flags, fd: sync_file.as_raw_fd() };
    // SAFETY: the ioctl reads exactly one `SyncFileArg`, which lives across
    // the call; both fds are open.
    let r = unsafe { libc::ioctl(dmabuf.as_raw_fd(), DMA_BUF_IOCTL_IMPORT_SYNC_FILE as _, &mut arg) };
    if r < 0 {
        return Err(RenderError::Os {
            call: "DMA_BUF_IOCTL_IMPORT_SYNC_FILE",
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ioctl_numbers_are_the_kernels() {
        // The values linux/dma-buf.h gives on x86-64 and aarch64.
        assert_eq!(DMA_BUF_IOCTL_EXPORT_SYNC_FILE, 0xc008_6202);
        assert_eq!(DMA_BUF_IOCTL_IMPORT_SYNC_FILE, 0x4008_6203);
        assert_eq!(std::mem::size_of::<SyncFileArg>(), 8);
        assert_eq!((DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE), (1, 2));
    }

    #[test]
    fn a_file_that_is_not_a_dmabuf_is_refused_as_unsupported() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let fd = std::os::fd::AsFd::as_fd(&f);
        let e = export(fd, DMA_BUF_SYNC_WRITE).unwrap_err();
        assert!(unsupported(&e), "{e}");
        assert!(e.to_string().contains("EXPORT_SYNC_FILE"));
        let e = import(fd, fd, DMA_BUF_SYNC_WRITE).unwrap_err();
        assert!(unsupported(&e), "{e}");
    }
}
