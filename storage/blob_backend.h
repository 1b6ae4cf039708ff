/* blob_backend.h -- the table of functions behind blob.h (internal to storage/).
 *
 * blob.c owns everything that is the same for every backend: URL dispatch, name
 * validation (only 64 lowercase hex digits reach a backend, so no name can walk out
 * of the store), hashing and size limits of streaming writes, copy-while-hashing for
 * tly_blob_put_file. A backend only moves bytes: a "sink" receives a blob's bytes
 * and is committed under a name the caller has already computed; readers give
 * random access. blob_local.c is the file-system backend; blob_s3.c the
 * S3-compatible one (libcurl, SigV4 by sigv4.c).
 */
#ifndef TALLY_STORAGE_BLOB_BACKEND_H
#define TALLY_STORAGE_BLOB_BACKEND_H

#include "core/error.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct tly_blob_backend {
    const char *name;       /* "file" */
    int (*open)(const char *where, void **impl, tly_error *err);
    void (*close)(void *impl);

    /* A sink collects the bytes of one new blob (local: a temp file). commit makes
     * them durable under sha256 (already validated) and frees the sink, on failure
     * too; storing bytes that already exist is a success. */
    int (*sink_new)(void *impl, void **sink, tly_error *err);
    int (*sink_write)(void *sink, const void *data, size_t len, tly_error *err);
    int (*sink_commit)(void *impl, void *sink, const char *sha256, tly_error *err);
    void (*sink_abort)(void *impl, void *sink);

    /* Take a local file whose hash is sha256 as the blob (local: rename), removing
     * the file. Returns 0, -1 on error, or 1 when it cannot take this file (e.g. it
     * is on another file system) and the caller should copy it in. NULL when the
     * backend can never do better than a copy. */
    int (*adopt_file)(void *impl, const char *path, const char *sha256, tly_error *err);
    /* The same for n files at once, so a backend can make them all durable together
     * (local: one sync before the renames, one after). results[i] as adopt_file's
     * return, errs[i] filled where it is -1. NULL: blob.c loops over adopt_file. */
    void (*adopt_files)(void *impl, size_t n, const char *const *paths,
                        const char *const *sha256s, int *results, tly_error *errs);

    int (*exists)(void *impl, const char *sha256, uint64_t *size_out, tly_error *err);
    int (*remove)(void *impl, const char *sha256, tly_error *err);

    int (*reader_open)(void *impl, const char *sha256, void **reader, uint64_t *size_out,
                       tly_error *err);
    ssize_t (*read_at)(void *reader, void *buf, size_t len, uint64_t offset);
    int (*reader_fd)(const void *reader);
    void (*reader_close)(void *reader);
    /* Makes path a new hard link to the blob: 0, 1 when it cannot (path on another
     * file system), -1 (NOT_FOUND when the blob is absent). NULL when the backend
     * keeps no local files. */
    int (*link_to)(void *impl, const char *sha256, const char *path, tly_error *err);

    int (*sweep_tmp)(void *impl, tly_error *err);

    /* Calls fn with the name of every blob in the store, in no particular order,
     * until fn returns < 0 (then that is the result). NULL when the backend cannot
     * list (only a source of tly_blob_copy needs it). */
    int (*list)(void *impl, int (*fn)(const char *sha256, void *arg), void *arg, tly_error *err);

    /* A URL that lets its holder GET the blob for expires_s seconds without
     * credentials, served with content_type. NULL when the backend has none. */
    int (*presign)(void *impl, const char *sha256, long expires_s, const char *content_type, char *out,
                   size_t outsz, tly_error *err);
};

extern const struct tly_blob_backend tly_blob_local_backend;
extern const struct tly_blob_backend tly_blob_s3_backend;   /* blob_s3.c */

#endif
