/* pipeline.c -- the ingest_file job: files from their sources to items.
 *
 * For each file of a group of jobs (a job thread claims a few at once):
 *   1. bring the file into the spool with its SHA-256 (already there for uploads;
 *      copied for server-side paths; downloaded for URLs);
 *   2. probe it (media.h): reject with a per-file code, or learn its metadata and
 *      make its thumbnail / waveform; for images, judge the quality measures the
 *      probe took from the thumbnail (imagecheck.h) by the project's media_checks
 *      settings: flag them on the item, or reject the file (blank_image, ...);
 * then for the whole group:
 *   3. move the good files into the blob store together (tly_blob_put_files: one
 *      disk sync before the renames and one after, however many files -- group
 *      commit; per-file syncs were most of the time an ingest spent waiting);
 *   4. in one transaction: per file, insert the item with its previews (or find the
 *      project already has those bytes: a duplicate), record the outcome, mark the
 *      job done. Images are first looked up among the project's earlier items by
 *      perceptual hash (tly_store_image_near): a near duplicate is flagged with that
 *      item's id, or rejected (near_duplicate). The lookup is made here, under the
 *      write lock, so files of one group and of concurrent groups see each other;
 *      in reject mode it is also made before step 3 so that a file rejected for an
 *      item committed earlier never reaches the blob store (one rejected in step 4
 *      leaves its blob behind, unreferenced, like a file whose item was never made).
 *      If that transaction fails, each file is recorded in its own, so one bad file
 *      cannot hold back the others.
 * A crash before 4 commits leaves the files pending and their jobs claimable, and
 * redoing 1-3 is harmless (blobs are content-addressed); after 4 the files are
 * finished and a re-run does nothing.
 *
 * Uploads (upload.c) are in the shared blob store before their job exists, so any
 * node can run it: the node that received one probes its spool/<r>.up; another
 * takes a hard link to the blob (local store) or fetches it (S3) into spool/tmp.
 * Step 3 then finds the bytes stored and only drops the local name.
 */
#include "ingest/internal.h"
#include "ingest/imagecheck.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "qa/gold.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void count_file(const char *outcome, uint64_t bytes)
{
    char labels[64];
    snprintf(labels, sizeof labels, "outcome=\"%s\"", outcome);
    tly_counter_add(tly_metrics_counter("tally_ingest_files_total", "Files ingested, by outcome", labels), 1);
    if (bytes)
        tly_counter_add(tly_metrics_counter("tally_ingest_bytes_total", "Bytes of accepted files", ""), bytes);
}

/* Step 1. Returns 0 with *lf set, 1 to retry later, -1 with err: the file is rejected
 * when err->status is TLY_E_UNPROCESSABLE, otherwise the job failed. */
