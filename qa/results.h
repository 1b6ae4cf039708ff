/* results.h -- aggregation: from an item's judgments to its result, and where the
 * item goes next.
 *
 * Runs as the background job "aggregate" (one per project, queued by the store when
 * an item gets its last judgment). For every item in state 'labeled':
 *   1. fuse the judgments per control (qa/aggregate.h) weighted by the workers'
 *      trust; choice controls use the project's consensus method -- Dawid-Skene by
 *      default, fitted over all of the project's judgments with the test questions'
 *      answers as known labels;
 *   2. run the automatic checks (qa/checks.h);
 *   3. confidence below min_confidence with fewer than max_overlap judgments: ask for
 *      one more judgment (dynamic overlap); otherwise store the result and send the
 *      item to review when it is flagged, still below min_confidence, or drawn by
 *      review.sample_rate -- else it is done.
 * Each move is checked against the item's state inside the write transaction, so a
 * judgment excluded meanwhile (a worker stopped) wins over a stale aggregation.
 * Called by server/'s job runner.
 */
#ifndef TALLY_QA_RESULTS_H
#define TALLY_QA_RESULTS_H

#include "core/error.h"
#include "storage/store.h"

#define TLY_JOB_AGGREGATE "aggregate"

/* Aggregates the project's labeled items (a bounded chunk per call; queues itself
 * again when more are waiting). */
int tly_quality_aggregate(tly_store *st, int64_t project_id, tly_error *err);

/* The API's result object for r. */
json_t *tly_result_json(const tly_result *r);

#endif
