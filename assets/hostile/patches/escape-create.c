// finding: #12 finding 4: an offline render ran inline-asm openat(O_CREAT) in the clavm process and created a file
// expect: denied
#include "raw_syscall.h" /* sc(): x86_64 system calls without libc */
#define AT_FDCWD (-100)

/* Returns 1 if it created the file. */
static int attack(void) {
    long fd = sc(257, AT_FDCWD, (long)"/tmp/clavm-escape-create", 01 | 0100 | 01000, 0644, 0, 0);
    if (fd < 0) return 0;
    sc(1, fd, (long)"escaped\n", 8, 0, 0, 0);
    sc(3, fd, 0, 0, 0, 0, 0);
    return 1;
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
