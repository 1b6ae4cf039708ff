/* pipeline.c -- the ingest_file job: one file from its source to an item.
 *
 *   1. bring the file into the spool with its SHA-256 (already there for uploads;
 *      copied for server-side paths; downloaded for URLs);
 *   2. probe it (media.h): reject with a per-file code, or learn its metadata and
 *      make its thumbnail / waveform;
 *   3. store previews and the file itself as blobs (idempotent: content-addressed);
 *   4. in one transaction: insert the item (or find the project already has those
 *      bytes: a duplicate), record the file's outcome, mark the job done.
 * A crash before 4 commits leaves the file pending and the job claimable, and
 * redoing 1-3 is harmless; after 4 the file is finished and a re-run does nothing.
 * Uploaded spool files are moved into the blob store by rename, never copied.
 */
#include "ingest/internal.h"
#include "core/fsutil.h"
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
            return 0;
        /* The spool file is gone: an earlier run moved it into the blob store and
         * died before committing. Take the bytes back from there. */
        tly_blob_reader *r = NULL;
        if (tly_blob_open_read(ing->bs, bf->sha256, &r, err) < 0)
            return tly_fail(err, TLY_E_IO, "io_error", "uploaded file %s is missing from the spool and the blob store",
                            bf->location);
        int fd = tly_spool_create_tmp(ing, lf->path, sizeof lf->path, err);
        int rc = fd < 0 ? -1 : 0;
        char buf[1 << 16];
        for (uint64_t off = 0; rc == 0;) {
            ssize_t n = tly_blob_read_at(r, buf, sizeof buf, off);
            if (n < 0 || (n > 0 && tly_write_all(fd, buf, (size_t)n) < 0))
                rc = tly_fail(err, TLY_E_IO, "io_error", "cannot restore %s from the blob store", bf->location);
            if (n <= 0)
                break;
            off += (uint64_t)n;
        }
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

/* Step 4 for a rejected file. */
static int finish_rejected(tly_ingest *ing, const tly_batch_file *bf, const tly_job *job,
                           const tly_error *why, tly_error *err)
{
    if (tly_store_begin(ing->st, err) < 0)
        return -1;
    if (tly_store_batch_file_finish(ing->st, bf->id, TLY_BF_REJECTED, 0, why->code, why->message, err) < 0 ||
        tly_store_job_done(ing->st, job->id, err) < 0 || tly_store_commit(ing->st, err) < 0) {
        tly_store_rollback(ing->st);
        return -1;
    }
    count_file("rejected", 0);
    LOG_DEBUG("ingest", "batch %lld: rejected '%s': %s: %s", (long long)bf->batch_id, bf->name, why->code,
              why->message);
    return 0;
}

