/* metrics.c -- see metrics.h.
 *
 * Series live in one static array; registration appends under a mutex and never
 * moves entries, so pointers handed out stay valid for the life of the process.
 * Rendering groups series of the same family under one HELP/TYPE header by
 * walking families in first-registration order.
 */
#include "core/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define NBUCKETS 12
static const double bucket_bounds[NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                               0.5,   1.0,  2.5,   5.0,  10.0, 30.0};

enum kind { K_COUNTER, K_HISTOGRAM, K_GAUGE };

struct tly_counter {
    _Atomic uint64_t value;
};

struct tly_histogram {
    _Atomic uint64_t buckets[NBUCKETS];
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;     /* sum in microseconds, to stay integral and atomic */
};

typedef struct {
    enum kind kind;
    char family[96];
    char help[160];
    char labels[160];
    union {
        struct tly_counter counter;
        struct tly_histogram histogram;
    } u;
    tly_gauge_fn gauge_fn;
    void *gauge_arg;
} series;

static series g_series[TLY_METRICS_MAX];
static size_t g_nseries;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tly_counter g_overflow_counter;
static struct tly_histogram g_overflow_histogram;

static series *find_or_add(enum kind kind, const char *family, const char *help,
                           const char *labels)
{
    for (size_t i = 0; i < g_nseries; i++) {
        series *s = &g_series[i];
        if (s->kind == kind && strcmp(s->family, family) == 0 && strcmp(s->labels, labels) == 0)
            return s;
    }
    if (g_nseries == TLY_METRICS_MAX)
        return NULL;
    series *s = &g_series[g_nseries];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    snprintf(s->family, sizeof s->family, "%s", family);
    snprintf(s->help, sizeof s->help, "%s", help ? help : "");
    snprintf(s->labels, sizeof s->labels, "%s", labels ? labels : "");
    g_nseries++;
    return s;
}

tly_counter *tly_metrics_counter(const char *family, const char *help, const char *labels)
{
    pthread_mutex_lock(&g_lock);
    series *s = find_or_add(K_COUNTER, family, help, labels ? labels : "");
    pthread_mutex_unlock(&g_lock);
    return s ? &s->u.counter : &g_overflow_counter;
}

void tly_counter_add(tly_counter *c, uint64_t n) { atomic_fetch_add(&c->value, n); }
uint64_t tly_counter_value(const tly_counter *c) { return atomic_load(&c->value); }

tly_histogram *tly_metrics_histogram(const char *family, const char *help, const char *labels)
{
    pthread_mutex_lock(&g_lock);
    series *s = find_or_add(K_HISTOGRAM, family, help, labels ? labels : "");
    pthread_mutex_unlock(&g_lock);
    return s ? &s->u.histogram : &g_overflow_histogram;
}

void tly_histogram_observe(tly_histogram *h, double seconds)
{
    for (int i = 0; i < NBUCKETS; i++)
        if (seconds <= bucket_bounds[i])
            atomic_fetch_add(&h->buckets[i], 1);
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum_us, (uint64_t)(seconds * 1e6));
}

void tly_metrics_gauge(const char *family, const char *help, tly_gauge_fn fn, void *arg)
{
    pthread_mutex_lock(&g_lock);
    series *s = find_or_add(K_GAUGE, family, help, "");
    if (s) {
        s->gauge_fn = fn;
        s->gauge_arg = arg;
    }
    pthread_mutex_unlock(&g_lock);
}

static int render_labels(tly_buf *out, const char *labels, const char *extra)
{
    if (!labels[0] && !extra)
        return 0;
    return tly_buf_appendf(out, "{%s%s%s}", labels, labels[0] && extra ? "," : "",
                           extra ? extra : "");
}

static int render_series(tly_buf *out, const series *s)
{
    int rc = 0;
    switch (s->kind) {
    case K_COUNTER:
        rc |= tly_buf_appendf(out, "%s", s->family);
        rc |= render_labels(out, s->labels, NULL);
        rc |= tly_buf_appendf(out, " %llu\n", (unsigned long long)tly_counter_value(&s->u.counter));
        break;
    case K_GAUGE:
        rc |= tly_buf_appendf(out, "%s %.6g\n", s->family, s->gauge_fn ? s->gauge_fn(s->gauge_arg) : 0.0);
        break;
    case K_HISTOGRAM: {
        const struct tly_histogram *h = &s->u.histogram;
        char le[48];
        for (int i = 0; i < NBUCKETS; i++) {
            snprintf(le, sizeof le, "le=\"%g\"", bucket_bounds[i]);
            rc |= tly_buf_appendf(out, "%s_bucket", s->family);
            rc |= render_labels(out, s->labels, le);
            rc |= tly_buf_appendf(out, " %llu\n", (unsigned long long)atomic_load(&h->buckets[i]));
        }
        uint64_t count = atomic_load(&h->count);
        rc |= tly_buf_appendf(out, "%s_bucket", s->family);
        rc |= render_labels(out, s->labels, "le=\"+Inf\"");
        rc |= tly_buf_appendf(out, " %llu\n%s_sum", (unsigned long long)count, s->family);
        rc |= render_labels(out, s->labels, NULL);
        rc |= tly_buf_appendf(out, " %.6f\n%s_count", (double)atomic_load(&h->sum_us) / 1e6, s->family);
        rc |= render_labels(out, s->labels, NULL);
        rc |= tly_buf_appendf(out, " %llu\n", (unsigned long long)count);
        break;
    }
    }
    return rc ? -1 : 0;
}

int tly_metrics_render(tly_buf *out)
{
    static const char *types[] = {"counter", "histogram", "gauge"};
    pthread_mutex_lock(&g_lock);
    size_t n = g_nseries;
    pthread_mutex_unlock(&g_lock);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int seen = 0;   /* family already rendered with an earlier series */
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(g_series[j].family, g_series[i].family) == 0;
        if (seen)
            continue;
        rc |= tly_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", g_series[i].family,
                              g_series[i].help, g_series[i].family, types[g_series[i].kind]);
        for (size_t j = i; j < n && rc == 0; j++)
            if (strcmp(g_series[j].family, g_series[i].family) == 0)
                rc |= render_series(out, &g_series[j]);
    }
    return rc ? -1 : 0;
}

void tly_metrics_reset(void)
{
    pthread_mutex_lock(&g_lock);
    g_nseries = 0;
    pthread_mutex_unlock(&g_lock);
}
