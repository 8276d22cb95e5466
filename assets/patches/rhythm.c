// rhythm.c: a small sequenced groove at 120 BPM, one bar of 16 steps.
// Kick: a Cycle whose pitch drops fast from ~170 Hz to 45 Hz. Hat: high-
// passed Uniform noise. Bass: a Pulse through a plucky low-pass, ducked
// a little by the kick. A Phasor clocks the step counter.
// Try: edit the kick[] / hat[] patterns (1 = hit), the bass[] notes in Hz
// (0 = rest), BPM, or the bass filter (the 300 + 2500 * be cutoff).

#define BPM 120.0f

void play(void) {
    int   kick[16] = { 1,0,0,0, 0,0,1,0, 1,0,0,1, 0,0,0,0 };
    int   hat[16]  = { 0,0,1,0, 0,0,1,0, 0,0,1,0, 0,1,1,1 };
    float bass[16] = { 55,0,55,0, 65.41f,0,55,73.42f, 55,0,110,0, 82.41f,0,73.42f,65.41f };
    float sr = _samplerate();
    float *kenv = _float(0), *henv = _float(1), *benv = _float(2);
    int *step = _int(0);

    // Step clock: four 16th notes per beat; step 0 also fires on the first frame.
    float clock = Phasor(BPM / 60.0f * 4.0f);
    int tick = clock < History(clock);
    if (tick) *step = (*step + 1) & 15;
    if (tick || _time() == 0.0) {
        int i = *step & 15;        // in range even if a previous patch left junk in _int(0)
        if (kick[i]) *kenv = 1.0f;
        if (hat[i])  *henv = (i % 4 == 2) ? 0.8f : 0.45f;  // accent the offbeats
        if (bass[i] > 0.0f) { *benv = 1.0f; *_float(3) = bass[i]; }
    }
    *kenv *= expf(-1.0f / (0.12f * sr));
    *henv *= expf(-1.0f / (0.03f * sr));
    *benv *= expf(-1.0f / (0.09f * sr));

    // Kick: the pitch envelope is the amplitude envelope cubed (faster drop).
    float ke = Onepole(*kenv, 400.0f);                 // ~0.4 ms attack: no click
    float k = ke * Cycle(45.0f + 125.0f * ke * ke * ke);
    // Hat: noise minus its lows.
    float n = Uniform(1.0f);
    float h = *henv * (n - Onepole(n, 8000.0f));
    // Bass: a DC-free 25% pulse, plucky filter, ducked by the kick.
    float be = Onepole(*benv, 300.0f);
    float b = Pulse(*_float(3), 0.25f) + 0.5f;         // mean of a 25% pulse is -0.5
    b = Onepole(Onepole(b, 300.0f + 2500.0f * be), 300.0f + 2500.0f * be);
    b *= be * (1.0f - 0.6f * ke);

    float mix = 0.45f * k + 0.12f * h + 0.3f * b;
    _out(0, mix + 0.05f * h);
    _out(1, mix - 0.03f * h);                          // hats slightly off-center
}
