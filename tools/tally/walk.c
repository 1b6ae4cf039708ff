/* walk.c -- see walk.h.
 *
 * Directories are read with scandir(3)+alphasort so the walk order, and therefore
 * which of two same-named files keeps the plain name, is deterministic. The name set
 * is a small open-addressing hash table (FNV-1a, kept under half full) so naming
 * stays linear in the number of files. Ownership: every string lives in a tc_file and
 * is freed by tc_files_free; the set only points at them.
 */
#include "tools/tally/walk.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_DEPTH 64
#define NAME_MAX_BYTES 255

void tc_files_init(tc_filelist *l)
{
    memset(l, 0, sizeof *l);
}

void tc_files_free(tc_filelist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->files[i].path);
        free(l->files[i].name);
    }
    free(l->files);
    free(l->set);
    tc_files_init(l);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int set_has(const tc_filelist *l, const char *name)
{
    if (!l->set_cap)
        return 0;
    for (size_t i = fnv1a(name) & (l->set_cap - 1);; i = (i + 1) & (l->set_cap - 1)) {
        if (!l->set[i])
            return 0;
        if (strcmp(l->set[i], name) == 0)
            return 1;
    }
}

static void set_put_nogrow(const char **set, size_t cap, const char *name)
{
    size_t i = fnv1a(name) & (cap - 1);
    while (set[i])
        i = (i + 1) & (cap - 1);
    set[i] = name;
}

static int set_add(tc_filelist *l, const char *name)
{
    if ((l->n + 1) * 2 > l->set_cap) {
        size_t cap = l->set_cap ? l->set_cap * 2 : 64;
        const char **set = calloc(cap, sizeof *set);
        if (!set)
            return -1;
        for (size_t i = 0; i < l->set_cap; i++)
            if (l->set[i])
                set_put_nogrow(set, cap, l->set[i]);
        free(l->set);
        l->set = set;
        l->set_cap = cap;
    }
    set_put_nogrow(l->set, l->set_cap, name);
    return 0;
}

/* A unique upload name for path (malloc'd), or NULL on out-of-memory. rel is the
 * tail of path used for the flattened name. */
static char *unique_name(const tc_filelist *l, const char *path, const char *rel)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!set_has(l, base))
        return strdup(base);

    /* rel, without leading "/", "./" and "../", with '/' -> '_' */
    const char *p = rel;
    for (;;) {
        if (*p == '/')
            p++;
        else if (strncmp(p, "./", 2) == 0)
            p += 2;
        else if (strncmp(p, "../", 3) == 0)
            p += 3;
        else
            break;
    }
    size_t plen = strlen(p);
    if (plen <= NAME_MAX_BYTES) {
        char *flat = strdup(p);
        if (!flat)
            return NULL;
        for (char *c = flat; *c; c++)
            if (*c == '/')
                *c = '_';
        if (!set_has(l, flat))
            return flat;
        free(flat);
    }

    /* base-N.ext */
    const char *dot = strrchr(base, '.');
    size_t stem = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    size_t n = strlen(base) + 24;
    char *cand = malloc(n);
    if (!cand)
        return NULL;
    for (unsigned k = 2;; k++) {
        snprintf(cand, n, "%.*s-%u%s", (int)stem, base, k, base + stem);
        if (!set_has(l, cand))
            return cand;
    }
}

static int add_file(tc_filelist *l, const char *path, const char *rel, uint64_t size,
                    tly_error *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        tc_file *f = realloc(l->files, cap * sizeof *f);
        if (!f)
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        l->files = f;
        l->cap = cap;
    }
    tc_file *f = &l->files[l->n];
    f->path = strdup(path);
    f->name = unique_name(l, path, rel);
    f->size = size;
    if (!f->path || !f->name || set_add(l, f->name) < 0) {
        free(f->path);
        free(f->name);
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    l->n++;
    l->total_bytes += size;
    return 0;
}

/* rel_off: where, in every path under dir, the part used for flattened names starts
 * (at the walk root's own name, so "in/sub/x.jpg" -> "in_sub_x.jpg"). */
static int walk_dir(tc_filelist *l, const char *dir, size_t rel_off, int depth, tly_error *err)
{
    if (depth > MAX_DEPTH)
        return tly_fail(err, TLY_E_INVALID, "too_deep", "%s: directories nested too deep", dir);
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0)
        return tly_fail(err, TLY_E_IO, "unreadable", "%s: %s", dir, strerror(errno));
    int rc = 0;
    size_t dlen = strlen(dir);
    int slash = dlen > 0 && dir[dlen - 1] == '/';
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        if (rc == 0 && name[0] != '.') {
            size_t cl = dlen + strlen(name) + 2;
            char *child = malloc(cl);
            if (!child) {
                rc = tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
            } else {
                snprintf(child, cl, "%s%s%s", dir, slash ? "" : "/", name);
                struct stat lst, st;
                if (lstat(child, &lst) == 0 && stat(child, &st) == 0) {
                    if (S_ISREG(st.st_mode))
                        rc = add_file(l, child, child + rel_off, (uint64_t)st.st_size, err);
                    else if (S_ISDIR(st.st_mode) && !S_ISLNK(lst.st_mode))
                        rc = walk_dir(l, child, rel_off, depth + 1, err);
                } /* vanished or dangling entries are skipped */
                free(child);
            }
        }
        free(ents[i]);
    }
    free(ents);
    return rc;
}

int tc_files_add_path(tc_filelist *l, const char *path, tly_error *err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return tly_fail(err, TLY_E_IO, "not_found", "%s: %s", path, strerror(errno));
    if (S_ISREG(st.st_mode))
        return add_file(l, path, path, (uint64_t)st.st_size, err);
    if (S_ISDIR(st.st_mode)) {
        /* flattened names start at the root's last component, unless it is "." or ".." */
        size_t end = strlen(path);
        while (end > 1 && path[end - 1] == '/')
            end--;
        size_t start = end;
        while (start > 0 && path[start - 1] != '/')
            start--;
        size_t len = end - start;
        int dots = (len == 1 && path[start] == '.') ||
                   (len == 2 && path[start] == '.' && path[start + 1] == '.') || len == 0 ||
                   (len == 1 && path[start] == '/');
        return walk_dir(l, path, dots ? strlen(path) : start, 0, err);
    }
    return tly_fail(err, TLY_E_INVALID, "not_a_file", "%s: not a regular file or directory",
                    path);
}
