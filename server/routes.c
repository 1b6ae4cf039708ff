/* routes.c -- the route table and path matching.
 *
 * The table is the one place that says which endpoints exist, who may call them and
 * how their bodies are read; docs/API.md mirrors it. Matching is a linear scan over
 * path segments: ":id" matches a positive decimal integer (anything else is 404, so
 * ids never reach a handler unparsed), "*" matches the rest of the path.
 */
#include "server/handlers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const tly_route tly_routes[] = {
    {"GET", "/healthz", "healthz", R_PUBLIC, 0, h_healthz, NULL, NULL, NULL},
    {"GET", "/metrics", "metrics", R_PUBLIC, 0, h_metrics, NULL, NULL, NULL},
    {"POST", "/v1/users", "create_user", R_STAFF, F_JSON_BODY, h_user_create, NULL, NULL, NULL},
    {"GET", "/v1/me", "me", R_ANY, 0, h_me, NULL, NULL, NULL},
    {"GET", "/v1/me/stats", "me_stats", R_ANY, 0, h_me_stats, NULL, NULL, NULL},
    {"POST", "/v1/projects", "create_project", R_STAFF, F_JSON_BODY, h_project_create, NULL, NULL, NULL},
    {"GET", "/v1/projects", "list_projects", R_ANY, 0, h_project_list, NULL, NULL, NULL},
    {"GET", "/v1/projects/:id", "get_project", R_ANY, 0, h_project_get, NULL, NULL, NULL},
    {"PATCH", "/v1/projects/:id", "update_project", R_STAFF, F_JSON_BODY, h_project_patch, NULL, NULL, NULL},
    {"POST", "/v1/projects/:id/pause", "pause_project", R_STAFF, 0, h_project_pause, NULL, NULL, NULL},
    {"POST", "/v1/projects/:id/resume", "resume_project", R_STAFF, 0, h_project_resume, NULL, NULL, NULL},
    {"POST", "/v1/projects/:id/work/next", "work_next", R_STAFF | R_WORKER, 0, h_work_next, NULL, NULL, NULL},
    {"GET", "/v1/projects/:id/judgments", "list_judgments", R_STAFF | R_CONSUMER, F_HIDE_FROM_WORKER,
     h_judgment_list, NULL, NULL, NULL},
    {"POST", "/v1/assignments/:id/submit", "submit", R_STAFF | R_WORKER, F_JSON_BODY, h_work_submit, NULL, NULL,
     NULL},
    {"POST", "/v1/assignments/:id/skip", "skip", R_STAFF | R_WORKER, 0, h_work_skip, NULL, NULL, NULL},
    {"GET", "/v1/assignments/:id", "get_assignment", R_STAFF | R_WORKER, 0, h_assignment_get, NULL, NULL, NULL},
    {"GET", "/v1/projects/:id/stats", "project_stats", R_STAFF | R_CONSUMER, F_HIDE_FROM_WORKER, h_project_stats,
     NULL, NULL, NULL},
    {"POST", "/v1/projects/:id/batches", "create_batch", R_STAFF, F_JSON_BODY, h_batch_create, NULL, NULL, NULL},
    {"GET", "/v1/projects/:id/batches", "list_batches", R_STAFF, F_HIDE_FROM_WORKER, h_batch_list, NULL, NULL,
     NULL},
    {"GET", "/v1/projects/:id/items", "list_items", R_STAFF | R_CONSUMER, F_HIDE_FROM_WORKER, h_item_list, NULL,
     NULL, NULL},
    {"GET", "/v1/batches/:id", "get_batch", R_STAFF, F_HIDE_FROM_WORKER, h_batch_get, NULL, NULL, NULL},
    {"GET", "/v1/batches/:id/errors", "batch_errors", R_STAFF, F_HIDE_FROM_WORKER, h_batch_errors, NULL, NULL,
     NULL},
    {"POST", "/v1/batches/:id/close", "close_batch", R_STAFF, F_HIDE_FROM_WORKER, h_batch_close, NULL, NULL, NULL},
    {"PUT", "/v1/batches/:id/files/*", "upload_file", R_STAFF, F_STREAM_BODY | F_HIDE_FROM_WORKER,
     h_upload_finish, h_upload_begin, h_upload_chunk, h_upload_abort},
    {"GET", "/v1/items/:id", "get_item", R_ANY, F_HIDE_FROM_WORKER, h_item_get, NULL, NULL, NULL},
    {"GET", "/v1/items/:id/media", "item_media", R_ANY, F_HIDE_FROM_WORKER, h_item_media, NULL,
     NULL, NULL},
    {"GET", "/v1/items/:id/thumbnail", "item_thumbnail", R_ANY, F_HIDE_FROM_WORKER,
     h_item_thumbnail, NULL, NULL, NULL},
    {"GET", "/v1/items/:id/waveform", "item_waveform", R_ANY, F_HIDE_FROM_WORKER,
     h_item_waveform, NULL, NULL, NULL},
    {"PUT", "/v1/items/:id/gold", "set_gold", R_STAFF, F_JSON_BODY | F_HIDE_FROM_WORKER, h_item_gold_put, NULL,
     NULL, NULL},
    {"DELETE", "/v1/items/:id/gold", "clear_gold", R_STAFF, F_HIDE_FROM_WORKER, h_item_gold_delete, NULL, NULL,
     NULL},
    {"GET", "/v1/projects/:id/results", "list_results", R_STAFF | R_CONSUMER, F_HIDE_FROM_WORKER, h_result_list,
     NULL, NULL, NULL},
    {"GET", "/v1/items/:id/result", "item_result", R_STAFF | R_CONSUMER, F_HIDE_FROM_WORKER, h_item_result, NULL,
     NULL, NULL},
    {"GET", "/v1/items/:id/history", "item_history", R_STAFF, F_HIDE_FROM_WORKER, h_item_history, NULL, NULL, NULL},
    {"GET", "/v1/projects/:id/workers", "list_workers", R_STAFF, F_HIDE_FROM_WORKER, h_worker_list, NULL, NULL,
     NULL},
    {"POST", "/v1/projects/:id/judgments/import", "import_judgments", R_STAFF, F_JSON_BODY | F_HIDE_FROM_WORKER,
     h_judgment_import, NULL, NULL, NULL},
    {"POST", "/v1/projects/:id/review/next", "review_next", R_STAFF | R_WORKER, 0, h_review_next, NULL, NULL, NULL},
    {"POST", "/v1/reviews/:id", "review_submit", R_STAFF | R_WORKER, F_JSON_BODY, h_review_submit, NULL, NULL,
     NULL},
    {"POST", "/v1/projects/:id/acceptance", "draw_lot", R_STAFF, F_JSON_BODY | F_JSON_OPTIONAL | F_HIDE_FROM_WORKER,
     h_lot_draw, NULL, NULL, NULL},
    {"GET", "/v1/projects/:id/lots", "list_lots", R_STAFF | R_CONSUMER, F_HIDE_FROM_WORKER, h_lot_list, NULL, NULL,
     NULL},
    {"GET", "/v1/lots/:id", "get_lot", R_STAFF | R_CONSUMER, F_HIDE_FROM_WORKER, h_lot_get, NULL, NULL, NULL},
    {"POST", "/v1/lots/:id/verdicts", "lot_verdicts", R_STAFF | R_CONSUMER, F_JSON_BODY | F_HIDE_FROM_WORKER,
     h_lot_verdicts, NULL, NULL, NULL},
    {"POST", "/v1/projects/:id/exports", "create_export", R_STAFF | R_CONSUMER, F_JSON_BODY | F_HIDE_FROM_WORKER,
     h_export_create, NULL, NULL, NULL},
    {"GET", "/v1/projects/:id/exports", "list_exports", R_STAFF | R_CONSUMER, F_HIDE_FROM_WORKER, h_export_list, NULL,
     NULL, NULL},
    {"GET", "/v1/exports/:id", "get_export", R_STAFF | R_CONSUMER, F_HIDE_FROM_WORKER, h_export_get, NULL, NULL, NULL},
    {"GET", "/v1/exports/:id/download", "download_export", R_STAFF | R_CONSUMER, F_HIDE_FROM_WORKER, h_export_download,
     NULL, NULL, NULL},
    {"GET", "/v1/exports/:id/manifest", "export_manifest", R_STAFF | R_CONSUMER, F_HIDE_FROM_WORKER,
     h_export_manifest, NULL, NULL, NULL},
    {"POST", "/v1/projects/:id/models", "create_model", R_STAFF, F_JSON_BODY | F_HIDE_FROM_WORKER, h_model_create,
     NULL, NULL, NULL},
    {"GET", "/v1/projects/:id/models", "list_models", R_STAFF, F_HIDE_FROM_WORKER, h_model_list, NULL, NULL, NULL},
    {"POST", "/v1/projects/:id/models/:id/run", "run_model", R_STAFF, F_HIDE_FROM_WORKER, h_model_run, NULL, NULL,
     NULL},
    {"GET", "/v1/items/:id/predictions", "item_predictions", R_STAFF | R_CONSUMER, F_HIDE_FROM_WORKER,
     h_item_predictions, NULL, NULL, NULL},
    {"GET", "/v1/projects/:id/throughput", "project_throughput", R_STAFF | R_CONSUMER, F_HIDE_FROM_WORKER,
     h_project_throughput, NULL, NULL, NULL},
    {"GET", "/app", "app_redirect", R_PUBLIC, 0, h_app_redirect, NULL, NULL, NULL},
    {"GET", "/app/", "app_index", R_PUBLIC, 0, h_app_index, NULL, NULL, NULL},
    {"GET", "/app/*", "app_static", R_PUBLIC, 0, h_app_static, NULL, NULL, NULL},
    {NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL},
};

