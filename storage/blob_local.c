/* blob_local.c -- the local file-system blob backend.
 *
 * Layout: ROOT/ab/cd/abcd...  (two levels of fan-out on the first four hex digits,
 * so no directory grows past 65536 entries' worth of names per level), and
 * ROOT/tmp for blobs being written. Every new blob follows the crash-safe recipe:
 * write ROOT/tmp/<random>.tmp, fsync it, rename it to its final name, fsync the
 * final directory (and the fan-out parents when they were just created). A crash
 * thus leaves either no blob or a whole one, plus perhaps a stray *.tmp that
 * tly_blob_sweep_tmp removes at start-up. ROOT/tmp is inside ROOT, so the rename
 * never crosses a file system.
 *
 * Adopting a file (tly_blob_put_file with move_ok) fsyncs it and renames it into
 * place; across file systems (EXDEV) it tells blob.c to copy the file in instead.
 * Because names are content hashes, "already exists" is success: the new copy is
 * simply dropped.
 *
 * Readers hold an open fd and use pread(2), so concurrent range reads of one blob
 * need no locking, and the fd can be handed to sendfile-style zero-copy senders.
 */
#include "core/fsutil.h"
#include "core/hash.h"
#include "storage/blob_backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct local {
    char *root;
};

struct sink {
    int fd;
    char path[PATH_MAX];
};

struct reader {
    int fd;
};

static int io_fail(tly_error *err, const char *what, const char *path)
{
    int e = errno;
    return tly_fail(err, e == ENOENT ? TLY_E_NOT_FOUND : TLY_E_IO, "io_error", "%s '%s': %s",
                    what, path, strerror(e));
}

static int path_of(const struct local *l, const char *sha256, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%s/%.2s/%.2s/%s", l->root, sha256, sha256 + 2, sha256);
    return n > 0 && (size_t)n < outsz ? 0 : -1;
}

static int local_open(const char *where, void **impl, tly_error *err)
{
    char tmp[PATH_MAX];
    if (!*where)
        return tly_fail(err, TLY_E_INVALID, "invalid", "blob store path is empty");
    if (snprintf(tmp, sizeof tmp, "%s/tmp", where) >= (int)sizeof tmp)
        return tly_fail(err, TLY_E_INVALID, "invalid", "blob store path is too long");
    if (tly_mkdirs(tmp, 0755) < 0)
        return io_fail(err, "creating blob store", tmp);
    struct local *l = calloc(1, sizeof *l);
    if (!l || !(l->root = strdup(where))) {
        free(l);
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    *impl = l;
    return 0;
}

static void local_close(void *impl)
{
    struct local *l = impl;
    free(l->root);
    free(l);
}

static int local_sink_new(void *impl, void **out, tly_error *err)
{
    struct local *l = impl;
    char rnd[33];
    struct sink *s = malloc(sizeof *s);
    if (!s)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    if (tly_random_hex(16, rnd, sizeof rnd) < 0) {
        free(s);
        return tly_fail(err, TLY_E_INTERNAL, "random", "no randomness for a temp name");
    }
    snprintf(s->path, sizeof s->path, "%s/tmp/%s.tmp", l->root, rnd);
    s->fd = open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        io_fail(err, "creating", s->path);
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

static int local_sink_write(void *sink, const void *data, size_t len, tly_error *err)
{
    struct sink *s = sink;
    return tly_write_all(s->fd, data, len) < 0 ? io_fail(err, "writing", s->path) : 0;
}

static void local_sink_abort(void *impl, void *sink)
{
    struct sink *s = sink;
    close(s->fd);
    unlink(s->path);
    free(s);
}

/* Create ROOT/ab/cd for final if needed; when created, make the new directory
 * entries durable too, or a crash could lose a blob whose rename was fsync'ed. */
static int ensure_dirs(const struct local *l, const char *final, tly_error *err)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(final, '/');
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - final), final);
    struct stat st;
    if (stat(dir, &st) == 0)
        return 0;
    if (tly_mkdirs(dir, 0755) < 0)
        return io_fail(err, "creating", dir);
    /* fsync ROOT/ab (it holds cd) and ROOT (it holds ab). */
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%.*s", (int)(strrchr(dir, '/') - dir), dir);
    if (tly_fsync_dir_of(parent) < 0)
        return io_fail(err, "syncing", parent);
    return tly_fsync_dir_of(l->root) < 0 ? io_fail(err, "syncing", l->root) : 0;
}

/* Rename src to the blob's final name and make that durable. */
static int install(const struct local *l, const char *src, const char *final, tly_error *err)
{
    if (ensure_dirs(l, final, err) < 0)
        return -1;
    if (rename(src, final) < 0)
        return io_fail(err, "renaming into", final);
    return tly_fsync_dir_of(final) < 0 ? io_fail(err, "syncing directory of", final) : 0;
}

