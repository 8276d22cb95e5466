// bars.c: the interval-bar tree played like the root box would: every bar
// is a voice at its note, and touching a bar plays it. Start with a tree:
//   clavm render bars.c --bars assets/bars/a-major-scale.bars -o bars.wav
// (bars marked "touched" in the file sound; in the app, touch them).

#define VOICES 32   // the loop's call sites are per occurrence: one state per voice

void play(void) {
    float mix = 0.0f;
    int n = _bars();
    for (int i = 0; i < n && i < VOICES; i++) {
        // A soft attack and a longer release, so a touch never clicks.
        float gate = _bar_gate(i);
        float env = Onepole(gate, gate > 0.5f ? 40.0f : 6.0f);
        float f = _bar_freq(i);
        // A little bell: the note and a quiet octave-and-a-fifth above it.
        mix += env * (Cycle(f) + 0.2f * Cycle(f * 3.0f));
    }
    float out = 0.25f * tanhf(mix);
    _out(0, out);
    _out(1, out);
}
