/* consensus.c -- see consensus.h.
 *
 * Dawid-Skene (1979), as in the truth-inference literature:
 *   E-step: T[i][k] = P(true label of i is k) ∝ prior[k] * Π_{votes (i,w,l)} pi[w][k][l]
 *   M-step: prior[k] = mean_i T[i][k];
 *           pi[w][k][l] = (Σ_{votes (i,w,l)} T[i][k] + a) / (Σ_{votes (i,w,·)} T[i][k] + a·L)
 * started from the (soft) majority vote. The E-step works in log space, so items
 * with many votes cannot underflow, and the additive smoothing a keeps a worker's
 * unseen (k, l) pairs from zeroing a posterior outright.
 */
#include "qa/consensus.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SMOOTHING 0.01

void tly_consensus_free(tly_consensus *c)
{
    if (!c)
        return;
    free(c->label);
    free(c->confidence);
    memset(c, 0, sizeof *c);
}

static int check(const tly_vote *votes, size_t n, int n_items, int n_workers, int n_labels,
                 tly_error *err)
{
    if (n_items < 0 || n_workers < 0 || n_labels < 1)
        return tly_fail(err, TLY_E_INVALID, "invalid", "consensus needs at least one label");
    for (size_t v = 0; v < n; v++)
        if (votes[v].item < 0 || votes[v].item >= n_items || votes[v].worker < 0 ||
            votes[v].worker >= n_workers || votes[v].label < 0 || votes[v].label >= n_labels)
            return tly_fail(err, TLY_E_INVALID, "invalid", "vote %zu is out of range", v);
    return 0;
}

