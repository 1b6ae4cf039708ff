/* activity.c -- see activity.h. The store counts judgments per bucket where there
 * were some; this fills the gaps with zeros so the chart's x axis is regular time,
 * and names each bucket by its start as RFC 3339. */
#include "qa/activity.h"
#include "core/timeutil.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int64_t width_ms;
    int count;          /* buckets in the window, the current one included */
} activity_window;

static const activity_window windows[] = {
    {"minute", 60 * 1000LL, 120},
    {"hour", 3600 * 1000LL, 48},
    {"day", 86400 * 1000LL, 30},
};

int tly_activity_throughput(tly_store *st, int64_t project_id, const char *bucket, int64_t now_ms, json_t **out,
                            tly_error *err)
{
    *out = NULL;
    const activity_window *w = NULL;
    const char *want = bucket ? bucket : "hour";
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++)
        if (strcmp(want, windows[i].name) == 0)
            w = &windows[i];
    if (!w)
        return tly_fail(err, TLY_E_INVALID, "invalid_query", "bucket must be minute, hour or day");

    tly_project p = {0};
    if (tly_store_project_get(st, project_id, &p, err) < 0)
        return -1;
    tly_project_clear(&p);

    int64_t last_start = now_ms / w->width_ms * w->width_ms;
    int64_t first_start = last_start - (int64_t)(w->count - 1) * w->width_ms;
    tly_activity_bucket *rows = NULL;
    size_t n_rows = 0;
    if (tly_store_judgment_activity(st, project_id, first_start, w->width_ms, &rows, &n_rows, err) < 0)
        return -1;

    json_t *series = json_array();
    int64_t total = 0;
    size_t next_row = 0;
    for (int i = 0; i < w->count; i++) {
        int64_t start = first_start + (int64_t)i * w->width_ms;
        int64_t judgments = 0, workers = 0;
        while (next_row < n_rows && rows[next_row].bucket_start_ms < start)
            next_row++;   /* cannot happen with the store's bucketing; kept for safety */
        if (next_row < n_rows && rows[next_row].bucket_start_ms == start) {
            judgments = rows[next_row].judgments;
            workers = rows[next_row].workers;
            next_row++;
        }
        total += judgments;
        char at[32];
        tly_format_rfc3339(start, at, sizeof at);
        json_array_append_new(series, json_pack("{s:s,s:I,s:I}", "at", at, "judgments", (json_int_t)judgments,
                                                "workers", (json_int_t)workers));
    }
    free(rows);

    char from[32], to[32];
    tly_format_rfc3339(first_start, from, sizeof from);
    tly_format_rfc3339(last_start + w->width_ms, to, sizeof to);
    *out = json_pack("{s:I,s:s,s:I,s:s,s:s,s:I,s:o}", "project_id", (json_int_t)project_id, "bucket", w->name,
                     "bucket_seconds", (json_int_t)(w->width_ms / 1000), "from", from, "to", to, "total",
                     (json_int_t)total, "series", series);
    if (!*out)
        return tly_fail(err, TLY_E_INTERNAL, "internal", "out of memory");
    return 0;
}
