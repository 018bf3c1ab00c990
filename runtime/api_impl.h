/* api_impl.h — what the C API's files (api.c, api_*.c) share: the
 * definitions behind fep.h's opaque handles and the error reporting.
 *
 * A FepModule owns a compiled model and the engine that runs it.  A
 * FepSession wraps a runtime Session, its optimizer (made on first use,
 * shared by fep_learn and fep_fit so that Adam's moments carry over) and,
 * when opened with options, the thread pool its engine runs on.  Every
 * failing call leaves its message in a thread-local buffer
 * (fep_last_error); diagnostics written through the model's Diag are
 * captured into that message, never printed. */
#ifndef FEP_API_IMPL_H
#define FEP_API_IMPL_H

#include <stdio.h>

#include "../codegen/codegen.h"
#include "fep.h"

struct FepModule {
    Compiler c;
    Engine engine;
    Jit *jit;
    AotModule *aot;
};

struct FepSession {
    FepModule *module;
    Session *s;
    Optimizer *optim;
    bool *clamped;        /* per tensor */
    bool relaxed;         /* fep_relax ran since the last change */
    Pool *pool;           /* fep_session_open: the threads its engine uses; NULL = serial */
};

/* Sets the thread's last error and returns code. */
FepStatus api_fail(FepStatus code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clears the last error; returns FEP_OK. */
FepStatus api_ok(void);

/* Copies n values between `data` (doubles when f64, else floats) and the
 * session's storage of NAME, converting to the session's precision:
 * into it (write: a tensor or prev.NODE) or out of it (also error.NODE and
 * grad.PARAM).  n must equal the buffer's size; `fn` names the caller in
 * messages. */
FepStatus api_transfer(FepSession *s, const char *name, void *data, size_t n, bool f64, bool write, const char *fn);

/* Diagnostics written to a Diag while a capture is open are kept in
 * memory; api_capture_end returns them (caller frees; "" when none) and
 * points the Diag back at stderr. */
typedef struct ApiCapture {
    Diag *diag;
    FILE *stream;
    char *text;
    size_t len;
} ApiCapture;
void api_capture_begin(ApiCapture *c, Diag *d);
char *api_capture_end(ApiCapture *c);

#endif