static int acquire(tly_ingest *ing, const tly_batch_file *bf, const tly_job *job,
                   tly_local_file *lf, tly_error *err)
{
    memset(lf, 0, sizeof *lf);
    if (strcmp(bf->source_kind, "spool") == 0) {
        snprintf(lf->path, sizeof lf->path, "%s/%s", ing->spool_dir, bf->location);
        memcpy(lf->sha256, bf->sha256, sizeof lf->sha256);
        lf->size = (uint64_t)bf->size;
        lf->temp = 1;
        if (access(lf->path, F_OK) == 0)
            return 0;   /* received by this node: its local copy */
        /* Received by another node (perhaps one that died since), or moved into the
         * blob store by an earlier run that died before committing: the upload's
         * bytes are in the shared blob store under their hash. A local store gives
         * them as a second name of the blob (no copy); S3 is read into a temp file. */
        tly_error why;
        if (tly_spool_tmp_name(ing, lf->path, sizeof lf->path, err) < 0)
            return -1;
        int linked = tly_blob_link_local(ing->bs, bf->sha256, lf->path, &why);
        if (linked == 0)
            return 0;
        tly_blob_reader *r = NULL;
        if (linked < 0 || tly_blob_open_read(ing->bs, bf->sha256, &r, &why) < 0)
            return tly_fail(err, TLY_E_IO, "io_error", "uploaded file %s is in neither this node's spool nor the blob store: %s",
                            bf->location, why.message);
        /* Ranged GETs on S3: big ones, since each is a round trip. */
        size_t chunk = 1u << 20;
        char *buf = malloc(chunk);
        int fd = buf ? tly_spool_create_tmp(ing, lf->path, sizeof lf->path, err) : -1;
        int rc = fd < 0 ? -1 : 0;
        if (!buf)
            tly_fail(err, TLY_E_INTERNAL, "internal", "out of memory");
        for (uint64_t off = 0; rc == 0;) {
            ssize_t n = tly_blob_read_at(r, buf, chunk, off);
            if (n < 0 || (n > 0 && tly_write_all(fd, buf, (size_t)n) < 0))
                rc = tly_fail(err, TLY_E_IO, "io_error", "cannot fetch %s from the blob store", bf->location);
            if (n <= 0)
                break;
            off += (uint64_t)n;
        }
        if (rc == 0 && (uint64_t)bf->size != tly_blob_reader_size(r))
            rc = tly_fail(err, TLY_E_IO, "io_error", "uploaded file %s: the blob store has %llu bytes, not %lld",
                          bf->location, (unsigned long long)tly_blob_reader_size(r), (long long)bf->size);
        free(buf);
        if (fd >= 0)
            close(fd);
        tly_blob_reader_close(r);
        if (rc < 0 && fd >= 0)
            unlink(lf->path);
        return rc;
    }
    if (strcmp(bf->source_kind, "path") == 0) {
        char real[PATH_MAX];
        if (access(bf->location, F_OK) != 0)
            return tly_fail(err, TLY_E_UNPROCESSABLE, "not_found", "no such file: %s", bf->location);
        if (tly_path_within_roots(bf->location, (const char *const *)ing->roots, ing->cfg.n_import_roots,
                                  real, sizeof real) < 0)
            return tly_fail(err, TLY_E_UNPROCESSABLE, "path_not_allowed",
                            "resolves outside the import roots (a symlink pointing out?)");
        return tly_spool_copy_in(ing, real, lf, err);
    }
    if (strcmp(bf->source_kind, "url") == 0) {
        int rc = tly_fetch_url(ing, bf->location, lf, err);
        if (rc == 1 && job->attempts >= ing->cfg.url_max_attempts)
            return -1;   /* out of retries: err already says why; reject */
        return rc;
    }
    return tly_fail(err, TLY_E_INTERNAL, "internal", "unknown source kind '%s'", bf->source_kind);
}

/* One file of a group, from claim to outcome. */
typedef struct {
    const tly_job *job;
    enum { W_FINISHED, W_RETRY, W_FAILED, W_REJECT, W_READY, W_STORED } state;
    tly_error why;             /* W_RETRY / W_FAILED / W_REJECT */
    tly_batch_file bf;
    tly_project project;
    int64_t project_id;
    tly_local_file lf;
    tly_item item;
    tly_buf thumb;
    char *waveform_text;
    int inserted;              /* set while recording: 0 new item, 1 duplicate */
    int has_measures;          /* an image: measures, checks and quality_flags are set */
    tly_image_measures measures;
    tly_image_check_settings checks;
    unsigned quality_flags;    /* TLY_IMAGE_* quality bits (flag mode) */
    int near_rejected;         /* set while recording: rejected as a near duplicate */
} file_work;

static void work_clear(file_work *w)
{
    tly_batch_file_clear(&w->bf);
    tly_project_clear(&w->project);
    json_decref(w->item.media);
    w->item.media = NULL;
    tly_buf_free(&w->thumb);
    free(w->waveform_text);
    w->waveform_text = NULL;
}

static void set_error(file_work *w, int state, const tly_error *why)
{
    w->state = state;
    w->why = *why;
}

/* Step 2 for an image: quality flags by the project's settings (a rejection fills err
 * with TLY_E_UNPROCESSABLE), media.quality on the item, and in near-duplicate reject
 * mode an early look for an earlier item of the project with a close hash. */
