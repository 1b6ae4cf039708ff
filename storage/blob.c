/* blob.c -- the public blob-store functions, dispatching to a backend table.
 *
 * What is common to every backend lives here (see blob_backend.h): choosing the
 * backend from the URL, refusing any name that is not 64 lowercase hex digits
 * before a backend sees it, hashing and size-capping streaming writes, and copying
 * a file while hashing it. A write that goes over its cap drops its sink at once,
 * so nothing is left in temp storage even if the caller is slow to abort.
 */
#include "storage/blob.h"

#include "core/hash.h"
#include "storage/blob_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tly_blob_store {
    const struct tly_blob_backend *be;
    void *impl;
};

struct tly_blob_writer {
    tly_blob_store *bs;
    void *sink;            /* NULL once dropped (over the cap or a write error) */
    tly_sha256 *hash;
    uint64_t size, max;
    tly_error failure;     /* why the sink was dropped, repeated by commit */
};

struct tly_blob_reader {
    const struct tly_blob_backend *be;
    void *impl;
    uint64_t size;
};

static const struct {
    const char *prefix;
    const struct tly_blob_backend *be;   /* NULL: reserved, not built */
} backends[] = {
    {"file:", &tly_blob_local_backend},
    {"s3://", &tly_blob_s3_backend},
};

static int check_name(const char *sha256, tly_error *err)
{
    if (tly_is_sha256_hex(sha256))
        return 0;
    return tly_fail(err, TLY_E_INVALID, "invalid_blob_name",
                    "blob name must be 64 lowercase hex digits");
}

static int oom(tly_error *err)
{
    return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
}

int tly_blob_open(const char *url, tly_blob_store **out, tly_error *err)
{
    const struct tly_blob_backend *be = &tly_blob_local_backend;
    const char *where = url;
    *out = NULL;
    if (!url || !*url)
        return tly_fail(err, TLY_E_INVALID, "invalid", "empty blob store URL");
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        size_t n = strlen(backends[i].prefix);
        if (strncmp(url, backends[i].prefix, n) != 0)
            continue;
        if (!backends[i].be)
            return tly_fail(err, TLY_E_UNSUPPORTED, "unsupported_backend",
                            "blob backend '%.*s' is not available in this build", (int)n, url);
        be = backends[i].be;
        where = url + n;
        break;
    }
    if (where == url && strstr(url, "://"))
        return tly_fail(err, TLY_E_UNSUPPORTED, "unsupported_backend",
                        "unknown blob store URL scheme in '%s'", url);
    tly_blob_store *bs = calloc(1, sizeof *bs);
    if (!bs)
        return oom(err);
    bs->be = be;
    if (be->open(where, &bs->impl, err) < 0) {
        free(bs);
        return -1;
    }
    *out = bs;
    return 0;
}

void tly_blob_close(tly_blob_store *bs)
{
    if (!bs)
        return;
    bs->be->close(bs->impl);
    free(bs);
}

const char *tly_blob_backend_name(const tly_blob_store *bs)
{
    return bs->be->name;
}

/* ---- streaming writes ---------------------------------------------------------- */

int tly_blob_writer_new(tly_blob_store *bs, uint64_t max_size, tly_blob_writer **out,
                        tly_error *err)
{
    *out = NULL;
    tly_blob_writer *w = calloc(1, sizeof *w);
    if (!w)
        return oom(err);
    w->bs = bs;
    w->max = max_size;
    if (!(w->hash = tly_sha256_new())) {
        free(w);
        return oom(err);
    }
    if (bs->be->sink_new(bs->impl, &w->sink, err) < 0) {
        tly_sha256_free(w->hash);
        free(w);
        return -1;
    }
    *out = w;
    return 0;
}

static void drop_sink(tly_blob_writer *w)
{
    if (w->sink)
        w->bs->be->sink_abort(w->bs->impl, w->sink);
    w->sink = NULL;
}

int tly_blob_write(tly_blob_writer *w, const void *data, size_t len, tly_error *err)
{
    if (!w->sink) {
        if (err)
            *err = w->failure;
        return -1;
    }
    if (len > w->max - w->size) {
        drop_sink(w);
        tly_fail(&w->failure, TLY_E_TOO_LARGE, "too_large", "blob is larger than %llu bytes",
                 (unsigned long long)w->max);
        if (err)
            *err = w->failure;
        return -1;
    }
    if (w->bs->be->sink_write(w->sink, data, len, &w->failure) < 0) {
        drop_sink(w);
        if (err)
            *err = w->failure;
        return -1;
    }
    tly_sha256_update(w->hash, data, len);
    w->size += len;
    return 0;
}

