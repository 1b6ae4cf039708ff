/* handlers_items.c -- items, their media and previews, and gold answers. */
#include "server/handlers.h"
#include "annotate/work.h"
#include "core/timeutil.h"
#include "qa/gold.h"

#include <string.h>

/* Loads the item of r->ids[0] or replies 404. A worker sees only an item it holds
 * an unexpired lease on; any other is "not found", existing or not. */
static int load_item(tly_req *r, tly_item *it)
{
    tly_error err;
    if (r->user.role == TLY_ROLE_WORKER) {
        int held = tly_store_lease_held(r->app->store, r->ids[0], r->user.id, tly_now_ms(), &err);
        if (held <= 0) {
            if (held == 0)
                tly_fail(&err, TLY_E_NOT_FOUND, "not_found", "item %lld not found", (long long)r->ids[0]);
            http_reply_error(r, &err);
            return -1;
        }
    }
    if (tly_store_item_get(r->app->store, r->ids[0], it, &err) < 0) {
        http_reply_error(r, &err);
        return -1;
    }
    return 0;
}

static int staff(const tly_req *r)
{
    return r->user.role == TLY_ROLE_ADMIN || r->user.role == TLY_ROLE_MANAGER;
}

void h_item_list(tly_req *r)
{
    int limit;
    int64_t after;
    if (http_page_args(r, &limit, &after) < 0)
        return;
    const char *state = http_query(r, "state");
    if (state && (!state[0] || strlen(state) > 15))
        return http_reply_errorf(r, TLY_E_INVALID, "invalid_query", "state must be an item state such as 'new'");
    tly_project p = {0};
    tly_item *list = NULL;
    size_t n = 0;
    tly_error err;
    if (tly_store_project_get(r->app->store, r->ids[0], &p, &err) < 0 ||
        tly_store_item_list(r->app->store, r->ids[0], state, after, limit, &list, &n, &err) < 0) {
        tly_project_clear(&p);
        return http_reply_error(r, &err);
    }
    tly_project_clear(&p);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, tly_item_json(&list[i], staff(r)));
    int64_t last = n ? list[n - 1].id : 0;
    tly_item_list_free(list, n);
    http_reply_json(r, MHD_HTTP_OK, http_page(items, limit, last));
}

void h_item_get(tly_req *r)
{
    tly_item it = {0};
    if (load_item(r, &it) < 0)
        return;
    http_reply_json(r, MHD_HTTP_OK,
                    r->user.role == TLY_ROLE_WORKER ? tly_work_item_json(&it) : tly_item_json(&it, staff(r)));
    tly_item_clear(&it);
}

static const char *media_type(const tly_item *it)
{
    const char *fmt = json_string_value(json_object_get(it->media, "format"));
    static const struct { const char *format, *type; } types[] = {
        {"jpeg", "image/jpeg"}, {"png", "image/png"}, {"wav", "audio/wav"},
        {"flac", "audio/flac"}, {"ogg", "audio/ogg"},
    };
    for (size_t i = 0; fmt && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(fmt, types[i].format) == 0)
            return types[i].type;
    return "application/octet-stream";
}

void h_item_media(tly_req *r)
{
    tly_item it = {0};
    if (load_item(r, &it) < 0)
        return;
    /* With an S3 store the node can send the client to the bucket instead: the
     * access check above still decides who gets a URL, and it expires. */
    char url[2048];
    tly_error err;
    if (r->app->cfg.media_redirect_s > 0 &&
        tly_blob_presign(r->app->blobs, it.sha256, r->app->cfg.media_redirect_s, media_type(&it), url, sizeof url,
                         &err) == 0) {
        http_reply_empty(r, MHD_HTTP_FOUND);
        http_set_header(r, MHD_HTTP_HEADER_LOCATION, url);
        http_set_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "private, no-store");
    } else {
        http_reply_blob(r, it.sha256, media_type(&it));
    }
    tly_item_clear(&it);
}

/* Previews live in the store with their item (store.h), not in the blob store. */
static void reply_preview(tly_req *r, const char *kind, const char *content_type)
{
    tly_item it = {0};
    if (load_item(r, &it) < 0)
        return;
    int has = strcmp(kind, "thumbnail") == 0 ? it.thumb_sha256[0] != '\0' : it.waveform_sha256[0] != '\0';
    tly_item_clear(&it);
    if (!has)
        return http_reply_errorf(r, TLY_E_NOT_FOUND, strcmp(kind, "thumbnail") == 0 ? "no_thumbnail" : "no_waveform",
                                 "item %lld has no %s (%s)", (long long)r->ids[0], kind,
                                 strcmp(kind, "thumbnail") == 0 ? "not an image" : "not audio");
    tly_buf data;
    tly_buf_init(&data, 16u << 20);
    char sha[65];
    tly_error err;
    if (tly_store_preview_get(r->app->store, r->ids[0], kind, &data, sha, &err) < 0)
        http_reply_error(r, &err);
    else
        http_reply_bytes(r, data.data ? data.data : "", data.len, sha, content_type);
    tly_buf_free(&data);
}

void h_item_thumbnail(tly_req *r)
{
    reply_preview(r, "thumbnail", "image/jpeg");
}

void h_item_waveform(tly_req *r)
{
    reply_preview(r, "waveform", "application/json");
}

void h_item_gold_put(tly_req *r)
{
    json_t *answer = json_object_get(r->json, "answer");
    if (!answer || !json_is_object(answer) || json_object_size(r->json) != 1)
        return http_reply_errorf(r, TLY_E_INVALID, "invalid_field",
                                 "body must be {\"answer\":{...}} keyed by control name");
    tly_item it = {0};
    tly_error err;
    if (tly_gold_set(r->app->store, r->ids[0], answer, &it, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_OK, tly_item_json(&it, 1));
    tly_item_clear(&it);
}

void h_item_gold_delete(tly_req *r)
{
    tly_item it = {0};
    tly_error err;
    if (tly_gold_set(r->app->store, r->ids[0], NULL, &it, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_OK, tly_item_json(&it, 1));
    tly_item_clear(&it);
}
