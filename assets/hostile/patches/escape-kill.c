// finding: #12 finding 4: an offline render ran inline-asm kill(PID, SIGKILL) in the clavm process and killed another process
// expect: denied
#include "raw_syscall.h" /* sc(): x86_64 system calls without libc */
#define AT_FDCWD (-100)

/* The victim's pid comes as parameter 0 (clavm render --param 0=PID); without
   one (0 or 1) there is no attack: kill(0) or kill(-1) would hit the runner. */
static int attack(void) {
    long pid = (long)_p(0);
    if (pid <= 1) return 0;
    return sc(62, pid, 9, 0, 0, 0, 0) == 0;
}

void play(void) {
    int *tried = _int(4095);
    float *escaped = _float(4095);
    if (*tried == 0) {
        *tried = 1;
        *escaped = attack() ? 0.5f : 0.0f;
    }
    /* The sound goes on whatever the attack did; channel 1 tells whether it got out. */
    _out(0, 0.2f * Cycle(440));
    _out(1, *escaped);
}
