/* test_qa_consensus.c -- majority vote and Dawid-Skene, on small cases with known
 * answers and on two real crowdsourcing datasets with ground truth (tests/data/crowd:
 * Zheng et al., "Truth Inference in Crowdsourcing", PVLDB 10(5) 2017). */
#include "qa/consensus.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_majority_basics(void **state)
{
    (void)state;
    /* item 0: 2x label 1, 1x label 0; item 1: tie 0/1 -> lowest; item 2: no votes */
    tly_vote v[] = {{0, 0, 1}, {0, 1, 1}, {0, 2, 0}, {1, 0, 0}, {1, 1, 1}};
    tly_consensus c;
    tly_error err;
    assert_int_equal(tly_consensus_majority(v, 5, 3, 3, 2, NULL, &c, &err), 0);
    assert_int_equal(c.label[0], 1);
    assert_true(c.confidence[0] > 0.66 && c.confidence[0] < 0.67);
    assert_int_equal(c.label[1], 0);
    assert_int_equal(c.label[2], -1);
    assert_true(c.confidence[2] == 0);
    tly_consensus_free(&c);
    /* Weights: worker 2 trusted 3x outweighs the other two on item 0. */
    double w[] = {1, 1, 3};
    assert_int_equal(tly_consensus_majority(v, 5, 3, 3, 2, w, &c, &err), 0);
    assert_int_equal(c.label[0], 0);
    tly_consensus_free(&c);
    tly_vote bad[] = {{0, 0, 2}};
    assert_int_equal(tly_consensus_majority(bad, 1, 1, 1, 2, NULL, &c, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
}

/* Three honest workers and one who always gives the other label: Dawid-Skene learns
 * the liar's confusion matrix and stays right where a plain vote ties or flips. */
static void test_dawid_skene_learns_a_liar(void **state)
{
    (void)state;
    enum { ITEMS = 40 };
    tly_vote v[ITEMS * 4];
    size_t n = 0;
    for (int i = 0; i < ITEMS; i++) {
        int truth = i % 2;
        v[n++] = (tly_vote){i, 0, truth};
        v[n++] = (tly_vote){i, 1, i % 5 == 0 ? 1 - truth : truth};   /* sometimes wrong */
        v[n++] = (tly_vote){i, 2, i % 7 == 0 ? 1 - truth : truth};
        v[n++] = (tly_vote){i, 3, 1 - truth};                          /* always wrong */
    }
    tly_consensus c;
    tly_error err;
    double acc[4];
    assert_int_equal(tly_consensus_dawid_skene(v, n, ITEMS, 4, 2, 100, 1e-9, &c, acc, &err), 0);
    for (int i = 0; i < ITEMS; i++)
        assert_int_equal(c.label[i], i % 2);
    assert_true(acc[0] > 0.95);
    assert_true(acc[3] < 0.05);          /* recognised as reliably wrong */
    assert_true(c.iterations >= 1);
    tly_consensus_free(&c);
}

/* ---- real data ----------------------------------------------------------------------- */

typedef struct {
    tly_vote *votes;
    size_t n;
    int n_items, n_workers, n_labels;
    int *truth;   /* per item, -1 if unknown */
} dataset;

/* Dense index of id in ids (appending it when new). */
static int dense(long *ids, int *count, long id)
{
    for (int i = 0; i < *count; i++)
        if (ids[i] == id)
            return i;
    ids[*count] = id;
    return (*count)++;
}

/* Dense index of a worker id (a string: MTurk ids are not numbers). */
static int dense_str(char (*ids)[32], int *count, const char *id)
{
    for (int i = 0; i < *count; i++)
        if (strcmp(ids[i], id) == 0)
            return i;
    snprintf(ids[*count], sizeof ids[*count], "%s", id);
    return (*count)++;
}

static void load(const char *name, dataset *d)
{
    char path[512];
    static long items[20000];
    static char workers[5000][32];
    int ni = 0, nw = 0;
    memset(d, 0, sizeof *d);
    snprintf(path, sizeof path, "%s/crowd/%s/answer.csv", TALLY_TEST_DATA, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    size_t cap = 16384;
    d->votes = malloc(cap * sizeof *d->votes);
    assert_non_null(fgets(line, sizeof line, f));   /* header */
    long q, a;
    char w[32];
    while (fgets(line, sizeof line, f) && sscanf(line, "%ld,%31[^,],%ld", &q, w, &a) == 3) {
        assert_true(d->n < cap);
        d->votes[d->n++] = (tly_vote){dense(items, &ni, q), dense_str(workers, &nw, w), (int)a};
        if ((int)a + 1 > d->n_labels)
            d->n_labels = (int)a + 1;
    }
    fclose(f);
    d->n_items = ni;
    d->n_workers = nw;
    d->truth = malloc((size_t)ni * sizeof *d->truth);
    for (int i = 0; i < ni; i++)
        d->truth[i] = -1;
    snprintf(path, sizeof path, "%s/crowd/%s/truth.csv", TALLY_TEST_DATA, name);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    while (fgets(line, sizeof line, f) && sscanf(line, "%ld,%ld", &q, &a) == 2) {
        int before = ni, i = dense(items, &ni, q);
        if (ni == before)   /* only questions that have answers */
            d->truth[i] = (int)a;
        else
            ni = before;
    }
    fclose(f);
}

static double accuracy(const dataset *d, const tly_consensus *c)
{
    int right = 0, known = 0;
    for (int i = 0; i < d->n_items; i++)
        if (d->truth[i] >= 0) {
            known++;
            right += c->label[i] == d->truth[i];
        }
    return known ? (double)right / known : 0;
}

static void check_dataset(const char *name, double floor_mv, double floor_ds)
{
    dataset d;
    load(name, &d);
    tly_consensus mv, ds;
    tly_error err;
    assert_int_equal(tly_consensus_majority(d.votes, d.n, d.n_items, d.n_workers, d.n_labels, NULL, &mv, &err), 0);
    assert_int_equal(
        tly_consensus_dawid_skene(d.votes, d.n, d.n_items, d.n_workers, d.n_labels, 100, 1e-6, &ds, NULL, &err), 0);
    double a_mv = accuracy(&d, &mv), a_ds = accuracy(&d, &ds);
    printf("%s: %zu votes, %d items, %d workers, %d labels: majority %.4f, Dawid-Skene %.4f (%d rounds)\n", name,
           d.n, d.n_items, d.n_workers, d.n_labels, a_mv, a_ds, ds.iterations);
    assert_true(a_mv >= floor_mv);
    assert_true(a_ds >= floor_ds);
    assert_true(a_ds >= a_mv);   /* modelling each worker never does worse here */
    for (int i = 0; i < d.n_items; i++)
        assert_true(ds.confidence[i] >= 0 && ds.confidence[i] <= 1.0 + 1e-9);
    tly_consensus_free(&mv);
    tly_consensus_free(&ds);
    free(d.votes);
    free(d.truth);
}

static void test_duck(void **state)
{
    (void)state;
    /* Published for this data (Zheng et al. 2017): MV 0.7593, D&S 0.8981. */
    check_dataset("duck", 0.75, 0.89);
}

static void test_face_sentiment(void **state)
{
    (void)state;
    /* Published: MV ~0.63, D&S ~0.64. */
    check_dataset("face-sentiment", 0.62, 0.635);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_majority_basics),
        cmocka_unit_test(test_dawid_skene_learns_a_liar),
        cmocka_unit_test(test_duck),
        cmocka_unit_test(test_face_sentiment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
