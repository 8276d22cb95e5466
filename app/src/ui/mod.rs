//! The desktop app's interface (egui): the editor, the visual panes, the
//! transport and safety controls, the parameter sliders and the status bar.
//! It only draws and reports what the performer asked for ([`Action`]); the
//! window loop carries the actions out.

pub mod editor;
pub mod highlight;
pub mod open_dialog;

use std::sync::Arc;

use clavm_render::analysis::Analysis;
use clavm_render::draw::{Canvas, Rect as CanvasRect};
use clavm_render::views::{Theme, ViewKind, Visuals};

pub use editor::{Diagnostic, Editor};

/// What the performer asked for in this frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Compile and play the editor's text (Ctrl+Enter).
    Submit,
    /// Save to the file, then submit (Ctrl+S).
    Save,
    /// Open this patch file in the editor and play it (chosen in the Ctrl+O dialog).
    OpenFile(std::path::PathBuf),
    /// Silence at once (the panic key, Escape twice or the button).
    Panic,
    SetMuted(bool),
    SetGain(f32),
    SetCrossfadeMs(f32),
    SetParam(u8, f32),
    /// Start or stop recording the window to a video.
    ToggleRecording,
    ToggleFullscreen,
    /// Maximise the window, or restore it from maximised.
    ToggleMaximized,
    /// Restore the autosaved text offered at start, or drop it.
    RestoreAutosave(bool),
    /// The pointer holds bar `i` in the bars pane (None: released).
    TouchBar(Option<usize>),
    /// Change the bar tree (from the bars pane's menu).
    EditBars(BarEdit),
    /// Start or stop watching the protocol simulator plug and unplug bars.
    ToggleBarSim,
    /// A new tempo (beats per minute; with Link, the whole session's).
    SetTempo(f64),
}

/// An edit of the bar tree, as on the instrument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BarEdit {
    /// Plug a new bar of this interval into a free connector of `parent` (None: the root).
    Add { parent: Option<usize>, interval: clavm_bars::Interval },
    /// Turn a bar to the next free connector of its parent.
    Rotate(usize),
    /// Pull a bar out, with what hangs from it.
    Remove(usize),
}

/// What the status bar shows, filled in by the window loop.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub compile: String,
    pub dsp_avg: f32,
    pub dsp_peak: f32,
    pub xruns: u64,
    pub presentation: String,
    pub fps: f32,
    pub last_error: String,
    pub output: String,
    pub recording: Option<String>,
    pub notice: String,
    /// The window's state as the compositor last configured it.
    pub maximized: bool,
    pub fullscreen: bool,
    /// The tempo clock at the last block (None before the first).
    pub clock: Option<clavm_audio::clock::ClockReading>,
    /// Beats per bar, for the bar display.
    pub meter: u32,
    /// In an Ableton Link session.
    pub link: bool,
}

/// The app's interface state.
pub struct Studio {
    pub editor: Editor,
    pub status: Status,
    pub muted: bool,
    pub gain: f32,
    pub crossfade_ms: f32,
    pub params: [f32; 8],
    /// The tempo field (the clock's tempo while it is not being edited).
    pub bpm: f64,
    /// Where a submit lands: 0 = the next block, else beats.
    pub quant: f64,
    /// Which view each pane shows (rearranged from each pane's menu).
    pub panes: [ViewKind; 4],
    /// Autosaved text from a previous session, offered until answered.
    pub offered_autosave: Option<String>,
    visuals: Visuals,
    /// The bar the pointer holds, if any.
    touching: Option<usize>,
    /// The bar the pane's menu was opened on (None: the root).
    menu_bar: Option<usize>,
    /// The Ctrl+O dialog, while open.
    open_dialog: Option<open_dialog::OpenDialog>,
}

