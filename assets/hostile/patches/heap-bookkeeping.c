// finding: issue 14 #4: the heap's used counts live in the state memory, where a patch can overwrite them before it allocates
// expect: fault: HeapExhausted
// compiled() writes all-ones over the six words before _float(0) (the heap's
// used counts), then asks for memory: every use of a count is bounded by the
// extent, so the answer is NULL and a fault, never memory outside the heap
// (and a copy between memories never carries more than an extent).
#include <stdlib.h>

static float *buf;

void compiled(void) {
    unsigned *words = (unsigned *)_float(0);
    for (int i = 1; i <= 6; i++) words[-i] = 0xffffffffu;
    buf = calloc(1, 4096);
}

void play(void) {
    if (buf) buf[0] += 1.0f;
    _out(0, 0.2f * Cycle(440));
}
