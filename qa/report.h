/* report.h -- what a manager reads about quality: project stats, the worker table
 * and the results list, in the API's shapes. Called by server/ handlers.
 */
#ifndef TALLY_QA_REPORT_H
#define TALLY_QA_REPORT_H

#include "core/error.h"
#include "storage/store.h"

#include <jansson.h>

/* GET /v1/projects/{id}/stats: item counts per state, test-question supply, judgments,
 * workers and mean trust, agreement per choice control (Krippendorff's alpha and
 * pairwise percent agreement), results, reviews, lots and accuracy estimates. */
int tly_report_stats(tly_store *st, int64_t project_id, json_t **out, tly_error *err);

/* One row of GET /v1/projects/{id}/workers. */
json_t *tly_report_worker_json(const tly_project *p, const tly_project_worker *w);

#endif
