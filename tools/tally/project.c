/* project.c -- `tally project create|list|show|stats`.
 *
 * create reads the template and workflow as JSON files and the guidelines as a text
 * file, builds the request with jansson and prints the new id alone on stdout
 * (scriptable), the confirmation on stderr. list follows next_cursor until the end.
 */
#include "tools/tally/cli.h"

#include "core/fsutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GUIDELINES_MAX (1u << 20)
#define PAGE_SIZE 100

static const tc_help create_help = {
    "project create",
    "--name NAME --media image|audio --template FILE [--workflow FILE] [--guidelines FILE]",
    "Creates a project. FILE for --template is JSON like\n"
    "  {\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"]}]}\n"
    "--workflow is a JSON object (overlap, gold_rate, quiz, ...); --guidelines is text.\n"
    "Prints the new project's id on stdout.",
};
static const tc_help list_help = { "project list", "", "Lists all projects visible to you." };
static const tc_help show_help = { "project show", "ID", "Prints the project as JSON." };
static const tc_help stats_help = { "project stats", "ID",
                                    "Prints the project's counts (GET /v1/projects/ID/stats)." };

/* Load a JSON object from path; new reference or NULL after printing why. */
static json_t *load_json_object(const char *what, const char *path)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        tc_fail_local("%s file %s: %s (line %d, column %d)", what, path, jerr.text, jerr.line,
                      jerr.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        tc_fail_local("%s file %s: must contain a JSON object", what, path);
        json_decref(j);
        return NULL;
    }
    return j;
}

int cmd_project_create(tc_ctx *ctx, int argc, char **argv)
{
    const char *name = NULL, *media = NULL, *tpl_path = NULL, *wf_path = NULL, *gl_path = NULL;
    const tc_opt opts[] = {
        { "name", 1, &name, NULL },         { "media", 1, &media, NULL },
        { "template", 1, &tpl_path, NULL }, { "workflow", 1, &wf_path, NULL },
        { "guidelines", 1, &gl_path, NULL }, { NULL, 0, NULL, NULL },
    };
    int npos;
    TC_PARSE(ctx, argc, argv, opts, &create_help, argv, &npos);
    if (npos > 0)
        return tc_usage_error(&create_help, "unexpected argument '%s'", argv[0]);
    if (!name || !media || !tpl_path)
        return tc_usage_error(&create_help, "--name, --media and --template are required");

    int rc = TC_EXIT_FAIL;
    json_t *body = NULL, *tpl = NULL, *wf = NULL;
    char *guidelines = NULL;
    tc_resp r;
    tc_resp_init(&r);
    tly_error err;

    if (!(tpl = load_json_object("template", tpl_path)))
        goto out;
    if (wf_path && !(wf = load_json_object("workflow", wf_path)))
        goto out;
    size_t gl_len = 0;
    if (gl_path && !(guidelines = tly_read_file(gl_path, GUIDELINES_MAX, &gl_len))) {
        tc_fail_local("guidelines file %s: %s", gl_path,
                      errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
        goto out;
    }
    body = json_pack("{s:s, s:s, s:O}", "name", name, "media", media, "template", tpl);
    if (!body) {
        tc_fail_local("--name and --media must be UTF-8 text");
        goto out;
    }
    if (wf && json_object_set(body, "workflow", wf) < 0)
        goto oom;
    if (guidelines) {
        json_t *g = json_stringn(guidelines, gl_len);
        if (!g) {
            tc_fail_local("guidelines file %s: not UTF-8 text", gl_path);
            goto out;
        }
        if (json_object_set_new(body, "guidelines", g) < 0)
            goto oom;
    }
    if (tc_connect(ctx, 1, &err) < 0 ||
        tc_http_json(ctx->http, "POST", "/v1/projects", body, &r, &err) < 0) {
        rc = tc_report(&err);
        goto out;
    }
    fprintf(stderr, "created project %lld '%s' (%s)\n", (long long)tc_jint(r.json, "id"),
            tc_jstr(r.json, "name"), tc_jstr(r.json, "media"));
    printf("%lld\n", (long long)tc_jint(r.json, "id"));
    rc = TC_EXIT_OK;
    goto out;
oom:
    tc_fail_local("out of memory");
out:
    tc_resp_free(&r);
    json_decref(body);
    json_decref(tpl);
    json_decref(wf);
    free(guidelines);
    return rc;
}

int cmd_project_list(tc_ctx *ctx, int argc, char **argv)
{
    int npos;
    TC_PARSE(ctx, argc, argv, NULL, &list_help, argv, &npos);
    if (npos > 0)
        return tc_usage_error(&list_help, "unexpected argument '%s'", argv[0]);
    tly_error err;
    if (tc_connect(ctx, 1, &err) < 0)
        return tc_report(&err);
    char cursor[128] = "";
    int rc = TC_EXIT_OK, first = 1;
    for (;;) {
        char path[256];
        char *esc = cursor[0] ? tc_http_escape(ctx->http, cursor) : NULL;
        snprintf(path, sizeof path, "/v1/projects?limit=%d%s%s", PAGE_SIZE, esc ? "&cursor=" : "",
                 esc ? esc : "");
        free(esc);
        tc_resp r;
        tc_resp_init(&r);
        if (tc_http_json(ctx->http, "GET", path, NULL, &r, &err) < 0) {
            rc = tc_report(&err);
            tc_resp_free(&r);
            break;
        }
        if (first)
            printf("%-8s %-8s %-10s %-22s %s\n", "ID", "MEDIA", "STATE", "CREATED", "NAME");
        first = 0;
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(r.json, "items"), i, p)
            printf("%-8lld %-8s %-10s %-22s %s\n", (long long)tc_jint(p, "id"),
                   tc_jstr(p, "media"), tc_jstr(p, "state"), tc_jstr(p, "created_at"),
                   tc_jstr(p, "name"));
        int more = tc_next_cursor(r.json, cursor, cursor, sizeof cursor);
        tc_resp_free(&r);
        if (!more)
            break;
    }
    return rc;
}

/* GET path and print the JSON body indented. */
static int show_json(tc_ctx *ctx, const char *path)
{
    tly_error err;
    if (tc_connect(ctx, 1, &err) < 0)
        return tc_report(&err);
    tc_resp r;
    tc_resp_init(&r);
    int rc = TC_EXIT_OK;
    if (tc_http_json(ctx->http, "GET", path, NULL, &r, &err) < 0)
        rc = tc_report(&err);
    else if (!r.json)
        rc = tc_fail_local("GET %s: the response is not JSON", path);
    else if (json_dumpf(r.json, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0)
        putchar('\n');
    tc_resp_free(&r);
    return rc;
}

static int show_cmd(tc_ctx *ctx, int argc, char **argv, const tc_help *help, const char *suffix)
{
    int npos;
    TC_PARSE(ctx, argc, argv, NULL, help, argv, &npos);
    int64_t id = npos == 1 ? tc_parse_id(argv[0]) : -1;
    if (id < 0)
        return tc_usage_error(help, "expected one project ID (a positive integer)");
    char path[96];
    snprintf(path, sizeof path, "/v1/projects/%lld%s", (long long)id, suffix);
    return show_json(ctx, path);
}

int cmd_project_show(tc_ctx *ctx, int argc, char **argv)
{
    return show_cmd(ctx, argc, argv, &show_help, "");
}

int cmd_project_stats(tc_ctx *ctx, int argc, char **argv)
{
    return show_cmd(ctx, argc, argv, &stats_help, "/stats");
}
