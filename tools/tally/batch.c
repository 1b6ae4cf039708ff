/* batch.c -- `tally batch show B` and the batch report printer that `tally ingest`
 * shares.
 *
 * The report is stable text meant for people and simple scripts:
 *   batch 12 'photos' (project 3): done
 *     5 total, 2 accepted, 1 duplicates, 2 rejected, 0 pending
 *     rejected empty.jpg: empty_file: the file is empty
 *   2 files rejected
 */
#include "tools/tally/cli.h"

static const tc_help show_help = {
    "batch show", "BATCH_ID", "Prints a batch's state, counts and per-file errors.",
};

void tc_print_batch(const json_t *b)
{
    printf("batch %lld '%s' (project %lld): %s\n", (long long)tc_jint(b, "id"), tc_jstr(b, "name"),
           (long long)tc_jint(b, "project_id"), tc_jstr(b, "state"));
    printf("  %lld total, %lld accepted, %lld duplicates, %lld rejected, %lld pending\n",
           (long long)tc_jint(b, "total"), (long long)tc_jint(b, "accepted"),
           (long long)tc_jint(b, "duplicates"), (long long)tc_jint(b, "rejected"),
           (long long)tc_jint(b, "pending"));
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(b, "errors"), i, e)
        printf("  rejected %s: %s: %s\n", tc_jstr(e, "file"), tc_jstr(e, "code"),
               tc_jstr(e, "message"));
    long long rejected = (long long)tc_jint(b, "rejected");
    if (rejected > 0)
        printf("%lld file%s rejected\n", rejected, rejected == 1 ? "" : "s");
}

int cmd_batch_show(tc_ctx *ctx, int argc, char **argv)
{
    int npos;
    TC_PARSE(ctx, argc, argv, NULL, &show_help, argv, &npos);
    int64_t id = npos == 1 ? tc_parse_id(argv[0]) : -1;
    if (id < 0)
        return tc_usage_error(&show_help, "expected one BATCH_ID (a positive integer)");
    tly_error err;
    if (tc_connect(ctx, 1, &err) < 0)
        return tc_report(&err);
    char path[64];
    snprintf(path, sizeof path, "/v1/batches/%lld", (long long)id);
    tc_resp r;
    tc_resp_init(&r);
    int rc = TC_EXIT_OK;
    if (tc_http_json(ctx->http, "GET", path, NULL, &r, &err) < 0)
        rc = tc_report(&err);
    else
        tc_print_batch(r.json);
    tc_resp_free(&r);
    return rc;
}
