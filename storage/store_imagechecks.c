/* store_imagechecks.c -- perceptual hashes and quality flags of image items, and the
 * near-duplicate search over them.
 *
 * One image_checks row per image item (migration 7): the 64-bit hash (stored as a
 * signed BIGINT, bit-for-bit), its four 16-bit bands, the flags it was ingested with
 * and the item it nearly duplicates.
 *
 * Near-duplicate search: multi-index hashing (Norouzi, Punjani & Fleet, "Fast search
 * in Hamming space with multi-index hashing", 2012). Split the 64 bits into 4 bands
 * of 16. If two hashes differ in at most d bits, the differences spread over the 4
 * bands, so (pigeonhole) at least one band differs in at most r = floor(d / 4) bits.
 * So every item within d is found among the items that, in some band k, hold a value
 * within Hamming distance r of the query's band k. Each band has an index on
 * (project_id, band_k), and the probe values are enumerated: 1 value per band for
 * r = 0 (d <= 3), 17 for r = 1 (d <= 7, the default d = 6), 137 for r = 2 (d <= 11,
 * the most we allow). Each candidate's full distance is then checked in C, and the
 * nearest (lowest id on ties) wins. The probes go to the database in IN lists of 17
 * (padded by repeating a value), so the default search is 4 indexed statements
 * whatever the project's size. With hashes spread evenly a band value matches about
 * N / 65,536 items: ~15 per probed value for a million items, so a default search
 * reads ~1,000 candidate rows at most, and far fewer while projects are small. Only
 * when something is found is the exact-bytes check made (an item with the same
 * SHA-256 means dedup's duplicate, not a near one).
 * (pHash bits are not perfectly independent, so popular band values do occur; the
 * cost then grows with how many images really look alike.)
 */
#include "storage/sql.h"

#include <stdlib.h>
#include <string.h>

#define BANDS 4
#define BAND_BITS 16
#define PROBES_PER_STATEMENT 17
#define MAX_RADIUS 2   /* 1 + 16 + 120 probe values per band */
#define MAX_PROBES 137

static unsigned band_of(uint64_t hash, int k)
{
    return (unsigned)((hash >> (BAND_BITS * (BANDS - 1 - k))) & 0xFFFFu);
}

int tly_store_image_check_put(tly_store *st, const tly_image_check *in, tly_error *err)
{
    uint64_t h = in->phash;
    return sq_exec(st,
                   "INSERT INTO image_checks (item_id, project_id, batch_id, phash, band0, band1, band2, band3,"
                   " flags, near_duplicate_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                   " ON CONFLICT (item_id) DO NOTHING",
                   err, "iiiiiiiiii", in->item_id, in->project_id, in->batch_id, (int64_t)h,
                   (int64_t)band_of(h, 0), (int64_t)band_of(h, 1), (int64_t)band_of(h, 2),
                   (int64_t)band_of(h, 3), (int64_t)in->flags, in->near_duplicate_of);
}

/* The 16-bit values within Hamming distance radius of v, v first. Returns how many. */
static int probe_values(unsigned v, int radius, unsigned *out)
{
    int n = 0;
    out[n++] = v;
    for (int i = 0; radius >= 1 && i < BAND_BITS; i++) {
        out[n++] = v ^ (1u << i);
        for (int j = i + 1; radius >= 2 && j < BAND_BITS; j++)
            out[n++] = v ^ (1u << i) ^ (1u << j);
    }
    return n;
}

typedef struct {
    uint64_t query;
    int max_distance;
    int64_t best_id;
    int best_distance;
} nearest;

static int take_candidate(const sq_row *r, void *ctx, tly_error *err)
{
    (void)err;
    nearest *nb = ctx;
    int64_t id = sq_col_i64(r, 0);
    int d = __builtin_popcountll(nb->query ^ (uint64_t)sq_col_i64(r, 1));
    if (d <= nb->max_distance &&
        (nb->best_id == 0 || d < nb->best_distance || (d == nb->best_distance && id < nb->best_id))) {
        nb->best_id = id;
        nb->best_distance = d;
    }
    return 0;
}

/* One statement per band: the column name cannot be a parameter. */
#define BAND_SQL(k)                                                                          \
    "SELECT item_id, phash FROM image_checks WHERE project_id = ? AND band" #k               \
    " IN (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
static const char *const band_sql[BANDS] = {BAND_SQL(0), BAND_SQL(1), BAND_SQL(2), BAND_SQL(3)};

