// finding: issue 12 #1: a patch writes past its own state over the state memory's bookkeeping (counts, free lists, a site's chain)
// expect: fault: StateCorrupt
// Pointer arithmetic from _float(0), an ordinary live-coding bug: the words
// before slot 0 are the state memory's counts and free-list heads, and the
// site table and cell pool lie further on. Everything gets garbage and a
// cycle; the engine must cut it at the next swap, not follow it.
static float phase;

void compiled(void) {
    float *f = _float(0);
    unsigned *head = (unsigned *)f - 4;   /* cells_high, cell_free, line_free, lines_high */
    head[0] = 0xffffffffu;
    head[1] = 7;
    head[2] = 0x7fffffffu;
    head[3] = 0xffffffffu;
    unsigned *sites = (unsigned *)((char *)f + 16384 + 32768 + 16384);
    for (int i = 0; i < 4096; i++) {
        sites[i * 6 + 2] = 1;             /* every site's first cell: cell 0 */
        sites[i * 6 + 3] = 0xfffffff0u;    /* and a wild cursor */
    }
    unsigned *cells = sites + 4096 * 6 + 64;
    for (int i = 0; i < 64; i++) {
        cells[i * 8 + 6] = (unsigned)i + 1; /* each cell links to itself */
        cells[i * 8 + 7] = 0xffffffffu;     /* and a wild delay line */
    }
}

void play(void) {
    /* Its own sound does not depend on the builtins it broke. */
    phase += 440.0f / 48000.0f;
    if (phase >= 1.0f) phase -= 1.0f;
    float tri = 4.0f * (phase < 0.5f ? phase : 1.0f - phase) - 1.0f;
    _out(0, 0.2f * tri + 0.0f * Cycle(3) * Phasor(2));
}
