// finding: #12 finding 3: SysV shmget from a patch made segments that outlive the engine
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
