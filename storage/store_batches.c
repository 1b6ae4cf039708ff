/* store_batches.c -- batches (one ingest each) and their files with outcomes.
 *
 * A batch's counts (total, pending, accepted, duplicates, rejected) are not stored:
 * every read derives them with a LEFT JOIN + GROUP BY over batch_files, which the
 * (batch_id, state, id) index serves. Stored counters would need an extra write
 * per file outcome and could drift from the rows after a crash; derived ones cannot.
 *
 * A file moves pending -> accepted | duplicate | rejected exactly once: the UPDATE
 * that records its outcome matches only pending rows, so two workers racing on
 * the same file cannot both record one (the loser gets CONFLICT).
 */
#include "storage/sql.h"

#include "core/hash.h"
#include "core/timeutil.h"

#include <stdlib.h>
#include <string.h>

static const char *const bf_state_names[] = {
    [TLY_BF_PENDING] = "pending",
    [TLY_BF_ACCEPTED] = "accepted",
    [TLY_BF_DUPLICATE] = "duplicate",
    [TLY_BF_REJECTED] = "rejected",
};

const char *tly_bf_state_name(tly_bf_state s)
{
    if ((unsigned)s >= sizeof bf_state_names / sizeof bf_state_names[0])
        return "unknown";
    return bf_state_names[s];
}

static tly_bf_state bf_state_parse(const char *name)
{
    for (size_t i = 0; i < sizeof bf_state_names / sizeof bf_state_names[0]; i++)
        if (strcmp(name, bf_state_names[i]) == 0)
            return (tly_bf_state)i;
    return TLY_BF_PENDING;
}

/* ---- batches ------------------------------------------------------------------- */

#define COUNT_STATE(s) "COALESCE(SUM(CASE WHEN f.state = '" s "' THEN 1 ELSE 0 END), 0)"
#define BATCH_SELECT                                                                         \
    "SELECT b.id, b.project_id, b.name, b.kind, b.source, b.closed, b.error, b.created_at," \
    " b.closed_at, COUNT(f.id), " COUNT_STATE("pending") ", " COUNT_STATE("accepted") ", "  \
    COUNT_STATE("duplicate") ", " COUNT_STATE("rejected")                                   \
    " FROM batches b LEFT JOIN batch_files f ON f.batch_id = b.id "

static int read_batch(const sq_row *r, void *ctx, tly_error *err)
{
    tly_batch *b = ctx;
    b->id = sq_col_i64(r, 0);
    b->project_id = sq_col_i64(r, 1);
    sq_col_copy(r, 2, b->name, sizeof b->name);
    sq_col_copy(r, 3, b->kind, sizeof b->kind);
    b->closed = sq_col_i64(r, 5) != 0;
    b->created_at = sq_col_i64(r, 7);
    b->closed_at = sq_col_i64(r, 8);
    b->total = sq_col_i64(r, 9);
    b->pending = sq_col_i64(r, 10);
    b->accepted = sq_col_i64(r, 11);
    b->duplicates = sq_col_i64(r, 12);
    b->rejected = sq_col_i64(r, 13);
    if (sq_col_json(r, 4, &b->source, err) < 0)
        return -1;
    return sq_col_dup(r, 6, &b->error, err);
}

void tly_batch_clear(tly_batch *b)
{
    if (!b)
        return;
    json_decref(b->source);
    free(b->error);
    memset(b, 0, sizeof *b);
}

static void clear_batch(void *b)
{
    tly_batch_clear(b);
}

void tly_batch_list_free(tly_batch *list, size_t n)
{
    sq_list_free(list, n, sizeof *list, clear_batch);
}

int tly_store_batch_create(tly_store *st, int64_t project_id, const char *name,
                           const char *kind, json_t *source, int64_t *id_out, tly_error *err)
{
    tly_batch b;
    tly_error e;
    if (sq_check_str(name, sizeof b.name, 0, "batch name", err) < 0 ||
        sq_check_str(kind, sizeof b.kind, 0, "batch kind", err) < 0)
        return -1;
    if (sq_insert(st,
                 "INSERT INTO batches (project_id, name, kind, source, created_at)"
                 " VALUES (?, ?, ?, ?, ?) RETURNING id",
                 id_out, &e, "ittji", project_id, name, kind, source, tly_now_ms()) < 0)
        return sq_fail_as(err, &e, TLY_E_NOT_FOUND, "not_found", "project %lld not found",
                          (long long)project_id);
    return 0;
}

