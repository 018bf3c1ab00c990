/* pipeline.c — the whole front half of the compiler in one place:
 * text → AST → Model → checked Model.  Rules are derived on demand by
 * pass_derive (a model is derived once per rule and clamp set).
 *
 * compile_model is the only function that sequences passes; read it to
 * learn the order. */
#include "passes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool compile_model(Compiler *c, const char *path, const char *text, FILE *diag_out)
{
    memset(c, 0, sizeof *c);
    diag_init(&c->diag, &c->arena, diag_out);
    size_t len = 0;
    char *owned = NULL;
    if (!text) {
        owned = read_file(path, &len);
        if (!owned) {
            diag_error_plain(&c->diag, path, "cannot read model file: %s", strerror(errno));
            return false;
        }
        text = owned;
    } else {
        len = strlen(text);
    }
    int file = diag_add_file(&c->diag, path, text, len);
    free(owned);

    ParseResult parsed = {0};
    if (!parse_source(&c->diag, &c->arena, file, PARSE_MODEL, &parsed))   /* syntax */
        return false;
    c->model = ir_lower(&c->diag, &c->arena, parsed.model, path);           /* names, shapes */
    if (!c->model)
        return false;
    return pass_check(&c->diag, c->model);                                  /* acyclicity, order */
}

void compiler_free(Compiler *c)
{
    arena_free(&c->arena);
    c->model = NULL;
}
