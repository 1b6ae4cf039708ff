/* aggregate.c -- bench_aggregate: accuracy and speed of the consensus methods
 * (qa/consensus.h) on crowd datasets with ground truth, and Dawid-Skene's speed on a
 * million synthetic judgments. Run through tools/bench/aggregate; see
 * tools/bench/README.md for what every line means.
 *
 *   bench_aggregate [-n JUDGMENTS] [--seed N] [--smoothing A] [DIR...]
 *
 * Each DIR holds answer.csv (`question,worker,answer`, answer a class index) and
 * truth.csv (`question,truth`). Question and worker ids are strings, mapped to dense
 * indices in order of first appearance. For every DIR, and for a few synthetic
 * datasets, four methods:
 *   majority          plain majority vote (ties to the lowest label);
 *   weighted_vote     majority vote weighted by each worker's trust: their smoothed
 *                     accuracy on the gold questions, (correct + 3) / (seen + 4), the
 *                     platform's Beta(3,1) prior (a worker with no gold answer: 0.75);
 *   dawid_skene       Dawid-Skene EM, no gold;
 *   dawid_skene_gold  Dawid-Skene with the gold questions' truth as known labels;
 *   dawid_skene_pooled  (extra) Dawid-Skene, no gold, worker_prior = n_labels: each
 *                     worker's confusion shrunk toward the pooled one (consensus.h).
 * Gold = a deterministic 10% of the questions with truth: those with the smallest hash
 * of their id (FNV-1a 64 + a mixer), (count + 5) / 10 of them. `accuracy=` is measured
 * on the other 90% (the held-out questions) for every method, so that the four lines
 * compare like with like; majority and dawid_skene, which use no gold, also get
 * `all_accuracy=` over every question with truth (the figure the literature reports).
 *
 * The target `<dataset>_ds_minus_mv >= 0` compares dawid_skene with majority on every
 * question with truth (neither uses gold, so no question needs holding out).
 *
 * Then the timed run: JUDGMENTS (default 1,000,000) synthetic judgments, 5 per item,
 * 1,000 workers (10% spammers, the others of accuracy 0.55-0.95), 4 labels with uneven
 * priors; Dawid-Skene timed on one thread, wall and CPU time. Then the other synthetic
 * datasets (JUDGMENTS / 5 judgments each), each with a different structure.
 * Everything is deterministic for a seed (--seed, default 1).
 *
 * Results on stdout (`#` lines are comments), progress and errors on stderr. Exit 0
 * when the figures were measured (a target missed or not), 1 when something broke.
 */
#include "qa/consensus.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LABELS 64

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "bench_aggregate: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("%s", "out of memory");
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        die("%s", "out of memory");
    return p;
}

static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- randomness and hashing (deterministic, platform-independent) ------------------ */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)   /* splitmix64 */
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return mix64(r->s);
}

