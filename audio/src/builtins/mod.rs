//! The stateful builtins (`Phasor`, `Cycle`, ...). Each is a pure function of
//! its [`Cell`] and arguments, implemented in Rust; `api` wires them to C.
//! The exact semantics are specified in `docs/PATCH_API.md`; the tests below
//! check each sentence of it.

pub mod api;
mod random;

use crate::samples::SampleView;
use crate::state::{Cell, DELAY_LINE_LEN};
pub use random::SplitMix64;

/// The stateful builtins a patch can call. The order is part of nothing: sites
/// are matched by name across recompiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    Phasor,
    Cycle,
    Tri,
    Pulse,
    Onepole,
    History,
    Delay,
    Dust,
    Uniform,
    Normal,
    Sample,
    SampleCh,
    SampleLoop,
    SampleLoopCh,
}

impl Builtin {
    pub const ALL: [Builtin; 14] = [
        Builtin::Phasor,
        Builtin::Cycle,
        Builtin::Tri,
        Builtin::Pulse,
        Builtin::Onepole,
        Builtin::History,
        Builtin::Delay,
        Builtin::Dust,
        Builtin::Uniform,
        Builtin::Normal,
        Builtin::Sample,
        Builtin::SampleCh,
        Builtin::SampleLoop,
        Builtin::SampleLoopCh,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Builtin::Phasor => "Phasor",
            Builtin::Cycle => "Cycle",
            Builtin::Tri => "Tri",
            Builtin::Pulse => "Pulse",
            Builtin::Onepole => "Onepole",
            Builtin::History => "History",
            Builtin::Delay => "Delay",
            Builtin::Dust => "Dust",
            Builtin::Uniform => "Uniform",
            Builtin::Normal => "Normal",
            Builtin::Sample => "Sample",
            Builtin::SampleCh => "SampleCh",
            Builtin::SampleLoop => "SampleLoop",
            Builtin::SampleLoopCh => "SampleLoopCh",
        }
    }

    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The arguments a patch passes (the hidden site id not counted).
    pub fn params(self) -> &'static [&'static str] {
        match self {
            Builtin::Phasor | Builtin::Cycle | Builtin::Tri => &["freq"],
            Builtin::Pulse => &["freq", "width"],
            Builtin::Onepole => &["x", "coefficient_or_cutoff"],
            Builtin::History | Builtin::Uniform | Builtin::Normal => &["x"],
            Builtin::Delay => &["x", "samples"],
            Builtin::Dust => &["density"],
            Builtin::Sample => &["n", "speed", "trigger"],
            Builtin::SampleCh => &["n", "ch", "speed", "trigger"],
            Builtin::SampleLoop => &["n", "speed"],
            Builtin::SampleLoopCh => &["n", "ch", "speed"],
        }
    }

    /// The C type of parameter `name` (sample and channel numbers are `int`).
    pub fn param_type(name: &str) -> &'static str {
        match name {
            "n" | "ch" => "int",
            _ => "float",
        }
    }

    /// The declaration a patch may repeat, e.g. `float Cycle(float freq)`.
    pub fn signature(self) -> String {
        let params: Vec<String> = self.params().iter().map(|p| format!("{} {p}", Builtin::param_type(p))).collect();
        format!("float {}({})", self.name(), params.join(", "))
    }

    /// Whether the builtin draws random numbers (its cell is seeded on first use).
    pub fn is_random(self) -> bool {
        matches!(self, Builtin::Dust | Builtin::Uniform | Builtin::Normal)
    }
}

/// Size of the cosine table used by `Cycle` (as gen~'s `cycle`).
pub const COS_TABLE_BITS: u32 = 14;
pub const COS_TABLE_LEN: usize = 1 << COS_TABLE_BITS;

/// One period of cosine plus a guard point, so interpolation never wraps.
pub fn cos_table() -> &'static [f32; COS_TABLE_LEN + 1] {
    use std::sync::OnceLock;
    static TABLE: OnceLock<Box<[f32; COS_TABLE_LEN + 1]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Box::new([0.0f32; COS_TABLE_LEN + 1]);
        for (i, v) in t.iter_mut().enumerate() {
            *v = (std::f64::consts::TAU * i as f64 / COS_TABLE_LEN as f64).cos() as f32;
        }
        t
    })
}

/// Wraps a phase into [0, 1). A non-finite phase (a NaN frequency) restarts at
/// 0: state is kept across recompiles, so a poisoned phase would otherwise
/// silence the oscillator for the rest of the performance.
#[inline]
fn wrap01(x: f64) -> f64 {
    let w = x - x.floor();
    // x - floor(x) can round up to exactly 1.0 for tiny negative x; NaN fails the test too.
    if (0.0..1.0).contains(&w) {
        w
    } else {
        0.0
    }
}