int tly_store_image_near(tly_store *st, int64_t project_id, const char *skip_sha256, uint64_t phash,
                         int max_distance, int64_t *item_out, int *distance_out, tly_error *err)
{
    if (max_distance < 0 || max_distance > BANDS * (MAX_RADIUS + 1) - 1)
        return tly_fail(err, TLY_E_INVALID, "invalid", "near-duplicate distance must be 0..%d",
                        BANDS * (MAX_RADIUS + 1) - 1);
    *item_out = 0;
    *distance_out = 0;
    nearest nb = {phash, max_distance, 0, 0};
    int radius = max_distance / BANDS;
    unsigned probes[MAX_PROBES];
    for (int k = 0; k < BANDS; k++) {
        int n = probe_values(band_of(phash, k), radius, probes);
        for (int at = 0; at < n; at += PROBES_PER_STATEMENT) {
            int64_t v[PROBES_PER_STATEMENT];
            for (int i = 0; i < PROBES_PER_STATEMENT; i++)
                v[i] = probes[at + i < n ? at + i : n - 1];
            if (sq_each(st, band_sql[k], take_candidate, &nb, err, "iiiiiiiiiiiiiiiiii", project_id, v[0],
                        v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13],
                        v[14], v[15], v[16]) < 0)
                return -1;
        }
    }
    if (!nb.best_id)
        return 0;
    if (skip_sha256) {   /* the same bytes are a duplicate (dedup's case), not a near one */
        int rc = sq_int64(st, "SELECT id FROM items WHERE project_id = ? AND sha256 = ?", NULL, err, "it",
                          project_id, skip_sha256);
        if (rc <= 0)
            return rc;
    }
    *item_out = nb.best_id;
    *distance_out = nb.best_distance;
    return 1;
}

static int read_counts(const sq_row *r, void *ctx, tly_error *err)
{
    (void)err;
    int64_t *counts = ctx;
    for (int i = 0; i <= TLY_IMAGE_CHECK_BITS; i++)
        counts[i] = sq_col_is_null(r, i) ? 0 : sq_col_i64(r, i);
    return 0;
}

int tly_store_image_check_counts(tly_store *st, int64_t batch_id, int64_t *flagged,
                                 int64_t counts[TLY_IMAGE_CHECK_BITS], tly_error *err)
{
    /* flagged, then files with bit 0, 1, ... set (TLY_IMAGE_CHECK_BITS = 5 terms). */
    int64_t row[TLY_IMAGE_CHECK_BITS + 1] = {0};
    if (sq_each(st,
                "SELECT COUNT(*), SUM(CASE WHEN (flags & 1) <> 0 THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN (flags & 2) <> 0 THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN (flags & 4) <> 0 THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN (flags & 8) <> 0 THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN (flags & 16) <> 0 THEN 1 ELSE 0 END)"
                " FROM image_checks WHERE batch_id = ? AND flags <> 0",
                read_counts, row, err, "i", batch_id) < 0)
        return -1;
    *flagged = row[0];
    memcpy(counts, row + 1, sizeof row - sizeof row[0]);
    return 0;
}

static int read_flagged(const sq_row *r, void *ctx, tly_error *err)
{
    (void)err;
    tly_image_check *c = ctx;
    c->item_id = sq_col_i64(r, 0);
    c->project_id = sq_col_i64(r, 1);
    c->batch_id = sq_col_i64(r, 2);
    c->phash = (uint64_t)sq_col_i64(r, 3);
    c->flags = (unsigned)sq_col_i64(r, 4);
    c->near_duplicate_of = sq_col_i64(r, 5);
    sq_col_copy(r, 6, c->name, sizeof c->name);
    return 0;
}

int tly_store_image_check_flagged(tly_store *st, int64_t batch_id, int64_t after_item_id, int limit,
                                  tly_image_check **out, size_t *n_out, tly_error *err)
{
    return sq_list(st,
                   "SELECT c.item_id, c.project_id, c.batch_id, c.phash, c.flags, c.near_duplicate_of, i.name"
                   " FROM image_checks c JOIN items i ON i.id = c.item_id"
                   " WHERE c.batch_id = ? AND c.flags <> 0 AND c.item_id > ? ORDER BY c.item_id LIMIT ?",
                   read_flagged, NULL, sizeof **out, (void **)out, n_out, err, "iii", batch_id, after_item_id,
                   sq_page_limit(limit));
}

int tly_store_image_check_get(tly_store *st, int64_t item_id, tly_image_check *out, tly_error *err)
{
    return sq_one(st,
                  "SELECT c.item_id, c.project_id, c.batch_id, c.phash, c.flags, c.near_duplicate_of, i.name"
                  " FROM image_checks c JOIN items i ON i.id = c.item_id WHERE c.item_id = ?",
                  read_flagged, NULL, out, sizeof *out, "image check", err, "i", item_id);
}