static int check_image(tly_ingest *ing, file_work *w, const tly_image_measures *m, tly_error *err)
{
    tly_image_check_settings_from_workflow(w->project.workflow, &w->checks);
    w->measures = *m;
    w->has_measures = 1;
    w->quality_flags = tly_image_quality_flags(m, &w->checks);
    if (w->quality_flags && w->checks.quality == TLY_CHECK_REJECT)
        return tly_image_quality_reject(m, w->quality_flags, &w->checks, err);
    json_t *q = tly_image_quality_json(m, w->quality_flags, &w->checks);
    if (!q || json_object_set_new(w->item.media, "quality", q) < 0)
        return tly_fail(err, TLY_E_INTERNAL, "internal", "out of memory");
    if (w->checks.near_duplicate != TLY_CHECK_REJECT)
        return 0;
    int64_t near_id = 0;
    int distance = 0;
    int found = tly_store_image_near(ing->st, w->project_id, w->lf.sha256, m->phash,
                                     w->checks.near_duplicate_distance, &near_id, &distance, err);
    if (found <= 0)
        return found;
    return tly_fail(err, TLY_E_UNPROCESSABLE, "near_duplicate",
                    "near duplicate of item %lld (perceptual hashes differ in %d of 64 bits, limit %d)",
                    (long long)near_id, distance, w->checks.near_duplicate_distance);
}

/* Step 4 for an image, before its item is inserted: look for a near duplicate among
 * the project's items. Returns 0 (w->near_rejected set if the file is to be
 * rejected, media marked if flagged) or -1. */
static int find_near_duplicate(tly_ingest *ing, file_work *w, int64_t *near_id, tly_error *err)
{
    int distance = 0;
    *near_id = 0;
    tly_image_quality_mark_near_duplicate(w->item.media, 0, 0);   /* a retry starts afresh */
    if (w->checks.near_duplicate == TLY_CHECK_OFF)
        return 0;
    int found = tly_store_image_near(ing->st, w->project_id, w->item.sha256, w->measures.phash,
                                     w->checks.near_duplicate_distance, near_id, &distance, err);
    if (found < 0)
        return -1;
    if (found == 0)
        return 0;
    if (w->checks.near_duplicate == TLY_CHECK_REJECT) {
        w->near_rejected = 1;
        tly_fail(&w->why, TLY_E_UNPROCESSABLE, "near_duplicate",
                 "near duplicate of item %lld (perceptual hashes differ in %d of 64 bits, limit %d)",
                 (long long)*near_id, distance, w->checks.near_duplicate_distance);
        return 0;
    }
    tly_image_quality_mark_near_duplicate(w->item.media, *near_id, distance);
    return 0;
}

/* Steps 1-2 for one file. */
static void prepare(tly_ingest *ing, file_work *w)
{
    tly_error e;
    tly_batch batch = {0};
    tly_buf_init(&w->thumb, 4u << 20);
    if (tly_store_batch_file_get(ing->st, w->job->ref_id, &w->bf, &e) < 0) {
        if (e.status == TLY_E_NOT_FOUND)
            w->state = W_FINISHED;   /* its batch is gone: nothing to do */
        else
            set_error(w, W_RETRY, &e);
        return;
    }
    if (w->bf.state != TLY_BF_PENDING) {   /* finished by an earlier run */
        w->state = W_FINISHED;
        return;
    }
    if (tly_store_batch_get_brief(ing->st, w->bf.batch_id, &batch, &e) < 0 ||
        tly_store_project_get(ing->st, batch.project_id, &w->project, &e) < 0) {
        tly_batch_clear(&batch);
        set_error(w, W_RETRY, &e);
        return;
    }
    w->project_id = batch.project_id;
    tly_batch_clear(&batch);

    int got = acquire(ing, &w->bf, w->job, &w->lf, &e);
    if (got != 0) {
        set_error(w, got == 1 ? W_RETRY : e.status == TLY_E_UNPROCESSABLE ? W_REJECT : W_FAILED, &e);
        return;
    }
    tly_media_kind expected = strcmp(w->project.media, "audio") == 0 ? TLY_MEDIA_AUDIO : TLY_MEDIA_IMAGE;
    tly_media_info info;
    json_t *waveform = NULL;
    if (tly_media_probe_file(w->lf.path, w->bf.name, expected, &ing->cfg.probe, &info, &w->thumb,
                             expected == TLY_MEDIA_AUDIO ? &waveform : NULL, &e) < 0) {
        set_error(w, e.status == TLY_E_UNPROCESSABLE ? W_REJECT : W_FAILED, &e);
        return;
    }
    tly_item *it = &w->item;
    it->media = tly_media_info_json(&info);
    if (info.has_measures && it->media && check_image(ing, w, &info.measures, &e) < 0) {
        set_error(w, e.status == TLY_E_UNPROCESSABLE ? W_REJECT : W_RETRY, &e);
        return;
    }
    /* A manifest's gold answer could only be checked for shape when the batch was
     * made; now that the media is known, check boxes / segments against it. */
    if (w->bf.gold && tly_gold_validate(w->project.template_json, w->bf.gold, it->media, &e) < 0) {
        json_decref(waveform);
        set_error(w, W_REJECT, &e);
        return;
    }
    if (w->thumb.len)
        tly_sha256_hex(w->thumb.data, w->thumb.len, it->thumb_sha256);
    if (waveform) {
        w->waveform_text = tly_json_dump(waveform);
        json_decref(waveform);
        if (!w->waveform_text) {
            tly_fail(&e, TLY_E_INTERNAL, "internal", "out of memory");
            set_error(w, W_RETRY, &e);
            return;
        }
        tly_sha256_hex(w->waveform_text, strlen(w->waveform_text), it->waveform_sha256);
    }
    it->project_id = w->project_id;
    it->batch_id = w->bf.batch_id;
    snprintf(it->name, sizeof it->name, "%s", w->bf.name);
    memcpy(it->sha256, w->lf.sha256, sizeof it->sha256);
    it->size = (int64_t)w->lf.size;
    /* A manifest's test question waits in state 'gold', never walked as work. */
    snprintf(it->state, sizeof it->state, "%s", w->bf.gold ? "gold" : "new");
    w->state = W_READY;
}

