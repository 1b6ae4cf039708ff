/* export.c -- see export.h. */
#include "export/export.h"
#include "annotate/work.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "export/out.h"
#include "export/write_imagenet.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 1000
#define COPY_CHUNK (256 * 1024)

/* ---- live progress (this process) ------------------------------------------------------ */

#define MAX_LIVE 16
static struct {
    int64_t id, done, total;
} live[MAX_LIVE];
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;

static void live_set(int64_t id, int64_t done, int64_t total)
{
    pthread_mutex_lock(&live_mu);
    int slot = -1;
    for (int i = 0; i < MAX_LIVE && slot < 0; i++)
        if (live[i].id == id || (live[i].id == 0 && total >= 0))
            slot = i;
    if (slot >= 0) {
        if (total < 0)
            live[slot].id = 0;   /* finished */
        else
            live[slot].id = id, live[slot].done = done, live[slot].total = total;
    }
    pthread_mutex_unlock(&live_mu);
}

static int live_get(int64_t id, int64_t *done, int64_t *total)
{
    int found = 0;
    pthread_mutex_lock(&live_mu);
    for (int i = 0; i < MAX_LIVE && !found; i++)
        if (live[i].id == id) {
            *done = live[i].done;
            *total = live[i].total;
            found = 1;
        }
    pthread_mutex_unlock(&live_mu);
    return found;
}

/* ---- the request ------------------------------------------------------------------------- */

