//! Percentiles of a set of timings.

use std::time::Duration;

#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
}

impl Percentiles {
    /// Nearest-rank percentiles (sorts `times`).
    pub fn of(times: &mut [Duration]) -> Percentiles {
        if times.is_empty() {
            return Percentiles::default();
        }
        times.sort();
        let at = |q: f64| times[((q * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
        Percentiles { p50: at(0.50), p99: at(0.99) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut t: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let p = Percentiles::of(&mut t);
        assert_eq!(p.p50, Duration::from_micros(50));
        assert_eq!(p.p99, Duration::from_micros(99));
    }
}
