/* handlers_users.c -- health, metrics, users and the caller's identity. */
#include "server/handlers.h"
#include "core/json.h"
#include "core/metrics.h"
#include "core/timeutil.h"

#include <stdio.h>
#include <string.h>

void h_healthz(tly_req *r)
{
    http_reply_json(r, MHD_HTTP_OK, json_pack("{s:b}", "ok", 1));
}

void h_metrics(tly_req *r)
{
    tly_buf out;
    tly_buf_init(&out, 8u << 20);
    int64_t queued = 0, running = 0, failed = 0;
    tly_error err;
    int rc = tly_metrics_render(&out);
    if (tly_store_job_counts(r->app->store, &queued, &running, &failed, &err) == 0)
        rc |= tly_buf_appendf(&out,
                              "# HELP tally_jobs Background jobs by state\n# TYPE tally_jobs gauge\n"
                              "tally_jobs{state=\"queued\"} %lld\ntally_jobs{state=\"running\"} %lld\n"
                              "tally_jobs{state=\"failed\"} %lld\n",
                              (long long)queued, (long long)running, (long long)failed);
    if (rc < 0)
        http_reply_errorf(r, TLY_E_INTERNAL, "internal", "metrics do not fit in the buffer");
    else
        http_reply_text(r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", out.data ? out.data : "",
                        out.len);
    tly_buf_free(&out);
}

static json_t *user_json(const tly_user *u)
{
    char created[32];
    tly_format_rfc3339(u->created_at, created, sizeof created);
    return json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)u->id, "name", u->name, "role",
                     tly_role_name(u->role), "created_at", created);
}

void h_user_create(tly_req *r)
{
    static const char *const keys[] = {"name", "role", NULL};
    const char *name = NULL, *role_name = NULL;
    tly_error err;
    tly_role role;
    if (tly_json_only_keys(r->json, "user", keys, &err) < 0 ||
        tly_json_get_string(r->json, "name", 1, &name, &err) < 0 ||
        tly_json_get_string(r->json, "role", 1, &role_name, &err) < 0)
        return http_reply_error(r, &err);
    if (!name[0] || strlen(name) >= sizeof ((tly_user *)0)->name)
        return http_reply_errorf(r, TLY_E_INVALID, "invalid_field", "field 'name' must be 1 to 127 bytes");
    if (tly_role_parse(role_name, &role) < 0)
        return http_reply_errorf(r, TLY_E_INVALID, "invalid_field",
                                 "field 'role' must be one of admin, manager, worker, consumer");
    /* Managers recruit workers and consumers; only admins make staff. */
    if (r->user.role != TLY_ROLE_ADMIN && (role == TLY_ROLE_ADMIN || role == TLY_ROLE_MANAGER))
        return http_reply_errorf(r, TLY_E_FORBIDDEN, "forbidden", "only an admin may create %s users", role_name);
    char token[64], hash[65];
    if (tly_auth_new_token(token, sizeof token, hash) < 0)
        return http_reply_errorf(r, TLY_E_INTERNAL, "internal", "no randomness for a token");
    tly_user u;
    if (tly_store_user_create(r->app->store, name, role, hash, &u, &err) < 0)
        return http_reply_error(r, &err);
    json_t *body = user_json(&u);
    json_object_set_new(body, "token", json_string(token));
    http_reply_json(r, MHD_HTTP_CREATED, body);
}

void h_me(tly_req *r)
{
    http_reply_json(r, MHD_HTTP_OK, user_json(&r->user));
}
