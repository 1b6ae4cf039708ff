/* it_work.c -- integration tests of crowd work (docs/API.md "Crowd work") against a
 * real tallyd over HTTP:
 *
 *  - answer validation through POST /v1/assignments/{a}/submit for every control type
 *    (good answers 200, each bad answer 422 invalid_answer naming the control; bad
 *    request bodies 400), on real items (photo.jpg 640x480, speech.* 3.082875 s);
 *  - 64 concurrent workers on a 40-item project with overlap 3: overlap is never
 *    exceeded, every item ends with exactly 3 judgments, no worker judges an item twice,
 *    every acknowledged submit is listed, pseudonyms are consistent per worker;
 *  - idempotent resubmit, skip, pause / resume, per_worker_cap, the same task on a
 *    repeated next;
 *  - worker isolation (items, media, thumbnails, other workers' assignments, other
 *    projects, judgments, pseudonyms) and GET /v1/me/stats.
 *
 * Lease expiry and crash safety of submissions are in it_work_recovery.c.
 *
 * One server is shared by the group; every test makes its own projects and users
 * (unique names), so the tests do not depend on each other's state.
 */
#include "harness.h"

#include <curl/curl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct {
    it_server srv;
    char *mgr;    /* manager "pm" */
    char *worker; /* worker "w1" */
    int seq;      /* for unique user / project names */
} g;

/* Image template: one control of each image type. */
static const char *IMAGE_TEMPLATE =
    "{\"controls\":["
    "{\"name\":\"species\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"],\"required\":true},"
    "{\"name\":\"tags\",\"type\":\"multi_choice\",\"options\":[\"a\",\"b\",\"c\",\"d\"],\"min\":1,\"max\":2},"
    "{\"name\":\"note\",\"type\":\"text\",\"max_length\":10},"
    "{\"name\":\"vehicles\",\"type\":\"bbox\",\"labels\":[\"car\",\"person\"]},"
    "{\"name\":\"outline\",\"type\":\"polygon\"},"
    "{\"name\":\"pose\",\"type\":\"keypoints\",\"points\":[\"nose\",\"left_eye\",\"right_eye\"]}"
    "]}";

static const char *AUDIO_TEMPLATE =
    "{\"controls\":["
    "{\"name\":\"events\",\"type\":\"audio_segments\",\"labels\":[\"speech\",\"noise\"],\"required\":true},"
    "{\"name\":\"transcript\",\"type\":\"transcription\",\"max_length\":20}"
    "]}";

/* A one-choice template for the dispatch tests. */
static const char *SIMPLE_TEMPLATE =
    "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"],"
    "\"required\":true}]}";

static const char *CAT = "{\"answer\":{\"label\":\"cat\"}}";
static const char *DOG = "{\"answer\":{\"label\":\"dog\"}}";

/* ---- setup ------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    curl_global_init(CURL_GLOBAL_ALL); /* before any thread uses libcurl */
    return it_server_start_users(&g.srv, NULL, &g.mgr, &g.worker, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = it_server_finish(&g.srv); /* graceful: exit 0, no sanitizer report */
    free(g.mgr);
    free(g.worker);
    return rc;
}

/* ---- helpers ------------------------------------------------------------------------ */

/* A new user with a unique name; its token (malloc'd). */
static char *new_user(const char *role)
{
    return it_new_user(&g.srv, &g.seq, role);
}

/* A workflow with the given overlap and no quiz / gold / trust floor, so that every
 * task is plain work. */
static void plain_workflow(char *buf, size_t n, int overlap)
{
    snprintf(buf, n,
             "{\"overlap\":%d,\"max_overlap\":%d,\"quiz\":{\"size\":0},\"gold_rate\":0,"
             "\"min_trust\":0}",
             overlap, overlap < 5 ? 5 : overlap);
}

/* POST /v1/projects as the manager; the project id. */
static int64_t make_project(const char *media, const char *tmpl, int overlap)
{
    char wf[256], *body = NULL;
    plain_workflow(wf, sizeof wf, overlap);
    assert_true(asprintf(&body, "{\"name\":\"work-%d\",\"media\":\"%s\",\"template\":%s,\"workflow\":%s}",
                         ++g.seq, media, tmpl, wf) > 0);
    int64_t id = it_post_project(&g.srv, g.mgr, body);
    free(body);
    return id;
}

/* n distinct 640x480 JPEG items (variants "tally-work N", N = first..first+n-1, of
 * photo.jpg, named imgNNNN.jpg). */
static void add_jpegs(int64_t project, int n, int first)
{
    it_add_jpegs(&g.srv, g.mgr, project, "tally-work", "img", n, first);
}

/* Test data files (by name) as items. */
static void add_files(int64_t project, const char *const *names, int n)
{
    it_add_files(&g.srv, g.mgr, project, "files", names, n);
}

/* POST /v1/projects/{p}/work/next; the 200 body (new reference) or NULL on 204. Any
 * other status fails the test. */
static json_t *next_task(const char *tok, int64_t project)
{
    return it_next_task(&g.srv, tok, project);
}

static void expect_no_task(const char *tok, int64_t project)
{
    json_t *t = next_task(tok, project);
    if (t) {
        char *s = json_dumps(t, JSON_COMPACT);
        fprintf(stderr, "expected 204 from work/next, got a task: %s\n", s ? s : "?");
        free(s);
    }
    assert_null(t);
}

/* A task that must exist; assignment id returned, item id into *item (may be NULL). */
static int64_t take(const char *tok, int64_t project, int64_t *item)
{
    return it_take(&g.srv, tok, project, item);
}

/* Submits body (a JSON text) for assignment a. */
static void submit(const char *tok, int64_t a, const char *body, it_response *r)
{
    assert_int_equal(it_requestf(&g.srv, "POST", tok, body, r, "/v1/assignments/%lld/submit", (long long)a), 0);
}

/* Submits and expects 200 {"ok":true,"assignment_id":a,"judgment_id"}; the judgment id. */
static int64_t submit_ok(const char *tok, int64_t a, const char *body)
{
    it_response r;
    submit(tok, a, body, &r);
    IT_ASSERT_STATUS(r, 200);
    assert_true(json_is_true(json_object_get(r.json, "ok")));
    assert_int_equal(it_json_int(r.json, "assignment_id"), a);
    int64_t j = it_json_int(r.json, "judgment_id");
    assert_true(j > 0);
    it_response_free(&r);
    return j;
}

/* Submits {"answer":<answer>} and expects 422 invalid_answer whose message contains
 * `needle` (the control's name; NULL: no check). */
static void expect_invalid(const char *tok, int64_t a, const char *answer, const char *needle)
{
    char *body = NULL;
    assert_true(asprintf(&body, "{\"answer\":%s}", answer) > 0);
    it_response r;
    submit(tok, a, body, &r);
    if (r.status != 422 || strcmp(it_err_code(&r), "invalid_answer") != 0)
        fprintf(stderr, "answer %s\n", answer);
    IT_ASSERT_ERROR(r, 422, "invalid_answer");
    if (needle && !strstr(it_err_msg(&r), needle)) {
        fprintf(stderr, "answer %s: message \"%s\" does not name '%s'\n", answer, it_err_msg(&r), needle);
        fail();
    }
    it_response_free(&r);
    free(body);
}

