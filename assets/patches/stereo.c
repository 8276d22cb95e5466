// stereo.c: a stereo field. Two slightly detuned triangle drones sit hard
// left and right (the detune makes them beat slowly across the room), a
// bell arpeggio wanders between the speakers with an auto-panner, and a
// ping-pong delay throws its echoes left, right, left...
// Try: more DETUNE, a faster pan (Cycle(0.5f)), a longer ECHO, or more
// FEEDBACK (keep it below 0.8). Listen on headphones.

#define BPM      90.0f
#define DETUNE   1.004f   // frequency ratio between the left and right drones
#define ECHO     0.75f    // echo time in beats
#define FEEDBACK 0.5f

void play(void) {
    float notes[8] = { 440.0f, 554.37f, 659.26f, 880.0f,          // A major, up
                       1108.73f, 880.0f, 659.26f, 554.37f };     // and down
    float sr = _samplerate(), beat = 60.0f / BPM;
    float *last = _float(0), *env = _float(1), *fb = _float(2);
    int *step = _int(0);

    // Drones: one per side.
    float dl = 0.12f * Tri(110.0f) + 0.06f * Tri(165.0f);
    float dr = 0.12f * Tri(110.0f * DETUNE) + 0.06f * Tri(165.0f * DETUNE);

    // Arpeggio: a new note every half beat, sine with a quick decay.
    float clock = Phasor(2.0f / beat);
    if (clock < *last) *step = (*step + 1) & 7;           // & 7 wraps 0..7
    if (clock < *last || _time() == 0.0) *env = 1.0f;
    *last = clock;
    *env *= 1.0f - 6.0f / sr;
    float e = Onepole(*env, 300.0f);                      // soft attack
    float bell = 0.25f * e * e * Cycle(notes[*step & 7]);

    // Auto-panner: equal-power pan swinging once every 5 seconds.
    float pan = 0.5f + 0.45f * Cycle(0.2f);               // 0 = left, 1 = right
    float bl = bell * cosf(pan * (float)M_PI_2), br = bell * sinf(pan * (float)M_PI_2);

    // Ping-pong: left echo feeds the right echo, which feeds back to the left.
    float el = Delay(bell + FEEDBACK * *fb, ECHO * beat * sr);
    float er = Delay(el, ECHO * beat * sr);
    *fb = er;

    _out(0, dl + bl + 0.5f * el);
    _out(1, dr + br + 0.5f * er);
}
