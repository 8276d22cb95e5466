// finding: issue 12 finding 5: an include path that climbs out of the allowed folders
// expect: compile-error: outside the folders
#include "../../../../../../../../../../etc/hostname"
void play(void) { _out(0, 0.2f * Cycle(440)); }
