/* team.h — a fixed team of threads that runs fork-join sets of tasks.
 *
 * team_run(t, n, fn, arg) calls fn(arg, i) once for every i in [0, n),
 * spread over the calling thread and the team's helpers, and returns when
 * all n calls have returned.  Which thread runs a task is unspecified, so
 * callers that need thread-count-independent results give each task its
 * own outputs and decide the task split without looking at the team.
 *
 * Helpers spin briefly after a set ends (short sets follow each other
 * closely during training), then yield the CPU between checks for a while
 * (other processes get the core on a busy machine), then sleep.  A team serves one set at a
 * time: a team_run from inside a task, or while another thread's set is
 * running, runs its tasks serially on the caller.  A NULL team runs
 * serially.
 *
 * The ambient team is a per-thread pointer: code deep in a call chain
 * (the matrix products of compiled kernels) forks onto the team its
 * caller made ambient, without the team passed down explicitly. */
#ifndef FEP_TEAM_H
#define FEP_TEAM_H

typedef struct Team Team;
typedef void TeamTask(void *arg, int task);

/* A team of n_threads, the caller counted (n_threads - 1 helpers). */
Team *team_new(int n_threads);
void team_free(Team *t);
int team_size(const Team *t);   /* 1 for NULL */

void team_run(Team *t, int n_tasks, TeamTask *fn, void *arg);

/* The calling thread's ambient team (NULL inside a task); team_set_ambient
 * returns the previous one, for restoring. */
Team *team_ambient(void);
Team *team_set_ambient(Team *t);

#endif
