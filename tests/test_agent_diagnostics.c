/* test_agent_diagnostics.c — every error class of a discrete agent's
 * declarations (ir/lower_agent.c, ir/lower_table.c, passes/agent.c): tables
 * that are not distributions, shapes that do not match the factors they are
 * indexed by, a policy space too large for memory, terms of G counted
 * twice, mixed model kinds; each with its exact message, line:col and the
 * text under the caret. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "diagkit.h"

/* A two-state agent with one control; each test appends or swaps a line. */
#define CONTROL "control  u : [2]\n"
#define B_OK "const    B[u, to, from] : [2, 2, 2] = to == u\n"
#define HIDDEN "hidden   s : [2] ~ categorical(prior = [0.5, 0.5], transition = B(u))\n"
#define OUTCOME "outcome  o : [2] ~ categorical(likelihood = A(s))\n"
#define A_OK "const    A : [2, 2] = [[0.9, 0.2], [0.1, 0.8]]\n"

static void test_agent_ok(void **state) { expect_ok(CONTROL B_OK A_OK HIDDEN OUTCOME); }

static void test_likelihood_not_normalised(void **state)
{
    expect_error(CONTROL B_OK "const    A : [2, 2] = [[0.9, 0.2], [0.2, 0.8]]\n" HIDDEN OUTCOME, 5, 45, "A(s)",
                 "column [:, 0] of likelihood 'A' sums to 1.1; each column must be a distribution summing to 1");
}

static void test_probability_out_of_range(void **state)
{
    expect_error(CONTROL B_OK "const    A : [2, 2] = [[1.5, 0.2], [-0.5, 0.8]]\n" HIDDEN OUTCOME, 5, 45, "A(s)",
                 "likelihood 'A' has entry 1.5 in column [:, 0]; probabilities lie in [0, 1]");
}

static void test_transition_not_a_distribution(void **state)
{
    expect_error(CONTROL "const    B[u, to, from] : [2, 2, 2] = 0.4\n" A_OK HIDDEN OUTCOME, 4, 65, "B(u)",
                 "column [0, :, 0] of transition 'B' sums to 0.8; each column must be a distribution summing to 1");
}

static void test_prior_not_a_distribution(void **state)
{
    expect_error(CONTROL B_OK A_OK "hidden   s : [2] ~ categorical(prior = [0.5, 0.6], transition = B(u))\n" OUTCOME,
                 4, 40, "[0.5, 0.6]",
                 "column [:] of prior 'literal.0' sums to 1.1; each column must be a distribution summing to 1");
}

static void test_likelihood_shape(void **state)
{
    expect_error(CONTROL B_OK "const    A : [2, 3] = 0.5\n" HIDDEN OUTCOME, 5, 45, "A(s)",
                 "likelihood 'A' has shape [2, 3] but p(o | s) needs [2, 2]");
}

static void test_transition_shape(void **state)
{
    expect_error(CONTROL "const    B[to, from] : [2, 2] = to == from\n" A_OK HIDDEN OUTCOME, 4, 65, "B(u)",
                 "transition 'B' has shape [2, 2] but p(s' | s, u) needs [2, 2, 2]");
}

static void test_unknown_factor(void **state)
{
    expect_error(CONTROL B_OK A_OK HIDDEN "outcome  o : [2] ~ categorical(likelihood = A(q))\n", 5, 47, "q",
                 "'q' is not a hidden factor");
}

static void test_transition_needs_control(void **state)
{
    expect_error(CONTROL B_OK A_OK "hidden   s : [2] ~ categorical(prior = [0.5, 0.5], transition = B(s))\n" OUTCOME,
                 4, 67, "s", "'s' is not a control; a transition is indexed by a control, as in B(move)");
}

static void test_unused_control(void **state)
{
    expect_error(CONTROL "control  v : [3]\n" B_OK A_OK HIDDEN OUTCOME, 2, 10, "v",
                 "control 'v' moves no hidden factor: index a transition by it, as in transition = B(v)");
}

static void test_random_table(void **state)
{
    expect_error(CONTROL B_OK "const    A : [2, 2] = normal(1)\n" HIDDEN OUTCOME, 5, 45, "A(s)",
                 "'A' is initialised at random; a probability table needs fixed values");
}

static void test_negative_counts(void **state)
{
    expect_error(CONTROL B_OK "counts   A : [2, 2] = [[1, 2], [-1, 3]]\n" HIDDEN OUTCOME, 5, 45, "A(s)",
                 "likelihood 'A' has entry -1 in column [:, 0]; Dirichlet counts must be non-negative");
}

static void test_horizon_too_large(void **state)
{
    expect_error(CONTROL B_OK A_OK HIDDEN OUTCOME "agent { horizon = 30 }\n", 6, 19, "30",
                 "horizon 30 gives 2^30 = 1.074e+09 policies, whose planning tree needs 416 GiB per agent; at most "
                 "4194304 policies and 2 GiB fit: shorten the horizon or the action set");
}

