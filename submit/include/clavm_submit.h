/* libclavm_submit: send C patches to a running CLAVM engine over shared memory.
 *
 * Every function is safe to call from any thread. Strings are UTF-8 and
 * NUL-terminated; NULL picks the default. Replies are JSON objects:
 *
 *   {"status": "playing" | "rejected" | "failed" | "malformed" | "not_responding"
 *              | "too_large" | "busy" | "error",
 *    "ok": true only when playing, "version": N, "compile_us": ..., "test_us": ...,
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

/* Frees a reply (NULL is ignored). */
void clavm_free(const char *reply);

/* Sets _p(index) (kind 0), _i(index) (kind 1) or _cc(index) (kind 2, 0..1).
 * Returns 0, or -1 if the engine is not running or its queue is full. */
int clavm_param(const char *engine, int kind, int index, double value);

#ifdef __cplusplus
}
#endif

#endif
