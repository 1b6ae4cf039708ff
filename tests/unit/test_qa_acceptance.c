/* test_qa_acceptance.c -- ISO 2859-1 / ANSI/ASQ Z1.4 / MIL-STD-105E single sampling,
 * normal inspection: Table 1 at every range boundary and level, every cell of Table
 * 2-A after its arrows are followed, the 100% inspection rule, AQL snapping and
 * errors, and the random sample (determinism, distinctness, uniformity).
 *
 * The expected Table 2-A values below are the arrow-resolved sample size and Ac of
 * each code letter (row) and AQL (column), as tabulated in Lawson's R package
 * AQLSchemes (R/AAZ14Single.R, normal inspection), which was itself checked against
 * the MIL-STD-105E text; qa/acceptance.c stores the printed table (numbers and
 * arrows) instead, so the two encodings check each other. */
#include "qa/acceptance.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

static const char *LETTERS = "ABCDEFGHJKLMNPQR";
static const long N_OF[16] = {2, 3, 5, 8, 13, 20, 32, 50, 80, 125, 200, 315, 500, 800, 1250, 2000};
static const double AQLS[26] = {0.010, 0.015, 0.025, 0.040, 0.065, 0.10, 0.15, 0.25, 0.40,
                                0.65,  1.0,   1.5,   2.5,   4.0,   6.5,  10,   15,   25,
                                40,    65,    100,   150,   250,   400,  650,  1000};

/* Table 1 (lot size ranges x S-1 S-2 S-3 S-4 I II III), as printed. */
static const struct {
    long lo, hi;   /* hi < 0: and over */
    const char *letters;
} TABLE1[15] = {
    {2, 8, "AAAAAAB"},          {9, 15, "AAAAABC"},          {16, 25, "AABBBCD"},
    {26, 50, "ABBCCDE"},        {51, 90, "BBCCCEF"},         {91, 150, "BBCDDFG"},
    {151, 280, "BCDEEGH"},      {281, 500, "BCDEFHJ"},       {501, 1200, "CCEFGJK"},
    {1201, 3200, "CDEGHKL"},    {3201, 10000, "CDFGJLM"},    {10001, 35000, "CDFHKMN"},
    {35001, 150000, "DEGJLNP"}, {150001, 500000, "DEGJMPQ"}, {500001, -1, "DEHKNQR"},
};

