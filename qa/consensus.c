/* consensus.c -- see consensus.h.
 *
 * Dawid-Skene (1979), as in the truth-inference literature:
 *   E-step: T[i][k] = P(true label of i is k) ∝ prior[k] * Π_{votes (i,w,l)} pi[w][k][l]
 *   M-step: prior[k] = (Σ_i T[i][k] + a) / (items + a·L);
 *           pi[w][k][l] = (Σ_{votes (i,w,l)} T[i][k] + a) / (Σ_{votes (i,w,·)} T[i][k] + a·L)
 * started from the (soft) majority vote. The E-step works in log space, so items
 * with many votes cannot underflow, and the additive smoothing a keeps a worker's
 * unseen (k, l) pairs from zeroing a posterior outright. Items with a known label
 * (gold) keep T[i] one-hot at it throughout; items with neither votes nor a known label
 * take no part (they would only echo the prior back into it).
 *
 * worker_prior m > 0 replaces the additive smoothing of the worker rows by shrinkage
 * toward the pooled confusion matrix of all workers (itself smoothed by a):
 *   pi[w][k][l] = (Σ_{votes (i,w,l)} T[i][k] + m·pool[k][l]) / (Σ_{votes (i,w,·)} T[i][k] + m)
 * With a: a worker seen once fits that one answer perfectly, whatever the class, so
 * the answer carries almost no evidence and crowds of occasional workers lose to a
 * plain vote; with the pool, a worker with little history counts as an average worker.
 *
 * Layout, for speed (a million votes with 4 labels: about 12 ms a round on one core):
 *   - the votes are grouped by item once (a counting sort, stable, so the order inside
 *     an item is the input order): start[i]..start[i+1] index cell[], where a vote's
 *     cell is w·L + l, its worker-and-given-label row;
 *   - the confusion counts and their logarithms are stored [w][given l][true k], so a
 *     vote's L values are contiguous: the E-step adds logpi[cell·L + 0..L-1] to the
 *     item's L log-posteriors, the M-step adds the item's L posteriors to
 *     cnt[cell·L + 0..L-1];
 *   - logarithms are taken once per (w, l, k) per round, never per vote;
 *   - one pass over the items per round does this round's E-step and, with the fresh
 *     posteriors, accumulates the next round's M-step counts; no allocation in the loop.
 */
#include "qa/consensus.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SMOOTHING 0.01
#define DEFAULT_MAX_ITER 100
#define DEFAULT_TOL 1e-6

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

/* The working state of one Dawid-Skene run. */
typedef struct {
    int n_items, n_workers, L;
    double a;            /* smoothing */
    double m;            /* worker_prior: 0, or pseudo-judgments per row toward pool */
    size_t *start;       /* n_items + 1: item i's votes are cell[start[i] .. start[i+1]-1] */
    uint32_t *cell;      /* per vote, grouped by item: worker * L + given label */
    double *T;           /* n_items * L posteriors */
    double *cnt;         /* n_workers * L * L, [w][l][k]: Σ T[i][k] over w's votes of l */
    double *logpi;       /* same layout: log pi[w][k][l] */
    double *prior_cnt;   /* L: Σ_i T[i][k] over the items that take part */
    double *logprior;    /* L */
    double *lt;          /* L: one item's log-posterior */
    double *pool;        /* L * L, [k][l]: all workers' pooled confusion (worker_prior) */
    double *pi;          /* L * L, [l][k]: one worker's confusion, scratch */
    int n_part;          /* items that take part (votes or a known label) */
} ds_state;

static void ds_free(ds_state *s)
{
    free(s->start);
    free(s->cell);
    free(s->T);
    free(s->cnt);
    free(s->logpi);
    free(s->prior_cnt);
    free(s->logprior);
    free(s->lt);
    free(s->pool);
    free(s->pi);
}

static void *alloc_n(size_t count, size_t size)
{
    return malloc((count ? count : 1) * size);
}

/* Adds item i's posterior T[i] to the M-step counts. L is s->L, passed so that the
 * specialised copies of ds_round_L below see it as a constant. */
static inline __attribute__((always_inline)) void ds_accumulate(ds_state *s, int i, const int L)
{
    const double *t = s->T + (size_t)i * L;
    for (int k = 0; k < L; k++)
        s->prior_cnt[k] += t[k];
    for (size_t v = s->start[i]; v < s->start[i + 1]; v++) {
        double *c = s->cnt + (size_t)s->cell[v] * L;
        for (int k = 0; k < L; k++)
            c[k] += t[k];
    }
}

/* The pooled confusion matrix of all workers, when worker_prior is on. */
static void ds_pool(ds_state *s)
{
    const int L = s->L;
    if (s->m <= 0)
        return;
    memset(s->pool, 0, (size_t)L * L * sizeof *s->pool);
    for (int w = 0; w < s->n_workers; w++) {
        const double *c = s->cnt + (size_t)w * L * L;
        for (int l = 0; l < L; l++)
            for (int k = 0; k < L; k++)
                s->pool[k * L + l] += c[l * L + k];
    }
    for (int k = 0; k < L; k++) {
        double *row = s->pool + (size_t)k * L, sum = s->a * L;
        for (int l = 0; l < L; l++)
            sum += row[l];
        for (int l = 0; l < L; l++)
            row[l] = (row[l] + s->a) / sum;
    }
}

