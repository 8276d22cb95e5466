//! Each sentence of docs/PATCH_API.md's builtin definitions, checked.

use super::*;
use crate::state::{Cell, DELAY_LINE_LEN};
use bytemuck::Zeroable;

const SR: f64 = 48000.0;
const INV: f64 = 1.0 / SR;

fn cell() -> Cell {
    Cell::zeroed()
}

#[test]
fn phasor_adds_before_it_returns_and_wraps_into_0_1() {
    let mut c = cell();
    assert_eq!(phasor(&mut c, 480.0, INV), 0.01);
    let v: Vec<f32> = (0..200).map(|_| phasor(&mut c, 480.0, INV)).collect();
    assert!(v.iter().all(|x| (0.0..1.0).contains(x)));
    // 100 samples per period: after 100 more calls it is back where it was.
    assert!((v[98] - 0.0).abs() < 1e-6 || (v[98] - 1.0).abs() < 1e-6, "{}", v[98]);
    let mut n = cell();
    assert!((phasor(&mut n, -480.0, INV) - 0.99).abs() < 1e-6, "negative frequencies run backwards");
}

#[test]
fn cycle_reads_before_adding_so_it_starts_at_one_and_is_a_cosine() {
    let mut c = cell();
    let t = cos_table();
    assert_eq!(cycle(&mut c, 1000.0, INV, t), 1.0);
    let mut max_err = 0.0f64;
    for n in 1..4800 {
        let y = cycle(&mut c, 1000.0, INV, t) as f64;
        let want = (std::f64::consts::TAU * 1000.0 * n as f64 / SR).cos();
        max_err = max_err.max((y - want).abs());
    }
    // The 32-bit phase increment is exact to 1/2^32 of a cycle per sample (as in
    // gen~): over 4800 samples that drifts by at most ~1e-6 cycles.
    assert!(max_err < 1e-5, "table + interpolation error {max_err}");
}

#[test]
fn tri_is_cosine_phased_and_pulse_follows_its_width() {
    let mut c = cell();
    assert_eq!(tri(&mut c, 480.0, INV), 1.0);
    let v: Vec<f32> = (0..100).map(|_| tri(&mut c, 480.0, INV)).collect();
    assert!((v[49] - -1.0).abs() < 1e-5, "minimum at half a period: {}", v[49]);
    assert!(v.iter().all(|x| (-1.0..=1.0).contains(x)));

    let mut p = cell();
    let w = 0.25;
    let v: Vec<f32> = (0..4800).map(|_| pulse(&mut p, 100.0, w, INV)).collect();
    let mean = v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64;
    assert!((mean - (2.0 * w as f64 - 1.0)).abs() < 0.01, "mean {mean}");
    assert!(v[100] > 0.99 && v[300] < -0.99, "high for a quarter period, then low");
    // Band-limited edges: the first sample of a period is between the levels.
    assert!(v[0].abs() < 0.99, "{}", v[0]);
}

#[test]
fn onepole_takes_a_coefficient_or_a_cutoff() {
    let mut c = cell();
    assert_eq!(onepole(&mut c, 1.0, 0.5, SR), 0.5);
    assert_eq!(onepole(&mut c, 1.0, 0.5, SR), 0.75);
    // Cutoff in Hz: the step response reaches 1 - 1/e after 1/(2 pi fc) seconds.
    let mut c = cell();
    let fc = 100.0f32;
    let n = (SR / (std::f64::consts::TAU * fc as f64)).round() as usize;
    let y = (0..n).map(|_| onepole(&mut c, 1.0, fc, SR)).last().unwrap();
    assert!((y as f64 - (1.0 - (-1.0f64).exp())).abs() < 0.01, "{y}");
}

#[test]
fn history_returns_the_previous_argument() {
    let mut c = cell();
    assert_eq!(history(&mut c, 3.0), 0.0);
    assert_eq!(history(&mut c, 4.0), 3.0);
    assert_eq!(history(&mut c, 5.0), 4.0);
}

#[test]
fn delay_writes_then_reads_interpolates_and_clamps() {
    let mut ring = vec![0.0f32; DELAY_LINE_LEN];
    let mut c = cell();
    let out: Vec<f32> = (1..=10).map(|i| delay(&mut c, &mut ring, i as f32, 3.0).0).collect();
    assert_eq!(out, [0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    assert_eq!(delay(&mut c, &mut ring, 11.0, 0.0).0, 11.0, "a delay of 0 returns the input");
    assert_eq!(delay(&mut c, &mut ring, 12.0, 1.5).0, 10.5, "fractional delays interpolate");
    let (_, clamped) = delay(&mut c, &mut ring, 0.0, 1e9);
    assert!(clamped);
    // A reused line is not cleared: a fresh cell still reads zeros where it wrote nothing.
    let mut fresh = cell();
    assert_eq!(delay(&mut fresh, &mut ring, 1.0, 5.0).0, 0.0);
}

#[test]
fn random_builtins_have_their_documented_distributions_and_are_deterministic() {
    let mut a = cell();
    a.u = 42;
    let v: Vec<f32> = (0..100_000).map(|_| uniform(&mut a, 0.5)).collect();
    assert!(v.iter().all(|x| (-0.5..0.5).contains(x)));
    let mean = v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64;
    assert!(mean.abs() < 0.01);

    let mut n = cell();
    n.u = 7;
    let v: Vec<f64> = (0..100_000).map(|_| normal(&mut n, 2.0) as f64).collect();
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let sd = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt();
    assert!(m.abs() < 0.03 && (sd - 2.0).abs() < 0.03, "mean {m}, sd {sd}");

    let mut d = cell();
    d.u = 9;
    let v: Vec<f32> = (0..480_000).map(|_| dust(&mut d, 100.0, INV)).collect();
    let impulses = v.iter().filter(|x| **x != 0.0).count();
    assert!((900..1100).contains(&impulses), "about 100 per second for 10 s: {impulses}");
    assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));

    let mut again = cell();
    again.u = 42;
    assert_eq!(uniform(&mut again, 0.5), {
        let mut b = cell();
        b.u = 42;
        uniform(&mut b, 0.5)
    });
}

