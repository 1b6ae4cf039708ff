/* store_exports.c -- dataset versions and the walk over released results.
 *
 * An export row is created with its job in one transaction (so a crash can never
 * leave a queued export nobody will run). The walk reads results joined with their
 * items in item-id order, a page at a time, keyset-paginated; the caller holds a
 * read snapshot (tly_store_snapshot_begin) across pages and passes, so every pass
 * sees exactly the same rows however the project moves meanwhile, without holding
 * the write lock: under WAL a reader never blocks writers.
 */
#include "storage/sql.h"

#include "core/timeutil.h"

#include <stdlib.h>
#include <string.h>

#define EXPORT_COLS                                                                             \
    "id, project_id, state, format, params, items, files, bytes, progress, total, sha256, artifact," \
    " artifact_sha256, artifact_size, content_type, error, created_by, created_at, finished_at"

static int read_export(const sq_row *r, void *ctx, tly_error *err)
{
    tly_export_rec *e = ctx;
    e->id = sq_col_i64(r, 0);
    e->project_id = sq_col_i64(r, 1);
    sq_col_copy(r, 2, e->state, sizeof e->state);
    sq_col_copy(r, 3, e->format, sizeof e->format);
    e->items = sq_col_i64(r, 5);
    e->files = sq_col_i64(r, 6);
    e->bytes = sq_col_i64(r, 7);
    e->progress = sq_col_i64(r, 8);
    e->total = sq_col_i64(r, 9);
    sq_col_copy(r, 10, e->sha256, sizeof e->sha256);
    sq_col_copy(r, 11, e->artifact, sizeof e->artifact);
    sq_col_copy(r, 12, e->artifact_sha256, sizeof e->artifact_sha256);
    e->artifact_size = sq_col_i64(r, 13);
    sq_col_copy(r, 14, e->content_type, sizeof e->content_type);
    e->created_by = sq_col_i64(r, 16);
    e->created_at = sq_col_i64(r, 17);
    e->finished_at = sq_col_i64(r, 18);
    if (sq_col_json(r, 4, &e->params, err) < 0 || sq_col_dup(r, 15, &e->error, err) < 0)
        return -1;
    return 0;
}

void tly_export_rec_clear(tly_export_rec *e)
{
    if (!e)
        return;
    json_decref(e->params);
    free(e->error);
    memset(e, 0, sizeof *e);
}

static void clear_export(void *e)
{
    tly_export_rec_clear(e);
}

void tly_export_rec_list_free(tly_export_rec *list, size_t n)
{
    sq_list_free(list, n, sizeof *list, clear_export);
}

int tly_store_export_create(tly_store *st, tly_export_rec *in, tly_error *err)
{
    int64_t now = tly_now_ms();
    if (tly_store_begin(st, err) < 0)
        return -1;
    if (sq_insert(st,
                  "INSERT INTO exports (project_id, state, format, params, created_by, created_at)"
                  " VALUES (?, 'queued', ?, ?, ?, ?) RETURNING id",
                  &in->id, err, "itjii", in->project_id, in->format, in->params, in->created_by, now) < 0 ||
        sq_exec(st,
                "INSERT INTO jobs (kind, ref_id, state, run_after, created_at, updated_at)"
                " VALUES ('export', ?, 'queued', 0, ?, ?)",
                err, "iii", in->id, now, now) < 0 ||
        tly_store_commit(st, err) < 0) {
        tly_store_rollback(st);
        return -1;
    }
    snprintf(in->state, sizeof in->state, "queued");
    in->created_at = now;
    return 0;
}

int tly_store_export_get(tly_store *st, int64_t id, tly_export_rec *out, tly_error *err)
{
    return sq_one(st, "SELECT " EXPORT_COLS " FROM exports WHERE id = ?", read_export, clear_export, out, sizeof *out,
                  "export", err, "i", id);
}

int tly_store_export_list(tly_store *st, int64_t project_id, int64_t after_id, int limit, tly_export_rec **out,
                          size_t *n_out, tly_error *err)
{
    return sq_list(st, "SELECT " EXPORT_COLS " FROM exports WHERE project_id = ? AND id > ? ORDER BY id LIMIT ?",
                   read_export, clear_export, sizeof **out, (void **)out, n_out, err, "iii", project_id, after_id,
                   sq_page_limit(limit));
}

int tly_store_export_progress(tly_store *st, int64_t id, int64_t progress, int64_t total, tly_error *err)
{
    return sq_exec(st, "UPDATE exports SET state = 'running', progress = ?, total = ? WHERE id = ?", err, "iii",
                   progress, total, id);
}

