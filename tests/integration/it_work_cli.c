/* it_work_cli.c -- integration test of the worker commands of the `tally` CLI
 * (`tally work`, `tally work --answers`, `tally stats`) against a real tallyd.
 *
 * The manager makes the projects over HTTP (workflows without quiz, gold or trust
 * floor, so every task is plain work) and uploads images from tests/data; the worker
 * "w1" then labels through the CLI, and the judgments the manager reads back over
 * the API are checked against what was typed or scripted:
 *   - --answers FILE: three generic lines label three items; a second run finds
 *     nothing to do; a keyed line ({"item_id"}) goes to its item, a line the server
 *     rejects is reported with the server's message; a {"name"} line is refused;
 *   - interactive, stdin piped: "?" help, an unknown option (local message), "1"
 *     picks the first option, "q" skips the next task and quits;
 *   - interactive bbox: a box outside the image shows the server's 422 message, bad
 *     JSON a local one, the task is asked again and a good box is stored; --download
 *     saves the media; end of input skips the task held;
 *   - `tally stats` (table and --json) shows the counts of all of the above.
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
#include <sys/stat.h>

#include <cmocka.h>

static struct {
    it_server srv;
    char *mgr;          /* manager "pm" */
    char *worker;       /* worker "w1" */
    int seq;            /* unique project names */
    int64_t p_script;   /* --answers: 3 items, all labeled */
    int64_t p_keyed;    /* --answers with item_id: 1 labeled, 1 released */
    int64_t p_choice;   /* interactive: 1 labeled, 1 skipped with q */
    int64_t p_bbox;     /* interactive bbox: 1 labeled, 1 skipped at end of input */
} g;

static const char *CHOICE_TEMPLATE =
    "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"],"
    "\"required\":true}]}";
static const char *BBOX_TEMPLATE =
    "{\"controls\":[{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"car\",\"person\"],"
    "\"required\":true}]}";

static int group_setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    return it_server_start_users(&g.srv, NULL, &g.mgr, &g.worker, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = it_server_finish(&g.srv);
    free(g.mgr);
    free(g.worker);
    return rc;
}

/* Run the CLI as the worker with input on stdin (NULL: /dev/null) and the args
 * (NULL-terminated varargs); fills out/err, returns the exit status. */
static int cli(const char *input, char **out, char **err, ...)
{
    va_list ap;
    va_start(ap, err);
    int rc = it_run_cli_va(&g.srv, g.worker, input, out, err, ap);
    va_end(ap);
    return rc;
}

/* A project with overlap 1 and no quiz / gold / trust floor; its id. */
static int64_t make_project(const char *tmpl, const char *guidelines)
{
    char *body = NULL;
    assert_true(asprintf(&body,
                         "{\"name\":\"wcli-%d\",\"media\":\"image\",\"template\":%s,"
                         "\"workflow\":{\"overlap\":1,\"quiz\":{\"size\":0},\"gold_rate\":0,"
                         "\"min_trust\":0},\"guidelines\":\"%s\"}",
                         ++g.seq, tmpl, guidelines) > 0);
    int64_t id = it_post_project(&g.srv, g.mgr, body);
    free(body);
    return id;
}

/* Upload test data files (by name) as one batch and wait until all are items. */
static void add_files(int64_t project, const char *const *names, int n)
{
    it_add_files(&g.srv, g.mgr, project, "imgs", names, n);
}

/* The project's judgments as the manager (new reference to the items array). */
static json_t *judgments(int64_t project)
{
    it_response r;
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/projects/%lld/judgments?limit=1000",
                             (long long)project),
                     0);
    IT_ASSERT_STATUS(r, 200);
    json_t *items = json_incref(json_object_get(r.json, "items"));
    assert_true(json_is_array(items));
    it_response_free(&r);
    return items;
}

/* Id of the project's item with the given original name (as the manager). */
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

static const char *answer_label(const json_t *judgment)
{
    return it_json_str(json_object_get(judgment, "answer"), "label");
}

static void test_answers_file(void **state)
{
    (void)state;
    g.p_script = make_project(CHOICE_TEMPLATE, "Label the animal.");
    const char *files[] = { "photo.jpg", "photo2.jpg", "gray.jpg" };
    add_files(g.p_script, files, 3);
    const char lines[] = "{\"answer\":{\"label\":\"cat\"}}\n"
                         "{\"answer\":{\"label\":\"cat\"}}\n"
                         "\n"
                         "{\"answer\":{\"label\":\"cat\"}}\n";
    char path[4400], pid[32];
    assert_int_equal(it_write_temp(&g.srv, "answers.jsonl", lines, sizeof lines - 1, path,
                                   sizeof path),
                     0);
    snprintf(pid, sizeof pid, "%lld", (long long)g.p_script);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(NULL, &out, &err, "work", pid, "--answers", path, NULL), 0);
    assert_non_null(strstr(out, "submitted 3, skipped 0, rejected 0"));
    free(out);
    free(err);

    json_t *js = judgments(g.p_script);
    assert_int_equal(json_array_size(js), 3);
    size_t i;
    json_t *j;
    json_array_foreach(js, i, j)
        assert_string_equal(answer_label(j), "cat");
    json_decref(js);

    /* again: nothing left to do, nothing submitted, still exit 0 */
    assert_int_equal(cli(NULL, &out, &err, "work", pid, "--answers", path, NULL), 0);
    assert_non_null(strstr(out, "submitted 0"));
    assert_non_null(strstr(out, "nothing left to do"));
    free(out);
    free(err);
}

