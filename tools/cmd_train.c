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
    Cli cli;
    if (!cli_open(&cli, opt)) {
        cli_close(&cli);
        return 1;
    }
    char err[512];
    if (cli.c.model->n_externs && !ir_resolve_externs(cli.c.model, err, sizeof err)) {
        fprintf(stderr, "fepc: error: %s\n", err);
        cli_close(&cli);
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
    int rc = train_run(&cli.c.diag, cli.c.model, &cli.c.model->train, &topt, cli.engine);
    free(hash);
    cli_close(&cli);
    return rc;
}

int cmd_eval(const Options *opt)
{
    if (!check_data(opt))
        return 1;
    Cli cli;
    int rc = cli_open(&cli, opt)
                 ? eval_run(&cli.c.diag, cli.c.model, &cli.c.model->train, opt->params_path, opt->f64, cli.engine)
                 : 1;
    cli_close(&cli);
    return rc;
}

int cmd_filter(const Options *opt)
{
    if (!opt->data || !opt->out_path) {
        fprintf(stderr, "fepc: filter needs --data S.csv and --out E.csv\n");
        return 2;
    }
    Cli cli;
    int rc = cli_open(&cli, opt) ? filter_run(&cli.c.diag, cli.c.model, &cli.c.model->train, opt->data, opt->out_path,
                                              opt->params_path, opt->learn, opt->f64, cli.engine)
                                 : 1;
    cli_close(&cli);
    return rc;
}
