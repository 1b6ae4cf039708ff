/* store_models.c -- models attached to projects and their predictions.
 *
 * A prediction is never a judgment: it lives in its own table, one row per (item,
 * model), replaced when the model runs again. A failed call on an item leaves a row
 * with the error instead of an answer, so the failure is visible on the item. The
 * circuit-breaker state (consecutive failures, open until) is on the model row, so
 * every job thread -- and later every node -- sees the same breaker.
 */
#include "storage/sql.h"

#include "core/timeutil.h"

#include <stdlib.h>
#include <string.h>

#define MODEL_COLS                                                                                 \
    "id, project_id, name, kind, url, COALESCE(builtin, ''), state, version, since_item, failures," \
    " open_until, last_error, predicted, errors, created_at"

static int read_model(const sq_row *r, void *ctx, tly_error *err)
{
    tly_model *m = ctx;
    m->id = sq_col_i64(r, 0);
    m->project_id = sq_col_i64(r, 1);
    sq_col_copy(r, 2, m->name, sizeof m->name);
    sq_col_copy(r, 3, m->kind, sizeof m->kind);
    sq_col_copy(r, 5, m->builtin, sizeof m->builtin);
    sq_col_copy(r, 6, m->state, sizeof m->state);
    sq_col_copy(r, 7, m->version, sizeof m->version);
    m->since_item = sq_col_i64(r, 8);
    m->failures = (int)sq_col_i64(r, 9);
    m->open_until = sq_col_i64(r, 10);
    m->predicted = sq_col_i64(r, 12);
    m->errors = sq_col_i64(r, 13);
    m->created_at = sq_col_i64(r, 14);
    if (sq_col_dup(r, 4, &m->url, err) < 0 || sq_col_dup(r, 11, &m->last_error, err) < 0)
        return -1;
    return 0;
}

void tly_model_clear(tly_model *m)
{
    if (!m)
        return;
    free(m->url);
    free(m->last_error);
    memset(m, 0, sizeof *m);
}

static void clear_model(void *m)
{
    tly_model_clear(m);
}

void tly_model_list_free(tly_model *list, size_t n)
{
    sq_list_free(list, n, sizeof *list, clear_model);
}

int tly_store_model_create(tly_store *st, tly_model *in, tly_error *err)
{
    tly_error e;
    int64_t now = tly_now_ms();
    if (sq_insert(st,
                  "INSERT INTO models (project_id, name, kind, url, builtin, state, version, since_item, created_at)"
                  " VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?) RETURNING id",
                  &in->id, &e, "ittttti" "i", in->project_id, in->name, in->kind, in->url,
                  in->builtin[0] ? in->builtin : NULL, in->version, in->since_item, now) < 0)
        return sq_fail_as(err, &e, TLY_E_CONFLICT, "name_taken", "the project already has a model named '%s'",
                          in->name);
    snprintf(in->state, sizeof in->state, "active");
    in->created_at = now;
    return 0;
}

int tly_store_model_get(tly_store *st, int64_t id, tly_model *out, tly_error *err)
{
    return sq_one(st, "SELECT " MODEL_COLS " FROM models WHERE id = ?", read_model, clear_model, out, sizeof *out,
                  "model", err, "i", id);
}

int tly_store_model_list(tly_store *st, int64_t project_id, tly_model **out, size_t *n_out, tly_error *err)
{
    return sq_list(st, "SELECT " MODEL_COLS " FROM models WHERE project_id = ? ORDER BY id", read_model, clear_model,
                   sizeof **out, (void **)out, n_out, err, "i", project_id);
}

int tly_store_model_called(tly_store *st, int64_t id, int ok, const char *version, const char *error, int trip,
                           int64_t open_until, tly_error *err)
{
    if (ok)
        return sq_exec(st,
                       "UPDATE models SET failures = 0, open_until = 0,"
                       " version = CASE WHEN ? <> '' THEN ? ELSE version END WHERE id = ?",
                       err, "tti", version ? version : "", version ? version : "", id);
    return sq_exec(st,
                   "UPDATE models SET failures = failures + 1, last_error = ?,"
                   " open_until = CASE WHEN failures + 1 >= ? THEN ? ELSE open_until END WHERE id = ?",
                   err, "tiii", error, (int64_t)trip, open_until, id);
}

int tly_store_model_set_since(tly_store *st, int64_t id, int64_t since_item, tly_error *err)
{
    return sq_exec(st, "UPDATE models SET since_item = ? WHERE id = ?", err, "ii", since_item, id);
}

int tly_store_model_rerun(tly_store *st, int64_t id, tly_error *err)
{
    /* A job already queued for later (the circuit was open) comes forward: the
     * breaker is reset here. */
    return sq_exec(st, "DELETE FROM predictions WHERE model_id = ? AND answer IS NULL", err, "i", id) < 0 ||
                   sq_exec(st, "UPDATE models SET since_item = 0, failures = 0, open_until = 0 WHERE id = ?", err,
                           "i", id) < 0 ||
                   sq_exec(st, "UPDATE jobs SET run_after = 0 WHERE kind = 'prelabel' AND state = 'queued' AND ref_id = ?",
                           err, "i", id) < 0
               ? -1
               : 0;
}

int tly_store_queue_prelabel(tly_store *st, int64_t project_id, int64_t run_after, tly_error *err)
{
    int64_t now = tly_now_ms();
    if (sq_exec(st,
                   "INSERT INTO jobs (kind, ref_id, state, run_after, created_at, updated_at)"
                   " SELECT 'prelabel', m.id, 'queued', ?, ?, ? FROM models m WHERE m.project_id = ?"
                   " AND m.state = 'active' AND NOT EXISTS"
                   " (SELECT 1 FROM jobs j WHERE j.kind = 'prelabel' AND j.ref_id = m.id AND j.state = 'queued')",
                   err, "iiii", run_after > now ? run_after : now, now, now, project_id) < 0)
        return -1;
    return 0;
}

