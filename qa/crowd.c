/* crowd.c -- see crowd.h. */
#include "qa/crowd.h"
#include "annotate/work.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/timeutil.h"
#include "qa/compare.h"
#include "qa/standing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tly_crowd_standing(tly_store *st, const tly_project *p, int64_t worker_id, tly_project_worker *out,
                       tly_error *err)
{
    tly_error e;
    if (tly_store_project_worker_get(st, p->id, worker_id, out, &e) == 0)
        return 0;
    if (e.status != TLY_E_NOT_FOUND) {
        if (err)
            *err = e;
        return -1;
    }
    tly_quality_rules rules;
    tly_quality_rules_of(p->workflow, &rules);
    tly_project_worker fresh;
    tly_standing_new(p->id, worker_id, &rules, &fresh);
    if (tly_store_project_worker_create(st, &fresh, err) < 0)
        return -1;
    return tly_store_project_worker_get(st, p->id, worker_id, out, err);
}

json_t *tly_crowd_gold_supply(tly_store *st, const tly_project *p, tly_error *err)
{
    json_t *counts = NULL;
    if (tly_store_item_counts(st, p->id, &counts, err) < 0)
        return NULL;
    /* One count for both: test questions are state 'gold', work is every other state. */
    int64_t have = 0, work = 0;
    const char *state;
    json_t *v;
    json_object_foreach(counts, state, v) {
        if (strcmp(state, "gold") == 0)
            have = json_integer_value(v);
        else
            work += json_integer_value(v);
    }
    json_decref(counts);
    tly_quality_rules rules;
    tly_quality_rules_of(p->workflow, &rules);
    int64_t needed = tly_gold_needed(&rules, work);
    return json_pack("{s:I,s:I,s:b,s:I}", "have", (json_int_t)have, "needed", (json_int_t)needed, "enough",
                     have >= needed, "work_items", (json_int_t)work);
}

static int refuse(const tly_project_worker *w, tly_error *err)
{
    if (strcmp(w->status, "failed") == 0)
        return tly_fail(err, TLY_E_FORBIDDEN, "quiz_failed", "you did not pass this project's quiz (%s)", w->reason);
    return tly_fail(err, TLY_E_FORBIDDEN, "worker_stopped", "you were stopped in this project: %s", w->reason);
}

static double uniform01(void)
{
    uint64_t r = 0;
    if (tly_random_bytes(&r, sizeof r) < 0)
        return 0.5;
    return (double)(r >> 11) / 9007199254740992.0;
}

int tly_crowd_next(tly_store *st, int64_t project_id, const tly_user *worker, json_t **out, tly_error *err)
{
    tly_project p = {0};
    tly_project_worker w = {0};
    *out = NULL;
    if (tly_store_project_get(st, project_id, &p, err) < 0)
        return -1;
    int rc = -1;
    if (strcmp(p.state, "active") != 0) {
        rc = 0;   /* paused: nothing is handed out */
        goto done;
    }
    if (tly_crowd_standing(st, &p, worker->id, &w, err) < 0)
        goto done;
    if (strcmp(w.status, "active") != 0) {
        refuse(&w, err);
        goto done;
    }
    tly_quality_rules rules;
    tly_quality_rules_of(p.workflow, &rules);
    tly_work_plan plan = {.gold = 0, .mode = "work"};
    tly_assignment held;
    /* Only the quiz and gold mixing decide anything: plain work needs no look at the
     * worker's held lease here (dispatch returns it anyway), a query saved per task. */
    int decides = strcmp(w.mode, "quiz") == 0 || rules.gold_rate > 0;
    int rc_held = decides ? tly_store_worker_lease(st, p.id, worker->id, tly_now_ms(), &held, err) : 1;
    if (rc_held < 0)
        goto done;
    int64_t unseen = 0;
    if (rc_held == 0) {
        /* Asked again while holding a lease: the same task (whatever the plan). */
    } else if (strcmp(w.mode, "quiz") == 0) {
        plan.gold = 1;
        plan.mode = "quiz";
        if (tly_store_gold_unseen(st, p.id, worker->id, &unseen, err) < 0)
            goto done;
        /* Start (or go on with) a quiz only when it can be finished. */
        if (unseen < rules.quiz_size - w.quiz_seen) {
            tly_fail(err, TLY_E_FORBIDDEN, "not_enough_test_questions",
                     "this project's quiz needs %lld more test questions and has %lld for you; the manager must add more",
                     (long long)(rules.quiz_size - w.quiz_seen), (long long)unseen);
            goto done;
        }
    } else if (rules.gold_rate > 0) {
        int64_t tasks = 0, gold = 0;
        if (tly_store_work_mix(st, p.id, worker->id, &tasks, &gold, err) < 0)
            goto done;
        if (tly_gold_due(rules.gold_rate, tasks, gold, uniform01())) {
            if (tly_store_gold_unseen(st, p.id, worker->id, &unseen, err) < 0)
                goto done;
            if (unseen > 0) {
                plan.gold = 1;
            } else if (tly_gold_deficit(rules.gold_rate, tasks, gold) >= 1.0 - 1e-9) {
                /* No silent fallback to gold-free work: the manager must add some. */
                tly_fail(err, TLY_E_FORBIDDEN, gold ? "gold_exhausted" : "not_enough_test_questions",
                         "no test question left for you in this project (gold rate %.2f); the manager must add more",
                         rules.gold_rate);
                goto done;
            }
        }
    }
    if (tly_work_lease(st, &p, worker, &plan, out, err) < 0)
        goto done;
    if (!*out && plan.gold) {   /* taken meanwhile by a manager clearing gold */
        tly_fail(err, TLY_E_FORBIDDEN, plan.mode[0] == 'q' ? "not_enough_test_questions" : "gold_exhausted",
                 "no test question left for you in this project; the manager must add more");
        goto done;
    }
    rc = 0;
done:
    tly_project_clear(&p);
    tly_project_worker_clear(&w);
    return rc;
}

