/* handlers_projects.c -- projects: create, list, show, stats. */
#include "server/handlers.h"
#include "qa/crowd.h"
#include "annotate/project.h"

#include <string.h>

void h_project_create(tly_req *r)
{
    tly_project p = {0};
    tly_error err;
    if (tly_project_create(r->app->store, r->json, r->user.id, &p, &err) < 0)
        return http_reply_error(r, &err);
    json_t *body = tly_project_json(&p);
    json_t *warnings = tly_crowd_warnings(r->app->store, &p);
    if (warnings)
        json_object_set_new(body, "warnings", warnings);
    http_reply_json(r, MHD_HTTP_CREATED, body);
    tly_project_clear(&p);
}

void h_project_list(tly_req *r)
{
    int limit;
    int64_t after;
    if (http_page_args(r, &limit, &after) < 0)
        return;
    tly_project *list = NULL;
    size_t n = 0;
    tly_error err;
    if (tly_store_project_list(r->app->store, after, limit, &list, &n, &err) < 0)
        return http_reply_error(r, &err);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, tly_project_json(&list[i]));
    int64_t last = n ? list[n - 1].id : 0;
    tly_project_list_free(list, n);
    http_reply_json(r, MHD_HTTP_OK, http_page(items, limit, last));
}

void h_project_get(tly_req *r)
{
    tly_project p = {0};
    tly_error err;
    if (tly_store_project_get(r->app->store, r->ids[0], &p, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_OK, tly_project_json(&p));
    tly_project_clear(&p);
}