/* Table 2-A, arrows followed: sample size and Ac (AQLSchemes, normal inspection). */
static const short AQLSCHEMES_N[16][26] = {
    /* A */ {1250, 800, 500, 315, 200, 125, 80, 50, 32, 20, 13, 8, 5, 3, 2, 5, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2},
    /* B */ {1250, 800, 500, 315, 200, 125, 80, 50, 32, 20, 13, 8, 5, 3, 2, 5, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3},
    /* C */ {1250, 800, 500, 315, 200, 125, 80, 50, 32, 20, 13, 8, 5, 3, 8, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 3},
    /* D */ {1250, 800, 500, 315, 200, 125, 80, 50, 32, 20, 13, 8, 5, 13, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 5, 3},
    /* E */ {1250, 800, 500, 315, 200, 125, 80, 50, 32, 20, 13, 8, 20, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 8, 5, 3},
    /* F */ {1250, 800, 500, 315, 200, 125, 80, 50, 32, 20, 13, 32, 20, 20, 20, 20, 20, 20, 20, 20, 13, 13, 13, 8, 5, 3},
    /* G */ {1250, 800, 500, 315, 200, 125, 80, 50, 32, 20, 50, 32, 32, 32, 32, 32, 32, 32, 32, 20, 13, 13, 13, 8, 5, 3},
    /* H */ {1250, 800, 500, 315, 200, 125, 80, 50, 32, 80, 50, 50, 50, 50, 50, 50, 50, 50, 32, 20, 13, 13, 13, 8, 5, 3},
    /* J */ {1250, 800, 500, 315, 200, 125, 80, 50, 125, 80, 80, 80, 80, 80, 80, 80, 80, 50, 32, 20, 13, 13, 13, 8, 5, 3},
    /* K */ {1250, 800, 500, 315, 200, 125, 80, 200, 125, 125, 125, 125, 125, 125, 125, 125, 80, 50, 32, 20, 13, 13, 13, 8, 5, 3},
    /* L */ {1250, 800, 500, 315, 200, 125, 315, 200, 200, 200, 200, 200, 200, 200, 200, 125, 80, 50, 32, 20, 13, 13, 13, 8, 5, 3},
    /* M */ {1250, 800, 500, 315, 200, 500, 315, 315, 315, 315, 315, 315, 315, 315, 200, 125, 80, 50, 32, 20, 13, 13, 13, 8, 5, 3},
    /* N */ {1250, 800, 500, 315, 800, 500, 500, 500, 500, 500, 500, 500, 500, 315, 200, 125, 80, 50, 32, 20, 13, 13, 13, 8, 5, 3},
    /* P */ {1250, 800, 500, 1250, 800, 800, 800, 800, 800, 800, 800, 800, 500, 315, 200, 125, 80, 50, 32, 20, 13, 13, 13, 8, 5, 3},
    /* Q */ {1250, 800, 2000, 1250, 1250, 1250, 1250, 1250, 1250, 1250, 1250, 800, 500, 315, 200, 125, 80, 50, 32, 20, 13, 13, 13, 8, 5, 3},
    /* R */ {1250, 800, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 1250, 800, 500, 315, 200, 125, 80, 50, 32, 20, 13, 13, 13, 8, 5, 3},
};
static const signed char AQLSCHEMES_AC[16][26] = {
    /* A */ {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 3, 5, 7, 10, 14, 21, 30},
    /* B */ {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 5, 7, 10, 14, 21, 30, 44},
    /* C */ {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 5, 7, 10, 14, 21, 30, 44, 44},
    /* D */ {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 5, 7, 10, 14, 21, 30, 44, 44, 44},
    /* E */ {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 5, 7, 10, 14, 21, 30, 44, 44, 44, 44},
    /* F */ {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 5, 7, 10, 14, 21, 21, 30, 44, 44, 44, 44},
    /* G */ {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 5, 7, 10, 14, 21, 21, 21, 30, 44, 44, 44, 44},
    /* H */ {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 5, 7, 10, 14, 21, 21, 21, 21, 30, 44, 44, 44, 44},
    /* J */ {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 5, 7, 10, 14, 21, 21, 21, 21, 21, 30, 44, 44, 44, 44},
    /* K */ {0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 5, 7, 10, 14, 21, 21, 21, 21, 21, 21, 30, 44, 44, 44, 44},
    /* L */ {0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 5, 7, 10, 14, 21, 21, 21, 21, 21, 21, 21, 30, 44, 44, 44, 44},
    /* M */ {0, 0, 0, 0, 0, 1, 1, 2, 3, 5, 7, 10, 14, 21, 21, 21, 21, 21, 21, 21, 21, 30, 44, 44, 44, 44},
    /* N */ {0, 0, 0, 0, 1, 1, 2, 3, 5, 7, 10, 14, 21, 21, 21, 21, 21, 21, 21, 21, 21, 30, 44, 44, 44, 44},
    /* P */ {0, 0, 0, 1, 1, 2, 3, 5, 7, 10, 14, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 30, 44, 44, 44, 44},
    /* Q */ {0, 0, 1, 1, 2, 3, 5, 7, 10, 14, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 30, 44, 44, 44, 44},
    /* R */ {0, 0, 1, 2, 3, 5, 7, 10, 14, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 30, 44, 44, 44, 44},
};

static tly_acceptance_plan plan(long lot, double aql, tly_inspection_level level)
{
    tly_acceptance_plan p;
    tly_error err;
    memset(&p, 0, sizeof p);
    int rc = tly_acceptance_plan_for(lot, aql, level, &p, &err);
    if (rc != 0)
        fail_msg("lot %ld aql %g level %d: %s", lot, aql, (int)level, err.message);
    return p;
}

static int letter_index(char c)
{
    const char *at = strchr(LETTERS, c);
    assert_non_null(at);
    return (int)(at - LETTERS);
}

