/* store_classifier.c -- what the built-in image classifier (annotate/prelabel_classifier.c)
 * keeps: cached image features per item, fitted weights per model, and the queries
 * that feed its training.
 *
 * Accepted labels are results of items a human round finished (state done or
 * released) that the model itself did not make (method <> 'model'): a classifier
 * trained on its own auto-accepted answers would only learn its own mistakes.
 * Features are keyed by item and a features version, so changing the extractor
 * only means computing them again. Weights are one blob per model, replaced whole.
 */
#include "storage/sql.h"

#include "core/timeutil.h"

#include <stdlib.h>
#include <string.h>

#define ACCEPTED_LABELS                                                                        \
    " FROM results r JOIN items i ON i.id = r.item_id WHERE r.project_id = ? AND i.project_id = ?" \
    " AND i.state IN ('done', 'released') AND r.method <> 'model'"

int tly_store_classifier_label_count(tly_store *st, int64_t project_id, int64_t *out, tly_error *err)
{
    *out = 0;
    return sq_int64(st, "SELECT COUNT(*)" ACCEPTED_LABELS, out, err, "ii", project_id, project_id) < 0 ? -1 : 0;
}

struct labels_ctx {
    int (*fn)(int64_t item_id, json_t *answer, const void *features, size_t len, void *ctx);
    void *ctx;
};

static int read_label(const sq_row *r, void *arg, tly_error *err)
{
    struct labels_ctx *lc = arg;
    json_t *answer = NULL;
    if (sq_col_json(r, 1, &answer, err) < 0)
        return -1;
    size_t len = 0;
    const void *data = sq_col_is_null(r, 2) ? NULL : r->drv->column_blob(r->stmt, 2, &len);
    int rc = lc->fn(sq_col_i64(r, 0), answer, data, data ? len : 0, lc->ctx);
    json_decref(answer);
    return rc < 0 ? tly_fail(err, TLY_E_INTERNAL, "aborted", "stopped by the caller") : 0;
}

int64_t tly_store_classifier_labels(tly_store *st, int64_t project_id, int version,
                                    int (*fn)(int64_t item_id, json_t *answer, const void *features, size_t len,
                                              void *ctx),
                                    void *ctx, tly_error *err)
{
    struct labels_ctx lc = {fn, ctx};
    return sq_each(st,
                   "SELECT r.item_id, r.answer, f.data FROM results r JOIN items i ON i.id = r.item_id"
                   " LEFT JOIN classifier_features f ON f.item_id = r.item_id AND f.version = ?"
                   " WHERE r.project_id = ? AND i.project_id = ? AND i.state IN ('done', 'released')"
                   " AND r.method <> 'model' ORDER BY r.item_id",
                   read_label, &lc, err, "iii", (int64_t)version, project_id, project_id);
}

static int read_blob(const sq_row *r, void *ctx, tly_error *err)
{
    return sq_col_blob(r, 0, ctx, err);
}

int tly_store_classifier_features_get(tly_store *st, int64_t item_id, int version, tly_buf *out, tly_error *err)
{
    int64_t n = sq_each(st, "SELECT data FROM classifier_features WHERE item_id = ? AND version = ?", read_blob, out,
                        err, "ii", item_id, (int64_t)version);
    return n < 0 ? -1 : n == 0 ? 1 : 0;
}

int tly_store_classifier_features_put(tly_store *st, int64_t item_id, int version, const void *data, size_t len,
                                      tly_error *err)
{
    return sq_exec(st,
                   "INSERT INTO classifier_features (item_id, version, data) VALUES (?, ?, ?)"
                   " ON CONFLICT (item_id) DO UPDATE SET version = excluded.version, data = excluded.data",
                   err, "iib", item_id, (int64_t)version, data, len);
}

struct state_read {
    tly_classifier_state *s;
    tly_buf *weights;
};

static int read_state(const sq_row *r, void *ctx, tly_error *err)
{
    struct state_read *sr = ctx;
    sr->s->model_id = sq_col_i64(r, 0);
    sr->s->trained_on = sq_col_i64(r, 1);
    sr->s->next_train_at = sq_col_i64(r, 2);
    sr->s->stale = (int)sq_col_i64(r, 3);
    sr->s->updated_at = sq_col_i64(r, 6);
    sr->s->has_weights = !sq_col_is_null(r, 4);
    if (sq_col_json(r, 5, &sr->s->info, err) < 0)
        return -1;
    if (sr->weights && sr->s->has_weights && sq_col_blob(r, 4, sr->weights, err) < 0)
        return -1;
    return 0;
}

void tly_classifier_state_clear(tly_classifier_state *s)
{
    if (!s)
        return;
    json_decref(s->info);
    memset(s, 0, sizeof *s);
}

int tly_store_classifier_state_get(tly_store *st, int64_t model_id, tly_classifier_state *out, tly_buf *weights,
                                   tly_error *err)
{
    memset(out, 0, sizeof *out);
    struct state_read sr = {out, weights};
    int64_t n = sq_each(st,
                        "SELECT model_id, trained_on, next_train_at, stale, weights, info, updated_at"
                        " FROM classifier_state WHERE model_id = ?",
                        read_state, &sr, err, "i", model_id);
    if (n < 0) {
        tly_classifier_state_clear(out);
        return -1;
    }
    return n == 0 ? 1 : 0;
}