/* GET /v1/assignments/{a} as tok; asserts 200 and returns the state (static buffer). */
static const char *assignment_state(const char *tok, int64_t a)
{
    static char state[32];
    it_response r;
    assert_int_equal(it_getf(&g.srv, tok, &r, "/v1/assignments/%lld", (long long)a), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(it_json_int(r.json, "id"), a);
    snprintf(state, sizeof state, "%s", it_json_str(r.json, "state"));
    it_response_free(&r);
    return state;
}

/* Every judgment of the project (manager view, all pages); new reference. */
static json_t *all_judgments(int64_t project)
{
    json_t *all = json_array();
    char cursor[512] = "";
    for (int page = 0; page < 1000; page++) {
        it_response r;
        if (cursor[0]) {
            char *esc = curl_easy_escape(NULL, cursor, 0);
            assert_non_null(esc);
            assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/projects/%lld/judgments?limit=50&cursor=%s",
                                     (long long)project, esc),
                             0);
            curl_free(esc);
        } else {
            assert_int_equal(
                it_getf(&g.srv, g.mgr, &r, "/v1/projects/%lld/judgments?limit=50", (long long)project), 0);
        }
        IT_ASSERT_STATUS(r, 200);
        json_t *items = json_object_get(r.json, "items");
        assert_true(json_is_array(items));
        json_array_extend(all, items);
        json_t *nc = json_object_get(r.json, "next_cursor");
        assert_non_null(nc); /* present, string or null */
        if (json_is_null(nc)) {
            it_response_free(&r);
            return all;
        }
        assert_true(json_is_string(nc));
        snprintf(cursor, sizeof cursor, "%s", json_string_value(nc));
        it_response_free(&r);
    }
    fail_msg("judgments: paging does not end");
    return NULL;
}

/* "w_" followed by at least 8 lowercase / uppercase hex digits. */
static int is_pseudonym(const char *s)
{
    if (strncmp(s, "w_", 2) != 0 || strlen(s) < 10)
        return 0;
    for (const char *p = s + 2; *p; p++)
        if (!strchr("0123456789abcdefABCDEF", *p))
            return 0;
    return 1;
}

/* ---- 1. answer validation ------------------------------------------------------------ */

static void test_validation_image(void **state)
{
    (void)state;
    int64_t p = make_project("image", IMAGE_TEMPLATE, 1);
    add_jpegs(p, 4, 1000);
    char *w = new_user("worker");

    json_t *t = next_task(w, p);
    assert_non_null(t);
    int64_t a = it_json_int(t, "assignment_id");
    assert_string_equal(it_json_str(t, "mode"), "work");
    json_t *media = json_object_get(json_object_get(t, "item"), "media");
    /* the item's real size, which the bounds checks use */
    assert_int_equal(it_json_int(media, "width"), 640);
    assert_int_equal(it_json_int(media, "height"), 480);
    assert_true(json_is_array(json_object_get(json_object_get(t, "template"), "controls")));
    json_decref(t);

    /* choice */
    expect_invalid(w, a, "{\"species\":\"bird\"}", "species");
    expect_invalid(w, a, "{\"species\":\"Cat\"}", "species");
    expect_invalid(w, a, "{\"species\":5}", "species");
    expect_invalid(w, a, "{\"species\":[\"cat\"]}", "species");
    /* multi_choice: unknown, duplicate, too many (max 2), too few (min 1), not an array */
    expect_invalid(w, a, "{\"species\":\"cat\",\"tags\":[\"zz\"]}", "tags");
    expect_invalid(w, a, "{\"species\":\"cat\",\"tags\":[\"a\",\"a\"]}", "tags");
    expect_invalid(w, a, "{\"species\":\"cat\",\"tags\":[\"a\",\"b\",\"c\"]}", "tags");
    expect_invalid(w, a, "{\"species\":\"cat\",\"tags\":[]}", "tags");
    expect_invalid(w, a, "{\"species\":\"cat\",\"tags\":\"a\"}", "tags");
    /* text: 11 bytes > max_length 10; 6 two-byte characters = 12 bytes; not a string */
    expect_invalid(w, a, "{\"species\":\"cat\",\"note\":\"01234567890\"}", "note");
    expect_invalid(w, a, "{\"species\":\"cat\",\"note\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"}",
                   "note");
    expect_invalid(w, a, "{\"species\":\"cat\",\"note\":42}", "note");
    /* bbox: outside the 640x480 image (right, bottom, negative), w/h <= 0, unknown
     * label, missing label, unknown field, not an array, non-number coordinate */
    expect_invalid(w, a,
                   "{\"species\":\"cat\",\"vehicles\":[{\"label\":\"car\",\"x\":600,\"y\":0,\"w\":41,\"h\":10}]}",
                   "vehicles");
    expect_invalid(w, a,
                   "{\"species\":\"cat\",\"vehicles\":[{\"label\":\"car\",\"x\":0,\"y\":400,\"w\":10,\"h\":80.5}]}",
                   "vehicles");
    expect_invalid(w, a,
                   "{\"species\":\"cat\",\"vehicles\":[{\"label\":\"car\",\"x\":-1,\"y\":0,\"w\":10,\"h\":10}]}",
                   "vehicles");
    expect_invalid(w, a,
                   "{\"species\":\"cat\",\"vehicles\":[{\"label\":\"car\",\"x\":700,\"y\":10,\"w\":5,\"h\":5}]}",
                   "vehicles");
    expect_invalid(w, a,
                   "{\"species\":\"cat\",\"vehicles\":[{\"label\":\"car\",\"x\":10,\"y\":10,\"w\":0,\"h\":10}]}",
                   "vehicles");
    expect_invalid(w, a,
                   "{\"species\":\"cat\",\"vehicles\":[{\"label\":\"car\",\"x\":10,\"y\":10,\"w\":-5,\"h\":10}]}",
                   "vehicles");
    expect_invalid(w, a,
                   "{\"species\":\"cat\",\"vehicles\":[{\"label\":\"car\",\"x\":10,\"y\":10,\"w\":5,\"h\":0}]}",
                   "vehicles");
    expect_invalid(w, a,
                   "{\"species\":\"cat\",\"vehicles\":[{\"label\":\"tree\",\"x\":10,\"y\":10,\"w\":5,\"h\":5}]}",
                   "vehicles");
    expect_invalid(w, a, "{\"species\":\"cat\",\"vehicles\":[{\"x\":10,\"y\":10,\"w\":5,\"h\":5}]}", "vehicles");
    expect_invalid(w, a,
                   "{\"species\":\"cat\",\"vehicles\":[{\"label\":\"car\",\"x\":10,\"y\":10,\"w\":5,\"h\":5,"
                   "\"z\":1}]}",
                   "vehicles");
    expect_invalid(w, a,
                   "{\"species\":\"cat\",\"vehicles\":[{\"label\":\"car\",\"x\":\"10\",\"y\":10,\"w\":5,\"h\":5}]}",
                   "vehicles");
    expect_invalid(w, a, "{\"species\":\"cat\",\"vehicles\":{\"label\":\"car\"}}", "vehicles");
    /* polygon: 2 points, a point outside, a malformed point */
    expect_invalid(w, a, "{\"species\":\"cat\",\"outline\":[{\"points\":[[0,0],[10,10]]}]}", "outline");
    expect_invalid(w, a, "{\"species\":\"cat\",\"outline\":[{\"points\":[[0,0],[641,0],[10,10]]}]}",
                   "outline");
    expect_invalid(w, a, "{\"species\":\"cat\",\"outline\":[{\"points\":[[0,0],[5,0],[10,481]]}]}",
                   "outline");
    expect_invalid(w, a, "{\"species\":\"cat\",\"outline\":[{\"points\":[[0,0],[5],[10,10]]}]}", "outline");
    /* keypoints: the control names 3 points */
    expect_invalid(w, a, "{\"species\":\"cat\",\"pose\":[{\"points\":[[1,1],[2,2]]}]}", "pose");
    expect_invalid(w, a, "{\"species\":\"cat\",\"pose\":[{\"points\":[[1,1],[2,2],[3,3],[4,4]]}]}", "pose");
    expect_invalid(w, a, "{\"species\":\"cat\",\"pose\":[{\"points\":[[1,1],[2,2],[650,3]]}]}", "pose");
    /* required control missing, unknown control, answer not an object */
    expect_invalid(w, a, "{}", "species");
    expect_invalid(w, a, "{\"tags\":[\"a\"]}", "species");
    expect_invalid(w, a, "{\"species\":null}", "species");
    expect_invalid(w, a, "{\"species\":\"cat\",\"colour\":\"red\"}", "colour");

    /* malformed request bodies: 400 */
    it_response r;
    submit(w, a, "{\"answer\":{\"species\":\"cat\"", &r);
    IT_ASSERT_STATUS(r, 400);
    assert_true(strlen(it_err_code(&r)) > 0);
    it_response_free(&r);
    submit(w, a, "not json at all", &r);
    IT_ASSERT_STATUS(r, 400);
    it_response_free(&r);
    submit(w, a, "{\"duration_ms\":10}", &r); /* no answer */
    IT_ASSERT_STATUS(r, 400);
    it_response_free(&r);
    submit(w, a, "{\"answer\":{\"species\":\"cat\"},\"bogus\":1}", &r);
    IT_ASSERT_ERROR(r, 400, "unknown_field");
    it_response_free(&r);
    submit(w, a, "{\"answer\":{\"species\":\"cat\"},\"duration_ms\":-1}", &r);
    IT_ASSERT_STATUS(r, 400);
    it_response_free(&r);
    submit(w, a, "{\"answer\":{\"species\":\"cat\"},\"duration_ms\":\"fast\"}", &r);
    IT_ASSERT_STATUS(r, 400);
    it_response_free(&r);

    /* none of that consumed the assignment */
    assert_string_equal(assignment_state(w, a), "leased");

    /* good answers, one per item: every control at its limits */
    submit_ok(w, a,
              "{\"answer\":{\"species\":\"cat\",\"tags\":[\"a\",\"d\"],\"note\":\"0123456789\","
              "\"vehicles\":[{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":640,\"h\":480},"
              "{\"label\":\"person\",\"x\":600.5,\"y\":400.25,\"w\":39.5,\"h\":79.75}],"
              "\"outline\":[{\"points\":[[0,0],[640,0],[640,480]]}],"
              "\"pose\":[{\"points\":[[1,2],null,[639,479]]}]},\"duration_ms\":4200}");
    int64_t a2 = take(w, p, NULL);
    submit_ok(w, a2, "{\"answer\":{\"species\":\"dog\"}}"); /* optional controls absent */
    int64_t a3 = take(w, p, NULL);
    submit_ok(w, a3,
              "{\"answer\":{\"species\":\"cat\",\"tags\":null,\"note\":null,\"vehicles\":null,"
              "\"outline\":null,\"pose\":null}}");
    int64_t a4 = take(w, p, NULL);
    submit_ok(w, a4,
              "{\"answer\":{\"species\":\"dog\",\"tags\":[\"c\"],\"note\":\"\",\"vehicles\":[],"
              "\"outline\":[{\"points\":[[1,1],[2,5],[7,3],[4,0]]}],"
              "\"pose\":[{\"points\":[null,null,null]},{\"points\":[[3,3],[4,4],[5,5]]}]},"
              "\"duration_ms\":0}");
    expect_no_task(w, p); /* 4 items, overlap 1: all done */

    /* exactly the 4 good answers became judgments, stored as given */
    json_t *js = all_judgments(p);
    assert_int_equal(json_array_size(js), 4);
    json_t *j1 = NULL;
    size_t i;
    json_t *j;
    json_array_foreach(js, i, j) if (it_json_int(j, "assignment_id") == a) j1 = j;
    assert_non_null(j1);
    json_t *ans = json_object_get(j1, "answer");
    assert_string_equal(it_json_str(ans, "species"), "cat");
    assert_string_equal(it_json_str(ans, "note"), "0123456789");
    assert_int_equal(json_array_size(json_object_get(ans, "vehicles")), 2);
    assert_int_equal(it_json_int(j1, "duration_ms"), 4200);
    json_decref(js);
    free(w);
}

