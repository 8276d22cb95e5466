//! One module per subcommand.

pub mod bars;
pub mod check;
pub mod gpus;
pub mod main_job;
pub mod param;
pub mod play;
pub mod record;
pub mod render;
pub mod snapshot;
pub mod submit;
pub mod tap;

use std::path::Path;

use anyhow::Context;

use clavm_audio::{PatchError, PatchSource};

/// The patch the app starts with when none is given.
pub const DEFAULT_PATCH: &str = include_str!("../../../assets/patches/default.c");
pub const DEFAULT_PATCH_NAME: &str = "assets/patches/default.c";

/// Reads a patch, or prints why not (diagnostics as FILE:LINE:COL) and returns None.
pub fn load_patch(path: &Path) -> Option<PatchSource> {
    match PatchSource::from_file(path) {
        Ok(p) => Some(p),
        Err(e) => {
            print_patch_error(&e);
            None
        }
    }
}

pub fn print_patch_error(e: &PatchError) {
    match e {
        PatchError::Rejected(diags) => {
            for d in diags {
                eprintln!("{d}");
            }
        }
        other => eprintln!("clavm: error: {other}"),
    }
}

/// The notes (Hz) and touches of an interval-bar tree file, in bar order,
/// for `--bars` (what `_bar_freq` and `_bar_gate` read).
pub fn load_bars(path: &Path) -> anyhow::Result<Vec<(f32, bool)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the bar tree {}", path.display()))?;
    let tree = clavm_bars::text::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(tree.ids().map(|id| (tree.frequency(id) as f32, tree.gate(id))).collect())
}