/* Step 3 for the group. */
static void store_files(tly_ingest *ing, file_work *works, size_t n)
{
    const char *paths[TLY_INGEST_GROUP_MAX], *shas[TLY_INGEST_GROUP_MAX];
    int results[TLY_INGEST_GROUP_MAX];
    tly_error errs[TLY_INGEST_GROUP_MAX];
    size_t m = 0, idx[TLY_INGEST_GROUP_MAX];
    for (size_t i = 0; i < n; i++)
        if (works[i].state == W_READY) {
            paths[m] = works[i].lf.path;
            shas[m] = works[i].lf.sha256;
            idx[m++] = i;
        }
    if (m == 0)
        return;
    tly_blob_put_files(ing->bs, m, paths, shas, results, errs);
    for (size_t k = 0; k < m; k++) {
        file_work *w = &works[idx[k]];
        if (results[k] == 0) {
            w->state = W_STORED;
            w->lf.temp = 0;   /* the blob store has taken it */
        } else {
            set_error(w, W_RETRY, &errs[k]);
        }
    }
}

/* Step 4 for one file, inside the caller's transaction. */
static int record(tly_ingest *ing, file_work *w, tly_error *err)
{
    tly_store *st = ing->st;
    if (w->state == W_REJECT) {
        if (tly_store_batch_file_finish(st, w->bf.id, TLY_BF_REJECTED, 0, w->why.code, w->why.message, err) < 0)
            return -1;
    } else if (w->state == W_STORED) {
        int64_t item_id = 0, near_id = 0;
        w->near_rejected = 0;
        if (w->has_measures && find_near_duplicate(ing, w, &near_id, err) < 0)
            return -1;
        if (w->near_rejected) {
            if (tly_store_batch_file_finish(st, w->bf.id, TLY_BF_REJECTED, 0, w->why.code, w->why.message, err) < 0)
                return -1;
            return tly_store_job_done(st, w->job->id, err);
        }
        w->item.gold = w->bf.gold;   /* borrowed for the insert */
        w->item.meta = w->bf.meta;
        w->inserted = tly_store_item_insert(st, &w->item, &item_id, err);
        w->item.gold = NULL;
        w->item.meta = NULL;
        if (w->inserted < 0)
            return -1;
        if (w->inserted == 0 &&
            ((w->thumb.len && tly_store_preview_put(st, item_id, "thumbnail", w->item.thumb_sha256, w->thumb.data,
                                                     w->thumb.len, err) < 0) ||
             (w->waveform_text && tly_store_preview_put(st, item_id, "waveform", w->item.waveform_sha256,
                                                        w->waveform_text, strlen(w->waveform_text), err) < 0)))
            return -1;
        if (w->inserted == 0 && w->has_measures) {
            tly_image_check check = {.item_id = item_id, .project_id = w->project_id, .batch_id = w->bf.batch_id,
                                     .phash = w->measures.phash, .flags = w->quality_flags,
                                     .near_duplicate_of = near_id};
            if (near_id)
                check.flags |= TLY_IMAGE_NEAR_DUPLICATE;
            if (tly_store_image_check_put(st, &check, err) < 0)
                return -1;
        }
        if (tly_store_batch_file_finish(st, w->bf.id, w->inserted == 1 ? TLY_BF_DUPLICATE : TLY_BF_ACCEPTED,
                                        item_id, NULL, NULL, err) < 0)
            return -1;
    } else if (w->state != W_FINISHED) {
        return 0;   /* retried or failed: the runner deals with the job */
    }
    return tly_store_job_done(st, w->job->id, err);
}

