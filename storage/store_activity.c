/* store_activity.c -- how much work a project gets over time: judgments counted per
 * fixed-width time bucket, for the manager console's throughput chart.
 *
 * One GROUP BY over the judgments of the project (index judgments_project) from
 * since_ms on. Bucketing is integer division of the millisecond timestamp, which
 * SQLite and PostgreSQL compute alike on BIGINT; empty buckets are not returned (the
 * caller fills the gaps), so the result has at most one row per bucket that saw work.
 */
#include "storage/sql.h"

#include <stdlib.h>

static int read_activity_row(const sq_row *r, void *ctx, tly_error *err)
{
    (void)err;
    tly_activity_bucket *b = ctx;
    b->bucket_start_ms = sq_col_i64(r, 0);
    b->judgments = sq_col_i64(r, 1);
    b->workers = sq_col_i64(r, 2);
    return 0;
}

int tly_store_judgment_activity(tly_store *st, int64_t project_id, int64_t since_ms, int64_t bucket_ms,
                                tly_activity_bucket **out, size_t *n_out, tly_error *err)
{
    *out = NULL;
    *n_out = 0;
    if (bucket_ms <= 0)
        return tly_fail(err, TLY_E_INVALID, "invalid_query", "bucket width must be positive");
    return sq_list(st,
                   "SELECT (created_at / ?) * ? AS bucket, COUNT(*), COUNT(DISTINCT worker_id)"
                   " FROM judgments WHERE project_id = ? AND created_at >= ?"
                   " GROUP BY bucket ORDER BY bucket",
                   read_activity_row, NULL, sizeof(tly_activity_bucket), (void **)out, n_out, err, "iiii",
                   bucket_ms, bucket_ms, project_id, since_ms);
}
