// karplus.c: Karplus-Strong plucked string.
// A short burst of noise is fed into a delay line one period long; the
// delay's output is averaged with its previous sample (a gentle low-pass)
// and fed back, so the noise rings at the delay's pitch and darkens as it
// decays, like a plucked string.
// Try: FEEDBACK 0.999 for longer sustain (keep it below 1!), a brighter
// pluck (raise BRIGHT), a faster TEMPO, or your own melody in notes[].

#define TEMPO    4.0f     // notes per second
#define FEEDBACK 0.996f   // string sustain, below 1
#define BRIGHT   5000.0f  // low-pass on the pluck noise, Hz

void play(void) {
    float notes[8] = { 220.00f, 261.63f, 329.63f, 392.00f,   // A3 C4 E4 G4
                       440.00f, 392.00f, 329.63f, 293.66f }; // A4 G4 E4 D4
    float sr = _samplerate();
    int *step = _int(0), *burst = _int(1), *started = _int(2);
    float *last = _float(0), *fb = _float(1);

    // Note clock: a new note each time the phasor wraps (and at the start).
    float clock = Phasor(TEMPO);
    if (clock < *last || !*started) {
        if (*started) *step = (*step + 1) & 7;   // & 7 wraps 0..7 (and guards against
        *started = 1;                            // a stray value left in the slot)
        *burst = (int)(sr / notes[*step & 7]);     // one period of noise
    }
    *last = clock;

    float f = notes[*step & 7];
    float pluck = 0.0f;
    if (*burst > 0) { pluck = Uniform(0.7f); *burst -= 1; }
    pluck = Onepole(Onepole(pluck, BRIGHT), BRIGHT);   // soften the pick

    // The loop is delay + 1 sample (the _float slot) + 0.5 sample (the
    // two-point average), so subtract 1.5 to stay in tune. The Onepole
    // glides the length over ~1 ms so a note change does not click.
    float len = Onepole(sr / f - 1.5f, 150.0f);
    float y = Delay(pluck + *fb, len);
    *fb = FEEDBACK * 0.5f * (y + History(y));

    float out = y - History(y) + 0.995f * *_float(2);   // DC blocker
    *_float(2) = out;
    _out(0, 0.7f * out);
    _out(1, 0.7f * out);
}
