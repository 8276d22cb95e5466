// finding: #12 finding 3: scheduling calls aimed at the engine's threads made its SCHED_FIFO audio thread SCHED_IDLE and pinned it to one CPU
// expect: denied
// Each attack runs once, when the patch is installed (compiled()), through
// inline-asm `syscall` on x86_64; elsewhere the patch only plays.

static int escaped;

#include "raw_syscall.h"

#include "engine_threads.h"

void compiled(void) {
#if defined(__x86_64__)
    static long tids[256];
    int n = engine_tids(tids, 256), i;
    long idle_param = 0;                     /* struct sched_param { 0 } */
    unsigned long one_cpu = 1;               /* CPU 0 only */
    static unsigned int attr[14];            /* struct sched_attr */
    attr[0] = 48;                            /* size (version 0) */
    attr[1] = 5;                             /* SCHED_IDLE */
    for (i = 0; i < n; i++) {
        long t = tids[i];
        if (sc(144, t, 5 /* SCHED_IDLE */, (long)&idle_param, 0, 0, 0) >= 0) escaped = 1; /* sched_setscheduler */
        if (sc(142, t, (long)&idle_param, 0, 0, 0, 0) >= 0) escaped = 1;                  /* sched_setparam */
        if (sc(314, t, (long)attr, 0, 0, 0, 0) >= 0) escaped = 1;                          /* sched_setattr */
        if (sc(203, t, sizeof one_cpu, (long)&one_cpu, 0, 0, 0) >= 0) escaped = 1;         /* sched_setaffinity */
        if (sc(141, 0 /* PRIO_PROCESS */, t, 19, 0, 0, 0) >= 0) escaped = 1;               /* setpriority */
        if (sc(251, 1 /* IOPRIO_WHO_PROCESS */, t, 3 << 13 /* IDLE */, 0, 0, 0) >= 0) escaped = 1; /* ioprio_set */
    }
    /* The engine's whole process group and user, in one call each. */
    if (sc(141, 1 /* PRIO_PGRP */, 0, 19, 0, 0, 0) >= 0) escaped = 1;
    if (sc(141, 2 /* PRIO_USER */, 0, 19, 0, 0, 0) >= 0) escaped = 1;
    if (sc(251, 2 /* IOPRIO_WHO_PGRP */, 0, 3 << 13, 0, 0, 0) >= 0) escaped = 1;
#endif
}

/* Any attack that worked silences the patch: "the sound goes on" means every one failed. */
void play(void) {
    float s = 0.2f * Cycle(440);
    _out(0, escaped ? 0.0f : s);
}
