/* store_quality.c -- the records of the quality rounds: workers' standing per
 * project, the judgments aggregation reads, item state moves, results, item
 * history, project figures and imported judgments.
 *
 * Item states after ingest (the 'gold' ones are test questions, outside the flow):
 *
 *   new -> labeling -> labeled -> review -> done -> released
 *             ^           |          |       |        (in an accepted lot)
 *             |           |          |       `-> review (lot rejected)
 *             `-----------+----------'  (more judgments wanted, rework, or a
 *                                        stopped worker's judgments excluded)
 *
 * 'labeled' means "has its judgments, waits for aggregation"; aggregation (qa/)
 * moves it on. An item has a results row exactly while it is in review, done or
 * released: every move back to labeling drops it, so a stale result can never be
 * exported.
 *
 * Exclusion never deletes: a stopped worker's or rejected judgment stays with the
 * reason in `excluded`, and the item's `judged` counts only the rest. That keeps
 * what happened visible (reports, history) and makes the decrement exact.
 */
#include "storage/sql.h"

#include "core/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void clear_nothing(void *rec)
{
    (void)rec;
}

/* ---- project workers ----------------------------------------------------------------- */

#define PW_COLS                                                                              \
    "project_id, worker_id, mode, status, quiz_seen, quiz_correct, gold_seen, gold_correct," \
    " trust, COALESCE(reason, ''), flags, created_at, updated_at"

static int read_pw(const sq_row *r, void *ctx, tly_error *err)
{
    tly_project_worker *w = ctx;
    w->project_id = sq_col_i64(r, 0);
    w->worker_id = sq_col_i64(r, 1);
    sq_col_copy(r, 2, w->mode, sizeof w->mode);
    sq_col_copy(r, 3, w->status, sizeof w->status);
    w->quiz_seen = sq_col_i64(r, 4);
    w->quiz_correct = sq_col_i64(r, 5);
    w->gold_seen = sq_col_i64(r, 6);
    w->gold_correct = sq_col_i64(r, 7);
    w->trust = sq_col_double(r, 8);
    sq_col_copy(r, 9, w->reason, sizeof w->reason);
    w->created_at = sq_col_i64(r, 11);
    w->updated_at = sq_col_i64(r, 12);
    return sq_col_json(r, 10, &w->flags, err);
}

static int read_pw_counted(const sq_row *r, void *ctx, tly_error *err)
{
    tly_project_worker *w = ctx;
    if (read_pw(r, ctx, err) < 0)
        return -1;
    w->judgments = sq_col_i64(r, 13);
    w->excluded = sq_col_i64(r, 14);
    return 0;
}

void tly_project_worker_clear(tly_project_worker *w)
{
    if (!w)
        return;
    json_decref(w->flags);
    memset(w, 0, sizeof *w);
}

static void clear_pw(void *w)
{
    tly_project_worker_clear(w);
}

void tly_project_worker_list_free(tly_project_worker *list, size_t n)
{
    sq_list_free(list, n, sizeof *list, clear_pw);
}

int tly_store_project_worker_get(tly_store *st, int64_t project_id, int64_t worker_id,
                                 tly_project_worker *out, tly_error *err)
{
    return sq_one(st, "SELECT " PW_COLS " FROM project_workers WHERE project_id = ? AND worker_id = ?", read_pw,
                  clear_pw, out, sizeof *out, "worker", err, "ii", project_id, worker_id);
}

int tly_store_project_worker_create(tly_store *st, const tly_project_worker *in, tly_error *err)
{
    int64_t now = tly_now_ms();
    return sq_exec(st,
                   "INSERT INTO project_workers (project_id, worker_id, mode, status, trust, created_at, updated_at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project_id, worker_id) DO NOTHING",
                   err, "iittfii", in->project_id, in->worker_id, in->mode, in->status, in->trust, now, now);
}

