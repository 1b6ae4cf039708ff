/* internal.h -- what the files of ingest/ share with each other; not for other folders.
 *
 * Spool layout (DATA/spool):
 *   tmp/<random>.tmp   files being written: uploads in flight, URL downloads, copies of
 *                      server-side files. Never referenced by a row; swept at start-up.
 *   <random>.up        this node's copy of an uploaded file waiting for its ingest_file
 *                      job; referenced by a batch_files row (source_kind "spool",
 *                      location "<random>.up"). The bytes are also in the blob store
 *                      under the row's sha256, where a job on another node finds them
 *                      (upload.c); an .up whose row another node finished is removed
 *                      by this node's start-up recovery.
 */
#ifndef TALLY_INGEST_INTERNAL_H
#define TALLY_INGEST_INTERNAL_H

#include "ingest/ingest.h"

#include <limits.h>

struct tly_ingest {
    tly_store *st;
    tly_blob_store *bs;
    tly_ingest_config cfg;
    char **roots;            /* owned copies of cfg.import_roots */
    char spool_dir[PATH_MAX];
    char spool_tmp[PATH_MAX];
};

/* A local file ready to probe, with its hash. `temp` means ingest owns it and must
 * move it into the blob store or delete it. */
typedef struct {
    char path[PATH_MAX];
    char sha256[65];
    uint64_t size;
    int temp;
} tly_local_file;

/* A fresh random name for a temp file in spool/tmp (not created). 0 or -1. */
int tly_spool_tmp_name(tly_ingest *ing, char *path, size_t pathsz, tly_error *err);
/* Creates a new temp file in spool/tmp; writes its path into path. fd or -1. */
int tly_spool_create_tmp(tly_ingest *ing, char *path, size_t pathsz, tly_error *err);
/* Copies src into a spool temp file while hashing it (size-capped). */
int tly_spool_copy_in(tly_ingest *ing, const char *src, tly_local_file *out, tly_error *err);
/* Downloads url into a spool temp file while hashing it. Returns 0, 1 for a
 * transient failure worth retrying, -1 for a permanent one (err code fetch_failed or
 * too_large). */
int tly_fetch_url(tly_ingest *ing, const char *url, tly_local_file *out, tly_error *err);

/* True if the path has a ".." component (rejected outright for imports). */
int tly_path_has_dotdot(const char *path);

void tly_ingest_notify(tly_ingest *ing);

/* Job bodies (pipeline.c, expand.c). Same return convention as tly_ingest_run_job. */
int tly_ingest_file_job(tly_ingest *ing, const tly_job *job, tly_error *err);
int tly_expand_batch_job(tly_ingest *ing, const tly_job *job, tly_error *err);

#endif
