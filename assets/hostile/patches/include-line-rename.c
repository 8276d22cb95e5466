// finding: issue 12 finding 5: #line naming /dev/zero made the diagnostics read the device to place a column
// expect: compile-error: #line
#line 1 "/dev/zero"
void oops(void) { undeclared_here; }
void play(void) { _out(0, 0.2f * Cycle(440)); }