static void test_answers_keyed_and_rejected(void **state)
{
    (void)state;
    g.p_keyed = make_project(CHOICE_TEMPLATE, "");
    const char *files[] = { "photo.jpg", "gray.jpg" };
    add_files(g.p_keyed, files, 2);
    int64_t gray = item_id(g.p_keyed, "gray.jpg");
    char lines[256], path[4400], pid[32];
    int n = snprintf(lines, sizeof lines,
                     "{\"item_id\":%lld,\"answer\":{\"label\":\"dog\"},\"duration_ms\":777}\n"
                     "{\"answer\":{\"label\":\"cow\"}}\n",
                     (long long)gray);
    assert_int_equal(it_write_temp(&g.srv, "keyed.jsonl", lines, (size_t)n, path, sizeof path), 0);
    snprintf(pid, sizeof pid, "%lld", (long long)g.p_keyed);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(NULL, &out, &err, "work", pid, "--answers", path, NULL), 0);
    assert_non_null(strstr(out, "submitted 1, skipped 0, rejected 1"));
    assert_non_null(strstr(out, "rejected line 2"));
    assert_non_null(strstr(out, "'label'")); /* the server's message names the control */
    assert_non_null(strstr(out, "cow"));
    free(out);
    free(err);
    json_t *js = judgments(g.p_keyed);
    assert_int_equal(json_array_size(js), 1);
    json_t *j = json_array_get(js, 0);
    assert_int_equal(it_json_int(j, "item_id"), gray);
    assert_string_equal(answer_label(j), "dog");
    assert_int_equal(it_json_int(j, "duration_ms"), 777);
    json_decref(js);

    /* names cannot select a task: refused before any request */
    static const char by_name[] = "{\"name\":\"photo.jpg\",\"answer\":{\"label\":\"cat\"}}\n";
    assert_int_equal(it_write_temp(&g.srv, "byname.jsonl", by_name, sizeof by_name - 1, path,
                                   sizeof path),
                     0);
    const char *args[] = { "work", pid, "--answers", path, NULL };
    assert_int_equal(it_run_cli(&g.srv, g.worker, args, &out, &err), 1);
    assert_non_null(strstr(err, "never see item names"));
    free(out);
    free(err);
}

static void test_interactive_choice(void **state)
{
    (void)state;
    g.p_choice = make_project(CHOICE_TEMPLATE, "Pick the animal you see.");
    const char *files[] = { "photo.jpg", "photo2.jpg" };
    add_files(g.p_choice, files, 2);
    char pid[32];
    snprintf(pid, sizeof pid, "%lld", (long long)g.p_choice);
    char *out = NULL, *err = NULL;
    /* help, an answer that is no option, the first option; then quit on task two */
    assert_int_equal(cli("?\nbird\n1\nq\n", &out, &err, "work", pid, NULL), 0);
    assert_non_null(strstr(out, "1) cat"));
    assert_non_null(strstr(out, "2) dog"));
    assert_non_null(strstr(out, "Pick the animal you see.")); /* guidelines shown */
    assert_true(strstr(out, "image 640x480, jpeg") || strstr(out, "image 480x640, jpeg"));
    assert_non_null(strstr(out, "/media"));
    assert_non_null(strstr(out, "submitted"));
    assert_non_null(strstr(out, "skipped item"));
    assert_non_null(strstr(err, "s = skip"));       /* ? */
    assert_non_null(strstr(err, "not one of the options")); /* bird */
    assert_null(strstr(err, "label> "));            /* stdin is no terminal: no prompts */
    free(out);
    free(err);

    json_t *js = judgments(g.p_choice);
    assert_int_equal(json_array_size(js), 1);
    assert_string_equal(answer_label(json_array_get(js, 0)), "cat");
    json_decref(js);

    /* the quit released the second task and it is not offered to w1 again */
    assert_int_equal(cli("1\n", &out, &err, "work", pid, NULL), 0);
    assert_non_null(strstr(out, "nothing to do"));
    free(out);
    free(err);
}

