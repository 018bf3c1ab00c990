/* repl_complete.c — what Tab offers at the REPL prompt: command names
 * as the first word; files after :load, :save, :restore and as the file
 * of :clamp; train keys after :train; rule names after :rule; otherwise
 * the current model's tensor and family names (and buffer names such as
 * error.v1 after :print).  repl_line.c inserts and lists the candidates. */
#include "repl.h"

#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void complete_files(const char *word, size_t len, Completions *out)
{
    char *w = xmalloc(len + 1);
    memcpy(w, word, len);
    w[len] = '\0';
    char *slash = strrchr(w, '/');
    const char *base = slash ? slash + 1 : w;
    char *dir = slash ? xmalloc((size_t)(slash - w) + 2) : xstrdup(".");
    if (slash) {
        memcpy(dir, w, (size_t)(slash - w) + 1);
        dir[slash - w + 1] = '\0';
    }
    DIR *dp = opendir(dir);
    for (struct dirent *e; dp && (e = readdir(dp));) {
        if (strncmp(e->d_name, base, strlen(base)) || (e->d_name[0] == '.' && base[0] != '.'))
            continue;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        size_t n = (size_t)(base - w) + strlen(e->d_name) + 2;
        char *full = xmalloc(n);
        snprintf(full, n, "%.*s%s", (int)(base - w), w, e->d_name);
        struct stat st;
        char *path = slash ? full : e->d_name;
        strcat(full, stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? "/" : " ");
        completions_add(out, full);
        free(full);
    }
    if (dp)
        closedir(dp);
    free(dir);
    free(w);
}

static void add_matching(Completions *out, const char *name, const char *word, size_t len)
{
    if (!strncmp(name, word, len))
        completions_add(out, name);
}

static void complete_names(Repl *r, const char *word, size_t len, bool buffers, Completions *out)
{
    if (!r->c)
        return;
    const Model *m = r->c->model;
    for (int t = 0; t < m->n_tensors; t++) {
        add_matching(out, m->tensors[t].name, word, len);
        if (m->tensors[t].family)
            add_matching(out, m->tensors[t].family, word, len);
    }
    for (int b = 0; buffers && b < m->n_buffers; b++)
        if (m->buffers[b].kind != BUF_TEMP)
            add_matching(out, m->buffers[b].name, word, len);
}

/* Name characters: identifiers, ':' of commands, '.' of buffer names. */
static bool name_char(char ch) { return isalnum((unsigned char)ch) || ch == '_' || ch == ':' || ch == '.'; }

size_t repl_complete(void *ctx, const char *line, Completions *out)
{
    Repl *r = ctx;
    size_t cursor = strlen(line), start = cursor, file_start = cursor;
    while (start > 0 && name_char(line[start - 1]))
        start--;
    while (file_start > 0 && !isspace((unsigned char)line[file_start - 1]))
        file_start--;
    const char *word = line + start;
    size_t len = cursor - start;
    size_t lead = strspn(line, " \t");
    if (lead == start) {   /* the first word: a command, or the start of an expression */
        for (int i = 0; repl_command_names[i]; i++)
            if (!strncmp(repl_command_names[i], word, len)) {
                char with_blank[32];
                snprintf(with_blank, sizeof with_blank, "%s ", repl_command_names[i]);
                completions_add(out, with_blank);
            }
        if (word[0] != ':')
            complete_names(r, word, len, false, out);
        return start;
    }
    char cmd[16] = "";
    sscanf(line + lead, "%15s", cmd);
    int words = 0;   /* words before the one being completed */
    for (size_t i = lead; i < start; i++)
        words += !isspace((unsigned char)line[i]) && (i == lead || isspace((unsigned char)line[i - 1]));
    static const char *const rules[] = {"pc", "fpa", "ipc", "bp", NULL};
    if (!strcmp(cmd, ":load") || !strcmp(cmd, ":save") || !strcmp(cmd, ":restore") ||
        (!strcmp(cmd, ":clamp") && words >= 2)) {
        complete_files(line + file_start, cursor - file_start, out);
        return file_start;
    }
    if (!strcmp(cmd, ":train") && words == 1)
        for (int i = 0; repl_train_keys[i]; i++)
            add_matching(out, repl_train_keys[i], word, len);
    else if (!strcmp(cmd, ":rule"))
        for (int i = 0; rules[i]; i++)
            add_matching(out, rules[i], word, len);
    else
        complete_names(r, word, len, !strcmp(cmd, ":print"), out);
    return start;
}
