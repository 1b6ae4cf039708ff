/* crowd.h -- crowd work with the quality round in it: quiz, gold mixing, trust.
 *
 * What a worker gets next and what a submission does to their standing. Leasing
 * and recording are annotate/work.h's; this decides, per request, which kind of
 * task the worker gets (a quiz question, a test question hidden in work, or work)
 * and grades test questions:
 *   - a newcomer takes the quiz (quiz.size test questions, with feedback) and enters
 *     work mode on passing; failing puts them out of the project (403 quiz_failed);
 *   - in work mode test questions are mixed in at gold_rate and look exactly like
 *     work (same shape, "mode":"work", no feedback); each is graded into trust;
 *   - trust below min_trust stops the worker (403 worker_stopped) and excludes their
 *     judgments from results; their items go back for more judgments.
 * Never a silent fallback: a project without enough test questions refuses quiz and
 * gold with 403 not_enough_test_questions / gold_exhausted, and says so in its stats.
 * Called by server/ handlers.
 */
#ifndef TALLY_QA_CROWD_H
#define TALLY_QA_CROWD_H

#include "core/error.h"
#include "storage/store.h"

#include <jansson.h>

/* The API's work/next object in *out, or *out = NULL when nothing is eligible (204).
 * FORBIDDEN: quiz_failed, worker_stopped, not_enough_test_questions, gold_exhausted. */
int tly_crowd_next(tly_store *st, int64_t project_id, const tly_user *worker, json_t **out, tly_error *err);

/* Submits a judgment (annotate/work.h's rules), grading a test question. In the quiz
 * the reply carries "feedback": {"correct","expected","score","quiz":{...}}. */
int tly_crowd_submit(tly_store *st, int64_t assignment_id, const tly_user *worker, json_t *body, json_t **out,
                     tly_error *err);

/* The worker's standing row in the project, created on first contact. */
int tly_crowd_standing(tly_store *st, const tly_project *p, int64_t worker_id, tly_project_worker *out,
                       tly_error *err);

/* {"have","needed","enough","work_items"}: whether the project has the test
 * questions its quiz and gold rate need (standing.h). New reference, NULL on error. */
json_t *tly_crowd_gold_supply(tly_store *st, const tly_project *p, tly_error *err);

/* [{"code":"not_enough_test_questions","message",...}] when the supply falls short
 * (what project creation and resume tell the manager), else NULL. */
json_t *tly_crowd_warnings(tly_store *st, const tly_project *p);

#endif
