// finding: #12 finding 3: prctl(PR_SET_PDEATHSIG, 0) let a worker survive kill -9 of the engine
// expect: denied
// Each attack runs once, when the patch is installed (compiled()), through
// inline-asm `syscall` on x86_64; elsewhere the patch only plays.

static int escaped;

#include "raw_syscall.h"

void compiled(void) {
#if defined(__x86_64__)
    if (sc(157, 1 /* PR_SET_PDEATHSIG */, 0, 0, 0, 0, 0) >= 0) escaped = 1; /* prctl */
    /* Nor may it leave the engine's session or process group. */
    if (sc(112, 0, 0, 0, 0, 0, 0) >= 0) escaped = 1;                     /* setsid */
#endif
}

/* Any attack that worked silences the patch: "the sound goes on" means every one failed. */
void play(void) {
    float s = 0.2f * Cycle(440);
    _out(0, escaped ? 0.0f : s);
}
