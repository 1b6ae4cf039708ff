/* blob_copy.c -- every blob of one store put into another (`tallyd copy --blobs-to`).
 *
 * Blobs are named by the SHA-256 of their bytes, so copying is idempotent and needs
 * no bookkeeping: a blob the target has (same name, same size) is skipped, which also
 * makes an interrupted copy resumable by running it again. Every other blob is
 * streamed through a blob writer of the target, which hashes what it writes; the
 * copy is checked against the name it must have, so a damaged source file is found
 * (counted in failed, the first one named in err) instead of being spread. Any other
 * error (a store unreachable, a disk full) ends the copy: it would repeat for every
 * blob that follows.
 *
 * Memory: one COPY_CHUNK buffer, whatever the sizes and the number of blobs (the
 * source lists its blobs one at a time, never into memory).
 */
#include "storage/blob.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COPY_CHUNK (256 * 1024)

struct blob_copy {
    tly_blob_store *from, *to;
    tly_blob_copy_report *rep;
    unsigned char *buf;
    tly_error *err;
    tly_error first_failure;        /* the first damaged blob, reported at the end */
};

/* 0 copied, 1 the bytes do not hash to the name (c->first_failure), -1 error. */
static int copy_one(struct blob_copy *c, const char *sha256, uint64_t *size, tly_error *err)
{
    tly_blob_reader *r = NULL;
    tly_blob_writer *w = NULL;
    if (tly_blob_open_read(c->from, sha256, &r, err) < 0)
        return -1;
    *size = tly_blob_reader_size(r);
    if (tly_blob_writer_new(c->to, *size ? *size : 1, &w, err) < 0) {
        tly_blob_reader_close(r);
        return -1;
    }
    for (uint64_t off = 0; off < *size;) {
        ssize_t n = tly_blob_read_at(r, c->buf, COPY_CHUNK, off);
        if (n <= 0) {
            tly_blob_writer_abort(w);
            tly_blob_reader_close(r);
            return tly_fail(err, TLY_E_IO, "io_error", "reading blob %s at %llu", sha256, (unsigned long long)off);
        }
        if (tly_blob_write(w, c->buf, (size_t)n, err) < 0) {
            tly_blob_writer_abort(w);
            tly_blob_reader_close(r);
            return -1;
        }
        off += (uint64_t)n;
    }
    tly_blob_reader_close(r);
    char got[65];
    if (tly_blob_writer_commit(w, got, NULL, err) < 0)
        return -1;
    if (strcmp(got, sha256) != 0) {
        /* Stored under its true name, which nothing refers to: harmless. */
        tly_fail(&c->first_failure, TLY_E_IO, "blob_damaged", "blob %s in the source holds bytes that hash to %s",
                 sha256, got);
        return 1;
    }
    return 0;
}

static int visit(const char *sha256, void *arg)
{
    struct blob_copy *c = arg;
    uint64_t have = 0, size = 0;
    int rc = tly_blob_exists(c->to, sha256, &have, c->err);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        if (tly_blob_exists(c->from, sha256, &size, c->err) < 0)
            return -1;
        if (size == have) {
            c->rep->skipped++;
            return 0;
        }
    }
    rc = copy_one(c, sha256, &size, c->err);
    if (rc < 0) {
        tly_error_prefix(c->err, "copying blob %.12s", sha256);
        return -1;
    }
    if (rc == 1) {
        c->rep->failed++;
        return 0;
    }
    c->rep->copied++;
    c->rep->bytes += size;
    return 0;
}

int tly_blob_copy(tly_blob_store *from, tly_blob_store *to, tly_blob_copy_report *rep, tly_error *err)
{
    memset(rep, 0, sizeof *rep);
    struct blob_copy c = {from, to, rep, malloc(COPY_CHUNK), err, {0}};
    if (!c.buf)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    int rc = tly_blob_list(from, visit, &c, err);
    free(c.buf);
    if (rc < 0)
        return -1;
    if (rep->failed) {
        if (err)
            *err = c.first_failure;
        tly_error_prefix(err, "%lld damaged blob(s), the first", (long long)rep->failed);
        return -1;
    }
    return 0;
}
