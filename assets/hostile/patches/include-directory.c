// finding: issue 12 finding 5: #include of a directory
// expect: compile-error: is a directory
#include "/"
void play(void) { _out(0, 0.2f * Cycle(440)); }
