/* test_qa_agreement.c -- Krippendorff's alpha (nominal) and pairwise percent agreement:
 * Krippendorff's own worked example (K. Krippendorff, "Computing Krippendorff's
 * Alpha-Reliability", 2011: 4 observers x 12 units with missing values, nominal
 * alpha = 0.743, exactly 113/152), the Wikipedia computational example (3 coders x 15
 * units, 0.691 = 56/81), and small cases computed by hand. The exact fractions were
 * recomputed independently by brute force over all pairs of values. */
#include "qa/agreement.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MISSING 0

/* Reliability data (observers x units, values from 1, MISSING = not coded) to votes
 * with label = value - 1. Returns the vote count. */
static size_t to_votes(const int *data, int observers, int units, tly_vote *out)
{
    size_t n = 0;
    for (int o = 0; o < observers; o++)
        for (int u = 0; u < units; u++)
            if (data[o * units + u] != MISSING)
                out[n++] = (tly_vote){u, o, data[o * units + u] - 1};
    return n;
}

static void assert_near(double got, double want)
{
    if (!(fabs(got - want) < 1e-12))
        fail_msg("got %.15f, want %.15f", got, want);
}

static void test_krippendorff_2011_example(void **state)
{
    (void)state;
    static const int data[4 * 12] = {
        /* A */ 1,       2, 3, 3, 2, 1, 4, 1, 2, MISSING, MISSING, MISSING,
        /* B */ 1,       2, 3, 3, 2, 2, 4, 1, 2, 5,       MISSING, 3,
        /* C */ MISSING, 3, 3, 3, 2, 3, 4, 2, 2, 5,       1,       MISSING,
        /* D */ 1,       2, 3, 3, 2, 4, 4, 1, 2, 5,       1,       MISSING,
    };
    tly_vote v[48];
    size_t n = to_votes(data, 4, 12, v);
    assert_int_equal(n, 41);   /* 40 pairable values; unit 12 holds a single one */
    double alpha, agree;
    tly_error err;
    assert_int_equal(tly_krippendorff_alpha_nominal(v, n, 12, 5, &alpha, &err), 0);
    assert_near(alpha, 113.0 / 152.0);
    assert_true(fabs(alpha - 0.743) < 0.0005);
    /* More label slots than used change nothing. */
    assert_int_equal(tly_krippendorff_alpha_nominal(v, n, 12, 9, &alpha, &err), 0);
    assert_near(alpha, 113.0 / 152.0);
    /* Order of the votes changes nothing. */
    for (size_t i = 0; i < n / 2; i++) {
        tly_vote t = v[i];
        v[i] = v[n - 1 - i];
        v[n - 1 - i] = t;
    }
    assert_int_equal(tly_krippendorff_alpha_nominal(v, n, 12, 5, &alpha, &err), 0);
    assert_near(alpha, 113.0 / 152.0);
    /* Percent agreement: 11 pairable units, 8 unanimous, two at 1/2, one at 0 -> 9/11. */
    assert_int_equal(tly_percent_agreement(v, n, 12, 5, &agree, &err), 0);
    assert_near(agree, 9.0 / 11.0);
}

static void test_wikipedia_example(void **state)
{
    (void)state;
    static const int data[3 * 15] = {
        /* A */ MISSING, MISSING, MISSING, MISSING, MISSING, 3, 4, 1,       2,       1,       1,       3,       3,       MISSING, 3,
        /* B */ 1,       MISSING, 2,       1,       3,       3, 4, 3,       MISSING, MISSING, MISSING, MISSING, MISSING, MISSING, MISSING,
        /* C */ MISSING, MISSING, 2,       1,       3,       4, 4, MISSING, 2,       1,       1,       3,       3,       MISSING, 4,
    };
    tly_vote v[45];
    size_t n = to_votes(data, 3, 15, v);
    double alpha, agree;
    assert_int_equal(tly_krippendorff_alpha_nominal(v, n, 15, 4, &alpha, NULL), 0);
    assert_near(alpha, 56.0 / 81.0);
    assert_int_equal(tly_percent_agreement(v, n, 15, 4, &agree, NULL), 0);
    assert_near(agree, 7.0 / 9.0);
}