int tly_store_batch_get(tly_store *st, int64_t id, tly_batch *out, tly_error *err)
{
    return sq_one(st, BATCH_SELECT "WHERE b.id = ? GROUP BY b.id", read_batch, clear_batch, out,
                  sizeof *out, "batch", err, "i", id);
}

int tly_store_batch_get_brief(tly_store *st, int64_t id, tly_batch *out, tly_error *err)
{
    /* Same columns as BATCH_SELECT so read_batch serves both; no join, no source. */
    return sq_one(st,
                  "SELECT b.id, b.project_id, b.name, b.kind, NULL, b.closed, b.error,"
                  " b.created_at, b.closed_at, 0, 0, 0, 0, 0 FROM batches b WHERE b.id = ?",
                  read_batch, clear_batch, out, sizeof *out, "batch", err, "i", id);
}

/* Close, and with a message also mark failed; closed_at keeps the first closing. */
static int close_batch(tly_store *st, int64_t id, const char *message, tly_error *err)
{
    int rc = sq_int64(st,
                      "UPDATE batches SET closed = 1, error = COALESCE(?, error),"
                      " closed_at = CASE WHEN closed = 1 THEN closed_at ELSE ? END"
                      " WHERE id = ? RETURNING id",
                      NULL, err, "tii", message, tly_now_ms(), id);
    return sq_found(rc, "batch", id, err);
}

int tly_store_batch_close(tly_store *st, int64_t id, tly_error *err)
{
    return close_batch(st, id, NULL, err);
}

int tly_store_batch_fail(tly_store *st, int64_t id, const char *message, tly_error *err)
{
    return close_batch(st, id, message ? message : "failed", err);
}

int tly_store_batch_list(tly_store *st, int64_t project_id, int64_t after_id, int limit,
                         tly_batch **out, size_t *n_out, tly_error *err)
{
    return sq_list(st,
                   BATCH_SELECT "WHERE b.project_id = ? AND b.id > ? GROUP BY b.id"
                                " ORDER BY b.id LIMIT ?",
                   read_batch, clear_batch, sizeof **out, (void **)out, n_out, err, "iii",
                   project_id, after_id, sq_page_limit(limit));
}

/* ---- batch files --------------------------------------------------------------- */

#define BF_COLS                                                                      \
    "id, batch_id, name, source_kind, location, sha256, size, gold, meta, state,"   \
    " error_code, error_message, item_id"

static int read_bf(const sq_row *r, void *ctx, tly_error *err)
{
    tly_batch_file *f = ctx;
    char state[16];
    f->id = sq_col_i64(r, 0);
    f->batch_id = sq_col_i64(r, 1);
    sq_col_copy(r, 2, f->name, sizeof f->name);
    sq_col_copy(r, 3, f->source_kind, sizeof f->source_kind);
    sq_col_copy(r, 5, f->sha256, sizeof f->sha256);
    f->size = sq_col_i64(r, 6);
    sq_col_copy(r, 9, state, sizeof state);
    f->state = bf_state_parse(state);
    sq_col_copy(r, 10, f->error_code, sizeof f->error_code);
    f->item_id = sq_col_i64(r, 12);
    if (sq_col_dup(r, 4, &f->location, err) < 0 || sq_col_json(r, 7, &f->gold, err) < 0 ||
        sq_col_json(r, 8, &f->meta, err) < 0)
        return -1;
    return sq_col_dup(r, 11, &f->error_message, err);
}

void tly_batch_file_clear(tly_batch_file *f)
{
    if (!f)
        return;
    free(f->location);
    json_decref(f->gold);
    json_decref(f->meta);
    free(f->error_message);
    memset(f, 0, sizeof *f);
}

static void clear_bf(void *f)
{
    tly_batch_file_clear(f);
}

