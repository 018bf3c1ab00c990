/* team.c — fork-join task sets over a fixed team of threads (see team.h).
 *
 * A set lives on its caller's stack and is published through `current`.
 * A helper may dereference `current` only while counted in `holders`, and
 * reloads it after counting itself; the caller clears `current` and waits
 * for `holders` to drain before its set goes out of scope.  `published`
 * (the latest set's sequence number) is what waiting helpers watch, so
 * they never touch a set they have not joined.  Sleeping uses a mutex and
 * condition variable; `sleepers` is raised before a helper re-checks
 * `published` under the mutex, and the caller reads `sleepers` after
 * publishing, so a wake-up cannot be lost (both are sequentially
 * consistent atomics). */
#include "team.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "../util/util.h"

enum {
    SPIN_NS = 20000,          /* a helper spins this long for the next set, ... */
    YIELD_NS = 200000,        /* ... then yields the CPU between checks this long, then sleeps */
    WAIT_SPINS = 4096,        /* the caller's pause rounds before it starts yielding */
};

typedef struct Set {
    TeamTask *fn;
    void *arg;
    int n_tasks;
    unsigned seq;
    atomic_int next;          /* the next task to hand out */
    atomic_int done;          /* tasks finished */
} Set;

struct Team {
    int n_threads;
    pthread_t *helpers;
    pthread_mutex_t busy;     /* held by the thread whose set is running */
    unsigned seq;             /* sets started; under busy */
    _Atomic(Set *) current;
    atomic_uint published;
    atomic_int holders;
    atomic_int sleepers;
    atomic_bool quit;
    pthread_mutex_t lock;
    pthread_cond_t wake;
};

static _Thread_local Team *ambient;
static _Thread_local bool in_task;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void work_on(Set *s)
{
    bool outer = in_task;
    in_task = true;
    for (int i; (i = atomic_fetch_add(&s->next, 1)) < s->n_tasks;) {
        s->fn(s->arg, i);
        atomic_fetch_add(&s->done, 1);
    }
    in_task = outer;
}

/* Waits until a set newer than `seen` is published; false when quitting. */
static bool await_set(Team *t, unsigned seen)
{
    int64_t start = now_ns();
    for (int round = 0;; round++) {
        if (atomic_load(&t->published) != seen || atomic_load(&t->quit))
            return !atomic_load(&t->quit);
        if ((round & 63) != 63) {
            cpu_relax();
            continue;
        }
        int64_t waited = now_ns() - start;
        if (waited > YIELD_NS)
            break;
        if (waited > SPIN_NS)   /* on a busy machine, let other work have the core */
            sched_yield();
    }
    pthread_mutex_lock(&t->lock);
    atomic_fetch_add(&t->sleepers, 1);
    while (atomic_load(&t->published) == seen && !atomic_load(&t->quit))
        pthread_cond_wait(&t->wake, &t->lock);
    atomic_fetch_sub(&t->sleepers, 1);
    pthread_mutex_unlock(&t->lock);
    return !atomic_load(&t->quit);
}

static void *helper_main(void *arg)
{
    Team *t = arg;
    unsigned seen = 0;
    while (await_set(t, seen)) {
        seen = atomic_load(&t->published);
        atomic_fetch_add(&t->holders, 1);
        Set *s = atomic_load(&t->current);
        if (s)
            work_on(s);
        atomic_fetch_sub(&t->holders, 1);
    }
    return NULL;
}

Team *team_new(int n_threads)
{
    Team *t = xcalloc(1, sizeof *t);
    t->n_threads = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&t->busy, NULL);
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->wake, NULL);
    t->helpers = xcalloc((size_t)t->n_threads, sizeof *t->helpers);
    for (int i = 0; i < t->n_threads - 1; i++)
        if (pthread_create(&t->helpers[i], NULL, helper_main, t))
            fep_die("team: cannot start thread %d of %d", i + 2, t->n_threads);
    return t;
}

void team_free(Team *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    atomic_store(&t->quit, true);
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->lock);
    for (int i = 0; i < t->n_threads - 1; i++)
        pthread_join(t->helpers[i], NULL);
    pthread_mutex_destroy(&t->busy);
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->wake);
    free(t->helpers);
    free(t);
}

int team_size(const Team *t)
{
    return t ? t->n_threads : 1;
}

static void run_serially(int n_tasks, TeamTask *fn, void *arg)
{
    bool outer = in_task;
    in_task = true;
    for (int i = 0; i < n_tasks; i++)
        fn(arg, i);
    in_task = outer;
}

void team_run(Team *t, int n_tasks, TeamTask *fn, void *arg)
{
    if (!t || t->n_threads < 2 || n_tasks < 2 || in_task || pthread_mutex_trylock(&t->busy)) {
        run_serially(n_tasks, fn, arg);
        return;
    }
    Set s = {.fn = fn, .arg = arg, .n_tasks = n_tasks, .seq = ++t->seq};
    if (s.seq == 0)   /* 0 is "no set yet" to the helpers */
        s.seq = ++t->seq;
    atomic_store(&t->current, &s);
    atomic_store(&t->published, s.seq);
    if (atomic_load(&t->sleepers) > 0) {
        pthread_mutex_lock(&t->lock);
        pthread_cond_broadcast(&t->wake);
        pthread_mutex_unlock(&t->lock);
    }
    work_on(&s);
    for (int round = 0; atomic_load(&s.done) < n_tasks; round++)
        round < WAIT_SPINS ? cpu_relax() : (void)sched_yield();
    atomic_store(&t->current, NULL);
    while (atomic_load(&t->holders) > 0)
        cpu_relax();
    pthread_mutex_unlock(&t->busy);
}

Team *team_ambient(void)
{
    return in_task ? NULL : ambient;
}

Team *team_set_ambient(Team *t)
{
    Team *old = ambient;
    ambient = t;
    return old;
}