static json_t *normalize(const tly_project *p, json_t *body, const tly_export_writer **writer, tly_error *err)
{
    static const char *const keys[] = {"format", "split", "media", "filters", NULL};
    static const char *const split_keys[] = {"train", "val", "test", "seed", "stratify", NULL};
    static const char *const filter_keys[] = {"batch_id", "state", "min_confidence", "label", NULL};
    const char *format = NULL;
    json_t *split = NULL, *filters = NULL;
    int media = 1;
    if (tly_json_only_keys(body, "export", keys, err) < 0 || tly_json_get_string(body, "format", 1, &format, err) < 0 ||
        tly_json_get_object(body, "split", 0, &split, err) < 0 || tly_json_get_bool(body, "media", 0, &media, err) < 0 ||
        tly_json_get_object(body, "filters", 0, &filters, err) < 0)
        return NULL;
    if (!(*writer = tly_export_writer_find(format))) {
        tly_fail(err, TLY_E_INVALID, "invalid_format", "unknown format '%s' (known: %s)", format,
                 tly_export_writer_names());
        return NULL;
    }
    if (strcmp((*writer)->media, "any") != 0 && strcmp((*writer)->media, p->media) != 0) {
        tly_fail(err, TLY_E_UNPROCESSABLE, "format_mismatch", "format '%s' is for %s projects; this one is %s", format,
                 (*writer)->media, p->media);
        return NULL;
    }
    json_t *out = json_pack("{s:s,s:b}", "format", format, "media", media);
    if (split) {
        double train = 0, val = 0, test = 0;
        int64_t seed = 0;
        int stratify = 0;
        if (tly_json_only_keys(split, "split", split_keys, err) < 0 ||
            tly_json_get_number(split, "train", 0, 0, 1, &train, err) < 0 ||
            tly_json_get_number(split, "val", 0, 0, 1, &val, err) < 0 ||
            tly_json_get_number(split, "test", 0, 0, 1, &test, err) < 0 ||
            tly_json_get_int(split, "seed", 0, 0, INT64_MAX, &seed, err) < 0 ||
            tly_json_get_bool(split, "stratify", 0, &stratify, err) < 0)
            goto fail;
        if (train + val + test < 1 - 1e-6 || train + val + test > 1 + 1e-6) {
            tly_fail(err, TLY_E_INVALID, "invalid_split", "split fractions must add up to 1 (they add up to %g)",
                     train + val + test);
            goto fail;
        }
        json_object_set_new(out, "split", json_pack("{s:f,s:f,s:f,s:I,s:b}", "train", train, "val", val, "test",
                                                    test, "seed", (json_int_t)seed, "stratify", stratify));
    }
    json_t *f = json_pack("{s:s}", "state", "released");
    json_object_set_new(out, "filters", f);
    if (filters) {
        const char *state = NULL, *label = NULL;
        int64_t batch = 0;
        double minc = 0;
        if (tly_json_only_keys(filters, "filters", filter_keys, err) < 0 ||
            tly_json_get_int(filters, "batch_id", 0, 1, INT64_MAX, &batch, err) < 0 ||
            tly_json_get_string(filters, "state", 0, &state, err) < 0 ||
            tly_json_get_number(filters, "min_confidence", 0, 0, 1, &minc, err) < 0 ||
            tly_json_get_string(filters, "label", 0, &label, err) < 0)
            goto fail;
        if (state && strcmp(state, "released") != 0 && strcmp(state, "done") != 0) {
            tly_fail(err, TLY_E_INVALID, "invalid_filter", "filters.state must be released or done");
            goto fail;
        }
        if (state)
            json_object_set_new(f, "state", json_string(state));
        if (batch)
            json_object_set_new(f, "batch_id", json_integer(batch));
        if (minc > 0)
            json_object_set_new(f, "min_confidence", json_real(minc));
        if (label)
            json_object_set_new(f, "label", json_string(label));
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

int tly_export_create(tly_store *st, int64_t project_id, const tly_user *user, json_t *body, tly_export_rec *out,
                      tly_error *err)
{
    tly_project p = {0};
    const tly_export_writer *w = NULL;
    memset(out, 0, sizeof *out);
    if (tly_store_project_get(st, project_id, &p, err) < 0)
        return -1;
    json_t *params = normalize(&p, body, &w, err);
    tly_project_clear(&p);
    if (!params)
        return -1;
    out->project_id = project_id;
    snprintf(out->format, sizeof out->format, "%s", w->name);
    out->params = params;
    out->created_by = user->id;
    if (tly_store_export_create(st, out, err) < 0) {
        tly_export_rec_clear(out);
        return -1;
    }
    return 0;
}

void tly_export_paths(const char *exports_dir, const tly_export_rec *e, char *artifact, char *manifest, size_t sz)
{
    snprintf(artifact, sz, "%s/%s", exports_dir, e->artifact);
    snprintf(manifest, sz, "%s/%lld.manifest.jsonl", exports_dir, (long long)e->id);
}

json_t *tly_export_rec_json(const tly_export_rec *e)
{
    char created[32], finished[32];
    tly_format_rfc3339(e->created_at, created, sizeof created);
    tly_format_rfc3339(e->finished_at, finished, sizeof finished);
    int64_t done = e->progress, total = e->total;
    if (strcmp(e->state, "done") != 0 && strcmp(e->state, "failed") != 0)
        live_get(e->id, &done, &total);
    json_t *j = json_pack("{s:I,s:I,s:s,s:s,s:O,s:I,s:I,s:I,s:s?,s:{s:I,s:I},s:s,s:s?,s:s?}", "id", (json_int_t)e->id,
                          "project_id", (json_int_t)e->project_id, "state", e->state, "format", e->format, "params",
                          e->params ? e->params : json_null(), "items", (json_int_t)e->items, "files",
                          (json_int_t)e->files, "bytes", (json_int_t)e->bytes, "sha256", e->sha256[0] ? e->sha256 : NULL,
                          "progress", "done", (json_int_t)done, "total", (json_int_t)total, "created_at", created,
                          "finished_at", e->finished_at ? finished : NULL, "error", e->error);
    if (strcmp(e->state, "done") == 0) {
        char url[64];
        snprintf(url, sizeof url, "/v1/exports/%lld/download", (long long)e->id);
        json_object_set_new(j, "download_url", json_string(url));
        json_object_set_new(j, "artifact",
                            json_pack("{s:s,s:s,s:I}", "content_type", e->content_type, "sha256", e->artifact_sha256,
                                      "size", (json_int_t)e->artifact_size));
    }
    return j;
}

/* ---- the job ------------------------------------------------------------------------------- */

typedef struct {
    tly_store *st;
    tly_export_rec rec;
    tly_project p;
    const tly_export_writer *w;
    tly_export_context ctx;
    void *state;
    tly_export_out *out;
    tly_export_filter filter;
    const char *label;            /* filters.label or NULL */
    int has_split;
    double train, val, test;
    int64_t seed;
    char split_key[65];           /* stratified: the split configuration's key, else "" */
    int pass;
    int64_t index, done, total, last_item;
    tly_error err;
    int failed;
} job;

/* "00000042-photo": stable, unique (the id), safe in every file system. */
static void make_stem(int64_t id, const char *name, char *out, size_t outsz)
{
    int n;
    if (id >= 0 && id < 100000000000000000LL && outsz > 20) {   /* "%08lld-" without printf, per item */
        char tmp[20];
        int k = 0;
        for (uint64_t u = (uint64_t)id; u || k < 8; u /= 10)
            tmp[k++] = (char)('0' + u % 10);
        for (n = 0; n < k; n++)
            out[n] = tmp[k - 1 - n];
        out[n++] = '-';
        out[n] = 0;
    } else {
        n = snprintf(out, outsz, "%08lld-", (long long)id);
    }
    const char *dot = strrchr(name, '.');
    size_t len = dot && dot != name ? (size_t)(dot - name) : strlen(name);
    for (size_t i = 0; i < len && (size_t)n + 1 < outsz && i < 80; i++) {
        unsigned char c = (unsigned char)name[i];
        out[n++] = isalnum(c) || c == '-' || c == '_' || c == '.' ? (char)c : '_';
    }
    out[n] = 0;
}

static void make_ext(const char *name, json_t *media, char *out, size_t outsz)
{
    const char *dot = strrchr(name, '.');
    const char *fmt = json_string_value(json_object_get(media, "format"));
    if (dot && dot[1] && strlen(dot + 1) < 8) {
        size_t i = 0;
        for (const char *s = dot + 1; *s && i + 1 < outsz; s++)
            out[i++] = (char)tolower((unsigned char)*s);
        out[i] = 0;
    } else {
        snprintf(out, outsz, "%s", fmt && strcmp(fmt, "jpeg") == 0 ? "jpg" : fmt ? fmt : "bin");
    }
}

/* Appends s at *n in out as snprintf would (truncated, NUL-terminated). */
static void cat(char *out, size_t outsz, size_t *n, const char *s)
{
    size_t len = strlen(s);
    if (*n + len >= outsz)
        len = *n + 1 < outsz ? outsz - 1 - *n : 0;
    memcpy(out + *n, s, len);
    *n += len;
    out[*n] = 0;
}

/* The split of an item: a hash of its content and the seed, so it never changes. */
static const char *split_of(const job *j, const char *sha256)
{
    char msg[96], hex[65];
    int n = snprintf(msg, sizeof msg, "%lld:%s", (long long)j->seed, sha256);
    tly_sha256_hex(msg, (size_t)n, hex);
    char head[14];
    memcpy(head, hex, 13);
    head[13] = 0;
    double u = (double)strtoull(head, NULL, 16) / 4503599627370496.0;
    return u < j->train ? "train" : u < j->train + j->val ? "val" : "test";
}

static int has_label(json_t *answer, const char *label)
{
    const char *key;
    json_t *v;
    json_object_foreach(answer, key, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), label) == 0)
            return 1;
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (json_is_string(e) && strcmp(json_string_value(e), label) == 0)
                return 1;
            const char *l = json_string_value(json_object_get(e, "label"));
            if (l && strcmp(l, label) == 0)
                return 1;
        }
    }
    return 0;
}

