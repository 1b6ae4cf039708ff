/* agreement.c -- see agreement.h.
 *
 * Krippendorff's alpha, nominal (K. Krippendorff, "Computing Krippendorff's
 * Alpha-Reliability", Annenberg School for Communication, 2011, section on nominal
 * data with missing values). With m_u the number of values in unit u and n_uc how
 * many of them are c, the coincidence matrix is
 *     o_ck = sum over units with m_u >= 2 of n_uc * (n_uk - [c == k]) / (m_u - 1),
 * n_c = sum_k o_ck = sum_u n_uc (pairable units only), n = sum_c n_c, and
 *     alpha = 1 - (n - 1) * sum_{c != k} o_ck / sum_{c != k} n_c n_k.
 * The nominal metric only needs the off-diagonal mass, so no matrix is built:
 *     sum_{c != k} o_ck   = sum_u (m_u^2 - sum_c n_uc^2) / (m_u - 1)
 *     sum_{c != k} n_c n_k = n^2 - sum_c n_c^2.
 * Percent agreement: per pairable unit sum_c n_uc (n_uc - 1) / (m_u (m_u - 1)), the
 * share of ordered pairs of distinct votes that agree, averaged over those units.
 *
 * Both walk the votes grouped by item and label: a copy of the (item, label) pairs is
 * sorted, so memory is O(votes + labels), independent of n_items x n_labels.
 */
#include "qa/agreement.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    int item, label;
} pair;

static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->item != y->item)
        return x->item < y->item ? -1 : 1;
    return (x->label > y->label) - (x->label < y->label);
}

/* Validates the votes and returns them as (item, label) pairs sorted by item, then
 * label, in *out (caller frees; NULL when n == 0). */
static int sorted_pairs(const tly_vote *votes, size_t n, int n_items, int n_labels, pair **out,
                        tly_error *err)
{
    *out = NULL;
    if (n_items < 0 || n_labels < 1)
        return tly_fail(err, TLY_E_INVALID, "invalid", "agreement needs at least one label");
    for (size_t v = 0; v < n; v++)
        if (votes[v].item < 0 || votes[v].item >= n_items || votes[v].worker < 0 ||
            votes[v].label < 0 || votes[v].label >= n_labels)
            return tly_fail(err, TLY_E_INVALID, "invalid", "vote %zu is out of range", v);
    if (n == 0)
        return 0;
    pair *p = malloc(n * sizeof *p);
    if (!p)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    for (size_t v = 0; v < n; v++)
        p[v] = (pair){votes[v].item, votes[v].label};
    qsort(p, n, sizeof *p, cmp_pair);
    *out = p;
    return 0;
}

/* Calls unit(ctx, labels, counts, k, m) for every item with m >= 2 votes: its k
 * distinct labels and their counts (scratch buffers of n entries). */
typedef void (*unit_fn)(void *ctx, const int *labels, const double *counts, size_t k, double m);

static void for_each_pairable_unit(const pair *p, size_t n, int *labels, double *counts, unit_fn fn,
                                   void *ctx)
{
    size_t i = 0;
    while (i < n) {
        size_t end = i;
        while (end < n && p[end].item == p[i].item)
            end++;
        double m = (double)(end - i);
        if (m >= 2) {
            size_t k = 0;
            for (size_t j = i; j < end; j++) {
                if (k == 0 || labels[k - 1] != p[j].label) {
                    labels[k] = p[j].label;
                    counts[k++] = 0;
                }
                counts[k - 1] += 1;
            }
            fn(ctx, labels, counts, k, m);
        }
        i = end;
    }
}

/* Runs fn over the pairable units of votes; 0 or -1. */
static int walk(const tly_vote *votes, size_t n, int n_items, int n_labels, unit_fn fn, void *ctx,
                tly_error *err)
{
    pair *p;
    if (sorted_pairs(votes, n, n_items, n_labels, &p, err) < 0)
        return -1;
    if (n == 0)
        return 0;
    int *labels = malloc(n * sizeof *labels);
    double *counts = malloc(n * sizeof *counts);
    if (!labels || !counts) {
        free(p);
        free(labels);
        free(counts);
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    for_each_pairable_unit(p, n, labels, counts, fn, ctx);
    free(p);
    free(labels);
    free(counts);
    return 0;
}

typedef struct {
    double *n_c;        /* n_labels: pairable values per label (owned by the caller) */
    double n;           /* pairable values */
    double disagree;    /* sum_{c != k} o_ck */
} alpha_acc;

static void alpha_unit(void *ctx, const int *labels, const double *counts, size_t k, double m)
{
    alpha_acc *a = ctx;
    double same = 0;
    for (size_t j = 0; j < k; j++) {
        same += counts[j] * counts[j];
        a->n_c[labels[j]] += counts[j];
    }
    a->n += m;
    a->disagree += (m * m - same) / (m - 1);
}

int tly_krippendorff_alpha_nominal(const tly_vote *votes, size_t n, int n_items, int n_labels, double *alpha, tly_error *err)
{
    *alpha = NAN;
    alpha_acc a = {NULL, 0, 0};
    if (n_labels >= 1) {
        a.n_c = calloc((size_t)n_labels, sizeof *a.n_c);
        if (!a.n_c)
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    if (walk(votes, n, n_items, n_labels, alpha_unit, &a, err) < 0) {
        free(a.n_c);
        return -1;
    }
    double sum_sq = 0;
    for (int c = 0; c < n_labels; c++)
        sum_sq += a.n_c[c] * a.n_c[c];
    free(a.n_c);
    double expected = a.n * a.n - sum_sq;   /* sum_{c != k} n_c n_k */
    if (a.n >= 2 && expected > 0)
        *alpha = 1 - (a.n - 1) * a.disagree / expected;
    return 0;
}

typedef struct {
    double sum;    /* of per-unit agreement */
    double units;
} percent_acc;

static void percent_unit(void *ctx, const int *labels, const double *counts, size_t k, double m)
{
    (void)labels;
    percent_acc *a = ctx;
    double agree = 0;
    for (size_t j = 0; j < k; j++)
        agree += counts[j] * (counts[j] - 1);
    a->sum += agree / (m * (m - 1));
    a->units += 1;
}

int tly_percent_agreement(const tly_vote *votes, size_t n, int n_items, int n_labels, double *agreement, tly_error *err)
{
    *agreement = NAN;
    percent_acc a = {0, 0};
    if (walk(votes, n, n_items, n_labels, percent_unit, &a, err) < 0)
        return -1;
    if (a.units > 0)
        *agreement = a.sum / a.units;
    return 0;
}
