/* handlers_work.c -- crowd work: next task, submit, skip, the worker's own stats,
 * pausing projects and reading judgments (as pseudonyms). */
#include "server/handlers.h"
#include "annotate/project.h"
#include "annotate/work.h"
#include "qa/crowd.h"
#include "core/timeutil.h"

#include <stdlib.h>
#include <string.h>

void h_work_next(tly_req *r)
{
    json_t *task = NULL;
    tly_error err;
    if (tly_crowd_next(r->app->store, r->ids[0], &r->user, &task, &err) < 0)
        return http_reply_error(r, &err);
    if (!task)
        return http_reply_empty(r, MHD_HTTP_NO_CONTENT);
    http_reply_json(r, MHD_HTTP_OK, task);
}

void h_work_submit(tly_req *r)
{
    json_t *out = NULL;
    tly_error err;
    if (tly_crowd_submit(r->app->store, r->ids[0], &r->user, r->json, &out, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_OK, out);
}

void h_work_skip(tly_req *r)
{
    tly_error err;
    if (tly_work_skip(r->app->store, r->ids[0], &r->user, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_OK, json_pack("{s:b}", "ok", 1));
}

void h_assignment_get(tly_req *r)
{
    json_t *out = NULL;
    tly_error err;
    if (tly_work_assignment(r->app->store, r->ids[0], &r->user, &out, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_OK, out);
}

void h_me_stats(tly_req *r)
{
    json_t *out = NULL;
    tly_error err;
    if (tly_store_worker_stats(r->app->store, r->user.id, tly_now_ms(), &out, &err) < 0)
        return http_reply_error(r, &err);
    /* Times as RFC 3339, like everywhere else in the API. */
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(out, "items"), i, row) {
        char ts[32];
        tly_format_rfc3339(json_integer_value(json_object_get(row, "last_at")), ts, sizeof ts);
        json_object_set_new(row, "last_at", json_string(ts));
    }
    http_reply_json(r, MHD_HTTP_OK, out);
}

static void reply_project_or_error(tly_req *r, int rc, tly_project *p, const tly_error *err)
{
    if (rc < 0)
        return http_reply_error(r, err);
    json_t *body = tly_project_json(p);
    /* Starting (or changing) a project is when the manager must hear about a
     * shortage of test questions. */
    json_t *warnings = strcmp(p->state, "active") == 0 ? tly_crowd_warnings(r->app->store, p) : NULL;
    if (warnings)
        json_object_set_new(body, "warnings", warnings);
    http_reply_json(r, MHD_HTTP_OK, body);
    tly_project_clear(p);
}

void h_project_pause(tly_req *r)
{
    tly_project p = {0};
    tly_error err;
    int rc = tly_project_set_state(r->app->store, r->ids[0], "paused", &p, &err);
    reply_project_or_error(r, rc, &p, &err);
}

void h_project_resume(tly_req *r)
{
    tly_project p = {0};
    tly_error err;
    int rc = tly_project_set_state(r->app->store, r->ids[0], "active", &p, &err);
    reply_project_or_error(r, rc, &p, &err);
}

void h_project_patch(tly_req *r)
{
    tly_project p = {0};
    tly_error err;
    int rc = tly_project_update(r->app->store, r->ids[0], r->json, &p, &err);
    reply_project_or_error(r, rc, &p, &err);
}

void h_judgment_list(tly_req *r)
{
    int limit;
    int64_t after, item_id = 0;
    if (http_page_args(r, &limit, &after) < 0)
        return;
    const char *item = http_query(r, "item_id");
    if (item && (item_id = atoll(item)) <= 0)
        return http_reply_errorf(r, TLY_E_INVALID, "invalid_query", "item_id must be a positive integer");
    tly_project p = {0};
    tly_judgment *list = NULL;
    size_t n = 0;
    tly_error err;
    if (tly_store_project_get(r->app->store, r->ids[0], &p, &err) < 0 ||
        tly_store_judgment_list(r->app->store, r->ids[0], item_id, after, limit, &list, &n, &err) < 0) {
        tly_project_clear(&p);
        return http_reply_error(r, &err);
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, tly_work_judgment_json(&p, &list[i]));
    int64_t last = n ? list[n - 1].id : 0;
    tly_judgment_list_free(list, n);
    tly_project_clear(&p);
    http_reply_json(r, MHD_HTTP_OK, http_page(items, limit, last));
}