static json_t *annotators(const tly_project *p, const char *ids)
{
    json_t *a = json_array();
    for (const char *s = ids; s && *s;) {
        char *end;
        long long id = strtoll(s, &end, 10);
        if (end == s)
            break;
        char pseudonym[24];
        tly_work_pseudonym(p, id, pseudonym, sizeof pseudonym);
        json_array_append_new(a, json_string(pseudonym));
        s = *end == ',' ? end + 1 : end;
    }
    return a;
}

/* A stored JSON column as a view (export/jsonview.h), refused as the store refuses a
 * corrupt column it parses (sq_col_json). NULL text: no value. */
static int view_of(const char *text, int col, tly_jv_doc *doc, tly_jv *view, tly_error *err)
{
    const char *why = NULL;
    memset(view, 0, sizeof *view);
    if (text && tly_jv_parse_doc(doc, text, strlen(text), view, &why) < 0)
        return tly_fail(err, TLY_E_IO, "corrupt_row", "stored JSON in column %d: %s", col, why ? why : "invalid");
    return 0;
}

static int on_row(const tly_export_row *row, void *arg)
{
    job *j = arg;
    j->done++;
    j->last_item = row->item_id;
    if (j->label && !has_label(row->answer, j->label))
        return 0;
    char stem[128], ext[16], media_path[256];
    make_stem(row->item_id, row->name ? row->name : "item", stem, sizeof stem);
    make_ext(row->name ? row->name : "", row->media, ext, sizeof ext);
    const char *split = !j->has_split ? NULL : j->split_key[0] ? row->split : split_of(j, row->sha256);
    if (j->has_split && !split) {
        tly_fail(&j->err, TLY_E_INTERNAL, "split", "item %lld has no split assignment", (long long)row->item_id);
        j->failed = 1;
        return -1;
    }
    tly_export_item it = {
        .item_id = row->item_id, .index = j->index, .name = row->name, .stem = stem, .media_path = media_path,
        .sha256 = row->sha256, .media = row->media, .answer = row->answer, .confidence = row->confidence,
        .method = row->method ? row->method : "", .judgments = row->judgments, .detail = row->detail,
        .split = split, .updated_at = row->updated_at,
    };
    if (j->w == &tly_writer_imagenet) {
        const char *cls = tly_imagenet_class_of(&j->ctx, &it);
        if (!cls)
            return 0;   /* no class: not in a class folder */
        snprintf(media_path, sizeof media_path, "%s/%s/%s.%s", split ? split : "all", cls, stem, ext);
    } else {
        /* "dir[/split]/stem.ext", by hand: snprintf per item showed in profiles. */
        size_t n = 0;
        media_path[0] = 0;
        cat(media_path, sizeof media_path, &n, strcmp(j->p.media, "audio") == 0 ? "audio/" : "images/");
        if (split) {
            cat(media_path, sizeof media_path, &n, split);
            cat(media_path, sizeof media_path, &n, "/");
        }
        cat(media_path, sizeof media_path, &n, stem);
        cat(media_path, sizeof media_path, &n, ".");
        cat(media_path, sizeof media_path, &n, ext);
    }
    tly_jv_doc answer_doc, detail_doc;   /* the views' container ends (jsonview.h) */
    if (j->w->raw_answers && (view_of(row->answer_text, 6, &answer_doc, &it.answer_view, &j->err) < 0 ||
                              view_of(row->detail_text, 9, &detail_doc, &it.detail_view, &j->err) < 0)) {
        j->failed = 1;
        return -1;
    }
    if (j->w->raw_answers)
        it.answer = it.detail = NULL;   /* parsed only for a label filter; writers read the views */
    it.annotators = annotators(&j->p, row->worker_ids);
    int rc = j->w->item(j->state, &j->ctx, &it, j->out, j->pass, &j->err);
    if (rc == 0 && j->pass == 0 && j->ctx.with_media)
        rc = tly_export_out_add(j->out, media_path, row->sha256, row->size, &j->err);
    json_decref(it.annotators);
    j->index++;
    if (j->done % PAGE == 0)
        live_set(j->rec.id, j->done, j->total);
    if (rc < 0) {
        j->failed = 1;
        return -1;
    }
    return 0;
}

