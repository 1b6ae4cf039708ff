/* report.c -- `tally report PROJECT [--json] [--workers N] [--results N]`: a
 * manager's quality report of one project.
 *
 * Three reads of the public API: GET /v1/projects/{id}/stats, then the first N rows
 * of .../workers and .../results (paged by at most 1000, following next_cursor). The
 * text form is a block of figures, the worker table and the first results:
 *
 *   Items             4 work items, 0 test questions
 *     done            3
 *   Judgments         8 counted, 0 excluded
 *   ...
 *   WORKER          MODE   STATUS   TRUST  GOLD  JUDGMENTS  EXCLUDED  REASON
 *   w_3f9c0a1b22de  work   active   1.000  0/0           4         0  -
 *
 * --json prints {"stats":..,"workers":[..],"results":[..]}, the server's objects as
 * they came. Numbers the server leaves null (nothing to estimate from yet) print "-".
 */
#include "tools/tally/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_MAX 1000        /* the API's largest page */
#define COUNT_MAX 1000000    /* --workers / --results */
#define ANSWER_SHOWN 200     /* bytes of an answer's JSON in the results table */
#define LABEL_W 18           /* the figures' label column */

static const tc_help report_help = {
    "report", "PROJECT_ID [--json] [--workers N] [--results N]",
    "Prints a project's quality report: items per state, test-question supply (with a\n"
    "warning when there are not enough), judgments and workers, agreement per choice\n"
    "control (Krippendorff's alpha and pairwise percent agreement), accuracy\n"
    "estimates, reviews and acceptance lots; then a table of the first N workers\n"
    "(--workers, default 20: mode, status, trust, gold answered correctly / seen,\n"
    "judgments, excluded judgments, why a worker failed or was stopped) and the first\n"
    "N results (--results, default 10: item, state, method, confidence, answer).\n"
    "0 leaves a table out. Figures that cannot be estimated yet print as '-'.\n"
    "--json prints {\"stats\":..,\"workers\":[..],\"results\":[..]} as one JSON document.",
};

/* A count option: 0..COUNT_MAX, or -1. */
static int64_t parse_count(const char *s)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    return errno || *end || v > COUNT_MAX ? -1 : (int64_t)v;
}

/* Appends up to max rows of the project's paged list `what` to rows. 0 or -1. */
static int fetch_rows(tc_ctx *ctx, int64_t project, const char *what, int64_t max, json_t *rows,
                      tly_error *err)
{
    char cursor[128] = "";
    while ((int64_t)json_array_size(rows) < max) {
        int64_t want = max - (int64_t)json_array_size(rows);
        if (want > PAGE_MAX)
            want = PAGE_MAX;
        char *esc = cursor[0] ? tc_http_escape(ctx->http, cursor) : NULL;
        if (cursor[0] && !esc)
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        char path[256];
        snprintf(path, sizeof path, "/v1/projects/%lld/%s?limit=%lld%s%s", (long long)project,
                 what, (long long)want, esc ? "&cursor=" : "", esc ? esc : "");
        free(esc);
        tc_resp r;
        tc_resp_init(&r);
        if (tc_http_json(ctx->http, "GET", path, NULL, &r, err) < 0) {
            tc_resp_free(&r);
            return -1;
        }
        json_t *items = json_object_get(r.json, "items");
        if (!json_is_array(items)) {
            tc_resp_free(&r);
            return tly_fail(err, TLY_E_INVALID, "bad_response", "GET %s: the reply has no items list",
                            path);
        }
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
            if ((int64_t)json_array_size(rows) < max && json_array_append(rows, it) < 0) {
                tc_resp_free(&r);
                return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
            }
        int more = json_array_size(items) > 0 && tc_next_cursor(r.json, cursor, cursor, sizeof cursor);
        tc_resp_free(&r);
        if (!more)
            break;
    }
    return 0;
}

