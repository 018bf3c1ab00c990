/* coin_world.c — an environment written in C for `fepc act`: a shared
 * object exporting a FepEnvironment (fep.h).
 *
 *   cc -shared -fPIC coin_world.c $(pkg-config --cflags fep) -o libcoin.so
 *   fepc act models/agents/tmaze.fep --env ./libcoin.so:coin_tmaze --episodes 100
 *
 * The world is the T-maze again (so that models/agents/tmaze.fep can act
 * in it), with its own random numbers: four places, a rewarded arm drawn
 * each episode, a cue at place 3.  Any world with discrete observations
 * and actions fits the same mould. */
#include <fep.h>
#include <stdlib.h>

typedef struct World {
    uint64_t rng;
    int place, context;
} World;

static double uniform(World *w)   /* xorshift64*: the world's own stream */
{
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return (double)((w->rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static void observe(World *w, double *obs, double *reward)
{
    int rew = 0;
    if (w->place == 1 || w->place == 2)
        rew = (w->place == w->context + 1) == (uniform(w) < 0.98) ? 1 : 2;
    obs[0] = w->place;
    obs[1] = rew;
    obs[2] = w->place == 3 ? w->context : uniform(w) < 0.5 ? 0 : 1;
    if (reward)
        *reward = rew == 1 ? 1 : rew == 2 ? -1 : 0;
}

static void *create(uint64_t seed)
{
    World *w = calloc(1, sizeof *w);
    if (w)
        w->rng = seed * 2 + 1;
    return w;
}

static void reset(void *state, double *obs)
{
    World *w = state;
    w->place = 0;
    w->context = uniform(w) < 0.5 ? 0 : 1;
    observe(w, obs, NULL);
}

static int step(void *state, const double *act, double *obs, double *reward)
{
    World *w = state;
    w->place = (int)act[0];
    observe(w, obs, reward);
    return 0;
}

static const int obs_levels[] = {4, 3, 2}, act_levels[] = {4};

const FepEnvironment coin_tmaze = {FEP_ENVIRONMENT_ABI, 3, 1, obs_levels, act_levels, create, reset, step, free};
