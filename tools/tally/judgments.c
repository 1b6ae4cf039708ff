/* judgments.c -- `tally judgments import PROJECT FILE [--format csv|jsonl]`:
 * judgments collected elsewhere, sent to POST /v1/projects/{id}/judgments/import.
 *
 * The file is read whole (capped at IMPORT_MAX: a request body is held in memory on
 * both sides) and sent as {"format","data":"<file text>"}; the server checks every
 * line, imports the good ones in one transaction and reports the rest, which are
 * printed here as "line L: code: message". Exit status 1 when any line was rejected.
 * The server may take a while to answer a large file (one transaction), so the
 * request's stall timeout is raised.
 */
#include "tools/tally/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define IMPORT_MAX (64u << 20)   /* 64 MiB of file text */
#define ERRORS_SHOWN 20
#define IMPORT_STALL_S 1800L     /* the server answers after the whole transaction */

static const tc_help import_help = {
    "judgments import", "PROJECT_ID FILE [--format csv|jsonl]",
    "Imports judgments collected elsewhere into the project. FILE is either\n"
    "  CSV: lines item,worker,answer (an optional first line item,worker,answer is\n"
    "       the header); answer is a JSON object (quoted CSV-style, e.g.\n"
    "       \"{\"\"label\"\":\"\"cat\"\"}\") or a plain value for the template's first\n"
    "       control, e.g. cat;\n"
    "  JSON Lines: one {\"item\":..,\"worker\":\"..\",\"answer\":{..}} per line.\n"
    "item is an item id or the item's file name; worker is any reference of at most\n"
    "100 bytes (each one becomes an imported worker of the project). Every answer is\n"
    "checked against the template; a worker who already judged an item counts as a\n"
    "duplicate. The format comes from FILE's extension (.csv, .jsonl, .ndjson) unless\n"
    "--format is given; FILE '-' reads standard input and needs --format.\n"
    "Prints \"imported N, duplicates D, rejected R\" and the first 20 rejected lines;\n"
    "exits 1 when any line was rejected (the good lines are imported all the same).\n"
    "Size: the file is sent as one JSON request. tally reads files up to 64 MiB, but\n"
    "tallyd takes JSON bodies up to 16 MiB by default (its --max-body option), and\n"
    "the JSON escaping of quotes and line ends counts too: split a larger file, or\n"
    "start tallyd with a larger --max-body.",
};

/* "csv" / "jsonl" from the file name's extension, or NULL. */
static const char *format_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (!dot || strchr(dot, '/'))
        return NULL;
    if (strcasecmp(dot, ".csv") == 0)
        return "csv";
    if (strcasecmp(dot, ".jsonl") == 0 || strcasecmp(dot, ".ndjson") == 0)
        return "jsonl";
    return NULL;
}

/* Read all of path ("-": stdin) into b (capped at IMPORT_MAX). 0, or -1 after
 * printing why. */
static int read_all(const char *path, tly_buf *b)
{
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        tc_fail_local("%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    int rc = -1, have_st = fstat(fileno(f), &st) == 0;
    if (have_st && S_ISDIR(st.st_mode)) {
        tc_fail_local("%s: is a directory", path);
        goto out;
    }
    if (have_st && S_ISREG(st.st_mode) && (uint64_t)st.st_size > IMPORT_MAX)
        goto too_large;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b->len + n > IMPORT_MAX)
            goto too_large;
        if (tly_buf_append(b, chunk, n) < 0) {
            tc_fail_local("%s: out of memory", path);
            goto out;
        }
    }
    if (ferror(f)) {
        tc_fail_local("%s: read error: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
    goto out;
too_large:
    tc_fail_local("%s: larger than %u MiB, the most one import takes; split it into smaller "
                  "files", path, IMPORT_MAX >> 20);
out:
    if (!is_stdin)
        fclose(f);
    return rc;
}

/* The request body for the file text, or NULL after printing why. */
static json_t *import_body(const char *path, const char *format, const char *text, size_t len)
{
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) { /* a UTF-8 byte order mark */
        text += 3;
        len -= 3;
    }
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        size_t line = 1;
        for (const char *p = text; p < nul; p++)
            line += *p == '\n';
        tc_fail_local("%s: line %zu holds a NUL byte; a judgments file is text", path, line);
        return NULL;
    }
    json_t *data = json_stringn(text, len);
    if (!data) {
        tc_fail_local("%s: not UTF-8 text", path);
        return NULL;
    }
    json_t *body = json_pack("{s:s,s:o}", "format", format, "data", data);
    if (!body)
        tc_fail_local("out of memory");
    return body;
}

