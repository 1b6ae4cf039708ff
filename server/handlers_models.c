/* handlers_models.c -- pre-labeling over HTTP: models of a project, runs, and an
 * item's predictions. The work is annotate/prelabel.c's. */
#include "server/handlers.h"
#include "annotate/prelabel.h"

#include <stdio.h>

void h_model_create(tly_req *r)
{
    tly_model m;
    tly_error err;
    tly_prelabel_env env = {r->app->store, r->app->blobs, r->app->base_url};
    if (tly_prelabel_model_create(&env, r->ids[0], r->json, &m, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_CREATED, tly_model_json(&m));
    tly_model_clear(&m);
}

void h_model_list(tly_req *r)
{
    tly_model *list = NULL;
    size_t n = 0;
    tly_error err;
    tly_project p = {0};
    if (tly_store_project_get(r->app->store, r->ids[0], &p, &err) < 0 ||
        tly_store_model_list(r->app->store, r->ids[0], &list, &n, &err) < 0) {
        tly_project_clear(&p);
        return http_reply_error(r, &err);
    }
    tly_project_clear(&p);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, tly_model_json(&list[i]));
    tly_model_list_free(list, n);
    http_reply_json(r, MHD_HTTP_OK, json_pack("{s:o,s:n}", "items", items, "next_cursor"));
}

void h_model_run(tly_req *r)
{
    tly_error err;
    if (tly_prelabel_model_run(r->app->store, r->ids[0], r->ids[1], &err) < 0)
        return http_reply_error(r, &err);
    tly_jobrunner_wake(r->app->jobs);
    http_reply_json(r, MHD_HTTP_ACCEPTED, json_pack("{s:b}", "ok", 1));
}

void h_item_predictions(tly_req *r)
{
    tly_prediction *list = NULL;
    size_t n = 0;
    tly_error err;
    tly_item it = {0};
    if (tly_store_item_get(r->app->store, r->ids[0], &it, &err) < 0 ||
        tly_store_prediction_list(r->app->store, r->ids[0], &list, &n, &err) < 0) {
        tly_item_clear(&it);
        return http_reply_error(r, &err);
    }
    tly_item_clear(&it);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, tly_prediction_json(&list[i]));
    tly_prediction_list_free(list, n);
    http_reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "items", items));
}
