/* fuzz_repl.c — libFuzzer target for the REPL's command parser
 * (repl_command in tools/repl_cmds.c, the entry `fepc repl` feeds every
 * `:command` line to): the input is up to 8 lines; each line that starts
 * with ':' (after blanks) is run, in order, first on a REPL state with no
 * model, then on a fresh one holding a small model (FUZZ_MODEL, compiled
 * with the interpreter engine, so no JIT), until a line asks to quit.  Both
 * states are made by repl_init and freed by repl_free, as cmd_repl does.
 *
 * Not run: the commands that name files (:load, :save, :clamp, :restore),
 * which would read or write arbitrary paths, and a :relax longer than
 * FUZZ_MAX_STEPS steps (a timeout, not a bug).  Lines that are not commands
 * (declarations, expressions) are skipped: fuzz_frontend covers the parser
 * and :set covers expression lowering and evaluation.
 * Seeds: tests/fuzz/corpus/fuzz_repl/.  tests/fuzz/replay.c runs this same
 * function without libFuzzer. */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/repl.h"

#define FUZZ_MAX_LINES 8
#define FUZZ_MAX_STEPS 200

static const char FUZZ_MODEL[] =
    "model repl_fuzz\n"
    "input    x : [2]\n"
    "param    W : [2, 2] = [[1, 0.5], [-0.5, 1]]\n"
    "param    b : [2]    = zeros\n"
    "const    c : [2]    = [0.1, -0.2]\n"
    "latent   h : [2] ~ normal(tanh(W @ x + b) + c)\n"
    "observed y : [1] ~ normal(sum(h), prec = 2)\n"
    "train { rule = pc  steps = 5  step_size = 0.1  optimizer = adam(lr = 0.01) }\n";

/* The model file, written once per process to a mkstemp file under /tmp. */
static char fuzz_model_path[] = "/tmp/fep-fuzz-model-XXXXXX";

static void fuzz_model_remove(void) { unlink(fuzz_model_path); }

static const char *fuzz_model_file(void)
{
    static bool made;
    if (!made) {
        int fd = mkstemp(fuzz_model_path);
        if (fd < 0 || write(fd, FUZZ_MODEL, sizeof FUZZ_MODEL - 1) != (ssize_t)(sizeof FUZZ_MODEL - 1)) {
            perror("fuzz_repl: writing the model file");
            abort();
        }
        close(fd);
        atexit(fuzz_model_remove);
        made = true;
    }
    return fuzz_model_path;
}

static bool fuzz_repl_runnable(const Repl *r, const char *text)
{
    static const char *const file_commands[] = {":load", ":save", ":clamp", ":restore"};
    size_t start = strspn(text, " \t"), end = start;
    while (text[end] && !isspace((unsigned char)text[end]))
        end++;
    size_t n = end - start;
    for (size_t i = 0; i < sizeof file_commands / sizeof *file_commands; i++)
        if (n == strlen(file_commands[i]) && !strncmp(text + start, file_commands[i], n))
            return false;
    if (n == 6 && !strncmp(text + start, ":relax", 6)) {
        while (text[end] && isspace((unsigned char)text[end]))
            end++;
        long steps = text[end] ? strtol(text + end, NULL, 10) : r->s ? r->s->cfg.steps : 0;
        if (steps > FUZZ_MAX_STEPS)
            return false;
    }
    return true;
}

/* Runs the command lines on r; stops at a quit. */
static void fuzz_repl_lines(Repl *r, char **lines, int n)
{
    for (int i = 0; i < n; i++) {
        if (!fuzz_repl_runnable(r, lines[i]))
            continue;
        Line l = {lines[i], strlen(lines[i]), -1, NULL};
        bool go_on = repl_command(r, &l);
        fflush(stdout);
        if (!go_on)
            break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Split into lines (at most FUZZ_MAX_LINES; a NUL ends a line, as it
     * would for the REPL's reader) and keep the command lines. */
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    char *lines[FUZZ_MAX_LINES];
    int n = 0;
    for (char *p = copy, *next; p && n < FUZZ_MAX_LINES; p = next) {
        next = memchr(p, '\n', (size_t)(copy + size - p));
        if (next)
            *next++ = '\0';
        if (p[strspn(p, " \t")] == ':')
            lines[n++] = p;
    }
    if (n) {
        Options opt = {.command = "repl", .engine = "interp"};
        Repl r;
        if (!repl_init(&r, &opt))
            abort();
        fuzz_repl_lines(&r, lines, n);
        repl_free(&r);

        if (!repl_init(&r, &opt))
            abort();
        if (!repl_load(&r, fuzz_model_file()))
            abort();   /* FUZZ_MODEL must compile */
        fuzz_repl_lines(&r, lines, n);
        repl_free(&r);
    }
    free(copy);
    return 0;
}
