/* engine_tids(): the engine (the patch's parent) and its threads, for the
 * finding-3 patches that aim at them. Needs raw_syscall.h first. */
#if defined(__x86_64__)
/* The engine (our parent) and every one of its threads, read from
   /proc/PPID/task (reading is allowed); at least the engine itself. */
static int engine_tids(long *out, int max) {
    long ppid = sc(110, 0, 0, 0, 0, 0, 0); /* getppid */
    static char path[48];
    char digits[24];
    int n = 0, i = 0, k;
    long v = ppid;
    const char *head = "/proc/";
    for (k = 0; head[k]; k++) path[i++] = head[k];
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v > 0);
    while (n > 0) path[i++] = digits[--n];
    const char *tail = "/task";
    for (k = 0; tail[k]; k++) path[i++] = tail[k];
    path[i] = 0;
    out[0] = ppid;
    int count = 1;
    long fd = sc(2, (long)path, 0x10000 /* O_RDONLY|O_DIRECTORY */, 0, 0, 0, 0);
    if (fd < 0) return count;
    static char buf[8192];
    long got;
    while ((got = sc(217, fd, (long)buf, sizeof buf, 0, 0, 0)) > 0) { /* getdents64 */
        long off = 0;
        while (off < got) {
            unsigned short reclen = *(unsigned short *)(buf + off + 16);
            const char *name = buf + off + 19;
            long tid = 0;
            if (name[0] >= '0' && name[0] <= '9') {
                for (k = 0; name[k] >= '0' && name[k] <= '9'; k++) tid = tid * 10 + (name[k] - '0');
                if (tid != ppid && count < max) out[count++] = tid;
            }
            off += reclen;
        }
    }
    sc(3, fd, 0, 0, 0, 0, 0); /* close */
    return count;
}
#endif
