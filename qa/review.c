/* review.c -- see review.h. */
#include "qa/review.h"
#include "annotate/project.h"
#include "annotate/template.h"
#include "annotate/work.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/timeutil.h"
#include "qa/acceptance.h"
#include "qa/crowd.h"
#include "qa/results.h"

#include <stdlib.h>
#include <string.h>

static int is_staff(const tly_user *u)
{
    return u->role == TLY_ROLE_ADMIN || u->role == TLY_ROLE_MANAGER;
}

/* Workers review only with enough proven trust in the project. */
static int check_reviewer(tly_store *st, const tly_project *p, const tly_user *u, tly_error *err)
{
    if (is_staff(u))
        return 0;
    double needed = tly_workflow_number(p->workflow, "review", "reviewer_trust");
    tly_project_worker w = {0};
    tly_error e;
    int ok = tly_store_project_worker_get(st, p->id, u->id, &w, &e) == 0 && strcmp(w.status, "active") == 0 &&
             strcmp(w.mode, "work") == 0 && w.gold_seen > 0 && w.trust + 1e-9 >= needed;
    double trust = w.trust;
    tly_project_worker_clear(&w);
    if (!ok)
        return tly_fail(err, TLY_E_FORBIDDEN, "not_a_reviewer",
                        "reviewing this project takes a trust of %.2f on its test questions (yours: %.2f)", needed,
                        trust);
    return 0;
}

static json_t *judgments_json(tly_store *st, const tly_project *p, int64_t item_id, tly_error *err)
{
    tly_judgment *js = NULL;
    size_t n = 0;
    if (tly_store_item_judgments(st, item_id, &js, &n, err) < 0)
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, tly_work_judgment_json(p, &js[i]));
    tly_judgment_list_free(js, n);
    return a;
}

int tly_review_next(tly_store *st, int64_t project_id, const tly_user *user, json_t **out, tly_error *err)
{
    tly_project p = {0};
    tly_review v = {0};
    tly_item it = {0};
    tly_result res = {0};
    *out = NULL;
    int rc = -1;
    if (tly_store_project_get(st, project_id, &p, err) < 0 || check_reviewer(st, &p, user, err) < 0)
        goto out;
    int64_t lease_ms = (int64_t)tly_workflow_number(p.workflow, "review", "lease_seconds") * 1000;
    int got = tly_store_review_next(st, project_id, user->id, !is_staff(user), lease_ms, tly_now_ms(), &v, err);
    if (got != 0) {
        rc = got < 0 ? -1 : 0;
        goto out;
    }
    json_t *history = NULL, *judgments = NULL;
    if (tly_store_item_get(st, v.item_id, &it, err) < 0 || tly_store_result_get(st, v.item_id, &res, err) < 0 ||
        !(judgments = judgments_json(st, &p, v.item_id, err)))
        goto out;
    if (tly_store_item_events(st, v.item_id, 0, 100, &history, err) < 0) {
        json_decref(judgments);
        goto out;
    }
    char expires[32];
    tly_format_rfc3339(v.expires_at, expires, sizeof expires);
    *out = json_pack("{s:I,s:o,s:O,s:o,s:o,s:o,s:s}", "review_id", (json_int_t)v.id, "item", tly_work_item_json(&it),
                     "template", p.template_json, "result", tly_result_json(&res), "judgments", judgments, "history",
                     json_incref(json_object_get(history, "items")), "lease_expires_at", expires);
    json_decref(history);
    rc = 0;
out:
    tly_project_clear(&p);
    tly_review_clear(&v);
    tly_item_clear(&it);
    tly_result_clear(&res);
    return rc;
}