/* Matches one pattern against path; fills captures on success. */
static int match(const char *pattern, const char *path, tly_req *r)
{
    int nids = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == '*') {
            r->tail = s;   /* non-empty here: the loop runs only while *s */
            return 1;
        }
        if (p[0] == ':') {
            const char *seg_end = strchr(s, '/');
            size_t len = seg_end ? (size_t)(seg_end - s) : strlen(s);
            if (len == 0 || len > 18 || nids == 4)
                return 0;
            int64_t v = 0;
            for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                    return 0;
                v = v * 10 + (s[i] - '0');
            }
            if (v <= 0)
                return 0;
            r->ids[nids++] = v;
            s += len;
            p = strchr(p, '/');
            if (!p)
                return *s == '\0';
            continue;
        }
        if (*p != *s)
            return 0;
        p++;
        s++;
    }
    if (*p == '*')
        return 0;   /* "*" needs at least one character */
    return *p == '\0' && *s == '\0';
}

const tly_route *tly_route_match(tly_req *r, const char *method, const char *path,
                                 int *method_mismatch)
{
    *method_mismatch = 0;
    /* HEAD is GET without the body; libmicrohttpd drops the body itself. */
    const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
    for (const tly_route *rt = tly_routes; rt->method; rt++) {
        if (!match(rt->pattern, path, r))
            continue;
        if (strcmp(rt->method, want) == 0)
            return rt;
        *method_mismatch = 1;
    }
    return NULL;
}

void tly_route_allowed(const char *path, char *out, size_t outsz)
{
    tly_req scratch;
    size_t len = 0;
    if (outsz == 0)
        return;
    out[0] = '\0';
    for (const tly_route *rt = tly_routes; rt->method; rt++) {
        memset(&scratch, 0, sizeof scratch);
        if (!match(rt->pattern, path, &scratch) || strstr(out, rt->method))
            continue;
        int n = snprintf(out + len, outsz - len, "%s%s", len ? ", " : "", rt->method);
        if (n < 0 || (size_t)n >= outsz - len) {
            out[len] = '\0';   /* whole methods only */
            break;
        }
        len += (size_t)n;
    }
}
