/* it_report_cli.c -- integration test of the manager's quality commands of the `tally`
 * CLI (`tally judgments import`, `tally report`) against a real tallyd.
 *
 * The manager makes a choice project over HTTP (overlap 2, no quiz, gold or trust
 * floor, min_confidence 0, so two agreeing judgments make a result) and uploads three
 * images from tests/data; then, through the CLI:
 *   - judgments import of a CSV naming items by file name and by id, two outside
 *     workers, one line with an option the template does not have (rejected and
 *     reported, exit 1) and one repeated line (a duplicate); a JSON Lines file whose
 *     only line is a duplicate (exit 0); the local errors (unknown extension,
 *     missing file, bad --format);
 *   - once aggregation (a background job) has made the results: report as text
 *     (counts, both imported workers in the table, the results with their answers),
 *     --json (stats.judgments == imported, --workers / --results bound the lists),
 *     the test-question warning of a project short of gold, and an unknown project.
 * Tests run in order and share state through the static `g`.
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define IMPORTED 5   /* good lines of the CSV below */
#define RESULTS 2    /* photo.jpg and photo2.jpg reach overlap 2; gray.jpg has one judgment */

static struct {
    it_server srv;
    char *mgr;          /* manager "pm" */
    int64_t project;    /* the imported project */
    int64_t photo, photo2, gray; /* its item ids */
    char pid[32];       /* project id as text */
} g;

static const char *CHOICE_TEMPLATE =
    "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"],"
    "\"required\":true}]}";

static int group_setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    return it_server_start_users(&g.srv, NULL, &g.mgr, NULL, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = it_server_finish(&g.srv);
    free(g.mgr);
    return rc;
}

/* Run the CLI as the manager with args (NULL-terminated varargs); fills out/err,
 * returns the exit status. */
static int cli(char **out, char **err, ...)
{
    va_list ap;
    va_start(ap, err);
    int rc = it_run_cli_va(&g.srv, g.mgr, NULL, out, err, ap);
    va_end(ap);
    return rc;
}

/* Id of the project's item with the given original name. */
static int64_t item_id(int64_t project, const char *name)
{
    it_response r;
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/projects/%lld/items", (long long)project), 0);
    IT_ASSERT_STATUS(r, 200);
    json_t *it = it_json_find(json_object_get(r.json, "items"), "name", name);
    assert_non_null(it);
    int64_t id = it_json_int(it, "id");
    it_response_free(&r);
    return id;
}

/* The project's stats (new reference). */
static json_t *stats(int64_t project)
{
    it_response r;
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/projects/%lld/stats", (long long)project), 0);
    IT_ASSERT_STATUS(r, 200);
    json_t *s = json_incref(r.json);
    it_response_free(&r);
    return s;
}

static int64_t results_count(const json_t *s)
{
    const json_t *res = json_object_get(s, "results");
    return it_json_int(json_object_get(res, "review"), "count") +
           it_json_int(json_object_get(res, "done"), "count") +
           it_json_int(json_object_get(res, "released"), "count");
}

/* The line of text that starts with prefix (at the text's start or after a '\n'), or
 * NULL. */
static const char *line_starting(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, prefix, n) == 0)
            return p;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NULL;
}

