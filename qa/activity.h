/* activity.h -- a project's throughput over time (judgments per time bucket), the
 * series behind the manager console's chart: GET /v1/projects/{id}/throughput.
 */
#ifndef TALLY_QA_ACTIVITY_H
#define TALLY_QA_ACTIVITY_H

#include "core/error.h"
#include "storage/store.h"

#include <jansson.h>

/* bucket: "minute" (the last 2 hours), "hour" (the last 48 hours) or "day" (the last
 * 30 days); NULL = "hour". *out = {"project_id","bucket","bucket_seconds","from","to",
 * "total","series":[{"at","judgments","workers"}]} with one entry per bucket, empty
 * ones included, the last bucket holding now_ms. 400 invalid_query for another
 * bucket, 404 for an unknown project. */
int tly_activity_throughput(tly_store *st, int64_t project_id, const char *bucket, int64_t now_ms, json_t **out,
                            tly_error *err);

#endif