int tly_store_export_finish(tly_store *st, const tly_export_rec *e, tly_error *err)
{
    return sq_exec(st,
                   "UPDATE exports SET state = 'done', items = ?, files = ?, bytes = ?, progress = total, sha256 = ?,"
                   " artifact = ?, artifact_sha256 = ?, artifact_size = ?, content_type = ?, error = NULL,"
                   " finished_at = ? WHERE id = ?",
                   err, "iiitttitii", e->items, e->files, e->bytes, e->sha256, e->artifact, e->artifact_sha256,
                   e->artifact_size, e->content_type, tly_now_ms(), e->id);
}

int tly_store_export_fail(tly_store *st, int64_t id, const char *error, tly_error *err)
{
    return sq_exec(st, "UPDATE exports SET state = 'failed', error = ?, finished_at = ? WHERE id = ?", err, "tii",
                   error, tly_now_ms(), id);
}

/* ---- the walk ------------------------------------------------------------------------- */

struct walk {
    int (*fn)(const tly_export_row *row, void *ctx);
    void *ctx;
    int without_answer;
    int raw_json;   /* answer and detail as text only (export/jsonview.h reads them) */
    /* Items of a project mostly share their media object (one camera, one format):
     * the last one parsed is kept and reused when the text is the same. */
    char media_text[256];
    json_t *media;
};

static int walk_row(const sq_row *r, void *ctx, tly_error *err)
{
    struct walk *w = ctx;
    tly_export_row row = {0};
    row.item_id = sq_col_i64(r, 0);
    row.batch_id = sq_col_i64(r, 1);
    row.name = r->drv->column_text(r->stmt, 2);
    row.sha256 = r->drv->column_text(r->stmt, 3);
    row.size = sq_col_i64(r, 4);
    row.confidence = sq_col_double(r, 7);
    row.method = r->drv->column_text(r->stmt, 8);
    row.judgments = sq_col_i64(r, 10);
    row.updated_at = sq_col_i64(r, 11);
    row.worker_ids = r->drv->column_text(r->stmt, 12);
    if (!row.worker_ids)
        row.worker_ids = "";
    row.split = r->drv->column_text(r->stmt, 13);
    int rc = -1;
    const char *media_text = r->drv->column_text(r->stmt, 5);
    int media_ok = 0;
    if (media_text && w->media && strcmp(media_text, w->media_text) == 0) {
        row.media = json_incref(w->media);
        media_ok = 1;
    } else if (sq_col_json(r, 5, &row.media, err) == 0) {
        media_ok = 1;
        if (media_text && strlen(media_text) < sizeof w->media_text) {
            json_decref(w->media);
            w->media = json_incref(row.media);
            strcpy(w->media_text, media_text);
        }
    }
    if (!w->without_answer)
        row.answer_text = r->drv->column_text(r->stmt, 6);
    row.detail_text = r->drv->column_text(r->stmt, 9);
    if (media_ok && (w->without_answer || w->raw_json || sq_col_json(r, 6, &row.answer, err) == 0) &&
        (w->raw_json || sq_col_json(r, 9, &row.detail, err) == 0))
        rc = w->fn(&row, w->ctx) < 0 ? tly_fail(err, TLY_E_INTERNAL, "aborted", "stopped by the reader") : 0;
    json_decref(row.media);
    json_decref(row.answer);
    json_decref(row.detail);
    return rc;
}

/* The walk's two statements, with "@WORKER_IDS@" where the driver's list aggregate of
 * j.worker_id goes (tly_store_open builds st->sql_export_rows once). Two texts
 * rather than "(? IS NULL OR ...)": each keeps its plan simple. */
const char *const sq_export_rows_template[2] = {
    "SELECT i.id, i.batch_id, i.name, i.sha256, i.size, i.media, r.answer, r.confidence, r.method,"
    " r.detail, r.judgments, r.updated_at,"
    " CASE WHEN ? = 1 THEN (SELECT @WORKER_IDS@ FROM judgments j WHERE j.item_id = i.id"
    "   AND j.excluded IS NULL AND j.gold = 0) END, NULL"
    " FROM results r JOIN items i ON i.id = r.item_id"
    " WHERE r.project_id = ? AND r.item_id > ? AND i.state = ? AND (? = 0 OR i.batch_id = ?)"
    " AND r.confidence >= ? ORDER BY r.item_id LIMIT ?",
    "SELECT i.id, i.batch_id, i.name, i.sha256, i.size, i.media, r.answer, r.confidence, r.method,"
    " r.detail, r.judgments, r.updated_at,"
    " CASE WHEN ? = 1 THEN (SELECT @WORKER_IDS@ FROM judgments j WHERE j.item_id = i.id"
    "   AND j.excluded IS NULL AND j.gold = 0) END, sa.split"
    " FROM results r JOIN items i ON i.id = r.item_id"
    " LEFT JOIN split_assignments sa ON sa.project_id = r.project_id AND sa.split_key = ?"
    "   AND sa.item_id = r.item_id"
    " WHERE r.project_id = ? AND r.item_id > ? AND i.state = ? AND (? = 0 OR i.batch_id = ?)"
    " AND r.confidence >= ? AND (? = 0 OR sa.split IS NULL) ORDER BY r.item_id LIMIT ?",
};

