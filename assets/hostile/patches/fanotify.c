// finding: #12 finding 3: fanotify_init let a patch watch (and, with permission events, block) file access machine-wide
// expect: denied
// Each attack runs once, when the patch is installed (compiled()), through
// inline-asm `syscall` on x86_64; elsewhere the patch only plays.

static int escaped;

#include "raw_syscall.h"

void compiled(void) {
#if defined(__x86_64__)
    long fd = sc(300, 0 /* FAN_CLASS_NOTIF */, 0 /* O_RDONLY */, 0, 0, 0, 0); /* fanotify_init */
    if (fd >= 0) {
        escaped = 1;
        sc(3, fd, 0, 0, 0, 0, 0); /* close */
    }
#endif
}

/* Any attack that worked silences the patch: "the sound goes on" means every one failed. */
void play(void) {
    float s = 0.2f * Cycle(440);
    _out(0, escaped ? 0.0f : s);
}
