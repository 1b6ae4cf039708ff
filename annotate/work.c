/* work.c -- see work.h. */
#include "annotate/work.h"
#include "annotate/prelabel.h"
#include "annotate/template.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/metrics.h"
#include "core/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t wf_int(json_t *workflow, const char *key, int64_t dflt)
{
    json_t *v = json_object_get(workflow, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static void rules_of(const tly_project *p, tly_dispatch_rules *r)
{
    r->overlap = (int)wf_int(p->workflow, "overlap", 3);
    r->lease_ms = wf_int(p->workflow, "lease_seconds", 600) * 1000;
    r->per_worker_cap = wf_int(p->workflow, "per_worker_cap", 0);
}

static void rfc3339(int64_t ms, char *out, size_t outsz)
{
    tly_format_rfc3339(ms, out, outsz);
}

json_t *tly_work_item_json(const tly_item *it)
{
    char url[96];
    json_t *j = json_pack("{s:I,s:O}", "id", (json_int_t)it->id, "media", it->media ? it->media : json_null());
    snprintf(url, sizeof url, "/v1/items/%lld/media", (long long)it->id);
    json_object_set_new(j, "media_url", json_string(url));
    if (it->thumb_sha256[0]) {
        snprintf(url, sizeof url, "/v1/items/%lld/thumbnail", (long long)it->id);
        json_object_set_new(j, "thumbnail_url", json_string(url));
    }
    if (it->waveform_sha256[0]) {
        snprintf(url, sizeof url, "/v1/items/%lld/waveform", (long long)it->id);
        json_object_set_new(j, "waveform_url", json_string(url));
    }
    return j;
}

int tly_work_lease(tly_store *st, const tly_project *p, const tly_user *worker, const tly_work_plan *plan,
                   json_t **out, tly_error *err)
{
    tly_item it = {0};
    tly_assignment a;
    *out = NULL;
    tly_dispatch_rules rules;
    rules_of(p, &rules);
    rules.gold = plan && plan->gold;
    rules.mode = plan && plan->mode ? plan->mode : "work";
    int64_t now = tly_now_ms();
    /* A lease is not an acknowledged write worth a disk flush: losing one in a power
     * cut only means the worker's submit is refused and the slot is free again. */
    tly_error ignore;
    tly_store_set_durability(st, TLY_DURABLE_ORDERED, &ignore);
    int rc = tly_store_dispatch(st, p->id, worker->id, &rules, now, &a, err);
    tly_store_set_durability(st, TLY_DURABLE_SYNC, &ignore);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (tly_store_item_get(st, a.item_id, &it, err) < 0)
        return -1;
    char expires[32];
    rfc3339(a.expires_at, expires, sizeof expires);
    /* The same shape for work and test questions: "mode" says quiz or work, never gold. */
    *out = json_pack("{s:I,s:s,s:s,s:I,s:o,s:O,s:s}", "assignment_id", (json_int_t)a.id, "mode",
                     strcmp(a.mode, "quiz") == 0 ? "quiz" : "work", "lease_expires_at", expires, "lease_seconds",
                     (json_int_t)(rules.lease_ms / 1000), "item", tly_work_item_json(&it), "template",
                     p->template_json, "guidelines", p->guidelines ? p->guidelines : "");
    /* Pre-labels as a starting point, when the project shows them (never on test
     * questions: a model's guess would give them away). */
    if (!a.gold && json_is_true(json_object_get(json_object_get(p->workflow, "prelabel"), "show"))) {
        json_t *pre = tly_prelabel_for_task(st, it.id);
        if (pre)
            json_object_set_new(*out, "prelabel", pre);
    }
    /* An item back from review carries the reviewer's comment to its new labelers. */
    char note[512];
    if (!a.gold && tly_store_item_rework_note(st, it.id, note, sizeof note, err) == 1)
        json_object_set_new(*out, "note", json_string(note));
    tly_counter_add(tly_metrics_counter("tally_dispatch_total", "Tasks handed out", ""), 1);
    tly_item_clear(&it);
    return 0;
}

char *tly_work_canonical_answer(json_t *answer)
{
    return json_dumps(answer, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
}

/* Loads the assignment if it is the worker's own; anyone else's is NOT_FOUND, so
 * ids reveal nothing. */
static int own_assignment(tly_store *st, int64_t id, const tly_user *worker, tly_assignment *a,
                          tly_error *err)
{
    if (tly_store_assignment_get(st, id, a, err) < 0)
        return -1;
    if (a->worker_id != worker->id)
        return tly_fail(err, TLY_E_NOT_FOUND, "not_found", "assignment %lld not found", (long long)id);
    return 0;
}

/* Submitting again: 200 if the stored answer is this one, else 409. */
static int resubmission(tly_store *st, const tly_assignment *a, const char *canonical, json_t **out,
                        tly_error *err)
{
    tly_judgment j = {0};
    if (tly_store_judgment_get(st, a->judgment_id, &j, err) < 0)
        return -1;
    char *stored = tly_work_canonical_answer(j.answer);
    int same = stored && strcmp(stored, canonical) == 0;
    free(stored);
    tly_judgment_clear(&j);
    if (!same)
        return tly_fail(err, TLY_E_CONFLICT, "already_submitted",
                        "assignment %lld was already submitted with a different answer", (long long)a->id);
    *out = json_pack("{s:b,s:I,s:I}", "ok", 1, "assignment_id", (json_int_t)a->id, "judgment_id",
                     (json_int_t)a->judgment_id);
    return 0;
}

void tly_submission_clear(tly_submission *s)
{
    if (!s)
        return;
    tly_project_clear(&s->p);
    tly_item_clear(&s->it);
    free(s->canonical);
    memset(s, 0, sizeof *s);
}

int tly_work_submission_open(tly_store *st, int64_t assignment_id, const tly_user *worker, json_t *body,
                             tly_submission *s, json_t **out, tly_error *err)
{
    static const char *const keys[] = {"answer", "duration_ms", NULL};
    memset(s, 0, sizeof *s);
    *out = NULL;
    if (tly_json_only_keys(body, "submission", keys, err) < 0 ||
        tly_json_get_int(body, "duration_ms", 0, 0, 86400000, &s->duration_ms, err) < 0)
        return -1;
    /* Any JSON value: a non-object answer is judged by the template engine (422
     * invalid_answer), like every other answer that does not fit. */
    if (!(s->answer = json_object_get(body, "answer")))
        return tly_fail(err, TLY_E_INVALID, "missing_field", "field 'answer' is required");
    if (own_assignment(st, assignment_id, worker, &s->a, err) < 0)
        return -1;
    if (tly_store_project_get(st, s->a.project_id, &s->p, err) < 0 || tly_store_item_get(st, s->a.item_id, &s->it, err) < 0)
        goto fail;
    if (!(s->canonical = tly_work_canonical_answer(s->answer))) {
        tly_fail(err, TLY_E_INTERNAL, "internal", "out of memory");
        goto fail;
    }
    if (s->a.judgment_id) {   /* a retry, perhaps of a request whose answer got lost */
        if (resubmission(st, &s->a, s->canonical, out, err) < 0)
            goto fail;
        tly_submission_clear(s);
        return 1;
    }
    if (tly_template_validate_answer(s->p.template_json, s->answer, s->it.media, err) < 0)
        goto fail;
    return 0;
fail:
    tly_submission_clear(s);
    return -1;
}

int tly_work_submission_record(tly_store *st, tly_submission *s, int correct, int here, json_t **out,
                               tly_error *err)
{
    tly_dispatch_rules rules;
    rules_of(&s->p, &rules);
    int64_t judgment_id = 0;
    tly_error add_err;
    int rc = here ? tly_store_judgment_add_here(st, s->a.id, s->canonical, s->duration_ms, rules.overlap, correct,
                                                tly_now_ms(), &judgment_id, &add_err)
                  : tly_store_judgment_add(st, s->a.id, s->canonical, s->duration_ms, rules.overlap, correct,
                                           tly_now_ms(), &judgment_id, &add_err);
    if (rc < 0) {
        /* Lost a race with our own retry: judge it as a resubmission. */
        if (!here && add_err.status == TLY_E_CONFLICT && strcmp(add_err.code, "already_submitted") == 0 &&
            tly_store_assignment_get(st, s->a.id, &s->a, err) == 0 && s->a.judgment_id)
            return resubmission(st, &s->a, s->canonical, out, err);
        if (err)
            *err = add_err;
        return -1;
    }
    tly_counter_add(tly_metrics_counter("tally_judgments_total", "Judgments recorded", ""), 1);
    *out = json_pack("{s:b,s:I,s:I}", "ok", 1, "assignment_id", (json_int_t)s->a.id, "judgment_id",
                     (json_int_t)judgment_id);
    return 0;
}

int tly_work_skip(tly_store *st, int64_t assignment_id, const tly_user *worker, tly_error *err)
{
    tly_assignment a;
    if (own_assignment(st, assignment_id, worker, &a, err) < 0)
        return -1;
    return tly_store_assignment_skip(st, assignment_id, tly_now_ms(), err);
}

int tly_work_assignment(tly_store *st, int64_t assignment_id, const tly_user *caller, json_t **out,
                        tly_error *err)
{
    tly_assignment a;
    if (tly_store_assignment_get(st, assignment_id, &a, err) < 0)
        return -1;
    int staff = caller->role == TLY_ROLE_ADMIN || caller->role == TLY_ROLE_MANAGER;
    if (a.worker_id != caller->id && !staff)
        return tly_fail(err, TLY_E_NOT_FOUND, "not_found", "assignment %lld not found", (long long)assignment_id);
    const char *state = strcmp(a.state, "leased") == 0 && a.expires_at <= tly_now_ms() ? "expired" : a.state;
    char expires[32];
    rfc3339(a.expires_at, expires, sizeof expires);
    *out = json_pack("{s:I,s:I,s:I,s:s,s:s,s:s}", "id", (json_int_t)a.id, "project_id", (json_int_t)a.project_id,
                     "item_id", (json_int_t)a.item_id, "state", state, "mode",
                     strcmp(a.mode, "quiz") == 0 ? "quiz" : "work", "lease_expires_at", expires);
    if (a.judgment_id)
        json_object_set_new(*out, "judgment_id", json_integer(a.judgment_id));
    return 0;
}

void tly_work_pseudonym(const tly_project *p, int64_t worker_id, char *out, size_t outsz)
{
    char msg[48], mac[65];
    int n = snprintf(msg, sizeof msg, "%lld:%lld", (long long)p->id, (long long)worker_id);
    tly_hmac_sha256_hex(p->pseudonym_key, strlen(p->pseudonym_key), msg, (size_t)n, mac);
    snprintf(out, outsz, "w_%.12s", mac);
}

json_t *tly_work_judgment_json(const tly_project *p, const tly_judgment *j)
{
    char worker[24], created[32];
    tly_work_pseudonym(p, j->worker_id, worker, sizeof worker);
    rfc3339(j->created_at, created, sizeof created);
    return json_pack("{s:I,s:I,s:I,s:s,s:O,s:I,s:s}", "id", (json_int_t)j->id, "item_id", (json_int_t)j->item_id,
                     "assignment_id", (json_int_t)j->assignment_id, "worker", worker, "answer",
                     j->answer ? j->answer : json_null(), "duration_ms", (json_int_t)j->duration_ms, "created_at",
                     created);
}
