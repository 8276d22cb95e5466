// finding: #12 finding 3: clock_settime (and settimeofday) from a patch set the machine's clock
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
    /* Set the clock to what it reads now: harmless even where it is let through. */
    long ts[2];
    if (sc(228, 0 /* CLOCK_REALTIME */, (long)ts, 0, 0, 0, 0) == 0) { /* clock_gettime */
        if (sc(227, 0, (long)ts, 0, 0, 0, 0) >= 0) escaped = 1;          /* clock_settime */
        long tv[2];
        tv[0] = ts[0];
        tv[1] = ts[1] / 1000;
        if (sc(164, (long)tv, 0, 0, 0, 0, 0) >= 0) escaped = 1;          /* settimeofday */
    }
#endif
}

/* Any attack that worked silences the patch: "the sound goes on" means every one failed. */
void play(void) {
    float s = 0.2f * Cycle(440);
    _out(0, escaped ? 0.0f : s);
}
