//! dBFS with a floor: every level the views draw goes through here, so
//! silence is a finite -120 dB (a position on a meter) and never -inf or NaN.

/// The lowest level reported: silence, and anything quieter, reads this.
pub const FLOOR_DB: f32 = -120.0;

/// A linear amplitude (1.0 = full scale) in dBFS, floored at [`FLOOR_DB`];
/// 0.0, negative and NaN read the floor, +inf reads +inf.
pub fn db(linear: f32) -> f32 {
    if linear.is_nan() || linear <= 0.0 {
        return FLOOR_DB;
    }
    (20.0 * linear.log10()).max(FLOOR_DB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_of_reference_levels_and_the_floor() {
        assert_eq!(db(1.0), 0.0);
        assert!((db(0.5) - -6.0206).abs() < 1e-4);
        assert!((db(0.1) - -20.0).abs() < 1e-4);
        assert_eq!(db(0.0), FLOOR_DB);
        assert_eq!(db(-1.0), FLOOR_DB);
        assert_eq!(db(f32::NAN), FLOOR_DB);
        assert_eq!(db(1e-9), FLOOR_DB);
    }
}
