/* batch.c -- creating, closing and reporting batches.
 *
 * A batch's state is derived, never stored: failed if it has an error; otherwise
 * open while an upload batch still accepts files (or "processing" while a directory,
 * URL list or manifest is being expanded into files); then processing while any file
 * is pending; then done. Counts come from the batch's files (store.h), so they can
 * never drift from the per-file outcomes they summarise. Image items flagged by the
 * ingest checks (imagecheck.h) are counted per flag and listed from the store's
 * image_checks rows, the same way.
 *
 * Sources are validated when the batch is created, so a bad request fails at once
 * with 400/403/422 instead of producing a failed batch later: directory paths must be
 * absolute, free of "..", and inside an import root; URLs must be http(s); manifest
 * lines must name a file or a URL, and their gold answers must fit the template.
 */
#include "ingest/internal.h"
#include "ingest/imagecheck.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "core/timeutil.h"
#include "qa/gold.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SOURCE_LINES 1000000

const char *tly_batch_state(const tly_batch *b)
{
    if (b->error)
        return "failed";
    if (!b->closed)
        return strcmp(b->kind, "upload") == 0 ? "open" : "processing";
    return b->pending > 0 ? "processing" : "done";
}

static int check_import_dir(tly_ingest *ing, const char *path, tly_error *err)
{
    if (path[0] != '/')
        return tly_fail(err, TLY_E_INVALID, "invalid_path", "path '%s' must be absolute", path);
    if (tly_path_has_dotdot(path))
        return tly_fail(err, TLY_E_FORBIDDEN, "path_not_allowed", "path '%s' may not contain '..'", path);
    if (ing->cfg.n_import_roots == 0)
        return tly_fail(err, TLY_E_FORBIDDEN, "path_not_allowed",
                        "server-side import is disabled: start tallyd with --import-root DIR");
    char real[PATH_MAX];
    if (tly_path_within_roots(path, (const char *const *)ing->roots, ing->cfg.n_import_roots, real,
                              sizeof real) < 0)
        return tly_fail(err, TLY_E_FORBIDDEN, "path_not_allowed",
                        "path '%s' does not exist or is not inside an import root", path);
    return 0;
}

static int check_url(const char *url, const char *where, tly_error *err)
{
    if (strlen(url) > 4096 || (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0))
        return tly_fail(err, TLY_E_INVALID, "invalid_url", "%s: '%.200s' is not an http(s) URL", where, url);
    return 0;
}

static int check_manifest(tly_ingest *ing, json_t *source, json_t *tmpl, tly_error *err)
{
    json_t *lines = NULL;
    const char *root = NULL;
    if (tly_json_get_array(source, "lines", 1, &lines, err) < 0 ||
        tly_json_get_string(source, "root", 0, &root, err) < 0)
        return -1;
    if (root && check_import_dir(ing, root, err) < 0)
        return -1;
    if (json_array_size(lines) == 0 || json_array_size(lines) > MAX_SOURCE_LINES)
        return tly_fail(err, TLY_E_INVALID, "invalid_source", "manifest: 'lines' must have 1 to %d entries",
                        MAX_SOURCE_LINES);
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line) {
        char where[64];
        snprintf(where, sizeof where, "manifest line %zu", i + 1);
        static const char *const keys[] = {"file", "url", "name", "gold", "meta", NULL};
        if (!json_is_object(line))
            return tly_fail(err, TLY_E_INVALID, "invalid_source", "%s: must be an object", where);
        tly_error sub;
        const char *file = NULL, *url = NULL, *name = NULL;
        json_t *gold = NULL, *meta = NULL;
        if (tly_json_only_keys(line, where, keys, &sub) < 0 ||
            tly_json_get_string(line, "file", 0, &file, &sub) < 0 ||
            tly_json_get_string(line, "url", 0, &url, &sub) < 0 ||
            tly_json_get_string(line, "name", 0, &name, &sub) < 0 ||
            tly_json_get_object(line, "gold", 0, &gold, &sub) < 0 ||
            tly_json_get_object(line, "meta", 0, &meta, &sub) < 0)
            return tly_fail(err, TLY_E_INVALID, "invalid_source", "%s: %s", where, sub.message);
        if (!file == !url)
            return tly_fail(err, TLY_E_INVALID, "invalid_source", "%s: give exactly one of 'file' or 'url'", where);
        if (url && check_url(url, where, err) < 0)
            return -1;
        if (file) {
            if (tly_path_has_dotdot(file))
                return tly_fail(err, TLY_E_FORBIDDEN, "path_not_allowed", "%s: path may not contain '..'", where);
            if (file[0] != '/' && !root)
                return tly_fail(err, TLY_E_INVALID, "invalid_source",
                                "%s: relative file '%s' needs the source's 'root' directory", where, file);
            if (ing->cfg.n_import_roots == 0)
                return tly_fail(err, TLY_E_FORBIDDEN, "path_not_allowed",
                                "server-side files are disabled: start tallyd with --import-root DIR");
        }
        if (name && !tly_is_safe_filename(name))
            return tly_fail(err, TLY_E_INVALID, "invalid_name", "%s: 'name' must be a plain file name", where);
        /* The media is not known yet: shape now, bounds when the file is probed. */
        if (gold && tly_gold_validate(tmpl, gold, NULL, &sub) < 0)
            return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_gold", "%s: %s", where, sub.message);
    }
    return 0;
}

