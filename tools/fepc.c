/* fepc.c — the `fepc` driver: argument parsing and command dispatch.
 * Commands live in cmd_*.c; this file only turns argv into Options. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: fepc <command> MODEL.fep [options]\n"
    "\n"
    "commands:\n"
    "  check M.fep                 parse, type-check, derive; print the graph summary\n"
    "  explain M.fep [--rule R]    print the derived equations\n"
    "  emit M.fep --ir|--derived   dump a compiler stage\n"
    "  grad M.fep --batch B.safetensors --out G.safetensors [--params P.safetensors]\n"
    "                              one relaxation and the parameter gradients on one batch\n"
    "  train M.fep [--data fashion-mnist | --bind NODE=FILE ...] [--val N] [--save P.safetensors]\n"
    "              [--log L.csv] [--resume P] [--limit N] [--clip C]\n"
    "                              train, printing energy and accuracy per epoch\n"
    "  eval M.fep --params P.safetensors [--bind NODE=FILE ...] [--val N]\n"
    "                              accuracy and energy on the test split, the bound data,\n"
    "                              or (--val N) the N samples train held out\n"
    "  repl [M.fep]                interactive: load, set tensors, relax, learn, print (:help)\n"
    "  build M.fep -o m.so          native shared object and m.h (run it with --module m.so)\n"
    "  filter M.fep --data S.csv --out E.csv [--learn] [--params P]\n"
    "                              stream a time series through a prev() model\n"
    "  act M.fep --env ENV [--episodes N] [--agents N] [--log L.csv] [--summary E.csv] [--save P]\n"
    "                              run a discrete agent in an environment (tmaze, grid:..., model,\n"
    "                              lib.so:symbol); agent keys as --key value (--horizon 2 --gamma 8)\n"
    "  plot grid|lines|scatter IN ... -o OUT.png\n"
    "                              PNG figures of images or CSV columns (fepc plot --help)\n"
    "  mpirun -np P fepc train|eval M.fep ...\n"
    "                              data-parallel over P ranks (also --hostfile H): each rank\n"
    "                              relaxes its share of every batch; the results are one\n"
    "                              process's, bit for bit; rank 0 prints, logs and saves\n"
    "                              (--save: after every epoch)\n"
    "\n"
    "options:\n"
    "  --rule R --steps N --step-size η --seed N   any train key as --key value\n"
    "  --dtype f32|f64   --engine jit|interp (compiled kernels, or the reference interpreter)\n"
    "  --threads N       batch-parallel threads (default: all cores, shared by the MPI ranks on a\n"
    "                    machine; results do not depend on N)\n"
    "  --module m.so     run a module built by `fepc build` instead of compiling\n"
    "  --bind NODE=FILE  data for an input or observed node (or a family x as [N, T, ...]) from\n"
    "                    .npy, .safetensors (tensor NODE or the only one) or .csv (columns x or\n"
    "                    x[i], one row per sample); repeatable, replaces --data\n"
    "  --val N           hold out N training samples (seeded shuffle) and report val_accuracy\n";

static const char *const valued_flags[] = {"--params", "--batch", "--out", "-o", "--engine", "--dtype", "--log", "--module",
                                           "--save", "--resume", "--data", "--limit", "--clip", "--threads",
                                           "--bind", "--val", "--env", "--summary", "--episodes", "--agents"};

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "fepc: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

/* --step-size → step_size */
static const char *train_key_of(const char *flag, char *buf, size_t len)
{
    snprintf(buf, len, "%s", flag + 2);
    for (char *p = buf; *p; p++)
        if (*p == '-')
            *p = '_';
    return buf;
}

