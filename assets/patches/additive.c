// additive.c: additive synthesis. A tone built from 12 sine partials at
// 1, 2, 3 ... 12 times the fundamental. Each partial has its own loudness
// (1/k, odd partials a bit stronger, like a soft clarinet-organ) and its
// own slow LFO, so the harmonics shimmer in and out independently.
// The fundamental sits in the middle; odd partials lean left, even right.
// Try: PARTIALS 16, amp = 1/(k*k) for a flute, only odd k for a hollow
// square-ish tone, or STRETCH 1.002 for a bell-like inharmonic spread.

#define ROOT     110.0f
#define PARTIALS 12
#define STRETCH  1.0f     // 1 = harmonic; >1 spreads the upper partials

void play(void) {
    float l = 0.0f, r = 0.0f;
    for (int i = 0; i < PARTIALS; i++) {      // each iteration owns its own Cycle states
        float k = (float)(i + 1);
        float amp = (i % 2 == 0 ? 1.0f : 0.6f) / k;
        // Slow shimmer: every partial breathes at its own rate (0.05..0.5 Hz).
        float shimmer = 0.6f + 0.4f * Cycle(0.05f + 0.04f * k);
        float p = amp * shimmer * Cycle(ROOT * k * powf(STRETCH, k - 1.0f));
        float pan = (i == 0) ? 0.5f : (i % 2 == 0 ? 0.25f : 0.75f);   // 0 left, 1 right
        l += (1.0f - pan) * p;
        r += pan * p;
    }
    _out(0, 0.4f * l);
    _out(1, 0.4f * r);
}