/* M-step for worker w: pi[l * L + k] = P(w answers l | truth k), from the counts. */
static void ds_worker_pi(const ds_state *s, int w, double *pi)
{
    const int L = s->L;
    const double *c = s->cnt + (size_t)w * L * L;
    for (int k = 0; k < L; k++) {
        double sum = s->m > 0 ? s->m : s->a * L;
        for (int l = 0; l < L; l++)
            sum += c[l * L + k];
        for (int l = 0; l < L; l++)
            pi[l * L + k] = (c[l * L + k] + (s->m > 0 ? s->m * s->pool[k * L + l] : s->a)) / sum;
    }
}

/* M-step, turned into logarithms for the E-step: logpi and logprior from the counts. */
static void ds_logs(ds_state *s)
{
    const int L = s->L;
    const double a = s->a;
    ds_pool(s);
    for (int w = 0; w < s->n_workers; w++) {
        double *lp = s->logpi + (size_t)w * L * L;
        ds_worker_pi(s, w, s->pi);
        for (int x = 0; x < L * L; x++)
            lp[x] = log(s->pi[x]);
    }
    double log_total = log(s->n_part + a * L);
    for (int k = 0; k < L; k++)
        s->logprior[k] = log(s->prior_cnt[k] + a) - log_total;
}

/* One round: E-step from logpi/logprior for every item without a known label, then the
 * next M-step's counts from the new posteriors. Returns the largest change of a
 * posterior. */
static inline __attribute__((always_inline)) double ds_round_L(ds_state *s, const int *known, const int L)
{
    double moved = 0, local[8];
    double *lt = L <= 8 ? local : s->lt;   /* a local array can live in registers */
    memset(s->cnt, 0, (size_t)s->n_workers * L * L * sizeof *s->cnt);
    memset(s->prior_cnt, 0, (size_t)L * sizeof *s->prior_cnt);
    for (int i = 0; i < s->n_items; i++) {
        size_t b = s->start[i], e = s->start[i + 1];
        if (known && known[i] >= 0) {
            ds_accumulate(s, i, L);
            continue;
        }
        if (b == e)
            continue;
        for (int k = 0; k < L; k++)
            lt[k] = s->logprior[k];
        for (size_t v = b; v < e; v++) {
            const double *lp = s->logpi + (size_t)s->cell[v] * L;
            for (int k = 0; k < L; k++)
                lt[k] += lp[k];
        }
        int arg = 0;
        for (int k = 1; k < L; k++)
            arg = lt[k] > lt[arg] ? k : arg;
        double m = lt[arg], sum = 0;
        for (int k = 0; k < L; k++) {
            lt[k] = k == arg ? 1.0 : exp(lt[k] - m);   /* exp(0) is 1 exactly */
            sum += lt[k];
        }
        double *t = s->T + (size_t)i * L;
        for (int k = 0; k < L; k++) {
            double p = lt[k] / sum, d = fabs(p - t[k]);
            moved = d > moved ? d : moved;
            t[k] = p;
        }
        ds_accumulate(s, i, L);
    }
    return moved;
}

/* The round, with the usual label counts as compile-time constants (unrolled inner
 * loops; the same arithmetic in the same order, so the same bits). */
static double ds_round(ds_state *s, const int *known)
{
    switch (s->L) {
    case 2:
        return ds_round_L(s, known, 2);
    case 3:
        return ds_round_L(s, known, 3);
    case 4:
        return ds_round_L(s, known, 4);
    case 5:
        return ds_round_L(s, known, 5);
    default:
        return ds_round_L(s, known, s->L);
    }
}

