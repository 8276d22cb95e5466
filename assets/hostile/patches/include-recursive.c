// finding: issue 12 finding 5: a file that includes itself twice per level (2^32 opens before TinyCC's depth limit)
// expect: compile-error: nested
#include "include-recursive.c"
#include "include-recursive.c"
void play(void) { _out(0, 0.2f * Cycle(440)); }
