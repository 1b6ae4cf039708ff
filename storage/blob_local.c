/* blob_local.c -- the local file-system blob backend.
 *
 * Layout: ROOT/ab/abcd...  (one level of fan-out on the first two hex digits, as
 * git does: a million blobs make ~4,000 names per directory, which ext4's hashed
 * directories handle well), and ROOT/tmp for blobs being written. The 256 fan-out
 * directories are all created (and made durable) when the store is opened, so
 * writing a blob never creates a directory: a second level would have meant a new
 * directory -- and two more fsyncs -- for nearly every blob of a young store.
 * Every new blob follows the crash-safe recipe: write ROOT/tmp/<random>.tmp, make
 * it durable, rename it to its final name, make the rename durable. A crash
 * thus leaves either no blob or a whole one, plus perhaps a stray *.tmp that
 * tly_blob_sweep_tmp removes at start-up. ROOT/tmp is inside ROOT, so the rename
 * never crosses a file system.
 *
 * Adopting a file (tly_blob_put_file with move_ok) fsyncs it and renames it into
 * place; across file systems (EXDEV) it tells blob.c to copy the file in instead.
 * Because names are content hashes, "already exists" is success: the new copy is
 * simply dropped.
 *
 * "Make durable" is a group commit (struct syncer): instead of fsync on the file
 * and then on its directory, a writer waits for a syncfs(2) of the store's file
 * system that started after its own writes. Concurrent writers share one such
 * sync, and syncfs submits all dirty data and metadata in one batch, where each
 * fsync on ext4 (worse without a journal) writes inode and directory blocks one
 * synchronous round trip at a time. With several ingest threads this halves the
 * time spent waiting for the disk; the guarantee is the same.
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Group commit: tickets are handed out in order; a sync covers every ticket issued
 * before it started. */
struct syncer {
    pthread_mutex_t mu;
    pthread_cond_t done;
    uint64_t requested;   /* last ticket handed out */
    uint64_t completed;   /* every ticket <= this is durable */
    int running;
    int fd;               /* any fd on the file system (the root directory) */
};

struct local {
    char *root;
    struct syncer sync;
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
    int n = snprintf(out, outsz, "%s/%.2s/%s", l->root, sha256, sha256);
    return n > 0 && (size_t)n < outsz ? 0 : -1;
}

static void local_close(void *impl);

