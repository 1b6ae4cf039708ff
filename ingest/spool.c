/* spool.c -- the ingest spool: temp files for work in flight, and start-up recovery.
 *
 * Every file is brought into the spool before it is probed (uploads stream there,
 * URLs download there, server-side files are copied there), hashing it on the way.
 * That gives the rest of the pipeline one shape -- a private local file with a known
 * SHA-256 that no one else can change under us -- and lets the blob store take it by
 * rename instead of a second copy.
 */
#include "ingest/internal.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int tly_spool_tmp_name(tly_ingest *ing, char *path, size_t pathsz, tly_error *err)
{
    char rnd[33];
    if (tly_random_hex(16, rnd, sizeof rnd) < 0)
        return tly_fail(err, TLY_E_INTERNAL, "internal", "no randomness for a temp file name");
    if (snprintf(path, pathsz, "%s/%s.tmp", ing->spool_tmp, rnd) >= (int)pathsz)
        return tly_fail(err, TLY_E_INTERNAL, "internal", "spool path too long");
    return 0;
}

int tly_spool_create_tmp(tly_ingest *ing, char *path, size_t pathsz, tly_error *err)
{
    if (tly_spool_tmp_name(ing, path, pathsz, err) < 0)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return tly_fail(err, TLY_E_IO, "io_error", "cannot create %s: %s", path, strerror(errno));
    return fd;
}

int tly_spool_copy_in(tly_ingest *ing, const char *src, tly_local_file *out, tly_error *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return tly_fail(err, errno == ENOENT ? TLY_E_UNPROCESSABLE : TLY_E_IO,
                        errno == ENOENT ? "not_found" : "unreadable", "cannot open: %s", strerror(errno));
    int fd = tly_spool_create_tmp(ing, out->path, sizeof out->path, err);
    if (fd < 0) {
        close(in);
        return -1;
    }
    out->temp = 1;
    out->size = 0;
    tly_sha256 *h = tly_sha256_new();
    uint64_t cap = ing->cfg.probe.max_bytes;
    int rc = -1;
    static __thread char buf[1 << 17];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            tly_fail(err, TLY_E_IO, "unreadable", "read failed: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        out->size += (uint64_t)n;
        if (cap && out->size > cap) {
            tly_fail(err, TLY_E_UNPROCESSABLE, "too_large", "file is over the %llu-byte limit",
                     (unsigned long long)cap);
            goto out;
        }
        tly_sha256_update(h, buf, (size_t)n);
        if (tly_write_all(fd, buf, (size_t)n) < 0) {
            tly_fail(err, TLY_E_IO, "io_error", "spool write failed: %s", strerror(errno));
            goto out;
        }
    }
    /* Start writing the copy to disk now, while the caller decodes it: the sync that
     * must precede its adoption into the blob store then finds little left to do. */
    sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    tly_sha256_finish(h, out->sha256);
    h = NULL;
    rc = 0;
out:
    tly_sha256_free(h);
    close(in);
    close(fd);
    if (rc < 0) {
        unlink(out->path);
        out->temp = 0;
    }
    return rc;
}

int tly_path_has_dotdot(const char *path)
{
    const char *p = path;
    while ((p = strstr(p, ".."))) {
        int starts = p == path || p[-1] == '/';
        int ends = p[2] == '\0' || p[2] == '/';
        if (starts && ends)
            return 1;
        p += 2;
    }
    return 0;
}

static int remove_dir_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *de;
    size_t sl = strlen(suffix);
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n <= sl || strcmp(de->d_name + n - sl, suffix) != 0)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (unlink(path) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

int tly_ingest_sweep_uploads(tly_ingest *ing, int min_age_s, tly_error *err)
{
    int removed = 0;
    time_t before = time(NULL) - min_age_s;
    DIR *d = opendir(ing->spool_dir);
    if (!d)
        return tly_fail(err, TLY_E_IO, "io_error", "cannot read %s: %s", ing->spool_dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n <= 3 || strcmp(de->d_name + n - 3, ".up") != 0)
            continue;
        char path[PATH_MAX];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", ing->spool_dir, de->d_name);
        if (min_age_s > 0 && (stat(path, &sb) < 0 || sb.st_mtime > before))
            continue;
        tly_batch_file bf = {0};
        tly_error lookup;
        int rc = tly_store_batch_file_by_location(ing->st, "spool", de->d_name, &bf, &lookup);
        int keep = rc == 0 && bf.state == TLY_BF_PENDING;
        tly_batch_file_clear(&bf);
        if (rc < 0 && lookup.status != TLY_E_NOT_FOUND) {
            closedir(d);
            if (err)
                *err = lookup;
            return -1;
        }
        if (!keep && unlink(path) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

int tly_ingest_recover(tly_ingest *ing, tly_error *err)
{
    int tmp_removed = remove_dir_files(ing->spool_tmp, ".tmp");
    int blob_tmp = tly_blob_sweep_tmp(ing->bs, err);
    if (blob_tmp < 0)
        return -1;
    /* Uploaded files whose row is gone or finished: the crash came between keeping
     * the spool file and committing its row, or between committing the outcome and
     * unlinking, or another node ingested the file. Nobody will read them again. */
    int orphans = tly_ingest_sweep_uploads(ing, 0, err);
    if (orphans < 0)
        return -1;
    if (tmp_removed || blob_tmp || orphans)
        LOG_INFO("ingest", "recovery removed %d spool temp files, %d blob temp files, %d orphan uploads",
                 tmp_removed, blob_tmp, orphans);
    return 0;
}
