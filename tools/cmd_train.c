/* cmd_train.c — `fepc train`, `fepc eval` and `fepc filter`: thin over
 * runtime/train.c and filter.c.  Data is Fashion-MNIST (the default) or
 * the `--bind NODE=FILE` sources, split here into node and path. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool check_data(const Options *opt)
{
    if (opt->data && opt->n_binds) {
        fprintf(stderr, "fepc: error: --data and --bind do not combine (--bind replaces the data set)\n");
        return false;
    }
    if (opt->data && strcmp(opt->data, "fashion-mnist")) {
        fprintf(stderr,
                "fepc: error: unknown data set '%s' (this build reads --data fashion-mnist; bind files to nodes "
                "with --bind NODE=FILE)\n",
                opt->data);
        return false;
    }
    return true;
}

/* "x=data.npy" → {"x", "data.npy"}; the node names are malloc'd. */
static DataSource *split_binds(const Options *opt)
{
    DataSource *src = xcalloc((size_t)opt->n_binds + 1, sizeof *src);
    for (int i = 0; i < opt->n_binds; i++) {
        const char *eq = strchr(opt->binds[i], '=');
        char *node = xmalloc((size_t)(eq - opt->binds[i]) + 1);
        memcpy(node, opt->binds[i], (size_t)(eq - opt->binds[i]));
        node[eq - opt->binds[i]] = 0;
        src[i].node = node;
        src[i].path = eq + 1;
    }
    return src;
}

static void free_binds(DataSource *src, int n)
{
    for (int i = 0; i < n; i++)
        free((char *)src[i].node);
    free(src);
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
    DataSource *src = split_binds(opt);
    TrainOptions topt = {
        .log_path = opt->log_path,
        .save_path = opt->save_path,
        .resume_path = opt->resume_path,
        .model_hash = hash,
        .limit = opt->limit,
        .val = opt->val,
        .sources = src,
        .n_sources = opt->n_binds,
        .clip = opt->clip,
        .progress = isatty(2),
        .f64 = opt->f64,
    };
    int rc = train_run(&cli.c.diag, cli.c.model, &cli.c.model->train, &topt, cli.engine);
    free_binds(src, opt->n_binds);
    free(hash);
    cli_close(&cli);
    return rc;
}

int cmd_eval(const Options *opt)
{
    if (!check_data(opt))
        return 1;
    Cli cli;
    DataSource *src = split_binds(opt);
    TrainOptions topt = {.f64 = opt->f64, .val = opt->val, .sources = src, .n_sources = opt->n_binds};
    int rc = cli_open(&cli, opt)
                 ? eval_run(&cli.c.diag, cli.c.model, &cli.c.model->train, opt->params_path, &topt, cli.engine)
                 : 1;
    free_binds(src, opt->n_binds);
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