static int parse_args(int argc, char **argv, Options *opt, char keys[][32])
{
    memset(opt, 0, sizeof *opt);
    opt->engine = "jit";
    if (argc < 2)
        return usage_error("missing command%s", "");
    opt->command = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            if (opt->model_path)
                return usage_error("unexpected argument '%s'", a);
            opt->model_path = a;
            continue;
        }
        if (!strcmp(a, "--learn")) {
            opt->learn = true;
            continue;
        }
        if (!strcmp(a, "--ir") || !strcmp(a, "--derived") || !strcmp(a, "--llvm")) {
            opt->emit_ir |= !strcmp(a, "--ir");
            opt->emit_derived |= !strcmp(a, "--derived");
            opt->emit_llvm |= !strcmp(a, "--llvm");
            continue;
        }
        if (i + 1 >= argc)
            return usage_error("option '%s' needs a value", a);
        const char *v = argv[++i];
        bool known = false;
        for (size_t k = 0; k < sizeof valued_flags / sizeof *valued_flags; k++)
            known |= !strcmp(a, valued_flags[k]);
        if (!strcmp(a, "--params"))
            opt->params_path = v;
        else if (!strcmp(a, "--batch") && v[0] && !strchr("0123456789", v[0]))
            opt->batch_path = v;
        else if (!strcmp(a, "--out") || !strcmp(a, "-o"))
            opt->out_path = v;
        else if (!strcmp(a, "--log"))
            opt->log_path = v;
        else if (!strcmp(a, "--module"))
            opt->module_path = v;
        else if (!strcmp(a, "--save"))
            opt->save_path = v;
        else if (!strcmp(a, "--resume"))
            opt->resume_path = v;
        else if (!strcmp(a, "--data"))
            opt->data = v;
        else if (!strcmp(a, "--env"))
            opt->env = v;
        else if (!strcmp(a, "--summary"))
            opt->summary_path = v;
        else if (!strcmp(a, "--episodes") || !strcmp(a, "--agents")) {
            char *end;
            long n = strtol(v, &end, 10);
            if (!v[0] || *end || n < 1 || n > 100000000)
                return usage_error("option expects a positive count, got '%s'", v);
            *(!strcmp(a, "--episodes") ? &opt->episodes : &opt->agents) = (int)n;
        }
        else if (!strcmp(a, "--bind")) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1])
                return usage_error("--bind expects NODE=FILE, got '%s'", v);
            if (opt->n_binds == (int)(sizeof opt->binds / sizeof *opt->binds))
                return usage_error("too many --bind options (at most 32)%s", "");
            opt->binds[opt->n_binds++] = v;
        } else if (!strcmp(a, "--val")) {
            char *end;
            long long n = strtoll(v, &end, 10);
            if (!v[0] || *end || n < 0)
                return usage_error("--val expects a number of samples, got '%s'", v);
            opt->val = n;
        }
        else if (!strcmp(a, "--threads")) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 256)
                return usage_error("--threads expects a number from 1 to 256, got '%s'", v);
            opt->threads = (int)n;
        } else if (!strcmp(a, "--limit") || !strcmp(a, "--clip")) {
            char *end;
            double x = strtod(v, &end);
            if (*end || !(x > 0))
                return usage_error("option expects a positive number, got '%s'", v);
            if (!strcmp(a, "--limit"))
                opt->limit = (long long)x;
            else
                opt->clip = x;
        } else if (!strcmp(a, "--engine")) {
            if (strcmp(v, "interp") && strcmp(v, "jit"))
                return usage_error("unknown engine '%s' (expected interp or jit)", v);
            opt->engine = v;
        } else if (!strcmp(a, "--dtype")) {
            if (strcmp(v, "f32") && strcmp(v, "f64"))
                return usage_error("unknown dtype '%s' (expected f32 or f64)", v);
            opt->f64 = !strcmp(v, "f64");
        } else if (!known && strncmp(a, "--", 2) == 0 && opt->n_overrides < 32) {
            /* --batch 64 is the train key; --batch FILE is the batch file. */
            opt->overrides[opt->n_overrides].key = train_key_of(a, keys[opt->n_overrides], 32);
            opt->overrides[opt->n_overrides++].value = v;
        } else if (!strcmp(a, "--batch")) {
            opt->overrides[opt->n_overrides].key = "batch";
            opt->overrides[opt->n_overrides++].value = v;
        } else {
            return usage_error("unknown option '%s'", a);
        }
    }
    /* The REPL can start empty; --module carries its own model. */
    if (!opt->model_path && !opt->module_path && strcmp(opt->command, "repl"))
        return usage_error("missing model file%s", "");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "plot"))    /* its own grammar, no model file */
        return cmd_plot(argc - 2, argv + 2);
    Options opt;
    char keys[32][32];
    int rc = parse_args(argc, argv, &opt, keys);
    if (rc)
        return rc;
    static const struct {
        const char *name;
        int (*run)(const Options *);
    } commands[] = {{"check", cmd_check}, {"explain", cmd_explain}, {"emit", cmd_emit}, {"grad", cmd_grad},
                  {"train", cmd_train}, {"eval", cmd_eval}, {"repl", cmd_repl}, {"filter", cmd_filter}, {"build", cmd_build},
                  {"act", cmd_act}};
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(opt.command, commands[i].name))
            return commands[i].run(&opt);
    return usage_error("unknown command '%s'", opt.command);
}