static double rng_unif(rng *r)   /* [0, 1) */
{
    return (rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static double rng_gauss(rng *r)   /* Box-Muller */
{
    double u = rng_unif(r), v = rng_unif(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}

/* Index drawn from a cumulative distribution cum[0..n-1] (cum[n-1] = total). */
static int draw(rng *r, const double *cum, int n)
{
    double x = rng_unif(r) * cum[n - 1];
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static uint64_t hash_str(const char *s)   /* FNV-1a 64, then mixed */
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return mix64(h);
}

/* ---- ids -> dense indices ---------------------------------------------------------- */

typedef struct {
    char **key;   /* by slot */
    int *idx;     /* by slot; -1 = empty */
    char **names; /* by index */
    size_t cap;
    int count;
} intern;

static void intern_init(intern *t)
{
    t->cap = 1024;
    t->key = xcalloc(t->cap, sizeof *t->key);
    t->idx = xmalloc(t->cap * sizeof *t->idx);
    for (size_t i = 0; i < t->cap; i++)
        t->idx[i] = -1;
    t->names = xmalloc(t->cap * sizeof *t->names);
    t->count = 0;
}

static void intern_free(intern *t)
{
    for (int i = 0; i < t->count; i++)
        free(t->names[i]);
    free(t->key);
    free(t->idx);
    free(t->names);
}

/* Dense index of s; -1 if absent and !add. */
static int intern_get(intern *t, const char *s, int add)
{
    size_t mask = t->cap - 1, h = (size_t)hash_str(s) & mask;
    while (t->idx[h] >= 0) {
        if (strcmp(t->key[h], s) == 0)
            return t->idx[h];
        h = (h + 1) & mask;
    }
    if (!add)
        return -1;
    if ((size_t)t->count * 2 >= t->cap) {   /* grow and rehash, then insert */
        intern old = *t;
        t->cap *= 2;
        t->key = xcalloc(t->cap, sizeof *t->key);
        t->idx = xmalloc(t->cap * sizeof *t->idx);
        for (size_t i = 0; i < t->cap; i++)
            t->idx[i] = -1;
        t->names = xmalloc(t->cap * sizeof *t->names);
        memcpy(t->names, old.names, (size_t)old.count * sizeof *t->names);
        for (size_t i = 0; i < old.cap; i++)
            if (old.idx[i] >= 0) {
                size_t g = (size_t)hash_str(old.key[i]) & (t->cap - 1);
                while (t->idx[g] >= 0)
                    g = (g + 1) & (t->cap - 1);
                t->key[g] = old.key[i];
                t->idx[g] = old.idx[i];
            }
        free(old.key);
        free(old.idx);
        free(old.names);
        return intern_get(t, s, 1);
    }
    char *copy = strdup(s);
    if (!copy)
        die("%s", "out of memory");
    t->names[t->count] = copy;
    t->key[h] = copy;
    t->idx[h] = t->count;
    return t->count++;
}

/* ---- datasets ---------------------------------------------------------------------- */

typedef struct {
    char name[128];
    tly_vote *votes;
    size_t n, cap;
    int n_items, n_workers, n_labels;
    int *truth;        /* per item, -1 unknown */
    uint64_t *key;     /* per item: gold selection hash */
    double *true_acc;  /* per worker (synthetic only) */
} dataset;

static void dataset_free(dataset *d)
{
    free(d->votes);
    free(d->truth);
    free(d->key);
    free(d->true_acc);
}

static void push_vote(dataset *d, int item, int worker, int label)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 4096;
        d->votes = realloc(d->votes, d->cap * sizeof *d->votes);
        if (!d->votes)
            die("%s", "out of memory");
    }
    d->votes[d->n++] = (tly_vote){item, worker, label};
}

/* Splits a CSV line (no quoting: ids and class indices) into up to max fields,
 * in place. Returns the number of fields. */
static int split(char *line, char **f, int max)
{
    line[strcspn(line, "\r\n")] = 0;
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == ',') {
            *p = 0;
            f[n++] = p + 1;
        }
    return n;
}

static int parse_label(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v >= MAX_LABELS)
        return -1;
    *out = (int)v;
    return 0;
}

static void load_dir(const char *dir, dataset *d)
{
    memset(d, 0, sizeof *d);
    const char *base = strrchr(dir, '/');
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')   /* "a/b/" -> "b" */
        len--;
    char trimmed[4096];
    snprintf(trimmed, sizeof trimmed, "%.*s", (int)len, dir);
    base = strrchr(trimmed, '/');
    snprintf(d->name, sizeof d->name, "%s", base ? base + 1 : trimmed);

    intern items, workers;
    intern_init(&items);
    intern_init(&workers);
    char path[4200], *line = NULL, *f[4];
    size_t cap = 0;
    snprintf(path, sizeof path, "%s/answer.csv", trimmed);
    FILE *fp = fopen(path, "r");
    if (!fp)
        die("cannot open %s", path);
    long lineno = 0;
    while (getline(&line, &cap, fp) > 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        int label;
        if (split(line, f, 4) != 3 || parse_label(f[2], &label) < 0) {
            if (lineno == 1)   /* the header */
                continue;
            die("%s: a line is not `question,worker,answer` with a class index", path);
        }
        int i = intern_get(&items, f[0], 1), w = intern_get(&workers, f[1], 1);
        push_vote(d, i, w, label);
        if (label + 1 > d->n_labels)
            d->n_labels = label + 1;
    }
    fclose(fp);
    d->n_items = items.count;
    d->n_workers = workers.count;
    d->truth = xmalloc((size_t)d->n_items * sizeof *d->truth);
    d->key = xmalloc((size_t)d->n_items * sizeof *d->key);
    for (int i = 0; i < d->n_items; i++) {
        d->truth[i] = -1;
        d->key[i] = hash_str(items.names[i]);
    }
    snprintf(path, sizeof path, "%s/truth.csv", trimmed);
    fp = fopen(path, "r");
    if (!fp)
        die("cannot open %s", path);
    lineno = 0;
    int unanswered = 0;
    while (getline(&line, &cap, fp) > 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        int label;
        if (split(line, f, 3) != 2 || parse_label(f[1], &label) < 0) {
            if (lineno == 1)
                continue;
            die("%s: a line is not `question,truth` with a class index", path);
        }
        int i = intern_get(&items, f[0], 0);
        if (i < 0) {
            unanswered++;
            continue;
        }
        d->truth[i] = label;
        if (label + 1 > d->n_labels)
            d->n_labels = label + 1;
    }
    fclose(fp);
    free(line);
    if (unanswered)
        fprintf(stderr, "bench_aggregate: %s: %d questions in truth.csv have no answer (ignored)\n", d->name,
                unanswered);
    if (!d->n)
        die("%s: no judgments", path);
    intern_free(&items);
    intern_free(&workers);
}