static void test_table1_every_boundary(void **state)
{
    (void)state;
    for (int r = 0; r < 15; r++) {
        long lots[3] = {TABLE1[r].lo, TABLE1[r].hi, TABLE1[r].lo + 1};
        if (TABLE1[r].hi < 0) {
            lots[1] = 2000000000L;
            lots[2] = 10000000L;
        }
        for (int k = 0; k < 3; k++)
            for (int lv = TLY_INSPECTION_S1; lv <= TLY_INSPECTION_III; lv++) {
                tly_acceptance_plan p = plan(lots[k], 1.0, (tly_inspection_level)lv);
                if (p.code_letter != TABLE1[r].letters[lv])
                    fail_msg("lot %ld level %d: %c, expected %c", lots[k], lv, p.code_letter,
                             TABLE1[r].letters[lv]);
            }
    }
    /* Spot checks against the printed Level II column. */
    assert_int_equal(plan(8, 1.0, TLY_INSPECTION_II).code_letter, 'A');
    assert_int_equal(plan(9, 1.0, TLY_INSPECTION_II).code_letter, 'B');
    assert_int_equal(plan(500, 1.0, TLY_INSPECTION_II).code_letter, 'H');
    assert_int_equal(plan(501, 1.0, TLY_INSPECTION_II).code_letter, 'J');
    assert_int_equal(plan(500000, 1.0, TLY_INSPECTION_II).code_letter, 'P');
    assert_int_equal(plan(500001, 1.0, TLY_INSPECTION_II).code_letter, 'Q');
    assert_int_equal(plan(500001, 1.0, TLY_INSPECTION_III).code_letter, 'R');
    assert_int_equal(plan(1, 1.0, TLY_INSPECTION_II).code_letter, 'A');   /* below the table */
}

/* For each code letter, the (lot, level) of Table 1 with the largest lot giving it, so
 * that as few plans as possible are cut to 100% inspection. */
static void largest_lot_for(char letter, long *lot, tly_inspection_level *level)
{
    *lot = 0;
    for (int r = 0; r < 15; r++)
        for (int lv = 0; lv < 7; lv++)
            if (TABLE1[r].letters[lv] == letter) {
                long hi = TABLE1[r].hi < 0 ? 10000000L : TABLE1[r].hi;
                if (hi > *lot) {
                    *lot = hi;
                    *level = (tly_inspection_level)lv;
                }
            }
    assert_true(*lot > 0);
}

static void test_table2a_every_cell(void **state)
{
    (void)state;
    for (int row = 0; row < 16; row++) {
        long lot;
        tly_inspection_level level = TLY_INSPECTION_II;
        largest_lot_for(LETTERS[row], &lot, &level);
        for (int col = 0; col < 26; col++) {
            tly_acceptance_plan p = plan(lot, AQLS[col], level);
            assert_int_equal(p.code_letter, LETTERS[row]);
            long n = N_OF[letter_index(p.plan_letter)];
            if (n != AQLSCHEMES_N[row][col] || p.accept != AQLSCHEMES_AC[row][col])
                fail_msg("letter %c AQL %g: plan %c n=%ld Ac=%d, expected n=%d Ac=%d", LETTERS[row],
                         AQLS[col], p.plan_letter, n, p.accept, AQLSCHEMES_N[row][col],
                         AQLSCHEMES_AC[row][col]);
            assert_int_equal(p.reject, p.accept + 1);
            assert_int_equal(p.sample_size, n < lot ? n : lot);
            assert_true(p.aql == AQLS[col]);
        }
    }
}

