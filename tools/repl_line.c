/* repl_line.c — where `fepc repl` gets its lines: libedit (emacs keys,
 * persistent history, tab completion) on a terminal, plain line-by-line
 * stdin otherwise, so scripts and tests can drive the REPL.
 *
 * Ctrl-C sets a flag (the only global mutable state of the REPL); long
 * commands poll it, and a read it interrupts returns with *interrupted.
 * Completion asks the caller's CompleteFn for candidates of the word under
 * the cursor and inserts their longest common prefix (a candidate that
 * should be followed by a blank carries it), listing them when that adds
 * nothing. */
#include "repl.h"

#include <errno.h>
#include <histedit.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static volatile sig_atomic_t interrupted_flag;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted_flag = 1;
}

void repl_install_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;   /* no SA_RESTART: a blocked read returns EINTR */
    sigaction(SIGINT, &sa, NULL);
}

bool repl_interrupted(void) { return interrupted_flag != 0; }
void repl_clear_interrupt(void) { interrupted_flag = 0; }

void completions_add(Completions *c, const char *s)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->items[i], s))
            return;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->items = xrealloc(c->items, sizeof *c->items * (size_t)c->cap);
    }
    c->items[c->n++] = xstrdup(s);
}

static void completions_free(Completions *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->items[i]);
    free(c->items);
    memset(c, 0, sizeof *c);
}

struct LineReader {
    bool interactive;
    EditLine *el;
    History *hist;
    char *history_path;
    const char *prompt;
    CompleteFn complete;
    void *ctx;
    char *buf;            /* non-interactive getline buffer */
    size_t cap;
};

static char *prompt_of(EditLine *el)
{
    LineReader *lr = NULL;
    el_get(el, EL_CLIENTDATA, &lr);
    return (char *)(lr && lr->prompt ? lr->prompt : "");
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static size_t common_prefix(const Completions *c)
{
    size_t n = strlen(c->items[0]);
    for (int i = 1; i < c->n; i++) {
        size_t k = 0;
        while (k < n && c->items[i][k] == c->items[0][k])
            k++;
        n = k;
    }
    return n;
}

static unsigned char complete_word(EditLine *el, int ch)
{
    (void)ch;
    LineReader *lr = NULL;
    el_get(el, EL_CLIENTDATA, &lr);
    const LineInfo *li = el_line(el);
    size_t cursor = (size_t)(li->cursor - li->buffer);
    char *line = xmalloc(cursor + 1);
    memcpy(line, li->buffer, cursor);
    line[cursor] = '\0';
    Completions c = {0};
    size_t start = lr->complete(lr->ctx, line, &c);
    unsigned char rc = CC_ERROR;
    size_t typed = cursor - start;
    if (c.n > 0) {
        size_t n = common_prefix(&c);
        if (n > typed) {
            char *add = xmalloc(n - typed + 1);
            memcpy(add, c.items[0] + typed, n - typed);
            add[n - typed] = '\0';
            el_insertstr(el, add);
            free(add);
            rc = CC_REFRESH;
        } else if (c.n > 1) {
            qsort(c.items, (size_t)c.n, sizeof *c.items, by_name);
            fputc('\n', stdout);
            for (int i = 0; i < c.n; i++)
                printf("%s%s", c.items[i], i + 1 < c.n ? "  " : "\n");
            fflush(stdout);
            rc = CC_REDISPLAY;
        }
    }
    completions_free(&c);
    free(line);
    return rc;
}

LineReader *line_reader_new(bool interactive, const char *history_path, CompleteFn complete, void *ctx)
{
    LineReader *lr = xcalloc(1, sizeof *lr);
    lr->interactive = interactive;
    lr->complete = complete;
    lr->ctx = ctx;
    if (!interactive)
        return lr;
    lr->el = el_init("fepc", stdin, stdout, stderr);
    if (!lr->el) {
        lr->interactive = false;
        return lr;
    }
    HistEvent ev;
    lr->hist = history_init();
    history(lr->hist, &ev, H_SETSIZE, 1000);
    history(lr->hist, &ev, H_SETUNIQUE, 1);
    if (history_path) {
        lr->history_path = xstrdup(history_path);
        history(lr->hist, &ev, H_LOAD, history_path);   /* a missing file is fine */
    }
    el_set(lr->el, EL_CLIENTDATA, lr);
    el_set(lr->el, EL_EDITOR, "emacs");
    el_set(lr->el, EL_PROMPT, prompt_of);
    el_set(lr->el, EL_HIST, history, lr->hist);
    /* the wide call keeps our static strings; the narrow one leaks copies */
    el_wset(lr->el, EL_ADDFN, L"fepc-complete", L"complete a command or tensor name", complete_word);
    el_set(lr->el, EL_BIND, "^I", "fepc-complete", NULL);
    el_source(lr->el, NULL);   /* the user's ~/.editrc */
    return lr;
}

static const char *strip_newline(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static const char *get_plain(LineReader *lr, bool *interrupted)
{
    errno = 0;
    ssize_t n = getline(&lr->buf, &lr->cap, stdin);
    if (n < 0) {
        if (errno == EINTR || repl_interrupted()) {
            clearerr(stdin);
            *interrupted = true;
        }
        return NULL;
    }
    return strip_newline(lr->buf);
}

static const char *get_edited(LineReader *lr, bool *interrupted)
{
    int count = 0;
    const char *line = el_gets(lr->el, &count);
    if (!line) {
        if (count < 0 && (errno == EINTR || repl_interrupted())) {
            *interrupted = true;
            fputc('\n', stdout);
        }
        return NULL;
    }
    free(lr->buf);
    lr->buf = xstrdup(line);
    strip_newline(lr->buf);
    if (lr->buf[strspn(lr->buf, " \t")]) {
        HistEvent ev;
        history(lr->hist, &ev, H_ENTER, lr->buf);
        if (lr->history_path)
            history(lr->hist, &ev, H_SAVE, lr->history_path);
    }
    return lr->buf;
}

const char *line_reader_get(LineReader *lr, const char *prompt, bool *interrupted)
{
    *interrupted = false;
    lr->prompt = prompt;
    return lr->interactive ? get_edited(lr, interrupted) : get_plain(lr, interrupted);
}

void line_reader_free(LineReader *lr)
{
    if (!lr)
        return;
    if (lr->el)
        el_end(lr->el);
    if (lr->hist)
        history_end(lr->hist);
    free(lr->history_path);
    free(lr->buf);
    free(lr);
}
