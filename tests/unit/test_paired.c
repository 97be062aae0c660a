/* test_paired.c: lib/stats/paired.c (Student t, the treatment response's mean with its t
 * interval, the paired t-test, the Wilcoxon signed-rank test) against
 * tests/fixtures/stats/paired_oracle.json: scipy's answers on fixed differences, written by
 * tools/paired_oracle.py. The data sets cover the exact and the normal-approximation paths of
 * Wilcoxon, zeros (dropped), ties (approximation, tie-corrected), n = 2 and all zeros. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/stats/paired.h"
#include "lib/util/fileio.h"
#include "lib/util/json.h"
#include "tests/unit/fixture_json.h"
#include "lib/util/mem.h"

static JsonValue *fx;

static const JsonValue *get(const JsonValue *v, const char *key)
{
    return fixture_get("paired_oracle.json", v, key);
}

static int load(void **state)
{
    (void)state;
    if (fixture_json_load("tests/fixtures/stats/paired_oracle.json", &fx))
        return -1;
    return 0;
}

static int unload(void **state)
{
    (void)state;
    json_value_free(fx);
    return 0;
}

/* want: a JSON number, or null for "undefined" (NaN here). Relative tolerance. */
static void close_to(double got, const JsonValue *want, double tol, const char *set,
                     const char *what)
{
    if (want->type != JSON_NUMBER) {
        if (!isnan(got))
            fail_msg("%s %s: %.17g, oracle undefined", set, what, got);
        return;
    }
    double w = want->number;
    if (!(fabs(got - w) <= tol * (1 + fabs(w))))
        fail_msg("%s %s: %.17g, oracle %.17g", set, what, got, w);
}

static void test_student_t(void **state)
{
    (void)state;
    const JsonValue *cdf = get(fx, "t_cdf"), *ppf = get(fx, "t_ppf");
    assert_true(cdf->n > 50 && ppf->n > 50);
    for (size_t i = 0; i < cdf->n; i++) {
        const JsonValue *r = &cdf->items[i];
        double df = r->items[0].number, t = r->items[1].number, want = r->items[2].number;
        double got = student_t_cdf(t, df);
        /* relative in the tail: p-values of 1e-20 must not read as 0 */
        if (!(fabs(got - want) <= 1e-10 * want + 1e-300 || fabs(got - want) <= 1e-12))
            fail_msg("t cdf(%g, df %g): %.17g, scipy %.17g", t, df, got, want);
    }
    for (size_t i = 0; i < ppf->n; i++) {
        const JsonValue *r = &ppf->items[i];
        double df = r->items[0].number, p = r->items[1].number, want = r->items[2].number;
        double got = student_t_quantile(p, df);
        if (!(fabs(got - want) <= 1e-9 * (1 + fabs(want))))
            fail_msg("t ppf(%g, df %g): %.17g, scipy %.17g", p, df, got, want);
    }
}

static void test_paired_summary(void **state)
{
    (void)state;
    const JsonValue *sets = get(fx, "sets");
    int exact = 0, approx = 0;
    for (size_t k = 0; k < sets->n; k++) {
        const JsonValue *s = &sets->items[k], *dj = get(s, "d");
        const char *name = json_get_string(s, "name");
        double *d = mem_alloc((dj->n + 1) * sizeof *d);
        for (size_t i = 0; i < dj->n; i++)
            d[i] = dj->items[i].number;
        int levels[2] = {95, 90};
        for (int l = 0; l < 2; l++) {
            PairedSummary ps;
            assert_int_equal(paired_summary(d, (int)dj->n, levels[l] / 100.0, &ps), 0);
            char key[16];
            snprintf(key, sizeof key, "t_ci_%d", levels[l]);
            const JsonValue *ci = get(s, key);
            close_to(ps.t_lo, &ci->items[0], 1e-10, name, "t interval low");
            close_to(ps.t_hi, &ci->items[1], 1e-10, name, "t interval high");
            if (l)
                continue;
            close_to(ps.mean, get(s, "mean"), 1e-13, name, "mean");
            close_to(ps.sd, get(s, "sd"), 1e-12, name, "sd");
            const JsonValue null = {.type = JSON_NULL};
            const JsonValue *ts = json_get(s, "t_stat"), *tp = json_get(s, "t_p");
            close_to(ps.t_stat, ts ? ts : &null, 1e-11, name, "t statistic");
            close_to(ps.t_p, tp ? tp : &null, 1e-9, name, "t-test p");
            close_to(ps.w_stat, get(s, "w_stat"), 0, name, "Wilcoxon statistic");
            close_to(ps.w_p, get(s, "w_p"), 1e-11, name, "Wilcoxon p");
            assert_int_equal(ps.w_n, (int)json_get_number(s, "w_n", -1));
            if (ps.w_n) {
                assert_int_equal(ps.w_exact, (int)json_get_number(s, "w_exact", -1));
                exact += ps.w_exact, approx += !ps.w_exact;
            }
        }
        mem_free(d);
    }
    assert_true(exact >= 3 && approx >= 2); /* both paths were exercised */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_student_t),
        cmocka_unit_test(test_paired_summary),
    };
    return cmocka_run_group_tests(tests, load, unload);
}
