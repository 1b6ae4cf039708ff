/* prelabel.c -- see prelabel.h: models, the prelabel job, and the API's shapes. */
#include "annotate/prelabel.h"
#include "annotate/template.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A job runs at most this long, then queues its continuation: a big backlog never
 * holds a job thread for minutes. */
#define JOB_BUDGET_MS 20000

static const tly_prelabel_backend *backend_of(const tly_model *m)
{
    if (strcmp(m->kind, "remote") == 0)
        return &tly_prelabel_remote;
    return NULL;
}

int tly_prelabel_model_create(tly_store *st, int64_t project_id, json_t *body, const char *media_base,
                              tly_model *out, tly_error *err)
{
    static const char *const keys[] = {"name", "kind", "url", "model", NULL};
    const char *name = NULL, *kind = NULL, *url = NULL, *builtin = NULL;
    memset(out, 0, sizeof *out);
    if (tly_json_only_keys(body, "model", keys, err) < 0 || tly_json_get_string(body, "name", 1, &name, err) < 0 ||
        tly_json_get_string(body, "kind", 1, &kind, err) < 0 || tly_json_get_string(body, "url", 0, &url, err) < 0 ||
        tly_json_get_string(body, "model", 0, &builtin, err) < 0)
        return -1;
    if (!*name || strlen(name) >= sizeof out->name)
        return tly_fail(err, TLY_E_INVALID, "invalid_name", "name must be 1 to %zu bytes", sizeof out->name - 1);
    if (strcmp(kind, "builtin") == 0) {
        if (!builtin)
            return tly_fail(err, TLY_E_INVALID, "missing_field", "a built-in model needs 'model'");
        if (strcmp(builtin, "vad") != 0 && strcmp(builtin, "asr") != 0 && strcmp(builtin, "image-classifier") != 0)
            return tly_fail(err, TLY_E_INVALID, "invalid_model", "unknown built-in model '%s' (vad, asr, image-classifier)",
                            builtin);
        /* Said plainly rather than accepted and never run. */
        return tly_fail(err, TLY_E_UNPROCESSABLE, "model_unavailable",
                        "built-in model '%s' is not available in this version of Tally yet; attach a remote model "
                        "server (kind \"remote\")",
                        builtin);
    }
    if (strcmp(kind, "remote") != 0)
        return tly_fail(err, TLY_E_INVALID, "invalid_kind", "kind must be remote or builtin");
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) || strlen(url) > 2000)
        return tly_fail(err, TLY_E_INVALID, "invalid_url", "a remote model needs an http(s) 'url'");
    tly_project p = {0};
    if (tly_store_project_get(st, project_id, &p, err) < 0)
        return -1;
    out->project_id = project_id;
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->kind, sizeof out->kind, "%s", kind);
    out->url = strdup(url);
    int rc = -1;
    /* Items that exist now are pre-labeled on an explicit run only. */
    int64_t last = 0;
    if (tly_store_item_max_id(st, project_id, &last, err) < 0)
        goto out;
    out->since_item = last;
    if (backend_of(out)->setup(out, &p, media_base, err) < 0) {
        /* The model's trouble is the request's problem, not this server's. */
        if (err && err->status == TLY_E_IO)
            err->status = TLY_E_UNPROCESSABLE;
        goto out;
    }
    if (tly_store_model_create(st, out, err) < 0)
        goto out;
    rc = 0;
out:
    tly_project_clear(&p);
    if (rc < 0)
        tly_model_clear(out);
    return rc;
}

int tly_prelabel_model_run(tly_store *st, int64_t project_id, int64_t model_id, tly_error *err)
{
    tly_model m = {0};
    if (tly_store_model_get(st, model_id, &m, err) < 0)
        return -1;
    int64_t pid = m.project_id;
    tly_model_clear(&m);
    if (pid != project_id)
        return tly_fail(err, TLY_E_NOT_FOUND, "not_found", "model %lld not found", (long long)model_id);
    if (tly_store_begin(st, err) < 0)
        return -1;
    if (tly_store_model_rerun(st, model_id, err) < 0 || tly_store_queue_prelabel(st, project_id, 0, err) < 0 ||
        tly_store_commit(st, err) < 0) {
        tly_store_rollback(st);
        return -1;
    }
    return 0;
}