static void test_validation_audio(void **state)
{
    (void)state;
    int64_t p = make_project("audio", AUDIO_TEMPLATE, 1);
    static const char *const files[] = {"speech.wav", "speech.flac"};
    add_files(p, files, 2);
    char *w = new_user("worker");

    json_t *t = next_task(w, p);
    assert_non_null(t);
    int64_t a = it_json_int(t, "assignment_id");
    json_t *media = json_object_get(json_object_get(t, "item"), "media");
    double dur = json_number_value(json_object_get(media, "duration"));
    if (dur < 3.0828 || dur > 3.0830)
        fprintf(stderr, "item media: duration %g, want 3.082875\n", dur);
    assert_true(dur > 3.0828 && dur < 3.0830);
    json_decref(t);

    char buf[512];
    /* end beyond the duration (3.082875 s) */
    snprintf(buf, sizeof buf, "{\"events\":[{\"label\":\"speech\",\"start\":1.0,\"end\":%.6f}]}", dur + 0.01);
    expect_invalid(w, a, buf, "events");
    expect_invalid(w, a, "{\"events\":[{\"label\":\"speech\",\"start\":0,\"end\":3.2}]}", "events");
    expect_invalid(w, a, "{\"events\":[{\"label\":\"speech\",\"start\":3.5,\"end\":4}]}", "events");
    /* start >= end, negative start */
    expect_invalid(w, a, "{\"events\":[{\"label\":\"speech\",\"start\":1.0,\"end\":1.0}]}", "events");
    expect_invalid(w, a, "{\"events\":[{\"label\":\"speech\",\"start\":2.0,\"end\":1.0}]}", "events");
    expect_invalid(w, a, "{\"events\":[{\"label\":\"speech\",\"start\":-0.5,\"end\":1.0}]}", "events");
    /* labels, fields, shapes */
    expect_invalid(w, a, "{\"events\":[{\"label\":\"music\",\"start\":0.5,\"end\":1.0}]}", "events");
    expect_invalid(w, a, "{\"events\":[{\"start\":0.5,\"end\":1.0}]}", "events");
    expect_invalid(w, a, "{\"events\":[{\"label\":\"speech\",\"start\":0.5,\"end\":1.0,\"speaker\":2}]}",
                   "events");
    expect_invalid(w, a, "{\"events\":[{\"label\":\"speech\",\"start\":0.5}]}", "events");
    expect_invalid(w, a, "{\"events\":\"speech\"}", "events");
    /* transcription: 21 bytes > max_length 20; not a string */
    expect_invalid(w, a, "{\"events\":[],\"transcript\":\"the quick brown fox j\"}", "transcript");
    expect_invalid(w, a, "{\"events\":[],\"transcript\":[\"the\"]}", "transcript");
    /* required missing, unknown control, an image control's shape in an audio project */
    expect_invalid(w, a, "{\"transcript\":\"hello\"}", "events");
    expect_invalid(w, a, "{\"events\":[],\"vehicles\":[]}", "vehicles");

    it_response r;
    submit(w, a, "{\"answer\":", &r);
    IT_ASSERT_STATUS(r, 400);
    it_response_free(&r);

    assert_string_equal(assignment_state(w, a), "leased");

    /* good: a segment ending exactly at the duration; transcription of 20 bytes */
    snprintf(buf, sizeof buf,
             "{\"answer\":{\"events\":[{\"label\":\"speech\",\"start\":0.5,\"end\":1.25},"
             "{\"label\":\"noise\",\"start\":0,\"end\":%.6f}],\"transcript\":\"the quick brown fox \"}}",
             dur);
    submit_ok(w, a, buf);
    int64_t a2 = take(w, p, NULL);
    submit_ok(w, a2, "{\"answer\":{\"events\":[]}}");
    expect_no_task(w, p);

    json_t *js = all_judgments(p);
    assert_int_equal(json_array_size(js), 2);
    json_decref(js);
    free(w);
}

/* An answer that is not an object: 422 invalid_answer like every other answer that
 * does not fit the template (the brief; template validation says "an answer must be
 * an object keyed by control name"). Own project, so the checks above run anyway. */