int tly_store_project_worker_update(tly_store *st, const tly_project_worker *w, tly_error *err)
{
    int rc = sq_int64(st,
                      "UPDATE project_workers SET mode = ?, status = ?, quiz_seen = ?, quiz_correct = ?,"
                      " gold_seen = ?, gold_correct = ?, trust = ?, reason = ?, flags = ?, updated_at = ?"
                      " WHERE project_id = ? AND worker_id = ? RETURNING worker_id",
                      NULL, err, "ttiiiiftjiii", w->mode, w->status, w->quiz_seen, w->quiz_correct, w->gold_seen,
                      w->gold_correct, w->trust, w->reason[0] ? w->reason : NULL, w->flags, tly_now_ms(),
                      w->project_id, w->worker_id);
    return sq_found(rc, "worker", w->worker_id, err);
}

int tly_store_project_worker_list(tly_store *st, int64_t project_id, int64_t after_worker_id,
                                  int limit, tly_project_worker **out, size_t *n_out,
                                  tly_error *err)
{
    return sq_list(st,
                   "SELECT " PW_COLS ","
                   " (SELECT COUNT(*) FROM judgments j WHERE j.project_id = w.project_id"
                   "   AND j.worker_id = w.worker_id AND j.gold = 0 AND j.excluded IS NULL),"
                   " (SELECT COUNT(*) FROM judgments j WHERE j.project_id = w.project_id"
                   "   AND j.worker_id = w.worker_id AND j.gold = 0 AND j.excluded IS NOT NULL)"
                   " FROM project_workers w WHERE project_id = ? AND worker_id > ? ORDER BY worker_id LIMIT ?",
                   read_pw_counted, clear_pw, sizeof **out, (void **)out, n_out, err, "iii", project_id,
                   after_worker_id, sq_page_limit(limit));
}

static int read_two(const sq_row *r, void *ctx, tly_error *err)
{
    int64_t *two = ctx;
    (void)err;
    two[0] = sq_col_i64(r, 0);
    two[1] = sq_col_i64(r, 1);
    return 0;
}

int tly_store_work_mix(tly_store *st, int64_t project_id, int64_t worker_id, int64_t *tasks,
                       int64_t *gold, tly_error *err)
{
    int64_t two[2] = {0, 0};
    if (sq_each(st,
                "SELECT COUNT(*), COALESCE(SUM(gold), 0) FROM assignments"
                " WHERE worker_id = ? AND project_id = ? AND mode = 'work' AND state <> 'skipped'",
                read_two, two, err, "ii", worker_id, project_id) < 0)
        return -1;
    *tasks = two[0];
    *gold = two[1];
    return 0;
}

int tly_store_gold_unseen(tly_store *st, int64_t project_id, int64_t worker_id, int64_t *out,
                          tly_error *err)
{
    return sq_int64(st,
                    "SELECT COUNT(*) FROM items i WHERE i.project_id = ? AND i.state = 'gold' AND NOT EXISTS"
                    " (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.worker_id = ?)",
                    out, err, "ii", project_id, worker_id) < 0
               ? -1
               : 0;
}

/* Items a worker's counting work judgments are on, not yet released. */
#define EXCLUDABLE                                                                           \
    " SELECT j.item_id FROM judgments j WHERE j.project_id = ? AND j.worker_id = ? AND j.gold = 0" \
    " AND j.excluded IS NULL"

