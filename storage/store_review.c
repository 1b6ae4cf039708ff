/* store_review.c -- the human rounds after aggregation: review leases with their
 * verdicts, and customer acceptance lots with their samples.
 *
 * A review is a lease like a labeling assignment: the reviewer holds one item in
 * state 'review' until expires_at; an expired lease stops holding it with no sweep.
 * The item's move that a verdict causes (done, back to labeling, fixed) is the
 * domain's (qa/review.c), in the same transaction as the verdict.
 *
 * A lot ties finished items ('done', lot_id 0) to a sampling plan chosen by qa/;
 * lot_items holds every item of the lot, the sampled ones flagged, with their
 * verdicts. Deciding the lot releases its items or sends them back to review.
 */
#include "storage/sql.h"

#include "core/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reviews -------------------------------------------------------------------------- */

#define REVIEW_COLS                                                                              \
    "id, project_id, item_id, reviewer_id, state, COALESCE(reason, ''), COALESCE(verdict, ''), answer," \
    " comment, leased_at, expires_at, finished_at"

static int read_review(const sq_row *r, void *ctx, tly_error *err)
{
    tly_review *v = ctx;
    v->id = sq_col_i64(r, 0);
    v->project_id = sq_col_i64(r, 1);
    v->item_id = sq_col_i64(r, 2);
    v->reviewer_id = sq_col_i64(r, 3);
    sq_col_copy(r, 4, v->state, sizeof v->state);
    sq_col_copy(r, 5, v->reason, sizeof v->reason);
    sq_col_copy(r, 6, v->verdict, sizeof v->verdict);
    v->leased_at = sq_col_i64(r, 9);
    v->expires_at = sq_col_i64(r, 10);
    v->finished_at = sq_col_i64(r, 11);
    if (sq_col_json(r, 7, &v->answer, err) < 0 || sq_col_dup(r, 8, &v->comment, err) < 0)
        return -1;
    return 0;
}

void tly_review_clear(tly_review *r)
{
    if (!r)
        return;
    json_decref(r->answer);
    free(r->comment);
    memset(r, 0, sizeof *r);
}

static void clear_review(void *r)
{
    tly_review_clear(r);
}

int tly_store_review_get(tly_store *st, int64_t id, tly_review *out, tly_error *err)
{
    return sq_one(st, "SELECT " REVIEW_COLS " FROM reviews WHERE id = ?", read_review, clear_review, out, sizeof *out,
                  "review", err, "i", id);
}

/* Items in review nobody holds: ?1 project, ?2 now. */
#define REVIEWABLE                                                                            \
    "SELECT i.id FROM items i WHERE i.project_id = ? AND i.state = 'review' AND NOT EXISTS"  \
    " (SELECT 1 FROM reviews v WHERE v.item_id = i.id AND v.state = 'leased' AND v.expires_at > ?)"
#define NOT_OWN_WORK \
    " AND NOT EXISTS (SELECT 1 FROM judgments j WHERE j.item_id = i.id AND j.worker_id = ? AND j.excluded IS NULL)"

static int review_next_in_tx(tly_store *st, int64_t project_id, int64_t reviewer_id, int exclude_own_work,
                             int64_t lease_ms, int64_t now_ms, tly_review *out, tly_error *err)
{
    tly_error e;
    if (sq_one(st,
               "SELECT " REVIEW_COLS " FROM reviews WHERE reviewer_id = ? AND project_id = ? AND state = 'leased'"
               " AND expires_at > ? ORDER BY id LIMIT 1",
               read_review, clear_review, out, sizeof *out, "review", &e, "iii", reviewer_id, project_id,
               now_ms) == 0)
        return 0;
    if (e.status != TLY_E_NOT_FOUND) {
        if (err)
            *err = e;
        return -1;
    }
    int64_t item_id = 0;
    int rc = exclude_own_work ? sq_int64(st, REVIEWABLE NOT_OWN_WORK " ORDER BY i.id LIMIT 1", &item_id, err, "iii",
                                         project_id, now_ms, reviewer_id)
                              : sq_int64(st, REVIEWABLE " ORDER BY i.id LIMIT 1", &item_id, err, "ii", project_id,
                                         now_ms);
    if (rc != 0)
        return rc;
    int64_t id = 0;
    if (sq_insert(st,
                  "INSERT INTO reviews (project_id, item_id, reviewer_id, state, leased_at, expires_at)"
                  " VALUES (?, ?, ?, 'leased', ?, ?) RETURNING id",
                  &id, err, "iiiii", project_id, item_id, reviewer_id, now_ms, now_ms + lease_ms) < 0)
        return -1;
    return tly_store_review_get(st, id, out, err);
}