static int check_source(tly_ingest *ing, json_t *source, const char *kind, json_t *tmpl,
                        tly_error *err)
{
    if (strcmp(kind, "upload") == 0) {
        static const char *const keys[] = {"kind", NULL};
        return tly_json_only_keys(source, "source", keys, err);
    }
    if (strcmp(kind, "dir") == 0) {
        static const char *const keys[] = {"kind", "path", NULL};
        const char *path = NULL;
        if (tly_json_only_keys(source, "source", keys, err) < 0 ||
            tly_json_get_string(source, "path", 1, &path, err) < 0)
            return -1;
        return check_import_dir(ing, path, err);
    }
    if (strcmp(kind, "urls") == 0) {
        static const char *const keys[] = {"kind", "urls", NULL};
        json_t *urls = NULL;
        if (tly_json_only_keys(source, "source", keys, err) < 0 ||
            tly_json_get_array(source, "urls", 1, &urls, err) < 0)
            return -1;
        if (json_array_size(urls) == 0 || json_array_size(urls) > MAX_SOURCE_LINES)
            return tly_fail(err, TLY_E_INVALID, "invalid_source", "'urls' must have 1 to %d entries", MAX_SOURCE_LINES);
        size_t i;
        json_t *u;
        json_array_foreach(urls, i, u) {
            char where[48];
            snprintf(where, sizeof where, "urls[%zu]", i);
            if (!json_is_string(u))
                return tly_fail(err, TLY_E_INVALID, "invalid_url", "%s must be a string", where);
            if (check_url(json_string_value(u), where, err) < 0)
                return -1;
        }
        return 0;
    }
    if (strcmp(kind, "manifest") == 0) {
        static const char *const keys[] = {"kind", "lines", "root", NULL};
        if (tly_json_only_keys(source, "source", keys, err) < 0)
            return -1;
        return check_manifest(ing, source, tmpl, err);
    }
    return tly_fail(err, TLY_E_INVALID, "invalid_source",
                    "source kind '%s' is not one of upload, dir, urls, manifest", kind);
}

int tly_ingest_batch_create(tly_ingest *ing, int64_t project_id, json_t *body,
                            tly_batch *out, tly_error *err)
{
    static const char *const keys[] = {"name", "source", NULL};
    const char *name = NULL, *kind = NULL;
    json_t *source = NULL;
    if (tly_json_only_keys(body, "batch", keys, err) < 0 ||
        tly_json_get_string(body, "name", 0, &name, err) < 0 ||
        tly_json_get_object(body, "source", 1, &source, err) < 0 ||
        tly_json_get_string(source, "kind", 1, &kind, err) < 0)
        return -1;
    char default_name[64];
    if (!name || !name[0]) {
        char ts[32];
        tly_format_rfc3339(tly_now_ms(), ts, sizeof ts);
        snprintf(default_name, sizeof default_name, "%s %s", kind, ts);
        name = default_name;
    }
    if (strlen(name) > 200)
        return tly_fail(err, TLY_E_INVALID, "invalid_field", "field 'name' must be at most 200 bytes");
    tly_project project = {0};
    if (tly_store_project_get(ing->st, project_id, &project, err) < 0)
        return -1;
    int rc = check_source(ing, source, kind, project.template_json, err);
    tly_project_clear(&project);
    if (rc < 0)
        return -1;

    int64_t id = 0;
    int upload = strcmp(kind, "upload") == 0;
    if (tly_store_begin(ing->st, err) < 0)
        return -1;
    if (tly_store_batch_create(ing->st, project_id, name, kind, source, &id, err) < 0 ||
        (!upload && tly_store_job_enqueue(ing->st, TLY_JOB_EXPAND_BATCH, id, NULL, NULL, err) < 0) ||
        tly_store_commit(ing->st, err) < 0) {
        tly_store_rollback(ing->st);
        return -1;
    }
    if (!upload)
        tly_ingest_notify(ing);
    return tly_store_batch_get(ing->st, id, out, err);
}