/* ---- synthetic datasets ------------------------------------------------------------ */

typedef enum { W_MAIN, W_EXPERTS_SPAMMERS, W_CONFUSERS, W_LONG_TAIL, W_UNIFORM, W_ADVERSARIAL } worker_model;

typedef struct {
    const char *name;
    const char *about;
    worker_model model;
    int per_item, n_workers, n_labels;
    double prior[MAX_LABELS];
    double activity_sigma;   /* workers' activity: lognormal with this sigma */
} synth_spec;

/* Row k of conf: P(answer l | truth k), for worker w of the spec's model. */
static void make_worker(const synth_spec *sp, rng *r, int w, double *conf)
{
    int L = sp->n_labels;
    double share = (w + 0.5) / sp->n_workers;   /* position of w in the population */
    double acc = 0;
    int fixed = -1;                             /* always answers this label */
    int uniform = 0;
    switch (sp->model) {
    case W_MAIN:   /* 10% spammers (half random, half one label), others 0.55 - 0.95 */
        if (share < 0.05)
            uniform = 1;
        else if (share < 0.10)
            fixed = w % L;
        else
            acc = 0.55 + 0.40 * rng_unif(r);
        break;
    case W_EXPERTS_SPAMMERS:   /* 5% experts, 35% random, 15% always label 0, 45% barely above chance */
        if (share < 0.05)
            acc = 0.95;
        else if (share < 0.40)
            uniform = 1;
        else if (share < 0.55)
            fixed = 0;
        else
            acc = 0.45;
        break;
    case W_CONFUSERS:   /* 60% read class 2 as class 3 most of the time */
        acc = share < 0.60 ? 0.85 : 0.75;
        break;
    case W_LONG_TAIL:
        acc = 0.60 + 0.30 * rng_unif(r);
        break;
    case W_UNIFORM:
        acc = 0.70;
        break;
    case W_ADVERSARIAL:   /* 20% answer the opposite most of the time */
        acc = share < 0.20 ? 0.15 : 0.65 + 0.20 * rng_unif(r);
        break;
    }
    for (int k = 0; k < L; k++)
        for (int l = 0; l < L; l++) {
            double p;
            if (uniform)
                p = 1.0 / L;
            else if (fixed >= 0)
                p = l == fixed;
            else
                p = l == k ? acc : (1 - acc) / (L - 1);
            conf[k * L + l] = p;
        }
    if (sp->model == W_CONFUSERS && share < 0.60)
        for (int l = 0; l < L; l++)
            conf[2 * L + l] = l == 3 ? 0.60 : l == 2 ? 0.30 : 0.10 / (L - 2);
}

