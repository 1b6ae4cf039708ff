/* items.c -- `tally items PROJECT [--state S] [--limit N] [--json]`.
 *
 * Pages through GET /v1/projects/{id}/items following next_cursor; --limit caps the
 * total number printed (and the page size asked for). Each page is freed before the
 * next is fetched, so memory stays at one page however many items there are.
 * --json prints each item as one compact JSON line (JSON Lines).
 */
#include "tools/tally/cli.h"

#include <stdlib.h>
#include <string.h>

#define PAGE_SIZE 100

static const tc_help items_help = {
    "items", "PROJECT_ID [--state STATE] [--limit N] [--json]",
    "Lists a project's items: id, name, state, format and size (WxH for images,\n"
    "duration for audio). --json prints one JSON object per line instead.",
};

static void print_row(const json_t *it)
{
    const json_t *m = json_object_get(it, "media");
    char size[48] = "-";
    json_t *w = json_object_get(m, "width"), *h = json_object_get(m, "height");
    json_t *d = json_object_get(m, "duration");
    if (json_is_number(w) && json_is_number(h))
        snprintf(size, sizeof size, "%.0fx%.0f", json_number_value(w), json_number_value(h));
    else if (json_is_number(d))
        snprintf(size, sizeof size, "%.2fs", json_number_value(d));
    const char *fmt = tc_jstr(m, "format");
    printf("%-8lld %-12s %-6s %-12s %s\n", (long long)tc_jint(it, "id"), tc_jstr(it, "state"),
           *fmt ? fmt : "-", size, tc_jstr(it, "name"));
}

int cmd_items(tc_ctx *ctx, int argc, char **argv)
{
    const char *state = NULL, *limit_s = NULL;
    int as_json = 0;
    const tc_opt opts[] = {
        { "state", 1, &state, NULL }, { "limit", 1, &limit_s, NULL },
        { "json", 0, NULL, &as_json }, { NULL, 0, NULL, NULL },
    };
    int npos;
    TC_PARSE(ctx, argc, argv, opts, &items_help, argv, &npos);
    int64_t project = npos == 1 ? tc_parse_id(argv[0]) : -1;
    if (project < 0)
        return tc_usage_error(&items_help, "expected one PROJECT_ID (a positive integer)");
    int64_t limit = limit_s ? tc_parse_id(limit_s) : 0;
    if (limit < 0)
        return tc_usage_error(&items_help, "--limit must be a positive integer");

    tly_error err;
    if (tc_connect(ctx, 1, &err) < 0)
        return tc_report(&err);
    char *state_esc = state ? tc_http_escape(ctx->http, state) : NULL;
    if (state && !state_esc)
        return tc_fail_local("out of memory");
    char cursor[128] = "";
    int64_t printed = 0;
    int rc = TC_EXIT_OK;
    if (!as_json)
        printf("%-8s %-12s %-6s %-12s %s\n", "ID", "STATE", "FORMAT", "SIZE", "NAME");
    for (;;) {
        int64_t want = PAGE_SIZE;
        if (limit && limit - printed < want)
            want = limit - printed;
        char *cur_esc = cursor[0] ? tc_http_escape(ctx->http, cursor) : NULL;
        char path[512];
        snprintf(path, sizeof path, "/v1/projects/%lld/items?limit=%lld%s%s%s%s",
                 (long long)project, (long long)want, state_esc ? "&state=" : "",
                 state_esc ? state_esc : "", cur_esc ? "&cursor=" : "", cur_esc ? cur_esc : "");
        free(cur_esc);
        tc_resp r;
        tc_resp_init(&r);
        if (tc_http_json(ctx->http, "GET", path, NULL, &r, &err) < 0) {
            rc = tc_report(&err);
            tc_resp_free(&r);
            break;
        }
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(r.json, "items"), i, it) {
            if (limit && printed >= limit)
                break;
            if (as_json) {
                if (json_dumpf(it, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0)
                    putchar('\n');
            } else {
                print_row(it);
            }
            printed++;
        }
        int more = (!limit || printed < limit) &&
                   tc_next_cursor(r.json, cursor, cursor, sizeof cursor);
        tc_resp_free(&r);
        if (!more)
            break;
    }
    free(state_esc);
    return rc;
}
