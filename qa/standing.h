/* standing.h -- a worker's standing in a project: quiz, trust, gold mixing.
 *
 * The arithmetic of the quality round's worker model, kept apart from the store so
 * it can be tested by hand-computed cases:
 *   - trust is the worker's accuracy on test questions smoothed by a Beta prior:
 *     (correct + a) / (seen + a + b), a = trust.prior_correct (3), b = prior_wrong (1),
 *     so one early slip does not sink a newcomer and a spammer's luck runs out;
 *   - the quiz is passed when correct / quiz.size >= quiz.pass; failing it puts the
 *     worker out of the project;
 *   - in work mode a worker whose trust falls below min_trust is stopped;
 *   - gold is mixed into work so that after n tasks the worker has had
 *     gold_rate x n test questions, give or take less than one: a test question is
 *     due for sure once the deficit reaches one, and with probability equal to the
 *     deficit before that, so its position cannot be predicted.
 * Called by qa/ (crowd.c, report.c).
 */
#ifndef TALLY_QA_STANDING_H
#define TALLY_QA_STANDING_H

#include "storage/store.h"

#include <jansson.h>
#include <stdint.h>

typedef struct {
    int quiz_size;
    double quiz_pass;
    double gold_rate;
    double min_trust;
    double prior_correct, prior_wrong;
    int64_t per_worker_cap;
} tly_quality_rules;

/* From a project's workflow (defaults for settings it predates). */
void tly_quality_rules_of(json_t *workflow, tly_quality_rules *r);

double tly_trust_of(int64_t correct, int64_t seen, const tly_quality_rules *r);

/* A newcomer's row: quiz mode when the project has a quiz, trust = the prior mean. */
void tly_standing_new(int64_t project_id, int64_t worker_id, const tly_quality_rules *r,
                      tly_project_worker *out);

typedef enum {
    TLY_STANDING_SAME = 0,
    TLY_STANDING_QUIZ_PASSED,
    TLY_STANDING_QUIZ_FAILED,
    TLY_STANDING_STOPPED
} tly_standing_change;

/* Counts one graded test question (in the quiz or in work) into w and applies the
 * rules; sets w->reason when the worker fails or is stopped. */
tly_standing_change tly_standing_grade(tly_project_worker *w, int in_quiz, int correct,
                                       const tly_quality_rules *r);

/* The deficit of test questions after `tasks` work tasks of which `gold` were test
 * questions, counting the next one: gold_rate x (tasks + 1) - gold. */
double tly_gold_deficit(double gold_rate, int64_t tasks, int64_t gold);
/* Whether the next task is a test question: deficit >= 1, or u (uniform in [0,1))
 * below the deficit. */
int tly_gold_due(double gold_rate, int64_t tasks, int64_t gold, double u);

/* Test questions a project needs so that no worker runs out: the quiz plus the gold
 * for the largest share of work one worker may do (per_worker_cap, else every work
 * item): quiz.size + ceil(work x gold_rate / (1 - gold_rate)). */
int64_t tly_gold_needed(const tly_quality_rules *r, int64_t work_items);

#endif