int tly_store_worker_exclude(tly_store *st, int64_t project_id, int64_t worker_id,
                             const char *reason, int64_t now_ms, int64_t *items_out,
                             tly_error *err)
{
    int64_t n = 0;
    char detail[96];
    snprintf(detail, sizeof detail, "{\"reason\":\"%.40s\",\"worker_id\":%lld}", reason, (long long)worker_id);
    /* The items first (while their judgments still count), then the judgments. */
    if (sq_int64(st,
                 "SELECT COUNT(*) FROM items WHERE id IN (" EXCLUDABLE ") AND state NOT IN ('released', 'gold')",
                 &n, err, "ii", project_id, worker_id) < 0 ||
        sq_exec(st,
                "DELETE FROM results WHERE item_id IN (SELECT id FROM items WHERE id IN (" EXCLUDABLE
                ") AND state NOT IN ('released', 'gold'))",
                err, "ii", project_id, worker_id) < 0 ||
        sq_exec(st,
                "INSERT INTO item_events (item_id, project_id, at, actor, kind, detail)"
                " SELECT id, project_id, ?, 0, 'judgment_excluded', ? FROM items WHERE id IN (" EXCLUDABLE
                ") AND state NOT IN ('released', 'gold')",
                err, "itii", now_ms, detail, project_id, worker_id) < 0 ||
        sq_exec(st,
                "UPDATE items SET judged = judged - 1,"
                " state = CASE WHEN state IN ('labeled', 'review', 'done') THEN 'labeling' ELSE state END,"
                " lot_id = CASE WHEN state = 'done' THEN 0 ELSE lot_id END"
                " WHERE id IN (" EXCLUDABLE ") AND state NOT IN ('released', 'gold')",
                err, "ii", project_id, worker_id) < 0 ||
        sq_exec(st,
                "UPDATE judgments SET excluded = ? WHERE project_id = ? AND worker_id = ? AND gold = 0"
                " AND excluded IS NULL AND item_id NOT IN (SELECT id FROM items WHERE project_id = ?"
                " AND state = 'released')",
                err, "tiii", reason, project_id, worker_id, project_id) < 0 ||
        sq_exec(st, "UPDATE assignments SET state = 'skipped', finished_at = ? WHERE project_id = ? AND worker_id = ?"
                    " AND state = 'leased'",
                err, "iii", now_ms, project_id, worker_id) < 0)
        return -1;
    if (items_out)
        *items_out = n;
    return 0;
}

/* ---- judgments for aggregation ------------------------------------------------------ */

struct each_ctx {
    int (*fn)(const tly_judgment *j, void *ctx);
    void *ctx;
};

static int each_row(const sq_row *r, void *ctx, tly_error *err)
{
    struct each_ctx *e = ctx;
    tly_judgment j = {0};
    if (sq_read_judgment(r, &j, err) < 0) {
        tly_judgment_clear(&j);
        return -1;
    }
    int rc = e->fn(&j, e->ctx);
    tly_judgment_clear(&j);
    if (rc < 0)
        return tly_fail(err, TLY_E_INTERNAL, "aborted", "stopped by the reader");
    return 0;
}

int64_t tly_store_judgment_each(tly_store *st, int64_t project_id,
                                int (*fn)(const tly_judgment *j, void *ctx), void *ctx,
                                tly_error *err)
{
    struct each_ctx e = {fn, ctx};
    return sq_each(st,
                   "SELECT " SQ_JUDGMENT_COLS " FROM judgments WHERE project_id = ? AND excluded IS NULL ORDER BY id",
                   each_row, &e, err, "i", project_id);
}

int tly_store_item_judgments(tly_store *st, int64_t item_id, tly_judgment **out, size_t *n_out,
                             tly_error *err)
{
    return sq_list(st, "SELECT " SQ_JUDGMENT_COLS " FROM judgments WHERE item_id = ? AND excluded IS NULL ORDER BY id",
                   sq_read_judgment, sq_clear_judgment, sizeof **out, (void **)out, n_out, err, "i", item_id);
}

int tly_store_queue_aggregation(tly_store *st, int64_t project_id, tly_error *err)
{
    return sq_queue_aggregation(st, project_id, tly_now_ms(), err);
}

/* ---- item state moves ------------------------------------------------------------------ */