/* One pass over the results, a page at a time (keyset on the item id). */
static int run_pass(job *j, tly_error *err)
{
    j->index = 0;
    j->last_item = 0;
    /* A label filter reads every answer; otherwise a pass may do without them. */
    j->filter.without_answer = !j->label && ((j->w->answerless_passes >> j->pass) & 1u);
    j->filter.with_workers = j->w->uses_annotators;
    /* Writers that read the stored text need no jansson tree (unless the label filter does). */
    j->filter.raw_json = j->w->raw_answers && !j->label;
    if (j->w->begin(&j->state, &j->ctx, j->out, j->pass, err) < 0)
        return -1;
    for (;;) {
        int64_t n = tly_store_export_rows(j->st, j->p.id, &j->filter, j->last_item, PAGE, on_row, j, err);
        if (n < 0) {
            if (j->failed && err)
                *err = j->err;
            return -1;
        }
        if (n < PAGE)
            break;
    }
    return j->w->end(j->state, &j->ctx, j->out, j->pass, err);
}

/* ---- the artifact --------------------------------------------------------------------------- */

typedef struct {
    int fd;
    tly_sha256 *h;
    int64_t size;
} sink;

static la_ssize_t sink_write(struct archive *a, void *data, const void *buf, size_t len)
{
    sink *s = data;
    if (tly_write_all(s->fd, buf, len) < 0) {
        archive_set_error(a, errno, "write: %s", strerror(errno));
        return -1;
    }
    tly_sha256_update(s->h, buf, len);
    s->size += (int64_t)len;
    return (la_ssize_t)len;
}

/* A deterministic entry header: fixed time and owner, 0644. */
static int tar_header(struct archive *a, const char *path, int64_t size, tly_error *err)
{
    struct archive_entry *e = archive_entry_new();
    if (!e)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    archive_entry_set_pathname(e, path);
    archive_entry_set_size(e, size);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    int rc = archive_write_header(a, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK)
        return tly_fail(err, TLY_E_IO, "archive", "tar header for %s: %s", path, archive_error_string(a));
    return 0;
}