/* A JSON number with the given decimals into buf; "-" for null (or anything else). */
static const char *num(const json_t *v, int decimals, char *buf, size_t bufsz)
{
    if (json_is_number(v))
        snprintf(buf, bufsz, "%.*f", decimals, json_number_value(v));
    else
        snprintf(buf, bufsz, "-");
    return buf;
}

/* A fraction as a percentage ("75.0%"); "-" for null. */
static const char *pct(const json_t *v, char *buf, size_t bufsz)
{
    if (json_is_number(v))
        snprintf(buf, bufsz, "%.1f%%", 100.0 * json_number_value(v));
    else
        snprintf(buf, bufsz, "-");
    return buf;
}

static long long ji(const json_t *obj, const char *key)
{
    return (long long)tc_jint(obj, key);
}

static void print_items(const json_t *s)
{
    static const char *const order[] = { "new", "labeling", "labeled", "review", "done", "released", NULL };
    const json_t *items = json_object_get(s, "items");
    printf("%-*s%lld work items, %lld test questions\n", LABEL_W, "Items", ji(s, "items_total"),
           ji(s, "gold"));
    for (int k = 0; order[k]; k++)
        if (json_object_get(items, order[k]))
            printf("  %-*s%lld\n", LABEL_W - 2, order[k], ji(items, order[k]));
    const char *state;
    json_t *v;
    json_object_foreach((json_t *)items, state, v) {
        int known = 0;
        for (int k = 0; order[k]; k++)
            known |= strcmp(state, order[k]) == 0;
        if (!known)
            printf("  %-*s%lld\n", LABEL_W - 2, state, (long long)json_integer_value(v));
    }
}

static void print_test_questions(const json_t *s)
{
    const json_t *tq = json_object_get(s, "test_questions");
    printf("%-*shave %lld, need %lld for %lld work items\n", LABEL_W, "Test questions",
           ji(tq, "have"), ji(tq, "needed"), ji(tq, "work_items"));
    const json_t *warnings = json_object_get(s, "warnings");
    int said = 0;
    size_t i;
    json_t *w;
    json_array_foreach(warnings, i, w) {
        const char *code = tc_jstr(w, "code");
        if (strcmp(code, "not_enough_test_questions") == 0) {
            printf("  WARNING: not enough test questions (have %lld, need %lld): %s\n",
                   ji(tq, "have"), ji(tq, "needed"), tc_jstr(w, "message"));
            said = 1;
        } else {
            printf("  WARNING: %s (%s)\n", tc_jstr(w, "message"), code);
        }
    }
    if (!said && json_is_false(json_object_get(tq, "enough")))
        printf("  WARNING: not enough test questions (have %lld, need %lld)\n", ji(tq, "have"),
               ji(tq, "needed"));
}

static void print_agreement(const json_t *s)
{
    const json_t *agreement = json_object_get(s, "agreement");
    if (json_object_size(agreement) == 0) {
        printf("%-*s- (no choice controls)\n", LABEL_W, "Agreement");
        return;
    }
    int first = 1;
    const char *control;
    json_t *a;
    json_object_foreach((json_t *)agreement, control, a) {
        char alpha[32], percent[32];
        printf("%-*s%s: alpha %s, percent %s (%lld judgments)\n", LABEL_W,
               first ? "Agreement" : "", control, num(json_object_get(a, "alpha"), 3, alpha, sizeof alpha),
               pct(json_object_get(a, "percent"), percent, sizeof percent), ji(a, "judgments"));
        first = 0;
    }
}