static void test_answer_not_object(void **state)
{
    (void)state;
    int64_t p = make_project("image", SIMPLE_TEMPLATE, 1);
    add_jpegs(p, 1, 1500);
    char *w = new_user("worker");
    int64_t a = take(w, p, NULL);
    static const char *const bad[] = {"\"cat\"", "[{\"label\":\"cat\"}]", "42", "true", NULL};
    for (int k = 0; bad[k]; k++)
        expect_invalid(w, a, bad[k], NULL);
    assert_string_equal(assignment_state(w, a), "leased");
    submit_ok(w, a, CAT);
    free(w);
}

/* ---- 2. 64 concurrent workers, overlap 3 ----------------------------------------------- */

#define N_WORKERS 64
#define N_ITEMS 40
#define OVERLAP 3
#define MAX_TAKES 64 /* per worker; at most N_ITEMS can succeed */

typedef struct {
    char *token;
    int submitted;               /* 200 submits */
    int64_t items[MAX_TAKES];    /* item of each submitted assignment */
    int64_t assignments[MAX_TAKES];
    int64_t judgments[MAX_TAKES];
    int ended_204;               /* the loop ended with a 204 from work/next */
    int errors;
    char first_error[512];
} worker_ctx;

static int64_t CONC_PROJECT;
static pthread_barrier_t CONC_START; /* all threads start asking at once */

static void worker_error(worker_ctx *c, const char *what, const it_response *r)
{
    if (c->errors++ == 0)
        snprintf(c->first_error, sizeof c->first_error, "%s: HTTP %ld %.300s", what, r->status,
                 r->body ? r->body : "");
}

static void *worker_main(void *arg)
{
    worker_ctx *c = arg;
    char path[128];
    pthread_barrier_wait(&CONC_START);
    for (int round = 0; round < MAX_TAKES + 4; round++) {
        it_response r;
        snprintf(path, sizeof path, "/v1/projects/%lld/work/next", (long long)CONC_PROJECT);
        if (it_request_json(&g.srv, "POST", path, c->token, NULL, &r) != 0) {
            worker_error(c, "next (transport)", &r);
            it_response_free(&r);
            return NULL;
        }
        if (r.status == 204) {
            c->ended_204 = 1;
            it_response_free(&r);
            return NULL;
        }
        if (r.status != 200 || !r.json) {
            worker_error(c, "next", &r);
            it_response_free(&r);
            return NULL;
        }
        int64_t a = it_json_int(r.json, "assignment_id");
        int64_t item = it_json_int(json_object_get(r.json, "item"), "id");
        it_response_free(&r);
        snprintf(path, sizeof path, "/v1/assignments/%lld/submit", (long long)a);
        const char *body = (a % 2) ? "{\"answer\":{\"label\":\"cat\"},\"duration_ms\":100}"
                                   : "{\"answer\":{\"label\":\"dog\"}}";
        if (it_request_json(&g.srv, "POST", path, c->token, body, &r) != 0 || r.status != 200 || !r.json) {
            worker_error(c, "submit", &r);
            it_response_free(&r);
            return NULL;
        }
        if (c->submitted < MAX_TAKES) {
            c->items[c->submitted] = item;
            c->assignments[c->submitted] = a;
            c->judgments[c->submitted] = it_json_int(r.json, "judgment_id");
        }
        c->submitted++;
        it_response_free(&r);
    }
    snprintf(c->first_error, sizeof c->first_error, "never got 204 after %d tasks", c->submitted);
    c->errors++;
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_concurrent_overlap(void **state)
{
    (void)state;
    /* Dynamic overlap off (min_confidence 0): the cat / dog answers disagree, and an
     * aggregation that ran before the last worker stopped (a slow machine, or the
     * PostgreSQL run) would rightly ask for more judgments than OVERLAP. */
    char *body = NULL;
    assert_true(asprintf(&body,
                         "{\"name\":\"work-%d\",\"media\":\"image\",\"template\":%s,\"workflow\":{\"overlap\":%d,"
                         "\"max_overlap\":5,\"quiz\":{\"size\":0},\"gold_rate\":0,\"min_trust\":0,"
                         "\"min_confidence\":0}}",
                         ++g.seq, SIMPLE_TEMPLATE, OVERLAP) > 0);
    CONC_PROJECT = it_post_project(&g.srv, g.mgr, body);
    free(body);
    add_jpegs(CONC_PROJECT, N_ITEMS, 2000);

    static worker_ctx ctx[N_WORKERS];
    memset(ctx, 0, sizeof ctx);
    for (int i = 0; i < N_WORKERS; i++)
        ctx[i].token = new_user("worker");

    pthread_t th[N_WORKERS];
    assert_int_equal(pthread_barrier_init(&CONC_START, NULL, N_WORKERS), 0);
    for (int i = 0; i < N_WORKERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &ctx[i]), 0);
    for (int i = 0; i < N_WORKERS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&CONC_START);

    int total = 0, bad = 0;
    for (int i = 0; i < N_WORKERS; i++) {
        if (ctx[i].errors || !ctx[i].ended_204) {
            fprintf(stderr, "worker %d: %d error(s), ended_204=%d: %s\n", i, ctx[i].errors, ctx[i].ended_204,
                    ctx[i].first_error);
            bad++;
        }
        total += ctx[i].submitted;
        /* a worker never gets the same item twice */
        int64_t items[MAX_TAKES];
        int n = ctx[i].submitted < MAX_TAKES ? ctx[i].submitted : MAX_TAKES;
        memcpy(items, ctx[i].items, (size_t)n * sizeof items[0]);
        qsort(items, (size_t)n, sizeof items[0], cmp_i64);
        for (int k = 1; k < n; k++)
            if (items[k] == items[k - 1]) {
                fprintf(stderr, "worker %d got item %lld twice\n", i, (long long)items[k]);
                bad++;
            }
    }
    assert_int_equal(bad, 0);
    assert_int_equal(total, N_ITEMS * OVERLAP);

    json_t *js = all_judgments(CONC_PROJECT);
    assert_int_equal(json_array_size(js), (size_t)total);

    /* per item: exactly OVERLAP judgments from distinct pseudonyms; each judgment is
     * one a thread saw acknowledged, with the pseudonym of that thread's worker */
    json_t *per_item = json_object();   /* item id -> array of pseudonyms */
    json_t *thread_pseudo = json_object(); /* thread index -> pseudonym */
    json_t *pseudo_thread = json_object(); /* pseudonym -> thread index */
    json_t *seen_ids = json_object();
    size_t i;
    json_t *j;
    json_array_foreach(js, i, j) {
        int64_t item = it_json_int(j, "item_id");
        int64_t a = it_json_int(j, "assignment_id");
        int64_t id = it_json_int(j, "id");
        const char *wp = it_json_str(j, "worker");
        if (!is_pseudonym(wp))
            fprintf(stderr, "judgment %lld: worker \"%s\" is not a pseudonym\n", (long long)id, wp);
        assert_true(is_pseudonym(wp));
        assert_null(json_object_get(j, "worker_id"));
        assert_null(json_object_get(j, "user_id"));
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)id);
        assert_null(json_object_get(seen_ids, key)); /* ids unique */
        json_object_set_new(seen_ids, key, json_true());
        snprintf(key, sizeof key, "%lld", (long long)item);
        json_t *arr = json_object_get(per_item, key);
        if (!arr) {
            arr = json_array();
            json_object_set_new(per_item, key, arr);
        }
        for (size_t k = 0; k < json_array_size(arr); k++)
            if (strcmp(json_string_value(json_array_get(arr, k)), wp) == 0) {
                fprintf(stderr, "item %lld judged twice by %s\n", (long long)item, wp);
                fail();
            }
        json_array_append_new(arr, json_string(wp));
        /* find the thread that got this judgment acknowledged */
        int owner = -1;
        for (int t = 0; t < N_WORKERS && owner < 0; t++)
            for (int k = 0; k < ctx[t].submitted && k < MAX_TAKES; k++)
                if (ctx[t].assignments[k] == a) {
                    owner = t;
                    assert_int_equal(ctx[t].judgments[k], id);
                    assert_int_equal(ctx[t].items[k], item);
                }
        if (owner < 0)
            fprintf(stderr, "judgment %lld (assignment %lld) was never acknowledged\n", (long long)id,
                    (long long)a);
        assert_true(owner >= 0);
        snprintf(key, sizeof key, "%d", owner);
        json_t *pv = json_object_get(thread_pseudo, key);
        if (pv)
            assert_string_equal(json_string_value(pv), wp); /* stable per worker */
        else
            json_object_set_new(thread_pseudo, key, json_string(wp));
        json_t *tv = json_object_get(pseudo_thread, wp);
        if (tv)
            assert_int_equal(json_integer_value(tv), owner); /* distinct across workers */
        else
            json_object_set_new(pseudo_thread, wp, json_integer(owner));
    }
    assert_int_equal(json_object_size(per_item), N_ITEMS);
    const char *key;
    json_t *arr;
    json_object_foreach(per_item, key, arr) {
        if (json_array_size(arr) != OVERLAP)
            fprintf(stderr, "item %s has %zu judgments\n", key, json_array_size(arr));
        assert_int_equal(json_array_size(arr), OVERLAP);
    }
    json_decref(per_item);
    json_decref(thread_pseudo);
    json_decref(pseudo_thread);
    json_decref(seen_ids);
    json_decref(js);

    /* nothing left for anyone, including a fresh worker */
    char *late = new_user("worker");
    expect_no_task(late, CONC_PROJECT);
    free(late);
    for (int k = 0; k < N_WORKERS; k++)
        free(ctx[k].token);
}