static int local_sink_commit(void *impl, void *sink, const char *sha256, tly_error *err)
{
    struct local *l = impl;
    struct sink *s = sink;
    char final[PATH_MAX];
    int rc = 0;
    if (path_of(l, sha256, final, sizeof final) < 0)
        rc = tly_fail(err, TLY_E_INVALID, "invalid", "blob path too long");
    else if (fsync(s->fd) < 0)
        rc = io_fail(err, "syncing", s->path);
    close(s->fd);
    if (rc == 0 && access(final, F_OK) == 0) {
        unlink(s->path);   /* same name, same bytes: already stored */
    } else if (rc == 0 && install(l, s->path, final, err) < 0) {
        rc = -1;
    }
    if (rc < 0)
        unlink(s->path);
    free(s);
    return rc;
}

static int local_adopt_file(void *impl, const char *path, const char *sha256, tly_error *err)
{
    struct local *l = impl;
    char final[PATH_MAX];
    if (path_of(l, sha256, final, sizeof final) < 0)
        return tly_fail(err, TLY_E_INVALID, "invalid", "blob path too long");
    if (access(final, F_OK) == 0)
        return unlink(path) < 0 ? io_fail(err, "removing", path) : 0;
    /* The data must be on disk before the name that promises it is. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_fail(err, "opening", path);
    int synced = fsync(fd);
    close(fd);
    if (synced < 0)
        return io_fail(err, "syncing", path);
    if (ensure_dirs(l, final, err) < 0)
        return -1;
    if (rename(path, final) == 0)
        return tly_fsync_dir_of(final) < 0 ? io_fail(err, "syncing directory of", final) : 0;
    if (errno == EXDEV)
        return 1;   /* another file system: blob.c copies it in instead */
    return io_fail(err, "renaming into", final);
}

static int local_exists(void *impl, const char *sha256, uint64_t *size_out, tly_error *err)
{
    char final[PATH_MAX];
    struct stat st;
    if (path_of(impl, sha256, final, sizeof final) < 0)
        return tly_fail(err, TLY_E_INVALID, "invalid", "blob path too long");
    if (stat(final, &st) < 0)
        return errno == ENOENT ? 0 : io_fail(err, "stat", final);
    if (size_out)
        *size_out = (uint64_t)st.st_size;
    return 1;
}

/* Idempotent: deleting a blob that is not there succeeds. */
static int local_remove(void *impl, const char *sha256, tly_error *err)
{
    char final[PATH_MAX];
    if (path_of(impl, sha256, final, sizeof final) < 0)
        return tly_fail(err, TLY_E_INVALID, "invalid", "blob path too long");
    if (unlink(final) < 0 && errno != ENOENT)
        return io_fail(err, "removing", final);
    return 0;
}

static int local_reader_open(void *impl, const char *sha256, void **out, uint64_t *size_out,
                             tly_error *err)
{
    char final[PATH_MAX];
    struct stat st;
    if (path_of(impl, sha256, final, sizeof final) < 0)
        return tly_fail(err, TLY_E_INVALID, "invalid", "blob path too long");
    struct reader *r = malloc(sizeof *r);
    if (!r)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    if ((r->fd = open(final, O_RDONLY | O_CLOEXEC)) < 0 || fstat(r->fd, &st) < 0) {
        if (errno == ENOENT)
            tly_fail(err, TLY_E_NOT_FOUND, "not_found", "blob %s not found", sha256);
        else
            io_fail(err, "opening", final);
        if (r->fd >= 0)
            close(r->fd);
        free(r);
        return -1;
    }
    *size_out = (uint64_t)st.st_size;
    *out = r;
    return 0;
}

static ssize_t local_read_at(void *reader, void *buf, size_t len, uint64_t offset)
{
    struct reader *r = reader;
    for (;;) {
        ssize_t n = pread(r->fd, buf, len, (off_t)offset);
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

static int local_reader_fd(const void *reader)
{
    return ((const struct reader *)reader)->fd;
}

static void local_reader_close(void *reader)
{
    struct reader *r = reader;
    close(r->fd);
    free(r);
}

/* Start-up only: a writer active in another thread would lose its temp file. */
static int local_sweep_tmp(void *impl, tly_error *err)
{
    struct local *l = impl;
    char dir[PATH_MAX], path[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/tmp", l->root);
    DIR *d = opendir(dir);
    if (!d)
        return io_fail(err, "opening", dir);
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n <= 4 || strcmp(de->d_name + n - 4, ".tmp") != 0)
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path)
            continue;
        if (unlink(path) == 0)
            removed++;
        else if (errno != ENOENT) {
            io_fail(err, "removing", path);
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    return removed;
}

const struct tly_blob_backend tly_blob_local_backend = {
    .name = "file",
    .open = local_open,
    .close = local_close,
    .sink_new = local_sink_new,
    .sink_write = local_sink_write,
    .sink_commit = local_sink_commit,
    .sink_abort = local_sink_abort,
    .adopt_file = local_adopt_file,
    .exists = local_exists,
    .remove = local_remove,
    .reader_open = local_reader_open,
    .read_at = local_read_at,
    .reader_fd = local_reader_fd,
    .reader_close = local_reader_close,
    .sweep_tmp = local_sweep_tmp,
};
