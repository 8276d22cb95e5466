// finding: issue 12 finding 5: a line splice inside the word include bypassed the include guard
// expect: compile-error: /dev/zero is a character device
#inc\
lude "/dev/zero"
void play(void) { _out(0, 0.2f * Cycle(440)); }