static int verdict_in_tx(tly_store *st, const tly_project *p, const tly_review *v, const tly_user *user,
                         const char *verdict, json_t *answer, const char *comment, tly_error *err)
{
    int64_t now = tly_now_ms();
    if (tly_store_review_finish(st, v->id, verdict, answer, comment, now, err) < 0)
        return -1;
    json_t *ev = json_pack("{s:s,s:I}", "verdict", verdict, "review_id", (json_int_t)v->id);
    if (comment)
        json_object_set_new(ev, "comment", json_string(comment));
    int rc = tly_store_item_event(st, v->item_id, p->id, user->id, "review", ev, err);
    json_decref(ev);
    if (rc < 0)
        return -1;
    if (strcmp(verdict, "reject") == 0) {
        if (tly_store_item_rework(st, v->item_id, "rejected", err) < 0)
            return -1;
        json_t *rw = json_pack("{s:s}", "comment", comment ? comment : "");
        rc = tly_store_item_event(st, v->item_id, p->id, user->id, "rework", rw, err);
        json_decref(rw);
        return rc;
    }
    if (strcmp(verdict, "fix") == 0) {
        tly_result res = {0};
        if (tly_store_result_get(st, v->item_id, &res, err) < 0)
            return -1;
        json_decref(res.answer);
        res.answer = json_incref(answer);
        res.confidence = 1.0;
        snprintf(res.method, sizeof res.method, "review");
        json_decref(res.detail);
        res.detail = NULL;
        json_decref(res.flags);
        res.flags = NULL;
        rc = tly_store_result_put(st, &res, err);
        tly_result_clear(&res);
        if (rc < 0)
            return -1;
    }
    return tly_store_item_move(st, v->item_id, "review", "done", 0, err);
}

int tly_review_submit(tly_store *st, int64_t review_id, const tly_user *user, json_t *body, json_t **out,
                      tly_error *err)
{
    static const char *const keys[] = {"verdict", "answer", "comment", NULL};
    const char *verdict = NULL, *comment = NULL;
    json_t *answer = NULL;
    if (tly_json_only_keys(body, "review", keys, err) < 0 || tly_json_get_string(body, "verdict", 1, &verdict, err) < 0 ||
        tly_json_get_string(body, "comment", 0, &comment, err) < 0 ||
        tly_json_get_object(body, "answer", 0, &answer, err) < 0)
        return -1;
    if (strcmp(verdict, "accept") != 0 && strcmp(verdict, "reject") != 0 && strcmp(verdict, "fix") != 0)
        return tly_fail(err, TLY_E_INVALID, "invalid_verdict", "verdict must be accept, reject or fix");
    if (strcmp(verdict, "fix") == 0 && !answer)
        return tly_fail(err, TLY_E_INVALID, "missing_field", "a fix needs the corrected 'answer'");
    if (comment && strlen(comment) > 4000)
        return tly_fail(err, TLY_E_INVALID, "invalid_comment", "comment is longer than 4000 bytes");
    tly_review v = {0};
    tly_project p = {0};
    tly_item it = {0};
    int rc = -1;
    if (tly_store_review_get(st, review_id, &v, err) < 0)
        goto out;
    if (v.reviewer_id != user->id) {
        tly_fail(err, TLY_E_NOT_FOUND, "not_found", "review %lld not found", (long long)review_id);
        goto out;
    }
    if (tly_store_project_get(st, v.project_id, &p, err) < 0 || tly_store_item_get(st, v.item_id, &it, err) < 0)
        goto out;
    if (answer && tly_template_validate_answer(p.template_json, answer, it.media, err) < 0)
        goto out;
    if (tly_store_begin(st, err) < 0)
        goto out;
    if (verdict_in_tx(st, &p, &v, user, verdict, strcmp(verdict, "fix") == 0 ? answer : NULL, comment, err) < 0 ||
        tly_store_commit(st, err) < 0) {
        tly_store_rollback(st);
        goto out;
    }
    const char *state = strcmp(verdict, "reject") == 0 ? "labeling" : "done";
    *out = json_pack("{s:b,s:I,s:s,s:I,s:s}", "ok", 1, "review_id", (json_int_t)review_id, "verdict", verdict,
                     "item_id", (json_int_t)v.item_id, "item_state", state);
    rc = 0;
out:
    tly_review_clear(&v);
    tly_project_clear(&p);
    tly_item_clear(&it);
    return rc;
}

/* ---- acceptance lots ----------------------------------------------------------------------- */

static tly_inspection_level level_of(const char *s)
{
    static const struct {
        const char *name;
        tly_inspection_level level;
    } levels[] = {{"I", TLY_INSPECTION_I},     {"II", TLY_INSPECTION_II},   {"III", TLY_INSPECTION_III},
                  {"S-1", TLY_INSPECTION_S1},  {"S-2", TLY_INSPECTION_S2},  {"S-3", TLY_INSPECTION_S3},
                  {"S-4", TLY_INSPECTION_S4}};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (strcmp(levels[i].name, s) == 0)
            return levels[i].level;
    return TLY_INSPECTION_II;
}