/* Grades a test question, records the judgment and the worker's new standing in one
 * transaction -- a stop and the exclusion it causes commit with the judgment that
 * caused them, or not at all. */
static int submit_gold(tly_store *st, tly_submission *s, const tly_user *worker, json_t **out, tly_error *err)
{
    tly_compare_opts opts;
    tly_compare_opts_from_json(json_object_get(s->p.workflow, "gold"), &opts, NULL);
    double score = 0;
    int correct = tly_compare_answer(s->p.template_json, s->answer, s->it.gold, s->it.media, &opts, &score, NULL, err);
    if (correct < 0)
        return -1;
    tly_quality_rules rules;
    tly_quality_rules_of(s->p.workflow, &rules);
    int in_quiz = strcmp(s->a.mode, "quiz") == 0;
    tly_project_worker w = {0};
    tly_standing_change change = TLY_STANDING_SAME;
    if (tly_store_begin(st, err) < 0)
        return -1;
    int64_t items_back = 0;
    if (tly_work_submission_record(st, s, correct, 1, out, err) < 0 || tly_crowd_standing(st, &s->p, worker->id, &w, err) < 0)
        goto fail;
    change = tly_standing_grade(&w, in_quiz, correct, &rules);
    if (change == TLY_STANDING_STOPPED &&
        tly_store_worker_exclude(st, s->p.id, worker->id, "worker_stopped", tly_now_ms(), &items_back, err) < 0)
        goto fail;
    if (tly_store_project_worker_update(st, &w, err) < 0 || tly_store_commit(st, err) < 0)
        goto fail;
    if (change == TLY_STANDING_STOPPED) {
        LOG_INFO("quality", "project %lld: worker %lld stopped (%s); %lld items back to labeling", (long long)s->p.id,
                 (long long)worker->id, w.reason, (long long)items_back);
        tly_counter_add(tly_metrics_counter("tally_workers_stopped_total", "Workers stopped for low trust", ""), 1);
    }
    if (in_quiz) {
        const char *status = change == TLY_STANDING_QUIZ_FAILED   ? "failed"
                             : strcmp(w.mode, "work") == 0        ? "passed"
                             : change == TLY_STANDING_STOPPED     ? "failed"
                                                                  : "in_progress";
        json_t *quiz = json_pack("{s:I,s:I,s:i,s:f,s:s}", "answered", (json_int_t)w.quiz_seen, "correct",
                                 (json_int_t)w.quiz_correct, "size", rules.quiz_size, "pass", rules.quiz_pass,
                                 "status", status);
        json_object_set_new(*out, "feedback",
                            json_pack("{s:b,s:O,s:f,s:o}", "correct", correct, "expected", s->it.gold, "score", score,
                                      "quiz", quiz));
    }
    tly_project_worker_clear(&w);
    return 0;
fail:
    tly_store_rollback(st);
    tly_project_worker_clear(&w);
    json_decref(*out);
    *out = NULL;
    return -1;
}

int tly_crowd_submit(tly_store *st, int64_t assignment_id, const tly_user *worker, json_t *body, json_t **out,
                     tly_error *err)
{
    tly_submission s;
    int rc = tly_work_submission_open(st, assignment_id, worker, body, &s, out, err);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    rc = s.a.gold && s.it.gold ? submit_gold(st, &s, worker, out, err)
                               : tly_work_submission_record(st, &s, -1, 0, out, err);
    tly_submission_clear(&s);
    return rc;
}

json_t *tly_crowd_warnings(tly_store *st, const tly_project *p)
{
    tly_error err;
    json_t *supply = tly_crowd_gold_supply(st, p, &err);
    if (!supply || json_is_true(json_object_get(supply, "enough"))) {
        json_decref(supply);
        return NULL;
    }
    char msg[256];
    snprintf(msg, sizeof msg,
             "the project has %lld test questions; its quiz and gold rate need %lld for %lld work items. "
             "Workers are refused the quiz or gold until there are enough (PUT /v1/items/{id}/gold)",
             (long long)json_integer_value(json_object_get(supply, "have")),
             (long long)json_integer_value(json_object_get(supply, "needed")),
             (long long)json_integer_value(json_object_get(supply, "work_items")));
    json_t *w = json_pack("[{s:s,s:s,s:O}]", "code", "not_enough_test_questions", "message", msg, "test_questions",
                          supply);
    json_decref(supply);
    return w;
}
