/* handlers_console.c -- what the manager console reads beyond the other resources:
 * the throughput series of a project. */
#include "server/handlers.h"
#include "core/timeutil.h"
#include "qa/activity.h"

void h_project_throughput(tly_req *r)
{
    json_t *out = NULL;
    tly_error err;
    if (tly_activity_throughput(r->app->store, r->ids[0], http_query(r, "bucket"), tly_now_ms(), &out, &err) < 0)
        return http_reply_error(r, &err);
    http_reply_json(r, MHD_HTTP_OK, out);
}