/* ---- 4. idempotent resubmit ------------------------------------------------------------ */

static void test_resubmit(void **state)
{
    (void)state;
    int64_t p = make_project("image", SIMPLE_TEMPLATE, 1);
    add_jpegs(p, 1, 3000);
    char *w = new_user("worker");
    int64_t a = take(w, p, NULL);
    assert_string_equal(assignment_state(w, a), "leased");

    int64_t j1 = submit_ok(w, a, "{\"answer\":{\"label\":\"cat\"},\"duration_ms\":1500}");
    int64_t j2 = submit_ok(w, a, "{\"answer\":{\"label\":\"cat\"},\"duration_ms\":1500}");
    assert_int_equal(j1, j2);
    int64_t j3 = submit_ok(w, a, CAT); /* same answer, no duration */
    assert_int_equal(j1, j3);

    it_response r;
    submit(w, a, DOG, &r);
    IT_ASSERT_ERROR(r, 409, "already_submitted");
    it_response_free(&r);

    assert_int_equal(it_getf(&g.srv, w, &r, "/v1/assignments/%lld", (long long)a), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_string_equal(it_json_str(r.json, "state"), "submitted");
    assert_int_equal(it_json_int(r.json, "judgment_id"), j1);
    assert_int_equal(it_json_int(r.json, "project_id"), p);
    it_response_free(&r);
    /* the manager sees it too */
    assert_string_equal(assignment_state(g.mgr, a), "submitted");

    /* one judgment, with the first answer */
    json_t *js = all_judgments(p);
    assert_int_equal(json_array_size(js), 1);
    json_t *j = json_array_get(js, 0);
    assert_int_equal(it_json_int(j, "id"), j1);
    assert_int_equal(it_json_int(j, "assignment_id"), a);
    assert_string_equal(it_json_str(json_object_get(j, "answer"), "label"), "cat");
    json_decref(js);
    expect_no_task(w, p);
    free(w);
}

/* Concurrent submits of one assignment: all of the same answer -> 200 with one
 * judgment id; cat and dog racing -> the 200s all carry one answer, the others 409
 * already_submitted, and one judgment is stored. */
#define N_RACE 16
typedef struct {
    const char *token;
    int64_t assignment;
    const char *body;
    long status;
    int64_t judgment;
    char code[64];
} race_ctx;
static pthread_barrier_t RACE_START;

static void *race_main(void *arg)
{
    race_ctx *c = arg;
    char path[128];
    snprintf(path, sizeof path, "/v1/assignments/%lld/submit", (long long)c->assignment);
    pthread_barrier_wait(&RACE_START);
    it_response r;
    if (it_request_json(&g.srv, "POST", path, c->token, c->body, &r) == 0) {
        c->status = r.status;
        c->judgment = it_json_int(r.json, "judgment_id");
        snprintf(c->code, sizeof c->code, "%s", it_err_code(&r));
    }
    it_response_free(&r);
    return NULL;
}

static void race(race_ctx *ctx)
{
    pthread_t th[N_RACE];
    assert_int_equal(pthread_barrier_init(&RACE_START, NULL, N_RACE), 0);
    for (int i = 0; i < N_RACE; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race_main, &ctx[i]), 0);
    for (int i = 0; i < N_RACE; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&RACE_START);
}

static void test_resubmit_concurrent(void **state)
{
    (void)state;
    int64_t p = make_project("image", SIMPLE_TEMPLATE, 1);
    add_jpegs(p, 2, 3500);
    char *w = new_user("worker");
    race_ctx ctx[N_RACE];

    int64_t a = take(w, p, NULL);
    for (int i = 0; i < N_RACE; i++)
        ctx[i] = (race_ctx){.token = w, .assignment = a, .body = CAT};
    race(ctx);
    for (int i = 0; i < N_RACE; i++) {
        if (ctx[i].status != 200 || ctx[i].judgment != ctx[0].judgment)
            fprintf(stderr, "same-answer race, call %d: HTTP %ld %s judgment %lld (call 0: %lld)\n", i,
                    ctx[i].status, ctx[i].code, (long long)ctx[i].judgment, (long long)ctx[0].judgment);
        assert_int_equal(ctx[i].status, 200);
        assert_int_equal(ctx[i].judgment, ctx[0].judgment);
    }
    int64_t ja = ctx[0].judgment;

    int64_t b = take(w, p, NULL);
    for (int i = 0; i < N_RACE; i++)
        ctx[i] = (race_ctx){.token = w, .assignment = b, .body = (i % 2) ? DOG : CAT};
    race(ctx);
    int winner = -1, ok = 0;
    for (int i = 0; i < N_RACE; i++) {
        if (ctx[i].status == 200) {
            ok++;
            if (winner < 0)
                winner = i % 2;
            if (winner != i % 2 || ctx[i].judgment <= 0)
                fprintf(stderr, "mixed race: both answers got 200 (call %d)\n", i);
            assert_int_equal(i % 2, winner);
        } else {
            if (ctx[i].status != 409 || strcmp(ctx[i].code, "already_submitted") != 0)
                fprintf(stderr, "mixed race, call %d: HTTP %ld %s\n", i, ctx[i].status, ctx[i].code);
            assert_int_equal(ctx[i].status, 409);
            assert_string_equal(ctx[i].code, "already_submitted");
        }
    }
    assert_true(ok >= 1);

    json_t *js = all_judgments(p);
    assert_int_equal(json_array_size(js), 2);
    size_t k;
    json_t *j;
    json_array_foreach(js, k, j) {
        if (it_json_int(j, "assignment_id") == a) {
            assert_int_equal(it_json_int(j, "id"), ja);
            assert_string_equal(it_json_str(json_object_get(j, "answer"), "label"), "cat");
        } else {
            assert_int_equal(it_json_int(j, "assignment_id"), b);
            assert_string_equal(it_json_str(json_object_get(j, "answer"), "label"), winner ? "dog" : "cat");
        }
    }
    json_decref(js);
    free(w);
}

/* ---- 5. skip -------------------------------------------------------------------------- */

