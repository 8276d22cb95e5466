//! The code editor: monospace text with line numbers, C highlighting, the
//! compiler's diagnostics underlined at their line and column (message on
//! hover and in a list below), find (Ctrl+F), and egui's undo/redo.

use std::path::PathBuf;

use egui::{FontId, TextEdit};

use super::highlight::{self, Mark};

/// One compiler message, as the engine reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub error: bool,
}

#[derive(Default)]
struct Find {
    query: String,
    open: bool,
}

pub struct Editor {
    pub text: String,
    /// The file the text belongs to, if any.
    pub path: Option<PathBuf>,
    /// The text as last saved (or loaded): unsaved changes differ from it.
    pub saved: String,
    pub diagnostics: Vec<Diagnostic>,
    /// The text the diagnostics belong to (they are hidden once it changes).
    diagnostics_for: String,
    find: Find,
    pub font_size: f32,
    /// The editor takes the keyboard when the window opens: a performer types at once.
    focused_once: bool,
}

impl Editor {
    pub fn new(text: String, path: Option<PathBuf>) -> Editor {
        Editor {
            saved: text.clone(),
            text,
            path,
            diagnostics: Vec::new(),
            diagnostics_for: String::new(),
            find: Find::default(),
            font_size: 14.0,
            focused_once: false,
        }
    }

    pub fn is_dirty(&self) -> bool {
        self.text != self.saved
    }

    /// The name shown in the title and status bar.
    pub fn name(&self) -> String {
        self.path
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "untitled.c".into())
    }

    pub fn set_diagnostics(&mut self, diagnostics: Vec<Diagnostic>, for_text: &str) {
        self.diagnostics = diagnostics;
        self.diagnostics_for = for_text.to_owned();
    }

    /// Draws the editor; returns whether the text changed.
    pub fn show(&mut self, ui: &mut egui::Ui) -> bool {
        let font = FontId::monospace(self.font_size);
        if ui.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::F)) {
            self.find.open = true;
        }
        if self.find.open {
            ui.horizontal(|ui| {
                ui.label("Find:");
                let r = ui.text_edit_singleline(&mut self.find.query);
                r.request_focus();
                let n = self.matches().len();
                ui.label(format!("{n} found"));
                if ui.button("×").clicked() || ui.input(|i| i.key_pressed(egui::Key::Escape)) {
                    self.find.open = false;
                }
            });
        }
        let current = self.text == self.diagnostics_for;
        let marks: Vec<Mark> = if current {
            self.diagnostics
                .iter()
                .filter_map(|d| {
                    highlight::range_at(&self.text, d.line, d.col).map(|range| Mark { range, error: d.error })
                })
                .collect()
        } else {
            Vec::new()
        };
        let found = if self.find.open { self.matches() } else { Vec::new() };
        let mut changed = false;
        let lines = self.text.lines().count().max(1) + usize::from(self.text.ends_with('\n'));
        let numbers: String = (1..=lines).map(|n| format!("{n:>4}\n")).collect();
        egui::ScrollArea::both().id_salt("editor").auto_shrink([false, false]).show(ui, |ui| {
            ui.horizontal_top(|ui| {
                ui.add(
                    egui::Label::new(
                        egui::RichText::new(numbers).font(font.clone()).color(egui::Color32::from_gray(90)),
                    )
                    .selectable(false),
                );
                // Code does not wrap: line numbers stay beside their lines,
                // long lines scroll sideways.
                let mut layouter = |ui: &egui::Ui, text: &dyn egui::TextBuffer, _wrap: f32| {
                    let mut job = highlight::layout(text.as_str(), font.clone(), &marks, &found);
                    job.wrap.max_width = f32::INFINITY;
                    ui.fonts_mut(|f| f.layout_job(job))
                };
                let output = TextEdit::multiline(&mut self.text)
                    .hint_text("C code: void play(void) { ... }")
                    .id_salt("code")
                    .code_editor()
                    .font(font.clone())
                    .desired_width(f32::INFINITY)
                    .desired_rows(30)
                    .lock_focus(true)
                    .layouter(&mut layouter)
                    .show(ui);
                changed = output.response.changed();
                // Screen readers (and UI tests) find the editor by its name.
                output
                    .response
                    .widget_info(|| egui::WidgetInfo::labeled(egui::Role::MultilineTextInput, true, "Patch source"));
                if !self.focused_once {
                    self.focused_once = true;
                    output.response.request_focus();
                }
                // The message of the diagnostic under the pointer.
                if let Some(pos) = output.response.hover_pos() {
                    let cursor = output.galley.cursor_from_pos(pos - output.galley_pos);
                    let byte = self.text.char_indices().nth(cursor.index.0).map_or(self.text.len(), |(b, _)| b);
                    if let Some(d) =
                        marks.iter().zip(&self.diagnostics).find(|(m, _)| m.range.contains(&byte)).map(|(_, d)| d)
                    {
                        egui::Response::clone(&output.response)
                            .on_hover_text(format!("{}:{}: {}", d.line, d.col, d.message));
                    }
                }
            });
        });
        changed
    }

    /// The diagnostics, one line each (the list under the editor).
    pub fn show_diagnostics(&mut self, ui: &mut egui::Ui) {
        if self.diagnostics.is_empty() {
            return;
        }
        let stale = self.text != self.diagnostics_for;
        for d in &self.diagnostics {
            let color = if d.error {
                egui::Color32::from_rgb(0xff, 0x6b, 0x60)
            } else {
                egui::Color32::from_rgb(0xe8, 0xc5, 0x47)
            };
            let text = format!(
                "{}:{}:{}: {}{}",
                self.name(),
                d.line,
                d.col,
                d.message,
                if stale { " (before your last edit)" } else { "" }
            );
            ui.label(egui::RichText::new(text).color(color).monospace());
        }
    }

    fn matches(&self) -> Vec<std::ops::Range<usize>> {
        if self.find.query.is_empty() {
            return Vec::new();
        }
        self.text.match_indices(&self.find.query).map(|(i, m)| i..i + m.len()).take(1000).collect()
    }
}
