/* metrics.h -- process-wide counters and histograms, rendered as Prometheus text.
 *
 * A series is identified by its full Prometheus name including labels, e.g.
 * `tally_http_requests_total{route="get_item",status="200"}`. Looking a series up
 * registers it on first use (under a mutex); updating it afterwards is a lock-free
 * atomic add, so hot paths can keep the returned pointer. The registry has a fixed
 * capacity (TLY_METRICS_MAX series): past it, lookups return a shared overflow
 * series instead of growing without bound when labels come from outside input.
 * Not domain-specific: any folder may count things here; server/ renders it.
 */
#ifndef TALLY_CORE_METRICS_H
#define TALLY_CORE_METRICS_H

#include "core/buf.h"

#include <stdint.h>

#define TLY_METRICS_MAX 1024

typedef struct tly_counter tly_counter;
typedef struct tly_histogram tly_histogram;

/* family: metric name without labels; labels: "" or `route="x",status="200"`. */
tly_counter *tly_metrics_counter(const char *family, const char *help, const char *labels);
void tly_counter_add(tly_counter *c, uint64_t n);
uint64_t tly_counter_value(const tly_counter *c);

/* Latency-style histogram in seconds with fixed buckets (5 ms .. 10 s). */
tly_histogram *tly_metrics_histogram(const char *family, const char *help, const char *labels);
void tly_histogram_observe(tly_histogram *h, double seconds);

/* Gauges are computed at render time by callbacks (queue depths, etc). */
typedef double (*tly_gauge_fn)(void *arg);
void tly_metrics_gauge(const char *family, const char *help, tly_gauge_fn fn, void *arg);

/* Appends the exposition text of every series; -1 if out would overflow its cap. */
int tly_metrics_render(tly_buf *out);

/* Forget every series (tests). */
void tly_metrics_reset(void);

#endif