static void print_stats(const json_t *s)
{
    char b1[32], b2[32], b3[32];
    printf("Project %lld quality report\n\n", ji(s, "project_id"));
    print_items(s);
    print_test_questions(s);
    printf("%-*s%lld counted, %lld excluded\n", LABEL_W, "Judgments", ji(s, "judgments"),
           ji(s, "excluded_judgments"));
    printf("%-*s%lld: %lld active, %lld failed, %lld stopped; mean trust %s\n", LABEL_W, "Workers",
           ji(s, "workers"), ji(s, "workers_active"), ji(s, "workers_failed"),
           ji(s, "workers_stopped"), num(json_object_get(s, "mean_trust"), 3, b1, sizeof b1));
    print_agreement(s);
    const json_t *res = json_object_get(s, "results");
    printf("Results by state\n");
    static const char *const states[] = { "review", "done", "released" };
    for (int k = 0; k < 3; k++) {
        const json_t *r = json_object_get(res, states[k]);
        printf("  %-*s%-6lld mean confidence %s\n", LABEL_W - 2, states[k], ji(r, "count"),
               num(json_object_get(r, "mean_confidence"), 3, b1, sizeof b1));
    }
    printf("%-*sestimated %s, reviewed %s, sampled %s\n", LABEL_W, "Accuracy",
           num(json_object_get(s, "estimated_accuracy"), 3, b1, sizeof b1),
           num(json_object_get(s, "reviewed_accuracy"), 3, b2, sizeof b2),
           num(json_object_get(s, "sampled_accuracy"), 3, b3, sizeof b3));
    const json_t *rv = json_object_get(s, "reviews"), *lots = json_object_get(s, "lots");
    printf("%-*saccept %lld, reject %lld, fix %lld\n", LABEL_W, "Reviews", ji(rv, "accept"),
           ji(rv, "reject"), ji(rv, "fix"));
    printf("%-*sopen %lld, accepted %lld, rejected %lld\n", LABEL_W, "Lots", ji(lots, "open"),
           ji(lots, "accepted"), ji(lots, "rejected"));
}

/* "shown of total" heading of a table. */
static void table_heading(const char *what, size_t shown, long long total)
{
    if ((long long)shown < total)
        printf("\n%s (first %zu of %lld)\n", what, shown, total);
    else
        printf("\n%s (%zu)\n", what, shown);
}

static void print_workers(const json_t *workers, long long total)
{
    table_heading("Workers", json_array_size(workers), total);
    if (json_array_size(workers) == 0) {
        printf("(no workers yet)\n");
        return;
    }
    int ww = (int)strlen("WORKER"), gw = (int)strlen("GOLD");
    size_t i;
    json_t *w;
    char gold[48], trust[32];
    json_array_foreach(workers, i, w) {
        int n = (int)strlen(tc_jstr(w, "worker"));
        ww = n > ww ? n : ww;
        n = snprintf(gold, sizeof gold, "%lld/%lld", ji(w, "gold_correct"), ji(w, "gold_seen"));
        gw = n > gw ? n : gw;
    }
    printf("%-*s  %-5s  %-7s  %5s  %-*s  %9s  %8s  %s\n", ww, "WORKER", "MODE", "STATUS", "TRUST", gw,
           "GOLD", "JUDGMENTS", "EXCLUDED", "REASON");
    json_array_foreach(workers, i, w) {
        const char *reason = tc_jstr(w, "reason");
        snprintf(gold, sizeof gold, "%lld/%lld", ji(w, "gold_correct"), ji(w, "gold_seen"));
        printf("%-*s  %-5s  %-7s  %5s  %-*s  %9lld  %8lld  %s\n", ww, tc_jstr(w, "worker"),
               tc_jstr(w, "mode"), tc_jstr(w, "status"),
               num(json_object_get(w, "trust"), 3, trust, sizeof trust), gw, gold,
               ji(w, "judgments"), ji(w, "excluded"), *reason ? reason : "-");
    }
}

/* The answer as compact JSON, cut at ANSWER_SHOWN bytes (on a UTF-8 boundary) with
 * "..." after it; "-" when there is none. Caller frees. */
