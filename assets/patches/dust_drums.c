// dust_drums.c: noise percussion. A 16-step clock plays closed hats on
// the eighths and a snare on beats 2 and 4; Dust sprinkles random ghost
// hats in between, so every --seed gives a different groove.
// Each drum is noise shaped by an exponentially decaying envelope kept in
// a _float slot. Try: change BPM, the decay times, the snare pattern
// (step % 8 == 4), or GHOSTS (random hats per second; 0 = none).

#define BPM    110.0f
#define GHOSTS 3.0f       // random ghost hats per second
#define HAT_T  0.035f     // hat decay time, seconds
#define SN_T   0.12f      // snare decay time, seconds

void play(void) {
    float sr = _samplerate();
    float *hat = _float(0), *snare = _float(1), *last = _float(2);
    int *step = _int(0), *started = _int(1);

    // 16th-note clock: four steps per beat.
    float clock = Phasor(BPM / 60.0f * 4.0f);
    if (clock < *last || !*started) {              // new step (or the very first)
        if (*started) *step = (*step + 1) & 15;     // & 15 wraps 0..15
        *started = 1;
        if (*step % 2 == 0) *hat = (*step % 4 == 0) ? 0.5f : 0.8f; // offbeats louder
        if (*step % 8 == 4) *snare = 1.0f;
    }
    *last = clock;
    float ghost = Dust(GHOSTS);                    // 0 most of the time
    if (ghost > 0.0f) *hat = fmaxf(*hat, 0.35f * ghost);

    *hat   *= expf(-1.0f / (HAT_T * sr));          // exponential decays
    *snare *= expf(-1.0f / (SN_T * sr));

    // Hat: noise minus its low part = high-passed noise (above ~7 kHz).
    float n1 = Uniform(1.0f);
    float h = (n1 - Onepole(n1, 7000.0f)) * *hat;
    // Snare: band of noise around 1-5 kHz plus a short 190 Hz body.
    float n2 = Uniform(1.0f);
    float band = Onepole(n2, 5000.0f) - Onepole(n2, 1000.0f);
    float s = (0.9f * band + 0.4f * Cycle(190.0f) * *snare) * *snare;

    _out(0, 0.6f * (0.6f * h + s));
    _out(1, 0.6f * (1.0f * h + s));                // hats a little to the right
}
