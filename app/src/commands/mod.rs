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
