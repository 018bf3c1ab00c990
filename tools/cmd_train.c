/* cmd_train.c — `fepc train`, `fepc eval` and `fepc filter`: thin over
 * runtime/train.c and filter.c.  Data is Fashion-MNIST (the default) or
 * the `--bind NODE=FILE` sources, split here into node and path.  Started
 * by an MPI launcher (`mpirun -np P fepc train ...`), train and eval join
 * the other ranks (runtime/comm_mpi.c); every rank then agrees that all of
 * them compiled the model before the run begins. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef FEP_HAVE_MPI
#include "../runtime/comm_mpi.h"
#endif

/* Opens the ranks of a data-parallel run into *out (NULL: this process
 * alone); false after a message when this process cannot join them. */
static bool open_ranks(Comm **out)
{
    *out = NULL;
    int ranks = cli_launched_ranks();
    if (ranks <= 1)
        return true;
#ifdef FEP_HAVE_MPI
    *out = comm_mpi_launch();
    return *out != NULL;
#else
    fprintf(stderr, "fepc: error: started by an MPI launcher as one of %d ranks, but this fepc was built without MPI "
            "(install libopenmpi-dev and rebuild, or run fepc without mpirun)\n", ranks);
    return false;
#endif
}

static void close_ranks(Comm *c)
{
#ifdef FEP_HAVE_MPI
    if (c)
        comm_mpi_finish(c);
#endif
}

/* True on every rank when every rank has `ok`; rank 0 says so when only
 * others failed (each printed its own message). */
static bool all_started(Comm *c, bool ok)
{
    if (!c)
        return ok;
    bool all = dist_all_ok(c, ok);
    if (!all && ok && c->rank == 0)
        fprintf(stderr, "fepc: error: another rank failed to start (its message is above)\n");
    return all;
}

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

/* The model, compiled, with its externs resolved; false after a message.
 * *opened says whether cli needs cli_close. */
static bool open_model(Cli *cli, const Options *opt, bool *opened)
{
    *opened = false;
    if (!check_data(opt))
        return false;
    *opened = true;
    if (!cli_open(cli, opt))
        return false;
    char err[512];
    if (cli->c.model->n_externs && !ir_resolve_externs(cli->c.model, err, sizeof err)) {
        fprintf(stderr, "fepc: error: %s\n", err);
        return false;
    }
    return true;
}

/* train and eval: join the ranks, compile, agree, run `train` (1) or eval. */
static int run(const Options *opt, bool train)
{
    Comm *comm;
    if (!open_ranks(&comm))
        return 1;
    Cli cli;
    bool opened;
    int rc = 1;
    if (all_started(comm, open_model(&cli, opt, &opened))) {
        char *hash = model_hash(opt->model_path ? opt->model_path : opt->module_path);
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
            .progress = train && isatty(2),
            .f64 = opt->f64,
            .comm = comm,
        };
        Model *m = cli.c.model;
        rc = train ? train_run(&cli.c.diag, m, &m->train, &topt, cli.engine)
                   : eval_run(&cli.c.diag, m, &m->train, opt->params_path, &topt, cli.engine);
        free_binds(src, opt->n_binds);
        free(hash);
    }
    if (opened)
        cli_close(&cli);
    close_ranks(comm);
    return rc;
}

int cmd_train(const Options *opt) { return run(opt, true); }

int cmd_eval(const Options *opt) { return run(opt, false); }

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
