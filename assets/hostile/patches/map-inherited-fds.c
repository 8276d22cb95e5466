// finding: issue 12 #2: a worker maps the engine's memory file through an inherited descriptor and zeroes its header
// expect: denied
// Every descriptor 0..1023 is tried with mmap(MAP_SHARED, read-write) and,
// where that works, the first page is zeroed, as the attack did to the shared
// header (after which no new worker could start). A worker now holds only
// stdin, stdout and stderr (on /dev/null): nothing maps.
static float phase;

#if defined(__x86_64__)
/* syscall(a[0], a[1..6]): arguments loaded from memory (TinyCC has no register variables). */
static long sys6(long *a) {
    long ret;
    __asm__ volatile("movq 8(%%rbx), %%rdi\n\tmovq 16(%%rbx), %%rsi\n\tmovq 24(%%rbx), %%rdx\n\t"
                     "movq 32(%%rbx), %%r10\n\tmovq 40(%%rbx), %%r8\n\tmovq 48(%%rbx), %%r9\n\t"
                     "movq 0(%%rbx), %%rax\n\tsyscall"
                     : "=a"(ret) : "b"(a) : "rcx", "r11", "rdi", "rsi", "rdx", "r10", "r8", "r9", "memory");
    return ret;
}
#endif

void compiled(void) {
#if defined(__x86_64__)
    int mapped = 0;
    for (long fd = 0; fd < 1024; fd++) {
        long a[7] = {9 /* mmap */, 0, 4096, 3 /* RW */, 1 /* MAP_SHARED */, fd, 0};
        long p = sys6(a);
        if (p > 0 && p < -4096L) {
            char *c = (char *)p;
            for (int i = 0; i < 4096; i++) c[i] = 0;
            mapped++;
        }
    }
    *_int(0) = mapped;
#endif
}

void play(void) {
    phase += 440.0f / 48000.0f;
    if (phase >= 1.0f) phase -= 1.0f;
    float tri = 4.0f * (phase < 0.5f ? phase : 1.0f - phase) - 1.0f;
    /* Silent if anything was mapped: the runner hears the difference. */
    _out(0, *_int(0) == 0 ? 0.2f * tri : 0.0f);
}
