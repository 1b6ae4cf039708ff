/* auth.c -- `tally login` and `tally whoami`.
 *
 * login never trusts a token blindly: it asks GET /v1/me with it first and saves the
 * url+token only when the server accepts it, so a typo does not get stored.
 */
#include "tools/tally/cli.h"

static const tc_help login_help = {
    "login", "[--url URL] --token TOKEN",
    "Checks TOKEN against the server (GET /v1/me) and saves URL and TOKEN to\n"
    "$XDG_CONFIG_HOME/tally/config (default ~/.config/tally/config), mode 0600.\n"
    "Without --url, the URL comes from TALLY_URL, the config file or the default.",
};

static const tc_help whoami_help = {
    "whoami", "",
    "Prints the name, role and id of the user the configured token belongs to.",
};

/* GET /v1/me into *me (new reference). */
static int fetch_me(tc_ctx *ctx, json_t **me, tly_error *err)
{
    tc_resp r;
    tc_resp_init(&r);
    int rc = tc_http_json(ctx->http, "GET", "/v1/me", NULL, &r, err);
    if (rc == 0 && !json_is_object(r.json))
        rc = tly_fail(err, TLY_E_IO, "bad_response", "GET /v1/me: the response is not a JSON object");
    if (rc == 0)
        *me = json_incref(r.json);
    tc_resp_free(&r);
    return rc;
}

int cmd_login(tc_ctx *ctx, int argc, char **argv)
{
    int npos;
    TC_PARSE(ctx, argc, argv, NULL, &login_help, argv, &npos);
    if (npos > 0)
        return tc_usage_error(&login_help, "unexpected argument '%s'", argv[0]);
    if (!ctx->flag_token)
        return tc_usage_error(&login_help, "--token is required");
    tly_error err;
    json_t *me = NULL;
    if (tc_connect(ctx, 1, &err) < 0 || fetch_me(ctx, &me, &err) < 0)
        return tc_report(&err);
    int rc = TC_EXIT_OK;
    if (tc_config_save(tc_http_base_url(ctx->http), ctx->cfg.token, &err) < 0) {
        rc = tc_report(&err);
    } else {
        char path[4096];
        tc_config_path(path, sizeof path);
        printf("logged in to %s as %s (%s); saved to %s\n", tc_http_base_url(ctx->http),
               tc_jstr(me, "name"), tc_jstr(me, "role"), path);
    }
    json_decref(me);
    return rc;
}

int cmd_whoami(tc_ctx *ctx, int argc, char **argv)
{
    int npos;
    TC_PARSE(ctx, argc, argv, NULL, &whoami_help, argv, &npos);
    if (npos > 0)
        return tc_usage_error(&whoami_help, "unexpected argument '%s'", argv[0]);
    tly_error err;
    json_t *me = NULL;
    if (tc_connect(ctx, 1, &err) < 0 || fetch_me(ctx, &me, &err) < 0)
        return tc_report(&err);
    printf("%s (%s), user id %lld, at %s\n", tc_jstr(me, "name"), tc_jstr(me, "role"),
           (long long)tc_jint(me, "id"), tc_http_base_url(ctx->http));
    json_decref(me);
    return TC_EXIT_OK;
}
