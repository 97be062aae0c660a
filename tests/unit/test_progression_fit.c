/* test_progression_fit.c: stages/progression/fit.c apart from the CNN: the outcome-stratified
 * patient folds, and the cross-validation on sequences whose outcome is written in their
 * change over the visits, not in any one visit (a patient's level is drawn at random, and
 * progressing patients rise over the visits), where an LSTM must beat the logistic regression on
 * the last visit; missing values marked in the mask change nothing. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/stats/metrics.h"
#include "lib/util/mem.h"
#include "lib/util/philox.h"
#include "stages/progression/fit.h"

static void test_folds_stratified(void **state)
{
    (void)state;
    enum { N = 53, K = 5 };
    int outcome[N], included[N], fold[N], again[N];
    for (int i = 0; i < N; i++)
        outcome[i] = i % 3 != 0, included[i] = i != 7;
    prog_folds(N, outcome, included, K, 42, fold);
    prog_folds(N, outcome, included, K, 42, again);
    assert_memory_equal(fold, again, sizeof fold);
    int per[K][2] = {{0}};
    for (int i = 0; i < N; i++) {
        if (!included[i]) {
            assert_int_equal(fold[i], -1);
            continue;
        }
        assert_true(fold[i] >= 0 && fold[i] < K);
        per[fold[i]][outcome[i]]++;
    }
    for (int k = 0; k < K; k++)
        for (int c = 0; c < 2; c++) /* each class spread evenly */
            assert_true(abs(per[k][c] - per[0][c]) <= 1);
    prog_folds(N, outcome, included, K, 43, again);
    assert_memory_not_equal(fold, again, sizeof fold); /* the seed decides */
}

/* N patients, T visits, F = 2 features: feature 0 = level + slope * visit + noise, with slope 1
 * for progressing patients and 0 otherwise and the level uniform over a range wider than the
 * rise; feature 1 noise, missing at some visits (NaN there, mask 0). */
enum { N = 160, T = 4, F = 2 };

static void make_cohort(float *values, float *mask, float *gap, int *len, int *outcome, int *fold)
{
    Philox p;
    philox_init(&p, 9, PHILOX_TEST, 0);
    int included[N];
    for (int i = 0; i < N; i++) {
        outcome[i] = philox_uniform(&p) < 0.5;
        len[i] = 2 + (int)philox_below(&p, T - 1);
        included[i] = 1;
        double level = 6.0 * philox_uniform(&p);
        for (int v = 0; v < T; v++) {
            size_t at = ((size_t)i * T + v) * F;
            values[at] = (float)(level + outcome[i] * 1.0 * v + 0.1 * philox_normal(&p));
            mask[at] = 1.0f;
            int seen = philox_uniform(&p) < 0.7;
            values[at + 1] = seen ? (float)philox_normal(&p) : NAN;
            mask[at + 1] = seen ? 1.0f : 0.0f;
            gap[(size_t)i * T + v] = v ? 180.0f : 0.0f;
        }
    }
    prog_folds(N, outcome, included, 4, 3, fold);
}

static void test_lstm_sees_the_trajectory(void **state)
{
    (void)state;
    float *values = mem_alloc(N * T * F * sizeof(float)),
          *mask = mem_alloc(N * T * F * sizeof(float));
    float gap[N * T];
    int len[N], outcome[N], fold[N];
    double p_lstm[N], p_log[N];
    make_cohort(values, mask, gap, len, outcome, fold);
    ProgFit fit = {.hidden = 8,
                   .layers = 1,
                   .epochs = 150,
                   .batch = 32,
                   .lr = 0.01,
                   .weight_decay = 0.01,
                   .seed = 5,
                   .be = nn_backend_ref()};
    Err e = {0};
    assert_int_equal(prog_cross_validate(N, T, F, values, mask, gap, len, outcome, fold, 4, &fit,
                                         p_lstm, p_log, NULL, &e),
                     0);
    for (int i = 0; i < N; i++)
        assert_true(p_lstm[i] >= 0 && p_lstm[i] <= 1 && p_log[i] >= 0 && p_log[i] <= 1);
    double a_lstm = metrics_auc(p_lstm, outcome, N), a_log = metrics_auc(p_log, outcome, N);
    printf("# out-of-fold AUC: LSTM %.3f, last-visit logistic %.3f\n", a_lstm, a_log);
    assert_true(a_lstm > 0.85);
    assert_true(a_lstm > a_log + 0.1);

    /* garbage where the mask says missing, and past each patient's cut-off: the same bytes */
    double q_lstm[N], q_log[N];
    for (int i = 0; i < N; i++)
        for (int v = 0; v < T; v++) {
            size_t at = ((size_t)i * T + v) * F;
            if (mask[at + 1] == 0.0f)
                values[at + 1] = 1e30f;
            if (v >= len[i])
                values[at] = -7.0f, mask[at] = 0.0f;
        }
    assert_int_equal(prog_cross_validate(N, T, F, values, mask, gap, len, outcome, fold, 4, &fit,
                                         q_lstm, q_log, NULL, &e),
                     0);
    assert_memory_equal(p_lstm, q_lstm, sizeof p_lstm);
    assert_memory_equal(p_log, q_log, sizeof p_log);
    mem_free(values), mem_free(mask);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_folds_stratified),
        cmocka_unit_test(test_lstm_sees_the_trajectory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
