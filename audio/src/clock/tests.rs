use super::*;

const SR: f64 = 48000.0;

fn clock(bpm: f64) -> TempoClock {
    TempoClock::new(SR, Bpm::new(bpm).unwrap(), Meter::DEFAULT)
}

#[test]
fn beats_follow_the_tempo_from_frame_zero() {
    let c = clock(120.0);
    // 120 BPM at 48 kHz: 24000 frames a beat.
    assert_eq!(c.beat_at(Frames(0)), 0.0);
    assert_eq!(c.beat_at(Frames(24000)), 1.0);
    assert_eq!(c.beat_at(Frames(96000)), 4.0);
}

#[test]
fn a_tempo_change_bends_the_beat_but_never_jumps_it() {
    let mut c = clock(120.0);
    let at = Frames(30000);
    let before = c.beat_at(at);
    c.set_bpm(at, Bpm::new(90.0).unwrap());
    assert_eq!(c.beat_at(at), before, "continuous at the change");
    // After it, 90 BPM: 32000 frames a beat.
    let later = c.beat_at(Frames(30000 + 32000));
    assert!((later - (before + 1.0)).abs() < 1e-12, "{later}");
    // Many changes in a row stay continuous frame by frame.
    let mut prev = c.beat_at(Frames(62000));
    for (i, bpm) in [200.0, 61.5, 999.0, 10.0].into_iter().enumerate() {
        let f = Frames(62000 + i as u64 * 128);
        assert!((c.beat_at(f) - prev).abs() < 0.1);
        c.set_bpm(f, Bpm::new(bpm).unwrap());
        prev = c.beat_at(f);
    }
}

#[test]
fn boundaries_land_on_the_first_frame_of_the_beat_or_bar() {
    let c = clock(120.0);
    assert_eq!(c.next_boundary(Frames(1), Quant::new(1.0).unwrap()), Frames(24000));
    assert_eq!(c.next_boundary(Frames(24000), Quant::new(1.0).unwrap()), Frames(24000), "on the grid: now");
    assert_eq!(c.next_boundary(Frames(24001), Quant::new(4.0).unwrap()), Frames(96000));
    assert_eq!(c.next_boundary(Frames(5), Quant::NEXT_BLOCK), Frames(5));
    // A tempo whose beats are not whole frames: the first frame at or past the beat.
    let c = clock(143.0);
    let b = c.next_boundary(Frames(100), Quant::new(1.0).unwrap());
    assert!(c.beat_at(b) >= 1.0 - 1e-9 && c.beat_at(Frames(b.0 - 1)) < 1.0, "{b:?}");
}

#[test]
fn boundaries_after_a_tempo_change_use_the_new_tempo() {
    let mut c = clock(120.0);
    c.set_bpm(Frames(12000), Bpm::new(60.0).unwrap()); // beat 0.5 at frame 12000
                                                       // Beat 1 is half a beat later at 60 BPM: 24000 frames.
    assert_eq!(c.next_boundary(Frames(12001), Quant::new(1.0).unwrap()), Frames(36000));
}

#[test]
fn values_out_of_range_are_refused_with_the_value() {
    assert!(Bpm::new(0.0).is_err());
    assert!(Bpm::new(f64::NAN).is_err());
    assert!(Bpm::new(1e9).is_err());
    assert!(Meter::new(0).is_err());
    assert!(Meter::new(65).is_err());
    assert!(Quant::new(-1.0).is_err());
    assert!(Quant::new(f64::INFINITY).is_err());
    assert!(Quant::new(0.001).is_err());
    assert_eq!("abc".parse::<Bpm>().unwrap_err(), "tempo 'abc': not a number");
    assert!("5000".parse::<Bpm>().unwrap_err().contains("5000"));
    assert_eq!(Quant::new(4.0).unwrap().beats(), 4.0);
}

#[test]
fn bars_count_from_one() {
    let c = clock(120.0);
    assert_eq!(c.bar_number(0.0), 1);
    assert_eq!(c.bar_number(3.99), 1);
    assert_eq!(c.bar_number(4.0), 2);
    assert_eq!(c.bar_number(44.0), 12);
}
