//! The XY (goniometer / Lissajous) view's points: left against right.
//!
//! Nothing is derived here; the helper only gathers the newest frames as
//! pairs, so the view can upload them as a vertex buffer in one copy.

use super::history::SampleHistory;

/// Replaces `out` with the newest `len_frames` (left, right) pairs, oldest
/// first. Mono uses the one channel for both (a diagonal line); more than two
/// channels use the first two. Frames before the stored range are (0, 0).
///
/// `len_frames` is clamped to the history's capacity. Allocates only if `out`
/// has less capacity than that: keep one `Vec` and reuse it.
pub fn xy_points(history: &SampleHistory, len_frames: usize, out: &mut Vec<[f32; 2]>) {
    out.clear();
    let len = len_frames.min(history.capacity()) as u64;
    let newest = history.newest();
    let right = if history.channels() >= 2 { 1 } else { 0 };
    // Frames "before frame 0" do not exist: they are the origin too.
    let before_zero = len.saturating_sub(newest) as usize;
    out.resize(before_zero, [0.0, 0.0]);
    let start = newest.saturating_sub(len);
    out.extend((start..newest).map(|f| [history.get(0, f), history.get(right, f)]));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::TAU;

    #[test]
    fn sine_and_cosine_trace_a_circle_of_the_amplitude() {
        let mut h = SampleHistory::new(2, 0);
        let block: Vec<f32> = (0..4800)
            .flat_map(|i| {
                let phase = TAU * 440.0 * i as f64 / 48_000.0;
                [(0.7 * phase.sin()) as f32, (0.7 * phase.cos()) as f32]
            })
            .collect();
        h.push_interleaved(&block);
        let mut points = Vec::with_capacity(1 << 17);
        xy_points(&h, 1000, &mut points);
        assert_eq!(points.len(), 1000);
        for p in &points {
            let radius = (p[0] * p[0] + p[1] * p[1]).sqrt();
            assert!((radius - 0.7).abs() < 1e-5, "{radius}");
        }
        assert_eq!(points[999], [block[2 * 4799], block[2 * 4799 + 1]]);
    }

    #[test]
    fn mono_is_the_diagonal_and_missing_frames_are_the_origin() {
        let mut h = SampleHistory::new(1, 0);
        h.push_interleaved(&[0.25, -0.5]);
        let mut points = Vec::new();
        xy_points(&h, 4, &mut points);
        assert_eq!(points, vec![[0.0, 0.0], [0.0, 0.0], [0.25, 0.25], [-0.5, -0.5]]);
        xy_points(&h, 0, &mut points);
        assert!(points.is_empty());
    }
}