int tly_store_model_pending(tly_store *st, const tly_model *m, int limit, int64_t **out, size_t *n_out,
                            tly_error *err)
{
    return sq_list(st,
                   "SELECT i.id FROM items i WHERE i.project_id = ? AND i.id > ? AND i.state <> 'gold'"
                   " AND NOT EXISTS (SELECT 1 FROM predictions p WHERE p.item_id = i.id AND p.model_id = ?)"
                   " ORDER BY i.id LIMIT ?",
                   sq_read_id, NULL, sizeof **out, (void **)out, n_out, err, "iiii", m->project_id, m->since_item,
                   m->id, (int64_t)(limit > 0 ? limit : 8));
}

/* ---- predictions ------------------------------------------------------------------------ */

int tly_store_prediction_put(tly_store *st, int64_t item_id, int64_t project_id, int64_t model_id,
                             const char *version, json_t *answer, double score, const char *error, tly_error *err)
{
    if (sq_exec(st,
                "INSERT INTO predictions (item_id, project_id, model_id, model_version, answer, score, error, created_at)"
                " VALUES (?, ?, ?, ?, ?, CASE WHEN ? < 0 THEN NULL ELSE ? END, ?, ?)"
                " ON CONFLICT (item_id, model_id) DO UPDATE SET"
                " model_version = excluded.model_version, answer = excluded.answer, score = excluded.score,"
                " error = excluded.error, created_at = excluded.created_at",
                err, "iiitjffti", item_id, project_id, model_id, version ? version : "", answer, score, score, error,
                tly_now_ms()) < 0)
        return -1;
    return sq_exec(st, answer ? "UPDATE models SET predicted = predicted + 1 WHERE id = ?"
                              : "UPDATE models SET errors = errors + 1 WHERE id = ?",
                   err, "i", model_id);
}

static int read_prediction(const sq_row *r, void *ctx, tly_error *err)
{
    tly_prediction *p = ctx;
    p->id = sq_col_i64(r, 0);
    p->item_id = sq_col_i64(r, 1);
    p->model_id = sq_col_i64(r, 2);
    sq_col_copy(r, 3, p->model_name, sizeof p->model_name);
    sq_col_copy(r, 4, p->model_version, sizeof p->model_version);
    p->score = sq_col_is_null(r, 6) ? -1 : sq_col_double(r, 6);
    p->created_at = sq_col_i64(r, 8);
    if (sq_col_json(r, 5, &p->answer, err) < 0 || sq_col_dup(r, 7, &p->error, err) < 0)
        return -1;
    return 0;
}

void tly_prediction_clear(tly_prediction *p)
{
    if (!p)
        return;
    json_decref(p->answer);
    free(p->error);
    memset(p, 0, sizeof *p);
}

static void clear_prediction(void *p)
{
    tly_prediction_clear(p);
}

void tly_prediction_list_free(tly_prediction *list, size_t n)
{
    sq_list_free(list, n, sizeof *list, clear_prediction);
}

int tly_store_prediction_list(tly_store *st, int64_t item_id, tly_prediction **out, size_t *n_out, tly_error *err)
{
    return sq_list(st,
                   "SELECT p.id, p.item_id, p.model_id, m.name, p.model_version, p.answer, p.score, p.error, p.created_at"
                   " FROM predictions p JOIN models m ON m.id = p.model_id WHERE p.item_id = ?"
                   " ORDER BY (p.answer IS NULL), COALESCE(p.score, -1) DESC, p.id",
                   read_prediction, clear_prediction, sizeof **out, (void **)out, n_out, err, "i", item_id);
}

struct pairs_ctx {
    int (*fn)(double score, json_t *predicted, json_t *result, void *ctx);
    void *ctx;
};

static int read_pair(const sq_row *r, void *arg, tly_error *err)
{
    struct pairs_ctx *pc = arg;
    json_t *pred = NULL, *res = NULL;
    int rc = -1;
    if (sq_col_json(r, 1, &pred, err) == 0 && sq_col_json(r, 2, &res, err) == 0)
        rc = pc->fn(sq_col_double(r, 0), pred, res, pc->ctx) < 0 ? tly_fail(err, TLY_E_INTERNAL, "aborted", "stopped")
                                                                  : 0;
    json_decref(pred);
    json_decref(res);
    return rc;
}

int64_t tly_store_prediction_pairs(tly_store *st, int64_t model_id, const char *version,
                                   int (*fn)(double score, json_t *predicted, json_t *result, void *ctx), void *ctx,
                                   tly_error *err)
{
    struct pairs_ctx pc = {fn, ctx};
    return sq_each(st,
                   "SELECT p.score, p.answer, r.answer FROM predictions p JOIN results r ON r.item_id = p.item_id"
                   " JOIN items i ON i.id = p.item_id WHERE p.model_id = ? AND (? = '' OR p.model_version = ?)"
                   " AND p.answer IS NOT NULL"
                   " AND p.score IS NOT NULL AND i.state IN ('done', 'released') AND r.method NOT IN ('model', 'model_assisted')"
                   /* Items routed to the confirm step were labeled depending on the model's
                    * answer (kept when one worker agreed): not an independent check of it. */
                   " AND NOT EXISTS (SELECT 1 FROM item_events e WHERE e.item_id = p.item_id AND e.kind = 'to_confirm')",
                   read_pair, &pc, err, "itt", model_id, version ? version : "", version ? version : "");
}