void tly_blob_writer_abort(tly_blob_writer *w)
{
    if (!w)
        return;
    drop_sink(w);
    tly_sha256_free(w->hash);
    free(w);
}

int tly_blob_writer_commit(tly_blob_writer *w, char sha256_out[65], uint64_t *size_out,
                           tly_error *err)
{
    char hex[TLY_SHA256_HEX_LEN + 1];
    if (!w->sink) {
        if (err)
            *err = w->failure;
        tly_blob_writer_abort(w);
        return -1;
    }
    tly_sha256_finish(w->hash, hex);
    w->hash = NULL;
    void *sink = w->sink;
    w->sink = NULL;
    uint64_t size = w->size;
    tly_blob_store *bs = w->bs;
    free(w);
    if (bs->be->sink_commit(bs->impl, sink, hex, err) < 0)
        return -1;
    if (sha256_out)
        memcpy(sha256_out, hex, sizeof hex);
    if (size_out)
        *size_out = size;
    return 0;
}

int tly_blob_put_buf(tly_blob_store *bs, const void *data, size_t len, char sha256_out[65],
                     tly_error *err)
{
    tly_blob_writer *w;
    if (tly_blob_writer_new(bs, UINT64_MAX, &w, err) < 0)
        return -1;
    if (tly_blob_write(w, data, len, err) < 0) {
        tly_blob_writer_abort(w);
        return -1;
    }
    return tly_blob_writer_commit(w, sha256_out, NULL, err);
}

/* Copy a file into a writer, hashing as it goes (each byte is read once). */
static int copy_file(tly_blob_store *bs, const char *path, char hex[65], tly_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tly_fail(err, errno == ENOENT ? TLY_E_NOT_FOUND : TLY_E_IO, "io_error",
                        "open '%s': %s", path, strerror(errno));
    tly_blob_writer *w;
    if (tly_blob_writer_new(bs, UINT64_MAX, &w, err) < 0) {
        close(fd);
        return -1;
    }
    static __thread char buf[1 << 16];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            tly_fail(err, TLY_E_IO, "io_error", "read '%s': %s", path, strerror(errno));
            break;
        }
        if (n == 0) {
            close(fd);
            return tly_blob_writer_commit(w, hex, NULL, err);
        }
        if (tly_blob_write(w, buf, (size_t)n, err) < 0)
            break;
    }
    close(fd);
    tly_blob_writer_abort(w);
    return -1;
}

int tly_blob_put_file(tly_blob_store *bs, const char *path, const char *sha256, int move_ok,
                      char sha256_out[65], tly_error *err)
{
    char hex[TLY_SHA256_HEX_LEN + 1];
    if (sha256 && check_name(sha256, err) < 0)
        return -1;
    int rc = 1;   /* 1: not taken by the backend, copy it */
    if (move_ok && bs->be->adopt_file) {
        /* Moving: trust a given hash (the caller hashed these very bytes). */
        if (sha256)
            memcpy(hex, sha256, sizeof hex);
        else if (tly_sha256_file(path, hex, NULL) < 0)
            return tly_fail(err, errno == ENOENT ? TLY_E_NOT_FOUND : TLY_E_IO, "io_error",
                            "hashing '%s': %s", path, strerror(errno));
        if ((rc = bs->be->adopt_file(bs->impl, path, hex, err)) < 0)
            return -1;
    }
    if (rc == 1) {
        /* Copying hashes for free; a given hash must then agree with the bytes. (On a
         * mismatch the bytes are stored under their true name: harmless, since a
         * content-addressed blob can never be wrong, and nothing refers to it.) */
        if (copy_file(bs, path, hex, err) < 0)
            return -1;
        if (sha256 && strcmp(sha256, hex) != 0)
            return tly_fail(err, TLY_E_INVALID, "sha256_mismatch",
                            "'%s' does not have the sha256 it was given", path);
        if (move_ok && unlink(path) < 0)
            return tly_fail(err, TLY_E_IO, "io_error", "unlink '%s': %s", path,
                            strerror(errno));
    }
    if (sha256_out)
        memcpy(sha256_out, hex, sizeof hex);
    return 0;
}