/* Steps 2-4 once the file is local. */
static int ingest_local(tly_ingest *ing, const tly_batch_file *bf, const tly_batch *batch,
                        const tly_project *project, const tly_job *job, tly_local_file *lf,
                        tly_error *err)
{
    tly_media_kind expected = strcmp(project->media, "audio") == 0 ? TLY_MEDIA_AUDIO : TLY_MEDIA_IMAGE;
    tly_media_info info;
    tly_buf thumb;
    tly_buf_init(&thumb, 4u << 20);
    json_t *waveform = NULL;
    tly_error why;
    int rc = -1;
    tly_item item = {0};
    if (tly_media_probe_file(lf->path, bf->name, expected, &ing->cfg.probe, &info, &thumb,
                             expected == TLY_MEDIA_AUDIO ? &waveform : NULL, &why) < 0) {
        if (why.status != TLY_E_UNPROCESSABLE) {
            if (err)
                *err = why;
            goto out;
        }
        rc = finish_rejected(ing, bf, job, &why, err);
        goto out;
    }

    /* A manifest's gold answer could only be checked for shape when the batch was
     * made; now that the media is known, check boxes / segments against it. */
    item.media = tly_media_info_json(&info);
    if (bf->gold && tly_gold_validate(project->template_json, bf->gold, item.media, &why) < 0) {
        rc = finish_rejected(ing, bf, job, &why, err);
        goto out;
    }
    if (thumb.len) {
        if (tly_blob_put_buf(ing->bs, thumb.data, thumb.len, item.thumb_sha256, err) < 0)
            goto out;
        tly_counter_add(tly_metrics_counter("tally_ingest_thumbnails_total", "Thumbnails made", ""), 1);
    }
    if (waveform) {
        char *text = tly_json_dump(waveform);
        int wrc = text ? tly_blob_put_buf(ing->bs, text, strlen(text), item.waveform_sha256, err)
                       : tly_fail(err, TLY_E_INTERNAL, "internal", "out of memory");
        free(text);
        if (wrc < 0)
            goto out;
        tly_counter_add(tly_metrics_counter("tally_ingest_waveforms_total", "Waveforms made", ""), 1);
    }
    char stored[65];
    if (tly_blob_put_file(ing->bs, lf->path, lf->sha256, lf->temp, stored, err) < 0)
        goto out;
    if (lf->temp)
        lf->temp = 0;   /* the blob store has taken it */

    item.project_id = batch->project_id;
    item.batch_id = batch->id;
    snprintf(item.name, sizeof item.name, "%s", bf->name);
    memcpy(item.sha256, lf->sha256, sizeof item.sha256);
    item.size = (int64_t)lf->size;
    snprintf(item.state, sizeof item.state, "new");
    item.gold = bf->gold;
    item.meta = bf->meta;
    int64_t item_id = 0;
    if (tly_store_begin(ing->st, err) < 0)
        goto out;
    int ins = tly_store_item_insert(ing->st, &item, &item_id, err);
    if (ins < 0 ||
        tly_store_batch_file_finish(ing->st, bf->id, ins == 1 ? TLY_BF_DUPLICATE : TLY_BF_ACCEPTED, item_id,
                                    NULL, NULL, err) < 0 ||
        tly_store_job_done(ing->st, job->id, err) < 0 || tly_store_commit(ing->st, err) < 0) {
        tly_store_rollback(ing->st);
        goto out;
    }
    count_file(ins == 1 ? "duplicate" : "accepted", ins == 1 ? 0 : lf->size);
    rc = 0;
out:
    item.gold = NULL;   /* borrowed from bf */
    item.meta = NULL;
    json_decref(item.media);
    item.media = NULL;
    tly_buf_free(&thumb);
    json_decref(waveform);
    return rc;
}

int tly_ingest_file_job(tly_ingest *ing, const tly_job *job, tly_error *err)
{
    tly_batch_file bf = {0};
    tly_batch batch = {0};
    tly_project project = {0};
    tly_local_file lf = {0};
    int rc = -1;
    if (tly_store_batch_file_get(ing->st, job->ref_id, &bf, err) < 0) {
        rc = err && err->status == TLY_E_NOT_FOUND ? tly_store_job_done(ing->st, job->id, err) : -1;
        goto out;
    }
    if (bf.state != TLY_BF_PENDING) {   /* finished by an earlier run */
        rc = tly_store_job_done(ing->st, job->id, err);
        goto out;
    }
    if (tly_store_batch_get_brief(ing->st, bf.batch_id, &batch, err) < 0 ||
        tly_store_project_get(ing->st, batch.project_id, &project, err) < 0)
        goto out;
    tly_error why;
    int got = acquire(ing, &bf, job, &lf, &why);
    if (got == 1) {
        if (err)
            *err = why;
        rc = 1;
        goto out;
    }
    if (got < 0) {
        if (why.status == TLY_E_UNPROCESSABLE)
            rc = finish_rejected(ing, &bf, job, &why, err);
        else if (err)
            *err = why;
        goto out;
    }
    rc = ingest_local(ing, &bf, &batch, &project, job, &lf, err);
out:
    /* Temp copies always go; an uploaded spool file only once its outcome committed,
     * since a retry needs it. */
    if (lf.temp && (rc == 0 || strncmp(lf.path, ing->spool_tmp, strlen(ing->spool_tmp)) == 0))
        unlink(lf.path);
    tly_batch_file_clear(&bf);
    tly_batch_clear(&batch);
    tly_project_clear(&project);
    return rc;
}