/// State that must stay finite (see `wrap01`).
#[inline]
fn finite_or_zero(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// `Phasor(freq)`: a: phase. Adds before it returns (gen~): the first output is freq/sr.
#[inline]
pub fn phasor(c: &mut Cell, freq: f32, inv_sr: f64) -> f32 {
    c.a = wrap01(c.a + freq as f64 * inv_sr);
    c.a as f32
}

/// `Cycle(freq)`: u: 32-bit phase. Reads the table, then adds (gen~): the first output is 1.0.
#[inline]
pub fn cycle(c: &mut Cell, freq: f32, inv_sr: f64, table: &[f32; COS_TABLE_LEN + 1]) -> f32 {
    let phase = c.u as u32;
    let idx = (phase >> (32 - COS_TABLE_BITS)) as usize;
    let frac = (phase & ((1 << (32 - COS_TABLE_BITS)) - 1)) as f32 * (1.0 / (1u32 << (32 - COS_TABLE_BITS)) as f32);
    let out = table[idx] + (table[idx + 1] - table[idx]) * frac;
    let inc = (freq as f64 * inv_sr * 4_294_967_296.0).round() as i64;
    c.u = phase.wrapping_add(inc as u32) as u64;
    out
}

/// `Tri(freq)`: a: phase. Cosine-phased triangle: 1 at phase 0, -1 at phase 0.5. Reads, then adds.
#[inline]
pub fn tri(c: &mut Cell, freq: f32, inv_sr: f64) -> f32 {
    let p = c.a;
    c.a = wrap01(p + freq as f64 * inv_sr);
    (4.0 * (p - 0.5).abs() - 1.0) as f32
}

/// PolyBLEP residual for a unit step at phase 0, given phase `t` and increment `dt`.
#[inline]
fn poly_blep(t: f64, dt: f64) -> f64 {
    if t < dt {
        let x = t / dt;
        x + x - x * x - 1.0
    } else if t > 1.0 - dt {
        let x = (t - 1.0) / dt;
        x * x + x + x + 1.0
    } else {
        0.0
    }
}

/// `Pulse(freq, width)`: a: phase. +1 while phase < width, else -1, with
/// PolyBLEP-smoothed edges (band-limited). Reads, then adds.
#[inline]
pub fn pulse(c: &mut Cell, freq: f32, width: f32, inv_sr: f64) -> f32 {
    let p = c.a;
    let w = (width as f64).clamp(0.0, 1.0);
    let dt = (freq as f64 * inv_sr).abs().min(0.5);
    c.a = wrap01(p + freq as f64 * inv_sr);
    if w <= 0.0 {
        return -1.0;
    }
    if w >= 1.0 {
        return 1.0;
    }
    let mut y = if p < w { 1.0 } else { -1.0 };
    if dt > 0.0 {
        y += poly_blep(p, dt) - poly_blep(wrap01(p - w), dt);
    }
    y as f32
}

/// `Onepole(x, c)`: a: y, b: last cutoff, u: its coefficient's bits.
/// `c` in [0, 1] is the coefficient itself; `c` > 1 is a cutoff in Hz,
/// coefficient = 1 - exp(-2*pi*c/sr). y += coefficient * (x - y).
#[inline]
pub fn onepole(cell: &mut Cell, x: f32, c: f32, sr: f64) -> f32 {
    let coef = if c > 1.0 {
        let c = c as f64;
        if cell.b != c {
            cell.b = c;
            cell.u = (1.0 - (-std::f64::consts::TAU * c.min(sr * 0.5) / sr).exp()).to_bits();
        }
        f64::from_bits(cell.u)
    } else {
        (c as f64).max(0.0)
    };
    let y = cell.a + coef * (x as f64 - cell.a);
    cell.a = finite_or_zero(y);
    y as f32
}

/// `History(x)`: a: the stored value. Returns the argument of the previous call, stores `x`.
#[inline]
pub fn history(c: &mut Cell, x: f32) -> f32 {
    let out = c.a as f32;
    c.a = x as f64;
    out
}

/// `Delay(x, d)`: u: samples written, on delay line `line`. Writes `x`, then
/// returns the input from `d` samples ago (d = 0 returns `x`), linearly
/// interpolated for fractional `d`; samples never written read as 0, and a
/// non-finite `x` is stored as 0.
/// Returns whether `d` had to be clamped.
#[inline]
pub fn delay(c: &mut Cell, ring: &mut [f32], x: f32, d: f32) -> (f32, bool) {
    const MASK: u64 = DELAY_LINE_LEN as u64 - 1;
    let max = (DELAY_LINE_LEN - 2) as f32;
    let clamped = !(0.0..=max).contains(&d);
    let d = if d.is_nan() { 0.0 } else { d.clamp(0.0, max) };
    // A NaN written here would come back for seconds: store silence instead.
    ring[(c.u & MASK) as usize] = if x.is_finite() { x } else { 0.0 };
    c.u += 1;
    let written = c.u;
    let di = d as u64;
    let frac = d - di as f32;
    let read = |back: u64| -> f32 {
        if back >= written {
            0.0
        } else {
            ring[((written - 1 - back) & MASK) as usize]
        }
    };
    let a = read(di);
    let out = if frac > 0.0 { a + (read(di + 1) - a) * frac } else { a };
    (out, clamped)
}

/// `Dust(density)`: u: random state. On each sample an impulse occurs with
/// probability density/sr; its height is uniform in (0, 1]; otherwise 0.
#[inline]
pub fn dust(c: &mut Cell, density: f32, inv_sr: f64) -> f32 {
    let p = density as f64 * inv_sr;
    let r = SplitMix64::next_f64(&mut c.u);
    if r < p {
        (1.0 - r / p) as f32
    } else {
        0.0
    }
}

/// `Uniform(x)`: u: random state. Uniform in [-x, x).
#[inline]
pub fn uniform(c: &mut Cell, x: f32) -> f32 {
    ((SplitMix64::next_f64(&mut c.u) * 2.0 - 1.0) * x as f64) as f32
}

/// `Normal(x)`: u: random state. Gaussian, mean 0, standard deviation `x` (Box-Muller).
#[inline]
pub fn normal(c: &mut Cell, x: f32) -> f32 {
    let u1 = 1.0 - SplitMix64::next_f64(&mut c.u); // (0, 1]
    let u2 = SplitMix64::next_f64(&mut c.u);
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * x as f64) as f32
}

