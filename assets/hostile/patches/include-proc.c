// finding: issue 12 finding 5: #include of a /proc file (regular, size 0, not a header)
// expect: compile-error: outside the folders
#include "/proc/self/environ"
void play(void) { _out(0, 0.2f * Cycle(440)); }