int tly_store_review_next(tly_store *st, int64_t project_id, int64_t reviewer_id,
                          int exclude_own_work, int64_t lease_ms, int64_t now_ms,
                          tly_review *out, tly_error *err)
{
    memset(out, 0, sizeof *out);
    if (tly_store_begin(st, err) < 0)
        return -1;
    int rc = review_next_in_tx(st, project_id, reviewer_id, exclude_own_work, lease_ms, now_ms, out, err);
    if (rc < 0 || tly_store_commit(st, err) < 0) {
        tly_store_rollback(st);
        tly_review_clear(out);
        return -1;
    }
    return rc;
}

int tly_store_review_finish(tly_store *st, int64_t id, const char *verdict, json_t *answer,
                            const char *comment, int64_t now_ms, tly_error *err)
{
    tly_review v = {0};
    if (tly_store_review_get(st, id, &v, err) < 0)
        return -1;
    int done = strcmp(v.state, "done") == 0, expired = v.expires_at <= now_ms;
    tly_review_clear(&v);
    if (done)
        return tly_fail(err, TLY_E_CONFLICT, "already_reviewed", "review %lld already has a verdict", (long long)id);
    if (expired)
        return tly_fail(err, TLY_E_CONFLICT, "lease_expired", "the lease of review %lld has expired", (long long)id);
    return sq_exec(st,
                   "UPDATE reviews SET state = 'done', verdict = ?, answer = ?, comment = ?, finished_at = ?"
                   " WHERE id = ?",
                   err, "tjtii", verdict, answer, comment, now_ms, id);
}

static int add_count(const sq_row *r, void *ctx, tly_error *err)
{
    char key[32];
    sq_col_copy(r, 0, key, sizeof key);
    if (json_object_set_new(ctx, key, json_integer(sq_col_i64(r, 1))) < 0)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    return 0;
}

int tly_store_review_counts(tly_store *st, int64_t project_id, json_t **out, tly_error *err)
{
    json_t *o = json_pack("{s:i,s:i,s:i}", "accept", 0, "reject", 0, "fix", 0);
    if (sq_each(st, "SELECT verdict, COUNT(*) FROM reviews WHERE project_id = ? AND state = 'done' GROUP BY verdict",
                add_count, o, err, "i", project_id) < 0) {
        json_decref(o);
        return -1;
    }
    *out = o;
    return 0;
}

/* ---- acceptance lots ---------------------------------------------------------------------- */

#define LOT_COLS                                                                                   \
    "l.id, l.project_id, l.state, l.lot_size, l.sample_size, l.accept_number, l.reject_number, l.aql," \
    " l.code_letter, l.seed, l.created_by, l.created_at, l.decided_at,"                              \
    " (SELECT COUNT(*) FROM lot_items x WHERE x.lot_id = l.id AND x.verdict IS NOT NULL),"            \
    " (SELECT COUNT(*) FROM lot_items x WHERE x.lot_id = l.id AND x.verdict = 'defect')"

static int read_lot(const sq_row *r, void *ctx, tly_error *err)
{
    tly_lot *l = ctx;
    (void)err;
    l->id = sq_col_i64(r, 0);
    l->project_id = sq_col_i64(r, 1);
    sq_col_copy(r, 2, l->state, sizeof l->state);
    l->lot_size = sq_col_i64(r, 3);
    l->sample_size = sq_col_i64(r, 4);
    l->accept_number = (int)sq_col_i64(r, 5);
    l->reject_number = (int)sq_col_i64(r, 6);
    l->aql = sq_col_double(r, 7);
    sq_col_copy(r, 8, l->code_letter, sizeof l->code_letter);
    l->seed = sq_col_i64(r, 9);
    l->created_by = sq_col_i64(r, 10);
    l->created_at = sq_col_i64(r, 11);
    l->decided_at = sq_col_i64(r, 12);
    l->judged = sq_col_i64(r, 13);
    l->defects = sq_col_i64(r, 14);
    return 0;
}