/// Sample `v` at fractional frame `pos` (in `0..frames`), linearly
/// interpolated; the frame after the last is the first when `wrap`, else the
/// last again. `ch`: a channel (taken modulo the sample's), or `None` for
/// the mean of all channels.
#[inline]
fn sample_at(v: &SampleView, pos: f64, ch: Option<i32>, wrap: bool) -> f32 {
    let frames = v.frames;
    let i = (pos as u64).min(frames - 1);
    let frac = (pos - i as f64).clamp(0.0, 1.0) as f32;
    let j = if i + 1 < frames {
        i + 1
    } else if wrap {
        0
    } else {
        i
    };
    let read = |k: u64| -> f32 {
        match ch {
            // SAFETY: k < frames and the channel is reduced modulo the view's.
            Some(c) => unsafe { v.at(k, c.rem_euclid(v.channels as i32) as u32) },
            None => {
                // SAFETY: as above, every channel of frame k.
                let sum: f32 = (0..v.channels).map(|c| unsafe { v.at(k, c) }).sum();
                sum / v.channels as f32
            }
        }
    };
    let a = read(i);
    if frac > 0.0 {
        a + (read(j) - a) * frac
    } else {
        a
    }
}

/// `Sample(n, speed, trigger)`: a: position in frames, b: the last trigger,
/// u: 1 while playing. A rising edge of `trigger` (from <= 0 to > 0) starts
/// the sample from its first frame (speed >= 0) or its last (speed < 0);
/// each call reads the position, then moves it by `speed` frames. Past
/// either end it stops and returns 0 until the next edge. `v` is not empty.
#[inline]
pub fn sample(c: &mut Cell, v: &SampleView, ch: Option<i32>, speed: f32, trigger: f32) -> f32 {
    let speed = if speed.is_finite() { speed as f64 } else { 0.0 };
    let last = (v.frames - 1) as f64;
    if trigger > 0.0 && c.b <= 0.0 {
        c.u = 1;
        c.a = if speed < 0.0 { last } else { 0.0 };
    }
    c.b = if trigger.is_nan() { 0.0 } else { trigger as f64 };
    if c.u == 0 {
        return 0.0;
    }
    let pos = c.a;
    // NaN fails too; a new version may bring a shorter sample under this number.
    if !(0.0..=last).contains(&pos) {
        c.u = 0;
        return 0.0;
    }
    c.a = pos + speed;
    sample_at(v, pos, ch, false)
}

/// `SampleLoop(n, speed)`: a: position in frames. Plays the sample round
/// and round from its first frame, backwards for a negative speed; the last
/// frame interpolates into the first.
#[inline]
pub fn sample_loop(c: &mut Cell, v: &SampleView, ch: Option<i32>, speed: f32) -> f32 {
    let len = v.frames as f64;
    let speed = if speed.is_finite() { speed as f64 } else { 0.0 };
    let mut pos = c.a;
    if !(0.0..len).contains(&pos) {
        pos = finite_or_zero(pos.rem_euclid(len));
        if pos >= len {
            pos = 0.0;
        }
    }
    let mut next = pos + speed;
    // A division only where the position wraps (rem_euclid costs more than the rest).
    if !(0.0..len).contains(&next) {
        next = finite_or_zero(next.rem_euclid(len));
        if next >= len {
            next = 0.0;
        }
    }
    c.a = next;
    sample_at(v, pos, ch, true)
}

#[cfg(test)]
mod tests;