static json_t *lot_json(const tly_lot *l)
{
    char created[32], decided[32];
    tly_format_rfc3339(l->created_at, created, sizeof created);
    tly_format_rfc3339(l->decided_at, decided, sizeof decided);
    return json_pack("{s:I,s:I,s:s,s:I,s:I,s:i,s:i,s:f,s:s,s:I,s:I,s:s,s:s?}", "id", (json_int_t)l->id, "project_id",
                     (json_int_t)l->project_id, "state", l->state, "lot_size", (json_int_t)l->lot_size, "sample_size",
                     (json_int_t)l->sample_size, "accept_number", l->accept_number, "reject_number", l->reject_number,
                     "aql", l->aql, "code_letter", l->code_letter, "judged", (json_int_t)l->judged, "defects",
                     (json_int_t)l->defects, "created_at", created, "decided_at", l->decided_at ? decided : NULL);
}

int tly_lot_show(tly_store *st, int64_t lot_id, json_t **out, tly_error *err)
{
    tly_lot l;
    tly_lot_item *items = NULL;
    size_t n = 0;
    if (tly_store_lot_get(st, lot_id, &l, err) < 0 || tly_store_lot_items(st, lot_id, 1, &items, &n, err) < 0)
        return -1;
    json_t *sample = json_array();
    for (size_t i = 0; i < n; i++) {
        tly_result res = {0};
        tly_error ignore;
        json_t *row = json_pack("{s:I,s:s?,s:s?}", "item_id", (json_int_t)items[i].item_id, "verdict",
                                items[i].verdict[0] ? items[i].verdict : NULL, "comment", items[i].comment);
        if (tly_store_result_get(st, items[i].item_id, &res, &ignore) == 0) {
            json_object_set(row, "answer", res.answer);
            json_object_set_new(row, "confidence", json_real(res.confidence));
            tly_result_clear(&res);
        }
        char url[64];
        snprintf(url, sizeof url, "/v1/items/%lld/media", (long long)items[i].item_id);
        json_object_set_new(row, "media_url", json_string(url));
        json_array_append_new(sample, row);
    }
    tly_lot_item_list_free(items, n);
    *out = lot_json(&l);
    json_object_set_new(*out, "sample", sample);
    return 0;
}

int tly_lot_draw(tly_store *st, int64_t project_id, const tly_user *user, json_t *body, json_t **out,
                 tly_error *err)
{
    static const char *const keys[] = {"size", "seed", NULL};
    int64_t size = 0, seed = 0;
    if (body && (tly_json_only_keys(body, "acceptance", keys, err) < 0 ||
                 tly_json_get_int(body, "size", 0, 0, INT64_MAX, &size, err) < 0 ||
                 tly_json_get_int(body, "seed", 0, 0, INT64_MAX, &seed, err) < 0))
        return -1;
    if (!body || !json_object_get(body, "seed")) {
        uint64_t r = 0;
        tly_random_bytes(&r, sizeof r);
        seed = (int64_t)(r >> 1);
    }
    tly_project p = {0};
    int64_t *ids = NULL;
    size_t n = 0;
    long *picks = NULL;
    unsigned char *sampled = NULL;
    int rc = -1;
    if (tly_store_project_get(st, project_id, &p, err) < 0 || tly_store_lot_candidates(st, project_id, size, &ids, &n, err) < 0)
        goto out;
    if (n == 0) {
        tly_fail(err, TLY_E_CONFLICT, "nothing_to_accept", "no finished item of project %lld is waiting for acceptance",
                 (long long)project_id);
        goto out;
    }
    tly_acceptance_plan plan;
    double aql = tly_workflow_number(p.workflow, "acceptance", "aql");
    const char *level = tly_workflow_string(p.workflow, "acceptance", "level");
    if (tly_acceptance_plan_for((long)n, aql, level_of(level), &plan, err) < 0)
        goto out;
    picks = malloc((size_t)plan.sample_size * sizeof *picks);
    sampled = calloc(n, 1);
    if (!picks || !sampled) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    tly_acceptance_sample((long)n, plan.sample_size, (uint64_t)seed, picks);
    for (long i = 0; i < plan.sample_size; i++)
        sampled[picks[i]] = 1;
    tly_lot lot = {.project_id = project_id, .lot_size = (int64_t)n, .sample_size = plan.sample_size,
                   .accept_number = plan.accept, .reject_number = plan.reject, .aql = plan.aql, .seed = seed,
                   .created_by = user->id};
    lot.code_letter[0] = plan.code_letter;
    if (tly_store_lot_create(st, &lot, ids, sampled, n, err) < 0)
        goto out;
    rc = tly_lot_show(st, lot.id, out, err);
    if (rc == 0)
        json_object_set_new(*out, "plan", json_pack("{s:s,s:s#,s:s#}", "inspection_level", level, "code_letter",
                                                    &plan.code_letter, 1, "plan_letter", &plan.plan_letter, 1));
out:
    tly_project_clear(&p);
    free(ids);
    free(picks);
    free(sampled);
    return rc;
}