void tly_batch_file_list_free(tly_batch_file *list, size_t n)
{
    sq_list_free(list, n, sizeof *list, clear_bf);
}

int tly_store_batch_file_add(tly_store *st, const tly_batch_file *in, int64_t *id_out,
                             tly_error *err)
{
    tly_error e;
    if (sq_check_str(in->name, sizeof in->name, 0, "file name", err) < 0 ||
        sq_check_str(in->source_kind, sizeof in->source_kind, 0, "file source kind", err) < 0)
        return -1;
    if (in->sha256[0] && !tly_is_sha256_hex(in->sha256))
        return tly_fail(err, TLY_E_INVALID, "invalid", "file sha256 must be 64 hex digits");
    if (sq_insert(st,
                 "INSERT INTO batch_files (batch_id, name, source_kind, location, sha256, size,"
                 " gold, meta, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                 id_out, &e, "itttti" "jji", in->batch_id, in->name, in->source_kind, in->location,
                 in->sha256, in->size, in->gold, in->meta, tly_now_ms()) < 0) {
        if (e.status == TLY_E_NOT_FOUND)
            return sq_fail_as(err, &e, TLY_E_NOT_FOUND, "not_found", "batch %lld not found",
                              (long long)in->batch_id);
        return sq_fail_as(err, &e, TLY_E_CONFLICT, "file_exists",
                          "batch %lld already has a file named '%s'", (long long)in->batch_id,
                          in->name);
    }
    return 0;
}

int tly_store_batch_file_get(tly_store *st, int64_t id, tly_batch_file *out, tly_error *err)
{
    return sq_one(st, "SELECT " BF_COLS " FROM batch_files WHERE id = ?", read_bf, clear_bf, out,
                  sizeof *out, "batch file", err, "i", id);
}

int tly_store_batch_file_by_location(tly_store *st, const char *source_kind,
                                     const char *location, tly_batch_file *out,
                                     tly_error *err)
{
    return sq_one(st, "SELECT " BF_COLS " FROM batch_files WHERE source_kind = ? AND location = ?",
                  read_bf, clear_bf, out, sizeof *out, "batch file", err, "tt", source_kind, location);
}

int tly_store_batch_file_finish(tly_store *st, int64_t id, tly_bf_state state, int64_t item_id,
                                const char *error_code, const char *error_message,
                                tly_error *err)
{
    tly_batch_file f;
    if (state == TLY_BF_PENDING || (unsigned)state > TLY_BF_REJECTED)
        return tly_fail(err, TLY_E_INVALID, "invalid", "a file can only finish as accepted,"
                                                       " duplicate or rejected");
    if (error_code && sq_check_str(error_code, sizeof f.error_code, 1, "error code", err) < 0)
        return -1;
    int rc = sq_int64(st,
                      "UPDATE batch_files SET state = ?, item_id = ?, error_code = ?,"
                      " error_message = ?, finished_at = ? WHERE id = ? AND state = 'pending'"
                      " RETURNING id",
                      NULL, err, "titti" "i", tly_bf_state_name(state), item_id,
                      error_code ? error_code : "", error_message, tly_now_ms(), id);
    if (rc != 1)
        return rc;
    /* Nothing updated: tell "no such file" from "already finished". */
    rc = sq_int64(st, "SELECT id FROM batch_files WHERE id = ?", NULL, err, "i", id);
    if (rc == 0)
        return tly_fail(err, TLY_E_CONFLICT, "not_pending", "batch file %lld is not pending",
                        (long long)id);
    return sq_found(rc, "batch file", id, err);
}

int tly_store_batch_file_list(tly_store *st, int64_t batch_id, tly_bf_state state,
                              int64_t after_id, int limit, tly_batch_file **out,
                              size_t *n_out, tly_error *err)
{
    return sq_list(st,
                   "SELECT " BF_COLS " FROM batch_files WHERE batch_id = ? AND state = ?"
                   " AND id > ? ORDER BY id LIMIT ?",
                   read_bf, clear_bf, sizeof **out, (void **)out, n_out, err, "itii", batch_id,
                   tly_bf_state_name(state), after_id, sq_page_limit(limit));
}
