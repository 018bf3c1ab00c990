/* cmd_train.c — `fepc train` and `fepc eval` on Fashion-MNIST (the default
 * data set): thin over runtime/train.c. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool check_data(const Options *opt)
{
    if (opt->data && strcmp(opt->data, "fashion-mnist")) {
        fprintf(stderr, "fepc: error: unknown data set '%s' (this build reads --data fashion-mnist)\n", opt->data);
        return false;
    }
    return true;
}

static char *model_hash(const char *path)
{
    size_t len = 0;
    char *text = read_file(path, &len);
    char *hex = xmalloc(17);
    snprintf(hex, 17, "%016llx", text ? (unsigned long long)hash_bytes(text, len, 0) : 0ull);
    free(text);
    return hex;
}

int cmd_train(const Options *opt)
{
    if (!check_data(opt))
        return 1;
    Compiler c;
    if (!cli_load_model(&c, opt)) {
        compiler_free(&c);
        return 1;
    }
    char err[512];
    if (c.model->n_externs && !ir_resolve_externs(c.model, err, sizeof err)) {
        fprintf(stderr, "fepc: error: %s\n", err);
        compiler_free(&c);
        return 1;
    }
    char *hash = model_hash(opt->model_path);
    TrainOptions topt = {
        .log_path = opt->log_path,
        .save_path = opt->save_path,
        .resume_path = opt->resume_path,
        .model_hash = hash,
        .limit = opt->limit,
        .clip = opt->clip,
        .progress = isatty(2),
        .f64 = opt->f64,
    };
    Engine engine;
    Jit *jit = NULL;
    int rc = cli_engine(opt, &engine, &jit) ? train_run(&c.diag, c.model, &c.model->train, &topt, engine) : 1;
    jit_free(jit);
    free(hash);
    compiler_free(&c);
    return rc;
}

int cmd_eval(const Options *opt)
{
    if (!check_data(opt))
        return 1;
    Compiler c;
    if (!cli_load_model(&c, opt)) {
        compiler_free(&c);
        return 1;
    }
    Engine engine;
    Jit *jit = NULL;
    int rc = cli_engine(opt, &engine, &jit) ? eval_run(&c.diag, c.model, &c.model->train, opt->params_path, opt->f64, engine) : 1;
    jit_free(jit);
    compiler_free(&c);
    return rc;
}

int cmd_filter(const Options *opt)
{
    if (!opt->data || !opt->out_path) {
        fprintf(stderr, "fepc: filter needs --data S.csv and --out E.csv\n");
        return 2;
    }
    Compiler c;
    if (!cli_load_model(&c, opt)) {
        compiler_free(&c);
        return 1;
    }
    Engine engine;
    Jit *jit = NULL;
    int rc = cli_engine(opt, &engine, &jit)
                 ? filter_run(&c.diag, c.model, &c.model->train, opt->data, opt->out_path, opt->params_path, opt->learn,
                              opt->f64, engine)
                 : 1;
    jit_free(jit);
    compiler_free(&c);
    return rc;
}
