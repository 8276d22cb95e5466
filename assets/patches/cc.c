// cc.c: a slow saw melody for a MIDI controller.
//   _cc(1)   mod wheel: vibrato depth (0 = none, 1 = +-half a semitone)
//   _cc(74)  filter cutoff (0 = dark 300 Hz, 1 = fully open)
//   _cc(7)   volume (0 is read as "not set" and plays at 0.7)
// CCs arrive as 0..1. Offline: clavm render cc.c -o c.wav --cc 1=0.6 --cc 74=0.5
// Every CC is smoothed by an Onepole so moving a knob does not crackle.
// Try: a faster vibrato (Cycle(7.0f)), a different melody, or map _cc(71) to
// the detune.

void play(void) {
    float notes[4] = { 146.83f, 174.61f, 220.0f, 196.0f };   // D3 F3 A3 G3
    float vib  = Onepole(_cc(1), 20.0f);
    float cut  = Onepole(_cc(74), 20.0f);
    float vol  = Onepole(_cc(7) > 0.0f ? _cc(7) : 0.7f, 20.0f);

    // A new note every second, with a soft attack and release.
    int n = (int)floor(_time()) % 4;
    float inside = (float)fmod(_time(), 1.0);               // 0..1 within the note
    float env = fminf(inside * 20.0f, 1.0f) * fminf((1.0f - inside) * 8.0f, 1.0f);
    env = Onepole(env, 50.0f);

    // Vibrato: up to half a semitone (2^(0.5/12)) at 5.5 Hz.
    float f = notes[n] * exp2f(vib * 0.5f / 12.0f * Cycle(5.5f));
    float saw = (Phasor(f) - 0.5f) + (Phasor(f * 1.004f) - 0.5f);

    float cutoff = 300.0f * exp2f(6.0f * cut);               // 300 Hz .. 19 kHz
    float s = Onepole(Onepole(saw, cutoff), cutoff) * env * vol * 0.6f;
    _out(0, s);
    _out(1, s);
}