static int tar_fd(struct archive *a, int fd, const char *path, int64_t size, char *buf, tly_error *err)
{
    if (tar_header(a, path, size, err) < 0)
        return -1;
    int64_t left = size;
    while (left > 0) {
        ssize_t n = read(fd, buf, left < COPY_CHUNK ? (size_t)left : COPY_CHUNK);
        if (n <= 0)
            return tly_fail(err, TLY_E_IO, "export_io", "reading %s: %s", path, n < 0 ? strerror(errno) : "short file");
        if (archive_write_data(a, buf, (size_t)n) != n)
            return tly_fail(err, TLY_E_IO, "archive", "tar data for %s: %s", path, archive_error_string(a));
        left -= n;
    }
    return 0;
}

static int tar_blob(struct archive *a, tly_blob_store *blobs, const char *path, const char *sha256, char *buf,
                    tly_error *err)
{
    tly_blob_reader *r = NULL;
    if (tly_blob_open_read(blobs, sha256, &r, err) < 0)
        return -1;
    int64_t size = (int64_t)tly_blob_reader_size(r);
    int rc = tar_header(a, path, size, err);
    for (int64_t off = 0; rc == 0 && off < size;) {
        ssize_t n = tly_blob_read_at(r, buf, COPY_CHUNK, (uint64_t)off);
        if (n <= 0)
            rc = tly_fail(err, TLY_E_IO, "export_io", "reading the media of %s", path);
        else if (archive_write_data(a, buf, (size_t)n) != n)
            rc = tly_fail(err, TLY_E_IO, "archive", "tar data for %s: %s", path, archive_error_string(a));
        else
            off += n;
    }
    tly_blob_reader_close(r);
    return rc;
}

/* The tar of the dataset, in manifest order, then manifest.jsonl itself. */
static int build_tar(const char *root, const char *manifest, tly_blob_store *blobs, const char *tar_path,
                     char *sha_out, int64_t *size_out, tly_error *err)
{
    sink s = {-1, tly_sha256_new(), 0};
    FILE *mf = fopen(manifest, "r");
    char *buf = malloc(COPY_CHUNK), *line = NULL;
    size_t cap = 0;
    struct archive *a = archive_write_new();
    int rc = -1;
    if (!s.h || !mf || !buf || !a) {
        tly_fail(err, TLY_E_IO, "export_io", "cannot start the archive: %s", strerror(errno));
        goto out;
    }
    if ((s.fd = open(tar_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        tly_fail(err, TLY_E_IO, "export_io", "cannot create %s: %s", tar_path, strerror(errno));
        goto out;
    }
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_open2(a, &s, NULL, sink_write, NULL, NULL) != ARCHIVE_OK) {
        tly_fail(err, TLY_E_IO, "archive", "cannot start the archive: %s", archive_error_string(a));
        goto out;
    }
    while (getline(&line, &cap, mf) > 0) {
        json_t *entry = json_loads(line, 0, NULL);
        const char *path = json_string_value(json_object_get(entry, "path"));
        const char *sha = json_string_value(json_object_get(entry, "sha256"));
        int64_t size = json_integer_value(json_object_get(entry, "size"));
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", root, path ? path : "");
        int fd = path ? open(full, O_RDONLY | O_CLOEXEC) : -1;
        int r = !path || !sha ? tly_fail(err, TLY_E_INTERNAL, "manifest", "bad manifest line")
                : fd >= 0      ? tar_fd(a, fd, path, size, buf, err)   /* an annotation file */
                               : tar_blob(a, blobs, path, sha, buf, err);   /* media */
        if (fd >= 0)
            close(fd);
        json_decref(entry);
        if (r < 0)
            goto out;
    }
    struct stat sb;
    int mfd = open(manifest, O_RDONLY | O_CLOEXEC);
    if (mfd < 0 || fstat(mfd, &sb) < 0 || tar_fd(a, mfd, "manifest.jsonl", sb.st_size, buf, err) < 0) {
        if (mfd >= 0)
            close(mfd);
        if (!err || !err->status)
            tly_fail(err, TLY_E_IO, "export_io", "cannot read the manifest");
        goto out;
    }
    close(mfd);
    if (archive_write_close(a) != ARCHIVE_OK) {
        tly_fail(err, TLY_E_IO, "archive", "cannot finish the archive: %s", archive_error_string(a));
        goto out;
    }
    if (fsync(s.fd) < 0) {
        tly_fail(err, TLY_E_IO, "export_io", "cannot sync %s: %s", tar_path, strerror(errno));
        goto out;
    }
    tly_sha256_finish(s.h, sha_out);
    s.h = NULL;
    *size_out = s.size;
    rc = 0;
out:
    if (a)
        archive_write_free(a);
    if (s.fd >= 0)
        close(s.fd);
    if (s.h)
        tly_sha256_free(s.h);
    if (mf)
        fclose(mf);
    free(buf);
    free(line);
    return rc;
}

static const char *content_type_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (!dot)
        return "application/octet-stream";
    if (strcmp(dot, ".json") == 0)
        return "application/json";
    if (strcmp(dot, ".jsonl") == 0)
        return "application/x-ndjson";
    if (strcmp(dot, ".csv") == 0)
        return "text/csv";
    if (strcmp(dot, ".xml") == 0)
        return "application/xml";
    return "text/plain";
}