int tly_store_item_move(tly_store *st, int64_t item_id, const char *from, const char *to,
                        int extra_delta, tly_error *err)
{
    int rc = from ? sq_int64(st,
                             "UPDATE items SET state = ?, extra = extra + ?,"
                             " lot_id = CASE WHEN ? IN ('done', 'released') THEN lot_id ELSE 0 END"
                             " WHERE id = ? AND state = ? RETURNING id",
                             NULL, err, "titit", to, (int64_t)extra_delta, to, item_id, from)
                  : sq_int64(st,
                             "UPDATE items SET state = ?, extra = extra + ?,"
                             " lot_id = CASE WHEN ? IN ('done', 'released') THEN lot_id ELSE 0 END"
                             " WHERE id = ? RETURNING id",
                             NULL, err, "titi", to, (int64_t)extra_delta, to, item_id);
    if (rc < 0)
        return -1;
    if (rc == 1)
        return tly_fail(err, TLY_E_CONFLICT, "state_changed", "item %lld is not in state '%s'", (long long)item_id,
                        from ? from : "?");
    if (strcmp(to, "new") == 0 || strcmp(to, "labeling") == 0)
        return sq_exec(st, "DELETE FROM results WHERE item_id = ?", err, "i", item_id);
    return 0;
}

int tly_store_item_route_verify(tly_store *st, int64_t item_id, int overlap, int need, tly_error *err)
{
    int rc = sq_int64(st,
                      "UPDATE items SET extra = ? WHERE id = ? AND state = 'new' AND judged = 0 AND extra = 0"
                      " RETURNING id",
                      NULL, err, "ii", (int64_t)(need - overlap), item_id);
    if (rc == 1)
        return tly_fail(err, TLY_E_CONFLICT, "state_changed", "item %lld is no longer fresh", (long long)item_id);
    return rc;
}

int tly_store_item_set_priority(tly_store *st, int64_t item_id, double priority, tly_error *err)
{
    return sq_exec(st, "UPDATE items SET priority = ? WHERE id = ? AND state = 'new'", err, "fi", priority, item_id);
}

int tly_store_item_screen(tly_store *st, int64_t item_id, int mark, tly_error *err)
{
    int64_t was = 0;
    int rc = sq_int64(st, "SELECT screened FROM items WHERE id = ?", &was, err, "i", item_id);
    if (rc != 0)
        return rc < 0 ? -1 : sq_found(rc, "item", item_id, err);
    if (!was && mark && sq_exec(st, "UPDATE items SET screened = 1 WHERE id = ?", err, "i", item_id) < 0)
        return -1;
    return was != 0;
}

int tly_store_item_rework(tly_store *st, int64_t item_id, const char *reason, tly_error *err)
{
    if (sq_exec(st, "UPDATE judgments SET excluded = ? WHERE item_id = ? AND excluded IS NULL", err, "ti", reason,
                item_id) < 0 ||
        sq_exec(st, "DELETE FROM results WHERE item_id = ?", err, "i", item_id) < 0)
        return -1;
    int rc = sq_int64(st, "UPDATE items SET judged = 0, extra = 0, lot_id = 0, state = 'labeling' WHERE id = ?"
                          " RETURNING id",
                      NULL, err, "i", item_id);
    return sq_found(rc, "item", item_id, err);
}

struct note_ctx {
    char *note;
    size_t sz;
    int found;
};

static int read_note(const sq_row *r, void *ctx, tly_error *err)
{
    struct note_ctx *n = ctx;
    json_t *detail = NULL;
    if (sq_col_json(r, 0, &detail, err) < 0)
        return -1;
    const char *c = json_string_value(json_object_get(detail, "comment"));
    if (c && *c) {
        snprintf(n->note, n->sz, "%s", c);
        n->found = 1;
    }
    json_decref(detail);
    return 0;
}

int tly_store_item_rework_note(tly_store *st, int64_t item_id, char *note, size_t notesz, tly_error *err)
{
    struct note_ctx n = {note, notesz, 0};
    /* Only while the rework is the item's latest round: no result since. */
    if (sq_each(st,
                "SELECT detail FROM item_events WHERE item_id = ? AND kind = 'rework' AND id > COALESCE("
                "(SELECT MAX(id) FROM item_events WHERE item_id = ? AND kind IN ('done', 'to_review')), 0)"
                " ORDER BY id DESC LIMIT 1",
                read_note, &n, err, "ii", item_id, item_id) < 0)
        return -1;
    return n.found;
}

