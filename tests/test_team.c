/* test_team.c — the thread team and the matrix products that fork onto it.
 *
 * team_run runs every task exactly once for any team size and task count,
 * runs nested sets serially, and serves two threads that share a team;
 * fep_sgemm / fep_dgemm give the same bits with an ambient team of any size
 * as without one, on shapes around the piece thresholds, transposed or not,
 * accumulating or not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/gemm.h"
#include "runtime/team.h"

typedef struct Count {
    atomic_int *hits;
    Team *team;
    atomic_int nested;
} Count;

static void hit(void *arg, int task)
{
    Count *c = arg;
    atomic_fetch_add(&c->hits[task], 1);
}

static void test_every_task_once(void **state)
{
    (void)state;
    static const int sizes[] = {1, 2, 3, 4};
    static const int counts[] = {0, 1, 2, 7, 1000};
    for (int s = 0; s < 4; s++) {
        Team *t = team_new(sizes[s]);
        assert_int_equal(team_size(t), sizes[s]);
        for (int c = 0; c < 5; c++)
            for (int round = 0; round < 50; round++) {
                atomic_int *hits = calloc((size_t)counts[c] + 1, sizeof *hits);
                Count k = {.hits = hits};
                team_run(t, counts[c], hit, &k);
                for (int i = 0; i < counts[c]; i++)
                    assert_int_equal(atomic_load(&hits[i]), 1);
                free(hits);
            }
        team_free(t);
    }
    assert_int_equal(team_size(NULL), 1);
}

static void nested(void *arg, int task)
{
    Count *c = arg;
    atomic_int inner[5] = {0};
    Count k = {.hits = inner};
    team_run(c->team, 5, hit, &k);   /* from inside a task: serial, but complete */
    for (int i = 0; i < 5; i++)
        if (atomic_load(&inner[i]) == 1)
            atomic_fetch_add(&c->nested, 1);
    atomic_fetch_add(&c->hits[task], 1);
    assert_null(team_ambient());   /* no forking from inside a task */
}

static void test_nested_sets_run_serially(void **state)
{
    (void)state;
    Team *t = team_new(3);
    atomic_int hits[16] = {0};
    Count k = {.hits = hits, .team = t};
    team_set_ambient(t);
    team_run(t, 16, nested, &k);
    assert_ptr_equal(team_ambient(), t);
    team_set_ambient(NULL);
    assert_int_equal(atomic_load(&k.nested), 16 * 5);
    for (int i = 0; i < 16; i++)
        assert_int_equal(atomic_load(&hits[i]), 1);
    team_free(t);
}

typedef struct Sharer {
    Team *team;
    int ok;
} Sharer;

static void *share(void *arg)
{
    Sharer *s = arg;
    for (int round = 0; round < 200; round++) {
        atomic_int hits[33] = {0};
        Count k = {.hits = hits};
        team_run(s->team, 33, hit, &k);
        for (int i = 0; i < 33; i++)
            s->ok &= atomic_load(&hits[i]) == 1;
    }
    return NULL;
}

static void test_two_callers_share_a_team(void **state)
{
    (void)state;
    Team *t = team_new(2);
    Sharer a = {t, 1}, b = {t, 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, share, &a), 0);
    share(&b);
    pthread_join(th, NULL);
    assert_true(a.ok && b.ok);
    team_free(t);
}

static double unit(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0 * 2 - 1;
}

/* One product without a team and with teams of 2 and 3, compared bit for bit. */
static void compare_product(bool dbl, int64_t M, int64_t N, int64_t K, bool ta, bool tb, bool accumulate, Team **teams)
{
    size_t es = dbl ? sizeof(double) : sizeof(float);
    int64_t lda = ta ? M : K, ldb = tb ? K : N, ldc = N + 3;
    size_t na = (size_t)(M * K), nb = (size_t)(K * N), nc = (size_t)(M * ldc);
    char *a = malloc(na * es), *b = malloc(nb * es), *c0 = malloc(nc * es), *c = malloc(nc * es);
    uint64_t seed = (uint64_t)(M * 131 + N * 17 + K);
    for (size_t i = 0; i < na; i++)
        dbl ? (void)(((double *)a)[i] = unit(&seed)) : (void)(((float *)a)[i] = (float)unit(&seed));
    for (size_t i = 0; i < nb; i++)
        dbl ? (void)(((double *)b)[i] = unit(&seed)) : (void)(((float *)b)[i] = (float)unit(&seed));
    for (size_t i = 0; i < nc; i++)
        dbl ? (void)(((double *)c0)[i] = unit(&seed)) : (void)(((float *)c0)[i] = (float)unit(&seed));
    char *want = malloc(nc * es);
    for (int t = -1; t < 2; t++) {
        memcpy(c, c0, nc * es);
        team_set_ambient(t < 0 ? NULL : teams[t]);
        if (dbl)
            fep_dgemm(M, N, K, (double *)a, lda, ta, (double *)b, ldb, tb, (double *)c, ldc, accumulate);
        else
            fep_sgemm(M, N, K, (float *)a, lda, ta, (float *)b, ldb, tb, (float *)c, ldc, accumulate);
        team_set_ambient(NULL);
        if (t < 0)
            memcpy(want, c, nc * es);
        else if (memcmp(want, c, nc * es))
            fail_msg("%s %lldx%lldx%lld ta=%d tb=%d acc=%d: team of %d differs from no team", dbl ? "dgemm" : "sgemm",
                     (long long)M, (long long)N, (long long)K, ta, tb, accumulate, team_size(teams[t]));
    }
    free(a);
    free(b);
    free(c0);
    free(c);
    free(want);
}

static void test_products_do_not_depend_on_the_team(void **state)
{
    (void)state;
    Team *teams[2] = {team_new(2), team_new(3)};
    static const int64_t shapes[][3] = {
        {64, 256, 784}, {256, 784, 64}, {64, 256, 256}, {256, 256, 64}, {64, 10, 256}, {10, 256, 64},
        {300, 40, 200}, {40, 300, 200}, {129, 257, 65}, {1000, 33, 70}, {8, 8, 8}, {64, 64, 512},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int flags = 0; flags < 8; flags++)
            for (int dbl = 0; dbl <= 1; dbl++)
                compare_product(dbl, shapes[s][0], shapes[s][1], shapes[s][2], flags & 1, flags & 2, flags & 4, teams);
    team_free(teams[0]);
    team_free(teams[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_task_once),
        cmocka_unit_test(test_nested_sets_run_serially),
        cmocka_unit_test(test_two_callers_share_a_team),
        cmocka_unit_test(test_products_do_not_depend_on_the_team),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
