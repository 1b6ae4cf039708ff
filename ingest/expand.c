/* expand.c -- the expand_batch job: turn a directory, URL list or manifest into one
 * batch file (and one ingest_file job) per entry.
 *
 * All rows of a batch are inserted, and the batch closed, in a single transaction:
 * if the process dies half-way nothing is visible and the job simply runs again, so
 * no entry is ever listed twice. Directory walks are recursive, skip hidden entries,
 * and are sorted, so the same directory always yields the same files in the same
 * order. Entries that resolve outside the import roots are still listed (and then
 * rejected one by one with path_not_allowed) so the report names them.
 */
#include "ingest/internal.h"
#include "core/fsutil.h"
#include "core/log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_DIR_FILES 2000000
#define MAX_DEPTH 32

typedef struct {
    char **paths;     /* relative to the walk's root */
    size_t n, cap;
} path_list;

static void path_list_free(path_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->paths[i]);
    free(l->paths);
}

static int path_list_add(path_list *l, const char *p)
{
    if (l->n == MAX_DIR_FILES)
        return -1;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        char **np = realloc(l->paths, cap * sizeof *np);
        if (!np)
            return -1;
        l->paths = np;
        l->cap = cap;
    }
    if (!(l->paths[l->n] = strdup(p)))
        return -1;
    l->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists regular files (and symlinks, checked later) under root/rel. */
static int walk(const char *root, const char *rel, int depth, path_list *out, tly_error *err)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "unreadable", "cannot read directory %s: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char child_rel[PATH_MAX], child[PATH_MAX];
        if (snprintf(child_rel, sizeof child_rel, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >= (int)sizeof child_rel)
            continue;
        snprintf(child, sizeof child, "%s/%s", root, child_rel);
        struct stat st;
        if (lstat(child, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < MAX_DEPTH)
                rc = walk(root, child_rel, depth + 1, out, err);
        } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
            if (path_list_add(out, child_rel) < 0)
                rc = tly_fail(err, TLY_E_TOO_LARGE, "too_many_files", "a directory batch holds at most %d files",
                              MAX_DIR_FILES);
        }
    }
    closedir(d);
    return rc;
}

/* Adds one batch file and its job; names that clash get an index prefix. */
static int add_file(tly_ingest *ing, tly_batch_file *bf, size_t index, tly_error *err)
{
    int64_t id = 0;
    tly_error clash;
    if (tly_store_batch_file_add(ing->st, bf, &id, &clash) < 0) {
        if (clash.status != TLY_E_CONFLICT) {
            if (err)
                *err = clash;
            return -1;
        }
        char renamed[sizeof bf->name];
        snprintf(renamed, sizeof renamed, "%zu-%s", index + 1, bf->name);
        memcpy(bf->name, renamed, sizeof bf->name);
        if (tly_store_batch_file_add(ing->st, bf, &id, err) < 0)
            return -1;
    }
    return tly_store_job_enqueue(ing->st, TLY_JOB_INGEST_FILE, id, NULL, NULL, err);
}

static void name_from_url(const char *url, size_t index, char *out, size_t outsz)
{
    const char *start = strstr(url, "://");
    start = start ? start + 3 : url;
    const char *end = start + strcspn(start, "?#");
    const char *slash = NULL;
    for (const char *p = start; p < end; p++)
        if (*p == '/')
            slash = p;
    if (slash && slash + 1 < end && (size_t)(end - slash - 1) < outsz) {
        snprintf(out, outsz, "%.*s", (int)(end - slash - 1), slash + 1);
        if (tly_is_safe_filename(out))
            return;
    }
    snprintf(out, outsz, "url-%zu", index + 1);
}

static int expand_dir(tly_ingest *ing, const tly_batch *b, tly_error *err)
{
    const char *path = json_string_value(json_object_get(b->source, "path"));
    char root[PATH_MAX];
    if (!path || tly_path_within_roots(path, (const char *const *)ing->roots, ing->cfg.n_import_roots, root,
                                       sizeof root) < 0)
        return tly_fail(err, TLY_E_FORBIDDEN, "path_not_allowed", "directory is gone or outside the import roots");
    path_list files = {0};
    if (walk(root, "", 0, &files, err) < 0) {
        path_list_free(&files);
        return -1;
    }
    if (files.n > 1)   /* an empty list has no array to sort */
        qsort(files.paths, files.n, sizeof *files.paths, cmp_str);
    int rc = 0;
    for (size_t i = 0; i < files.n && rc == 0; i++) {
        char abs[PATH_MAX];
        snprintf(abs, sizeof abs, "%s/%s", root, files.paths[i]);
        tly_batch_file bf = {0};
        bf.batch_id = b->id;
        snprintf(bf.name, sizeof bf.name, "%s", files.paths[i]);
        snprintf(bf.source_kind, sizeof bf.source_kind, "path");
        bf.location = abs;
        rc = add_file(ing, &bf, i, err);
    }
    path_list_free(&files);
    return rc;
}

