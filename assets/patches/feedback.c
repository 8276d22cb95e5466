// feedback.c: feedback FM. Each oscillator's own recent output bends its
// phase: at low feedback it is a pure sine, as feedback grows it fills in
// harmonics until it is nearly a sawtooth. The amount breathes slowly.
// History(x) gives last sample's x; here it supplies the output from two
// samples ago, and the two are averaged to keep high feedback smooth.
// Feedback FM leans to one side, so a DC blocker (also History) recenters it.
// Try: raise MAXFB toward 1.5 (more buzz), change the chord, or the
// breathing speed in Cycle(0.08f).

#define ROOT  110.0f
#define MAXFB 1.2f     // feedback at the top of the breath

float voice(float f, float fb, int slot) {
    float *y1 = _float(slot);                        // last output
    float bend = 0.5f * (*y1 + History(*y1));        // average of last two outputs
    float y = sinf(2.0f * (float)M_PI * Phasor(f) + fb * bend);
    *y1 = y;
    return y;
}

float dcblock(float x, int slot) {
    float *prev = _float(slot);
    float y = x - History(x) + 0.995f * *prev;       // y = x - x[n-1] + 0.995 y[n-1]
    *prev = y;
    return y;
}

void play(void) {
    float breath = 0.5f - 0.5f * Cycle(0.08f);       // 0..1 over 12.5 s, starts at 0
    float fb = MAXFB * breath;
    float l = voice(ROOT, fb, 0) + 0.6f * voice(ROOT * 1.5f, fb * 0.8f, 1);
    float r = voice(ROOT * 1.002f, fb, 2) + 0.5f * voice(ROOT * 2.0f, fb * 0.6f, 3);
    _out(0, 0.3f * dcblock(l, 10));
    _out(1, 0.3f * dcblock(r, 11));
}
