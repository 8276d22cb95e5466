//! Output files written whole or not at all: work goes to a hidden temporary
//! file beside the target (same file system, same extension so tools that
//! guess the format by name still do), created exclusively without following
//! links, renamed into place on success and removed if dropped unfinished or
//! when the process is interrupted (`crate::crash`). A video needs seeking
//! (its index is written last and moved to the front), so a device, a FIFO
//! or stdout is refused with a message rather than streamed to.

use std::fs::File;
use std::path::Path;

use clavm_audio::render::output::{Output, Streaming};

pub struct PartialFile {
    /// None once committed.
    output: Option<Output>,
    file: File,
    tmp: std::path::PathBuf,
}

impl PartialFile {
    /// Creates the temporary file beside `path` now, before any long work (an
    /// unwritable directory fails at once).
    pub fn new(path: &Path, tag: &str) -> anyhow::Result<PartialFile> {
        let why = "a video is written with seeking (its index goes at the front)";
        let (output, file) = Output::create(path, tag, Streaming::Refused(why))?;
        let Some(tmp) = output.temporary_path().map(Path::to_path_buf) else {
            anyhow::bail!("cannot write {}: not a regular file", path.display());
        };
        crate::crash::remove_on_crash(&tmp);
        Ok(PartialFile { output: Some(output), file, tmp })
    }

    /// Where the work goes until [`commit`](Self::commit) (for reading back).
    pub fn work_path(&self) -> &Path {
        &self.tmp
    }

    /// The temporary file, open: writers get it by descriptor, never by
    /// name, so a name swapped meanwhile cannot redirect them.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Moves the finished file into place.
    pub fn commit(mut self) -> anyhow::Result<()> {
        match self.output.take() {
            Some(output) => Ok(output.commit()?),
            None => anyhow::bail!("{} was already moved into place", self.tmp.display()),
        }
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        // The Output removes the file itself if it was not committed; either
        // way the name is no longer ours to remove on a signal.
        drop(self.output.take());
        crate::crash::forget_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_file_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.mp4");
        let p = PartialFile::new(&out, "partial").unwrap();
        assert!(p.work_path().to_string_lossy().ends_with(".mp4"));
        std::io::Write::write_all(&mut p.file(), b"data").unwrap();
        drop(p);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "dropped unfinished: nothing left");
        let p = PartialFile::new(&out, "partial").unwrap();
        std::io::Write::write_all(&mut p.file(), b"data").unwrap();
        p.commit().unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"data");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let e = PartialFile::new(Path::new("/nonexistent-dir/x.png"), "partial").err().unwrap();
        assert!(format!("{e:#}").starts_with("cannot write /nonexistent-dir/x.png: No such file"), "{e:#}");
        let e = PartialFile::new(Path::new("/dev/null"), "partial").err().unwrap();
        assert!(format!("{e:#}").contains("character device, and a video is written with seeking"), "{e:#}");
    }
}