/* Records one batch's outcome: predictions (validated like any answer) or errors. */
static int record(tly_store *st, const tly_model *m, const tly_project *p, const tly_item *items, size_t n,
                  tly_prelabel_out *out, const char *version, tly_error *err)
{
    if (tly_store_begin(st, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        tly_error verr;
        const char *error = out[i].error[0] ? out[i].error : NULL;
        json_t *answer = out[i].answer;
        char why[240];
        if (answer && tly_template_validate_answer(p->template_json, answer, items[i].media, &verr) < 0) {
            snprintf(why, sizeof why, "the model's answer does not fit the template: %s", verr.message);
            error = why;
            answer = NULL;
        }
        if (tly_store_prediction_put(st, items[i].id, p->id, m->id, version, error ? NULL : answer, out[i].score, error,
                                     err) < 0) {
            tly_store_rollback(st);
            return -1;
        }
    }
    return tly_store_commit(st, err);
}

int tly_prelabel_run_job(tly_store *st, int64_t model_id, const char *media_base, tly_error *err)
{
    tly_model m = {0};
    tly_project p = {0};
    int rc = -1;
    if (tly_store_model_get(st, model_id, &m, err) < 0)
        return -1;
    const tly_prelabel_backend *be = backend_of(&m);
    int64_t start = tly_now_ms();
    if (!be || strcmp(m.state, "active") != 0) {
        rc = 0;
        goto out;
    }
    if (tly_store_project_get(st, m.project_id, &p, err) < 0)
        goto out;
    for (;;) {
        int64_t now = tly_now_ms();
        if (m.open_until > now) {   /* circuit open: come back when it closes */
            rc = tly_store_queue_prelabel(st, m.project_id, m.open_until, err);
            goto out;
        }
        if (now - start > JOB_BUDGET_MS) {
            rc = tly_store_queue_prelabel(st, m.project_id, 0, err);
            goto out;
        }
        int64_t *ids = NULL;
        size_t n = 0;
        if (tly_store_model_pending(st, &m, TLY_PRELABEL_BATCH, &ids, &n, err) < 0)
            goto out;
        if (n == 0) {
            free(ids);
            rc = 0;
            goto out;
        }
        tly_item items[TLY_PRELABEL_BATCH];
        tly_prelabel_out outs[TLY_PRELABEL_BATCH];
        memset(items, 0, sizeof items);
        memset(outs, 0, sizeof outs);
        size_t got = 0;
        for (size_t i = 0; i < n; i++)
            if (tly_store_item_get(st, ids[i], &items[got], err) == 0)
                got++;
        free(ids);
        char version[128] = "";
        tly_error call_err;
        int ok = be->predict(&m, &p, items, got, media_base, outs, version, sizeof version, &call_err) == 0;
        if (!ok)
            for (size_t i = 0; i < got; i++)
                snprintf(outs[i].error, sizeof outs[i].error, "model '%s' failed: %s", m.name, call_err.message);
        int64_t open_until = tly_now_ms() + TLY_PRELABEL_OPEN_MS;
        int r = record(st, &m, &p, items, got, outs, version[0] ? version : m.version, err);
        if (r == 0)
            r = tly_store_model_called(st, m.id, ok, version, ok ? NULL : call_err.message, TLY_PRELABEL_TRIP,
                                       open_until, err);
        for (size_t i = 0; i < got; i++) {
            tly_item_clear(&items[i]);
            json_decref(outs[i].answer);
        }
        if (r < 0)
            goto out;
        tly_counter_add(tly_metrics_counter("tally_prelabel_items_total", "Items sent to pre-labeling models", ""),
                        got);
        if (!ok)
            LOG_WARN("prelabel", "model %lld (%s): %s", (long long)m.id, m.name, call_err.message);
        tly_model_clear(&m);
        if (tly_store_model_get(st, model_id, &m, err) < 0)   /* the breaker's new state */
            goto out;
    }
out:
    tly_model_clear(&m);
    tly_project_clear(&p);
    return rc;
}

json_t *tly_model_json(const tly_model *m)
{
    char created[32], open_until[32];
    tly_format_rfc3339(m->created_at, created, sizeof created);
    tly_format_rfc3339(m->open_until, open_until, sizeof open_until);
    int open = m->open_until > tly_now_ms();
    return json_pack("{s:I,s:I,s:s,s:s,s:s?,s:s?,s:s,s:s,s:I,s:I,s:i,s:s?,s:s?,s:s}", "id", (json_int_t)m->id,
                     "project_id", (json_int_t)m->project_id, "name", m->name, "kind", m->kind, "url", m->url,
                     "model", m->builtin[0] ? m->builtin : NULL, "state", m->state, "model_version", m->version,
                     "predicted", (json_int_t)m->predicted, "errors", (json_int_t)m->errors, "failures", m->failures,
                     "last_error", m->last_error, "circuit_open_until", open ? open_until : NULL, "created_at",
                     created);
}

json_t *tly_prediction_json(const tly_prediction *p)
{
    char created[32];
    tly_format_rfc3339(p->created_at, created, sizeof created);
    json_t *j = json_pack("{s:s,s:I,s:s,s:O,s:s}", "model", p->model_name, "model_id", (json_int_t)p->model_id,
                          "model_version", p->model_version, "answer", p->answer ? p->answer : json_null(),
                          "created_at", created);
    json_object_set_new(j, "score", p->score >= 0 ? json_real(p->score) : json_null());
    if (p->error)
        json_object_set_new(j, "error", json_string(p->error));
    return j;
}

json_t *tly_prelabel_for_task(tly_store *st, int64_t item_id)
{
    tly_prediction *list = NULL;
    size_t n = 0;
    tly_error ignore;
    if (tly_store_prediction_list(st, item_id, &list, &n, &ignore) < 0 || n == 0 || !list[0].answer) {
        tly_prediction_list_free(list, n);
        return NULL;
    }
    json_t *j = json_pack("{s:s,s:s,s:O}", "model", list[0].model_name, "model_version", list[0].model_version,
                          "answer", list[0].answer);
    json_object_set_new(j, "score", list[0].score >= 0 ? json_real(list[0].score) : json_null());
    tly_prediction_list_free(list, n);
    return j;
}