static char *answer_text(const json_t *answer)
{
    if (!answer || json_is_null(answer))
        return strdup("-");
    char *s = json_dumps(answer, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    if (s && strlen(s) > ANSWER_SHOWN) {
        size_t cut = ANSWER_SHOWN;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
        memcpy(s + cut, "...", 4); /* fits: the string was longer than cut + 3 */
    }
    return s;
}

static void print_results(const json_t *results, long long total)
{
    table_heading("Results", json_array_size(results), total);
    if (json_array_size(results) == 0) {
        printf("(no results yet)\n");
        return;
    }
    int mw = (int)strlen("METHOD");
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r) {
        int n = (int)strlen(tc_jstr(r, "method"));
        mw = n > mw ? n : mw;
    }
    printf("%-8s  %-8s  %-*s  %10s  %s\n", "ITEM", "STATE", mw, "METHOD", "CONFIDENCE", "ANSWER");
    json_array_foreach(results, i, r) {
        char conf[32];
        char *answer = answer_text(json_object_get(r, "answer"));
        printf("%-8lld  %-8s  %-*s  %10s  %s\n", ji(r, "item_id"), tc_jstr(r, "state"), mw,
               tc_jstr(r, "method"), num(json_object_get(r, "confidence"), 3, conf, sizeof conf),
               answer ? answer : "?");
        free(answer);
    }
}

int cmd_report(tc_ctx *ctx, int argc, char **argv)
{
    const char *workers_s = NULL, *results_s = NULL;
    int as_json = 0;
    const tc_opt opts[] = {
        { "json", 0, NULL, &as_json },
        { "workers", 1, &workers_s, NULL },
        { "results", 1, &results_s, NULL },
        { NULL, 0, NULL, NULL },
    };
    int npos;
    TC_PARSE(ctx, argc, argv, opts, &report_help, argv, &npos);
    int64_t project = npos == 1 ? tc_parse_id(argv[0]) : -1;
    if (project < 0)
        return tc_usage_error(&report_help, "expected one PROJECT_ID (a positive integer)");
    int64_t n_workers = workers_s ? parse_count(workers_s) : 20;
    int64_t n_results = results_s ? parse_count(results_s) : 10;
    if (n_workers < 0 || n_results < 0)
        return tc_usage_error(&report_help, "--workers and --results take a count from 0 to %d",
                              COUNT_MAX);

    tly_error err;
    if (tc_connect(ctx, 1, &err) < 0)
        return tc_report(&err);
    int rc = TC_EXIT_FAIL;
    json_t *workers = json_array(), *results = json_array(), *doc = NULL;
    tc_resp st;
    tc_resp_init(&st);
    char path[96];
    snprintf(path, sizeof path, "/v1/projects/%lld/stats", (long long)project);
    if (!workers || !results) {
        tc_fail_local("out of memory");
        goto out;
    }
    if (tc_http_json(ctx->http, "GET", path, NULL, &st, &err) < 0 ||
        fetch_rows(ctx, project, "workers", n_workers, workers, &err) < 0 ||
        fetch_rows(ctx, project, "results", n_results, results, &err) < 0) {
        rc = tc_report(&err);
        goto out;
    }
    if (!json_is_object(st.json)) {
        tc_fail_local("GET %s: the response is not a JSON object", path);
        goto out;
    }
    if (as_json) {
        doc = json_pack("{s:O,s:O,s:O}", "stats", st.json, "workers", workers, "results", results);
        if (!doc || json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0) {
            tc_fail_local("cannot print the report");
            goto out;
        }
        putchar('\n');
    } else {
        const json_t *res = json_object_get(st.json, "results");
        long long n_res = 0;
        const char *state;
        json_t *v;
        json_object_foreach((json_t *)res, state, v)
            n_res += ji(v, "count");
        print_stats(st.json);
        if (n_workers > 0)
            print_workers(workers, ji(st.json, "workers"));
        if (n_results > 0)
            print_results(results, n_res);
    }
    rc = fflush(stdout) == 0 ? TC_EXIT_OK : tc_fail_local("writing the report: %s", strerror(errno));
out:
    json_decref(doc);
    json_decref(workers);
    json_decref(results);
    tc_resp_free(&st);
    return rc;
}