static void test_import(void **state)
{
    (void)state;
    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"report-cli\",\"media\":\"image\",\"template\":%s,"
             "\"workflow\":{\"overlap\":2,\"quiz\":{\"size\":0},\"gold_rate\":0,\"min_trust\":0,"
             "\"min_confidence\":0}}",
             CHOICE_TEMPLATE);
    g.project = it_post_project(&g.srv, g.mgr, body);
    snprintf(g.pid, sizeof g.pid, "%lld", (long long)g.project);
    const char *files[] = { "photo.jpg", "photo2.jpg", "gray.jpg" };
    it_add_files(&g.srv, g.mgr, g.project, "imgs", files, 3);
    g.photo = item_id(g.project, "photo.jpg");
    g.photo2 = item_id(g.project, "photo2.jpg");
    g.gray = item_id(g.project, "gray.jpg");

    /* by name and by id; plain values and a quoted JSON object; line 7 has no such
     * option, line 8 repeats line 2 */
    char csv[512], path[4400];
    int n = snprintf(csv, sizeof csv,
                     "item,worker,answer\n"
                     "photo.jpg,ext-anna,cat\n"
                     "%lld,ext-ben,cat\n"
                     "photo2.jpg,ext-anna,dog\r\n"
                     "photo2.jpg,ext-ben,\"{\"\"label\"\":\"\"dog\"\"}\"\n"
                     "gray.jpg,ext-anna,cat\n"
                     "gray.jpg,ext-ben,unicorn\n"
                     "photo.jpg,ext-anna,cat\n",
                     (long long)g.photo);
    assert_int_equal(it_write_temp(&g.srv, "judgments.csv", csv, (size_t)n, path, sizeof path), 0);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "judgments", "import", g.pid, path, NULL), 1);
    assert_non_null(strstr(out, "imported 5, duplicates 1, rejected 1"));
    const char *l7 = line_starting(out, "line 7: ");
    assert_non_null(l7);
    assert_non_null(strstr(l7, "unicorn"));
    assert_null(line_starting(out, "line 8: "));
    free(out);
    free(err);

    /* JSON Lines (format from .jsonl): a duplicate only is no failure */
    static const char jsonl[] = "{\"item\":\"gray.jpg\",\"worker\":\"ext-anna\","
                                "\"answer\":{\"label\":\"cat\"}}\n";
    assert_int_equal(it_write_temp(&g.srv, "again.jsonl", jsonl, sizeof jsonl - 1, path, sizeof path),
                     0);
    assert_int_equal(cli(&out, &err, "judgments", "import", g.pid, path, NULL), 0);
    assert_non_null(strstr(out, "imported 0, duplicates 1, rejected 0"));
    free(out);
    free(err);

    /* local errors, before any request */
    assert_int_equal(it_write_temp(&g.srv, "judgments.txt", csv, (size_t)n, path, sizeof path), 0);
    assert_int_equal(cli(&out, &err, "judgments", "import", g.pid, path, NULL), 2);
    assert_non_null(strstr(err, "--format"));
    free(out);
    free(err);
    assert_int_equal(cli(&out, &err, "judgments", "import", g.pid, path, "--format", "xml", NULL), 2);
    assert_non_null(strstr(err, "csv or jsonl"));
    free(out);
    free(err);
    assert_int_equal(cli(&out, &err, "judgments", "import", g.pid, "/nonexistent/j.csv", NULL), 1);
    assert_non_null(strstr(err, "No such file"));
    free(out);
    free(err);

    /* the server counts what was imported */
    json_t *s = stats(g.project);
    assert_int_equal(it_json_int(s, "judgments"), IMPORTED);
    assert_int_equal(it_json_int(s, "workers"), 2);
    json_decref(s);
}

/* Aggregation runs as a background job: wait up to 10 s for the results. */
static void test_wait_results(void **state)
{
    (void)state;
    long long deadline = it_now_ms() + 10000;
    int64_t n = 0;
    for (;;) {
        json_t *s = stats(g.project);
        n = results_count(s);
        json_decref(s);
        if (n >= RESULTS || it_now_ms() > deadline)
            break;
        it_sleep_ms(100);
    }
    assert_int_equal(n, RESULTS);
}

/* The worker table's row of pseudonym: trust, gold "c/s", judgments, excluded. */
static void worker_row(const char *out, const char *pseudonym, double *trust, long long *judgments,
                       long long *excluded)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s ", pseudonym);
    const char *row = line_starting(out, prefix);
    assert_non_null(row);
    char name[64], mode[16], status[16], gold[32];
    assert_int_equal(sscanf(row, "%63s %15s %15s %lf %31s %lld %lld", name, mode, status, trust, gold,
                            judgments, excluded),
                     7);
    assert_string_equal(mode, "work");
    assert_string_equal(status, "active");
    assert_string_equal(gold, "0/0");
}