/* The single annotation file of a media-less one-file dataset, moved out of root. */
static int single_file(const char *root, const char *manifest, const char *dest_dir, int64_t id, tly_export_rec *rec,
                       tly_error *err)
{
    size_t len = 0;
    char *text = tly_read_file(manifest, 1 << 20, &len);
    json_t *entry = text ? json_loads(text, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    free(text);
    const char *path = json_string_value(json_object_get(entry, "path"));
    int rc = -1;
    if (!path) {
        tly_fail(err, TLY_E_INTERNAL, "manifest", "cannot read the manifest");
        goto out;
    }
    char from[4096], to[4096];
    snprintf(from, sizeof from, "%s/%s", root, path);
    snprintf(rec->artifact, sizeof rec->artifact, "%lld-%s", (long long)id, tly_basename(path));
    snprintf(to, sizeof to, "%s/%s", dest_dir, rec->artifact);
    if (rename(from, to) < 0) {
        tly_fail(err, TLY_E_IO, "export_io", "cannot move %s: %s", path, strerror(errno));
        goto out;
    }
    snprintf(rec->artifact_sha256, sizeof rec->artifact_sha256, "%s", json_string_value(json_object_get(entry, "sha256")));
    rec->artifact_size = json_integer_value(json_object_get(entry, "size"));
    snprintf(rec->content_type, sizeof rec->content_type, "%s", content_type_of(path));
    rc = 0;
out:
    json_decref(entry);
    return rc;
}

/* ---- stratified splits ---------------------------------------------------------------------- */

/* The class an item is stratified by: the first choice control's value, else the
 * first label of the first region control, else "" (one class). */
static const char *class_of(json_t *tmpl, json_t *answer)
{
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(tmpl, "controls"), i, def) {
        json_t *v = json_object_get(answer, json_string_value(json_object_get(def, "name")));
        const char *type = json_string_value(json_object_get(def, "type"));
        if (!v || !type)
            continue;
        if (strcmp(type, "choice") == 0 && json_is_string(v))
            return json_string_value(v);
        if (json_is_array(v) && json_array_size(v)) {
            const char *l = json_string_value(json_object_get(json_array_get(v, 0), "label"));
            if (l)
                return l;
        }
    }
    return "";
}

typedef struct {
    job *j;
    json_t *counts;               /* class -> {"train","val","test"} */
    int64_t assigned;
    tly_error err;
    int failed;
} stratifier;

/* Each new item goes to the split furthest below its share in the item's class
 * (ties: train, val, test), in item order: exact proportions per class, decided
 * once and kept for every later version. */
static int assign_row(const tly_export_row *row, void *arg)
{
    stratifier *sf = arg;
    job *j = sf->j;
    const char *cls = class_of(j->p.template_json, row->answer);
    json_t *c = json_object_get(sf->counts, cls);
    if (!c) {
        c = json_pack("{s:i,s:i,s:i}", "train", 0, "val", 0, "test", 0);
        json_object_set_new(sf->counts, cls, c);
    }
    static const char *const names[3] = {"train", "val", "test"};
    double share[3] = {j->train, j->val, j->test}, n = 1;
    for (int k = 0; k < 3; k++)
        n += (double)json_integer_value(json_object_get(c, names[k]));
    int best = 0;
    double best_gap = -1e300;
    for (int k = 0; k < 3; k++) {
        double gap = share[k] * n - (double)json_integer_value(json_object_get(c, names[k]));
        if (share[k] > 0 && gap > best_gap + 1e-12) {
            best_gap = gap;
            best = k;
        }
    }
    json_object_set_new(c, names[best], json_integer(json_integer_value(json_object_get(c, names[best])) + 1));
    if (tly_store_split_assign(j->st, j->p.id, j->split_key, row->item_id, cls, names[best], &sf->err) < 0) {
        sf->failed = 1;
        return -1;
    }
    sf->assigned++;
    return 0;
}