static void test_published_examples(void **state)
{
    (void)state;
    /* Lot 1000, level II: J, n = 80; AQL 1.0 on J: Ac 2 Re 3. */
    tly_acceptance_plan p = plan(1000, 1.0, TLY_INSPECTION_II);
    assert_int_equal(p.code_letter, 'J');
    assert_int_equal(p.plan_letter, 'J');
    assert_int_equal(p.sample_size, 80);
    assert_int_equal(p.accept, 2);
    assert_int_equal(p.reject, 3);
    /* Lot 50, level II: D (n = 8); AQL 1.0 is an arrow down to E's 0/1, n = 13. */
    p = plan(50, 1.0, TLY_INSPECTION_II);
    assert_int_equal(p.code_letter, 'D');
    assert_int_equal(p.plan_letter, 'E');
    assert_int_equal(p.sample_size, 13);
    assert_int_equal(p.accept, 0);
    assert_int_equal(p.reject, 1);
    /* K (lot 1201-3200, level II) at AQL 0.65: n = 125, Ac 2 Re 3. */
    p = plan(3200, 0.65, TLY_INSPECTION_II);
    assert_int_equal(p.code_letter, 'K');
    assert_int_equal(p.sample_size, 125);
    assert_int_equal(p.accept, 2);
    assert_int_equal(p.reject, 3);
    /* K at 2.5: 7/8; at 0.10: 0/1; at 0.15: arrow up to J's 0/1 (n = 80); at 0.25:
     * arrow down to L's 1/2 (n = 200); at 15: arrow up to J's 21/22 (n = 80). */
    p = plan(2000, 2.5, TLY_INSPECTION_II);
    assert_int_equal(p.accept, 7);
    assert_int_equal(p.sample_size, 125);
    p = plan(2000, 0.10, TLY_INSPECTION_II);
    assert_int_equal(p.plan_letter, 'K');
    assert_int_equal(p.accept, 0);
    p = plan(2000, 0.15, TLY_INSPECTION_II);
    assert_int_equal(p.plan_letter, 'J');
    assert_int_equal(p.sample_size, 80);
    assert_int_equal(p.accept, 0);
    p = plan(2000, 0.25, TLY_INSPECTION_II);
    assert_int_equal(p.plan_letter, 'L');
    assert_int_equal(p.sample_size, 200);
    assert_int_equal(p.accept, 1);
    p = plan(2000, 15, TLY_INSPECTION_II);
    assert_int_equal(p.plan_letter, 'J');
    assert_int_equal(p.accept, 21);
    /* Letter A (S-1, lot 26-50) at AQL 4.0: arrow down to B's 0/1, n = 3. */
    p = plan(50, 4.0, TLY_INSPECTION_S1);
    assert_int_equal(p.code_letter, 'A');
    assert_int_equal(p.plan_letter, 'B');
    assert_int_equal(p.sample_size, 3);
    assert_int_equal(p.accept, 0);
    /* A at 6.5 is its own 0/1; at 1000, 30/31. */
    p = plan(50, 6.5, TLY_INSPECTION_S1);
    assert_int_equal(p.plan_letter, 'A');
    assert_int_equal(p.sample_size, 2);
    assert_int_equal(p.accept, 0);
    p = plan(50, 1000, TLY_INSPECTION_S1);
    assert_int_equal(p.accept, 30);
    assert_int_equal(p.reject, 31);
    /* The two arrows at the table's edge: A at 10 -> C's 1/2 (n = 5); R at 0.015 ->
     * P's 0/1 (n = 800); R at 0.010 -> Q's 0/1 (n = 1250). */
    p = plan(50, 10, TLY_INSPECTION_S1);
    assert_int_equal(p.plan_letter, 'C');
    assert_int_equal(p.accept, 1);
    p = plan(600000, 0.015, TLY_INSPECTION_III);
    assert_int_equal(p.code_letter, 'R');
    assert_int_equal(p.plan_letter, 'P');
    assert_int_equal(p.sample_size, 800);
    assert_int_equal(p.accept, 0);
    p = plan(600000, 0.010, TLY_INSPECTION_III);
    assert_int_equal(p.plan_letter, 'Q');
    assert_int_equal(p.sample_size, 1250);
    /* R at 0.65: 21/22 on n = 2000; at 1.0 the column's plan above, Q's 21/22. */
    p = plan(600000, 0.65, TLY_INSPECTION_III);
    assert_int_equal(p.sample_size, 2000);
    assert_int_equal(p.accept, 21);
    p = plan(600000, 1.0, TLY_INSPECTION_III);
    assert_int_equal(p.plan_letter, 'Q');
    assert_int_equal(p.accept, 21);
    /* Lot 10,000 level II at the project default 1.0: L, n = 200, Ac 5 Re 6. */
    p = plan(10000, 1.0, TLY_INSPECTION_II);
    assert_int_equal(p.code_letter, 'L');
    assert_int_equal(p.sample_size, 200);
    assert_int_equal(p.accept, 5);
    assert_int_equal(p.reject, 6);
}

