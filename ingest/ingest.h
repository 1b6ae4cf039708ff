/* ingest.h -- the `collect` step: batches of files from uploads, server-side
 * directories, URL lists and manifests, turned into items.
 *
 * Shape of the pipeline (every arrow is durable before the next starts):
 *
 *   upload PUT ----> media blob (shared) + spool/<r>.up (this node's copy) -->
 *                    batch_file row + ingest_file job  (one transaction)
 *   dir/urls/manifest batch --> expand_batch job --> batch_file rows + ingest_file jobs
 *   ingest_file job: copy/fetch into spool/tmp while hashing -> probe (media.h) ->
 *       thumbnail / waveform blobs -> media blob -> item row + file outcome + job done
 *       (one transaction)
 *
 * Jobs live in the store's job table, so a batch survives a restart: a job whose
 * process died is claimed again and, because each step is idempotent (blobs are
 * content-addressed, a finished file is never processed twice, the final transaction
 * is all-or-nothing), every good file ends up exactly once. tly_ingest_recover()
 * removes temp files of interrupted work at start-up.
 *
 * Callers: server/ (HTTP handlers and the job runner). Nothing here speaks HTTP.
 */
#ifndef TALLY_INGEST_INGEST_H
#define TALLY_INGEST_INGEST_H

#include "core/error.h"
#include "ingest/media.h"
#include "storage/blob.h"
#include "storage/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define TLY_JOB_INGEST_FILE "ingest_file"
#define TLY_JOB_EXPAND_BATCH "expand_batch"
/* Most ingest_file jobs run as one group (tly_ingest_file_jobs). */
#define TLY_INGEST_GROUP_MAX 16

typedef struct {
    const char *data_dir;              /* spool lives in DATA/spool */
    const char *const *import_roots;   /* directories server-side imports may read */
    size_t n_import_roots;
    tly_probe_opts probe;              /* limits and preview sizes */
    long url_timeout_s;                /* whole transfer */
    long url_connect_timeout_s;
    long url_max_redirects;
    int url_max_attempts;              /* transient fetch failures are retried */
    int url_allow_private;             /* fetch from loopback / private / link-local
                                        * addresses too (off: they are refused, so a
                                        * URL list cannot reach internal services) */
    /* Called after jobs are enqueued, so a job runner can wake up; may be NULL. */
    void (*on_enqueue)(void *arg);
    void *on_enqueue_arg;
} tly_ingest_config;

void tly_ingest_config_default(tly_ingest_config *cfg);

typedef struct tly_ingest tly_ingest;

int tly_ingest_open(tly_store *st, tly_blob_store *bs, const tly_ingest_config *cfg,
                    tly_ingest **out, tly_error *err);
void tly_ingest_close(tly_ingest *ing);

/* Start-up: remove temp files of interrupted uploads, fetches and copies, and spool
 * files whose batch file is no longer pending. Call before the job runner starts. */
int tly_ingest_recover(tly_ingest *ing, tly_error *err);
/* While running (any thread, any time): remove this node's copies of uploads
 * (spool/<r>.up) older than min_age_s whose batch file is no longer pending --
 * uploads this node received but another node ingested. They are only a cache
 * (the bytes are in the blob store), so removing one early is harmless. Returns the
 * number removed or -1. */
int tly_ingest_sweep_uploads(tly_ingest *ing, int min_age_s, tly_error *err);

/* body: {"name","source":{"kind":"upload"|"dir"|"urls"|"manifest",...}}. */
int tly_ingest_batch_create(tly_ingest *ing, int64_t project_id, json_t *body,
                            tly_batch *out, tly_error *err);
/* Upload batches only; idempotent. */
int tly_ingest_batch_close(tly_ingest *ing, int64_t batch_id, tly_error *err);
/* The API's batch object, with up to max_errors rejected files ("errors"). */
json_t *tly_ingest_batch_json(tly_ingest *ing, const tly_batch *b, int max_errors,
                              tly_error *err);
const char *tly_batch_state(const tly_batch *b);

/* Streaming upload of one file into an open upload batch. */
typedef struct tly_upload tly_upload;
/* declared_size: the Content-Length if known, else -1 (checked against the limit). */
int tly_upload_begin(tly_ingest *ing, int64_t batch_id, const char *name,
                     int64_t declared_size, tly_upload **out, tly_error *err);
int tly_upload_write(tly_upload *up, const void *data, size_t len, tly_error *err);
/* Durably records the file and queues its processing; frees up (also on failure).
 * *out: {"file_id","name","size","sha256"}. */
int tly_upload_finish(tly_upload *up, json_t **out, tly_error *err);
void tly_upload_abort(tly_upload *up);

/* Runs one claimed job of kind TLY_JOB_INGEST_FILE or TLY_JOB_EXPAND_BATCH.
 * Returns 0 when the job is finished (its completion already recorded in the same
 * transaction as its effects), 1 when it should be retried later (err says why),
 * -1 on failure (err set). */
int tly_ingest_run_job(tly_ingest *ing, const tly_job *job, tly_error *err);

/* Runs n claimed TLY_JOB_INGEST_FILE jobs as one group: their files are made
 * durable together and their outcomes recorded in one transaction (group commit).
 * results[i] follows tly_ingest_run_job's convention for job i, with errs[i] set
 * when it is not 0. Returns 0, or -1 if the group could not be run at all. */
int tly_ingest_file_jobs(tly_ingest *ing, const tly_job *jobs, size_t n, int *results,
                         tly_error *errs);

/* The job runner gave up on a job (too many failed attempts): record that on what
 * the job was about -- its file is rejected with code processing_failed, or its
 * batch fails -- so no batch waits forever. Marks the job failed. */
int tly_ingest_abandon_job(tly_ingest *ing, const tly_job *job, const char *why, tly_error *err);

/* The API's item object; gold is included only when with_gold. New reference. */
json_t *tly_item_json(const tly_item *it, int with_gold);

#endif