int tly_ingest_batch_close(tly_ingest *ing, int64_t batch_id, tly_error *err)
{
    tly_batch b = {0};
    if (tly_store_batch_get_brief(ing->st, batch_id, &b, err) < 0)
        return -1;
    int upload = strcmp(b.kind, "upload") == 0;
    tly_batch_clear(&b);
    if (!upload)
        return tly_fail(err, TLY_E_CONFLICT, "not_upload_batch",
                        "only upload batches are closed by the client; this one closes itself");
    return tly_store_batch_close(ing->st, batch_id, err);
}

/* The image checks' part of the report: "flagged" counts the batch's items with each
 * flag (imagecheck.h) and "flagged_files" lists up to max_files of them. */
static int add_flagged(tly_ingest *ing, const tly_batch *b, int max_files, json_t *j, tly_error *err)
{
    int64_t total = 0, counts[TLY_IMAGE_CHECK_BITS];
    if (tly_store_image_check_counts(ing->st, b->id, &total, counts, err) < 0)
        return -1;
    json_t *flagged = json_pack("{s:I}", "total", (json_int_t)total);
    json_t *files = json_array();
    if (!flagged || !files) {
        json_decref(flagged);
        json_decref(files);
        return tly_fail(err, TLY_E_INTERNAL, "internal", "out of memory");
    }
    json_object_set_new(j, "flagged", flagged);
    json_object_set_new(j, "flagged_files", files);
    for (int i = 0; i < TLY_IMAGE_FLAG_COUNT; i++)
        json_object_set_new(flagged, tly_image_flag_name(i), json_integer(counts[i]));
    if (max_files <= 0 || total == 0)
        return 0;
    tly_image_check *list = NULL;
    size_t n = 0;
    if (tly_store_image_check_flagged(ing->st, b->id, 0, max_files, &list, &n, err) < 0)
        return -1;
    for (size_t k = 0; k < n; k++) {
        json_t *names = json_array();
        for (int i = 0; i < TLY_IMAGE_FLAG_COUNT; i++)
            if (list[k].flags & tly_image_flag_bit(i))
                json_array_append_new(names, json_string(tly_image_flag_name(i)));
        json_t *f = json_pack("{s:s,s:I,s:o}", "file", list[k].name, "item_id", (json_int_t)list[k].item_id,
                              "flags", names);
        if (f && list[k].near_duplicate_of)
            json_object_set_new(f, "near_duplicate_of", json_integer(list[k].near_duplicate_of));
        json_array_append_new(files, f);
    }
    free(list);
    if (total > (int64_t)n)
        json_object_set_new(j, "flagged_truncated", json_true());
    return 0;
}

json_t *tly_ingest_batch_json(tly_ingest *ing, const tly_batch *b, int max_errors,
                              tly_error *err)
{
    char created[32], closed[32];
    tly_format_rfc3339(b->created_at, created, sizeof created);
    json_t *j = json_pack("{s:I,s:I,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:s}", "id", (json_int_t)b->id,
                          "project_id", (json_int_t)b->project_id, "name", b->name, "kind", b->kind,
                          "state", tly_batch_state(b), "total", (json_int_t)b->total, "pending",
                          (json_int_t)b->pending, "accepted", (json_int_t)b->accepted, "duplicates",
                          (json_int_t)b->duplicates, "rejected", (json_int_t)b->rejected,
                          "created_at", created);
    if (!j) {
        tly_fail(err, TLY_E_INTERNAL, "internal", "out of memory");
        return NULL;
    }
    if (b->closed_at) {
        tly_format_rfc3339(b->closed_at, closed, sizeof closed);
        json_object_set_new(j, "closed_at", json_string(closed));
    }
    if (b->error)
        json_object_set_new(j, "error", json_string(b->error));
    json_t *errors = json_array();
    json_object_set_new(j, "errors", errors);
    if (max_errors > 0 && b->rejected > 0) {
        tly_batch_file *files = NULL;
        size_t n = 0;
        if (tly_store_batch_file_list(ing->st, b->id, TLY_BF_REJECTED, 0, max_errors, &files, &n, err) < 0) {
            json_decref(j);
            return NULL;
        }
        for (size_t i = 0; i < n; i++)
            json_array_append_new(errors, json_pack("{s:s,s:s,s:s}", "file", files[i].name, "code",
                                                    files[i].error_code, "message",
                                                    files[i].error_message ? files[i].error_message : ""));
        tly_batch_file_list_free(files, n);
        if (b->rejected > (int64_t)n)
            json_object_set_new(j, "errors_truncated", json_true());
    }
    if (add_flagged(ing, b, max_errors, j, err) < 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}
