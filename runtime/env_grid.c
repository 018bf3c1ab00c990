/* env_grid.c — a grid world (thesis-notes/thesis-action.md §5.4 T3) as a
 * built-in environment: `--env grid:size=5,start=0,goal=24,noisy=3+6+7,p=0.6`.
 *
 * Cells are numbered row by row, 0 at the top left.  Actions: 0 north,
 * 1 south, 2 west, 3 east, 4 stay; a move into the wall stays.  The one
 * observation is the cell, exactly, except in the noisy cells, where it is
 * the cell with probability p and otherwise one of the other cells drawn
 * uniformly (the likelihood models/agents/grid_noisy.fep declares).
 * Reward 1 in the goal cell, else 0; the episode does not end there. */
#include "agent.h"

#include <stdlib.h>
#include <string.h>

typedef struct Grid {
    int size, start, goal, cell;
    double p;
    bool noisy[1024];
} Grid;

static int move(const Grid *g, int cell, int a)
{
    int r = cell / g->size, c = cell % g->size;
    if (a == 0 && r > 0)
        r--;
    else if (a == 1 && r < g->size - 1)
        r++;
    else if (a == 2 && c > 0)
        c--;
    else if (a == 3 && c < g->size - 1)
        c++;
    return r * g->size + c;
}

static double observe(Grid *g, Rng *rng)
{
    int n = g->size * g->size;
    if (!g->noisy[g->cell] || n == 1 || rng_uniform(rng) < g->p)
        return g->cell;
    int other = (int)(rng_uniform(rng) * (n - 1));
    return other >= g->cell ? other + 1 : other;
}

static void *create(const char *options, const Model *m, EnvInfo *info, char *err, size_t errlen)
{
    static const char *const keys[] = {"size", "start", "goal", "noisy", "p", NULL};
    if (!env_option_keys(options, keys, "grid", err, errlen))
        return NULL;
    long size = 3, start = 0, goal = -1;
    double p = 0.6;
    if (!env_option_int(options, "size", 1, 32, &size, err, errlen) ||
        !env_option_int(options, "start", 0, size * size - 1, &start, err, errlen))
        return NULL;
    goal = size * size - 1;
    if (!env_option_int(options, "goal", 0, size * size - 1, &goal, err, errlen) ||
        !env_option_num(options, "p", &p, err, errlen))
        return NULL;
    if (!(p >= 0 && p <= 1)) {
        snprintf(err, errlen, "option p=%g: expected a probability in [0, 1]", p);
        return NULL;
    }
    Grid *g = xcalloc(1, sizeof *g);
    *g = (Grid){.size = (int)size, .start = (int)start, .goal = (int)goal, .p = p};
    const char *noisy = options ? strstr(options, "noisy=") : NULL;
    for (const char *q = noisy ? noisy + 6 : NULL; q && *q && *q != ',';) {
        char *end;
        long cell = strtol(q, &end, 10);
        if (end == q || cell < 0 || cell >= size * size || (*end && *end != '+' && *end != ',')) {
            snprintf(err, errlen, "option noisy: expected cell numbers 0..%ld joined by '+', as in noisy=3+6", size * size - 1);
            free(g);
            return NULL;
        }
        g->noisy[cell] = true;
        q = *end == '+' ? end + 1 : end;
    }
    *info = (EnvInfo){.n_obs = 1, .n_act = 1, .obs_levels = {(int)(size * size)}, .act_levels = {5},
                      .obs_names = {"cell"}, .act_names = {"move"}};
    return g;
}

static void reset(void *st, Rng *rng, double *obs)
{
    Grid *g = st;
    g->cell = g->start;
    obs[0] = observe(g, rng);
}

static bool step(void *st, Rng *rng, const double *act, double *obs, double *reward)
{
    Grid *g = st;
    g->cell = move(g, g->cell, (int)act[0]);
    obs[0] = observe(g, rng);
    *reward = g->cell == g->goal;
    return false;
}

const EnvClass env_grid = {"grid", "a grid world (thesis-action.md T3): options size=3, start=0, goal, noisy=c1+c2, p=0.6",
                           create, reset, step, free};
