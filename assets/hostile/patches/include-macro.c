// finding: issue 12 finding 5: an include of a macro-expanded name (#include F) bypassed the include guard
// expect: compile-error: computed #include
#define F "/dev/zero"
#include F
void play(void) { _out(0, 0.2f * Cycle(440)); }