static void print_reply(const json_t *reply)
{
    long long rejected = (long long)tc_jint(reply, "rejected");
    printf("imported %lld, duplicates %lld, rejected %lld\n", (long long)tc_jint(reply, "imported"),
           (long long)tc_jint(reply, "duplicates"), rejected);
    const json_t *errors = json_object_get(reply, "errors");
    size_t i, shown = 0;
    json_t *e;
    json_array_foreach(errors, i, e) {
        if (shown == ERRORS_SHOWN)
            break;
        printf("line %lld: %s: %s\n", (long long)tc_jint(e, "line"), tc_jstr(e, "code"),
               tc_jstr(e, "message"));
        shown++;
    }
    if (rejected > (long long)shown)
        printf("... and %lld more rejected lines\n", rejected - (long long)shown);
}

int cmd_judgments_import(tc_ctx *ctx, int argc, char **argv)
{
    const char *format = NULL;
    const tc_opt opts[] = { { "format", 1, &format, NULL }, { NULL, 0, NULL, NULL } };
    int npos;
    TC_PARSE(ctx, argc, argv, opts, &import_help, argv, &npos);
    if (npos != 2)
        return tc_usage_error(&import_help, "expected PROJECT_ID and FILE");
    int64_t project = tc_parse_id(argv[0]);
    const char *path = argv[1];
    if (project < 0)
        return tc_usage_error(&import_help, "PROJECT_ID must be a positive integer, not '%s'",
                              argv[0]);
    if (format && strcmp(format, "csv") != 0 && strcmp(format, "jsonl") != 0)
        return tc_usage_error(&import_help, "--format is csv or jsonl, not '%s'", format);
    if (!format && !(format = format_of(path)))
        return tc_usage_error(&import_help,
                              "cannot tell the format of '%s' (.csv, .jsonl or .ndjson): give "
                              "--format csv|jsonl",
                              path);

    tly_buf text;
    tly_buf_init(&text, IMPORT_MAX);
    json_t *body = NULL;
    tc_resp r;
    tc_resp_init(&r);
    tly_error err;
    int rc = TC_EXIT_FAIL;
    if (read_all(path, &text) < 0 ||
        !(body = import_body(path, format, text.data ? text.data : "", text.len)))
        goto out;
    tly_buf_free(&text); /* the body holds its own copy */
    if (tc_connect(ctx, 1, &err) < 0) {
        rc = tc_report(&err);
        goto out;
    }
    tc_http_set_stall_timeout(ctx->http, IMPORT_STALL_S);
    char url[96];
    snprintf(url, sizeof url, "/v1/projects/%lld/judgments/import", (long long)project);
    if (tc_http_json(ctx->http, "POST", url, body, &r, &err) < 0) {
        rc = tc_report(&err);
        if (r.status == 413)
            fprintf(stderr, "tally: the request was larger than tallyd's JSON body limit (its "
                            "--max-body, 16 MiB by default); split %s into smaller files\n",
                    path);
        goto out;
    }
    if (!json_is_object(r.json)) {
        tc_fail_local("POST %s: the response is not a JSON object", url);
        goto out;
    }
    print_reply(r.json);
    rc = tc_jint(r.json, "rejected") > 0 ? TC_EXIT_FAIL : TC_EXIT_OK;
out:
    tc_resp_free(&r);
    json_decref(body);
    tly_buf_free(&text);
    return rc;
}