static void make_synth(const synth_spec *sp, size_t judgments, uint64_t seed, dataset *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", sp->name);
    int L = sp->n_labels, W = sp->n_workers, P = sp->per_item;
    rng r = {seed ^ hash_str(sp->name)};
    d->n_labels = L;
    d->n_workers = W;
    d->n_items = (int)(judgments / (size_t)P);
    d->cap = (size_t)d->n_items * P;
    d->votes = xmalloc(d->cap * sizeof *d->votes);
    d->truth = xmalloc((size_t)d->n_items * sizeof *d->truth);
    d->key = xmalloc((size_t)d->n_items * sizeof *d->key);
    d->true_acc = xmalloc((size_t)W * sizeof *d->true_acc);
    double *conf = xmalloc((size_t)W * L * L * sizeof *conf);   /* cumulative rows after setup */
    double *activity = xmalloc((size_t)W * sizeof *activity);
    double prior_cum[MAX_LABELS], total = 0;
    for (int k = 0; k < L; k++)
        prior_cum[k] = total += sp->prior[k];
    double act = 0;
    for (int w = 0; w < W; w++) {
        double *c = conf + (size_t)w * L * L;
        make_worker(sp, &r, w, c);
        d->true_acc[w] = 0;
        for (int k = 0; k < L; k++) {
            d->true_acc[w] += sp->prior[k] / total * c[k * L + k];
            for (int l = 1; l < L; l++)
                c[k * L + l] += c[k * L + l - 1];
        }
        activity[w] = act += exp(sp->activity_sigma * rng_gauss(&r));
    }
    int *chosen = xmalloc((size_t)P * sizeof *chosen);
    for (int i = 0; i < d->n_items; i++) {
        int t = draw(&r, prior_cum, L);
        d->truth[i] = t;
        d->key[i] = mix64((uint64_t)i + seed);
        for (int j = 0; j < P; j++) {
            int w, again;
            do {   /* P distinct workers, drawn by activity */
                w = draw(&r, activity, W);
                again = 0;
                for (int x = 0; x < j; x++)
                    again |= chosen[x] == w;
            } while (again);
            chosen[j] = w;
            d->votes[d->n++] = (tly_vote){i, w, draw(&r, conf + ((size_t)w * L + t) * L, L)};
        }
    }
    free(chosen);
    free(activity);
    free(conf);
}

/* ---- methods and figures ----------------------------------------------------------- */

static const double DS_TOL = 1e-6;
static const int DS_MAX_ITER = 100;       /* the library's default */
static const int DS_MAX_ITER_TIMED = 1000; /* the timed run goes on until it converges */
static double ds_smoothing = 0;           /* 0: the library's default */