static void test_interactive_bbox(void **state)
{
    (void)state;
    g.p_bbox = make_project(BBOX_TEMPLATE, "Box every car.");
    const char *files[] = { "photo.jpg", "gray.jpg" };
    add_files(g.p_bbox, files, 2);
    char pid[32], dl[4400];
    snprintf(pid, sizeof pid, "%lld", (long long)g.p_bbox);
    snprintf(dl, sizeof dl, "%s/downloads", g.srv.data_dir);
    char *out = NULL, *err = NULL;
    /* outside the 640x480 image (server 422), not JSON (local), a good box; then the
     * input ends while the second task is shown */
    const char *input = "[{\"label\":\"car\",\"x\":600,\"y\":0,\"w\":100,\"h\":10}]\n"
                        "{oops\n"
                        "[{\"label\":\"car\",\"x\":10,\"y\":20,\"w\":30,\"h\":40}]\n";
    assert_int_equal(cli(input, &out, &err, "work", pid, "--download", dl, NULL), 0);
    assert_non_null(strstr(out, "a JSON array of boxes, e.g. [{\"label\":\"car\""));
    assert_non_null(strstr(out, "labels: car, person"));
    assert_non_null(strstr(err, "rejected by the server: control 'boxes'"));
    assert_non_null(strstr(out, "please answer this task again"));
    assert_non_null(strstr(err, "not valid JSON"));
    assert_non_null(strstr(out, "submitted (judgment"));
    assert_non_null(strstr(out, "1 submitted, 1 skipped, 1 answers rejected"));
    free(out);
    free(err);

    json_t *js = judgments(g.p_bbox);
    assert_int_equal(json_array_size(js), 1);
    json_t *j = json_array_get(js, 0);
    int64_t judged = it_json_int(j, "item_id");
    json_t *box = json_array_get(json_object_get(json_object_get(j, "answer"), "boxes"), 0);
    assert_string_equal(it_json_str(box, "label"), "car");
    assert_int_equal(json_number_value(json_object_get(box, "w")), 30);
    json_decref(js);

    /* --download saved the media of both tasks, byte for byte */
    char saved[4500], orig[4096], name[256];
    it_response r;
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/items/%lld", (long long)judged), 0);
    IT_ASSERT_STATUS(r, 200);
    snprintf(name, sizeof name, "%s", it_json_str(r.json, "name"));
    it_response_free(&r);
    snprintf(saved, sizeof saved, "%s/item-%lld.jpg", dl, (long long)judged);
    size_t a_len, b_len;
    unsigned char *a = it_load_file(saved, &a_len);
    unsigned char *b = it_load_file(it_test_data(name, orig, sizeof orig), &b_len);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
    free(a);
    free(b);
    assert_int_equal(it_count_entries(dl, ".jpg", 0), 2);
    assert_int_equal(it_count_entries(dl, ".part", 0), 0);
}

/* The stats row of project p: judgments, skipped, active. */
static void stats_row(const char *table, int64_t p, long long *j, long long *s, long long *a)
{
    char head[32];
    snprintf(head, sizeof head, "\n%lld ", (long long)p);
    const char *row = strstr(table, head);
    assert_non_null(row);
    long long id;
    assert_int_equal(sscanf(row + 1, "%lld %lld %lld %lld", &id, j, s, a), 4);
}

static void test_stats(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(NULL, &out, &err, "stats", NULL), 0);
    assert_non_null(strstr(out, "JUDGMENTS"));
    long long j, s, a;
    stats_row(out, g.p_script, &j, &s, &a);
    assert_int_equal(j, 3);
    assert_int_equal(s, 0);
    assert_int_equal(a, 0);
    stats_row(out, g.p_keyed, &j, &s, &a);
    assert_int_equal(j, 1);
    assert_int_equal(s, 1); /* the rejected task was released */
    stats_row(out, g.p_choice, &j, &s, &a);
    assert_int_equal(j, 1);
    assert_int_equal(s, 1);
    stats_row(out, g.p_bbox, &j, &s, &a);
    assert_int_equal(j, 1);
    assert_int_equal(s, 1);
    assert_int_equal(a, 0);
    free(out);
    free(err);

    /* --json is the server's reply */
    assert_int_equal(cli(NULL, &out, &err, "stats", "--json", NULL), 0);
    json_t *doc = json_loads(out, 0, NULL);
    assert_non_null(doc);
    json_t *row = NULL, *it;
    size_t i;
    json_array_foreach(json_object_get(doc, "items"), i, it)
        if (it_json_int(it, "project_id") == g.p_script)
            row = it;
    assert_non_null(row);
    assert_int_equal(it_json_int(row, "judgments"), 3);
    json_decref(doc);
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_file),
        cmocka_unit_test(test_answers_keyed_and_rejected),
        cmocka_unit_test(test_interactive_choice),
        cmocka_unit_test(test_interactive_bbox),
        cmocka_unit_test(test_stats),
    };
    return cmocka_run_group_tests_name("it_work_cli", tests, group_setup, group_teardown);
}
