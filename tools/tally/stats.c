/* stats.c -- `tally stats [--json]`: the caller's own work per project
 * (GET /v1/me/stats), as a table with the project's name looked up per row.
 *
 *   PROJECT  JUDGMENTS  SKIPPED  ACTIVE  LAST                  NAME
 *   3        42         2        1       2026-11-22T04:30:00Z  Pets
 */
#include "tools/tally/cli.h"

#include <string.h>

static const tc_help stats_help = {
    "stats", "[--json]",
    "Shows your own work per project: judgments submitted, tasks skipped, tasks\n"
    "leased right now (active) and when you last submitted. --json prints the\n"
    "server's reply (GET /v1/me/stats) as it is.",
};

/* The project's name, or "-" when it cannot be read (name is the caller's buffer). */
static const char *project_name(tc_ctx *ctx, int64_t id, char *name, size_t namesz)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/projects/%lld", (long long)id);
    tc_resp r;
    tly_error err;
    tc_resp_init(&r);
    snprintf(name, namesz, "-");
    if (tc_http_json(ctx->http, "GET", path, NULL, &r, &err) == 0 && *tc_jstr(r.json, "name"))
        snprintf(name, namesz, "%s", tc_jstr(r.json, "name"));
    tc_resp_free(&r);
    return name;
}

int cmd_stats(tc_ctx *ctx, int argc, char **argv)
{
    int as_json = 0;
    const tc_opt opts[] = { { "json", 0, NULL, &as_json }, { NULL, 0, NULL, NULL } };
    int npos;
    TC_PARSE(ctx, argc, argv, opts, &stats_help, argv, &npos);
    if (npos > 0)
        return tc_usage_error(&stats_help, "unexpected argument '%s'", argv[0]);
    tly_error err;
    if (tc_connect(ctx, 1, &err) < 0)
        return tc_report(&err);
    tc_resp r;
    tc_resp_init(&r);
    int rc = TC_EXIT_OK;
    if (tc_http_json(ctx->http, "GET", "/v1/me/stats", NULL, &r, &err) < 0) {
        rc = tc_report(&err);
    } else if (!r.json) {
        rc = tc_fail_local("GET /v1/me/stats: the response is not JSON");
    } else if (as_json) {
        if (json_dumpf(r.json, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0)
            putchar('\n');
    } else {
        const json_t *items = json_object_get(r.json, "items");
        printf("%-8s %-10s %-8s %-7s %-21s %s\n", "PROJECT", "JUDGMENTS", "SKIPPED", "ACTIVE",
               "LAST", "NAME");
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it) {
            const char *last = tc_jstr(it, "last_at");
            char name[256];
            int64_t id = tc_jint(it, "project_id");
            printf("%-8lld %-10lld %-8lld %-7lld %-21s %s\n", (long long)id,
                   (long long)tc_jint(it, "judgments"), (long long)tc_jint(it, "skipped"),
                   (long long)tc_jint(it, "active"), *last ? last : "-",
                   project_name(ctx, id, name, sizeof name));
        }
        if (json_array_size(items) == 0)
            printf("(no work yet)\n");
    }
    tc_resp_free(&r);
    return rc;
}
