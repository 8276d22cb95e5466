//! The panels, drawn from an [`Analysis`] onto a [`Canvas`]: scope, XY,
//! waveform, spectrum and meters, alone or all together. Each view keeps its
//! settings and its point buffers across frames; only the few label strings
//! are formatted anew (this runs on the UI thread, never the audio thread).

mod bars;
mod meters;
mod panel;
mod scope;
mod spectrum;
mod theme;
mod waves;
mod xy;

pub use bars::{BarDrawing, BarShape, BarsView};
pub use meters::MetersView;
pub use scope::{ScopeView, SCOPE_HEADROOM};
pub use spectrum::{SpectrumView, DB_BOTTOM, DB_TOP, F_HI, F_LO};
pub use theme::Theme;
pub use waves::WavesView;
pub use xy::{XyView, XY_HEADROOM};

use crate::analysis::Analysis;
use crate::draw::{Canvas, Rect};

/// Which panels a frame shows (`--view`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ViewKind {
    Scope,
    Xy,
    Waves,
    Spectrum,
    Meters,
    /// The interval-bar tree.
    Bars,
    #[default]
    All,
}

impl std::str::FromStr for ViewKind {
    type Err = String;
    fn from_str(s: &str) -> Result<ViewKind, String> {
        Ok(match s {
            "scope" => ViewKind::Scope,
            "xy" => ViewKind::Xy,
            "waves" => ViewKind::Waves,
            "spectrum" => ViewKind::Spectrum,
            "meters" => ViewKind::Meters,
            "bars" => ViewKind::Bars,
            "all" => ViewKind::All,
            other => return Err(format!("unknown view '{other}' (scope, xy, waves, spectrum, meters, bars or all)")),
        })
    }
}

/// Where each panel goes in a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Layout {
    pub scope: Option<Rect>,
    pub xy: Option<Rect>,
    pub waves: Option<Rect>,
    pub spectrum: Option<Rect>,
    pub meters: Option<Rect>,
    pub bars: Option<Rect>,
}

/// The panels of `kind` in `bounds`. "All": scope and XY on top, the
/// waveform across the middle, the spectrum below, the meters down the
/// right-hand side.
pub fn layout(kind: ViewKind, bounds: Rect, theme: &Theme) -> Layout {
    let margin = theme.px(8.0);
    let gap = theme.px(8.0);
    let area = bounds.inset(margin);
    let mut l = Layout::default();
    match kind {
        ViewKind::Scope => l.scope = Some(area),
        ViewKind::Xy => l.xy = Some(area),
        ViewKind::Waves => l.waves = Some(area),
        ViewKind::Spectrum => l.spectrum = Some(area),
        ViewKind::Meters => l.meters = Some(area),
        ViewKind::Bars => l.bars = Some(area),
        ViewKind::All => {
            let meters_w = theme.px(130.0).min(area.width() * 0.2);
            let (main, meters) = area.split_left(area.width() - meters_w - gap, gap);
            let (top, rest) = main.split_top(main.height() * 0.45, gap);
            let (waves, spectrum) = rest.split_top(rest.height() * 0.42, gap);
            let xy_w = top.height().min(top.width() * 0.4);
            let (scope, xy) = top.split_left(top.width() - xy_w - gap, gap);
            l = Layout {
                scope: Some(scope),
                xy: Some(xy),
                waves: Some(waves),
                spectrum: Some(spectrum),
                meters: Some(meters),
                bars: None,
            };
        }
    }
    l
}

/// All the views with their settings; one per window or recording.
#[derive(Default)]
pub struct Visuals {
    pub scope: ScopeView,
    pub xy: XyView,
    pub waves: WavesView,
    pub spectrum: SpectrumView,
    pub meters: MetersView,
    pub bars: BarsView,
    /// The layout of the last frame drawn.
    pub last_layout: Layout,
}

impl Visuals {
    /// Draws one panel (not `All`) into `rect` of a canvas already begun:
    /// a pane of the desktop app's layout.
    pub fn draw_view(
        &mut self,
        canvas: &mut Canvas,
        analysis: &mut Analysis,
        kind: ViewKind,
        rect: Rect,
        theme: &Theme,
    ) {
        match kind {
            ViewKind::Scope => self.scope.draw(canvas, rect, analysis, theme),
            ViewKind::Xy => self.xy.draw(canvas, rect, analysis, theme),
            ViewKind::Waves => self.waves.draw(canvas, rect, analysis, theme),
            ViewKind::Spectrum => self.spectrum.draw(canvas, rect, analysis, theme),
            ViewKind::Meters => self.meters.draw(canvas, rect, analysis, theme),
            ViewKind::Bars => self.bars.draw(canvas, rect, theme),
            ViewKind::All => {
                let l = layout(ViewKind::All, rect, theme);
                for (kind, r) in [
                    (ViewKind::Scope, l.scope),
                    (ViewKind::Xy, l.xy),
                    (ViewKind::Waves, l.waves),
                    (ViewKind::Spectrum, l.spectrum),
                    (ViewKind::Meters, l.meters),
                ] {
                    if let Some(r) = r {
                        self.draw_view(canvas, analysis, kind, r, theme);
                    }
                }
            }
        }
    }

    /// Starts a frame the canvas' size and draws `kind` from `analysis`.
    pub fn draw(&mut self, canvas: &mut Canvas, analysis: &mut Analysis, kind: ViewKind) {
        let (w, h) = canvas.size();
        let theme = Theme::for_size(w, h);
        canvas.begin(w, h, theme.background);
        let l = layout(kind, canvas.bounds(), &theme);
        self.last_layout = l;
        if let Some(r) = l.scope {
            self.scope.draw(canvas, r, analysis, &theme);
        }
        if let Some(r) = l.xy {
            self.xy.draw(canvas, r, analysis, &theme);
        }
        if let Some(r) = l.waves {
            self.waves.draw(canvas, r, analysis, &theme);
        }
        if let Some(r) = l.spectrum {
            self.spectrum.draw(canvas, r, analysis, &theme);
        }
        if let Some(r) = l.meters {
            self.meters.draw(canvas, r, analysis, &theme);
        }
        if let Some(r) = l.bars {
            self.bars.draw(canvas, r, &theme);
        }
    }
}
