// finding: #12 finding 4: an offline render ran inline-asm fork+execve("/bin/true") in the clavm process
// expect: denied
#include "raw_syscall.h" /* sc(): x86_64 system calls without libc */
#define AT_FDCWD (-100)

/* Returns 1 if it started a process. */
static int attack(void) {
    long pid = sc(57, 0, 0, 0, 0, 0, 0); /* fork */
    if (pid < 0) pid = sc(56, 17, 0, 0, 0, 0, 0); /* clone(SIGCHLD), as glibc's fork */
    if (pid < 0) pid = sc(58, 0, 0, 0, 0, 0, 0); /* vfork */
    if (pid == 0) {
        const char *argv[2];
        argv[0] = "/bin/true";
        argv[1] = 0;
        sc(59, (long)argv[0], (long)argv, 0, 0, 0, 0); /* execve */
        sc(231, 0, 0, 0, 0, 0, 0); /* exit_group: never run the render twice */
    }
    if (pid < 0) return 0;
    sc(61, pid, 0, 0, 0, 0, 0); /* wait4 */
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
