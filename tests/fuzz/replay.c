/* replay.c — runs saved fuzz inputs through the fuzz targets' own code
 * (tests/fuzz/fuzz_*.c, compiled into this file with their libFuzzer entry
 * points renamed), without libFuzzer, so that any build — gcc included —
 * can replay every crash the fuzzers ever found (the fuzz_regressions test).
 *
 *   fuzz_replay [--target NAME] PATH...
 *
 * A PATH that is a file is run through the target named by --target, or
 * else by the name of the directory holding it (tests/fuzz/regressions/
 * fuzz_idx/crash-1 runs through fuzz_idx).  A directory named after a
 * target has each of its files run through that target; any other
 * directory is searched for such directories (one level down), so
 * `fuzz_replay tests/fuzz/regressions tests/fuzz/corpus` replays them all.
 * Exit status: 0 when every input ran to the end (a crash aborts the
 * process, which is the failure), 2 on a usage error or an unreadable path.
 * Files are run in name order; a line per file goes to stderr. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LLVMFuzzerTestOneInput fuzz_frontend_one
#include "fuzz_frontend.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_idx_one
#include "fuzz_idx.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_safetensors_one
#include "fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_csv_npy_one
#include "fuzz_csv_npy.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_repl_one
#include "fuzz_repl.c"
#undef LLVMFuzzerTestOneInput

typedef struct Target {
    const char *name;
    int (*run)(const uint8_t *data, size_t size);
} Target;

static const Target targets[] = {
    {"fuzz_frontend", fuzz_frontend_one},       {"fuzz_idx", fuzz_idx_one},
    {"fuzz_safetensors", fuzz_safetensors_one}, {"fuzz_csv_npy", fuzz_csv_npy_one},
    {"fuzz_repl", fuzz_repl_one},
};
enum { N_TARGETS = sizeof targets / sizeof *targets };

static int n_run;

static const Target *target_named(const char *name)
{
    for (int i = 0; i < N_TARGETS; i++)
        if (!strcmp(targets[i].name, name))
            return &targets[i];
    return NULL;
}

/* The last component of path, ignoring trailing slashes, copied to buf. */
static const char *base_name(const char *path, char *buf, size_t buflen)
{
    size_t end = strlen(path);
    while (end > 1 && path[end - 1] == '/')
        end--;
    size_t start = end;
    while (start > 0 && path[start - 1] != '/')
        start--;
    snprintf(buf, buflen, "%.*s", (int)(end - start), path + start);
    return buf;
}

/* The target named by the directory that holds the file at path. */
static const Target *target_of_file(const char *path)
{
    char dir[4096], name[256];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    return target_named(base_name(dir, name, sizeof name));
}

static bool run_file(const Target *t, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
        return false;
    }
    size_t cap = 4096, len = 0;
    uint8_t *data = malloc(cap);
    size_t got;
    while (data && (got = fread(data + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap)
            data = realloc(data, cap *= 2);
    }
    bool ok = data && !ferror(f);
    fclose(f);
    if (!ok) {
        fprintf(stderr, "fuzz_replay: %s: cannot read\n", path);
        free(data);
        return false;
    }
    fprintf(stderr, "fuzz_replay: %s < %s (%zu bytes)\n", t->name, path, len);
    t->run(data, len);
    free(data);
    n_run++;
    return true;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The entries of a directory (not . or ..), sorted; NULL if unreadable. */
static char **list_dir(const char *path, int *n)
{
    DIR *d = opendir(path);
    if (!d)
        return NULL;
    char **names = NULL;
    int cap = 0;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (*n == cap)
            names = realloc(names, sizeof *names * (size_t)(cap = cap ? 2 * cap : 16));
        names[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (*n)
        qsort(names, (size_t)*n, sizeof *names, by_name);
    return names ? names : calloc(1, sizeof *names);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return !stat(path, &st) && S_ISDIR(st.st_mode);
}

/* Runs every file of a directory through t (sub-directories: an error). */
static bool run_dir(const Target *t, const char *path)
{
    int n;
    char **names = list_dir(path, &n);
    if (!names) {
        fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
        return false;
    }
    bool ok = true;
    for (int i = 0; i < n; i++) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        if (is_dir(full)) {
            fprintf(stderr, "fuzz_replay: %s: a directory inside %s's inputs\n", full, t->name);
            ok = false;
        } else if (names[i][0] != '.' && strcmp(names[i], "README")) {
            ok &= run_file(t, full);
        }
        free(names[i]);
    }
    free(names);
    return ok;
}

static bool run_path(const Target *forced, const char *path)
{
    char name[256];
    if (!is_dir(path)) {
        const Target *t = forced ? forced : target_of_file(path);
        if (!t) {
            fprintf(stderr, "fuzz_replay: %s: which target? (use --target NAME or put it in a directory named "
                            "after one)\n", path);
            return false;
        }
        return run_file(t, path);
    }
    const Target *t = forced ? forced : target_named(base_name(path, name, sizeof name));
    if (t)
        return run_dir(t, path);
    int n;
    char **names = list_dir(path, &n);
    if (!names) {
        fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
        return false;
    }
    bool ok = true;
    for (int i = 0; i < n; i++) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        const Target *sub = target_named(names[i]);
        if (sub && is_dir(full))
            ok &= run_dir(sub, full);
        free(names[i]);
    }
    free(names);
    return ok;
}

int main(int argc, char **argv)
{
    const Target *forced = NULL;
    int first = 1;
    if (argc > 2 && !strcmp(argv[1], "--target")) {
        if (!(forced = target_named(argv[2]))) {
            fprintf(stderr, "fuzz_replay: unknown target '%s'\n", argv[2]);
            return 2;
        }
        first = 3;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: fuzz_replay [--target NAME] FILE-OR-DIRECTORY...\n");
        return 2;
    }
    bool ok = true;
    for (int i = first; i < argc; i++)
        ok &= run_path(forced, argv[i]);
    fprintf(stderr, "fuzz_replay: %d inputs replayed%s\n", n_run, ok ? "" : "; some paths could not be read");
    return ok ? 0 : 2;
}