static int stratify(job *j, tly_error *err)
{
    stratifier sf = {.j = j};
    if (tly_store_split_counts(j->st, j->p.id, j->split_key, &sf.counts, err) < 0)
        return -1;
    tly_export_filter f = j->filter;
    f.split_key = j->split_key;
    f.unassigned_only = 1;
    f.without_answer = 0;
    f.raw_json = 0;   /* class_of reads the parsed answer */
    int rc = 0;
    for (;;) {
        /* Each page in its own transaction: assignments are decided once and kept. */
        if (tly_store_begin(j->st, err) < 0) {
            rc = -1;
            break;
        }
        int64_t n = tly_store_export_rows(j->st, j->p.id, &f, 0, PAGE, assign_row, &sf, err);
        if (n < 0 || tly_store_commit(j->st, err) < 0) {
            tly_store_rollback(j->st);
            if (sf.failed && err)
                *err = sf.err;
            rc = -1;
            break;
        }
        if (n < PAGE)
            break;
    }
    json_decref(sf.counts);
    return rc;
}

static int write_dataset(job *j, tly_blob_store *blobs, const char *exports_dir, const char *tmp, tly_error *err)
{
    char root[4096], manifest[4096];
    snprintf(root, sizeof root, "%s/data", tmp);
    snprintf(manifest, sizeof manifest, "%s/manifest.jsonl", tmp);
    if (!(j->out = tly_export_out_new(root, manifest, err)))
        return -1;
    if (j->split_key[0] && stratify(j, err) < 0)
        return -1;
    j->filter.split_key = j->split_key[0] ? j->split_key : NULL;
    /* One read snapshot for every pass: the same rows each time. */
    if (tly_store_snapshot_begin(j->st, err) < 0)
        return -1;
    int rc = tly_store_export_count(j->st, j->p.id, &j->filter, &j->total, err);
    j->total *= j->w->passes;
    live_set(j->rec.id, 0, j->total);
    for (j->pass = 0; rc == 0 && j->pass < j->w->passes; j->pass++)
        rc = run_pass(j, err);
    tly_store_snapshot_end(j->st);
    int64_t items = j->index;
    j->w->free_state(j->state);
    j->state = NULL;
    if (rc < 0)
        return -1;
    int64_t files = 0, bytes = 0;
    if (tly_export_out_finish(j->out, j->rec.sha256, &files, &bytes, err) < 0)
        return -1;
    j->rec.items = items;
    j->rec.files = files;
    j->rec.bytes = bytes;
    if (!j->ctx.with_media && files == 1)
        return single_file(root, manifest, exports_dir, j->rec.id, &j->rec, err);
    snprintf(j->rec.artifact, sizeof j->rec.artifact, "%lld.tar", (long long)j->rec.id);
    snprintf(j->rec.content_type, sizeof j->rec.content_type, "application/x-tar");
    char tar[4096];
    snprintf(tar, sizeof tar, "%s/%s", exports_dir, j->rec.artifact);
    return build_tar(root, manifest, blobs, tar, j->rec.artifact_sha256, &j->rec.artifact_size, err);
}

