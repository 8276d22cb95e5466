// finding: issue 12 finding 5: #include of /dev/zero made clavm check grow to several GB
// expect: compile-error: /dev/zero is a character device
#include "/dev/zero"
void play(void) { _out(0, 0.2f * Cycle(440)); }