impl Studio {
    pub fn new(editor: Editor) -> Studio {
        Studio {
            editor,
            status: Status::default(),
            muted: false,
            gain: 0.8,
            crossfade_ms: 10.0,
            params: [0.0; 8],
            bpm: 120.0,
            quant: 0.0,
            panes: [ViewKind::Scope, ViewKind::Xy, ViewKind::Waves, ViewKind::Spectrum],
            offered_autosave: None,
            visuals: Visuals::default(),
            touching: None,
            menu_bar: None,
            open_dialog: None,
        }
    }

    /// The bar tree the bars pane shows (and the first pane switches to it).
    pub fn set_bars(&mut self, drawing: Option<clavm_render::views::BarDrawing>) {
        if drawing.is_some() && !self.panes.contains(&ViewKind::Bars) {
            self.panes[1] = ViewKind::Bars;
        }
        self.visuals.bars.drawing = drawing;
    }

    /// Where bar `i` was drawn, in points (tests point at it).
    #[cfg(test)]
    pub fn bar_position(&self, i: usize, pixels_per_point: f32) -> Option<egui::Pos2> {
        self.visuals.bars.bar_center(i).map(|p| egui::pos2(p.x / pixels_per_point, p.y / pixels_per_point))
    }

    /// Lights or darkens a bar of the drawing (a touch from the pointer).
    pub fn set_bar_touched(&mut self, i: usize, touched: bool) {
        if let Some(b) = self.visuals.bars.drawing.as_mut().and_then(|d| d.bars.get_mut(i)) {
            b.touched = touched;
        }
    }

    /// The tempo, where submits land, and where the clock is.
    fn transport(&mut self, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
        let tempo = ui
            .add(egui::DragValue::new(&mut self.bpm).range(10.0..=1000.0).speed(0.5).fixed_decimals(1).suffix(" BPM"))
            .on_hover_text("Tempo: _beat() bends to it from the next block (with Link, the session's tempo)");
        if tempo.changed() {
            actions.push(Action::SetTempo(self.bpm));
        } else if !tempo.has_focus() && !tempo.dragged() {
            if let Some(c) = self.status.clock {
                self.bpm = c.bpm;
            }
        }
        let meter = self.status.meter.max(1) as f64;
        let label = |q: f64| match q {
            0.0 => "next block".to_string(),
            q if q == meter => "next bar".to_string(),
            1.0 => "next beat".to_string(),
            q => format!("{q} beats"),
        };
        egui::ComboBox::from_id_salt("quant")
            .selected_text(format!("Swap: {}", label(self.quant)))
            .show_ui(ui, |ui| {
                for q in [0.0, 1.0, 2.0, meter, 2.0 * meter, 4.0 * meter] {
                    ui.selectable_value(&mut self.quant, q, label(q));
                }
            })
            .response
            .on_hover_text("Where a submit starts playing: JITLib's quant");
        if let Some(c) = self.status.clock {
            let beat = c.beat.max(0.0);
            let bar = (beat / meter).floor() as u64 + 1;
            let in_bar = (beat - (bar - 1) as f64 * meter).floor() as u64 + 1;
            ui.monospace(format!("bar {bar}.{in_bar}")).on_hover_text("Where the clock is: bar and beat (from 1)");
        }
        if self.status.link {
            let peers = self.status.clock.map_or(0, |c| c.peers);
            ui.label(format!("Link · {peers} peer{}", if peers == 1 { "" } else { "s" }));
        }
    }