static void clear_nothing(void *rec)
{
    (void)rec;
}

void tly_lot_list_free(tly_lot *list, size_t n)
{
    sq_list_free(list, n, sizeof *list, clear_nothing);
}

int tly_store_lot_get(tly_store *st, int64_t id, tly_lot *out, tly_error *err)
{
    return sq_one(st, "SELECT " LOT_COLS " FROM lots l WHERE l.id = ?", read_lot, clear_nothing, out, sizeof *out,
                  "lot", err, "i", id);
}

int tly_store_lot_list(tly_store *st, int64_t project_id, int64_t after_id, int limit, tly_lot **out,
                       size_t *n_out, tly_error *err)
{
    return sq_list(st, "SELECT " LOT_COLS " FROM lots l WHERE l.project_id = ? AND l.id > ? ORDER BY l.id LIMIT ?",
                   read_lot, clear_nothing, sizeof **out, (void **)out, n_out, err, "iii", project_id, after_id,
                   sq_page_limit(limit));
}

static int lot_create_in_tx(tly_store *st, tly_lot *in, const int64_t *items, const unsigned char *sampled,
                            size_t n, tly_error *err)
{
    int64_t now = tly_now_ms();
    if (sq_insert(st,
                  "INSERT INTO lots (project_id, state, lot_size, sample_size, accept_number, reject_number, aql,"
                  " code_letter, seed, created_by, created_at) VALUES (?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                  " RETURNING id",
                  &in->id, err, "iiiiifti" "ii", in->project_id, in->lot_size, in->sample_size,
                  (int64_t)in->accept_number, (int64_t)in->reject_number, in->aql, in->code_letter, in->seed,
                  in->created_by, now) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int rc = sq_int64(st, "UPDATE items SET lot_id = ? WHERE id = ? AND state = 'done' AND lot_id = 0 RETURNING id",
                          NULL, err, "ii", in->id, items[i]);
        if (rc < 0)
            return -1;
        if (rc == 1)
            return tly_fail(err, TLY_E_CONFLICT, "state_changed", "item %lld is no longer finished and free",
                            (long long)items[i]);
        if (sq_exec(st, "INSERT INTO lot_items (lot_id, item_id, sampled) VALUES (?, ?, ?)", err, "iii", in->id,
                    items[i], (int64_t)(sampled[i] != 0)) < 0)
            return -1;
    }
    strcpy(in->state, "open");
    in->created_at = now;
    return 0;
}

int tly_store_lot_create(tly_store *st, tly_lot *in, const int64_t *items, const unsigned char *sampled,
                         size_t n, tly_error *err)
{
    if (tly_store_begin(st, err) < 0)
        return -1;
    if (lot_create_in_tx(st, in, items, sampled, n, err) < 0 || tly_store_commit(st, err) < 0) {
        tly_store_rollback(st);
        return -1;
    }
    return 0;
}

static int read_lot_item(const sq_row *r, void *ctx, tly_error *err)
{
    tly_lot_item *li = ctx;
    li->lot_id = sq_col_i64(r, 0);
    li->item_id = sq_col_i64(r, 1);
    li->sampled = (int)sq_col_i64(r, 2);
    sq_col_copy(r, 3, li->verdict, sizeof li->verdict);
    li->judged_by = sq_col_i64(r, 5);
    li->judged_at = sq_col_i64(r, 6);
    return sq_col_dup(r, 4, &li->comment, err);
}

void tly_lot_item_clear(tly_lot_item *li)
{
    if (!li)
        return;
    free(li->comment);
    memset(li, 0, sizeof *li);
}

static void clear_lot_item(void *li)
{
    tly_lot_item_clear(li);
}

