/* cmd_inspect.c — the commands that look at a model without running it:
 * check, explain and emit.  Also the shared model loader that applies
 * `--key value` train overrides through the same checks as the file. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Applies every --key value override through the train- or agent-block checks. */
static bool apply_overrides(Compiler *c, const Options *opt)
{
    for (int i = 0; i < opt->n_overrides; i++) {
        const TrainOverride *o = &opt->overrides[i];
        char name[64];
        snprintf(name, sizeof name, "--%s", o->key);
        int file = diag_add_file(&c->diag, name, o->value, strlen(o->value));
        ParseResult r = {0};
        if (!parse_source(&c->diag, &c->arena, file, PARSE_EXPR, &r))
            return false;
        Span whole = {file, 0, (unsigned)strlen(o->value)};
        /* an agent's --key value sets its agent keys; a graph's, its train keys */
        if (!(c->model->agent ? ir_apply_agent_setting : ir_apply_train_setting)(&c->diag, c->model, o->key, whole,
                                                                                  r.expr))
            return false;
    }
    return true;
}

bool cli_load_model(Compiler *c, const Options *opt)
{
    return compile_model(c, opt->model_path, NULL, stderr) && apply_overrides(c, opt);
}

bool cli_engine(const Options *opt, Engine *out, Jit **jit)
{
    *jit = NULL;
    if (!strcmp(opt->engine, "interp")) {
        *out = engine_interp();
        return true;
    }
    char err[512];
    *jit = jit_new(err, sizeof err);
    if (!*jit) {
        fprintf(stderr, "fepc: error: cannot start the JIT: %s\n", err);
        return false;
    }
    *out = engine_jit(*jit);
    return true;
}

/* --module m.so: the model comes from the source the module embeds, the
 * kernels from the module itself. */
static bool open_module(Cli *cli, const Options *opt)
{
    char err[1024];
    const char *source;
    cli->aot = aot_open(opt->module_path, &source, err, sizeof err);
    if (!cli->aot) {
        fprintf(stderr, "fepc: error: %s\n", err);
        return false;
    }
    if (!compile_model(&cli->c, opt->module_path, source, stderr) || !apply_overrides(&cli->c, opt))
        return false;
    if (!aot_bind(cli->aot, &cli->c.diag, cli->c.model, err, sizeof err)) {
        fprintf(stderr, "fepc: error: %s\n", err);
        return false;
    }
    cli->engine = engine_aot(cli->aot);
    return true;
}

static int env_int(const char *a, const char *b)
{
    const char *v = getenv(a) ? getenv(a) : getenv(b);
    return v ? atoi(v) : 0;
}

int cli_launched_ranks(void)
{
    int n = env_int("OMPI_COMM_WORLD_SIZE", "PMI_SIZE");
    return n > 1 ? n : 1;
}

/* --threads' default: the machine's cores, shared by the ranks an MPI
 * launcher started on this machine. */
static int default_threads(void)
{
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN), local = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS");
    int n = local > 1 ? cores / local : cores;
    return n > 1 ? n : 1;
}

bool cli_open(Cli *cli, const Options *opt)
{
    memset(cli, 0, sizeof *cli);
    bool ok = opt->module_path ? open_module(cli, opt)
                               : cli_load_model(&cli->c, opt) && cli_engine(opt, &cli->engine, &cli->jit);
    if (ok) {
        int threads = opt->threads > 0 ? opt->threads : default_threads();
        cli->pool = pool_new(cli->engine, threads);
        cli->engine = engine_parallel(cli->pool);
    }
    return ok;
}

void cli_close(Cli *cli)
{
    pool_free(cli->pool);
    jit_free(cli->jit);
    compiler_free(&cli->c);
    aot_close(cli->aot);
    memset(cli, 0, sizeof *cli);
}

/* The derivation as the equations read (check, explain, emit --derived). */
static Program *derive_default(Compiler *c)
{
    Model *m = c->model;
    return pass_derive(&c->diag, m, m->train.rule, pass_clamp_set(m, true));
}

/* The program as sessions run it: hoisted and simplified (emit --llvm). */
static Program *derive_executed(Compiler *c)
{
    Model *m = c->model;
    return pass_derive_cached(&c->diag, m, m->train.rule, pass_clamp_set(m, true));
}

int cmd_check(const Options *opt)
{
    Compiler c;
    bool ok = cli_load_model(&c, opt) && derive_default(&c);
    if (ok)
        (c.model->agent ? ir_print_agent_summary : ir_print_summary)(stdout, c.model);
    compiler_free(&c);
    return ok ? 0 : 1;
}

int cmd_explain(const Options *opt)
{
    Compiler c;
    Program *p = NULL;
    bool ok = cli_load_model(&c, opt) && (p = derive_default(&c));
    if (ok)
        (c.model->agent ? ir_print_agent_explain : ir_print_explain)(stdout, p);
    compiler_free(&c);
    return ok ? 0 : 1;
}

int cmd_emit(const Options *opt)
{
    if (!opt->emit_ir && !opt->emit_derived && !opt->emit_llvm) {
        fprintf(stderr, "fepc: emit needs --ir, --derived or --llvm\n");
        return 2;
    }
    Compiler c;
    Program *p = NULL;
    bool ok = cli_load_model(&c, opt) && (!opt->emit_derived || (p = derive_default(&c)));
    if (ok && opt->emit_ir)
        ir_print_graph(stdout, c.model);
    if (ok && p && opt->emit_derived)
        ir_print_program(stdout, p);
    if (ok && opt->emit_llvm && (ok = (p = derive_executed(&c)) != NULL)) {
        char err[512];
        char *text = jit_llvm_text(c.model, p, opt->f64, true, err, sizeof err);
        if (text)
            fputs(text, stdout);
        else
            fprintf(stderr, "fepc: error: %s\n", err);
        ok = text != NULL;
        free(text);
    }
    compiler_free(&c);
    return ok ? 0 : 1;
}

int cmd_build(const Options *opt)
{
    if (!opt->out_path) {
        fprintf(stderr, "fepc: build needs -o m.so\n");
        return 2;
    }
    Compiler c;
    bool ok = cli_load_model(&c, opt);
    char err[1024];
    if (ok) {
        char *source = read_file(opt->model_path, NULL);
        char header[4096];
        snprintf(header, sizeof header, "%s", opt->out_path);
        size_t n = strlen(header);
        if (n > 3 && !strcmp(header + n - 3, ".so"))
            header[n - 3] = 0;
        snprintf(header + strlen(header), sizeof header - strlen(header), ".h");
        ok = source && aot_build(c.model, source, opt->out_path, header, err, sizeof err);
        if (!ok)
            fprintf(stderr, "fepc: error: %s\n", source ? err : "cannot read the model file");
        free(source);
    }
    compiler_free(&c);
    return ok ? 0 : 1;
}
