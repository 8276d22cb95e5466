// finding: #12 finding 4: an offline render ran inline-asm unlink/unlinkat in the clavm process and deleted a file
// expect: denied
#include "raw_syscall.h" /* sc(): x86_64 system calls without libc */
#define AT_FDCWD (-100)

/* Returns 1 if the file is gone (the runner creates it first). */
static int attack(void) {
    const char *path = "/tmp/clavm-escape-unlink";
    if (sc(263, AT_FDCWD, (long)path, 0, 0, 0, 0) == 0) return 1; /* unlinkat */
    if (sc(87, (long)path, 0, 0, 0, 0, 0) == 0) return 1;         /* unlink */
    if (sc(82, (long)path, (long)"/tmp/clavm-escape-unlink.moved", 0, 0, 0, 0) == 0) return 1; /* rename */
    return 0;
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
