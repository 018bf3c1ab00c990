/* tmaze_agent.c — a discrete active-inference agent driven from C, with
 * only libfep: the program owns the world (a T-maze, written out below)
 * and asks the agent, step by step, what it believes and what to do.
 *
 *   cc tmaze_agent.c $(pkg-config --cflags --libs fep) -o tmaze_agent
 *   ./tmaze_agent models/agents/tmaze.fep
 *
 * Prints the expected free energy of each first move (the cue wins: it is
 * the only move that tells where the reward is), then plays 100 episodes
 * and prints how often the first arm the agent enters holds the reward. */
#include <fep.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(call)                                                                 \
    do {                                                                            \
        if ((call) != FEP_OK) {                                                     \
            fprintf(stderr, "%s failed: %s\n", #call, fep_last_error());            \
            return 1;                                                               \
        }                                                                           \
    } while (0)

/* The world: the agent's place (0 centre, 1 left, 2 right, 3 cue) and which
 * arm pays (0 left, 1 right).  Observations: place, reward (0 none, 1 reward,
 * 2 loss; an arm pays as it should 98% of the time), cue (the context at the
 * cue, a coin flip elsewhere). */
static void observe(int place, int context, int obs[3])
{
    obs[0] = place;
    obs[1] = 0;
    if (place == 1 || place == 2) {
        int right_arm = place == context + 1, honest = rand() % 100 < 98;
        obs[1] = right_arm == honest ? 1 : 2;
    }
    obs[2] = place == 3 ? context : rand() % 2;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s tmaze.fep\n", argv[0]);
        return 2;
    }
    srand(7);
    FepModule *module;
    FepAgent *agent;
    CHECK(fep_compile_file(argv[1], &module));
    CHECK(fep_agent_new(module, 1, 1, &agent));
    int n_outcomes, n_controls;
    int64_t n_policies;
    CHECK(fep_agent_shape(agent, &n_outcomes, &n_controls, &n_policies));
    if (n_outcomes != 3 || n_controls != 1 || n_policies != 4) {
        fprintf(stderr, "expected the T-maze (3 outcomes, 1 control, 4 policies)\n");
        return 1;
    }
    int rewarded = 0, entered = 0;
    for (int episode = 0; episode < 100; episode++) {
        int place = 0, context = rand() % 2, obs[3], move = 0, first_arm = 0;
        CHECK(fep_agent_reset(agent));
        for (int t = 0; t < 3; t++) {
            observe(place, context, obs);
            if (!first_arm && obs[1])
                first_arm = obs[1];
            CHECK(fep_agent_observe(agent, obs));
            CHECK(fep_agent_infer(agent));
            CHECK(fep_agent_plan(agent));
            if (episode == 0 && t == 0) {
                double G[4], P[4];
                CHECK(fep_agent_get(agent, "G", G, 4));
                CHECK(fep_agent_get(agent, "P.move", P, 4));
                printf("first move: G = %.4f %.4f %.4f %.4f, P = %.4f %.4f %.4f %.4f\n", G[0], G[1], G[2], G[3], P[0],
                       P[1], P[2], P[3]);
            }
            CHECK(fep_agent_act(agent, &move));
            place = move;
        }
        observe(place, context, obs);
        if (!first_arm && obs[1])
            first_arm = obs[1];
        entered += first_arm != 0;
        rewarded += first_arm == 1;
    }
    printf("first arm rewarded in %d of %d episodes\n", rewarded, entered);
    /* a bad observation is an error with a message, not a crash */
    int bad[3] = {7, 0, 0};
    if (fep_agent_observe(agent, bad) != FEP_OK)
        printf("bad observation: %s\n", fep_last_error());
    fep_agent_free(agent);
    fep_module_free(module);
    return 0;
}
