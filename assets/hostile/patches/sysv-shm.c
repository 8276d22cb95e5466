// finding: #12 finding 3: SysV shmget from a patch made segments that outlive the engine
// expect: denied
// Each attack runs once, when the patch is installed (compiled()), through
// inline-asm `syscall` on x86_64; elsewhere the patch only plays.

static int escaped;

#include "raw_syscall.h"

void compiled(void) {
#if defined(__x86_64__)
    /* Each object made is removed at once: the attack is that it could be made at all. */
    long id = sc(29, 0 /* IPC_PRIVATE */, 4096, 01000 | 0600 /* IPC_CREAT */, 0, 0, 0); /* shmget */
    if (id >= 0) {
        escaped = 1;
        sc(31, id, 0 /* IPC_RMID */, 0, 0, 0, 0); /* shmctl */
    }
    id = sc(64, 0, 1, 01000 | 0600, 0, 0, 0); /* semget */
    if (id >= 0) {
        escaped = 1;
        sc(66, id, 0, 0 /* IPC_RMID */, 0, 0, 0); /* semctl */
    }
    id = sc(68, 0, 01000 | 0600, 0, 0, 0, 0); /* msgget */
    if (id >= 0) {
        escaped = 1;
        sc(71, id, 0 /* IPC_RMID */, 0, 0, 0, 0); /* msgctl */
    }
#endif
}

/* Any attack that worked silences the patch: "the sound goes on" means every one failed. */
void play(void) {
    float s = 0.2f * Cycle(440);
    _out(0, escaped ? 0.0f : s);
}
