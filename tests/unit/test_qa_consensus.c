/* test_qa_consensus.c -- majority vote and Dawid-Skene (plain, with known labels, with
 * the pooled worker prior), on small cases with known answers, against a textbook EM
 * written out here, and on two real crowdsourcing datasets with ground truth
 * (tests/data/crowd: Zheng et al., "Truth Inference in Crowdsourcing", PVLDB 10(5) 2017). */
#include "qa/consensus.h"

#include <math.h>
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

/* ---- Dawid-Skene with options -------------------------------------------------------- */

/* A small deterministic generator for synthetic crowds. */
static uint64_t rnd_state;
static uint32_t rnd(void)
{
    rnd_state = rnd_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rnd_state >> 33);
}
static double rnd01(void)
{
    return rnd() / 2147483648.0;
}

/* n_items items with `per` votes each from distinct workers drawn with weights
 * 1/(w+1)^skew (skew 0: uniform); worker w is right with probability acc[w], else a
 * uniformly other label. truth (n_items) is filled; returns the votes (caller frees). */
static tly_vote *synth(int n_items, int per, int n_workers, int L, const double *acc, double skew, int *truth,
                       size_t *n_out)
{
    tly_vote *v = malloc((size_t)n_items * per * sizeof *v);
    double *cum = malloc((size_t)n_workers * sizeof *cum), total = 0;
    assert_non_null(v);
    assert_non_null(cum);
    for (int w = 0; w < n_workers; w++)
        cum[w] = total += pow(w + 1, -skew);
    size_t n = 0;
    for (int i = 0; i < n_items; i++) {
        truth[i] = (int)(rnd() % (uint32_t)L);
        int first = (int)n;
        for (int j = 0; j < per; j++) {
            int w, again;
            do {
                double x = rnd01() * total;
                w = 0;
                while (w < n_workers - 1 && cum[w] <= x)
                    w++;
                again = 0;
                for (int k = first; k < (int)n; k++)
                    again |= v[k].worker == w;
            } while (again);
            int label = truth[i];
            if (rnd01() >= acc[w])
                label = (truth[i] + 1 + (int)(rnd() % (uint32_t)(L - 1))) % L;
            v[n++] = (tly_vote){i, w, label};
        }
    }
    free(cum);
    *n_out = n;
    return v;
}

static double share_right(const tly_consensus *c, const int *truth, int n_items)
{
    int right = 0;
    for (int i = 0; i < n_items; i++)
        right += c->label[i] == truth[i];
    return (double)right / n_items;
}

/* The old entry point is the new one with the same settings, bit for bit. */
static void test_dawid_skene_ex_matches_wrapper(void **state)
{
    (void)state;
    enum { ITEMS = 500, WORKERS = 30, L = 3 };
    double acc[WORKERS];
    int truth[ITEMS];
    rnd_state = 7;
    for (int w = 0; w < WORKERS; w++)
        acc[w] = 0.4 + 0.5 * rnd01();
    size_t n;
    tly_vote *v = synth(ITEMS, 4, WORKERS, L, acc, 0.5, truth, &n);
    tly_consensus a, b;
    tly_error err;
    double wa[WORKERS], wb[WORKERS];
    assert_int_equal(tly_consensus_dawid_skene(v, n, ITEMS, WORKERS, L, 100, 1e-6, &a, wa, &err), 0);
    tly_ds_params p = {.max_iter = 100, .tol = 1e-6, .worker_accuracy = wb};
    assert_int_equal(tly_consensus_dawid_skene_ex(v, n, ITEMS, WORKERS, L, &p, &b, &err), 0);
    assert_int_equal(a.iterations, b.iterations);
    assert_memory_equal(a.label, b.label, sizeof(int) * ITEMS);
    assert_memory_equal(a.confidence, b.confidence, sizeof(double) * ITEMS);
    assert_memory_equal(wa, wb, sizeof wa);
    tly_consensus_free(&b);
    /* Deterministic: a second run gives the same bits. */
    assert_int_equal(tly_consensus_dawid_skene_ex(v, n, ITEMS, WORKERS, L, &p, &b, &err), 0);
    assert_memory_equal(a.confidence, b.confidence, sizeof(double) * ITEMS);
    tly_consensus_free(&b);
    /* max_iter 0 through the old entry point: the majority vote. */
    tly_consensus mv;
    assert_int_equal(tly_consensus_dawid_skene(v, n, ITEMS, WORKERS, L, 0, 1e-6, &b, NULL, &err), 0);
    assert_int_equal(tly_consensus_majority(v, n, ITEMS, WORKERS, L, NULL, &mv, &err), 0);
    assert_int_equal(b.iterations, 0);
    assert_memory_equal(b.label, mv.label, sizeof(int) * ITEMS);
    tly_consensus_free(&a);
    tly_consensus_free(&b);
    tly_consensus_free(&mv);
    free(v);
}