static void test_report_text(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "report", g.pid, NULL), 0);
    long long a, b, c;
    const char *l = line_starting(out, "Items ");
    assert_non_null(l);
    assert_int_equal(sscanf(l + 5, " %lld work items, %lld test questions", &a, &b), 2);
    assert_int_equal(a, 3);
    assert_int_equal(b, 0);
    l = line_starting(out, "  labeling ");
    assert_non_null(l);
    assert_int_equal(sscanf(l + 11, "%lld", &a), 1);
    assert_int_equal(a, 1); /* gray.jpg: one judgment of two */
    l = line_starting(out, "Judgments ");
    assert_non_null(l);
    assert_int_equal(sscanf(l + 9, " %lld counted, %lld excluded", &a, &b), 2);
    assert_int_equal(a, IMPORTED);
    assert_int_equal(b, 0);
    l = line_starting(out, "Workers ");
    assert_non_null(l);
    assert_int_equal(sscanf(l + 7, " %lld: %lld active, %lld failed", &a, &b, &c), 3);
    assert_int_equal(a, 2);
    assert_int_equal(b, 2);
    assert_int_equal(c, 0);
    assert_non_null(line_starting(out, "Test questions "));
    assert_null(strstr(out, "WARNING")); /* no quiz, no gold: none needed */
    l = line_starting(out, "Agreement ");
    assert_non_null(l);
    assert_non_null(strstr(l, "label: alpha "));
    assert_non_null(line_starting(out, "Accuracy "));
    assert_non_null(line_starting(out, "Reviews "));
    assert_non_null(line_starting(out, "Lots "));
    /* review + done + released in the figures */
    const char *by_state = strstr(out, "\nResults by state\n");
    assert_non_null(by_state);
    long long shown = 0;
    const char *states[] = { "  review ", "  done ", "  released " };
    for (int k = 0; k < 3; k++) {
        l = line_starting(by_state + 1, states[k]);
        assert_non_null(l);
        assert_int_equal(sscanf(l + strlen(states[k]), "%lld", &a), 1);
        shown += a;
    }
    assert_int_equal(shown, RESULTS);

    /* the worker table: the two imported workers under their pseudonyms */
    assert_non_null(line_starting(out, "WORKER "));
    it_response r;
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/projects/%lld/workers", (long long)g.project), 0);
    IT_ASSERT_STATUS(r, 200);
    json_t *ws = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(ws), 2);
    long long total = 0;
    size_t i;
    json_t *w;
    json_array_foreach(ws, i, w) {
        double trust;
        long long judgments, excluded;
        worker_row(out, it_json_str(w, "worker"), &trust, &judgments, &excluded);
        assert_int_equal(judgments, it_json_int(w, "judgments"));
        assert_int_equal(excluded, 0);
        assert_true(trust >= 0 && trust <= 1);
        total += judgments;
    }
    assert_int_equal(total, IMPORTED);
    it_response_free(&r);

    /* the results table: both finished items with their answers */
    assert_non_null(line_starting(out, "ITEM "));
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%-8lld ", (long long)g.photo);
    l = line_starting(out, prefix);
    assert_non_null(l);
    const char *eol = strchr(l, '\n');
    const char *ans = strstr(l, "{\"label\":\"cat\"}");
    assert_true(ans && (!eol || ans < eol));
    snprintf(prefix, sizeof prefix, "%-8lld ", (long long)g.photo2);
    l = line_starting(out, prefix);
    assert_non_null(l);
    eol = strchr(l, '\n');
    ans = strstr(l, "{\"label\":\"dog\"}");
    assert_true(ans && (!eol || ans < eol));
    snprintf(prefix, sizeof prefix, "%-8lld ", (long long)g.gray);
    assert_null(line_starting(out, prefix));
    free(out);
    free(err);

    /* 0 leaves the tables out */
    assert_int_equal(cli(&out, &err, "report", g.pid, "--workers", "0", "--results", "0", NULL), 0);
    assert_non_null(line_starting(out, "Judgments "));
    assert_null(line_starting(out, "WORKER "));
    assert_null(line_starting(out, "ITEM "));
    free(out);
    free(err);
}

