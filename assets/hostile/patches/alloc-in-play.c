// finding: issue 14 #4: calloc/malloc are bound for generated C's compiled(); in play() they must stay refused (NULL, reported)
// expect: fault: AllocInPlay
// A patch that allocates every frame, as careless C does: it gets NULL (never
// memory that grows while audio runs) and the sine goes on.
#include <stdlib.h>

void play(void) {
    float *p = malloc(1 << 20);
    if (p) p[0] = 1.0f;
    free(p);
    _out(0, 0.2f * Cycle(440));
}