static int local_open(const char *where, void **impl, tly_error *err)
{
    char tmp[PATH_MAX];
    if (!*where)
        return tly_fail(err, TLY_E_INVALID, "invalid", "blob store path is empty");
    if (snprintf(tmp, sizeof tmp, "%s/tmp", where) >= (int)sizeof tmp)
        return tly_fail(err, TLY_E_INVALID, "invalid", "blob store path is too long");
    if (tly_mkdirs(tmp, 0755) < 0)
        return io_fail(err, "creating blob store", tmp);
    int created = 0;
    for (int i = 0; i < 256; i++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%02x", where, i);
        if (mkdir(dir, 0755) == 0)
            created = 1;
        else if (errno != EEXIST)
            return io_fail(err, "creating", dir);
    }
    /* New directory entries must be durable before any blob relies on them. */
    if (created && tly_fsync_dir_of(where) < 0)
        return io_fail(err, "syncing", where);
    struct local *l = calloc(1, sizeof *l);
    if (!l || !(l->root = strdup(where))) {
        free(l);
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    pthread_mutex_init(&l->sync.mu, NULL);
    pthread_cond_init(&l->sync.done, NULL);
    if ((l->sync.fd = open(where, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        io_fail(err, "opening", where);
        local_close(l);
        return -1;
    }
    *impl = l;
    return 0;
}

static void local_close(void *impl)
{
    struct local *l = impl;
    if (l->sync.fd >= 0)
        close(l->sync.fd);
    pthread_mutex_destroy(&l->sync.mu);
    pthread_cond_destroy(&l->sync.done);
    free(l->root);
    free(l);
}

/* Returns once everything this thread wrote to the file system before the call is
 * durable. One thread at a time runs syncfs; callers that arrive meanwhile wait for
 * the next one, since the running one may have started before their writes. */
static int durable(struct local *l, tly_error *err)
{
    struct syncer *s = &l->sync;
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    uint64_t ticket = ++s->requested;
    while (s->completed < ticket) {
        if (s->running) {
            pthread_cond_wait(&s->done, &s->mu);
            continue;
        }
        s->running = 1;
        uint64_t covers = s->requested;
        pthread_mutex_unlock(&s->mu);
        int synced = syncfs(s->fd);
        int e = errno;
        pthread_mutex_lock(&s->mu);
        s->running = 0;
        if (synced == 0 && covers > s->completed)
            s->completed = covers;
        pthread_cond_broadcast(&s->done);
        if (synced < 0) {
            errno = e;
            rc = io_fail(err, "syncing the file system of", l->root);
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
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

/* Make src durable, rename it to the blob's final name, make that durable. */
static int install(struct local *l, const char *src, const char *final, tly_error *err)
{
    if (durable(l, err) < 0)
        return -1;
    if (rename(src, final) < 0)
        return io_fail(err, "renaming into", final);
    return durable(l, err);
}

static int local_sink_commit(void *impl, void *sink, const char *sha256, tly_error *err)
{
    struct local *l = impl;
    struct sink *s = sink;
    char final[PATH_MAX];
    int rc = 0;
    if (path_of(l, sha256, final, sizeof final) < 0)
        rc = tly_fail(err, TLY_E_INVALID, "invalid", "blob path too long");
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
    if (access(path, R_OK) < 0)
        return io_fail(err, "opening", path);
    if (durable(l, err) < 0)
        return -1;
    if (rename(path, final) < 0)
        return errno == EXDEV ? 1   /* another file system: blob.c copies it in instead */
                              : io_fail(err, "renaming into", final);
    return durable(l, err);
}

static void local_adopt_files(void *impl, size_t n, const char *const *paths,
                              const char *const *sha256s, int *results, tly_error *errs)
{
    struct local *l = impl;
    tly_error sync_err;
    if (n == 0)
        return;
    if (durable(l, &sync_err) < 0) {
        for (size_t i = 0; i < n; i++) {
            results[i] = -1;
            errs[i] = sync_err;
        }
        return;
    }
    size_t renamed = 0;
    for (size_t i = 0; i < n; i++) {
        char final[PATH_MAX];
        results[i] = 0;
        if (path_of(l, sha256s[i], final, sizeof final) < 0)
            results[i] = tly_fail(&errs[i], TLY_E_INVALID, "invalid", "blob path too long");
        else if (access(final, F_OK) == 0)   /* already stored: drop the copy */
            results[i] = unlink(paths[i]) < 0 ? io_fail(&errs[i], "removing", paths[i]) : 0;
        else if (rename(paths[i], final) < 0)
            results[i] = errno == EXDEV ? 1 : io_fail(&errs[i], "renaming into", final);
        else
            renamed++;
    }
    if (renamed && durable(l, &sync_err) < 0)
        for (size_t i = 0; i < n; i++)
            if (results[i] == 0) {
                results[i] = -1;
                errs[i] = sync_err;
            }
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

/* A blob is never written after its rename into place, so a second name for its
 * inode is as good as a copy, and costs nothing. */
static int local_link_to(void *impl, const char *sha256, const char *path, tly_error *err)
{
    char final[PATH_MAX];
    if (path_of(impl, sha256, final, sizeof final) < 0)
        return tly_fail(err, TLY_E_INVALID, "invalid", "blob path too long");
    if (link(final, path) == 0)
        return 0;
    if (errno == ENOENT)
        return tly_fail(err, TLY_E_NOT_FOUND, "not_found", "blob %s not found", sha256);
    /* Another file system, or one without hard links: the caller copies. */
    if (errno == EXDEV || errno == EPERM || errno == EMLINK || errno == ENOTSUP)
        return 1;
    return io_fail(err, "linking to", final);
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

/* Walks the 256 fan-out directories; only names that are a blob's (64 hex digits
 * under the directory of their first two) are reported, so temp files and strays
 * are never taken for blobs. */
static int local_list(void *impl, int (*fn)(const char *sha256, void *arg), void *arg, tly_error *err)
{
    struct local *l = impl;
    char dir[PATH_MAX];
    for (int i = 0; i < 256; i++) {
        snprintf(dir, sizeof dir, "%s/%02x", l->root, i);
        DIR *d = opendir(dir);
        if (!d) {
            if (errno == ENOENT)
                continue;
            return io_fail(err, "opening", dir);
        }
        struct dirent *de;
        int rc = 0;
        while (rc == 0 && (de = readdir(d)))
            if (tly_is_sha256_hex(de->d_name) && strncmp(de->d_name, dir + strlen(dir) - 2, 2) == 0)
                rc = fn(de->d_name, arg) < 0 ? -1 : 0;
        closedir(d);
        if (rc < 0)
            return -1;
    }
    return 0;
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
    .adopt_files = local_adopt_files,
    .exists = local_exists,
    .remove = local_remove,
    .reader_open = local_reader_open,
    .read_at = local_read_at,
    .reader_fd = local_reader_fd,
    .reader_close = local_reader_close,
    .link_to = local_link_to,
    .sweep_tmp = local_sweep_tmp,
    .list = local_list,
};