static int ds_run(const tly_vote *votes, size_t n, int n_items, int n_workers, int L, int max_iter,
                  double tol, double smoothing, double worker_prior, const int *known, const tly_ds_params *p,
                  tly_consensus *out, tly_error *err)
{
    if (check(votes, n, n_items, n_workers, L, err) < 0)
        return -1;
    if ((size_t)n_workers * (size_t)L > UINT32_MAX)
        return tly_fail(err, TLY_E_INVALID, "invalid", "too many workers x labels for Dawid-Skene");
    for (int i = 0; known && i < n_items; i++)
        if (known[i] >= L)
            return tly_fail(err, TLY_E_INVALID, "invalid", "known label of item %d is out of range", i);
    if (alloc_out(out, n_items, L, err) < 0)
        return -1;
    ds_state s = {.n_items = n_items, .n_workers = n_workers, .L = L, .a = smoothing, .m = worker_prior};
    size_t tlen = (size_t)n_items * L, plen = (size_t)n_workers * L * L;
    s.start = calloc((size_t)n_items + 1, sizeof *s.start);
    s.cell = alloc_n(n, sizeof *s.cell);
    s.T = alloc_n(tlen, sizeof *s.T);
    s.cnt = alloc_n(plen, sizeof *s.cnt);
    s.logpi = alloc_n(plen, sizeof *s.logpi);
    s.prior_cnt = alloc_n((size_t)L, sizeof *s.prior_cnt);
    s.logprior = alloc_n((size_t)L, sizeof *s.logprior);
    s.lt = alloc_n((size_t)L, sizeof *s.lt);
    s.pool = alloc_n((size_t)L * L, sizeof *s.pool);
    s.pi = alloc_n((size_t)L * L, sizeof *s.pi);
    if (!s.start || !s.cell || !s.T || !s.cnt || !s.logpi || !s.prior_cnt || !s.logprior || !s.lt || !s.pool ||
        !s.pi) {
        ds_free(&s);
        tly_consensus_free(out);
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    /* Group the votes by item (stable counting sort): start[i+1] counts first, then the
     * prefix sums make start[i] item i's first slot; start[] is used as the write cursor
     * shifted by one so that it ends up right without a second array. */
    for (size_t v = 0; v < n; v++)
        s.start[votes[v].item + 1]++;
    for (int i = 0; i < n_items; i++)
        s.start[i + 1] += s.start[i];
    for (size_t v = 0; v < n; v++)
        s.cell[s.start[votes[v].item]++] = (uint32_t)votes[v].worker * (uint32_t)L + (uint32_t)votes[v].label;
    for (int i = n_items; i > 0; i--)
        s.start[i] = s.start[i - 1];
    s.start[0] = 0;

    /* Start: known items one-hot, the others the majority vote's shares; then the first
     * M-step's counts. */
    memset(s.T, 0, tlen * sizeof *s.T);
    memset(s.cnt, 0, plen * sizeof *s.cnt);
    memset(s.prior_cnt, 0, (size_t)L * sizeof *s.prior_cnt);
    for (int i = 0; i < n_items; i++) {
        double *t = s.T + (size_t)i * L;
        size_t b = s.start[i], e = s.start[i + 1];
        if (known && known[i] >= 0)
            t[known[i]] = 1;
        else if (b == e)
            continue;
        else {
            for (size_t v = b; v < e; v++)
                t[s.cell[v] % (uint32_t)L] += 1;
            for (int k = 0; k < L; k++)
                t[k] /= (double)(e - b);
        }
        s.n_part++;
        ds_accumulate(&s, i, L);
    }
    int iter = 0;
    while (iter < max_iter) {
        ds_logs(&s);
        double moved = ds_round(&s, known);
        iter++;
        if (moved < tol)
            break;
    }
    out->iterations = iter;

    /* The counts now hold the M-step on the final posteriors. */
    decide(s.T, out);
    for (int i = 0; known && i < n_items; i++)
        if (known[i] >= 0) {
            out->label[i] = known[i];
            out->confidence[i] = 1;
        }
    double a = s.a, *prior = s.logprior;   /* reused: the final prior itself */
    for (int k = 0; k < L; k++)
        prior[k] = (s.prior_cnt[k] + a) / (s.n_part + a * L);
    if (p && p->class_prior)
        memcpy(p->class_prior, prior, (size_t)L * sizeof *prior);
    if (p && p->posterior)
        memcpy(p->posterior, s.T, tlen * sizeof *s.T);
    double *acc = p ? p->worker_accuracy : NULL, *conf = p ? p->worker_confusion : NULL;
    ds_pool(&s);
    for (int w = 0; (acc || conf) && w < n_workers; w++) {
        ds_worker_pi(&s, w, s.pi);
        if (acc)
            acc[w] = 0;
        for (int k = 0; k < L; k++)
            for (int l = 0; l < L; l++) {
                if (conf)
                    conf[((size_t)w * L + k) * L + l] = s.pi[l * L + k];
                if (acc && l == k)
                    acc[w] += prior[k] * s.pi[l * L + k];
            }
    }
    ds_free(&s);
    return 0;
}

int tly_consensus_dawid_skene_ex(const tly_vote *votes, size_t n, int n_items, int n_workers,
                                 int n_labels, const tly_ds_params *p, tly_consensus *out,
                                 tly_error *err)
{
    int max_iter = p && p->max_iter > 0 ? p->max_iter : DEFAULT_MAX_ITER;
    double tol = p && p->tol > 0 ? p->tol : DEFAULT_TOL;
    double smoothing = p && p->smoothing > 0 ? p->smoothing : SMOOTHING;
    double worker_prior = p && p->worker_prior > 0 ? p->worker_prior : 0;
    return ds_run(votes, n, n_items, n_workers, n_labels, max_iter, tol, smoothing, worker_prior,
                  p ? p->known : NULL, p, out, err);
}

int tly_consensus_dawid_skene(const tly_vote *votes, size_t n, int n_items, int n_workers,
                              int n_labels, int max_iter, double tol, tly_consensus *out,
                              double *worker_accuracy, tly_error *err)
{
    tly_ds_params p = {.worker_accuracy = worker_accuracy};
    return ds_run(votes, n, n_items, n_workers, n_labels, max_iter, tol, SMOOTHING, 0, NULL, &p, out, err);
}