static int alloc_out(tly_consensus *out, int n_items, int n_labels, tly_error *err)
{
    memset(out, 0, sizeof *out);
    out->n_items = n_items;
    out->n_labels = n_labels;
    out->label = malloc((size_t)(n_items ? n_items : 1) * sizeof *out->label);
    out->confidence = malloc((size_t)(n_items ? n_items : 1) * sizeof *out->confidence);
    if (!out->label || !out->confidence) {
        tly_consensus_free(out);
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    return 0;
}

/* From per-item label scores (n_items x n_labels): argmax and its share. */
static void decide(const double *score, tly_consensus *out)
{
    int L = out->n_labels;
    for (int i = 0; i < out->n_items; i++) {
        const double *s = score + (size_t)i * L;
        double total = 0, best = 0;
        int arg = -1;
        for (int k = 0; k < L; k++) {
            total += s[k];
            if (s[k] > best) {
                best = s[k];
                arg = k;
            }
        }
        out->label[i] = arg;
        out->confidence[i] = arg >= 0 && total > 0 ? best / total : 0;
    }
}

/* Per-item weighted vote counts into score (zeroed first). */
static void tally(const tly_vote *votes, size_t n, int n_labels, const double *weight, double *score,
                  size_t score_len)
{
    memset(score, 0, score_len * sizeof *score);
    for (size_t v = 0; v < n; v++)
        score[(size_t)votes[v].item * n_labels + votes[v].label] += weight ? weight[votes[v].worker] : 1.0;
}

int tly_consensus_majority(const tly_vote *votes, size_t n, int n_items, int n_workers, int n_labels,
                           const double *weight, tly_consensus *out, tly_error *err)
{
    if (check(votes, n, n_items, n_workers, n_labels, err) < 0 || alloc_out(out, n_items, n_labels, err) < 0)
        return -1;
    size_t len = (size_t)n_items * n_labels;
    double *score = malloc((len ? len : 1) * sizeof *score);
    if (!score) {
        tly_consensus_free(out);
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    tally(votes, n, n_labels, weight, score, len);
    decide(score, out);
    free(score);
    return 0;
}

int tly_consensus_dawid_skene(const tly_vote *votes, size_t n, int n_items, int n_workers,
                              int n_labels, int max_iter, double tol, tly_consensus *out,
                              double *worker_accuracy, tly_error *err)
{
    if (check(votes, n, n_items, n_workers, n_labels, err) < 0 || alloc_out(out, n_items, n_labels, err) < 0)
        return -1;
    int L = n_labels;
    size_t tlen = (size_t)n_items * L, plen = (size_t)n_workers * L * L;
    double *T = malloc((tlen ? tlen : 1) * sizeof *T);
    double *logT = malloc((tlen ? tlen : 1) * sizeof *logT);
    double *pi = malloc((plen ? plen : 1) * sizeof *pi);
    double *prior = malloc((size_t)L * sizeof *prior);
    if (!T || !logT || !pi || !prior) {
        free(T);
        free(logT);
        free(pi);
        free(prior);
        tly_consensus_free(out);
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    /* Start from the majority vote, as shares per item. */
    tally(votes, n, L, NULL, T, tlen);
    for (int i = 0; i < n_items; i++) {
        double s = 0;
        for (int k = 0; k < L; k++)
            s += T[(size_t)i * L + k];
        for (int k = 0; k < L; k++)
            T[(size_t)i * L + k] = s > 0 ? T[(size_t)i * L + k] / s : 1.0 / L;
    }
    int iter = 0;
    for (; iter < max_iter; iter++) {
        /* M-step */
        for (int k = 0; k < L; k++)
            prior[k] = 0;
        for (int i = 0; i < n_items; i++)
            for (int k = 0; k < L; k++)
                prior[k] += T[(size_t)i * L + k];
        for (int k = 0; k < L; k++)
            prior[k] = (prior[k] + SMOOTHING) / (n_items + SMOOTHING * L);
        for (size_t x = 0; x < plen; x++)
            pi[x] = SMOOTHING;
        for (size_t v = 0; v < n; v++)
            for (int k = 0; k < L; k++)
                pi[((size_t)votes[v].worker * L + k) * L + votes[v].label] += T[(size_t)votes[v].item * L + k];
        for (int w = 0; w < n_workers; w++)
            for (int k = 0; k < L; k++) {
                double *row = pi + ((size_t)w * L + k) * L, s = 0;
                for (int l = 0; l < L; l++)
                    s += row[l];
                for (int l = 0; l < L; l++)
                    row[l] /= s;
            }
        /* E-step, in log space */
        for (int i = 0; i < n_items; i++)
            for (int k = 0; k < L; k++)
                logT[(size_t)i * L + k] = log(prior[k]);
        for (size_t v = 0; v < n; v++)
            for (int k = 0; k < L; k++)
                logT[(size_t)votes[v].item * L + k] += log(pi[((size_t)votes[v].worker * L + k) * L + votes[v].label]);
        double moved = 0;
        for (int i = 0; i < n_items; i++) {
            double *lt = logT + (size_t)i * L, m = lt[0], s = 0;
            for (int k = 1; k < L; k++)
                m = lt[k] > m ? lt[k] : m;
            for (int k = 0; k < L; k++)
                s += exp(lt[k] - m);
            for (int k = 0; k < L; k++) {
                double p = exp(lt[k] - m) / s, *t = &T[(size_t)i * L + k];
                moved = fabs(p - *t) > moved ? fabs(p - *t) : moved;
                *t = p;
            }
        }
        if (moved < tol) {
            iter++;
            break;
        }
    }
    out->iterations = iter;
    /* Items without votes have no label, whatever their prior says. */
    int *has_votes = calloc((size_t)(n_items ? n_items : 1), sizeof *has_votes);
    for (size_t v = 0; has_votes && v < n; v++)
        has_votes[votes[v].item] = 1;
    for (int i = 0; has_votes && i < n_items; i++)
        if (!has_votes[i])
            for (int k = 0; k < L; k++)
                T[(size_t)i * L + k] = 0;
    decide(T, out);
    if (worker_accuracy)
        for (int w = 0; w < n_workers; w++) {
            /* Chance of answering the true label, averaged over the classes' prior. */
            double acc = 0;
            for (int k = 0; k < L; k++)
                acc += prior[k] * pi[((size_t)w * L + k) * L + k];
            worker_accuracy[w] = acc;
        }
    free(has_votes);
    free(T);
    free(logT);
    free(pi);
    free(prior);
    return 0;
}
