/* env_tmaze.c — the T-maze of thesis-notes/thesis-action.md §5.4 T1/T2 as a
 * built-in environment (`--env tmaze`, options p=0.98, cue=uniform|null).
 *
 * Places: 0 centre, 1 left arm, 2 right arm, 3 cue.  The context (which
 * arm holds the reward) is drawn at each reset.  A move goes to the place
 * it names; arms do not end the episode.  Observations, in the order of
 * models/agents/tmaze.fep's outcomes: where (the place), reward (0 none,
 * 1 reward, 2 loss; an arm pays reward with probability p when it is the
 * rewarded one, else loss with probability p), cue (at the cue place the
 * context; elsewhere a fair coin, or with cue=null a third value 2).
 * Reward: +1 for the reward outcome, −1 for a loss. */
#include "agent.h"

#include <stdlib.h>
#include <string.h>

typedef struct Tmaze {
    double p;
    bool null_cue;
    int place, context;
} Tmaze;

static void observe(Tmaze *t, Rng *rng, double *obs, double *reward)
{
    int rew = 0;
    if (t->place == 1 || t->place == 2) {
        bool good = t->place == t->context + 1;
        bool hit = rng_uniform(rng) < t->p;
        rew = good == hit ? 1 : 2;
    }
    int cue = t->place == 3 ? t->context : t->null_cue ? 2 : rng_uniform(rng) < 0.5 ? 0 : 1;
    obs[0] = t->place;
    obs[1] = rew;
    obs[2] = cue;
    if (reward)
        *reward = rew == 1 ? 1 : rew == 2 ? -1 : 0;
}

static void *create(const char *options, const Model *m, EnvInfo *info, char *err, size_t errlen)
{
    static const char *const keys[] = {"p", "cue", NULL};
    if (!env_option_keys(options, keys, "tmaze", err, errlen))
        return NULL;
    Tmaze t = {.p = 0.98};
    if (!env_option_num(options, "p", &t.p, err, errlen))
        return NULL;
    if (!(t.p >= 0 && t.p <= 1)) {
        snprintf(err, errlen, "option p=%g: expected a probability in [0, 1]", t.p);
        return NULL;
    }
    const char *cue = options ? strstr(options, "cue=") : NULL;
    if (cue) {
        if (!strncmp(cue + 4, "null", 4) && (!cue[8] || cue[8] == ','))
            t.null_cue = true;
        else if (strncmp(cue + 4, "uniform", 7) || (cue[11] && cue[11] != ',')) {
            snprintf(err, errlen, "option cue: expected uniform or null");
            return NULL;
        }
    }
    *info = (EnvInfo){.n_obs = 3, .n_act = 1, .obs_levels = {4, 3, t.null_cue ? 3 : 2}, .act_levels = {4},
                      .obs_names = {"where", "reward", "cue"}, .act_names = {"move"}};
    Tmaze *st = xmalloc(sizeof *st);
    *st = t;
    return st;
}

static void reset(void *st, Rng *rng, double *obs)
{
    Tmaze *t = st;
    t->place = 0;
    t->context = rng_uniform(rng) < 0.5 ? 0 : 1;
    observe(t, rng, obs, NULL);
}

static bool step(void *st, Rng *rng, const double *act, double *obs, double *reward)
{
    Tmaze *t = st;
    t->place = (int)act[0];
    observe(t, rng, obs, reward);
    return false;
}

const EnvClass env_tmaze = {"tmaze", "the T-maze (thesis-action.md T1): options p=0.98, cue=uniform|null",
                            create, reset, step, free};
