/* handlers_ingest.c -- batches and streamed file uploads. */
#include "server/handlers.h"

#include <stdlib.h>
#include <string.h>

static void reply_batch(tly_req *r, unsigned status, int64_t batch_id)
{
    tly_batch b = {0};
    tly_error err;
    if (tly_store_batch_get(r->app->store, batch_id, &b, &err) < 0)
        return http_reply_error(r, &err);
    json_t *j = tly_ingest_batch_json(r->app->ingest, &b, 1000, &err);
    tly_batch_clear(&b);
    if (!j)
        return http_reply_error(r, &err);
    http_reply_json(r, status, j);
}

void h_batch_create(tly_req *r)
{
    tly_batch b = {0};
    tly_error err;
    if (tly_ingest_batch_create(r->app->ingest, r->ids[0], r->json, &b, &err) < 0)
        return http_reply_error(r, &err);
    json_t *j = tly_ingest_batch_json(r->app->ingest, &b, 0, &err);
    tly_batch_clear(&b);
    if (!j)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_CREATED, j);
}

void h_batch_list(tly_req *r)
{
    int limit;
    int64_t after;
    if (http_page_args(r, &limit, &after) < 0)
        return;
    tly_project p = {0};
    tly_batch *list = NULL;
    size_t n = 0;
    tly_error err;
    if (tly_store_project_get(r->app->store, r->ids[0], &p, &err) < 0 ||
        tly_store_batch_list(r->app->store, r->ids[0], after, limit, &list, &n, &err) < 0) {
        tly_project_clear(&p);
        return http_reply_error(r, &err);
    }
    tly_project_clear(&p);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, tly_ingest_batch_json(r->app->ingest, &list[i], 0, &err));
    int64_t last = n ? list[n - 1].id : 0;
    tly_batch_list_free(list, n);
    http_reply_json(r, MHD_HTTP_OK, http_page(items, limit, last));
}

void h_batch_get(tly_req *r)
{
    reply_batch(r, MHD_HTTP_OK, r->ids[0]);
}

void h_batch_errors(tly_req *r)
{
    int limit;
    int64_t after;
    if (http_page_args(r, &limit, &after) < 0)
        return;
    tly_batch b = {0};
    tly_batch_file *files = NULL;
    size_t n = 0;
    tly_error err;
    if (tly_store_batch_get_brief(r->app->store, r->ids[0], &b, &err) < 0)
        return http_reply_error(r, &err);
    tly_batch_clear(&b);
    if (tly_store_batch_file_list(r->app->store, r->ids[0], TLY_BF_REJECTED, after, limit, &files, &n, &err) < 0)
        return http_reply_error(r, &err);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, json_pack("{s:I,s:s,s:s,s:s}", "file_id", (json_int_t)files[i].id, "file",
                                               files[i].name, "code", files[i].error_code, "message",
                                               files[i].error_message ? files[i].error_message : ""));
    int64_t last = n ? files[n - 1].id : 0;
    tly_batch_file_list_free(files, n);
    http_reply_json(r, MHD_HTTP_OK, http_page(items, limit, last));
}

void h_batch_close(tly_req *r)
{
    tly_error err;
    if (tly_ingest_batch_close(r->app->ingest, r->ids[0], &err) < 0)
        return http_reply_error(r, &err);
    reply_batch(r, MHD_HTTP_OK, r->ids[0]);
}

/* Uploads: the body streams into tly_upload chunk by chunk (see ingest.h). */
int h_upload_begin(tly_req *r, tly_error *err)
{
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t declared = cl ? atoll(cl) : -1;
    tly_upload *up = NULL;
    if (tly_upload_begin(r->app->ingest, r->ids[0], r->tail, declared, &up, err) < 0)
        return -1;
    r->stream = up;
    return 0;
}

int h_upload_chunk(tly_req *r, const char *data, size_t len, tly_error *err)
{
    return tly_upload_write(r->stream, data, len, err);
}

void h_upload_abort(tly_req *r)
{
    tly_upload_abort(r->stream);
    r->stream = NULL;
}

void h_upload_finish(tly_req *r)
{
    tly_upload *up = r->stream;
    r->stream = NULL;   /* finish frees it, on success or failure */
    json_t *out = NULL;
    tly_error err;
    if (tly_upload_finish(up, &out, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_CREATED, out);
}
