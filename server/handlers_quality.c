/* handlers_quality.c -- the quality rounds over HTTP: results, the worker table,
 * review, acceptance lots, item history, imported judgments. The rounds themselves
 * live in qa/; these only translate. */
#include "server/handlers.h"
#include "qa/import.h"
#include "qa/report.h"
#include "qa/results.h"
#include "qa/review.h"

#include <stdlib.h>
#include <string.h>

void h_project_stats(tly_req *r)
{
    json_t *out = NULL;
    tly_error err;
    if (tly_report_stats(r->app->store, r->ids[0], &out, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_OK, out);
}

void h_result_list(tly_req *r)
{
    int limit;
    int64_t after;
    if (http_page_args(r, &limit, &after) < 0)
        return;
    const char *state = http_query(r, "state");
    if (state && strcmp(state, "review") != 0 && strcmp(state, "done") != 0 && strcmp(state, "released") != 0)
        return http_reply_errorf(r, TLY_E_INVALID, "invalid_query", "state must be review, done or released");
    tly_project p = {0};
    tly_result *list = NULL;
    size_t n = 0;
    tly_error err;
    if (tly_store_project_get(r->app->store, r->ids[0], &p, &err) < 0 ||
        tly_store_result_list(r->app->store, r->ids[0], state, after, limit, &list, &n, &err) < 0) {
        tly_project_clear(&p);
        return http_reply_error(r, &err);
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, tly_result_json(&list[i]));
    int64_t last = n ? list[n - 1].item_id : 0;
    tly_result_list_free(list, n);
    tly_project_clear(&p);
    http_reply_json(r, MHD_HTTP_OK, http_page(items, limit, last));
}

void h_item_result(tly_req *r)
{
    tly_result res = {0};
    tly_error err;
    if (tly_store_result_get(r->app->store, r->ids[0], &res, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_OK, tly_result_json(&res));
    tly_result_clear(&res);
}

void h_worker_list(tly_req *r)
{
    int limit;
    int64_t after;
    if (http_page_args(r, &limit, &after) < 0)
        return;
    tly_project p = {0};
    tly_project_worker *list = NULL;
    size_t n = 0;
    tly_error err;
    if (tly_store_project_get(r->app->store, r->ids[0], &p, &err) < 0 ||
        tly_store_project_worker_list(r->app->store, r->ids[0], after, limit, &list, &n, &err) < 0) {
        tly_project_clear(&p);
        return http_reply_error(r, &err);
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, tly_report_worker_json(&p, &list[i]));
    int64_t last = n ? list[n - 1].worker_id : 0;
    tly_project_worker_list_free(list, n);
    tly_project_clear(&p);
    http_reply_json(r, MHD_HTTP_OK, http_page(items, limit, last));
}

void h_review_next(tly_req *r)
{
    json_t *out = NULL;
    tly_error err;
    if (tly_review_next(r->app->store, r->ids[0], &r->user, &out, &err) < 0)
        return http_reply_error(r, &err);
    if (!out)
        return http_reply_empty(r, MHD_HTTP_NO_CONTENT);
    http_reply_json(r, MHD_HTTP_OK, out);
}

void h_review_submit(tly_req *r)
{
    json_t *out = NULL;
    tly_error err;
    if (tly_review_submit(r->app->store, r->ids[0], &r->user, r->json, &out, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_OK, out);
}

void h_lot_draw(tly_req *r)
{
    json_t *out = NULL;
    tly_error err;
    if (tly_lot_draw(r->app->store, r->ids[0], &r->user, r->json, &out, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_CREATED, out);
}

void h_lot_list(tly_req *r)
{
    int limit;
    int64_t after;
    if (http_page_args(r, &limit, &after) < 0)
        return;
    json_t *items = NULL;
    tly_error err;
    if (tly_lot_list(r->app->store, r->ids[0], after, limit, &items, &err) < 0)
        return http_reply_error(r, &err);
    size_t n = json_array_size(items);
    int64_t last = n ? json_integer_value(json_object_get(json_array_get(items, n - 1), "id")) : 0;
    http_reply_json(r, MHD_HTTP_OK, http_page(items, limit, last));
}

void h_lot_get(tly_req *r)
{
    json_t *out = NULL;
    tly_error err;
    if (tly_lot_show(r->app->store, r->ids[0], &out, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_OK, out);
}

void h_lot_verdicts(tly_req *r)
{
    json_t *out = NULL;
    tly_error err;
    if (tly_lot_judge(r->app->store, r->ids[0], &r->user, r->json, &out, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_OK, out);
}

void h_item_history(tly_req *r)
{
    int limit;
    int64_t after;
    if (http_page_args(r, &limit, &after) < 0)
        return;
    tly_item it = {0};
    json_t *out = NULL;
    tly_error err;
    if (tly_store_item_get(r->app->store, r->ids[0], &it, &err) < 0 ||
        tly_store_item_events(r->app->store, r->ids[0], after, limit, &out, &err) < 0) {
        tly_item_clear(&it);
        return http_reply_error(r, &err);
    }
    tly_item_clear(&it);
    json_t *items = json_incref(json_object_get(out, "items"));
    json_decref(out);
    size_t n = json_array_size(items);
    int64_t last = n ? json_integer_value(json_object_get(json_array_get(items, n - 1), "id")) : 0;
    http_reply_json(r, MHD_HTTP_OK, http_page(items, limit, last));
}

void h_judgment_import(tly_req *r)
{
    json_t *out = NULL;
    tly_error err;
    if (tly_import_judgments(r->app->store, r->ids[0], r->json, &out, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_OK, out);
}
