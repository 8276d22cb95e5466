// finding: #12 finding 4: an offline render ran inline-asm open/read/write in the clavm process and copied a system file out
// expect: denied
#include "raw_syscall.h" /* sc(): x86_64 system calls without libc */
#define AT_FDCWD (-100)

/* Returns 1 if it wrote a copy of /etc/passwd (reading it is allowed). */
static int attack(void) {
    char buf[4096];
    long in = sc(257, AT_FDCWD, (long)"/etc/passwd", 0, 0, 0, 0);
    if (in < 0) return 0;
    long n = sc(0, in, (long)buf, sizeof buf, 0, 0, 0);
    sc(3, in, 0, 0, 0, 0, 0);
    if (n <= 0) return 0;
    long out = sc(257, AT_FDCWD, (long)"/tmp/clavm-escape-passwd", 01 | 0100 | 01000, 0600, 0, 0);
    if (out < 0) return 0;
    long w = sc(1, out, (long)buf, n, 0, 0, 0);
    sc(3, out, 0, 0, 0, 0, 0);
    return w > 0;
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
