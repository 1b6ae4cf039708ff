/* standing.c -- see standing.h. */
#include "qa/standing.h"
#include "annotate/project.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void tly_quality_rules_of(json_t *workflow, tly_quality_rules *r)
{
    r->quiz_size = (int)tly_workflow_number(workflow, "quiz", "size");
    r->quiz_pass = tly_workflow_number(workflow, "quiz", "pass");
    r->gold_rate = tly_workflow_number(workflow, NULL, "gold_rate");
    r->min_trust = tly_workflow_number(workflow, NULL, "min_trust");
    r->prior_correct = tly_workflow_number(workflow, "trust", "prior_correct");
    r->prior_wrong = tly_workflow_number(workflow, "trust", "prior_wrong");
    r->per_worker_cap = (int64_t)tly_workflow_number(workflow, NULL, "per_worker_cap");
}

double tly_trust_of(int64_t correct, int64_t seen, const tly_quality_rules *r)
{
    double den = (double)seen + r->prior_correct + r->prior_wrong;
    if (den <= 0)
        return 1.0;   /* no prior and no evidence: nothing against the worker */
    return ((double)correct + r->prior_correct) / den;
}

void tly_standing_new(int64_t project_id, int64_t worker_id, const tly_quality_rules *r,
                      tly_project_worker *out)
{
    memset(out, 0, sizeof *out);
    out->project_id = project_id;
    out->worker_id = worker_id;
    strcpy(out->mode, r->quiz_size > 0 ? "quiz" : "work");
    strcpy(out->status, "active");
    out->trust = tly_trust_of(0, 0, r);
}

tly_standing_change tly_standing_grade(tly_project_worker *w, int in_quiz, int correct,
                                       const tly_quality_rules *r)
{
    w->gold_seen++;
    w->gold_correct += correct != 0;
    w->trust = tly_trust_of(w->gold_correct, w->gold_seen, r);
    if (strcmp(w->status, "active") != 0)
        return TLY_STANDING_SAME;
    tly_standing_change change = TLY_STANDING_SAME;
    if (in_quiz && strcmp(w->mode, "quiz") == 0) {
        w->quiz_seen++;
        w->quiz_correct += correct != 0;
        if (w->quiz_seen < r->quiz_size)
            return TLY_STANDING_SAME;
        double score = r->quiz_size > 0 ? (double)w->quiz_correct / r->quiz_size : 1.0;
        if (score + 1e-9 < r->quiz_pass) {
            strcpy(w->status, "failed");
            snprintf(w->reason, sizeof w->reason, "quiz: %lld of %d correct, %.0f%% needed",
                     (long long)w->quiz_correct, r->quiz_size, r->quiz_pass * 100);
            return TLY_STANDING_QUIZ_FAILED;
        }
        strcpy(w->mode, "work");
        change = TLY_STANDING_QUIZ_PASSED;
    }
    if (strcmp(w->mode, "work") == 0 && w->trust + 1e-9 < r->min_trust) {
        strcpy(w->status, "stopped");
        snprintf(w->reason, sizeof w->reason, "trust %.3f below the project's minimum %.3f (%lld of %lld test questions right)",
                 w->trust, r->min_trust, (long long)w->gold_correct, (long long)w->gold_seen);
        return TLY_STANDING_STOPPED;
    }
    return change;
}

double tly_gold_deficit(double gold_rate, int64_t tasks, int64_t gold)
{
    return gold_rate * (double)(tasks + 1) - (double)gold;
}

int tly_gold_due(double gold_rate, int64_t tasks, int64_t gold, double u)
{
    if (gold_rate <= 0)
        return 0;
    double d = tly_gold_deficit(gold_rate, tasks, gold);
    return d >= 1.0 - 1e-9 || u < d;
}

int64_t tly_gold_needed(const tly_quality_rules *r, int64_t work_items)
{
    int64_t share = r->per_worker_cap > 0 && r->per_worker_cap < work_items ? r->per_worker_cap : work_items;
    int64_t mixed = 0;
    if (r->gold_rate >= 1)
        mixed = share;   /* all gold: degenerate, but defined */
    else if (r->gold_rate > 0)
        mixed = (int64_t)ceil((double)share * r->gold_rate / (1 - r->gold_rate) - 1e-9);
    return r->quiz_size + mixed;
}