/* Textbook Dawid-Skene, written the plain way (votes in input order, logarithms per
 * vote): the reference the grouped, precomputed implementation must agree with. */
static void reference_ds(const tly_vote *v, size_t n, int n_items, int n_workers, int L, int rounds, double *T)
{
    const double a = 0.01;
    double *pi = malloc((size_t)n_workers * L * L * sizeof *pi), *lt = malloc((size_t)n_items * L * sizeof *lt),
           prior[8];
    assert_non_null(pi);
    assert_non_null(lt);
    memset(T, 0, (size_t)n_items * L * sizeof *T);
    for (size_t x = 0; x < n; x++)
        T[(size_t)v[x].item * L + v[x].label] += 1;
    for (int i = 0; i < n_items; i++) {
        double s = 0;
        for (int k = 0; k < L; k++)
            s += T[(size_t)i * L + k];
        for (int k = 0; k < L; k++)
            T[(size_t)i * L + k] /= s;
    }
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < L; k++) {
            prior[k] = a;
            for (int i = 0; i < n_items; i++)
                prior[k] += T[(size_t)i * L + k];
            prior[k] /= n_items + a * L;
        }
        for (size_t x = 0; x < (size_t)n_workers * L * L; x++)
            pi[x] = a;
        for (size_t x = 0; x < n; x++)
            for (int k = 0; k < L; k++)
                pi[((size_t)v[x].worker * L + k) * L + v[x].label] += T[(size_t)v[x].item * L + k];
        for (int row = 0; row < n_workers * L; row++) {
            double s = 0;
            for (int l = 0; l < L; l++)
                s += pi[(size_t)row * L + l];
            for (int l = 0; l < L; l++)
                pi[(size_t)row * L + l] /= s;
        }
        for (int i = 0; i < n_items; i++)
            for (int k = 0; k < L; k++)
                lt[(size_t)i * L + k] = log(prior[k]);
        for (size_t x = 0; x < n; x++)
            for (int k = 0; k < L; k++)
                lt[(size_t)v[x].item * L + k] += log(pi[((size_t)v[x].worker * L + k) * L + v[x].label]);
        for (int i = 0; i < n_items; i++) {
            double m = -INFINITY, s = 0;
            for (int k = 0; k < L; k++)
                m = fmax(m, lt[(size_t)i * L + k]);
            for (int k = 0; k < L; k++)
                s += exp(lt[(size_t)i * L + k] - m);
            for (int k = 0; k < L; k++)
                T[(size_t)i * L + k] = exp(lt[(size_t)i * L + k] - m) / s;
        }
    }
    free(pi);
    free(lt);
}

static void test_dawid_skene_matches_textbook(void **state)
{
    (void)state;
    enum { ITEMS = 300, WORKERS = 25 };
    for (int L = 2; L <= 6; L++) {   /* the unrolled sizes (2-5) and the general loop (6) */
        double acc[WORKERS];
        int truth[ITEMS];
        rnd_state = 100 + (uint64_t)L;
        for (int w = 0; w < WORKERS; w++)
            acc[w] = w % 5 == 0 ? 1.0 / L : 0.5 + 0.45 * rnd01();
        size_t n;
        tly_vote *v = synth(ITEMS, 5, WORKERS, L, acc, 1.0, truth, &n);
        double *want = malloc((size_t)ITEMS * L * sizeof *want), *got = malloc((size_t)ITEMS * L * sizeof *got);
        assert_non_null(want);
        assert_non_null(got);
        reference_ds(v, n, ITEMS, WORKERS, L, 25, want);
        tly_consensus c;
        tly_error err;
        tly_ds_params p = {.max_iter = 25, .tol = 1e-300, .posterior = got};
        assert_int_equal(tly_consensus_dawid_skene_ex(v, n, ITEMS, WORKERS, L, &p, &c, &err), 0);
        assert_int_equal(c.iterations, 25);
        for (size_t x = 0; x < (size_t)ITEMS * L; x++)
            assert_true(fabs(want[x] - got[x]) < 1e-9);
        tly_consensus_free(&c);
        free(want);
        free(got);
        free(v);
    }
}

