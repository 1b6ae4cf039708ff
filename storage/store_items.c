/* store_items.c -- items: the units of labeling work, one per distinct blob.
 *
 * Deduplication is the database's job, not a check-then-insert in C: the insert is
 * INSERT ... ON CONFLICT (project_id, sha256) DO NOTHING RETURNING id, so two
 * workers ingesting the same bytes at once get one item between them, and the
 * loser learns the winner's id from a follow-up SELECT.
 */
#include "storage/sql.h"

#include "core/hash.h"
#include "core/timeutil.h"

#include <stdlib.h>
#include <string.h>

#define ITEM_COLS                                                                   \
    "id, project_id, batch_id, name, sha256, size, state, media, thumb_sha256,"    \
    " waveform_sha256, gold, meta, created_at"

static int read_item(const sq_row *r, void *ctx, tly_error *err)
{
    tly_item *it = ctx;
    it->id = sq_col_i64(r, 0);
    it->project_id = sq_col_i64(r, 1);
    it->batch_id = sq_col_i64(r, 2);
    sq_col_copy(r, 3, it->name, sizeof it->name);
    sq_col_copy(r, 4, it->sha256, sizeof it->sha256);
    it->size = sq_col_i64(r, 5);
    sq_col_copy(r, 6, it->state, sizeof it->state);
    sq_col_copy(r, 8, it->thumb_sha256, sizeof it->thumb_sha256);
    sq_col_copy(r, 9, it->waveform_sha256, sizeof it->waveform_sha256);
    it->created_at = sq_col_i64(r, 12);
    if (sq_col_json(r, 7, &it->media, err) < 0 || sq_col_json(r, 10, &it->gold, err) < 0)
        return -1;
    return sq_col_json(r, 11, &it->meta, err);
}

void tly_item_clear(tly_item *it)
{
    if (!it)
        return;
    json_decref(it->media);
    json_decref(it->gold);
    json_decref(it->meta);
    memset(it, 0, sizeof *it);
}

static void clear_item(void *it)
{
    tly_item_clear(it);
}

void tly_item_list_free(tly_item *list, size_t n)
{
    sq_list_free(list, n, sizeof *list, clear_item);
}

static int check_item(const tly_item *in, const char *state, tly_error *err)
{
    if (sq_check_str(in->name, sizeof in->name, 0, "item name", err) < 0 ||
        sq_check_str(state, sizeof in->state, 0, "item state", err) < 0)
        return -1;
    if (!tly_is_sha256_hex(in->sha256))
        return tly_fail(err, TLY_E_INVALID, "invalid", "item sha256 must be 64 hex digits");
    if ((in->thumb_sha256[0] && !tly_is_sha256_hex(in->thumb_sha256)) ||
        (in->waveform_sha256[0] && !tly_is_sha256_hex(in->waveform_sha256)))
        return tly_fail(err, TLY_E_INVALID, "invalid", "preview sha256 must be 64 hex digits");
    return 0;
}

int tly_store_item_insert(tly_store *st, const tly_item *in, int64_t *id_out, tly_error *err)
{
    /* A test question is never walked as work: it waits in its own state. */
    const char *state = in->state[0] ? in->state : in->gold ? "gold" : "new";
    tly_error e;
    int64_t id = 0;
    if (check_item(in, state, err) < 0)
        return -1;
    int rc = sq_int64(st,
                      "INSERT INTO items (project_id, batch_id, name, sha256, size, state, media,"
                      " thumb_sha256, waveform_sha256, gold, meta, created_at)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                      " ON CONFLICT (project_id, sha256) DO NOTHING RETURNING id",
                      &id, &e, "iittit" "jttjji", in->project_id, in->batch_id, in->name,
                      in->sha256, in->size, state, in->media, in->thumb_sha256,
                      in->waveform_sha256, in->gold, in->meta, tly_now_ms());
    if (rc < 0)
        return sq_fail_as(err, &e, TLY_E_NOT_FOUND, "not_found", "project %lld not found",
                          (long long)in->project_id);
    /* A new work item: the project's models pre-label it in the background. */
    if (rc == 0 && strcmp(state, "gold") != 0 && tly_store_queue_prelabel(st, in->project_id, 0, err) < 0)
        return -1;
    if (rc == 1) {   /* a duplicate: find the item that has these bytes */
        rc = sq_int64(st, "SELECT id FROM items WHERE project_id = ? AND sha256 = ?", &id, err,
                      "it", in->project_id, in->sha256);
        if (rc != 0)
            return rc < 0 ? -1 : tly_fail(err, TLY_E_IO, "db_error", "duplicate item vanished");
        rc = 1;
    }
    if (id_out)
        *id_out = id;
    return rc;
}