static void test_hand_computed(void **state)
{
    (void)state;
    double alpha, agree;
    tly_error err;
    /* Perfect agreement with two labels in use: 1 and 1. */
    tly_vote perfect[] = {{0, 0, 0}, {0, 1, 0}, {0, 2, 0}, {1, 0, 1}, {1, 1, 1}, {2, 0, 1}, {2, 2, 1}};
    assert_int_equal(tly_krippendorff_alpha_nominal(perfect, 7, 3, 2, &alpha, &err), 0);
    assert_near(alpha, 1.0);
    assert_int_equal(tly_percent_agreement(perfect, 7, 3, 2, &agree, &err), 0);
    assert_near(agree, 1.0);
    /* Two coders who always differ: n = 4, n_0 = n_1 = 2, off-diagonal o = 4,
     * alpha = 1 - 3 * 4 / (16 - 8) = -0.5; no pair agrees. */
    tly_vote opposite[] = {{0, 0, 0}, {0, 1, 1}, {1, 0, 1}, {1, 1, 0}};
    assert_int_equal(tly_krippendorff_alpha_nominal(opposite, 4, 2, 2, &alpha, &err), 0);
    assert_near(alpha, -0.5);
    assert_int_equal(tly_percent_agreement(opposite, 4, 2, 2, &agree, &err), 0);
    assert_near(agree, 0.0);
    /* Units [0,0,1] and [1,1]: o_01 = o_10 = 2 * 1 / 2 = 1, n_0 = 2, n_1 = 3, n = 5:
     * alpha = 1 - 4 * 2 / (25 - 13) = 1/3. Percent: (2/6 + 2/2) / 2 = 2/3. A third,
     * single-vote unit is not pairable and changes neither. */
    tly_vote mixed[] = {{0, 0, 0}, {0, 1, 0}, {0, 2, 1}, {1, 0, 1}, {1, 1, 1}, {2, 0, 0}};
    assert_int_equal(tly_krippendorff_alpha_nominal(mixed, 6, 3, 2, &alpha, &err), 0);
    assert_near(alpha, 1.0 / 3.0);
    assert_int_equal(tly_percent_agreement(mixed, 6, 3, 2, &agree, &err), 0);
    assert_near(agree, 2.0 / 3.0);
    assert_int_equal(tly_krippendorff_alpha_nominal(mixed, 5, 3, 2, &alpha, &err), 0);
    assert_near(alpha, 1.0 / 3.0);
}

static void test_not_computable(void **state)
{
    (void)state;
    double alpha = 0, agree = 0;
    tly_error err;
    /* Every value the same label: D_e = 0, alpha undefined (NAN); agreement is 1. */
    tly_vote same[] = {{0, 0, 2}, {0, 1, 2}, {1, 0, 2}, {1, 1, 2}};
    assert_int_equal(tly_krippendorff_alpha_nominal(same, 4, 2, 3, &alpha, &err), 0);
    assert_true(isnan(alpha));
    assert_int_equal(tly_percent_agreement(same, 4, 2, 3, &agree, &err), 0);
    assert_near(agree, 1.0);
    /* Nothing pairable: one vote per item. */
    tly_vote single[] = {{0, 0, 0}, {1, 0, 1}, {2, 1, 0}};
    assert_int_equal(tly_krippendorff_alpha_nominal(single, 3, 3, 2, &alpha, &err), 0);
    assert_true(isnan(alpha));
    assert_int_equal(tly_percent_agreement(single, 3, 3, 2, &agree, &err), 0);
    assert_true(isnan(agree));
    /* No votes at all. */
    assert_int_equal(tly_krippendorff_alpha_nominal(NULL, 0, 0, 2, &alpha, &err), 0);
    assert_true(isnan(alpha));
    assert_int_equal(tly_percent_agreement(NULL, 0, 5, 2, &agree, &err), 0);
    assert_true(isnan(agree));
}

static void test_invalid_votes(void **state)
{
    (void)state;
    double x;
    tly_error err;
    tly_vote bad_label[] = {{0, 0, 0}, {0, 1, 2}};
    assert_int_equal(tly_krippendorff_alpha_nominal(bad_label, 2, 1, 2, &x, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_int_equal(tly_percent_agreement(bad_label, 2, 1, 2, &x, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    tly_vote bad_item[] = {{1, 0, 0}};
    assert_int_equal(tly_krippendorff_alpha_nominal(bad_item, 1, 1, 2, &x, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    tly_vote negative[] = {{0, -1, 0}};
    assert_int_equal(tly_percent_agreement(negative, 1, 1, 2, &x, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    tly_vote ok[] = {{0, 0, 0}};
    assert_int_equal(tly_krippendorff_alpha_nominal(ok, 1, 1, 0, &x, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_int_equal(tly_percent_agreement(ok, 1, -1, 1, &x, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_krippendorff_2011_example),
        cmocka_unit_test(test_wikipedia_example),
        cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_not_computable),
        cmocka_unit_test(test_invalid_votes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
