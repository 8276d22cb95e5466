// finding: issue 12 finding 5: a comment inside #pragma comment(lib) hid the library load from the guard
// expect: compile-error: #pragma comment
# /**/ pragma /**/ comment(lib, "m")
void play(void) { _out(0, 0.2f * Cycle(440)); }