#[test]
fn a_nan_argument_never_poisons_state_for_good() {
    // State survives recompiles, so a single NaN must not leave an oscillator dead.
    let mut p = cell();
    phasor(&mut p, f32::NAN, INV);
    assert_eq!(phasor(&mut p, 480.0, INV), 0.01);
    let mut t = cell();
    tri(&mut t, f32::INFINITY, INV);
    assert_eq!(tri(&mut t, 480.0, INV), 1.0);
    let mut o = cell();
    assert!(onepole(&mut o, f32::NAN, 0.5, SR).is_nan(), "this sample shows the NaN...");
    assert_eq!(onepole(&mut o, 1.0, 0.5, SR), 0.5, "...the next one starts from a clean state");
    let mut ring = vec![0.0f32; DELAY_LINE_LEN];
    let mut d = cell();
    delay(&mut d, &mut ring, f32::NAN, 0.0);
    assert_eq!(delay(&mut d, &mut ring, 1.0, 1.0).0, 0.0);
}

fn view(data: &[f32], channels: u32) -> crate::samples::SampleView {
    crate::samples::SampleView {
        data: data.as_ptr(),
        frames: (data.len() / channels as usize) as u64,
        channels,
        _pad: 0,
    }
}

#[test]
fn sample_plays_once_from_the_start_on_each_rising_edge() {
    let data = [1.0, 2.0, 3.0, 4.0];
    let v = view(&data, 1);
    let mut c = cell();
    // Nothing before the first edge.
    assert_eq!(sample(&mut c, &v, None, 1.0, 0.0), 0.0);
    let played: Vec<f32> = (0..6).map(|_| sample(&mut c, &v, None, 1.0, 1.0)).collect();
    assert_eq!(played, [1.0, 2.0, 3.0, 4.0, 0.0, 0.0], "a held trigger plays once");
    // Retriggered in the middle: back to the start.
    let mut c = cell();
    let a: Vec<f32> = [1.0, 1.0, 0.0, 1.0, 0.0].iter().map(|t| sample(&mut c, &v, None, 1.0, *t)).collect();
    assert_eq!(a, [1.0, 2.0, 3.0, 1.0, 2.0]);
}

#[test]
fn sample_speed_interpolates_and_negative_plays_from_the_end() {
    let data = [0.0, 1.0, 2.0, 3.0];
    let v = view(&data, 1);
    let mut c = cell();
    let half: Vec<f32> = (0..8).map(|_| sample(&mut c, &v, None, 0.5, 1.0)).collect();
    assert_eq!(half, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 0.0]);
    let mut c = cell();
    let back: Vec<f32> = (0..5).map(|_| sample(&mut c, &v, None, -1.0, 1.0)).collect();
    assert_eq!(back, [3.0, 2.0, 1.0, 0.0, 0.0]);
    let mut c = cell();
    assert_eq!(sample(&mut c, &v, None, f32::NAN, 1.0), 0.0, "a NaN speed holds the first frame");
    assert_eq!(sample(&mut c, &v, None, f32::NAN, f32::NAN), 0.0);
    assert!(c.a.is_finite());
}

#[test]
fn sample_channels_mix_or_pick_modulo() {
    // Stereo: left 1, right 3.
    let data = [1.0, 3.0, 1.0, 3.0];
    let v = view(&data, 2);
    let mut c = cell();
    assert_eq!(sample(&mut c, &v, None, 1.0, 1.0), 2.0, "Sample is the mean of the channels");
    for (ch, want) in [(0, 1.0), (1, 3.0), (2, 1.0), (-1, 3.0)] {
        let mut c = cell();
        assert_eq!(sample(&mut c, &v, Some(ch), 1.0, 1.0), want, "channel {ch}");
    }
}

#[test]
fn sample_loop_wraps_both_ways_and_interpolates_across_the_seam() {
    let data = [0.0, 1.0, 2.0, 3.0];
    let v = view(&data, 1);
    let mut c = cell();
    let fwd: Vec<f32> = (0..6).map(|_| sample_loop(&mut c, &v, None, 1.0)).collect();
    assert_eq!(fwd, [0.0, 1.0, 2.0, 3.0, 0.0, 1.0]);
    let mut c = cell();
    let back: Vec<f32> = (0..5).map(|_| sample_loop(&mut c, &v, None, -1.0)).collect();
    assert_eq!(back, [0.0, 3.0, 2.0, 1.0, 0.0]);
    let mut c = cell();
    c.a = 3.5;
    assert_eq!(sample_loop(&mut c, &v, None, 0.0), 1.5, "the last frame leads into the first");
    c.a = f64::NAN;
    assert_eq!(sample_loop(&mut c, &v, None, 1e30), 0.0);
    assert!(c.a.is_finite() && c.a < 4.0);
}
