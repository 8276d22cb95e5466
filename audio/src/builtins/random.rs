//! SplitMix64: one u64 of state, passes BigCrush, trivially seedable per call
//! site. Written out here (a dozen lines) rather than taken from `rand_xoshiro`
//! because the state must be a plain `u64` inside a shared-memory [`Cell`](crate::state::Cell).

pub struct SplitMix64;

impl SplitMix64 {
    #[inline]
    pub fn next_u64(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        Self::mix(*state)
    }

    /// The SplitMix64 output function; also used to derive per-site seeds.
    #[inline]
    pub fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 bits.
    #[inline]
    pub fn next_f64(state: &mut u64) -> f64 {
        (Self::next_u64(state) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}