/* Two factions of equal size, one always right and one always wrong: without gold the
 * data cannot say which is which; four known labels settle it. */
static void test_dawid_skene_known_labels(void **state)
{
    (void)state;
    enum { ITEMS = 42, WORKERS = 6, L = 2 };
    tly_vote v[40 * WORKERS + 1];
    size_t n = 0;
    int truth[ITEMS];
    for (int i = 0; i < 40; i++) {
        truth[i] = (i * 7 + i / 3) % 2;
        for (int w = 0; w < WORKERS; w++)
            v[n++] = (tly_vote){i, w, w < 3 ? truth[i] : 1 - truth[i]};
    }
    /* item 40: no votes, known; item 41: no votes, unknown */
    int known[ITEMS];
    for (int i = 0; i < ITEMS; i++)
        known[i] = -1;
    for (int i = 0; i < 4; i++)
        known[i] = truth[i];
    known[40] = 1;
    double acc[WORKERS], conf[WORKERS * L * L], prior[L], post[ITEMS * L];
    tly_ds_params p = {.known = known,
                       .worker_accuracy = acc,
                       .worker_confusion = conf,
                       .class_prior = prior,
                       .posterior = post};
    tly_consensus c;
    tly_error err;
    assert_int_equal(tly_consensus_dawid_skene_ex(v, n, ITEMS, WORKERS, L, &p, &c, &err), 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(c.label[i], truth[i]);
    for (int i = 0; i < 4; i++)
        assert_true(c.confidence[i] == 1.0);
    assert_int_equal(c.label[40], 1);
    assert_true(c.confidence[40] == 1.0);
    assert_int_equal(c.label[41], -1);
    assert_true(c.confidence[41] == 0);
    assert_true(post[41 * L] == 0 && post[41 * L + 1] == 0);
    for (int w = 0; w < WORKERS; w++) {
        assert_true(w < 3 ? acc[w] > 0.95 : acc[w] < 0.05);
        for (int k = 0; k < L; k++) {
            double s = 0;
            for (int l = 0; l < L; l++)
                s += conf[(w * L + k) * L + l];
            assert_true(fabs(s - 1) < 1e-12);
        }
        /* the flippers: truth 0 -> answer 1 */
        if (w >= 3)
            assert_true(conf[(w * L + 0) * L + 1] > 0.95);
    }
    assert_true(fabs(prior[0] + prior[1] - 1) < 1e-12);
    for (int i = 0; i < 41; i++) {
        assert_true(fabs(post[i * L] + post[i * L + 1] - 1) < 1e-12);
        assert_true(fabs(c.confidence[i] - fmax(post[i * L], post[i * L + 1])) < 1e-12);
    }
    tly_consensus_free(&c);
    /* A known label out of range is refused. */
    known[5] = 2;
    assert_int_equal(tly_consensus_dawid_skene_ex(v, n, ITEMS, WORKERS, L, &p, &c, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    /* Defaults with p == NULL. */
    assert_int_equal(tly_consensus_dawid_skene_ex(v, n, ITEMS, WORKERS, L, NULL, &c, &err), 0);
    assert_true(c.iterations >= 1 && c.iterations <= 100);
    tly_consensus_free(&c);
}

/* Occasional workers: most answer a handful of questions. Classic smoothing lets each
 * fit their few answers perfectly, which makes their votes count for almost nothing,
 * and Dawid-Skene falls well behind the plain vote (0.75 vs 0.84 here); the pooled
 * worker prior treats them as average workers and closes most of that gap (0.83). */
static void test_dawid_skene_worker_prior_sparse(void **state)
{
    (void)state;
    enum { ITEMS = 6000, WORKERS = 4000, L = 2 };
    static double acc[WORKERS];
    static int truth[ITEMS];
    rnd_state = 99;
    for (int w = 0; w < WORKERS; w++)
        acc[w] = 0.6 + 0.3 * rnd01();
    size_t n;
    tly_vote *v = synth(ITEMS, 3, WORKERS, L, acc, 0.7, truth, &n);
    tly_consensus mv, ds, pooled;
    tly_error err;
    assert_int_equal(tly_consensus_majority(v, n, ITEMS, WORKERS, L, NULL, &mv, &err), 0);
    assert_int_equal(tly_consensus_dawid_skene_ex(v, n, ITEMS, WORKERS, L, NULL, &ds, &err), 0);
    tly_ds_params p = {.worker_prior = L};
    assert_int_equal(tly_consensus_dawid_skene_ex(v, n, ITEMS, WORKERS, L, &p, &pooled, &err), 0);
    double a_mv = share_right(&mv, truth, ITEMS), a_ds = share_right(&ds, truth, ITEMS),
           a_pool = share_right(&pooled, truth, ITEMS);
    printf("sparse crowd: %zu votes, %d workers: majority %.4f, Dawid-Skene %.4f, pooled prior %.4f\n", n, WORKERS,
           a_mv, a_ds, a_pool);
    assert_true(a_pool > a_ds + 0.05);
    assert_true(a_pool >= a_mv - 0.03);
    tly_consensus_free(&mv);
    tly_consensus_free(&ds);
    tly_consensus_free(&pooled);
    free(v);
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

/* Share right among the items with truth that are not known (known may be NULL). */
static double held_out_accuracy(const dataset *d, const tly_consensus *c, const int *known)
{
    int right = 0, count = 0;
    for (int i = 0; i < d->n_items; i++)
        if (d->truth[i] >= 0 && !(known && known[i] >= 0)) {
            count++;
            right += c->label[i] == d->truth[i];
        }
    return count ? (double)right / count : 0;
}

static void check_dataset(const char *name, double floor_mv, double floor_ds, double floor_gold)
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
    /* Every 10th question with truth as gold: Dawid-Skene with those labels known,
     * against majority and plain Dawid-Skene on the same held-out questions. */
    int *known = malloc((size_t)d.n_items * sizeof *known), n_truth = 0;
    assert_non_null(known);
    for (int i = 0; i < d.n_items; i++)
        known[i] = d.truth[i] >= 0 && n_truth++ % 10 == 0 ? d.truth[i] : -1;
    tly_consensus gold, pooled;
    tly_ds_params p = {.max_iter = 100, .tol = 1e-6, .known = known};
    assert_int_equal(tly_consensus_dawid_skene_ex(d.votes, d.n, d.n_items, d.n_workers, d.n_labels, &p, &gold, &err),
                     0);
    tly_ds_params pp = {.max_iter = 100, .tol = 1e-6, .worker_prior = d.n_labels};
    assert_int_equal(
        tly_consensus_dawid_skene_ex(d.votes, d.n, d.n_items, d.n_workers, d.n_labels, &pp, &pooled, &err), 0);
    double h_mv = held_out_accuracy(&d, &mv, known), h_ds = held_out_accuracy(&d, &ds, known),
           h_gold = held_out_accuracy(&d, &gold, known), a_pool = accuracy(&d, &pooled);
    printf("%s, held-out 90%%: majority %.4f, Dawid-Skene %.4f, with 10%% gold known %.4f (%d rounds); "
           "pooled prior (all) %.4f\n",
           name, h_mv, h_ds, h_gold, gold.iterations, a_pool);
    assert_true(h_gold >= floor_gold);
    assert_true(h_gold >= h_mv);
    assert_true(a_pool >= a_mv);
    for (int i = 0; i < d.n_items; i++)
        if (known[i] >= 0)
            assert_int_equal(gold.label[i], known[i]);
    tly_consensus_free(&gold);
    tly_consensus_free(&pooled);
    free(known);
    tly_consensus_free(&mv);
    tly_consensus_free(&ds);
    free(d.votes);
    free(d.truth);
}

static void test_duck(void **state)
{
    (void)state;
    /* Published for this data (Zheng et al. 2017): MV 0.7593, D&S 0.8981. */
    check_dataset("duck", 0.75, 0.89, 0.89);
}

static void test_face_sentiment(void **state)
{
    (void)state;
    /* Published: MV ~0.63, D&S ~0.64. */
    check_dataset("face-sentiment", 0.62, 0.635, 0.655);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_majority_basics),
        cmocka_unit_test(test_dawid_skene_learns_a_liar),
        cmocka_unit_test(test_dawid_skene_ex_matches_wrapper),
        cmocka_unit_test(test_dawid_skene_matches_textbook),
        cmocka_unit_test(test_dawid_skene_known_labels),
        cmocka_unit_test(test_dawid_skene_worker_prior_sparse),
        cmocka_unit_test(test_duck),
        cmocka_unit_test(test_face_sentiment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