void tly_lot_item_list_free(tly_lot_item *list, size_t n)
{
    sq_list_free(list, n, sizeof *list, clear_lot_item);
}

int tly_store_lot_items(tly_store *st, int64_t lot_id, int sampled_only, tly_lot_item **out,
                        size_t *n_out, tly_error *err)
{
    return sq_list(st,
                   "SELECT lot_id, item_id, sampled, COALESCE(verdict, ''), comment, judged_by, judged_at"
                   " FROM lot_items WHERE lot_id = ? AND sampled >= ? ORDER BY item_id",
                   read_lot_item, clear_lot_item, sizeof **out, (void **)out, n_out, err, "ii", lot_id,
                   (int64_t)(sampled_only != 0));
}

int tly_store_lot_verdict(tly_store *st, int64_t lot_id, int64_t item_id, const char *verdict,
                          const char *comment, int64_t by, int64_t now_ms, tly_error *err)
{
    tly_lot l;
    if (tly_store_lot_get(st, lot_id, &l, err) < 0)
        return -1;
    if (strcmp(l.state, "open") != 0)
        return tly_fail(err, TLY_E_CONFLICT, "lot_decided", "lot %lld is already %s", (long long)lot_id, l.state);
    int rc = sq_int64(st,
                      "UPDATE lot_items SET verdict = ?, comment = ?, judged_by = ?, judged_at = ?"
                      " WHERE lot_id = ? AND item_id = ? AND sampled = 1 RETURNING item_id",
                      NULL, err, "ttiiii", verdict, comment, by, now_ms, lot_id, item_id);
    if (rc == 1)
        return tly_fail(err, TLY_E_NOT_FOUND, "not_in_sample", "item %lld is not in the sample of lot %lld",
                        (long long)item_id, (long long)lot_id);
    return rc;
}

int tly_store_lot_decide(tly_store *st, int64_t lot_id, int accepted, int64_t now_ms, tly_error *err)
{
    int rc = sq_int64(st, "UPDATE lots SET state = ?, decided_at = ? WHERE id = ? AND state = 'open' RETURNING id",
                      NULL, err, "tii", accepted ? "accepted" : "rejected", now_ms, lot_id);
    if (rc < 0)
        return -1;
    if (rc == 1)
        return tly_fail(err, TLY_E_CONFLICT, "lot_decided", "lot %lld is already decided", (long long)lot_id);
    if (accepted)
        return sq_exec(st,
                       "INSERT INTO item_events (item_id, project_id, at, actor, kind, detail)"
                       " SELECT id, project_id, ?, 0, 'released', ? FROM items WHERE lot_id = ? AND state = 'done'",
                       err, "iti", now_ms, "{\"lot\":\"accepted\"}", lot_id) < 0 ||
                       sq_exec(st, "UPDATE items SET state = 'released' WHERE lot_id = ? AND state = 'done'", err, "i",
                               lot_id) < 0
                   ? -1
                   : 0;
    char detail[64];
    snprintf(detail, sizeof detail, "{\"reason\":\"lot_rejected\",\"lot_id\":%lld}", (long long)lot_id);
    return sq_exec(st,
                   "INSERT INTO item_events (item_id, project_id, at, actor, kind, detail)"
                   " SELECT id, project_id, ?, 0, 'to_review', ? FROM items WHERE lot_id = ? AND state = 'done'",
                   err, "iti", now_ms, detail, lot_id) < 0 ||
                   sq_exec(st, "UPDATE items SET state = 'review', lot_id = 0 WHERE lot_id = ? AND state = 'done'", err,
                           "i", lot_id) < 0
               ? -1
               : 0;
}

int tly_store_lot_candidates(tly_store *st, int64_t project_id, int64_t limit, int64_t **out,
                             size_t *n_out, tly_error *err)
{
    return sq_list(st,
                   "SELECT id FROM items WHERE project_id = ? AND state = 'done' AND lot_id = 0 ORDER BY id LIMIT ?",
                   sq_read_id, clear_nothing, sizeof **out, (void **)out, n_out, err, "ii", project_id,
                   limit > 0 ? limit : (int64_t)1 << 40);
}
