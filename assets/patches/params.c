// params.c: a little arpeggio you steer with live parameters.
//   _p(0)  root pitch in Hz        (0 = not set: 220 Hz)
//   _p(1)  brightness 0..1         (0 = mellow, 1 = bright)
//   _i(0)  waveform 0..3           (0 Cycle, 1 Tri, 2 Pulse, 3 saw from Phasor)
// Offline:  clavm render params.c -o p.wav --param 0=330 --param 1=0.8 --int 0=2
// Live, set them from the parameter panel. Try: other ratios in steps[],
// or map brightness to the pulse width too.

void play(void) {
    float steps[4] = { 1.0f, 1.5f, 2.0f, 1.5f };       // root, fifth, octave, fifth
    float root = _p(0) > 0.0f ? fminf(_p(0), 2000.0f) : 220.0f;
    float bright = fminf(fmaxf(_p(1), 0.0f), 1.0f);
    int wave = _i(0) & 3;                              // wraps any integer into 0..3

    // Four notes per second, each with a soft decaying envelope.
    float clock = Phasor(4.0f);
    float *env = _float(0);
    int *step = _int(0);
    int tick = clock < History(clock);                 // the ramp wrapped: next note
    if (tick) *step = (*step + 1) & 3;                // & 3 wraps 0..3
    if (tick || _time() == 0.0) *env = 1.0f;
    *env *= 1.0f - 5.0f / _samplerate();
    float amp = Onepole(0.3f + 0.7f * *env, 200.0f);

    float f = root * steps[*step & 3];                // & 3 again: slots outlive a patch
    float osc[4] = { Cycle(f), Tri(f), 0.6f * Pulse(f, 0.5f), 2.0f * (Phasor(f) - 0.5f) };
    float x = osc[wave];

    // Brightness opens a two-pole low-pass from 2x to 64x the pitch.
    float cutoff = fminf(f * exp2f(1.0f + 5.0f * bright), 18000.0f);
    x = Onepole(Onepole(x, cutoff), cutoff);
    float s = 0.4f * amp * x;
    _out(0, s);
    _out(1, s);
}