    /// Lays out one frame. The canvas has been begun at the frame's pixel
    /// size; panes add their shapes to it and egui callbacks place them.
    pub fn show(&mut self, root: &mut egui::Ui, canvas: &mut Canvas, analysis: &mut Analysis) -> Vec<Action> {
        let ctx = root.ctx().clone();
        let mut actions = Vec::new();
        let mut open_asked = false;
        ctx.input_mut(|i| {
            if i.consume_key(egui::Modifiers::COMMAND, egui::Key::Enter) {
                actions.push(Action::Submit);
            }
            if i.consume_key(egui::Modifiers::COMMAND, egui::Key::S) {
                actions.push(Action::Save);
            }
            if i.consume_key(egui::Modifiers::COMMAND, egui::Key::O) {
                open_asked = true;
            }
            if i.consume_key(egui::Modifiers::NONE, egui::Key::F11) {
                actions.push(Action::ToggleFullscreen);
            }
            if i.consume_key(egui::Modifiers::CTRL | egui::Modifiers::SHIFT, egui::Key::Escape)
                || i.consume_key(egui::Modifiers::NONE, egui::Key::Pause)
            {
                actions.push(Action::Panic);
            }
        });
        if open_asked && self.open_dialog.is_none() {
            self.open_dialog = Some(open_dialog::OpenDialog::new(self.editor.path.as_deref()));
        }
        if let Some(dialog) = &mut self.open_dialog {
            match dialog.show(&ctx) {
                Some(open_dialog::Choice::Open(p)) => {
                    actions.push(Action::OpenFile(p));
                    self.open_dialog = None;
                }
                Some(open_dialog::Choice::Cancel) => self.open_dialog = None,
                None => {}
            }
        }
        let ppp = ctx.pixels_per_point();

        egui::Panel::top("transport").show(root, |ui| {
            // Wraps onto a second row in a narrow window rather than hiding buttons.
            ui.horizontal_wrapped(|ui| {
                ui.strong("CLAVM");
                ui.separator();
                if ui.button("Submit").on_hover_text("Ctrl+Enter").clicked() {
                    actions.push(Action::Submit);
                }
                if ui.button("Save").on_hover_text("Ctrl+S: save, then submit").clicked() {
                    actions.push(Action::Save);
                }
                if ui.button("Open").on_hover_text("Ctrl+O").clicked() {
                    open_asked = true;
                }
                ui.separator();
                if ui.toggle_value(&mut self.muted, "Mute").changed() {
                    actions.push(Action::SetMuted(self.muted));
                }
                let panic = egui::Button::new(egui::RichText::new("PANIC").color(egui::Color32::WHITE))
                    .fill(egui::Color32::from_rgb(0xb0, 0x2a, 0x22));
                if ui.add(panic).on_hover_text("Silence at once (Ctrl+Shift+Esc or Pause)").clicked() {
                    actions.push(Action::Panic);
                }
                ui.separator();
                if ui.add(egui::Slider::new(&mut self.gain, 0.0..=1.0).fixed_decimals(2).text("Gain")).changed() {
                    actions.push(Action::SetGain(self.gain));
                }
                if ui
                    .add(
                        egui::Slider::new(&mut self.crossfade_ms, 0.0..=500.0)
                            .suffix(" ms")
                            .logarithmic(true)
                            .text("Crossfade"),
                    )
                    .changed()
                {
                    actions.push(Action::SetCrossfadeMs(self.crossfade_ms));
                }
                ui.separator();
                self.transport(ui, &mut actions);
                ui.separator();
                let rec = if self.status.recording.is_some() { "Stop recording" } else { "Record" };
                if ui.button(rec).clicked() {
                    actions.push(Action::ToggleRecording);
                }
                ui.separator();
                let max = if self.status.maximized { "Restore" } else { "Maximise" };
                if ui.button(max).clicked() {
                    actions.push(Action::ToggleMaximized);
                }
                let full = if self.status.fullscreen { "Leave fullscreen" } else { "Fullscreen" };
                if ui.button(full).on_hover_text("F11").clicked() {
                    actions.push(Action::ToggleFullscreen);
                }
            });
        });

        egui::Panel::bottom("status").show(root, |ui| {
            ui.horizontal(|ui| {
                let s = &self.status;
                ui.label(format!("{}{}", self.editor.name(), if self.editor.is_dirty() { " •" } else { "" }));
                ui.separator();
                ui.label(&s.compile);
                ui.separator();
                ui.label(format!("DSP {:.0}% avg {:.0}% peak", s.dsp_avg * 100.0, s.dsp_peak * 100.0));
                ui.label(format!("xruns {}", s.xruns));
                ui.separator();
                ui.label(&s.presentation);
                ui.label(format!("{:.0} fps", s.fps));
                if let Some(r) = &s.recording {
                    ui.separator();
                    ui.colored_label(egui::Color32::from_rgb(0xff, 0x5f, 0x56), format!("REC {r}"));
                }
                if !s.last_error.is_empty() {
                    ui.separator();
                    ui.colored_label(egui::Color32::from_rgb(0xff, 0x6b, 0x60), &s.last_error);
                }
                if !s.notice.is_empty() {
                    ui.separator();
                    ui.label(&s.notice);
                }
            });
        });

        egui::Panel::left("editor").resizable(true).default_size(ctx.content_rect().width() * 0.42).show(root, |ui| {
            if let Some(text) = self.offered_autosave.clone() {
                ui.horizontal_wrapped(|ui| {
                    ui.colored_label(
                        egui::Color32::from_rgb(0xe8, 0xc5, 0x47),
                        "Unsaved text from the last session was found.",
                    );
                    if ui.button("Restore it").clicked() {
                        actions.push(Action::RestoreAutosave(true));
                    }
                    if ui.button("Discard").clicked() {
                        actions.push(Action::RestoreAutosave(false));
                    }
                    ui.label(format!("({} lines)", text.lines().count()));
                });
                ui.separator();
            }
            egui::Panel::bottom("diagnostics").resizable(true).show(ui, |ui| {
                egui::ScrollArea::vertical().max_height(120.0).show(ui, |ui| {
                    if self.editor.diagnostics.is_empty() {
                        ui.weak("No diagnostics. Ctrl+Enter compiles and plays; Ctrl+S saves too.");
                    }
                    self.editor.show_diagnostics(ui);
                });
                ui.collapsing("Parameters _p(0..7)", |ui| {
                    for (i, v) in self.params.iter_mut().enumerate() {
                        if ui.add(egui::Slider::new(v, 0.0..=1.0).text(format!("_p({i})"))).changed() {
                            actions.push(Action::SetParam(i as u8, *v));
                        }
                    }
                });
            });
            self.editor.show(ui);
        });

        // The meters need little width: in a small window the visuals get it.
        let meters_width = (ctx.content_rect().width() * 0.13).clamp(96.0, 170.0);
        egui::Panel::right("meters").resizable(true).default_size(meters_width).min_size(96.0).show(root, |ui| {
            let rect = ui.available_rect_before_wrap();
            self.pane(ui, canvas, analysis, ViewKind::Meters, rect, ppp);
        });

        egui::CentralPanel::default().show(root, |ui| {
            let area = ui.available_rect_before_wrap();
            let (top, bottom) = (area.height() * 0.5, area.height() * 0.5);
            let cells = [
                egui::Rect::from_min_size(area.min, egui::vec2(area.width() * 0.62, top)),
                egui::Rect::from_min_size(
                    area.min + egui::vec2(area.width() * 0.62, 0.0),
                    egui::vec2(area.width() * 0.38, top),
                ),
                egui::Rect::from_min_size(area.min + egui::vec2(0.0, top), egui::vec2(area.width(), bottom * 0.45)),
                egui::Rect::from_min_size(
                    area.min + egui::vec2(0.0, top + bottom * 0.45),
                    egui::vec2(area.width(), bottom * 0.55),
                ),
            ];
            for (i, cell) in cells.into_iter().enumerate() {
                let kind = self.panes[i];
                self.pane(ui, canvas, analysis, kind, cell.shrink(2.0), ppp);
                if kind == ViewKind::Bars {
                    // Touching a bar plays it: held while the button is down.
                    let response = ui.interact(
                        cell.shrink(2.0),
                        ui.scope_id().with(("bars-pane", i)),
                        egui::Sense::click_and_drag(),
                    );
                    let held = if response.is_pointer_button_down_on() {
                        response
                            .interact_pointer_pos()
                            .and_then(|p| self.visuals.bars.bar_at(clavm_render::draw::vec2(p.x * ppp, p.y * ppp)))
                    } else {
                        None
                    };
                    if held != self.touching {
                        self.touching = held;
                        actions.push(Action::TouchBar(held));
                    }
                    // Right click: plug a bar in, turn it, pull it out.
                    if response.secondary_clicked() {
                        self.menu_bar = response
                            .interact_pointer_pos()
                            .and_then(|p| self.visuals.bars.bar_at(clavm_render::draw::vec2(p.x * ppp, p.y * ppp)));
                    }
                    let target = self.menu_bar;
                    response.context_menu(|ui| {
                        ui.label(match target {
                            Some(i) => format!("Bar {i}"),
                            None => "The root".to_string(),
                        });
                        ui.menu_button("Plug a bar in", |ui| {
                            for interval in clavm_bars::Interval::ALL {
                                if ui.button(interval.name()).clicked() {
                                    actions.push(Action::EditBars(BarEdit::Add { parent: target, interval }));
                                    ui.close();
                                }
                            }
                        });
                        if ui.button("Watch the simulator plug and unplug").clicked() {
                            actions.push(Action::ToggleBarSim);
                            ui.close();
                        }
                        if let Some(i) = target {
                            if ui.button("Turn").clicked() {
                                actions.push(Action::EditBars(BarEdit::Rotate(i)));
                                ui.close();
                            }
                            if ui.button("Pull out").clicked() {
                                actions.push(Action::EditBars(BarEdit::Remove(i)));
                                ui.close();
                            }
                        }
                    });
                }
                // The pane's menu: which view it shows.
                let menu_rect =
                    egui::Rect::from_min_size(cell.right_top() + egui::vec2(-30.0, 4.0), egui::vec2(26.0, 18.0));
                let mut chosen = kind;
                ui.scope_builder(egui::UiBuilder::new().max_rect(menu_rect), |ui| {
                    ui.menu_button("...", |ui| {
                        for k in [ViewKind::Scope, ViewKind::Xy, ViewKind::Waves, ViewKind::Spectrum, ViewKind::Meters]
                        {
                            if ui.selectable_label(k == kind, format!("{k:?}")).clicked() {
                                chosen = k;
                                ui.close();
                            }
                        }
                    });
                });
                self.panes[i] = chosen;
            }
        });
        actions
    }