static void test_report_json(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "report", g.pid, "--json", NULL), 0);
    json_error_t jerr;
    json_t *doc = json_loads(out, 0, &jerr);
    if (!doc)
        fprintf(stderr, "report --json: %s (line %d)\n", jerr.text, jerr.line);
    assert_non_null(doc);
    json_t *s = json_object_get(doc, "stats");
    assert_int_equal(it_json_int(s, "project_id"), g.project);
    assert_int_equal(it_json_int(s, "judgments"), IMPORTED);
    assert_int_equal(results_count(s), RESULTS);
    assert_int_equal(json_array_size(json_object_get(doc, "workers")), 2);
    json_t *results = json_object_get(doc, "results");
    assert_int_equal(json_array_size(results), RESULTS);
    size_t i;
    json_t *res;
    json_array_foreach(results, i, res) {
        int64_t item = it_json_int(res, "item_id");
        assert_true(item == g.photo || item == g.photo2);
        assert_string_equal(it_json_str(json_object_get(res, "answer"), "label"),
                            item == g.photo ? "cat" : "dog");
    }
    json_decref(doc);
    free(out);
    free(err);

    /* --workers / --results bound the lists */
    assert_int_equal(cli(&out, &err, "report", g.pid, "--json", "--workers", "1", "--results", "1",
                         NULL),
                     0);
    doc = json_loads(out, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "workers")), 1);
    assert_int_equal(json_array_size(json_object_get(doc, "results")), 1);
    json_decref(doc);
    free(out);
    free(err);
}

static void test_report_warning(void **state)
{
    (void)state;
    /* gold wanted but none there: the report says so. A box project: no choice
     * control, so no agreement either. */
    int64_t p = it_post_project(&g.srv, g.mgr,
                                "{\"name\":\"report-short\",\"media\":\"image\",\"template\":"
                                "{\"controls\":[{\"name\":\"boxes\",\"type\":\"bbox\","
                                "\"labels\":[\"car\"]}]},"
                                "\"workflow\":{\"overlap\":1,\"quiz\":{\"size\":0},"
                                "\"gold_rate\":0.2}}");
    const char *files[] = { "photo.jpg" };
    it_add_files(&g.srv, g.mgr, p, "one", files, 1);
    char pid[32];
    snprintf(pid, sizeof pid, "%lld", (long long)p);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "report", pid, NULL), 0);
    assert_non_null(strstr(out, "WARNING: not enough test questions"));
    assert_non_null(strstr(out, "(no workers yet)"));
    assert_non_null(strstr(out, "(no results yet)"));
    assert_non_null(strstr(out, "mean trust -")); /* null prints as "-" */
    assert_non_null(strstr(out, "(no choice controls)"));
    free(out);
    free(err);
}

static void test_report_errors(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "report", "999999", NULL), 1);
    assert_non_null(strstr(err, "not_found"));
    assert_non_null(strstr(err, "HTTP 404"));
    assert_string_equal(out, "");
    free(out);
    free(err);
    assert_int_equal(cli(&out, &err, "report", "abc", NULL), 2);
    assert_non_null(strstr(err, "PROJECT_ID"));
    free(out);
    free(err);
    assert_int_equal(cli(&out, &err, "report", g.pid, "--workers", "-1", NULL), 2);
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import),
        cmocka_unit_test(test_wait_results),
        cmocka_unit_test(test_report_text),
        cmocka_unit_test(test_report_json),
        cmocka_unit_test(test_report_warning),
        cmocka_unit_test(test_report_errors),
    };
    return cmocka_run_group_tests_name("it_report_cli", tests, group_setup, group_teardown);
}
