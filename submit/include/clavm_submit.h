/* libclavm_submit: send C patches to a running CLAVM engine over shared memory.
 *
 * Every function is safe to call from any thread. Strings are UTF-8 and
 * NUL-terminated; NULL picks the default. Replies are JSON objects:
 *
 *   {"status": "playing" | "waiting" | "rejected" | "failed" | "malformed"
 *              | "not_responding" | "too_large" | "busy" | "error",
 *    "ok": true when playing, or compiled and waiting for its beat (a quantised send), "version": N, "compile_us": ..., "test_us": ...,
 *    "swap_us": ..., "message": "text as the engine wrote it",
 *    "diagnostics": [{"file": "a.c", "line": 3, "col": 5, "severity": "error",
 *                     "message": "..."}]}
 */
#ifndef CLAVM_SUBMIT_H
#define CLAVM_SUBMIT_H

#ifdef __cplusplus
extern "C" {
#endif

/* Sends `code` to the engine named `engine` (NULL: "default") and waits up to
 * `timeout_ms` (<= 0: 2000) for its reply. Never returns NULL. Free the reply
 * with clavm_free. */
const char *clavm_send(const char *engine, const char *code, int timeout_ms);

/* As clavm_send; `name` (NULL: "submit.c") is the file name diagnostics show. */
const char *clavm_send_named(const char *engine, const char *name, const char *code, int timeout_ms);

/* As clavm_send_named, landing on the next multiple of `quant` beats (0: the
 * next block; negative: the engine's own --quant). The reply comes when the
 * patch is compiled and waits for its beat ("waiting"), or plays. */
const char *clavm_send_quant(const char *engine, const char *name, const char *code, double quant, int timeout_ms);

/* Sets _p(index) (kind 0), _i(index) (kind 1), _cc(index) (kind 2, 0..1) or
 * the tempo in BPM (kind 3, index 0). Returns 0, or -1 if the engine is not
 * running or its queue is full. */
int clavm_param(const char *engine, int kind, int index, double value);

/* Frees a reply (NULL is ignored). */
void clavm_free(const char *reply);

#ifdef __cplusplus
}
#endif

#endif