    /// One visual pane: its shapes go into the canvas, an egui paint
    /// callback puts them at `rect` in egui's drawing order.
    fn pane(
        &mut self,
        ui: &mut egui::Ui,
        canvas: &mut Canvas,
        analysis: &mut Analysis,
        kind: ViewKind,
        rect: egui::Rect,
        ppp: f32,
    ) {
        let mark = canvas.mark();
        let mut theme = Theme::with_scale(ppp);
        theme.header_inset = if kind == ViewKind::Meters { 0.0 } else { 30.0 * ppp };
        let r = CanvasRect::new(rect.min.x * ppp, rect.min.y * ppp, rect.width() * ppp, rect.height() * ppp);
        self.visuals.draw_view(canvas, analysis, kind, r, &theme);
        let pane = canvas.pane_since(mark);
        ui.painter().add(egui::PaintCallback { rect, callback: Arc::new(pane) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui_kittest::kittest::Queryable;

    struct State {
        studio: Studio,
        canvas: Canvas,
        analysis: Analysis,
        actions: Vec<Action>,
    }

    #[test]
    fn holding_a_bar_plays_it_and_its_menu_edits_the_tree() {
        let mut studio = Studio::new(Editor::new("void play(void) {}\n".into(), None));
        let tree = clavm_bars::text::parse("base 440\nfifth 3/2 root W\nthird 5/4 fifth.E W\n").unwrap();
        studio.set_bars(Some(crate::commands::bar_drawing(&tree)));
        assert!(studio.panes.contains(&ViewKind::Bars), "a tree brings the bars pane");
        let state =
            State { studio, canvas: Canvas::new(1280, 800), analysis: Analysis::new(48000.0, 2), actions: Vec::new() };
        let mut harness = egui_kittest::Harness::builder().with_size(egui::vec2(1280.0, 800.0)).build_ui_state(
            |ui, s: &mut State| {
                s.canvas.begin(1280, 800, clavm_render::draw::Color::rgb(0, 0, 0));
                let a = s.studio.show(ui, &mut s.canvas, &mut s.analysis);
                s.actions.extend(a);
            },
            state,
        );
        harness.run();
        let at = harness.state().studio.bar_position(1, 1.0).expect("bar 1 was drawn");

        // Hold bar 1: it plays; let go: it stops.
        harness.state_mut().actions.clear();
        harness.event(egui::Event::PointerMoved(at));
        harness.event(egui::Event::PointerButton {
            pos: at,
            button: egui::PointerButton::Primary,
            pressed: true,
            modifiers: egui::Modifiers::NONE,
        });
        harness.run();
        assert!(harness.state().actions.contains(&Action::TouchBar(Some(1))), "{:?}", harness.state().actions);
        harness.event(egui::Event::PointerButton {
            pos: at,
            button: egui::PointerButton::Primary,
            pressed: false,
            modifiers: egui::Modifiers::NONE,
        });
        harness.run();
        assert!(harness.state().actions.contains(&Action::TouchBar(None)), "{:?}", harness.state().actions);

        // Right-click bar 1, then "Pull out" in its menu.
        for pressed in [true, false] {
            harness.event(egui::Event::PointerButton {
                pos: at,
                button: egui::PointerButton::Secondary,
                pressed,
                modifiers: egui::Modifiers::NONE,
            });
            harness.run();
        }
        harness.state_mut().actions.clear();
        harness.get_by_label("Pull out").click();
        harness.run();
        assert!(
            harness.state().actions.contains(&Action::EditBars(BarEdit::Remove(1))),
            "{:?}",
            harness.state().actions
        );
    }

    #[test]
    fn the_transport_shows_the_clock_and_picks_where_submits_land() {
        let mut studio = Studio::new(Editor::new("void play(void) {}\n".into(), None));
        studio.status.meter = 4;
        studio.status.link = true;
        // Beat 45.5: bar 12, its 2nd beat; two Link peers at 96 BPM.
        studio.status.clock =
            Some(clavm_audio::clock::ClockReading { beat: 45.5, bpm: 96.0, heard_at_micros: 0, peers: 2 });
        let state =
            State { studio, canvas: Canvas::new(1600, 800), analysis: Analysis::new(48000.0, 2), actions: Vec::new() };
        let mut harness = egui_kittest::Harness::builder().with_size(egui::vec2(1600.0, 800.0)).build_ui_state(
            |ui, s: &mut State| {
                s.canvas.begin(1600, 800, clavm_render::draw::Color::rgb(0, 0, 0));
                let a = s.studio.show(ui, &mut s.canvas, &mut s.analysis);
                s.actions.extend(a);
            },
            state,
        );
        harness.run();
        harness.get_by_label("bar 12.2");
        harness.get_by_label("Link · 2 peers");
        assert_eq!(harness.state().studio.bpm, 96.0, "the field follows the clock");
        // Where submits land: the next bar.
        harness.get_by_value("Swap: next block").click();
        harness.run();
        harness.get_by_label("next bar").click();
        harness.run();
        assert_eq!(harness.state().studio.quant, 4.0);
    }
}
