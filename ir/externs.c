/* externs.c — finding the C functions behind `extern` declarations.
 *
 * An extern names "lib.so:symbol" and a derivative symbol in the same
 * library, both float(float).  Libraries stay loaded for the life of the
 * process (dlclose would invalidate pointers kept in compiled kernels). */
#include "ir.h"

#include <dlfcn.h>
#include <stdio.h>

bool ir_resolve_externs(Model *m, char *err, size_t errlen)
{
    for (int i = 0; i < m->n_externs; i++) {
        Extern *x = &m->externs[i];
        if (x->fn_f)
            continue;
        void *lib = dlopen(x->lib, RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            snprintf(err, errlen, "extern '%s': cannot load library '%s': %s", x->name, x->lib, dlerror());
            return false;
        }
        x->fn_f = dlsym(lib, x->sym);
        x->grad_fn_f = dlsym(lib, x->grad_sym);
        if (!x->fn_f || !x->grad_fn_f) {
            snprintf(err, errlen, "extern '%s': library '%s' has no symbol '%s'", x->name, x->lib,
                     x->fn_f ? x->grad_sym : x->sym);
            return false;
        }
    }
    return true;
}
