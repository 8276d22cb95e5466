//! Ctrl+O: choosing a patch file inside the app. There is no toolkit to
//! borrow a file dialog from (and no desktop portal on a bare compositor),
//! so this is a small one of our own: a folder's sub-folders and `.c`
//! files, a path field to type into; a click goes into a folder, Enter,
//! Open or a double-click opens a file.

use std::path::{Path, PathBuf};

/// One row of the listing.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    name: String,
    dir: bool,
}

/// What the dialog decided this frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    Open(PathBuf),
    Cancel,
}

pub struct OpenDialog {
    dir: PathBuf,
    /// The path field: a file to open, or a folder to go to.
    typed: String,
    entries: Vec<Entry>,
    error: Option<String>,
}

impl OpenDialog {
    /// Starts in `near`'s folder (the open patch's), or the working directory.
    pub fn new(near: Option<&Path>) -> OpenDialog {
        let dir = near
            .and_then(Path::parent)
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        let mut d = OpenDialog { dir: PathBuf::new(), typed: String::new(), entries: Vec::new(), error: None };
        d.go_to(dir);
        d
    }

    /// Lists `dir`: folders first, then `.c` files, each sorted by name;
    /// hidden ones left out. An unreadable folder keeps the old listing.
    fn go_to(&mut self, dir: PathBuf) {
        match std::fs::read_dir(&dir) {
            Ok(read) => {
                let mut entries: Vec<Entry> = read
                    .filter_map(|e| {
                        let e = e.ok()?;
                        let name = e.file_name().into_string().ok()?;
                        let dir =
                            e.file_type().ok()?.is_dir() || (e.file_type().ok()?.is_symlink() && e.path().is_dir());
                        (!name.starts_with('.') && (dir || name.ends_with(".c"))).then_some(Entry { name, dir })
                    })
                    .collect();
                entries.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));
                self.entries = entries;
                self.typed = format!("{}/", dir.display()).replace("//", "/");
                self.dir = dir;
                self.error = None;
            }
            Err(e) => self.error = Some(format!("cannot list {}: {e}", dir.display())),
        }
    }

    /// What the path field names: a folder is gone to, anything else opened
    /// (the window refuses what is not a patch, with its reason).
    fn submit_typed(&mut self) -> Option<Choice> {
        let p = PathBuf::from(self.typed.trim());
        let p = if p.is_relative() { self.dir.join(p) } else { p };
        if p.is_dir() {
            self.go_to(p);
            None
        } else {
            Some(Choice::Open(p))
        }
    }

    /// Shows the dialog; `Some` once a file is chosen or the dialog is closed.
    pub fn show(&mut self, ctx: &egui::Context) -> Option<Choice> {
        let mut choice = None;
        let mut open = true;
        egui::Window::new("Open a patch")
            .open(&mut open)
            .collapsible(false)
            .default_width(420.0)
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .show(ctx, |ui| {
                ui.horizontal(|ui| {
                    if ui.button("Up").clicked() {
                        if let Some(parent) = self.dir.parent().map(Path::to_path_buf) {
                            self.go_to(parent);
                        }
                    }
                    let field = ui.add(
                        egui::TextEdit::singleline(&mut self.typed)
                            .desired_width(f32::INFINITY)
                            .hint_text("a .c file or a folder"),
                    );
                    if field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                        choice = self.submit_typed();
                    }
                });
                if let Some(e) = &self.error {
                    ui.colored_label(egui::Color32::from_rgb(0xff, 0x6b, 0x60), e);
                }
                egui::ScrollArea::vertical().max_height(320.0).show(ui, |ui| {
                    if self.entries.is_empty() {
                        ui.weak("No folders or .c files here.");
                    }
                    let mut go = None;
                    for e in &self.entries {
                        let label = if e.dir { format!("{}/", e.name) } else { e.name.clone() };
                        let row = ui.selectable_label(self.typed.ends_with(&format!("/{}", e.name)), label);
                        // A folder opens with one click; a file is chosen
                        // with one and opened with two (or with Open).
                        if row.double_clicked() || (e.dir && row.clicked()) {
                            go = Some(e.clone());
                        } else if row.clicked() {
                            self.typed = self.dir.join(&e.name).display().to_string();
                        }
                    }
                    if let Some(e) = go {
                        if e.dir {
                            self.go_to(self.dir.join(&e.name));
                        } else {
                            choice = Some(Choice::Open(self.dir.join(&e.name)));
                        }
                    }
                });
                ui.horizontal(|ui| {
                    if ui.button("Open").clicked() {
                        choice = self.submit_typed();
                    }
                    if ui.button("Cancel").clicked() {
                        choice = Some(Choice::Cancel);
                    }
                });
            });
        if !open || ctx.input(|i| i.key_pressed(egui::Key::Escape)) {
            choice = Some(Choice::Cancel);
        }
        choice
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui_kittest::kittest::Queryable;

    #[test]
    fn it_lists_folders_then_patches_and_opens_the_one_clicked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("drums")).unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join("b.c"), "void play(void) {}\n").unwrap();
        std::fs::write(dir.path().join("a.c"), "void play(void) {}\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        std::fs::write(dir.path().join("drums/kick.c"), "void play(void) {}\n").unwrap();
        let d = OpenDialog::new(Some(&dir.path().join("b.c")));
        let names: Vec<&str> = d.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["drums", "a.c", "b.c"], "folders first, only .c files, nothing hidden");

        let mut harness = egui_kittest::Harness::builder().with_size(egui::vec2(800.0, 600.0)).build_ui_state(
            |ui, s: &mut (OpenDialog, Option<Choice>)| {
                if let Some(c) = s.0.show(ui.ctx()) {
                    s.1 = Some(c);
                }
            },
            (d, None),
        );
        harness.run();
        // Into the folder, then open the patch there with a click and "Open".
        harness.get_by_label("drums/").click();
        harness.run();
        assert_eq!(harness.state().0.dir, dir.path().join("drums"));
        harness.get_by_label("kick.c").click();
        harness.run();
        harness.get_by_label("Open").click();
        harness.run();
        assert_eq!(harness.state().1, Some(Choice::Open(dir.path().join("drums/kick.c"))));
    }

    #[test]
    fn a_typed_folder_is_gone_to_and_a_missing_one_is_said() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let mut d = OpenDialog::new(Some(&dir.path().join("x.c")));
        d.typed = "sub".into();
        assert_eq!(d.submit_typed(), None, "a folder is listed, not opened");
        assert_eq!(d.dir, dir.path().join("sub"));
        d.typed = dir.path().join("sub/new.c").display().to_string();
        assert_eq!(d.submit_typed(), Some(Choice::Open(dir.path().join("sub/new.c"))));
        d.go_to(dir.path().join("gone"));
        assert!(d.error.as_deref().unwrap().contains("cannot list"), "{:?}", d.error);
        assert_eq!(d.dir, dir.path().join("sub"), "the old listing stays");
    }
}