/* Text columns of a row are read in place (no copy per row): the walk is the hot
 * path of an export. */
int64_t tly_store_export_rows(tly_store *st, int64_t project_id, const tly_export_filter *f, int64_t after_item_id,
                              int limit, int (*fn)(const tly_export_row *row, void *ctx), void *ctx,
                              tly_error *err)
{
    struct walk w = {.fn = fn, .ctx = ctx, .without_answer = f->without_answer, .raw_json = f->raw_json};
    int64_t n;
    if (f->split_key)
        n = sq_each(st, st->sql_export_rows[1], walk_row, &w, err, "itiitiifii", (int64_t)(f->with_workers != 0),
                    f->split_key, project_id, after_item_id, f->state ? f->state : "released", f->batch_id,
                    f->batch_id, f->min_confidence, (int64_t)(f->unassigned_only != 0),
                    (int64_t)(limit > 0 ? limit : 1000));
    else
        n = sq_each(st, st->sql_export_rows[0], walk_row, &w, err, "iiitiifi", (int64_t)(f->with_workers != 0),
                    project_id, after_item_id, f->state ? f->state : "released", f->batch_id, f->batch_id,
                    f->min_confidence, (int64_t)(limit > 0 ? limit : 1000));
    json_decref(w.media);
    return n;
}

static int add_split_count(const sq_row *r, void *ctx, tly_error *err)
{
    char cls[256], split[8];
    sq_col_copy(r, 0, cls, sizeof cls);
    sq_col_copy(r, 1, split, sizeof split);
    json_t *c = json_object_get(ctx, cls);
    if (!c) {
        c = json_pack("{s:i,s:i,s:i}", "train", 0, "val", 0, "test", 0);
        if (!c || json_object_set_new(ctx, cls, c) < 0)
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    json_object_set_new(c, split, json_integer(sq_col_i64(r, 2)));
    return 0;
}

int tly_store_split_counts(tly_store *st, int64_t project_id, const char *split_key, json_t **out, tly_error *err)
{
    json_t *o = json_object();
    if (sq_each(st,
                "SELECT class, split, COUNT(*) FROM split_assignments WHERE project_id = ? AND split_key = ?"
                " GROUP BY class, split",
                add_split_count, o, err, "it", project_id, split_key) < 0) {
        json_decref(o);
        return -1;
    }
    *out = o;
    return 0;
}

int tly_store_split_assign(tly_store *st, int64_t project_id, const char *split_key, int64_t item_id,
                           const char *cls, const char *split, tly_error *err)
{
    return sq_exec(st,
                   "INSERT INTO split_assignments (project_id, split_key, item_id, class, split) VALUES (?, ?, ?, ?, ?)"
                   " ON CONFLICT (project_id, split_key, item_id) DO NOTHING",
                   err, "ititt", project_id, split_key, item_id, cls, split);
}

int tly_store_export_count(tly_store *st, int64_t project_id, const tly_export_filter *f, int64_t *out,
                           tly_error *err)
{
    /* Released and done items always have their results row (store_quality.c), so
     * without a confidence filter the items' state index alone counts them: the
     * join cost a fifth of what sqlite3 takes to read the whole export. */
    if (f->min_confidence <= 0)
        return sq_int64(st,
                        "SELECT COUNT(*) FROM items i WHERE i.project_id = ? AND i.state = ?"
                        " AND (? = 0 OR i.batch_id = ?)",
                        out, err, "itii", project_id, f->state ? f->state : "released", f->batch_id,
                        f->batch_id) < 0
                   ? -1
                   : 0;
    return sq_int64(st,
                    "SELECT COUNT(*) FROM results r JOIN items i ON i.id = r.item_id WHERE r.project_id = ?"
                    " AND i.state = ? AND (? = 0 OR i.batch_id = ?) AND r.confidence >= ?",
                    out, err, "itiif", project_id, f->state ? f->state : "released", f->batch_id, f->batch_id,
                    f->min_confidence) < 0
               ? -1
               : 0;
}

int tly_store_snapshot_begin(tly_store *st, tly_error *err)
{
    /* SQLite: a deferred BEGIN takes no lock, the first read fixes the snapshot;
     * PostgreSQL: REPEATABLE READ, fixed at the first statement too. */
    if (sq_exec(st, st->drv->snapshot_begin, err, "") < 0)
        return -1;
    return sq_int64(st, "SELECT COUNT(*) FROM schema_migrations", NULL, err, "") < 0 ? (sq_exec(st, "ROLLBACK", NULL, ""), -1) : 0;
}

void tly_store_snapshot_end(tly_store *st)
{
    tly_error ignore;
    sq_exec(st, "COMMIT", &ignore, "");
}
