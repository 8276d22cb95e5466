// finding: #12 finding 3: syslog let a patch read (and could clear) the kernel log
// expect: denied
// Each attack runs once, when the patch is installed (compiled()), through
// inline-asm `syscall` on x86_64; elsewhere the patch only plays.

static int escaped;

#include "raw_syscall.h"

void compiled(void) {
#if defined(__x86_64__)
    static char buf[4096];
    if (sc(103, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, 0, 0, 0, 0, 0) >= 0) escaped = 1;
    if (sc(103, 3 /* SYSLOG_ACTION_READ_ALL */, (long)buf, sizeof buf, 0, 0, 0) >= 0) escaped = 1;
#endif
}

/* Any attack that worked silences the patch: "the sound goes on" means every one failed. */
void play(void) {
    float s = 0.2f * Cycle(440);
    _out(0, escaped ? 0.0f : s);
}
