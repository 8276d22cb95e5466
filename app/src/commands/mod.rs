//! One module per subcommand.

pub mod bars;
pub mod check;
pub mod devices;
pub mod gpus;
pub mod main_job;
pub mod param;
pub mod play;
pub mod record;
pub mod render;
pub mod snapshot;
pub mod submit;
pub mod tap;
pub mod tempo;

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

/// An interval-bar tree file, read for `--bars` (errors name the file and line).
pub fn load_bar_tree(path: &Path) -> anyhow::Result<clavm_bars::BarTree> {
    let text = bars::read_tree_text(path)?;
    clavm_bars::text::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The notes (Hz) and touches of a tree's bars, in bar order: what
/// `_bar_freq` and `_bar_gate` read.
pub fn bar_notes(tree: &clavm_bars::BarTree) -> Vec<(f32, bool)> {
    tree.ids().map(|id| (tree.frequency(id) as f32, tree.gate(id))).collect()
}

/// `--bars FILE`: the notes and touches of the tree in the file.
pub fn load_bars(path: &Path) -> anyhow::Result<Vec<(f32, bool)>> {
    Ok(bar_notes(&load_bar_tree(path)?))
}

/// The tree as the bars view draws it: its layout, note names and touches.
pub fn bar_drawing(tree: &clavm_bars::BarTree) -> clavm_render::views::BarDrawing {
    use clavm_bars::model::NoteName;
    let layout = tree.layout();
    let bars = tree
        .ids()
        .map(|id| {
            let p = &layout[id.index()];
            let (from, to) = (p.start, p.end());
            clavm_render::views::BarShape {
                from: [from[0] as f32, from[1] as f32],
                to: [to[0] as f32, to[1] as f32],
                width: clavm_bars::model::BAR_WIDTH as f32,
                label: NoteName::of(tree.frequency(id)).to_string(),
                touched: tree.gate(id),
            }
        })
        .collect();
    clavm_render::views::BarDrawing {
        root: [0.0, 0.0],
        root_label: format!("{} {} Hz", NoteName::of(tree.base_hz()), tree.base_hz()),
        bars,
    }
}
