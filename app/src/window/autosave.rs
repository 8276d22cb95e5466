//! Nothing a performer typed is lost: the editor's text is written to a
//! state file a moment after every change (atomically: temp file, then
//! rename), and the next launch offers it back when it differs from the file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long after the last change the text is written.
const DELAY: Duration = Duration::from_millis(300);

pub struct Autosave {
    path: PathBuf,
    written: String,
    changed: Option<Instant>,
}

/// Where autosaves live: `$XDG_STATE_HOME/clavm/autosave` (or `~/.local/state/...`).
pub fn dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("clavm").join("autosave")
}

/// The autosave file of a patch (by its absolute path), or of the unnamed buffer.
pub fn file_for(patch: Option<&Path>) -> PathBuf {
    let key = match patch {
        Some(p) => {
            let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            // A readable, collision-safe name: the file name and a hash of the full path.
            let mut h: u64 = 0xcbf29ce484222325;
            for b in abs.to_string_lossy().bytes() {
                h = (h ^ b as u64).wrapping_mul(0x100000001b3);
            }
            format!("{}-{h:016x}.c", abs.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default())
        }
        None => "untitled.c".into(),
    };
    dir().join(key)
}

impl Autosave {
    /// Starts autosaving to `path`; returns the text found there from a
    /// previous session, if it differs from `current`.
    pub fn open(path: PathBuf, current: &str) -> (Autosave, Option<String>) {
        let found = std::fs::read_to_string(&path).ok().filter(|t| t != current && !t.is_empty());
        (Autosave { path, written: current.to_owned(), changed: None }, found)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The text changed now.
    pub fn touch(&mut self) {
        self.changed = Some(Instant::now());
    }

    /// Writes `text` if it changed and the delay has passed (or `now` is set).
    pub fn tick(&mut self, text: &str, now: bool) -> std::io::Result<()> {
        let due = self.changed.is_some_and(|t| now || t.elapsed() >= DELAY);
        if !due || text == self.written {
            return Ok(());
        }
        self.changed = None;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("c.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)?;
        self.written = text.to_owned();
        Ok(())
    }

    /// The text is safely saved in its file: the autosave is no longer needed.
    pub fn saved(&mut self, text: &str) {
        self.written = text.to_owned();
        self.changed = None;
        let _ = std::fs::remove_file(&self.path);
    }

    /// How long until the next write is due, if one is pending.
    pub fn due_in(&self) -> Option<Duration> {
        self.changed.map(|t| DELAY.saturating_sub(t.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_written_after_a_change_and_offered_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.c");
        let (mut a, found) = Autosave::open(path.clone(), "old");
        assert!(found.is_none());
        a.touch();
        a.tick("typed", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "typed");
        let (_, found) = Autosave::open(path.clone(), "old");
        assert_eq!(found.as_deref(), Some("typed"), "the next launch offers it");
        let (_, found) = Autosave::open(path.clone(), "typed");
        assert!(found.is_none(), "nothing to offer when the file has it");
        a.saved("typed");
        assert!(!path.exists());
        assert_ne!(file_for(Some(Path::new("/x/a.c"))), file_for(Some(Path::new("/y/a.c"))));
    }
}
