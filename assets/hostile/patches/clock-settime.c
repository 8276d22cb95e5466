// finding: #12 finding 3: clock_settime (and settimeofday) from a patch set the machine's clock
// expect: denied
// Each attack runs once, when the patch is installed (compiled()), through
// inline-asm `syscall` on x86_64; elsewhere the patch only plays.

static int escaped;

#include "raw_syscall.h"

void compiled(void) {
#if defined(__x86_64__)
    /* Set the clock to what it reads now: harmless even where it is let through. */
    long ts[2];
    if (sc(228, 0 /* CLOCK_REALTIME */, (long)ts, 0, 0, 0, 0) == 0) { /* clock_gettime */
        if (sc(227, 0, (long)ts, 0, 0, 0, 0) >= 0) escaped = 1;          /* clock_settime */
        long tv[2];
        tv[0] = ts[0];
        tv[1] = ts[1] / 1000;
        if (sc(164, (long)tv, 0, 0, 0, 0, 0) >= 0) escaped = 1;          /* settimeofday */
    }
#endif
}

/* Any attack that worked silences the patch: "the sound goes on" means every one failed. */
void play(void) {
    float s = 0.2f * Cycle(440);
    _out(0, escaped ? 0.0f : s);
}
