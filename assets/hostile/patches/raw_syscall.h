/* A raw system call, as any C can make one: no libc, nothing to intercept.
 * Shared by the hostile patches beside it (x86_64 only; elsewhere they only play). */
#if defined(__x86_64__)
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
