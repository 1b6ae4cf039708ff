/* handlers_exports.c -- dataset versions over HTTP: create, read, list, and the
 * resumable download (ETag = the version's identity, Range, If-None-Match).
 *
 * A finished export's artifact and manifest are blobs (export.c moves them into the
 * blob store, named by the artifact's and the manifest's SHA-256), so whichever node
 * a download lands on serves it, from S3 with ranged reads or from a local store with
 * sendfile. Exports finished before that change are still files in this node's
 * DATA/exports, served from there when the blob store lacks them. */
#include "server/handlers.h"
#include "export/export.h"

#include <stdio.h>
#include <string.h>

static void exports_dir(tly_req *r, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/exports", r->app->cfg.data_dir);
}

void h_export_create(tly_req *r)
{
    tly_export_rec e;
    tly_error err;
    if (tly_export_create(r->app->store, r->ids[0], &r->user, r->json, &e, &err) < 0)
        return http_reply_error(r, &err);
    tly_jobrunner_wake(r->app->jobs);
    http_reply_json(r, MHD_HTTP_ACCEPTED, tly_export_rec_json(&e));
    tly_export_rec_clear(&e);
}

void h_export_get(tly_req *r)
{
    tly_export_rec e;
    tly_error err;
    if (tly_store_export_get(r->app->store, r->ids[0], &e, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_OK, tly_export_rec_json(&e));
    tly_export_rec_clear(&e);
}

void h_export_list(tly_req *r)
{
    int limit;
    int64_t after;
    if (http_page_args(r, &limit, &after) < 0)
        return;
    tly_export_rec *list = NULL;
    size_t n = 0;
    tly_error err;
    tly_project p = {0};
    if (tly_store_project_get(r->app->store, r->ids[0], &p, &err) < 0 ||
        tly_store_export_list(r->app->store, r->ids[0], after, limit, &list, &n, &err) < 0) {
        tly_project_clear(&p);
        return http_reply_error(r, &err);
    }
    tly_project_clear(&p);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, tly_export_rec_json(&list[i]));
    int64_t last = n ? list[n - 1].id : 0;
    tly_export_rec_list_free(list, n);
    http_reply_json(r, MHD_HTTP_OK, http_page(items, limit, last));
}

/* kind 0: the artifact; 1: the manifest. */
static void serve(tly_req *r, int kind)
{
    tly_export_rec e;
    tly_error err;
    if (tly_store_export_get(r->app->store, r->ids[0], &e, &err) < 0)
        return http_reply_error(r, &err);
    if (strcmp(e.state, "done") != 0) {
        http_reply_errorf(r, TLY_E_CONFLICT, "export_not_ready", "export %lld is %s%s%s", (long long)e.id, e.state,
                          e.error ? ": " : "", e.error ? e.error : "");
        tly_export_rec_clear(&e);
        return;
    }
    char dir[4200], artifact[4400], manifest[4400];
    exports_dir(r, dir, sizeof dir);
    tly_export_paths(dir, &e, artifact, manifest, sizeof artifact);
    char name[128];
    if (kind == 0) {
        snprintf(name, sizeof name, "tally-%lld-%s-%.12s%s", (long long)e.project_id, e.format, e.sha256,
                 strcmp(e.content_type, "application/x-tar") == 0 ? ".tar" : strrchr(e.artifact, '.') ? strrchr(e.artifact, '.') : "");
        /* The ETag is the version's identity: the same dataset, the same tag. */
        if (!e.artifact_sha256[0] || http_reply_blob_as(r, e.artifact_sha256, e.sha256, e.content_type, name) == 1)
            http_reply_file(r, artifact, e.sha256, e.content_type, name);
    } else {
        snprintf(name, sizeof name, "tally-%lld-%s-%.12s.manifest.jsonl", (long long)e.project_id, e.format, e.sha256);
        if (http_reply_blob_as(r, e.sha256, e.sha256, "application/x-ndjson", name) == 1)
            http_reply_file(r, manifest, e.sha256, "application/x-ndjson", name);
    }
    tly_export_rec_clear(&e);
}

void h_export_download(tly_req *r)
{
    serve(r, 0);
}

void h_export_manifest(tly_req *r)
{
    serve(r, 1);
}
