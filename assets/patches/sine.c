// sine.c: the simplest patch. One 220 Hz cosine (Cycle) with a gentle
// tremolo: its loudness swells up and down five times a second.
// Try: change FREQ to 330 or 440, make the tremolo faster (RATE 8)
// or deeper (DEPTH 0.8), or add a second Cycle an octave up.

#define FREQ  220.0f   // pitch in Hz
#define RATE  5.0f     // tremolo speed in Hz
#define DEPTH 0.3f     // tremolo depth 0..1

void play(void) {
    // Cycle(RATE) swings -1..1; map it to a gain between 1-DEPTH and 1.
    float trem = 1.0f - DEPTH * (0.5f + 0.5f * Cycle(RATE));
    float s = 0.4f * trem * Cycle(FREQ);
    _out(0, s);
    _out(1, s);
}