static void test_full_inspection_of_small_lots(void **state)
{
    (void)state;
    /* Lot 5 (A): AQL 0.65 points down to F (n = 20) > 5: inspect all 5, Ac stays 0. */
    tly_acceptance_plan p = plan(5, 0.65, TLY_INSPECTION_II);
    assert_int_equal(p.code_letter, 'A');
    assert_int_equal(p.plan_letter, 'F');
    assert_int_equal(p.sample_size, 5);
    assert_int_equal(p.accept, 0);
    /* Lot 2 at 0.010: Q's n = 1250 -> 2. */
    p = plan(2, 0.010, TLY_INSPECTION_II);
    assert_int_equal(p.plan_letter, 'Q');
    assert_int_equal(p.sample_size, 2);
    /* Lot 1 (below Table 1): the one item. */
    p = plan(1, 1.0, TLY_INSPECTION_II);
    assert_int_equal(p.sample_size, 1);
    /* Equal: lot 13 (B) at 1.0 -> E's n = 13 = lot. */
    p = plan(13, 1.0, TLY_INSPECTION_II);
    assert_int_equal(p.plan_letter, 'E');
    assert_int_equal(p.sample_size, 13);
    /* Lot 8 (A) at 6.5: n = 2 < 8, a real sample. */
    p = plan(8, 6.5, TLY_INSPECTION_II);
    assert_int_equal(p.sample_size, 2);
}