static void test_terms_counted_twice(void **state)
{
    expect_error(CONTROL B_OK A_OK HIDDEN OUTCOME "agent { policy = efe(risk = on, utility = on) }\n", 6, 18,
                 "efe(risk = on, utility = on)",
                 "G counts a term twice: risk already contains the utility (risk = −utility − H[Q(o)]); choose risk + "
                 "ambiguity or utility + info_gain");
}

static void test_unknown_agent_key(void **state)
{
    expect_error(CONTROL B_OK A_OK HIDDEN OUTCOME "agent { horizn = 2 }\n", 6, 9, "horizn",
                 "unknown agent key 'horizn'; did you mean 'horizon'?");
}

static void test_unknown_term(void **state)
{
    expect_error(CONTROL B_OK A_OK HIDDEN OUTCOME "agent { policy = efe(novety = on) }\n", 6, 22, "novety",
                 "unknown argument 'novety' to 'efe'; did you mean 'novelty'?");
}

static void test_habit_length(void **state)
{
    expect_error(CONTROL B_OK A_OK HIDDEN OUTCOME "agent { horizon = 2  habit = [1, 1, 1] }\n", 6, 30, "[1, 1, 1]",
                 "habit 'literal.1' has shape [3] but there are 4 policies (2 actions, horizon 2)");
}

static void test_mixed_model(void **state)
{
    expect_error(CONTROL B_OK A_OK HIDDEN OUTCOME "latent h : [2] ~ normal(0)\n", 6, 8, "h",
                 "'h' is a latent node, but this model is a discrete agent (it declares 'u'); a model is either a "
                 "predictive-coding graph or a POMDP agent");
}

static void test_misspelled_declaration(void **state)
{
    expect_error(CONTROL B_OK A_OK "hiden    s : [2] ~ categorical(prior = [0.5, 0.5])\n", 4, 1, "hiden",
                 "unknown declaration 'hiden'; did you mean 'hidden'?");
}

static void test_declaration_tail(void **state)
{
    expect_error("control u : [2] = 3\n", 1, 17, "=", "control 'u' takes nothing after its shape");
}

static void test_joint_outcome_order(void **state)
{
    expect_error(CONTROL B_OK HIDDEN "hidden   r : [2] ~ categorical(prior = [1, 0])\n"
                 "const    A2[o, a, b] : [2, 2, 2] = 0.5\n"
                 "outcome  o : [2] ~ categorical(likelihood = A2(r, s))\n", 6, 10, "o",
                 "with outcomes = joint, the likelihood of 'o' must name its factors in the order they are declared "
                 "('s' before 'r'), or set outcomes = separate");
}

/* ---- tables defined entry by entry ---- */

static void test_table_unknown_name(void **state)
{
    expect_error("const T[i, j] : [2, 2] = i == k\n", 1, 31, "k",
                 "unknown name 'k' in a table definition: only the index variables and numbers can appear");
}

static void test_table_axes(void **state)
{
    expect_error("const T[i] : [2, 2] = i\n", 1, 8, "[i]", "table 'T' names 1 index variable but its shape has 2 axes");
}

static void test_table_function(void **state)
{
    expect_error("const T[i] : [2] = wher(i == 0, 1, 0)\n", 1, 20, "wher",
                 "unknown function 'wher' in a table definition; did you mean 'where'?");
}

static void test_table_not_finite(void **state)
{
    expect_error("const T[i] : [2] = log(i)\n", 1, 20, "log(i)", "table 'T' is not finite at i = 0 (-inf)");
}

static void test_comparison_outside_table(void **state)
{
    expect_error("input x : [2]\nlatent h : [2] ~ normal(x == 1)\n", 2, 25, "x == 1",
                 "'==' can only appear in a table definition (const T[i, j] : [..] = ...)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_ok),
        cmocka_unit_test(test_likelihood_not_normalised),
        cmocka_unit_test(test_probability_out_of_range),
        cmocka_unit_test(test_transition_not_a_distribution),
        cmocka_unit_test(test_prior_not_a_distribution),
        cmocka_unit_test(test_likelihood_shape),
        cmocka_unit_test(test_transition_shape),
        cmocka_unit_test(test_unknown_factor),
        cmocka_unit_test(test_transition_needs_control),
        cmocka_unit_test(test_unused_control),
        cmocka_unit_test(test_random_table),
        cmocka_unit_test(test_negative_counts),
        cmocka_unit_test(test_horizon_too_large),
        cmocka_unit_test(test_terms_counted_twice),
        cmocka_unit_test(test_unknown_agent_key),
        cmocka_unit_test(test_unknown_term),
        cmocka_unit_test(test_habit_length),
        cmocka_unit_test(test_mixed_model),
        cmocka_unit_test(test_misspelled_declaration),
        cmocka_unit_test(test_declaration_tail),
        cmocka_unit_test(test_joint_outcome_order),
        cmocka_unit_test(test_table_unknown_name),
        cmocka_unit_test(test_table_axes),
        cmocka_unit_test(test_table_function),
        cmocka_unit_test(test_table_not_finite),
        cmocka_unit_test(test_comparison_outside_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