static int expand_urls(tly_ingest *ing, const tly_batch *b, tly_error *err)
{
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(b->source, "urls"), i, u) {
        tly_batch_file bf = {0};
        bf.batch_id = b->id;
        name_from_url(json_string_value(u), i, bf.name, sizeof bf.name);
        snprintf(bf.source_kind, sizeof bf.source_kind, "url");
        bf.location = (char *)json_string_value(u);
        if (add_file(ing, &bf, i, err) < 0)
            return -1;
    }
    return 0;
}

static int expand_manifest(tly_ingest *ing, const tly_batch *b, tly_error *err)
{
    const char *root = json_string_value(json_object_get(b->source, "root"));
    size_t i;
    json_t *line;
    json_array_foreach(json_object_get(b->source, "lines"), i, line) {
        const char *file = json_string_value(json_object_get(line, "file"));
        const char *url = json_string_value(json_object_get(line, "url"));
        const char *name = json_string_value(json_object_get(line, "name"));
        char abs[PATH_MAX];
        tly_batch_file bf = {0};
        bf.batch_id = b->id;
        if (file) {
            if (file[0] == '/')
                snprintf(abs, sizeof abs, "%s", file);
            else
                snprintf(abs, sizeof abs, "%s/%s", root, file);
            snprintf(bf.source_kind, sizeof bf.source_kind, "path");
            bf.location = abs;
            snprintf(bf.name, sizeof bf.name, "%s", name ? name : file[0] == '/' ? tly_basename(file) : file);
        } else {
            snprintf(bf.source_kind, sizeof bf.source_kind, "url");
            bf.location = (char *)url;
            if (name)
                snprintf(bf.name, sizeof bf.name, "%s", name);
            else
                name_from_url(url, i, bf.name, sizeof bf.name);
        }
        bf.gold = json_object_get(line, "gold");
        bf.meta = json_object_get(line, "meta");
        if (add_file(ing, &bf, i, err) < 0)
            return -1;
    }
    return 0;
}

int tly_expand_batch_job(tly_ingest *ing, const tly_job *job, tly_error *err)
{
    tly_batch b = {0};
    if (tly_store_batch_get(ing->st, job->ref_id, &b, err) < 0) {
        int gone = err && err->status == TLY_E_NOT_FOUND;
        return gone ? tly_store_job_done(ing->st, job->id, err) : -1;
    }
    int rc = 0;
    if (b.closed || b.error) {   /* expanded by an earlier run */
        rc = tly_store_job_done(ing->st, job->id, err);
        goto out;
    }
    tly_error why;
    if (tly_store_begin(ing->st, err) < 0) {
        rc = -1;
        goto out;
    }
    int ex;
    if (strcmp(b.kind, "dir") == 0)
        ex = expand_dir(ing, &b, &why);
    else if (strcmp(b.kind, "urls") == 0)
        ex = expand_urls(ing, &b, &why);
    else
        ex = expand_manifest(ing, &b, &why);
    if (ex < 0) {
        tly_store_rollback(ing->st);
        if (why.status == TLY_E_BUSY || why.status == TLY_E_IO) {
            if (err)
                *err = why;
            rc = 1;   /* database or disk trouble: try again */
            goto out;
        }
        /* The source itself is unusable: the batch fails with the reason. */
        LOG_WARN("ingest", "batch %lld failed: %s", (long long)b.id, why.message);
        if (tly_store_begin(ing->st, err) < 0) {
            rc = -1;
            goto out;
        }
        if (tly_store_batch_fail(ing->st, b.id, why.message, err) < 0 ||
            tly_store_job_done(ing->st, job->id, err) < 0 || tly_store_commit(ing->st, err) < 0) {
            tly_store_rollback(ing->st);
            rc = -1;
        }
        goto out;
    }
    if (tly_store_batch_close(ing->st, b.id, err) < 0 || tly_store_job_done(ing->st, job->id, err) < 0 ||
        tly_store_commit(ing->st, err) < 0) {
        tly_store_rollback(ing->st);
        rc = -1;
        goto out;
    }
    tly_ingest_notify(ing);
out:
    tly_batch_clear(&b);
    return rc;
}
