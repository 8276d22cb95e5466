// finding: #12 finding 3: syslog let a patch read (and could clear) the kernel log
// expect: denied
// Each attack runs once, when the patch is installed (compiled()), through
// inline-asm `syscall` on x86_64; elsewhere the patch only plays.

static int escaped;

#if defined(__x86_64__)
/* A raw system call, as any C can make one: no libc, nothing to intercept. */
static long sc(long n, long a, long b, long c, long d, long e, long f) {
    long r;
    long rest[3];
    rest[0] = d;
    rest[1] = e;
    rest[2] = f;
    __asm__ __volatile__("movq 0(%5), %%r10\n\t"
                         "movq 8(%5), %%r8\n\t"
                         "movq 16(%5), %%r9\n\t"
                         "syscall"
                         : "=a"(r)
                         : "a"(n), "D"(a), "S"(b), "d"(c), "r"(rest)
                         : "rcx", "r11", "r8", "r9", "r10", "memory");
    return r;
}
#endif

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
