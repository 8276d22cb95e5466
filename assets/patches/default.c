// default.c: a slow, warm pad that CLAVM plays when it starts.
// Three detuned saw-like voices (Phasor) through a breathing low-pass,
// a fifth above, and a soft stereo echo. Edit anything and submit:
// every oscillator keeps its phase across the recompile.

#define ROOT 110.0f

float voice(float f) {
    // A phasor is a rising ramp 0..1: center it to make a saw.
    return (Phasor(f) - 0.5f) + (Phasor(f * 1.003f) - 0.5f) + (Phasor(f * 0.997f) - 0.5f);
}

void play(void) {
    float breath = 0.5f + 0.5f * Cycle(0.07f);          // 14 s cycle
    float cutoff = 300.0f + 1800.0f * breath * breath;  // Hz
    float chord = voice(ROOT) + 0.7f * voice(ROOT * 1.5f) + 0.5f * voice(ROOT * 2.0f);
    float pad = Onepole(Onepole(chord, cutoff), cutoff) * 0.12f;

    // Echo: 3/8 s on the left, 1/2 s on the right, fed back gently.
    float *fb = _float(0);
    float echo_l = Delay(pad + 0.35f * *fb, 0.375f * _samplerate());
    float echo_r = Delay(pad + 0.35f * echo_l, 0.5f * _samplerate());
    *fb = echo_r;

    _out(0, pad + 0.4f * echo_l);
    _out(1, pad + 0.4f * echo_r);
}
