/* user.c -- `tally user create NAME --role ROLE`.
 *
 * The new token is shown only once by the server, so it goes alone on stdout (easy
 * to capture in a script: TOKEN=$(tally user create ann --role worker)); the
 * human-readable confirmation goes to stderr.
 */
#include "tools/tally/cli.h"

#include <string.h>

static const tc_help user_create_help = {
    "user create", "NAME --role admin|manager|worker|consumer",
    "Creates a user (needs an admin token) and prints its API token on stdout.\n"
    "The token is shown only once.",
};

int cmd_user_create(tc_ctx *ctx, int argc, char **argv)
{
    const char *role = NULL;
    const tc_opt opts[] = { { "role", 1, &role, NULL }, { NULL, 0, NULL, NULL } };
    int npos;
    TC_PARSE(ctx, argc, argv, opts, &user_create_help, argv, &npos);
    if (npos != 1)
        return tc_usage_error(&user_create_help, "expected exactly one NAME");
    if (!role)
        return tc_usage_error(&user_create_help, "--role is required");

    tly_error err;
    if (tc_connect(ctx, 1, &err) < 0)
        return tc_report(&err);
    json_t *body = json_pack("{s:s, s:s}", "name", argv[0], "role", role);
    if (!body)
        return tc_fail_local("out of memory (or the name is not UTF-8)");
    tc_resp r;
    tc_resp_init(&r);
    int rc = TC_EXIT_OK;
    if (tc_http_json(ctx->http, "POST", "/v1/users", body, &r, &err) < 0) {
        rc = tc_report(&err);
    } else if (!*tc_jstr(r.json, "token")) {
        rc = tc_fail_local("the server's response has no token");
    } else {
        fprintf(stderr, "created user %lld '%s' (%s)\n", (long long)tc_jint(r.json, "id"),
                tc_jstr(r.json, "name"), tc_jstr(r.json, "role"));
        printf("%s\n", tc_jstr(r.json, "token"));
    }
    tc_resp_free(&r);
    json_decref(body);
    return rc;
}