int sq_read_id(const sq_row *r, void *ctx, tly_error *err)
{
    (void)err;
    *(int64_t *)ctx = sq_col_i64(r, 0);
    return 0;
}

int tly_store_item_ids(tly_store *st, int64_t project_id, const char *state, int64_t after_id,
                       int limit, int64_t **out, size_t *n_out, tly_error *err)
{
    return sq_list(st, "SELECT id FROM items WHERE project_id = ? AND state = ? AND id > ? ORDER BY id LIMIT ?",
                   sq_read_id, clear_nothing, sizeof **out, (void **)out, n_out, err, "itii", project_id, state,
                   after_id, (int64_t)(limit > 0 ? limit : 1000));
}

/* ---- results ------------------------------------------------------------------------------ */

#define RESULT_COLS                                                                                 \
    "r.item_id, r.project_id, r.answer, r.confidence, r.method, r.detail, r.judgments, r.flags," \
    " r.updated_at, i.state"

static int read_result(const sq_row *r, void *ctx, tly_error *err)
{
    tly_result *res = ctx;
    res->item_id = sq_col_i64(r, 0);
    res->project_id = sq_col_i64(r, 1);
    res->confidence = sq_col_double(r, 3);
    sq_col_copy(r, 4, res->method, sizeof res->method);
    res->judgments = sq_col_i64(r, 6);
    res->updated_at = sq_col_i64(r, 8);
    sq_col_copy(r, 9, res->item_state, sizeof res->item_state);
    if (sq_col_json(r, 2, &res->answer, err) < 0 || sq_col_json(r, 5, &res->detail, err) < 0 ||
        sq_col_json(r, 7, &res->flags, err) < 0)
        return -1;
    return 0;
}

void tly_result_clear(tly_result *r)
{
    if (!r)
        return;
    json_decref(r->answer);
    json_decref(r->detail);
    json_decref(r->flags);
    memset(r, 0, sizeof *r);
}

static void clear_result(void *r)
{
    tly_result_clear(r);
}

void tly_result_list_free(tly_result *list, size_t n)
{
    sq_list_free(list, n, sizeof *list, clear_result);
}

int tly_store_result_put(tly_store *st, const tly_result *r, tly_error *err)
{
    json_t *flags = r->flags && json_array_size(r->flags) ? r->flags : NULL;
    return sq_exec(st,
                   "INSERT INTO results (item_id, project_id, answer, confidence, method, detail, judgments, flags,"
                   " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (item_id) DO UPDATE SET"
                   " answer = excluded.answer, confidence = excluded.confidence, method = excluded.method,"
                   " detail = excluded.detail, judgments = excluded.judgments, flags = excluded.flags,"
                   " updated_at = excluded.updated_at",
                   err, "iijftjiji", r->item_id, r->project_id, r->answer, r->confidence, r->method, r->detail,
                   r->judgments, flags, tly_now_ms());
}

int tly_store_result_get(tly_store *st, int64_t item_id, tly_result *out, tly_error *err)
{
    return sq_one(st, "SELECT " RESULT_COLS " FROM results r JOIN items i ON i.id = r.item_id WHERE r.item_id = ?",
                  read_result, clear_result, out, sizeof *out, "result", err, "i", item_id);
}

int tly_store_result_list(tly_store *st, int64_t project_id, const char *state, int64_t after_item_id,
                          int limit, tly_result **out, size_t *n_out, tly_error *err)
{
    if (state)
        return sq_list(st,
                       "SELECT " RESULT_COLS " FROM results r JOIN items i ON i.id = r.item_id"
                       " WHERE r.project_id = ? AND i.state = ? AND r.item_id > ? ORDER BY r.item_id LIMIT ?",
                       read_result, clear_result, sizeof **out, (void **)out, n_out, err, "itii", project_id, state,
                       after_item_id, sq_page_limit(limit));
    return sq_list(st,
                   "SELECT " RESULT_COLS " FROM results r JOIN items i ON i.id = r.item_id"
                   " WHERE r.project_id = ? AND r.item_id > ? ORDER BY r.item_id LIMIT ?",
                   read_result, clear_result, sizeof **out, (void **)out, n_out, err, "iii", project_id,
                   after_item_id, sq_page_limit(limit));
}

