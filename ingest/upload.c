/* upload.c -- streaming one uploaded file into an open upload batch.
 *
 * The HTTP layer hands us the body chunk by chunk; we append to a spool temp file and
 * hash as we go, so no upload is ever held in memory. finish() puts the bytes into the
 * blob store under their SHA-256 and only then records the batch file and its ingest
 * job in one transaction: once the client gets 201 the file survives a crash of this
 * node, and -- because the ingest job may be claimed by any node sharing the store,
 * or finished by another after this one died -- every node can get the bytes.
 *
 * The spool keeps spool/<r>.up, a second name (hard link) of the temp file made
 * before it is handed to the blob store, as this node's local copy: the ingest job,
 * usually run here, probes it without a download. With a local blob store on the
 * spool's file system both names are the one inode that was renamed into the store,
 * so a single-node upload still costs no copy of its bytes. The .up file is only a
 * cache now (pipeline.c's acquire falls back to the blob store when it is missing),
 * but one that is there is trusted, so the file is fsync'ed before it gets that name
 * (its directory entry is not: losing it only costs a download).
 * Until the commit a crash leaves a temp file or an .up without a finished row, which
 * start-up recovery deletes, and perhaps an unreferenced blob.
 */
#include "ingest/internal.h"
#include "core/fsutil.h"
#include "core/hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tly_upload {
    tly_ingest *ing;
    int64_t batch_id;
    char name[256];
    char tmp_path[PATH_MAX];
    int fd;
    tly_sha256 *hash;
    uint64_t size;
};

static int batch_accepts_uploads(tly_ingest *ing, int64_t batch_id, tly_error *err)
{
    tly_batch b = {0};
    if (tly_store_batch_get_brief(ing->st, batch_id, &b, err) < 0)
        return -1;
    int rc = 0;
    if (strcmp(b.kind, "upload") != 0)
        rc = tly_fail(err, TLY_E_CONFLICT, "not_upload_batch", "batch %lld takes no uploads (its source is '%s')",
                      (long long)batch_id, b.kind);
    else if (b.closed)
        rc = tly_fail(err, TLY_E_CONFLICT, "batch_closed", "batch %lld is closed", (long long)batch_id);
    tly_batch_clear(&b);
    return rc;
}

int tly_upload_begin(tly_ingest *ing, int64_t batch_id, const char *name,
                     int64_t declared_size, tly_upload **out, tly_error *err)
{
    if (!tly_is_safe_filename(name))
        return tly_fail(err, TLY_E_INVALID, "invalid_name",
                        "file name must be 1-255 bytes with no '/', '\\' or control characters");
    uint64_t cap = ing->cfg.probe.max_bytes;
    if (cap && declared_size > 0 && (uint64_t)declared_size > cap)
        return tly_fail(err, TLY_E_TOO_LARGE, "too_large", "file of %lld bytes is over the %llu-byte limit",
                        (long long)declared_size, (unsigned long long)cap);
    if (batch_accepts_uploads(ing, batch_id, err) < 0)
        return -1;
    tly_upload *up = calloc(1, sizeof *up);
    if (!up)
        return tly_fail(err, TLY_E_INTERNAL, "internal", "out of memory");
    up->ing = ing;
    up->batch_id = batch_id;
    snprintf(up->name, sizeof up->name, "%s", name);
    up->hash = tly_sha256_new();
    up->fd = tly_spool_create_tmp(ing, up->tmp_path, sizeof up->tmp_path, err);
    if (up->fd < 0 || !up->hash) {
        int no_memory = up->fd >= 0;   /* otherwise err already says why */
        tly_upload_abort(up);
        return no_memory ? tly_fail(err, TLY_E_INTERNAL, "internal", "out of memory") : -1;
    }
    *out = up;
    return 0;
}

int tly_upload_write(tly_upload *up, const void *data, size_t len, tly_error *err)
{
    uint64_t cap = up->ing->cfg.probe.max_bytes;
    if (cap && up->size + len > cap)
        return tly_fail(err, TLY_E_TOO_LARGE, "too_large", "file is over the %llu-byte limit",
                        (unsigned long long)cap);
    if (tly_write_all(up->fd, data, len) < 0)
        return tly_fail(err, TLY_E_IO, "io_error", "spool write failed: %s", strerror(errno));
    tly_sha256_update(up->hash, data, len);
    up->size += len;
    return 0;
}

void tly_upload_abort(tly_upload *up)
{
    if (!up)
        return;
    if (up->fd >= 0)
        close(up->fd);
    if (up->tmp_path[0])
        unlink(up->tmp_path);
    tly_sha256_free(up->hash);
    free(up);
}

int tly_upload_finish(tly_upload *up, json_t **out, tly_error *err)
{
    tly_ingest *ing = up->ing;
    char sha[65], final_name[64], final_path[PATH_MAX];
    /* The bytes reach the disk before any name promises them: the .up below is
     * trusted after a restart, and after a power failure an unsynced file may come
     * back with the right size and zeros inside. */
    int fd = up->fd;
    up->fd = -1;
    if (fsync(fd) < 0) {
        close(fd);
        tly_fail(err, TLY_E_IO, "io_error", "fsync failed: %s", strerror(errno));
        tly_upload_abort(up);
        return -1;
    }
    close(fd);
    tly_sha256_finish(up->hash, sha);
    up->hash = NULL;
    /* The spool name reuses the temp file's random part: unique, and not guessable. */
    const char *base = tly_basename(up->tmp_path);
    snprintf(final_name, sizeof final_name, "%.*s.up", (int)(strlen(base) - 4), base);
    snprintf(final_path, sizeof final_path, "%s/%s", ing->spool_dir, final_name);
    if (link(up->tmp_path, final_path) < 0) {
        tly_fail(err, TLY_E_IO, "io_error", "cannot keep the upload in the spool: %s", strerror(errno));
        tly_upload_abort(up);
        return -1;
    }
    /* Moved, not copied: the local store renames the temp file into place, S3
     * uploads it and drops the temp name. Either way the .up name stays. */
    if (tly_blob_put_file(ing->bs, up->tmp_path, sha, 1, NULL, err) < 0) {
        unlink(final_path);
        tly_upload_abort(up);
        return -1;
    }
    up->tmp_path[0] = '\0';

    tly_batch_file bf = {0};
    bf.batch_id = up->batch_id;
    snprintf(bf.name, sizeof bf.name, "%s", up->name);
    snprintf(bf.source_kind, sizeof bf.source_kind, "spool");
    bf.location = final_name;
    memcpy(bf.sha256, sha, sizeof sha);
    bf.size = (int64_t)up->size;
    int64_t file_id = 0;
    /* Re-check the batch inside the transaction: it may have been closed while the
     * body was streaming. */
    if (tly_store_begin(ing->st, err) < 0)
        goto fail;
    if (batch_accepts_uploads(ing, up->batch_id, err) < 0 ||
        tly_store_batch_file_add(ing->st, &bf, &file_id, err) < 0 ||
        tly_store_job_enqueue(ing->st, TLY_JOB_INGEST_FILE, file_id, NULL, NULL, err) < 0 ||
        tly_store_commit(ing->st, err) < 0) {
        tly_store_rollback(ing->st);
        goto fail;
    }
    tly_ingest_notify(ing);
    *out = json_pack("{s:I,s:s,s:I,s:s}", "file_id", (json_int_t)file_id, "name", up->name, "size",
                     (json_int_t)up->size, "sha256", sha);
    free(up);
    return 0;
fail:
    unlink(final_path);
    tly_upload_abort(up);
    return -1;
}
