// poly.c: a polyphonic synth for MIDI notes. Each voice is two detuned
// band-limited pulses through a low-pass that opens with the velocity,
// shaped by the engine's gate (so nothing clicks, not even a stolen note).
//   clavm render poly.c --midi assets/midi/chords.mid --release 300 -o poly.wav
//   clavm play poly.c --voices 16    (then connect a keyboard to clavm-midi:cc_in)

void play(void) {
    float mix = 0.0f;
    // Every voice runs every frame, silent or not: the builtins in this loop
    // have one state per occurrence, so skipping a voice would hand the next
    // voice's oscillators to it.
    for (int v = 0; v < _voices(); v++) {
        float g = _gate(v);
        float f = _hz(v);
        float vel = _velocity(v);
        float osc = Pulse(f * 0.997f, 0.5f) + Pulse(f * 1.003f, 0.42f) - (2 * 0.42f - 1);
        float bright = Onepole(osc, f * (1.5f + 6.0f * vel * g));
        mix += 0.12f * g * (0.3f + 0.7f * vel) * bright;
    }
    float out = tanhf(mix);
    _out(0, out);
    _out(1, out);
}