static int record_all(tly_ingest *ing, file_work *works, size_t n, tly_error *err)
{
    if (tly_store_begin(ing->st, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (record(ing, &works[i], err) < 0) {
            tly_store_rollback(ing->st);
            return -1;
        }
    if (tly_store_commit(ing->st, err) < 0) {
        tly_store_rollback(ing->st);
        return -1;
    }
    return 0;
}

/* Metrics and clean-up of a file whose outcome is committed. */
static void after_commit(tly_ingest *ing, file_work *w)
{
    if (w->state == W_REJECT || (w->state == W_STORED && w->near_rejected)) {
        count_file("rejected", 0);
        LOG_DEBUG("ingest", "batch %lld: rejected '%s': %s: %s", (long long)w->bf.batch_id, w->bf.name, w->why.code,
                  w->why.message);
    } else if (w->state == W_STORED) {
        count_file(w->inserted == 1 ? "duplicate" : "accepted", w->inserted == 1 ? 0 : w->lf.size);
        if (w->inserted == 0 && w->thumb.len)
            tly_counter_add(tly_metrics_counter("tally_ingest_thumbnails_total", "Thumbnails made", ""), 1);
        if (w->inserted == 0 && w->waveform_text)
            tly_counter_add(tly_metrics_counter("tally_ingest_waveforms_total", "Waveforms made", ""), 1);
    }
}

int tly_ingest_file_jobs(tly_ingest *ing, const tly_job *jobs, size_t n, int *results,
                         tly_error *errs)
{
    /* Bounded groups keep the arrays below small. */
    if (n > TLY_INGEST_GROUP_MAX) {
        tly_ingest_file_jobs(ing, jobs, TLY_INGEST_GROUP_MAX, results, errs);
        return tly_ingest_file_jobs(ing, jobs + TLY_INGEST_GROUP_MAX, n - TLY_INGEST_GROUP_MAX,
                                    results + TLY_INGEST_GROUP_MAX, errs + TLY_INGEST_GROUP_MAX);
    }
    file_work *works = calloc(n ? n : 1, sizeof *works);
    if (!works) {
        for (size_t i = 0; i < n; i++) {
            results[i] = 1;
            tly_fail(&errs[i], TLY_E_INTERNAL, "internal", "out of memory");
        }
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        works[i].job = &jobs[i];
        prepare(ing, &works[i]);
    }
    store_files(ing, works, n);

    tly_error terr;
    int committed = record_all(ing, works, n, &terr) == 0;
    for (size_t i = 0; i < n; i++) {
        file_work *w = &works[i];
        int done = w->state == W_FINISHED || w->state == W_REJECT || w->state == W_STORED;
        if (done && !committed) {
            /* The group's transaction failed: record this file alone. */
            tly_error e;
            if (tly_store_begin(ing->st, &e) < 0 || record(ing, w, &e) < 0 || tly_store_commit(ing->st, &e) < 0) {
                tly_store_rollback(ing->st);
                set_error(w, W_RETRY, &e);
                done = 0;
            }
        }
        if (done)
            after_commit(ing, w);
        results[i] = done ? 0 : w->state == W_RETRY ? 1 : -1;
        if (!done)
            errs[i] = w->why;
        /* Temp copies always go; an uploaded spool file only once its outcome
         * committed, since a retry needs it. */
        if (w->lf.temp && (done || strncmp(w->lf.path, ing->spool_tmp, strlen(ing->spool_tmp)) == 0))
            unlink(w->lf.path);
        work_clear(w);
    }
    free(works);
    return 0;
}

int tly_ingest_file_job(tly_ingest *ing, const tly_job *job, tly_error *err)
{
    int result = -1;
    tly_error e;
    tly_ingest_file_jobs(ing, job, 1, &result, &e);
    if (result != 0 && err)
        *err = e;
    return result;
}