int tly_store_item_get(tly_store *st, int64_t id, tly_item *out, tly_error *err)
{
    return sq_one(st, "SELECT " ITEM_COLS " FROM items WHERE id = ?", read_item, clear_item, out,
                  sizeof *out, "item", err, "i", id);
}

int tly_store_item_list(tly_store *st, int64_t project_id, const char *state, int64_t after_id,
                        int limit, tly_item **out, size_t *n_out, tly_error *err)
{
    /* Two statements rather than "(? IS NULL OR state = ?)", which would keep the
     * planner from using the (project_id, state, id) index. */
    if (state)
        return sq_list(st,
                       "SELECT " ITEM_COLS " FROM items WHERE project_id = ? AND state = ?"
                       " AND id > ? ORDER BY id LIMIT ?",
                       read_item, clear_item, sizeof **out, (void **)out, n_out, err, "itii",
                       project_id, state, after_id, sq_page_limit(limit));
    return sq_list(st,
                   "SELECT " ITEM_COLS " FROM items WHERE project_id = ? AND id > ?"
                   " ORDER BY id LIMIT ?",
                   read_item, clear_item, sizeof **out, (void **)out, n_out, err, "iii",
                   project_id, after_id, sq_page_limit(limit));
}

int tly_store_item_set_gold(tly_store *st, int64_t id, json_t *gold, tly_error *err)
{
    /* A test question waits in state 'gold'; cleared, it becomes work again. */
    int rc = sq_int64(st,
                      "UPDATE items SET gold = ?, state = CASE WHEN ? = 1 THEN 'gold'"
                      " WHEN state = 'gold' THEN (CASE WHEN judged > 0 THEN 'labeling' ELSE 'new' END)"
                      " ELSE state END WHERE id = ? RETURNING id",
                      NULL, err, "jii", gold, (int64_t)(gold != NULL), id);
    return sq_found(rc, "item", id, err);
}

static int add_count(const sq_row *r, void *ctx, tly_error *err)
{
    char state[32];
    sq_col_copy(r, 0, state, sizeof state);
    if (json_object_set_new(ctx, state, json_integer(sq_col_i64(r, 1))) < 0)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    return 0;
}

int tly_store_item_counts(tly_store *st, int64_t project_id, json_t **out, tly_error *err)
{
    json_t *counts = json_object();
    *out = NULL;
    if (!counts)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    if (sq_each(st,
                "SELECT state, COUNT(*) FROM items WHERE project_id = ? GROUP BY state",
                add_count, counts, err, "i", project_id) < 0) {
        json_decref(counts);
        return -1;
    }
    *out = counts;
    return 0;
}

/* ---- previews --------------------------------------------------------------------- */

struct preview_read {
    tly_buf *out;
    char *sha256;
};

static int read_preview(const sq_row *r, void *ctx, tly_error *err)
{
    struct preview_read *pr = ctx;
    sq_col_copy(r, 0, pr->sha256, 65);
    return sq_col_blob(r, 1, pr->out, err);
}

int tly_store_preview_put(tly_store *st, int64_t item_id, const char *kind, const char *sha256,
                          const void *data, size_t len, tly_error *err)
{
    tly_error e;
    if (!tly_is_sha256_hex(sha256))
        return tly_fail(err, TLY_E_INVALID, "invalid", "preview sha256 must be 64 hex digits");
    if (sq_exec(st, "INSERT INTO previews (item_id, kind, sha256, data) VALUES (?, ?, ?, ?)", &e, "ittb",
                item_id, kind, sha256, data, len) < 0)
        return sq_fail_as(err, &e, TLY_E_CONFLICT, "preview_exists", "item %lld already has a %s",
                          (long long)item_id, kind);
    return 0;
}

int tly_store_preview_get(tly_store *st, int64_t item_id, const char *kind, tly_buf *out,
                          char *sha256, tly_error *err)
{
    struct preview_read pr = {out, sha256};
    int64_t n = sq_each(st, "SELECT sha256, data FROM previews WHERE item_id = ? AND kind = ?", read_preview,
                        &pr, err, "it", item_id, kind);
    if (n < 0)
        return -1;
    if (n == 0)
        return tly_fail(err, TLY_E_NOT_FOUND, "not_found", "item %lld has no %s", (long long)item_id, kind);
    return 0;
}

int tly_store_item_max_id(tly_store *st, int64_t project_id, int64_t *out, tly_error *err)
{
    *out = 0;
    return sq_int64(st, "SELECT COALESCE(MAX(id), 0) FROM items WHERE project_id = ?", out, err, "i", project_id) < 0
               ? -1
               : 0;
}
