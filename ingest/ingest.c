/* ingest.c -- the ingest context, job dispatch, and the API form of items. */
#include "ingest/internal.h"
#include "core/fsutil.h"
#include "annotate/work.h"
#include "core/timeutil.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tly_ingest_config_default(tly_ingest_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    tly_probe_opts_default(&cfg->probe);
    cfg->url_timeout_s = 120;
    cfg->url_connect_timeout_s = 10;
    cfg->url_max_redirects = 5;
    cfg->url_max_attempts = 3;
}

int tly_ingest_open(tly_store *st, tly_blob_store *bs, const tly_ingest_config *cfg,
                    tly_ingest **out, tly_error *err)
{
    tly_ingest *ing = calloc(1, sizeof *ing);
    if (!ing)
        return tly_fail(err, TLY_E_INTERNAL, "internal", "out of memory");
    ing->st = st;
    ing->bs = bs;
    ing->cfg = *cfg;
    ing->roots = calloc(cfg->n_import_roots + 1, sizeof *ing->roots);
    for (size_t i = 0; ing->roots && i < cfg->n_import_roots; i++)
        ing->roots[i] = strdup(cfg->import_roots[i]);
    ing->cfg.import_roots = NULL;   /* use ing->roots: the caller's array may go away */
    snprintf(ing->spool_dir, sizeof ing->spool_dir, "%s/spool", cfg->data_dir);
    snprintf(ing->spool_tmp, sizeof ing->spool_tmp, "%s/spool/tmp", cfg->data_dir);
    ing->cfg.data_dir = NULL;
    if (!ing->roots || tly_mkdirs(ing->spool_tmp, 0700) < 0) {
        tly_fail(err, TLY_E_IO, "io_error", "cannot create %s: %s", ing->spool_tmp, strerror(errno));
        tly_ingest_close(ing);
        return -1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        tly_fail(err, TLY_E_INTERNAL, "internal", "libcurl failed to initialise");
        tly_ingest_close(ing);
        return -1;
    }
    *out = ing;
    return 0;
}

void tly_ingest_close(tly_ingest *ing)
{
    if (!ing)
        return;
    for (size_t i = 0; ing->roots && i < ing->cfg.n_import_roots; i++)
        free(ing->roots[i]);
    free(ing->roots);
    free(ing);
    curl_global_cleanup();
}

void tly_ingest_notify(tly_ingest *ing)
{
    if (ing->cfg.on_enqueue)
        ing->cfg.on_enqueue(ing->cfg.on_enqueue_arg);
}

int tly_ingest_run_job(tly_ingest *ing, const tly_job *job, tly_error *err)
{
    if (strcmp(job->kind, TLY_JOB_INGEST_FILE) == 0)
        return tly_ingest_file_job(ing, job, err);
    if (strcmp(job->kind, TLY_JOB_EXPAND_BATCH) == 0)
        return tly_expand_batch_job(ing, job, err);
    return tly_fail(err, TLY_E_INTERNAL, "internal", "ingest cannot run jobs of kind '%s'", job->kind);
}

int tly_ingest_abandon_job(tly_ingest *ing, const tly_job *job, const char *why, tly_error *err)
{
    if (tly_store_begin(ing->st, err) < 0)
        return -1;
    int rc = 0;
    tly_error ignore;
    if (strcmp(job->kind, TLY_JOB_INGEST_FILE) == 0)
        /* CONFLICT (already finished) is fine: then there is nothing to record. */
        (void)tly_store_batch_file_finish(ing->st, job->ref_id, TLY_BF_REJECTED, 0, "processing_failed", why,
                                          &ignore);
    else if (strcmp(job->kind, TLY_JOB_EXPAND_BATCH) == 0)
        rc = tly_store_batch_fail(ing->st, job->ref_id, why, err);
    if (rc < 0 || tly_store_job_fail(ing->st, job->id, why, err) < 0 || tly_store_commit(ing->st, err) < 0) {
        tly_store_rollback(ing->st);
        return -1;
    }
    return 0;
}

json_t *tly_item_json(const tly_item *it, int with_gold)
{
    char created[32];
    tly_format_rfc3339(it->created_at, created, sizeof created);
    /* The worker's view (id, media and its URLs) plus what staff may see. */
    json_t *j = tly_work_item_json(it);
    if (!j)
        return NULL;
    json_object_set_new(j, "project_id", json_integer(it->project_id));
    json_object_set_new(j, "batch_id", json_integer(it->batch_id));
    json_object_set_new(j, "name", json_string(it->name));
    json_object_set_new(j, "sha256", json_string(it->sha256));
    json_object_set_new(j, "size", json_integer(it->size));
    json_object_set_new(j, "state", json_string(it->state));
    json_object_set_new(j, "created_at", json_string(created));
    /* Ingest's near-duplicate verdict (media.quality, imagecheck.h), at the top too. */
    json_t *near = json_object_get(json_object_get(it->media, "quality"), "near_duplicate_of");
    json_object_set_new(j, "near_duplicate_of", json_is_integer(near) ? json_integer(json_integer_value(near)) : json_null());
    if (it->meta)
        json_object_set(j, "meta", it->meta);
    if (with_gold) {
        json_object_set_new(j, "gold", json_boolean(it->gold != NULL));
        if (it->gold)
            json_object_set(j, "gold_answer", it->gold);
    }
    return j;
}
