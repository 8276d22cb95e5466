//! Output files written whole or not at all: work goes to a hidden temporary
//! file beside the target (same file system, same extension so tools that
//! guess the format by name still do), renamed into place on success and
//! removed if dropped unfinished.

use std::path::{Path, PathBuf};

use anyhow::Context;

pub struct PartialFile {
    tmp: PathBuf,
    path: PathBuf,
    done: bool,
}

impl PartialFile {
    /// Reserves a temporary name beside `path` and checks the directory is
    /// writable now, before any long work (creates an empty file there).
    pub fn new(path: &Path, tag: &str) -> anyhow::Result<PartialFile> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path.file_name().with_context(|| format!("{} is not a file name", path.display()))?;
        let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
        let tmp = dir.join(format!(".{}.{tag}-{}{ext}", name.to_string_lossy(), std::process::id()));
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(PartialFile { tmp, path: path.to_path_buf(), done: false })
    }

    /// Where to write until [`commit`](Self::commit).
    pub fn work_path(&self) -> &Path {
        &self.tmp
    }

    /// Moves the finished file into place.
    pub fn commit(mut self) -> anyhow::Result<()> {
        std::fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("cannot move the finished file to {}", self.path.display()))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
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
        std::fs::write(p.work_path(), b"data").unwrap();
        drop(p);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "dropped unfinished: nothing left");
        let p = PartialFile::new(&out, "partial").unwrap();
        std::fs::write(p.work_path(), b"data").unwrap();
        p.commit().unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"data");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let e = PartialFile::new(Path::new("/nonexistent-dir/x.png"), "partial").err().unwrap();
        assert!(format!("{e:#}").contains("cannot write /nonexistent-dir/x.png"), "{e:#}");
    }
}
