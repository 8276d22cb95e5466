// fm.c: two-operator FM, an electric-piano / bell tone.
// A modulator sine wobbles the phase of a carrier sine; the depth of
// that wobble (the modulation index) jumps up on every beat and decays,
// so each note starts bright and mellows into a pure tone.
// Try: RATIO 3.5 or 1.41 for clangier bells, a bigger INDEX for more
// bite, a slower DECAY for a longer shimmer, or new notes[].

#define BPM    100.0f
#define RATIO  1.0f     // modulator frequency / carrier frequency (1 = e-piano, 3.5 = bell)
#define INDEX  3.0f     // peak modulation index
#define DECAY  3.0f     // how fast the brightness fades (1/s)

void play(void) {
    float notes[4] = { 220.0f, 261.63f, 329.63f, 196.0f };  // A3 C4 E4 G3
    float sr = _samplerate();

    // Beat clock: the phasor wraps to 0 at every beat.
    float beat = Phasor(BPM / 60.0f);
    int *step = _int(0);
    float *env = _float(0), *last = _float(1);
    int *started = _int(1);
    if (beat < *last || !*started) {           // new beat (or very first frame)
        if (*started) *step = (*step + 1) & 3;   // & 3 wraps 0..3, and keeps it in range
        *started = 1;
        *env = 1.0f;
    }
    *last = beat;
    *env *= 1.0f - DECAY / sr;                 // brightness envelope
    float e = Onepole(*env, 150.0f);           // ~1 ms attack: no click
    float amp = e * (2.0f - e);                // softer, longer loudness envelope

    float f = notes[*step & 3];   // slots outlive a patch: & 3 guards the index
    float mod = sinf(2.0f * (float)M_PI * Phasor(f * RATIO));
    float car = sinf(2.0f * (float)M_PI * Phasor(f) + INDEX * e * mod);
    float s = 0.35f * amp * car;
    _out(0, s);
    _out(1, s);
}