static void test_aql_snapping_and_errors(void **state)
{
    (void)state;
    tly_acceptance_plan p;
    tly_error err;
    /* Non-preferred values snap down to the stricter plan. */
    p = plan(1000, 2.0, TLY_INSPECTION_II);
    assert_true(p.aql == 1.5);
    assert_int_equal(p.accept, 3);   /* J at 1.5 */
    p = plan(1000, 0.0999, TLY_INSPECTION_II);
    assert_true(p.aql == 0.065);
    p = plan(1000, 0.1, TLY_INSPECTION_II);
    assert_true(p.aql == 0.10);
    p = plan(1000, 0.01, TLY_INSPECTION_II);
    assert_true(p.aql == 0.010);
    p = plan(1000, 99.9, TLY_INSPECTION_II);
    assert_true(p.aql == 65);
    p = plan(1000, 1000, TLY_INSPECTION_II);
    assert_true(p.aql == 1000);
    /* Out of range. */
    double bad_aql[] = {0, -1, 0.0099, 1000.5, 5000, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad_aql / sizeof bad_aql[0]; i++) {
        assert_int_equal(tly_acceptance_plan_for(1000, bad_aql[i], TLY_INSPECTION_II, &p, &err), -1);
        assert_int_equal(err.status, TLY_E_INVALID);
        assert_string_equal(err.code, "invalid_aql");
        assert_non_null(strstr(err.message, "0.010, 0.015"));
    }
    assert_int_equal(tly_acceptance_plan_for(0, 1.0, TLY_INSPECTION_II, &p, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_string_equal(err.code, "invalid_lot_size");
    assert_int_equal(tly_acceptance_plan_for(-3, 1.0, TLY_INSPECTION_II, &p, &err), -1);
    assert_int_equal(tly_acceptance_plan_for(100, 1.0, (tly_inspection_level)7, &p, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_int_equal(tly_acceptance_plan_for(100, 1.0, (tly_inspection_level)-1, &p, &err), -1);
    assert_int_equal(tly_acceptance_plan_for(0, 1.0, TLY_INSPECTION_II, &p, NULL), -1);
}

static void test_decide(void **state)
{
    (void)state;
    tly_acceptance_plan p = plan(1000, 1.0, TLY_INSPECTION_II);   /* Ac 2 Re 3 */
    assert_int_equal(tly_acceptance_decide(&p, 0), 1);
    assert_int_equal(tly_acceptance_decide(&p, 2), 1);
    assert_int_equal(tly_acceptance_decide(&p, 3), 0);
    assert_int_equal(tly_acceptance_decide(&p, 80), 0);
    p = plan(50, 1.0, TLY_INSPECTION_II);   /* Ac 0 */
    assert_int_equal(tly_acceptance_decide(&p, 0), 1);
    assert_int_equal(tly_acceptance_decide(&p, 1), 0);
}

static void assert_valid_sample(const long *s, long k, long lot)
{
    for (long i = 0; i < k; i++) {
        assert_true(s[i] >= 0 && s[i] < lot);
        if (i > 0)
            assert_true(s[i] > s[i - 1]);   /* sorted and distinct */
    }
}

static void test_sample_determinism_and_distinctness(void **state)
{
    (void)state;
    long a[2000], b[2000];
    tly_acceptance_sample(1000000, 2000, 42, a);
    tly_acceptance_sample(1000000, 2000, 42, b);
    assert_memory_equal(a, b, sizeof a);
    assert_valid_sample(a, 2000, 1000000);
    tly_acceptance_sample(1000000, 2000, 43, b);
    assert_true(memcmp(a, b, sizeof a) != 0);
    /* Dense: 79 of 80, every index but one. */
    tly_acceptance_sample(80, 79, 7, a);
    assert_valid_sample(a, 79, 80);
    /* Whole lot. */
    tly_acceptance_sample(5, 5, 1, a);
    for (long i = 0; i < 5; i++)
        assert_int_equal(a[i], i);
    tly_acceptance_sample(5, 20, 1, a);   /* more than the lot: the lot */
    for (long i = 0; i < 5; i++)
        assert_int_equal(a[i], i);
    /* Nothing to do. */
    a[0] = -7;
    tly_acceptance_sample(10, 0, 1, a);
    tly_acceptance_sample(0, 3, 1, a);
    assert_int_equal(a[0], -7);
    /* Large samples take the selection-sampling path. */
    long *big = malloc(30000 * sizeof *big), *big2 = malloc(30000 * sizeof *big2);
    assert_non_null(big);
    assert_non_null(big2);
    tly_acceptance_sample(100000, 30000, 9, big);
    tly_acceptance_sample(100000, 30000, 9, big2);
    assert_valid_sample(big, 30000, 100000);
    assert_memory_equal(big, big2, 30000 * sizeof *big);
    free(big);
    free(big2);
}

/* Uniformity: every 2-subset of 5 items (10 of them) about equally often, and every
 * index of a 10-item lot chosen about k/N of the time, on both algorithms' paths. */
static void test_sample_uniformity(void **state)
{
    (void)state;
    enum { ROUNDS = 50000 };
    long counts[5][5] = {{0}};
    long s[3];
    for (uint64_t seed = 0; seed < ROUNDS; seed++) {
        tly_acceptance_sample(5, 2, seed, s);
        counts[s[0]][s[1]]++;
    }
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)   /* expected 5000, sd ~67 */
            assert_true(labs(counts[i][j] - ROUNDS / 10) < 400);
    long hits[10] = {0};
    for (uint64_t seed = 0; seed < ROUNDS; seed++) {
        tly_acceptance_sample(10, 3, seed * 7919 + 1, s);
        for (int i = 0; i < 3; i++)
            hits[s[i]]++;
    }
    for (int i = 0; i < 10; i++)   /* expected 15000, sd ~102 */
        assert_true(labs(hits[i] - ROUNDS * 3 / 10) < 600);
    /* Selection sampling: 9000 of 18000, each index's frequency over 200 seeds ~ 1/2. */
    long *big = malloc(9000 * sizeof *big);
    long *freq = calloc(18000, sizeof *freq);
    assert_non_null(big);
    assert_non_null(freq);
    for (uint64_t seed = 0; seed < 200; seed++) {
        tly_acceptance_sample(18000, 9000, seed, big);
        for (int i = 0; i < 9000; i++)
            freq[big[i]]++;
    }
    long first = 0, last = 0;   /* the first and last thousand indices, each expected 100000 */
    for (int i = 0; i < 1000; i++) {
        first += freq[i];
        last += freq[17000 + i];
    }
    assert_true(labs(first - 100000) < 2500);
    assert_true(labs(last - 100000) < 2500);
    free(big);
    free(freq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table1_every_boundary),
        cmocka_unit_test(test_table2a_every_cell),
        cmocka_unit_test(test_published_examples),
        cmocka_unit_test(test_full_inspection_of_small_lots),
        cmocka_unit_test(test_aql_snapping_and_errors),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_sample_determinism_and_distinctness),
        cmocka_unit_test(test_sample_uniformity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