struct summary {
    int64_t n;
    double mean;
};

static int read_summary(const sq_row *r, void *ctx, tly_error *err)
{
    struct summary *s = ctx;
    (void)err;
    s->n = sq_col_i64(r, 0);
    s->mean = sq_col_double(r, 1);
    return 0;
}

int tly_store_result_summary(tly_store *st, int64_t project_id, const char *state, int64_t *n,
                             double *mean_confidence, tly_error *err)
{
    struct summary s = {0, 0};
    if (sq_each(st,
                "SELECT COUNT(*), COALESCE(AVG(r.confidence), 0) FROM results r JOIN items i ON i.id = r.item_id"
                " WHERE r.project_id = ? AND i.state = ?",
                read_summary, &s, err, "it", project_id, state) < 0)
        return -1;
    *n = s.n;
    *mean_confidence = s.mean;
    return 0;
}

/* ---- item history --------------------------------------------------------------------------- */

int tly_store_item_event(tly_store *st, int64_t item_id, int64_t project_id, int64_t actor,
                         const char *kind, json_t *detail, tly_error *err)
{
    return sq_exec(st, "INSERT INTO item_events (item_id, project_id, at, actor, kind, detail) VALUES (?, ?, ?, ?, ?, ?)",
                   err, "iiiitj", item_id, project_id, tly_now_ms(), actor, kind, detail);
}

static int read_event(const sq_row *r, void *ctx, tly_error *err)
{
    json_t *detail = NULL;
    if (sq_col_json(r, 4, &detail, err) < 0)
        return -1;
    char kind[48];
    sq_col_copy(r, 3, kind, sizeof kind);
    json_t *ev = json_pack("{s:I,s:I,s:I,s:s,s:o}", "id", (json_int_t)sq_col_i64(r, 0), "at",
                           (json_int_t)sq_col_i64(r, 1), "actor", (json_int_t)sq_col_i64(r, 2), "kind", kind,
                           "detail", detail ? detail : json_null());
    if (!ev || json_array_append_new(ctx, ev) < 0)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    return 0;
}

int tly_store_item_events(tly_store *st, int64_t item_id, int64_t after_id, int limit, json_t **out,
                          tly_error *err)
{
    json_t *items = json_array();
    if (sq_each(st, "SELECT id, at, actor, kind, detail FROM item_events WHERE item_id = ? AND id > ? ORDER BY id LIMIT ?",
                read_event, items, err, "iii", item_id, after_id, sq_page_limit(limit)) < 0) {
        json_decref(items);
        return -1;
    }
    *out = json_pack("{s:o}", "items", items);
    return 0;
}

/* ---- project figures ------------------------------------------------------------------------ */

static int read_counts(const sq_row *r, void *ctx, tly_error *err)
{
    json_t *o = ctx;
    static const char *const keys[] = {"judgments", "excluded_judgments", "workers", "workers_active",
                                       "workers_failed", "workers_stopped"};
    for (int i = 0; i < 6; i++)
        json_object_set_new(o, keys[i], json_integer(sq_col_i64(r, i)));
    json_object_set_new(o, "mean_trust", sq_col_is_null(r, 6) ? json_null() : json_real(sq_col_double(r, 6)));
    (void)err;
    return 0;
}