/* Sampled defects of an accepted lot are not released: they go back to review. */
static int return_defects(tly_store *st, const tly_lot *l, tly_error *err)
{
    tly_lot_item *items = NULL;
    size_t n = 0;
    if (tly_store_lot_items(st, l->id, 1, &items, &n, err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (strcmp(items[i].verdict, "defect") != 0)
            continue;
        tly_error e;
        if (tly_store_item_move(st, items[i].item_id, "done", "review", 0, &e) < 0) {
            if (e.status != TLY_E_CONFLICT) {
                *err = e;
                rc = -1;
            }
            continue;
        }
        json_t *ev = json_pack("{s:s,s:I,s:s?}", "reason", "acceptance_defect", "lot_id", (json_int_t)l->id,
                               "comment", items[i].comment);
        rc = tly_store_item_event(st, items[i].item_id, l->project_id, 0, "to_review", ev, err);
        json_decref(ev);
    }
    tly_lot_item_list_free(items, n);
    return rc;
}

int tly_lot_judge(tly_store *st, int64_t lot_id, const tly_user *user, json_t *body, json_t **out,
                  tly_error *err)
{
    static const char *const keys[] = {"verdicts", NULL};
    static const char *const vkeys[] = {"item_id", "verdict", "comment", NULL};
    json_t *verdicts = NULL;
    if (tly_json_only_keys(body, "verdicts", keys, err) < 0 || tly_json_get_array(body, "verdicts", 1, &verdicts, err) < 0)
        return -1;
    size_t i;
    json_t *v;
    json_array_foreach(verdicts, i, v) {   /* all checked before any is recorded */
        int64_t item_id;
        const char *verdict, *comment;
        if (!json_is_object(v))
            return tly_fail(err, TLY_E_INVALID, "invalid_verdict", "verdicts[%zu] must be an object", i);
        if (tly_json_only_keys(v, "verdict", vkeys, err) < 0 ||
            tly_json_get_int(v, "item_id", 1, 1, INT64_MAX, &item_id, err) < 0 ||
            tly_json_get_string(v, "verdict", 1, &verdict, err) < 0 ||
            tly_json_get_string(v, "comment", 0, &comment, err) < 0)
            return -1;
        if (strcmp(verdict, "ok") != 0 && strcmp(verdict, "defect") != 0)
            return tly_fail(err, TLY_E_INVALID, "invalid_verdict", "verdicts[%zu].verdict must be ok or defect", i);
    }
    if (tly_store_begin(st, err) < 0)
        return -1;
    int64_t now = tly_now_ms();
    json_array_foreach(verdicts, i, v) {
        const char *comment = json_string_value(json_object_get(v, "comment"));
        if (tly_store_lot_verdict(st, lot_id, json_integer_value(json_object_get(v, "item_id")),
                                  json_string_value(json_object_get(v, "verdict")), comment, user->id, now, err) < 0)
            goto fail;
    }
    tly_lot l;
    if (tly_store_lot_get(st, lot_id, &l, err) < 0)
        goto fail;
    if (l.defects >= l.reject_number) {
        if (tly_store_lot_decide(st, lot_id, 0, now, err) < 0)
            goto fail;
    } else if (l.judged >= l.sample_size) {
        if (return_defects(st, &l, err) < 0 || tly_store_lot_decide(st, lot_id, 1, now, err) < 0)
            goto fail;
    }
    if (tly_store_commit(st, err) < 0)
        goto fail;
    return tly_lot_show(st, lot_id, out, err);
fail:
    tly_store_rollback(st);
    return -1;
}

int tly_lot_list(tly_store *st, int64_t project_id, int64_t after_id, int limit, json_t **out, tly_error *err)
{
    tly_lot *list = NULL;
    size_t n = 0;
    if (tly_store_lot_list(st, project_id, after_id, limit, &list, &n, err) < 0)
        return -1;
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, lot_json(&list[i]));
    *out = items;
    tly_lot_list_free(list, n);
    return 0;
}