int tly_store_classifier_state_put(tly_store *st, const tly_classifier_state *s, const void *weights, size_t len,
                                   tly_error *err)
{
    if (weights)
        return sq_exec(st,
                       "INSERT INTO classifier_state (model_id, trained_on, next_train_at, stale, weights, info,"
                       " updated_at) VALUES (?, ?, ?, 0, ?, ?, ?) ON CONFLICT (model_id) DO UPDATE SET"
                       " trained_on = excluded.trained_on, next_train_at = excluded.next_train_at, stale = 0,"
                       " weights = excluded.weights, info = excluded.info, updated_at = excluded.updated_at",
                       err, "iiibji", s->model_id, s->trained_on, s->next_train_at, weights, len, s->info,
                       tly_now_ms());
    /* No new weights: only when to fit next (and what the last attempt said). */
    return sq_exec(st,
                   "INSERT INTO classifier_state (model_id, trained_on, next_train_at, stale, info, updated_at)"
                   " VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (model_id) DO UPDATE SET"
                   " next_train_at = excluded.next_train_at, stale = 0, info = excluded.info,"
                   " updated_at = excluded.updated_at",
                   err, "iiiji", s->model_id, s->trained_on, s->next_train_at, s->info, tly_now_ms());
}

/* Items routed to fewer judgments than the overlap (annotate/prelabel.c: history
 * to_confirm or to_assist, extra < 0) that nobody has judged or holds a lease on,
 * their last event one of last_kinds (an SQL list): ?1 project, ?2 now. */
#define UNSTARTED_ROUTED(last_kinds)                                                                \
    " i.project_id = ? AND i.state = 'new' AND i.judged = 0 AND i.extra < 0"                      \
    " AND (SELECT e.kind FROM item_events e WHERE e.item_id = i.id ORDER BY e.id DESC LIMIT 1) IN (" \
    last_kinds ") AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id"               \
    " AND a.state = 'leased' AND a.expires_at > ?)"

int tly_store_classifier_refresh(tly_store *st, int64_t model_id, int64_t project_id, tly_error *err)
{
    /* The fit happens when the model's job predicts something, and the job only asks
     * about items without its prediction: the last fresh item in dispatch order (the
     * one the crowd reaches last) loses its prediction, so there is one. The rest keep
     * theirs until the fit is done (tly_store_classifier_forget_fresh). */
    return sq_exec(st,
                   "INSERT INTO classifier_state (model_id, stale, updated_at) VALUES (?, 1, ?)"
                   " ON CONFLICT (model_id) DO UPDATE SET stale = 1",
                   err, "ii", model_id, tly_now_ms()) < 0 ||
                   sq_exec(st,
                           "DELETE FROM predictions WHERE model_id = ? AND item_id = (SELECT MAX(i.id) FROM items i"
                           " JOIN predictions p ON p.item_id = i.id AND p.model_id = ?"
                           " WHERE i.project_id = ? AND i.state = 'new' AND i.judged = 0 AND i.extra = 0)",
                           err, "iii", model_id, model_id, project_id) < 0
               ? -1
               : 0;
}

int tly_store_classifier_forget_fresh(tly_store *st, int64_t model_id, int64_t project_id, tly_error *err)
{
    /* Fresh items only (new, never judged, not routed to a check): nobody is working
     * on them, so the newer model may still decide them. This runs once the new
     * weights exist, not when the fit is merely due: fresh items without a prediction
     * are ordinary work for the crowd, and the first ones in dispatch order would be
     * labeled in full while the fit runs. Confirm steps nobody has started become
     * fresh again first: a prediction routes all fresh items at once, so the first
     * calibrated model would otherwise decide, for good, how most of a big project is
     * labeled; the newer one may accept them outright or confirm them at its own
     * threshold. The withdrawal is in their history (confirm_withdrawn), which also
     * ends the step for qa/results.c. Model-assisted starts (to_assist: one judgment
     * short of the overlap) nobody has started lose their prediction but keep their
     * start: the newer model may accept them outright, and otherwise they stay
     * model-assisted. (Withdrawing them too made them plain fresh items, and the
     * crowd, taking the least sure first, took most of them at full overlap before
     * the newer model got to them.) */
    int64_t now = tly_now_ms();
    return sq_exec(st,
                   "INSERT INTO item_events (item_id, project_id, at, actor, kind, detail)"
                   " SELECT i.id, i.project_id, ?, 0, 'confirm_withdrawn', NULL FROM items i WHERE"
                   UNSTARTED_ROUTED("'to_confirm'"),
                   err, "iii", now, project_id, now) < 0 ||
                   sq_exec(st, "UPDATE items SET extra = 0 WHERE id IN (SELECT i.id FROM items i WHERE"
                               UNSTARTED_ROUTED("'confirm_withdrawn'") ")",
                           err, "ii", project_id, now) < 0 ||
                   sq_exec(st,
                           "DELETE FROM predictions WHERE model_id = ? AND item_id IN (SELECT i.id FROM items i"
                           " WHERE i.project_id = ? AND i.state = 'new' AND i.judged = 0 AND i.extra = 0)",
                           err, "ii", model_id, project_id) < 0 ||
                   sq_exec(st,
                           "DELETE FROM predictions WHERE model_id = ? AND item_id IN (SELECT i.id FROM items i"
                           " WHERE" UNSTARTED_ROUTED("'to_assist'") ")",
                           err, "iii", model_id, project_id, now) < 0
               ? -1
               : 0;
}