int tly_store_quality_counts(tly_store *st, int64_t project_id, json_t **out, tly_error *err)
{
    json_t *o = json_object();
    if (sq_each(st,
                "SELECT (SELECT COUNT(*) FROM judgments WHERE project_id = ? AND gold = 0 AND excluded IS NULL),"
                " (SELECT COUNT(*) FROM judgments WHERE project_id = ? AND gold = 0 AND excluded IS NOT NULL),"
                " COUNT(*), COALESCE(SUM(CASE WHEN status = 'active' THEN 1 ELSE 0 END), 0),"
                " COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0),"
                " COALESCE(SUM(CASE WHEN status = 'stopped' THEN 1 ELSE 0 END), 0),"
                " AVG(CASE WHEN status = 'active' THEN trust END)"
                " FROM project_workers WHERE project_id = ?",
                read_counts, o, err, "iii", project_id, project_id, project_id) < 0) {
        json_decref(o);
        return -1;
    }
    *out = o;
    return 0;
}

/* ---- import of outside judgments ---------------------------------------------------------- */

int tly_store_item_by_name(tly_store *st, int64_t project_id, const char *name, int64_t *id_out,
                           tly_error *err)
{
    int rc = sq_int64(st, "SELECT id FROM items WHERE project_id = ? AND name = ? ORDER BY id LIMIT 1", id_out, err,
                      "it", project_id, name);
    if (rc == 1)
        return tly_fail(err, TLY_E_NOT_FOUND, "not_found", "no item named '%s' in the project", name);
    return rc;
}

int tly_store_import_worker(tly_store *st, int64_t project_id, const char *ref, int64_t *worker_id,
                            tly_error *err)
{
    char name[160];
    if (snprintf(name, sizeof name, "import:%lld:%s", (long long)project_id, ref) >= (int)sizeof name)
        return tly_fail(err, TLY_E_INVALID, "invalid_worker", "worker reference '%.40s...' is too long", ref);
    int rc = sq_int64(st, "SELECT id FROM users WHERE name = ?", worker_id, err, "t", name);
    if (rc <= 0)
        return rc;
    /* Nobody knows a token whose SHA-256 is this: random, and not even hex. */
    char token_hash[80];
    unsigned long long r = (unsigned long long)tly_now_ms() ^ ((unsigned long long)project_id << 32);
    snprintf(token_hash, sizeof token_hash, "imported-%llx-%s", r, ref);
    if (sq_insert(st,
                  "INSERT INTO users (name, role, token_sha256, created_at) VALUES (?, ?, ?, ?) RETURNING id",
                  worker_id, err, "ttti", name, tly_role_name(TLY_ROLE_WORKER), token_hash, tly_now_ms()) < 0)
        return -1;
    return 0;
}

int tly_store_judgment_import(tly_store *st, int64_t project_id, int64_t item_id, int64_t worker_id,
                              const char *answer_json, int overlap, int64_t now_ms,
                              int64_t *judgment_id, tly_error *err)
{
    int64_t aid = 0;
    tly_error e;
    if (sq_insert(st,
                  "INSERT INTO assignments (project_id, item_id, worker_id, state, mode, leased_at, expires_at,"
                  " finished_at) VALUES (?, ?, ?, 'submitted', 'import', ?, ?, ?) RETURNING id",
                  &aid, &e, "iiiiii", project_id, item_id, worker_id, now_ms, now_ms, now_ms) < 0) {
        if (e.status == TLY_E_CONFLICT)
            return tly_fail(err, TLY_E_CONFLICT, "duplicate_judgment", "worker already judged item %lld",
                            (long long)item_id);
        if (err)
            *err = e;
        return -1;
    }
    if (sq_insert(st,
                  "INSERT INTO judgments (assignment_id, project_id, item_id, worker_id, answer, duration_ms,"
                  " created_at, source) VALUES (?, ?, ?, ?, ?, 0, ?, 'import') RETURNING id",
                  judgment_id, err, "iiiiti", aid, project_id, item_id, worker_id, answer_json, now_ms) < 0)
        return -1;
    return sq_item_count_judgment(st, project_id, item_id, overlap, now_ms, err);
}
