//! Changes of the bar tree move rather than jump: for a quarter of a
//! second after a change, the pane draws each bar part way from where it
//! was to where it now is; a new bar grows out of its connector.

use std::time::{Duration, Instant};

use clavm_render::views::{BarDrawing, BarShape};

const DURATION: Duration = Duration::from_millis(250);

pub struct BarMotion {
    from: BarDrawing,
    to: BarDrawing,
    start: Instant,
}

fn lerp(a: [f32; 2], b: [f32; 2], t: f32) -> [f32; 2] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
}

impl BarMotion {
    pub fn new(from: BarDrawing, to: BarDrawing) -> BarMotion {
        BarMotion { from, to, start: Instant::now() }
    }

    /// The drawing at `now`, and whether the motion is over.
    pub fn at(&self, now: Instant) -> (BarDrawing, bool) {
        let t = (now.saturating_duration_since(self.start).as_secs_f32() / DURATION.as_secs_f32()).min(1.0);
        // Ease out: quick at first, settling gently.
        let e = 1.0 - (1.0 - t) * (1.0 - t);
        let bars = self
            .to
            .bars
            .iter()
            .enumerate()
            .map(|(i, b)| match self.from.bars.get(i) {
                Some(old) => BarShape { from: lerp(old.from, b.from, e), to: lerp(old.to, b.to, e), ..b.clone() },
                None => BarShape { to: lerp(b.from, b.to, e), ..b.clone() },
            })
            .collect();
        (BarDrawing { bars, ..self.to.clone() }, t >= 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(from: [f32; 2], to: [f32; 2]) -> BarShape {
        BarShape { from, to, width: 0.08, label: String::new(), touched: false }
    }

    #[test]
    fn bars_move_from_old_to_new_places_and_new_ones_grow() {
        let from = BarDrawing { bars: vec![bar([0.0, 0.0], [1.0, 0.0])], ..Default::default() };
        let to =
            BarDrawing { bars: vec![bar([0.0, 0.0], [0.0, 1.0]), bar([0.0, 1.0], [0.5, 1.0])], ..Default::default() };
        let m = BarMotion::new(from, to.clone());
        let (start, done) = m.at(m.start);
        assert!(!done);
        assert_eq!(start.bars[0].to, [1.0, 0.0], "starts where it was");
        assert_eq!(start.bars[1].to, [0.0, 1.0], "a new bar starts at its connector");
        let (end, done) = m.at(m.start + DURATION);
        assert!(done);
        assert_eq!(end, to);
    }
}
