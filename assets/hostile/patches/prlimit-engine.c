// finding: #12 finding 3: prlimit64 on the engine set its RLIMIT_NOFILE to 0 and locked the performer out
// expect: denied
// Each attack runs once, when the patch is installed (compiled()), through
// inline-asm `syscall` on x86_64; elsewhere the patch only plays.

static int escaped;

#include "raw_syscall.h"

#include "engine_threads.h"

void compiled(void) {
#if defined(__x86_64__)
    static long tids[256];
    int n = engine_tids(tids, 256), i;
    static unsigned long zero[2];            /* struct rlimit { cur 0, max 0 } */
    for (i = 0; i < n; i++) {
        if (sc(302, tids[i], 7 /* RLIMIT_NOFILE */, (long)zero, 0, 0, 0) >= 0) escaped = 1; /* prlimit64 */
        if (sc(302, tids[i], 0 /* RLIMIT_CPU */, (long)zero, 0, 0, 0) >= 0) escaped = 1;
    }
#endif
}

/* Any attack that worked silences the patch: "the sound goes on" means every one failed. */
void play(void) {
    float s = 0.2f * Cycle(440);
    _out(0, escaped ? 0.0f : s);
}
