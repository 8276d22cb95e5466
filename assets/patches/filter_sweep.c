// filter_sweep.c: a Pulse bass line through four Onepole low-passes in a
// row (a 24 dB/octave filter). A slow triangle LFO sweeps the cutoff up
// and down over 12 seconds, from a dark thump to a bright buzz.
// Try: a narrower WIDTH (0.1) for a nasal tone, a faster LFO (Tri(0.5)),
// fewer POLES for a brighter, softer slope, or new notes[].

#define BPM   120.0f
#define WIDTH 0.3f      // pulse width 0..1 (0.5 = square)
#define POLES 4         // how many Onepole stages in the cascade

void play(void) {
    float notes[8] = { 55.0f, 55.0f, 110.0f, 55.0f, 65.41f, 55.0f, 82.41f, 73.42f };
    float *last = _float(0), *env = _float(1);
    int *step = _int(0);

    // Eighth-note clock, and a plucky envelope retriggered on every note.
    float clock = Phasor(BPM / 60.0f * 2.0f);
    if (clock < *last) *step = (*step + 1) & 7;   // & 7 wraps 0..7
    if (clock < *last || _time() == 0.0) *env = 1.0f;
    *last = clock;
    *env *= 1.0f - 4.0f / _samplerate();                  // decays by ~e every 1/4 s
    float amp = Onepole(0.4f + 0.6f * *env, 200.0f);        // smoothed: no clicks

    // Cutoff sweeps exponentially between 120 Hz and ~3 kHz.
    float lfo = 0.5f + 0.5f * Tri(1.0f / 12.0f);            // 0..1 (starts at 1: bright)
    float cutoff = 120.0f * exp2f(4.6f * lfo) * (1.0f + *env);

    // A pulse of width w is +1 for w of the time: its mean is 2w-1, so
    // subtract that to keep the output centered (no DC offset).
    float w = WIDTH + 0.1f * Cycle(0.3f);                   // slowly moving width
    float x = Pulse(notes[*step & 7], w) - (2.0f * w - 1.0f);
    for (int i = 0; i < POLES; i++) x = Onepole(x, cutoff);    // each stage keeps its own state
    float s = 0.4f * amp * x;
    _out(0, s);
    _out(1, s);
}
