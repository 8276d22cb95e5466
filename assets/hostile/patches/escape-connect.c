// finding: #12 finding 4: an offline render ran inline-asm socket+connect in the clavm process and reached a local socket
// expect: denied
#include "raw_syscall.h" /* sc(): x86_64 system calls without libc */
#define AT_FDCWD (-100)

/* Returns 1 if it connected to the runner's socket. */
static int attack(void) {
    static const char path[] = "/tmp/clavm-escape-connect.sock";
    char addr[110];
    int i;
    for (i = 0; i < 110; i++) addr[i] = 0;
    addr[0] = 1; /* AF_UNIX, little-endian sa_family */
    for (i = 0; path[i] && i < 107; i++) addr[2 + i] = path[i];
    long fd = sc(41, 1, 1, 0, 0, 0, 0); /* socket(AF_UNIX, SOCK_STREAM, 0) */
    if (fd < 0) return 0;
    long r = sc(42, fd, (long)addr, 110, 0, 0, 0);
    if (r == 0) sc(1, fd, (long)"escaped\n", 8, 0, 0, 0);
    sc(3, fd, 0, 0, 0, 0, 0);
    return r == 0;
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