static void fig_name(char *out, size_t size, const char *set, const char *rest)
{
    size_t j = 0;
    for (const char *p = set; *p && j + 1 < size; p++)
        out[j++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ? *p : '_';
    out[j] = 0;
    snprintf(out + j, size - j, "_%s", rest);
}

static void figure(const char *set, const char *what, double value, int decimals, const char *unit)
{
    char name[256];
    fig_name(name, sizeof name, set, what);
    printf("figure: %s %.*f %s\n", name, decimals, value, unit);
}

static void check_ok(int rc, const tly_error *err, const char *what)
{
    if (rc < 0)
        die("%s", err->message[0] ? err->message : what);
}

/* Share of the items with truth (and, if gold is set, not gold: held_out) that c got
 * right; *count gets how many there were. */
static double accuracy(const dataset *d, const tly_consensus *c, const char *gold, int held_out, int *count)
{
    int right = 0, n = 0;
    for (int i = 0; i < d->n_items; i++)
        if (d->truth[i] >= 0 && !(held_out && gold[i])) {
            n++;
            right += c->label[i] == d->truth[i];
        }
    *count = n;
    return n ? (double)right / n : 0;
}

static int cmp_key(const void *a, const void *b, void *keys)
{
    const uint64_t *k = keys;
    int x = *(const int *)a, y = *(const int *)b;
    return k[x] < k[y] ? -1 : k[x] > k[y] ? 1 : (x > y) - (x < y);
}

/* The four methods on d; prints the result lines and figures. *ds_minus_mv gets
 * DS minus MV accuracy over all questions with truth. */
static void evaluate(const dataset *d, double *ds_minus_mv)
{
    int n = d->n_items, L = d->n_labels;
    /* Gold: the (count + 5) / 10 questions with truth with the smallest keys. */
    int *with_truth = xmalloc((size_t)n * sizeof *with_truth), n_truth = 0;
    for (int i = 0; i < n; i++)
        if (d->truth[i] >= 0)
            with_truth[n_truth++] = i;
    qsort_r(with_truth, (size_t)n_truth, sizeof *with_truth, cmp_key, d->key);
    char *gold = xcalloc((size_t)n, 1);
    int n_gold = (n_truth + 5) / 10;
    int *known = xmalloc((size_t)n * sizeof *known);
    for (int i = 0; i < n; i++)
        known[i] = -1;
    for (int j = 0; j < n_gold; j++) {
        gold[with_truth[j]] = 1;
        known[with_truth[j]] = d->truth[with_truth[j]];
    }
    /* Trust: smoothed accuracy on gold, Beta(3,1) prior. */
    int *seen = xcalloc((size_t)d->n_workers, sizeof *seen), *correct = xcalloc((size_t)d->n_workers, sizeof *correct);
    for (size_t v = 0; v < d->n; v++)
        if (gold[d->votes[v].item]) {
            seen[d->votes[v].worker]++;
            correct[d->votes[v].worker] += d->votes[v].label == d->truth[d->votes[v].item];
        }
    double *trust = xmalloc((size_t)d->n_workers * sizeof *trust);
    int workers_with_gold = 0;
    for (int w = 0; w < d->n_workers; w++) {
        trust[w] = (correct[w] + 3.0) / (seen[w] + 4.0);
        workers_with_gold += seen[w] > 0;
    }

    tly_consensus mv, wv, ds, dsg, dsp;
    tly_error err = {0};
    check_ok(tly_consensus_majority(d->votes, d->n, n, d->n_workers, L, NULL, &mv, &err), &err, "majority");
    check_ok(tly_consensus_majority(d->votes, d->n, n, d->n_workers, L, trust, &wv, &err), &err, "weighted");
    tly_ds_params p = {.max_iter = DS_MAX_ITER, .tol = DS_TOL, .smoothing = ds_smoothing};
    check_ok(tly_consensus_dawid_skene_ex(d->votes, d->n, n, d->n_workers, L, &p, &ds, &err), &err, "ds");
    p.worker_prior = L;   /* fixed a priori: as many pseudo-judgments per row as labels */
    check_ok(tly_consensus_dawid_skene_ex(d->votes, d->n, n, d->n_workers, L, &p, &dsp, &err), &err, "ds pooled");
    p.worker_prior = 0;
    p.known = known;
    check_ok(tly_consensus_dawid_skene_ex(d->votes, d->n, n, d->n_workers, L, &p, &dsg, &err), &err, "ds gold");

    int held, all;
    double mv_h = accuracy(d, &mv, gold, 1, &held), mv_a = accuracy(d, &mv, gold, 0, &all);
    double wv_h = accuracy(d, &wv, gold, 1, &held);
    double ds_h = accuracy(d, &ds, gold, 1, &held), ds_a = accuracy(d, &ds, gold, 0, &all);
    double dsg_h = accuracy(d, &dsg, gold, 1, &held);
    double dsp_h = accuracy(d, &dsp, gold, 1, &held), dsp_a = accuracy(d, &dsp, gold, 0, &all);
    printf("# %s: %zu judgments, %d questions (%d with truth: %d gold, %d held out), %d workers "
           "(%d answered gold), %d labels\n",
           d->name, d->n, n, n_truth, n_gold, held, d->n_workers, workers_with_gold, L);
    printf("%s majority accuracy=%.4f held_out=%d all_accuracy=%.4f all=%d\n", d->name, mv_h, held, mv_a, all);
    printf("%s weighted_vote accuracy=%.4f held_out=%d\n", d->name, wv_h, held);
    printf("%s dawid_skene accuracy=%.4f held_out=%d all_accuracy=%.4f all=%d rounds=%d\n", d->name, ds_h, held,
           ds_a, all, ds.iterations);
    printf("%s dawid_skene_gold accuracy=%.4f held_out=%d rounds=%d\n", d->name, dsg_h, held, dsg.iterations);
    printf("%s dawid_skene_pooled accuracy=%.4f held_out=%d all_accuracy=%.4f all=%d rounds=%d\n", d->name, dsp_h,
           held, dsp_a, all, dsp.iterations);
    figure(d->name, "majority_accuracy", mv_h, 4, "ratio");
    figure(d->name, "weighted_vote_accuracy", wv_h, 4, "ratio");
    figure(d->name, "dawid_skene_accuracy", ds_h, 4, "ratio");
    figure(d->name, "dawid_skene_gold_accuracy", dsg_h, 4, "ratio");
    figure(d->name, "dawid_skene_pooled_accuracy", dsp_h, 4, "ratio");
    figure(d->name, "majority_all_accuracy", mv_a, 4, "ratio");
    figure(d->name, "dawid_skene_all_accuracy", ds_a, 4, "ratio");
    figure(d->name, "dawid_skene_pooled_all_accuracy", dsp_a, 4, "ratio");
    *ds_minus_mv = ds_a - mv_a;
    tly_consensus_free(&mv);
    tly_consensus_free(&wv);
    tly_consensus_free(&ds);
    tly_consensus_free(&dsg);
    tly_consensus_free(&dsp);
    free(trust);
    free(seen);
    free(correct);
    free(known);
    free(gold);
    free(with_truth);
}

/* ---- main -------------------------------------------------------------------------- */

static const synth_spec MAIN_SPEC = {
    "synth_1m", "1,000 workers: 10% spammers (random or one label), the rest accuracy 0.55-0.95",
    W_MAIN, 5, 1000, 4, {0.45, 0.30, 0.15, 0.10}, 1.0};

static const synth_spec OTHER_SPECS[] = {
    {"synth_experts_spammers",
     "3 labels, 200 workers: 5% experts (0.95), 35% random, 15% always label 0, 45% at 0.45; 7 a question",
     W_EXPERTS_SPAMMERS, 7, 200, 3, {0.5, 0.3, 0.2}, 0.5},
    {"synth_confusers",
     "4 labels, 300 workers: 60% answer 3 for 60% of the 2s (0.85 elsewhere), 40% at 0.75; 5 a question",
     W_CONFUSERS, 5, 300, 4, {0.3, 0.3, 0.2, 0.2}, 0.5},
    {"synth_long_tail",
     "2 labels, 20,000 workers of accuracy 0.6-0.9, activity lognormal sigma 1.5 (most answer a handful); 3 a question",
     W_LONG_TAIL, 3, 20000, 2, {0.7, 0.3}, 1.5},
    {"synth_uniform_skill", "4 labels, 500 workers all at 0.70 (nothing to learn); 5 a question", W_UNIFORM, 5, 500,
     4, {0.25, 0.25, 0.25, 0.25}, 0.5},
    {"synth_adversarial", "2 labels, 400 workers: 20% answer the opposite (0.15), the rest 0.65-0.85; 5 a question",
     W_ADVERSARIAL, 5, 400, 2, {0.5, 0.5}, 0.5},
};

static void usage(void)
{
    fprintf(stderr, "usage: bench_aggregate [-n JUDGMENTS] [--seed N] [--smoothing A] [DIR...]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    size_t judgments = 1000000;
    uint64_t seed = 1;
    const char **dirs = xmalloc((size_t)argc * sizeof *dirs);
    int n_dirs = 0;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--smoothing") == 0) {
            if (a + 1 >= argc)
                usage();
            char *end;
            ds_smoothing = strtod(argv[a + 1], &end);
            if (*end || end == argv[a + 1] || !(ds_smoothing > 0))
                usage();
            a++;
        } else if (strcmp(argv[a], "-n") == 0 || strcmp(argv[a], "--seed") == 0) {
            if (a + 1 >= argc)
                usage();
            char *end;
            unsigned long long v = strtoull(argv[a + 1], &end, 10);
            if (*end || end == argv[a + 1])
                usage();
            if (argv[a][1] == 'n')
                judgments = (size_t)v;
            else
                seed = v;
            a++;
        } else if (argv[a][0] == '-')
            usage();
        else
            dirs[n_dirs++] = argv[a];
    }
    if (judgments < 1000 || judgments > 100000000)
        die("%s", "JUDGMENTS must be 1,000 .. 100,000,000");

    printf("# bench_aggregate: consensus accuracy and Dawid-Skene speed (qa/consensus.h)\n"
           "# accuracy= : on the held-out questions (truth known, not among the 10%% gold), the same set for\n"
           "#             every method, so the lines compare like with like; all_accuracy= : every question\n"
           "#             with truth (methods that use no gold); the target compares DS and MV on all_accuracy\n"
           "# weighted_vote: weight = trust = (correct + 3) / (seen + 4) on gold; dawid_skene_gold: gold as known labels\n"
           "# dawid_skene_pooled: no gold, worker_prior = n_labels (rows shrunk toward the pooled confusion)\n"
           "# Dawid-Skene: library defaults (max %d rounds, tol %g), smoothing %g%s; the timed run: up to %d rounds\n",
           DS_MAX_ITER, DS_TOL, ds_smoothing > 0 ? ds_smoothing : 0.01, ds_smoothing > 0 ? "" : " (default)",
           DS_MAX_ITER_TIMED);

    /* Real datasets. */
    for (int j = 0; j < n_dirs; j++) {
        dataset d;
        fprintf(stderr, "bench_aggregate: %s\n", dirs[j]);
        load_dir(dirs[j], &d);
        double diff;
        evaluate(&d, &diff);
        char name[256];
        fig_name(name, sizeof name, d.name, "ds_minus_mv");
        printf("target: %s %.4f >= 0\n", name, diff);
        if (diff < 0)
            fprintf(stderr, "bench_aggregate: target missed: %s %.4f < 0\n", name, diff);
        dataset_free(&d);
    }

    /* The timed run. */
    dataset d;
    fprintf(stderr, "bench_aggregate: making %zu synthetic judgments (seed %llu)\n", judgments,
            (unsigned long long)seed);
    make_synth(&MAIN_SPEC, judgments, seed, &d);
    printf("# ds_1m: %zu synthetic judgments, %d items, %d workers, %d labels, seed %llu: %s; priors 0.45/0.30/0.15/0.10\n",
           d.n, d.n_items, d.n_workers, d.n_labels, (unsigned long long)seed, MAIN_SPEC.about);
    tly_consensus mv, ds;
    tly_error err = {0};
    double t0 = now(CLOCK_MONOTONIC);
    check_ok(tly_consensus_majority(d.votes, d.n, d.n_items, d.n_workers, d.n_labels, NULL, &mv, &err), &err, "mv");
    double mv_s = now(CLOCK_MONOTONIC) - t0;
    double *acc = xmalloc((size_t)d.n_workers * sizeof *acc);
    tly_ds_params p = {.max_iter = DS_MAX_ITER_TIMED, .tol = DS_TOL, .smoothing = ds_smoothing, .worker_accuracy = acc};
    double c0 = now(CLOCK_THREAD_CPUTIME_ID);
    t0 = now(CLOCK_MONOTONIC);
    check_ok(tly_consensus_dawid_skene_ex(d.votes, d.n, d.n_items, d.n_workers, d.n_labels, &p, &ds, &err), &err,
             "ds");
    double ds_s = now(CLOCK_MONOTONIC) - t0, ds_cpu = now(CLOCK_THREAD_CPUTIME_ID) - c0;
    int right_mv = 0, right_ds = 0;
    for (int i = 0; i < d.n_items; i++) {
        right_mv += mv.label[i] == d.truth[i];
        right_ds += ds.label[i] == d.truth[i];
    }
    double mae = 0;
    for (int w = 0; w < d.n_workers; w++)
        mae += fabs(acc[w] - d.true_acc[w]);
    mae /= d.n_workers;
    printf("figure: ds_1m_judgments %zu judgments\n", d.n);
    printf("figure: ds_1m_seconds %.3f s\n", ds_s);
    printf("figure: ds_1m_cpu_seconds %.3f s\n", ds_cpu);
    printf("figure: ds_1m_rounds %d rounds\n", ds.iterations);
    printf("figure: ds_1m_ms_per_round %.1f ms\n", ds_s * 1000 / (ds.iterations ? ds.iterations : 1));
    printf("figure: ds_1m_accuracy %.4f ratio\n", (double)right_ds / d.n_items);
    printf("figure: ds_1m_majority_accuracy %.4f ratio\n", (double)right_mv / d.n_items);
    printf("figure: ds_1m_majority_seconds %.3f s\n", mv_s);
    printf("figure: ds_1m_worker_accuracy_mae %.4f ratio\n", mae);
    printf("target: ds_1m_seconds %.3f <= 5\n", ds_s);
    if (ds_s > 5)
        fprintf(stderr, "bench_aggregate: target missed: ds_1m_seconds %.3f > 5\n", ds_s);
    tly_consensus_free(&mv);
    tly_consensus_free(&ds);
    free(acc);
    dataset_free(&d);

    /* Datasets of other structures: DS has nothing tuned to them. */
    for (size_t s = 0; s < sizeof OTHER_SPECS / sizeof *OTHER_SPECS; s++) {
        make_synth(&OTHER_SPECS[s], judgments / 5, seed, &d);
        printf("# %s: %s\n", d.name, OTHER_SPECS[s].about);
        double diff;
        evaluate(&d, &diff);
        figure(d.name, "ds_minus_mv", diff, 4, "ratio");
        dataset_free(&d);
    }
    free(dirs);
    return 0;
}