int tly_export_run(tly_store *st, tly_blob_store *blobs, const char *exports_dir, int64_t id, tly_error *err)
{
    job j;
    memset(&j, 0, sizeof j);
    j.st = st;
    if (tly_store_export_get(st, id, &j.rec, err) < 0)
        return -1;
    int rc = -1;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/%lld.tmp", exports_dir, (long long)id);
    if (strcmp(j.rec.state, "done") == 0) {   /* finished before a crash lost the job's end */
        rc = 0;
        goto out_quiet;
    }
    int64_t d0, t0;
    if (live_get(id, &d0, &t0)) {
        /* Still running here (a job lease outlived by a very long export): the other
         * run owns the files; this attempt comes back later. */
        tly_export_rec_clear(&j.rec);
        return tly_fail(err, TLY_E_BUSY, "export_running", "export %lld is still being written", (long long)id);
    }
    live_set(id, 0, 0);   /* from here on this process owns the export's files */
    if (tly_store_project_get(st, j.rec.project_id, &j.p, err) < 0 || !(j.w = tly_export_writer_find(j.rec.format))) {
        if (!j.w && j.p.id)
            tly_fail(err, TLY_E_INTERNAL, "invalid_format", "unknown format %s", j.rec.format);
        goto failed;
    }
    json_t *params = j.rec.params, *split = json_object_get(params, "split"), *f = json_object_get(params, "filters");
    j.filter.state = json_string_value(json_object_get(f, "state"));
    j.filter.batch_id = json_integer_value(json_object_get(f, "batch_id"));
    j.filter.min_confidence = json_number_value(json_object_get(f, "min_confidence"));
    j.label = json_string_value(json_object_get(f, "label"));
    if ((j.has_split = split != NULL)) {
        j.train = json_number_value(json_object_get(split, "train"));
        j.val = json_number_value(json_object_get(split, "val"));
        j.test = json_number_value(json_object_get(split, "test"));
        j.seed = json_integer_value(json_object_get(split, "seed"));
        if (json_is_true(json_object_get(split, "stratify"))) {
            /* The key names the configuration (fractions and seed), not the export. */
            char *text = json_dumps(split, JSON_COMPACT | JSON_SORT_KEYS);
            if (text)
                tly_sha256_hex(text, strlen(text), j.split_key);
            free(text);
        }
    }
    char job_name[64];
    snprintf(job_name, sizeof job_name, "tally-project-%lld", (long long)j.p.id);
    j.ctx = (tly_export_context){.project_id = j.p.id, .project_name = j.p.name, .media = j.p.media,
                                 .template_json = j.p.template_json, .job_name = job_name, .has_split = j.has_split,
                                 .with_media = json_is_true(json_object_get(params, "media"))};
    if (tly_mkdirs(exports_dir, 0755) < 0) {
        tly_fail(err, TLY_E_IO, "export_io", "cannot create %s: %s", exports_dir, strerror(errno));
        goto failed;
    }
    tly_remove_tree(tmp);   /* a crashed earlier attempt */
    if (tly_store_export_progress(st, id, 0, 0, err) < 0)
        goto out;
    if (write_dataset(&j, blobs, exports_dir, tmp, err) < 0)
        goto failed;
    char kept[4096], from[4096];
    snprintf(from, sizeof from, "%s/manifest.jsonl", tmp);
    snprintf(kept, sizeof kept, "%s/%lld.manifest.jsonl", exports_dir, (long long)id);
    if (rename(from, kept) < 0) {
        tly_fail(err, TLY_E_IO, "export_io", "cannot keep the manifest: %s", strerror(errno));
        goto out;
    }
    /* Artifact and manifest go to the blob store, named by the SHA-256s the record
     * already carries, before the export is marked done: any node then serves the
     * download, and the same dataset is stored once. Moved, not copied, where the
     * store is a local directory on this file system. */
    char artifact[4096];
    tly_export_paths(exports_dir, &j.rec, artifact, kept, sizeof artifact);
    tly_error put_err;
    if (tly_blob_put_file(blobs, artifact, j.rec.artifact_sha256, 1, NULL, &put_err) < 0 ||
        tly_blob_put_file(blobs, kept, j.rec.sha256, 1, NULL, &put_err) < 0) {
        unlink(artifact);
        unlink(kept);
        /* Retried like any I/O trouble (the blob store may be unreachable a while). */
        tly_fail(err, TLY_E_IO, "export_io", "cannot store the export in the blob store: %s", put_err.message);
        goto out;
    }
    if (tly_store_export_finish(st, &j.rec, err) < 0)
        goto out;
    LOG_INFO("export", "export %lld (%s): %lld items, %lld files, %lld bytes, version %.12s", (long long)id,
             j.rec.format, (long long)j.rec.items, (long long)j.rec.files, (long long)j.rec.artifact_size, j.rec.sha256);
    rc = 0;
    goto out;
failed:
    /* A bad request or a writer's refusal is final; I/O trouble is retried by the job. */
    if (err && err->status != TLY_E_IO) {
        tly_error ignore;
        tly_store_export_fail(st, id, err->message, &ignore);
        rc = 0;
    }
out:
    if (j.state && j.w)
        j.w->free_state(j.state);
    tly_export_out_free(j.out);
    tly_remove_tree(tmp);
    live_set(id, 0, -1);
out_quiet:
    tly_project_clear(&j.p);
    tly_export_rec_clear(&j.rec);
    return rc;
}
