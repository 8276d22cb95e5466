// finding: issue 12 finding 5: a comment between # and include bypassed the include guard
// expect: compile-error: /dev/zero is a character device
# /**/ include "/dev/zero"
void play(void) { _out(0, 0.2f * Cycle(440)); }
