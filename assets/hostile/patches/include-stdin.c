// finding: issue 12 finding 5: #include "-" made TinyCC read its standard input
// expect: compile-error: standard input
#include "-"
void play(void) { _out(0, 0.2f * Cycle(440)); }
