// finding: issue 12 finding 5: #include_next bypassed the include guard
// expect: compile-error: include_next
#include_next "/dev/zero"
void play(void) { _out(0, 0.2f * Cycle(440)); }
