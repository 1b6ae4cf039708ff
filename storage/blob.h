/* blob.h -- the blob store: media, thumbnails and waveforms, named by content.
 *
 * A blob's name is the lowercase hex SHA-256 of its bytes, so the same bytes are
 * stored once and a name always means the same content. A blob store has a backend,
 * chosen by URL at open time, that is a table of functions (like Redis's connection
 * types): the local file system, or an S3-compatible object store.
 *
 * Local layout: ROOT/ab/abcd...  (256 fan-out directories), temp files in ROOT/tmp.
 * Writes go to a temp file that is fsync'ed and renamed into place, and the directory
 * is fsync'ed, so a crash never leaves a half blob under a real name; start-up sweeps
 * ROOT/tmp (tly_blob_sweep_tmp).
 *
 * All functions are safe to call from many threads at once.
 */
#ifndef TALLY_STORAGE_BLOB_H
#define TALLY_STORAGE_BLOB_H

#include "core/error.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct tly_blob_store tly_blob_store;

/* url: "file:PATH" or a plain directory path (created if missing), or
 * "s3://BUCKET[/PREFIX]?endpoint=URL&region=R" for an S3-compatible store (see
 * blob_s3.c for every parameter; credentials from the AWS_* environment). */
int tly_blob_open(const char *url, tly_blob_store **out, tly_error *err);
void tly_blob_close(tly_blob_store *bs);
const char *tly_blob_backend_name(const tly_blob_store *bs);   /* "file" */

/* Streaming writer: bytes are hashed as they arrive and commit names the blob.
 * Writing past max_size fails with TLY_E_TOO_LARGE (code "too_large"). */
typedef struct tly_blob_writer tly_blob_writer;
int tly_blob_writer_new(tly_blob_store *bs, uint64_t max_size, tly_blob_writer **out,
                        tly_error *err);
int tly_blob_write(tly_blob_writer *w, const void *data, size_t len, tly_error *err);
/* Makes the blob durable under its hash and frees w (also on failure). */
int tly_blob_writer_commit(tly_blob_writer *w, char sha256_out[65], uint64_t *size_out,
                           tly_error *err);
void tly_blob_writer_abort(tly_blob_writer *w);

/* Store the bytes of a local file. If sha256 is given it must be the file's hash
 * (the caller computed it from the same bytes); otherwise it is computed. With
 * move_ok the backend may take the file itself (rename) instead of copying it;
 * the file is gone afterwards in either case only if move_ok. */
int tly_blob_put_file(tly_blob_store *bs, const char *path, const char *sha256, int move_ok,
                      char sha256_out[65], tly_error *err);
int tly_blob_put_buf(tly_blob_store *bs, const void *data, size_t len, char sha256_out[65],
                     tly_error *err);
/* Moves n local files into the store, each with the sha256 the caller computed from
 * its bytes, like n calls of tly_blob_put_file(..., move_ok = 1) but made durable
 * together where the backend can (the local one syncs once before the renames and
 * once after, whatever n is: group commit for the ingest pipeline). results[i] is 0
 * when file i is stored (and gone from its path), -1 when not (errs[i] says why).
 * Returns the number of failures. */
size_t tly_blob_put_files(tly_blob_store *bs, size_t n, const char *const *paths,
                          const char *const *sha256s, int *results, tly_error *errs);

/* 1 if present, 0 if not, -1 on error. size_out optional. */
int tly_blob_exists(tly_blob_store *bs, const char *sha256, uint64_t *size_out,
                    tly_error *err);
int tly_blob_delete(tly_blob_store *bs, const char *sha256, tly_error *err);

/* Reading: random access, so HTTP Range requests can be served. */
typedef struct tly_blob_reader tly_blob_reader;
int tly_blob_open_read(tly_blob_store *bs, const char *sha256, tly_blob_reader **out,
                       tly_error *err);   /* NOT_FOUND if absent */
uint64_t tly_blob_reader_size(const tly_blob_reader *r);
/* pread(2) semantics: bytes read, 0 at end, -1 on error. */
ssize_t tly_blob_read_at(tly_blob_reader *r, void *buf, size_t len, uint64_t offset);
/* A file descriptor for zero-copy sending, or -1 if the backend has none. The reader
 * keeps ownership. */
int tly_blob_reader_fd(const tly_blob_reader *r);
void tly_blob_reader_close(tly_blob_reader *r);

/* The blob's bytes as a local file without copying them: makes path (a new name) a
 * hard link to the blob where the backend keeps blobs as files on path's file
 * system. 0 when linked; 1 when the backend cannot (S3, or another file system: read
 * the blob through a reader instead); -1 on error (NOT_FOUND if absent). The caller
 * must not write to the file (it is the blob), only read, unlink, or hand it back
 * with tly_blob_put_file(s) (the store already has those bytes: it drops the name). */
int tly_blob_link_local(tly_blob_store *bs, const char *sha256, const char *path, tly_error *err);

/* A time-limited URL from which a client can GET the blob directly (S3 presigned
 * URL), served with content_type; TLY_E_UNSUPPORTED for backends without one
 * (local files). out holds at least 2048 bytes. */
int tly_blob_presign(tly_blob_store *bs, const char *sha256, long expires_s, const char *content_type, char *out,
                     size_t outsz, tly_error *err);

/* Remove temp files left by interrupted writes. Returns the number removed or -1. */
int tly_blob_sweep_tmp(tly_blob_store *bs, tly_error *err);

/* Calls fn with every blob's name (any order) until fn returns < 0, which is then
 * the result (fn fills err). UNSUPPORTED for backends that cannot list (S3 today). */
int tly_blob_list(tly_blob_store *bs, int (*fn)(const char *sha256, void *arg), void *arg, tly_error *err);

/* blob_copy.c: puts every blob of from that to lacks into to (`tallyd copy
 * --blobs-to`). Each blob is streamed, and its bytes must hash to its name (a blob
 * that does not is counted in failed, named in err, and the copy goes on); blobs to
 * has already (same size) are skipped. 0 when nothing failed, else -1. */
typedef struct {
    int64_t copied, skipped, failed;
    uint64_t bytes;                  /* copied */
} tly_blob_copy_report;
int tly_blob_copy(tly_blob_store *from, tly_blob_store *to, tly_blob_copy_report *rep, tly_error *err);

#endif