size_t tly_blob_put_files(tly_blob_store *bs, size_t n, const char *const *paths,
                          const char *const *sha256s, int *results, tly_error *errs)
{
    size_t failed = 0;
    for (size_t i = 0; i < n; i++)
        results[i] = check_name(sha256s[i], &errs[i]) < 0 ? -1 : 1;
    if (bs->be->adopt_files) {
        /* Only the well-named ones reach the backend; keep the others' -1. */
        const char **p = malloc(n * sizeof *p), **h = malloc(n * sizeof *h);
        int *r = malloc(n * sizeof *r);
        tly_error *e = malloc(n * sizeof *e);
        size_t *idx = malloc(n * sizeof *idx), m = 0;
        if (p && h && r && e && idx) {
            for (size_t i = 0; i < n; i++)
                if (results[i] == 1) {
                    p[m] = paths[i];
                    h[m] = sha256s[i];
                    idx[m++] = i;
                }
            bs->be->adopt_files(bs->impl, m, p, h, r, e);
            for (size_t k = 0; k < m; k++) {
                results[idx[k]] = r[k];
                if (r[k] < 0)
                    errs[idx[k]] = e[k];
            }
        }
        free(p);
        free(h);
        free(r);
        free(e);
        free(idx);
    }
    /* Whatever the backend did not take (or could not be asked about) goes one by one. */
    for (size_t i = 0; i < n; i++) {
        if (results[i] == 1)
            results[i] = tly_blob_put_file(bs, paths[i], sha256s[i], 1, NULL, &errs[i]) < 0 ? -1 : 0;
        failed += results[i] != 0;
    }
    return failed;
}

/* ---- lookups and reads --------------------------------------------------------- */

int tly_blob_exists(tly_blob_store *bs, const char *sha256, uint64_t *size_out, tly_error *err)
{
    if (check_name(sha256, err) < 0)
        return -1;
    return bs->be->exists(bs->impl, sha256, size_out, err);
}

int tly_blob_list(tly_blob_store *bs, int (*fn)(const char *sha256, void *arg), void *arg, tly_error *err)
{
    if (!bs->be->list)
        return tly_fail(err, TLY_E_UNSUPPORTED, "unsupported", "the %s blob store cannot list its blobs",
                        bs->be->name);
    return bs->be->list(bs->impl, fn, arg, err);
}

int tly_blob_delete(tly_blob_store *bs, const char *sha256, tly_error *err)
{
    if (check_name(sha256, err) < 0)
        return -1;
    return bs->be->remove(bs->impl, sha256, err);
}

int tly_blob_open_read(tly_blob_store *bs, const char *sha256, tly_blob_reader **out,
                       tly_error *err)
{
    *out = NULL;
    if (check_name(sha256, err) < 0)
        return -1;
    tly_blob_reader *r = calloc(1, sizeof *r);
    if (!r)
        return oom(err);
    r->be = bs->be;
    if (bs->be->reader_open(bs->impl, sha256, &r->impl, &r->size, err) < 0) {
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

uint64_t tly_blob_reader_size(const tly_blob_reader *r)
{
    return r->size;
}

ssize_t tly_blob_read_at(tly_blob_reader *r, void *buf, size_t len, uint64_t offset)
{
    return r->be->read_at(r->impl, buf, len, offset);
}

int tly_blob_reader_fd(const tly_blob_reader *r)
{
    return r->be->reader_fd ? r->be->reader_fd(r->impl) : -1;
}

void tly_blob_reader_close(tly_blob_reader *r)
{
    if (!r)
        return;
    r->be->reader_close(r->impl);
    free(r);
}

int tly_blob_link_local(tly_blob_store *bs, const char *sha256, const char *path, tly_error *err)
{
    if (check_name(sha256, err) < 0)
        return -1;
    return bs->be->link_to ? bs->be->link_to(bs->impl, sha256, path, err) : 1;
}

int tly_blob_presign(tly_blob_store *bs, const char *sha256, long expires_s, const char *content_type, char *out,
                     size_t outsz, tly_error *err)
{
    if (check_name(sha256, err) < 0)
        return -1;
    if (!bs->be->presign)
        return tly_fail(err, TLY_E_UNSUPPORTED, "unsupported", "the %s blob store has no presigned URLs",
                        bs->be->name);
    return bs->be->presign(bs->impl, sha256, expires_s, content_type, out, outsz, err);
}

int tly_blob_sweep_tmp(tly_blob_store *bs, tly_error *err)
{
    return bs->be->sweep_tmp(bs->impl, err);
}