static void test_skip(void **state)
{
    (void)state;
    int64_t p = make_project("image", SIMPLE_TEMPLATE, 1);
    add_jpegs(p, 1, 4000);
    char *wa = new_user("worker"), *wb = new_user("worker");
    int64_t item_a, item_b;
    int64_t a = take(wa, p, &item_a);

    it_response r;
    assert_int_equal(it_requestf(&g.srv, "POST", wa, NULL, &r, "/v1/assignments/%lld/skip", (long long)a), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_true(json_is_true(json_object_get(r.json, "ok")));
    it_response_free(&r);
    /* idempotent */
    IT_EXPECT_STATUSF(&g.srv, "POST", wa, NULL, 200, "/v1/assignments/%lld/skip", (long long)a);
    assert_string_equal(assignment_state(wa, a), "skipped");

    /* submit after skip: 409 */
    submit(wa, a, CAT, &r);
    IT_ASSERT_STATUS(r, 409);
    assert_string_equal(it_err_code(&r), "assignment_skipped");
    it_response_free(&r);

    /* never offered to wa again; wb gets it */
    expect_no_task(wa, p);
    int64_t b = take(wb, p, &item_b);
    assert_int_equal(item_b, item_a);
    assert_true(b != a);
    expect_no_task(wa, p);
    submit_ok(wb, b, DOG);

    /* skip after submit: 409 already_submitted, state unchanged */
    IT_EXPECT_ERRORF(&g.srv, "POST", wb, NULL, 409, "already_submitted", "/v1/assignments/%lld/skip",
                     (long long)b);
    assert_string_equal(assignment_state(wb, b), "submitted");

    json_t *js = all_judgments(p);
    assert_int_equal(json_array_size(js), 1);
    assert_int_equal(it_json_int(json_array_get(js, 0), "assignment_id"), b);
    json_decref(js);
    free(wa);
    free(wb);
}

/* ---- 6. pause / resume ------------------------------------------------------------------ */

static void test_pause_resume(void **state)
{
    (void)state;
    int64_t p = make_project("image", SIMPLE_TEMPLATE, 1);
    add_jpegs(p, 3, 5000);
    char *wa = new_user("worker"), *wb = new_user("worker");
    int64_t a = take(wa, p, NULL); /* a lease from before the pause */

    /* a worker cannot pause or resume */
    IT_EXPECT_STATUSF(&g.srv, "POST", wb, NULL, 403, "/v1/projects/%lld/pause", (long long)p);
    IT_EXPECT_STATUSF(&g.srv, "POST", wb, NULL, 403, "/v1/projects/%lld/resume", (long long)p);
    /* that did nothing */
    int64_t b0 = take(wb, p, NULL);
    submit_ok(wb, b0, CAT);

    it_response r;
    assert_int_equal(it_requestf(&g.srv, "POST", g.mgr, NULL, &r, "/v1/projects/%lld/pause", (long long)p), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(it_json_int(r.json, "id"), p);
    assert_true(strcmp(it_json_str(r.json, "state"), "active") != 0);
    it_response_free(&r);

    /* paused: nobody gets a task (one item is still free) */
    expect_no_task(wb, p);
    char *wc = new_user("worker");
    expect_no_task(wc, p);
    expect_no_task(g.mgr, p);
    /* the lease given before the pause stays valid */
    submit_ok(wa, a, DOG);
    expect_no_task(wa, p);

    assert_int_equal(it_requestf(&g.srv, "POST", g.mgr, NULL, &r, "/v1/projects/%lld/resume", (long long)p), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_string_equal(it_json_str(r.json, "state"), "active");
    it_response_free(&r);

    int64_t c = take(wc, p, NULL);
    submit_ok(wc, c, CAT);
    expect_no_task(wb, p); /* 3 items, overlap 1: done */
    free(wa);
    free(wb);
    free(wc);
}

/* ---- 7. per_worker_cap ------------------------------------------------------------------ */

static void test_per_worker_cap(void **state)
{
    (void)state;
    int64_t p = make_project("image", SIMPLE_TEMPLATE, 2);
    add_jpegs(p, 4, 6000);

    it_response r;
    assert_int_equal(it_requestf(&g.srv, "PATCH", g.mgr, "{\"workflow\":{\"per_worker_cap\":2}}", &r,
                                 "/v1/projects/%lld", (long long)p),
                     0);
    IT_ASSERT_STATUS(r, 200);
    json_t *wf = json_object_get(r.json, "workflow");
    assert_int_equal(it_json_int(wf, "per_worker_cap"), 2);
    assert_int_equal(it_json_int(wf, "overlap"), 2); /* merged, not replaced */
    it_response_free(&r);

    char *wa = new_user("worker"), *wb = new_user("worker"), *wc = new_user("worker");
    for (int k = 0; k < 2; k++)
        submit_ok(wa, take(wa, p, NULL), CAT);
    expect_no_task(wa, p); /* capped, though 4 items x 2 slots minus 2 are open */
    /* others still get work */
    int64_t b = take(wb, p, NULL);
    submit_ok(wb, b, DOG);
    submit_ok(wb, take(wb, p, NULL), DOG);
    expect_no_task(wb, p);
    submit_ok(wc, take(wc, p, NULL), CAT);
    expect_no_task(wa, p);

    /* raising the cap lets wa work again */
    IT_EXPECT_STATUSF(&g.srv, "PATCH", g.mgr, "{\"workflow\":{\"per_worker_cap\":3}}", 200, "/v1/projects/%lld",
                      (long long)p);
    submit_ok(wa, take(wa, p, NULL), CAT);
    expect_no_task(wa, p);
    free(wa);
    free(wb);
    free(wc);
}

/* ---- 8. the same task on a repeated next ------------------------------------------------ */

static void test_same_task_again(void **state)
{
    (void)state;
    int64_t p = make_project("image", SIMPLE_TEMPLATE, 1);
    add_jpegs(p, 2, 7000);
    char *wa = new_user("worker"), *wb = new_user("worker");
    int64_t i1, i2, i3;
    int64_t a1 = take(wa, p, &i1);
    int64_t a2 = take(wa, p, &i2);
    assert_int_equal(a1, a2);
    assert_int_equal(i1, i2);
    /* with a "{}" body too */
    it_response r;
    assert_int_equal(it_requestf(&g.srv, "POST", wa, "{}", &r, "/v1/projects/%lld/work/next", (long long)p), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(it_json_int(r.json, "assignment_id"), a1);
    it_response_free(&r);
    /* the repeat did not burn the other item's slot: wb gets it */
    int64_t b = take(wb, p, &i3);
    assert_true(b != a1);
    assert_true(i3 != i1);
    expect_no_task(g.mgr, p); /* both slots leased */
    /* after the submit, next gives a new assignment (here none is left) */
    submit_ok(wa, a1, CAT);
    expect_no_task(wa, p);
    submit_ok(wb, b, CAT);
    free(wa);
    free(wb);
}

/* The same worker asking 16 times at once: one lease, the same assignment for all
 * (no race makes two leases for one worker). */
#define N_SAME 16
typedef struct {
    const char *token;
    long status;
    int64_t assignment;
} same_ctx;
static int64_t SAME_PROJECT;
static pthread_barrier_t SAME_START;

static void *same_main(void *arg)
{
    same_ctx *c = arg;
    char path[128];
    snprintf(path, sizeof path, "/v1/projects/%lld/work/next", (long long)SAME_PROJECT);
    pthread_barrier_wait(&SAME_START);
    it_response r;
    if (it_request_json(&g.srv, "POST", path, c->token, NULL, &r) == 0) {
        c->status = r.status;
        c->assignment = it_json_int(r.json, "assignment_id");
    }
    it_response_free(&r);
    return NULL;
}

static void test_same_task_concurrent(void **state)
{
    (void)state;
    SAME_PROJECT = make_project("image", SIMPLE_TEMPLATE, 1);
    add_jpegs(SAME_PROJECT, N_SAME, 7500);
    char *w = new_user("worker");
    same_ctx ctx[N_SAME];
    pthread_t th[N_SAME];
    assert_int_equal(pthread_barrier_init(&SAME_START, NULL, N_SAME), 0);
    for (int i = 0; i < N_SAME; i++) {
        ctx[i] = (same_ctx){w, 0, -1};
        assert_int_equal(pthread_create(&th[i], NULL, same_main, &ctx[i]), 0);
    }
    for (int i = 0; i < N_SAME; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&SAME_START);
    for (int i = 0; i < N_SAME; i++) {
        if (ctx[i].status != 200 || ctx[i].assignment != ctx[0].assignment)
            fprintf(stderr, "call %d: HTTP %ld assignment %lld (call 0: %lld)\n", i, ctx[i].status,
                    (long long)ctx[i].assignment, (long long)ctx[0].assignment);
        assert_int_equal(ctx[i].status, 200);
        assert_int_equal(ctx[i].assignment, ctx[0].assignment);
    }
    /* only one lease was made: after submitting it the worker gets the other 15 items
     * one by one (no slot is held by a phantom second lease), then 204 */
    submit_ok(w, ctx[0].assignment, CAT);
    int more = 0;
    json_t *t;
    while (more < 2 * N_SAME && (t = next_task(w, SAME_PROJECT)) != NULL) {
        int64_t a = it_json_int(t, "assignment_id");
        assert_true(a != ctx[0].assignment);
        json_decref(t);
        submit_ok(w, a, DOG);
        more++;
    }
    assert_int_equal(more, N_SAME - 1);
    json_t *js = all_judgments(SAME_PROJECT);
    assert_int_equal(json_array_size(js), N_SAME);
    json_decref(js);
    free(w);
}

/* ---- 9. isolation ------------------------------------------------------------------------ */

static void assert_worker_item_view(const json_t *item)
{
    static const char *const hidden[] = {"name", "sha256", "gold", "gold_answer", "meta", NULL};
    for (int k = 0; hidden[k]; k++) {
        if (json_object_get(item, hidden[k])) {
            char *s = json_dumps(item, JSON_COMPACT);
            fprintf(stderr, "worker view of an item shows '%s': %s\n", hidden[k], s ? s : "?");
            free(s);
        }
        assert_null(json_object_get(item, hidden[k]));
    }
}

/* The body must not mention the gold answer's text anywhere. */
static void assert_no_text(const it_response *r, const char *text)
{
    if (r->body && strstr(r->body, text)) {
        fprintf(stderr, "response leaks \"%s\": %.1000s\n", text, r->body);
        fail();
    }
}

static void test_isolation(void **state)
{
    (void)state;
    int64_t p1 = make_project("image", SIMPLE_TEMPLATE, 1);
    add_jpegs(p1, 3, 8000);
    int64_t p2 = make_project("image", SIMPLE_TEMPLATE, 1);
    add_jpegs(p2, 1, 8100);
    char *wa = new_user("worker"), *wb = new_user("worker");

    int64_t x, y;
    int64_t a = take(wa, p1, &x);
    int64_t b = take(wb, p1, &y);
    assert_true(x != y);

    /* the third item, held by nobody; find it through the manager's list */
    it_response r;
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/projects/%lld/items", (long long)p1), 0);
    IT_ASSERT_STATUS(r, 200);
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 3);
    int64_t z = -1;
    for (size_t k = 0; k < 3; k++) {
        int64_t id = it_json_int(json_array_get(items, k), "id");
        if (id != x && id != y)
            z = id;
    }
    it_response_free(&r);
    assert_true(z > 0);

    /* x becomes a test question (gold answer "dog") while wa holds it */
    IT_EXPECT_STATUSF(&g.srv, "PUT", g.mgr, "{\"answer\":{\"label\":\"dog\"}}", 200, "/v1/items/%lld/gold",
                      (long long)x);
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/items/%lld", (long long)x), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_true(json_is_true(json_object_get(r.json, "gold"))); /* the manager sees it */
    it_response_free(&r);

    /* the leased item: readable, without name / hash / gold */
    assert_int_equal(it_getf(&g.srv, wa, &r, "/v1/items/%lld", (long long)x), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(it_json_int(r.json, "id"), x);
    assert_worker_item_view(r.json);
    assert_no_text(&r, "dog");
    assert_no_text(&r, "img8");
    it_response_free(&r);
    assert_int_equal(it_getf(&g.srv, wa, &r, "/v1/items/%lld/media", (long long)x), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_string_equal(r.content_type, "image/jpeg");
    assert_true(r.len > 1000);
    it_response_free(&r);
    assert_int_equal(it_getf(&g.srv, wa, &r, "/v1/items/%lld/thumbnail", (long long)x), 0);
    IT_ASSERT_STATUS(r, 200);
    it_response_free(&r);
    /* the task again (same assignment), now that the item is gold: still no gold */
    assert_int_equal(it_requestf(&g.srv, "POST", wa, NULL, &r, "/v1/projects/%lld/work/next", (long long)p1), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(it_json_int(r.json, "assignment_id"), a);
    assert_worker_item_view(json_object_get(r.json, "item"));
    assert_no_text(&r, "\"dog\"}"); /* the template lists "dog" as an option, never as an answer */
    assert_null(json_object_get(r.json, "gold"));
    assert_null(json_object_get(r.json, "gold_answer"));
    assert_null(json_object_get(r.json, "is_gold"));
    it_response_free(&r);

    /* items wa holds no lease on: 404, though they exist (the manager gets 200) */
    int64_t others[2] = {y, z};
    for (int k = 0; k < 2; k++) {
        IT_EXPECT_STATUSF(&g.srv, "GET", g.mgr, NULL, 200, "/v1/items/%lld/thumbnail", (long long)others[k]);
        IT_EXPECT_ERRORF(&g.srv, "GET", wa, NULL, 404, "not_found", "/v1/items/%lld", (long long)others[k]);
        IT_EXPECT_STATUSF(&g.srv, "GET", wa, NULL, 404, "/v1/items/%lld/media", (long long)others[k]);
        IT_EXPECT_STATUSF(&g.srv, "GET", wa, NULL, 404, "/v1/items/%lld/thumbnail", (long long)others[k]);
    }
    /* wb's item is readable by wb */
    IT_EXPECT_STATUSF(&g.srv, "GET", wb, NULL, 200, "/v1/items/%lld", (long long)y);
    IT_EXPECT_STATUSF(&g.srv, "GET", wb, NULL, 404, "/v1/items/%lld", (long long)x);

    /* another worker's assignment: 404 for GET, submit and skip, and it is untouched */
    IT_EXPECT_ERRORF(&g.srv, "GET", wa, NULL, 404, "not_found", "/v1/assignments/%lld", (long long)b);
    IT_EXPECT_ERRORF(&g.srv, "POST", wa, CAT, 404, "not_found", "/v1/assignments/%lld/submit", (long long)b);
    IT_EXPECT_ERRORF(&g.srv, "POST", wa, NULL, 404, "not_found", "/v1/assignments/%lld/skip", (long long)b);
    IT_EXPECT_STATUSF(&g.srv, "GET", wa, NULL, 404, "/v1/assignments/%lld", (long long)(b + 100000));
    assert_string_equal(assignment_state(wb, b), "leased");

    /* item lists of any project: 404 for a worker */
    IT_EXPECT_STATUSF(&g.srv, "GET", wa, NULL, 404, "/v1/projects/%lld/items", (long long)p1);
    IT_EXPECT_STATUSF(&g.srv, "GET", wa, NULL, 404, "/v1/projects/%lld/items", (long long)p2);

    /* judgments: never for a worker */
    submit_ok(wa, a, CAT);
    submit_ok(wb, b, DOG);
    for (int k = 0; k < 2; k++) {
        int64_t pp = k ? p2 : p1;
        assert_int_equal(it_getf(&g.srv, wa, &r, "/v1/projects/%lld/judgments", (long long)pp), 0);
        if (r.status != 403 && r.status != 404)
            fprintf(stderr, "worker GET judgments: HTTP %ld %.500s\n", r.status, r.body);
        assert_true(r.status == 403 || r.status == 404);
        assert_no_text(&r, "\"answer\"");
        it_response_free(&r);
    }
    /* after the submit wa holds no lease on x any more ("only while holding an
     * unexpired lease") */
    IT_EXPECT_STATUSF(&g.srv, "GET", wa, NULL, 404, "/v1/items/%lld", (long long)x);

    /* pseudonyms: wa on x and z share one; wb differs; wa in p2 gets another */
    int64_t a3 = take(wa, p1, NULL);
    submit_ok(wa, a3, CAT);
    int64_t a4 = take(wa, p2, NULL);
    submit_ok(wa, a4, CAT);

    json_t *j1 = all_judgments(p1);
    assert_int_equal(json_array_size(j1), 3);
    char wa_p1[128] = "", wb_p1[128] = "";
    size_t k;
    json_t *j;
    json_array_foreach(j1, k, j) {
        const char *wp = it_json_str(j, "worker");
        if (!is_pseudonym(wp))
            fprintf(stderr, "worker \"%s\" is not a w_<hex> pseudonym\n", wp);
        assert_true(is_pseudonym(wp));
        assert_null(json_object_get(j, "worker_id"));
        int64_t as = it_json_int(j, "assignment_id");
        if (as == a || as == a3) {
            if (wa_p1[0])
                assert_string_equal(wa_p1, wp);
            snprintf(wa_p1, sizeof wa_p1, "%s", wp);
        } else {
            assert_int_equal(as, b);
            snprintf(wb_p1, sizeof wb_p1, "%s", wp);
        }
    }
    assert_true(wa_p1[0] && wb_p1[0]);
    assert_string_not_equal(wa_p1, wb_p1);
    json_decref(j1);
    /* ?item_id= filter */
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/projects/%lld/judgments?item_id=%lld", (long long)p1,
                             (long long)y),
                     0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    assert_int_equal(it_json_int(json_array_get(json_object_get(r.json, "items"), 0), "assignment_id"), b);
    it_response_free(&r);

    json_t *j2 = all_judgments(p2);
    assert_int_equal(json_array_size(j2), 1);
    const char *wa_p2 = it_json_str(json_array_get(j2, 0), "worker");
    assert_true(is_pseudonym(wa_p2));
    assert_string_not_equal(wa_p1, wa_p2);
    json_decref(j2);
    free(wa);
    free(wb);
}

/* ---- 10. /v1/me/stats ---------------------------------------------------------------------- */

static const json_t *stats_for(const json_t *stats, int64_t project)
{
    json_t *items = json_object_get(stats, "items");
    assert_true(json_is_array(items));
    size_t k;
    json_t *e;
    json_array_foreach(items, k, e) if (it_json_int(e, "project_id") == project) return e;
    return NULL;
}

static void test_me_stats(void **state)
{
    (void)state;
    int64_t p = make_project("image", SIMPLE_TEMPLATE, 1);
    add_jpegs(p, 5, 9000);
    char *w = new_user("worker"), *other = new_user("worker");

    it_response r;
    assert_int_equal(it_getf(&g.srv, w, &r, "/v1/me/stats"), 0);
    IT_ASSERT_STATUS(r, 200);
    const json_t *e = stats_for(r.json, p);
    assert_true(e == NULL || it_json_int(e, "judgments") == 0);
    it_response_free(&r);

    submit_ok(w, take(w, p, NULL), CAT);
    submit_ok(w, take(w, p, NULL), DOG);
    submit_ok(w, take(w, p, NULL), CAT);
    IT_EXPECT_STATUSF(&g.srv, "POST", w, NULL, 200, "/v1/assignments/%lld/skip", (long long)take(w, p, NULL));
    take(w, p, NULL); /* one lease held */

    assert_int_equal(it_getf(&g.srv, w, &r, "/v1/me/stats"), 0);
    IT_ASSERT_STATUS(r, 200);
    e = stats_for(r.json, p);
    if (!e)
        fprintf(stderr, "no entry for project %lld: %s\n", (long long)p, r.body);
    assert_non_null(e);
    assert_int_equal(it_json_int(e, "judgments"), 3);
    assert_int_equal(it_json_int(e, "skipped"), 1);
    json_t *active = json_object_get(e, "active");
    assert_true(json_is_true(active) || (json_is_integer(active) && json_integer_value(active) == 1));
    assert_true(strlen(it_json_str(e, "last_at")) >= 20); /* RFC 3339 */
    it_response_free(&r);

    /* another worker's stats do not include them */
    assert_int_equal(it_getf(&g.srv, other, &r, "/v1/me/stats"), 0);
    IT_ASSERT_STATUS(r, 200);
    e = stats_for(r.json, p);
    assert_true(e == NULL || (it_json_int(e, "judgments") == 0 && it_json_int(e, "skipped") == 0));
    it_response_free(&r);
    /* no token: 401 */
    IT_EXPECT_STATUSF(&g.srv, "GET", NULL, NULL, 401, "/v1/me/stats");
    free(w);
    free(other);
}

/* ---- misc: roles and unknown things ----------------------------------------------------- */

static void test_work_errors(void **state)
{
    (void)state;
    int64_t p = make_project("image", SIMPLE_TEMPLATE, 1);
    add_jpegs(p, 1, 9500);
    char *consumer = new_user("consumer");
    /* unknown project, unknown assignment */
    IT_EXPECT_STATUSF(&g.srv, "POST", g.worker, NULL, 404, "/v1/projects/%lld/work/next", (long long)(p + 1000));
    IT_EXPECT_STATUSF(&g.srv, "POST", g.worker, CAT, 404, "/v1/assignments/%lld/submit", 987654LL);
    IT_EXPECT_STATUSF(&g.srv, "POST", g.worker, NULL, 404, "/v1/assignments/%lld/skip", 987654LL);
    IT_EXPECT_STATUSF(&g.srv, "GET", g.worker, NULL, 404, "/v1/assignments/%lld", 987654LL);
    /* no token: 401; a consumer does not work: 403 */
    IT_EXPECT_STATUSF(&g.srv, "POST", NULL, NULL, 401, "/v1/projects/%lld/work/next", (long long)p);
    IT_EXPECT_STATUSF(&g.srv, "POST", consumer, NULL, 403, "/v1/projects/%lld/work/next", (long long)p);
    /* a worker cannot PATCH the workflow */
    IT_EXPECT_STATUSF(&g.srv, "PATCH", g.worker, "{\"workflow\":{\"overlap\":2}}", 403, "/v1/projects/%lld",
                      (long long)p);
    /* bad PATCH bodies */
    IT_EXPECT_ERRORF(&g.srv, "PATCH", g.mgr, "{\"workflow\":{\"per_worker_cap\":-1}}", 400, "invalid_workflow",
                     "/v1/projects/%lld", (long long)p);
    IT_EXPECT_ERRORF(&g.srv, "PATCH", g.mgr, "{\"workflow\":{\"lease_seconds\":5}}", 400, "invalid_workflow",
                     "/v1/projects/%lld", (long long)p);
    IT_EXPECT_ERRORF(&g.srv, "PATCH", g.mgr, "{\"workflow\":{\"overlp\":2}}", 400, "invalid_workflow",
                     "/v1/projects/%lld", (long long)p);
    /* the default worker still gets the item; the manager may work too */
    int64_t a = take(g.worker, p, NULL);
    submit_ok(g.worker, a, CAT);
    expect_no_task(g.mgr, p);
    free(consumer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation_image),
        cmocka_unit_test(test_validation_audio),
        cmocka_unit_test(test_answer_not_object),
        cmocka_unit_test(test_concurrent_overlap),
        cmocka_unit_test(test_resubmit),
        cmocka_unit_test(test_resubmit_concurrent),
        cmocka_unit_test(test_skip),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_per_worker_cap),
        cmocka_unit_test(test_same_task_again),
        cmocka_unit_test(test_same_task_concurrent),
        cmocka_unit_test(test_isolation),
        cmocka_unit_test(test_me_stats),
        cmocka_unit_test(test_work_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
