/* it_api.c -- integration tests of tallyd's HTTP API surface against a real server:
 * health and metrics, bootstrap (admin.token), authentication and roles, users,
 * projects (templates, workflow defaults and validation), routing (404 / 405),
 * request-body errors, paging, and the --max-body limit.
 *
 * One server is shared by the group (started in the group setup; the group teardown
 * stops it with SIGTERM and fails on a non-zero exit or a sanitizer report). The
 * --max-body test starts its own server. Tests run in order and share `g`.
 */
#include "harness.h"

#include <curl/curl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

static struct {
    it_server srv;
    char *mgr;       /* manager token */
    char *worker;    /* worker token */
    char *consumer;  /* consumer token */
    int64_t project; /* an image project made by the manager */
} g;

static const char *TEMPLATE =
    "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"],"
    "\"required\":true}]}";

/* ---- helpers -------------------------------------------------------------------- */

/* Asserts that a JSON number member equals want (integers and reals both accepted). */
static void assert_num(const json_t *obj, const char *key, double want)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        fprintf(stderr, "member '%s' is not a number\n", key);
    assert_true(json_is_number(v));
    double d = json_number_value(v) - want;
    if (d < -1e-9 || d > 1e-9)
        fprintf(stderr, "member '%s' is %g, want %g\n", key, json_number_value(v), want);
    assert_true(d >= -1e-9 && d <= 1e-9);
}

/* POST /v1/projects with the body text; returns the response in r. */
static void post_project(const char *token, const char *body, it_response *r)
{
    assert_int_equal(it_request_json(&g.srv, "POST", "/v1/projects", token, body, r), 0);
}

/* A project body with the given media, template JSON and optional workflow JSON. */
static char *project_body(const char *name, const char *media, const char *tmpl,
                          const char *workflow)
{
    char *s = NULL;
    int n;
    if (workflow)
        n = asprintf(&s, "{\"name\":\"%s\",\"media\":\"%s\",\"template\":%s,\"workflow\":%s}", name,
                     media, tmpl, workflow);
    else
        n = asprintf(&s, "{\"name\":\"%s\",\"media\":\"%s\",\"template\":%s}", name, media, tmpl);
    assert_true(n > 0);
    return s;
}

/* Expects 400 invalid_template whose message contains each NULL-terminated needle. */
static void expect_bad_template(const char *media, const char *tmpl, ...)
{
    char *body = project_body("bad-template", media, tmpl, NULL);
    it_response r;
    post_project(g.mgr, body, &r);
    IT_ASSERT_ERROR(r, 400, "invalid_template");
    va_list ap;
    va_start(ap, tmpl);
    const char *needle;
    while ((needle = va_arg(ap, const char *))) {
        if (!strstr(it_err_msg(&r), needle))
            fprintf(stderr, "template %s: message '%s' lacks '%s'\n", tmpl, it_err_msg(&r), needle);
        assert_non_null(strstr(it_err_msg(&r), needle));
    }
    va_end(ap);
    it_response_free(&r);
    free(body);
}

static void expect_bad_workflow(const char *workflow, const char *needle)
{
    char *body = project_body("bad-workflow", "image", TEMPLATE, workflow);
    it_response r;
    post_project(g.mgr, body, &r);
    IT_ASSERT_ERROR(r, 400, "invalid_workflow");
    if (needle && !strstr(it_err_msg(&r), needle))
        fprintf(stderr, "workflow %s: message '%s' lacks '%s'\n", workflow, it_err_msg(&r), needle);
    if (needle)
        assert_non_null(strstr(it_err_msg(&r), needle));
    it_response_free(&r);
    free(body);
}

/* Polls /metrics until `series` has a value >= min (the request counter is updated
 * when a request completes, which can be just after its client saw the reply). */
static double wait_metric(it_server *s, const char *series, double min)
{
    double v = -1;
    for (int i = 0; i < 100; i++) {
        it_response r;
        assert_int_equal(it_request(s, "GET", "/metrics", NULL, NULL, NULL, 0, &r), 0);
        assert_int_equal(r.status, 200);
        v = it_metric_value(r.body, series);
        it_response_free(&r);
        if (v >= min)
            break;
        it_sleep_ms(30);
    }
    return v;
}

/* curl write callback: appends to a malloc'd NUL-terminated string. */
static size_t collect(char *data, size_t size, size_t nmemb, void *userp)
{
    char **acc = userp;
    size_t old = *acc ? strlen(*acc) : 0, n = size * nmemb;
    char *p = realloc(*acc, old + n + 1);
    if (!p)
        return 0;
    memcpy(p + old, data, n);
    p[old + n] = '\0';
    *acc = p;
    return n;
}

/* ---- setup ------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    if (it_server_start_users(&g.srv, NULL, &g.mgr, &g.worker, &g.consumer) != 0)
        return -1;
    g.project = it_create_project(&g.srv, g.mgr, "api-main", "image", TEMPLATE);
    return g.project > 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = it_server_finish(&g.srv); /* graceful: exit 0, clean log */
    free(g.mgr);
    free(g.worker);
    free(g.consumer);
    return rc;
}

/* ---- health, metrics, bootstrap ---------------------------------------------------- */

static void test_healthz(void **state)
{
    (void)state;
    it_response r;
    assert_int_equal(it_request(&g.srv, "GET", "/healthz", NULL, NULL, NULL, 0, &r), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_non_null(strstr(r.content_type, "application/json"));
    assert_non_null(r.json);
    assert_true(json_is_true(json_object_get(r.json, "ok")));
    it_response_free(&r);
    /* a token is not needed, but a bad one does not hurt a public route */
    IT_EXPECT_STATUSF(&g.srv, "GET", "garbage", NULL, 200, "/healthz");
}

static void test_admin_token_file(void **state)
{
    (void)state;
    char path[4400];
    snprintf(path, sizeof path, "%s/admin.token", g.srv.data_dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(strlen(g.srv.admin_token) >= 16);
    it_response r;
    assert_int_equal(it_request_json(&g.srv, "GET", "/v1/me", g.srv.admin_token, NULL, &r), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_string_equal(it_json_str(r.json, "role"), "admin");
    assert_string_equal(it_json_str(r.json, "name"), "admin");
    assert_true(it_json_int(r.json, "id") > 0);
    assert_null(json_object_get(r.json, "token"));
    it_response_free(&r);
}

static void test_metrics(void **state)
{
    (void)state;
    it_response r;
    /* make sure some known requests happened */
    assert_int_equal(it_request(&g.srv, "GET", "/healthz", NULL, NULL, NULL, 0, &r), 0);
    it_response_free(&r);
    IT_EXPECT_STATUSF(&g.srv, "GET", NULL, NULL, 401, "/v1/me");

    double healthz = wait_metric(&g.srv, "tally_http_requests_total{route=\"healthz\",status=\"200\"}", 1);
    assert_true(healthz >= 1);
    double me401 = wait_metric(&g.srv, "tally_http_requests_total{route=\"me\",status=\"401\"}", 1);
    assert_true(me401 >= 1);

    assert_int_equal(it_request(&g.srv, "GET", "/metrics", NULL, NULL, NULL, 0, &r), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_non_null(strstr(r.content_type, "text/plain"));
    assert_non_null(strstr(r.body, "# TYPE tally_http_requests_total counter"));
    assert_non_null(strstr(r.body, "tally_http_request_duration_seconds_bucket{"));
    assert_non_null(strstr(r.body, "le=\"+Inf\""));
    assert_non_null(strstr(r.body, "tally_http_request_duration_seconds_count{route=\"healthz\"}"));
    it_response_free(&r);

    /* counters only go up: one more healthz makes the value grow */
    assert_int_equal(it_request(&g.srv, "GET", "/healthz", NULL, NULL, NULL, 0, &r), 0);
    it_response_free(&r);
    double after = wait_metric(&g.srv, "tally_http_requests_total{route=\"healthz\",status=\"200\"}",
                               healthz + 1);
    assert_true(after >= healthz + 1);
}

/* ---- authentication and roles ------------------------------------------------------ */

/* GET path with one extra raw header line; returns the HTTP status (0 on failure). */
static long raw_get_status(it_server *s, const char *path, const char *header)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[512];
    snprintf(url, sizeof url, "%s%s", s->base_url, path);
    struct curl_slist *h = curl_slist_append(NULL, header);
    char *body = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    long st = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    if (st != 200 && st != 401)
        fprintf(stderr, "GET %s with '%s' -> %ld %s\n", path, header, st, body ? body : "");
    free(body);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return st;
}

static void test_auth_required(void **state)
{
    (void)state;
    IT_EXPECT_ERRORF(&g.srv, "GET", NULL, NULL, 401, "unauthorized", "/v1/me");

    IT_EXPECT_ERRORF(&g.srv, "GET", "tly_0000000000000000000000000000000000000000", NULL, 401, "unauthorized", "/v1/me");

    /* a token with one character changed */
    char bad[256];
    snprintf(bad, sizeof bad, "%s", g.mgr);
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == 'a' ? 'b' : 'a';
    IT_EXPECT_ERRORF(&g.srv, "GET", bad, NULL, 401, "unauthorized", "/v1/projects");

    /* not a Bearer scheme */
    char hdr[300];
    snprintf(hdr, sizeof hdr, "Authorization: Basic %s", g.mgr);
    assert_int_equal(raw_get_status(&g.srv, "/v1/me", hdr), 401);
    assert_int_equal(raw_get_status(&g.srv, "/v1/me", "Authorization: Bearer"), 401);
    assert_int_equal(raw_get_status(&g.srv, "/v1/me", "Authorization: Bearer    "), 401);
    snprintf(hdr, sizeof hdr, "Authorization: bearer %s", g.mgr); /* the scheme is case-insensitive */
    assert_int_equal(raw_get_status(&g.srv, "/v1/me", hdr), 200);

    /* every protected route wants a token, also for writes */
    IT_EXPECT_ERRORF(&g.srv, "POST", NULL, TEMPLATE, 401, "unauthorized", "/v1/projects");
    IT_EXPECT_ERRORF(&g.srv, "GET", NULL, NULL, 401, "unauthorized", "/v1/projects/%lld", (long long)g.project);
}

static void test_me_per_role(void **state)
{
    (void)state;
    struct {
        const char *token, *name, *role;
    } who[] = {
        {g.mgr, "pm", "manager"}, {g.worker, "w1", "worker"}, {g.consumer, "ml", "consumer"},
    };
    int64_t ids[3];
    for (size_t i = 0; i < 3; i++) {
        it_response r;
        assert_int_equal(it_request_json(&g.srv, "GET", "/v1/me", who[i].token, NULL, &r), 0);
        IT_ASSERT_STATUS(r, 200);
        assert_string_equal(it_json_str(r.json, "name"), who[i].name);
        assert_string_equal(it_json_str(r.json, "role"), who[i].role);
        ids[i] = it_json_int(r.json, "id");
        assert_true(ids[i] > 0);
        assert_null(json_object_get(r.json, "token"));
        it_response_free(&r);
    }
    assert_true(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
}

static void test_users(void **state)
{
    (void)state;
    it_response r;
    /* admin makes a manager: full object with a token shown once */
    assert_int_equal(it_request_json(&g.srv, "POST", "/v1/users", g.srv.admin_token,
                                     "{\"name\":\"pm2\",\"role\":\"manager\"}", &r),
                     0);
    IT_ASSERT_STATUS(r, 201);
    assert_true(it_json_int(r.json, "id") > 0);
    assert_string_equal(it_json_str(r.json, "name"), "pm2");
    assert_string_equal(it_json_str(r.json, "role"), "manager");
    assert_true(strlen(it_json_str(r.json, "token")) >= 16);
    const char *created = it_json_str(r.json, "created_at");
    assert_true(strlen(created) >= 20);
    assert_int_equal(created[strlen(created) - 1], 'Z'); /* RFC 3339 UTC */
    char *pm2 = strdup(it_json_str(r.json, "token"));
    int64_t pm2_id = it_json_int(r.json, "id");
    it_response_free(&r);
    assert_int_equal(it_request_json(&g.srv, "GET", "/v1/me", pm2, NULL, &r), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(it_json_int(r.json, "id"), pm2_id);
    assert_string_equal(it_json_str(r.json, "role"), "manager");
    it_response_free(&r);

    /* admin may make every role */
    const char *roles[] = {"admin", "worker", "consumer"};
    for (size_t i = 0; i < 3; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"name\":\"by-admin-%s\",\"role\":\"%s\"}", roles[i], roles[i]);
        assert_int_equal(it_request_json(&g.srv, "POST", "/v1/users", g.srv.admin_token, body, &r), 0);
        IT_ASSERT_STATUS(r, 201);
        assert_string_equal(it_json_str(r.json, "role"), roles[i]);
        it_response_free(&r);
    }

    /* duplicate name */
    IT_EXPECT_ERRORF(&g.srv, "POST", g.srv.admin_token, "{\"name\":\"pm2\",\"role\":\"worker\"}", 409, "name_taken", "/v1/users");

    /* bad role */
    assert_int_equal(it_request_json(&g.srv, "POST", "/v1/users", g.srv.admin_token,
                                     "{\"name\":\"x1\",\"role\":\"superuser\"}", &r),
                     0);
    IT_ASSERT_STATUS(r, 400);
    assert_string_equal(it_err_code(&r), "invalid_field");
    it_response_free(&r);

    /* a manager recruits workers and consumers only */
    assert_int_equal(it_request_json(&g.srv, "POST", "/v1/users", pm2,
                                     "{\"name\":\"w-by-pm2\",\"role\":\"worker\"}", &r),
                     0);
    IT_ASSERT_STATUS(r, 201);
    assert_string_equal(it_json_str(r.json, "role"), "worker");
    it_response_free(&r);
    IT_EXPECT_STATUSF(&g.srv, "POST", pm2, "{\"name\":\"c-by-pm2\",\"role\":\"consumer\"}", 201, "/v1/users");
    IT_EXPECT_ERRORF(&g.srv, "POST", pm2, "{\"name\":\"m-by-pm2\",\"role\":\"manager\"}", 403, "forbidden", "/v1/users");
    IT_EXPECT_ERRORF(&g.srv, "POST", pm2, "{\"name\":\"a-by-pm2\",\"role\":\"admin\"}", 403, "forbidden", "/v1/users");
    /* the refused user really was not created: the name is still free */
    IT_EXPECT_STATUSF(&g.srv, "POST", g.srv.admin_token, "{\"name\":\"m-by-pm2\",\"role\":\"worker\"}", 201, "/v1/users");

    /* workers and consumers may not create users */
    IT_EXPECT_ERRORF(&g.srv, "POST", g.worker, "{\"name\":\"w-by-w\",\"role\":\"worker\"}", 403, "forbidden", "/v1/users");
    IT_EXPECT_ERRORF(&g.srv, "POST", g.consumer, "{\"name\":\"w-by-c\",\"role\":\"worker\"}", 403, "forbidden", "/v1/users");

    /* body errors */
    assert_int_equal(it_request_json(&g.srv, "POST", "/v1/users", g.srv.admin_token,
                                     "{\"role\":\"worker\"}", &r),
                     0);
    IT_ASSERT_ERROR(r, 400, "missing_field");
    assert_non_null(strstr(it_err_msg(&r), "name"));
    it_response_free(&r);
    assert_int_equal(it_request_json(&g.srv, "POST", "/v1/users", g.srv.admin_token,
                                     "{\"name\":\"x2\",\"role\":\"worker\",\"email\":\"a@b\"}", &r),
                     0);
    IT_ASSERT_ERROR(r, 400, "unknown_field");
    assert_non_null(strstr(it_err_msg(&r), "email"));
    it_response_free(&r);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.srv.admin_token, "{\"name\":42,\"role\":\"worker\"}", 400, "invalid_field", "/v1/users");
    IT_EXPECT_STATUSF(&g.srv, "POST", g.srv.admin_token, "{\"name\":\"\",\"role\":\"worker\"}", 400, "/v1/users");
    free(pm2);
}

/* ---- request bodies ---------------------------------------------------------------- */

static void test_json_body_errors(void **state)
{
    (void)state;
    it_response r;
    const char *malformed[] = {"{", "{\"name\":", "not json", "{\"a\":1}}", "{\"a\":1,\"a\":2}"};
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, malformed[i], 400, "invalid_json", "/v1/projects");
    }
    /* valid JSON that is not an object */
    const char *not_object[] = {"[]", "[1,2]", "\"text\"", "42", "null", "true"};
    for (size_t i = 0; i < sizeof not_object / sizeof *not_object; i++) {
        assert_int_equal(it_request_json(&g.srv, "POST", "/v1/users", g.srv.admin_token, not_object[i], &r), 0);
        IT_ASSERT_STATUS(r, 400);
        assert_true(strlen(it_err_code(&r)) > 0);
        it_response_free(&r);
    }
    /* no body at all */
    assert_int_equal(it_request(&g.srv, "POST", "/v1/projects", g.mgr, NULL, NULL, 0, &r), 0);
    IT_ASSERT_STATUS(r, 400);
    assert_true(strlen(it_err_code(&r)) > 0);
    it_response_free(&r);
    /* a body that is not UTF-8 */
    static const char latin1[] = "{\"name\":\"caf\xe9\",\"role\":\"worker\"}";
    assert_int_equal(it_request(&g.srv, "POST", "/v1/users", g.srv.admin_token, "application/json", latin1,
                                sizeof latin1 - 1, &r),
                     0);
    IT_ASSERT_ERROR(r, 400, "invalid_json");
    it_response_free(&r);
    /* a NUL byte inside the body */
    static const char nul[] = "{\"name\":\"a\0b\",\"role\":\"worker\"}";
    assert_int_equal(it_request(&g.srv, "POST", "/v1/users", g.srv.admin_token, "application/json", nul,
                                sizeof nul - 1, &r),
                     0);
    IT_ASSERT_STATUS(r, 400);
    it_response_free(&r);
    /* deep nesting is refused, not a crash */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 1);
    assert_non_null(deep);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    IT_EXPECT_STATUSF(&g.srv, "POST", g.mgr, deep, 400, "/v1/projects");
    free(deep);
    /* the server is still fine */
    IT_EXPECT_STATUSF(&g.srv, "GET", NULL, NULL, 200, "/healthz");
}

/* ---- routing ----------------------------------------------------------------------- */

static void test_routing(void **state)
{
    (void)state;
    it_response r;
    const char *unknown[] = {"/v2/me", "/v1/nothing", "/v1/projects/1/nothing", "/v1/projects/abc",
                             "/v1/projects/0", "/v1/projects/-1", "/v1/projects/99999999999999999999",
                             "/", "/v1/", "/v1/me/extra"};
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        assert_int_equal(it_request_json(&g.srv, "GET", unknown[i], g.mgr, NULL, &r), 0);
        if (r.status != 404)
            fprintf(stderr, "GET %s -> %ld %s\n", unknown[i], r.status, r.body);
        IT_ASSERT_ERROR(r, 404, "not_found");
        it_response_free(&r);
    }
    /* unknown paths are 404 also without a token */
    IT_EXPECT_ERRORF(&g.srv, "GET", NULL, NULL, 404, "not_found", "/v1/nothing");

    struct {
        const char *method, *path;
    } wrong[] = {
        {"DELETE", "/v1/me"}, {"POST", "/healthz"}, {"PUT", "/v1/projects"},
        {"DELETE", "/v1/projects/1"}, {"PATCH", "/v1/users"}, {"GET", "/v1/users"},
        {"POST", "/metrics"}, {"GET", "/v1/batches/1/close"},
    };
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        assert_int_equal(it_request_json(&g.srv, wrong[i].method, wrong[i].path, g.mgr, NULL, &r), 0);
        if (r.status != 405)
            fprintf(stderr, "%s %s -> %ld %s\n", wrong[i].method, wrong[i].path, r.status, r.body);
        IT_ASSERT_ERROR(r, 405, "method_not_allowed");
        it_response_free(&r);
    }
}

static void test_role_checks(void **state)
{
    (void)state;
    it_response r;
    /* worker: staff-only writes are 403 */
    char *body = project_body("by-worker", "image", TEMPLATE, NULL);
    post_project(g.worker, body, &r);
    IT_ASSERT_ERROR(r, 403, "forbidden");
    it_response_free(&r);
    post_project(g.consumer, body, &r);
    IT_ASSERT_ERROR(r, 403, "forbidden");
    it_response_free(&r);
    free(body);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.consumer, "{\"name\":\"b\",\"source\":{\"kind\":\"upload\"}}", 403, "forbidden", "/v1/projects/%lld/batches", (long long)g.project);

    /* an upload batch to ask about */
    int64_t batch = it_create_batch(&g.srv, g.mgr, g.project, "role-batch", NULL);
    assert_true(batch > 0);

    /* worker: items, batches, stats and item lists are hidden (404, not 403) */
    const char *hidden[] = {"/v1/projects/%lld/stats", "/v1/projects/%lld/items",
                            "/v1/projects/%lld/batches"};
    for (size_t i = 0; i < 3; i++) {
        IT_EXPECT_ERRORF(&g.srv, "GET", g.worker, NULL, 404, "not_found", hidden[i], (long long)g.project);
    }
    IT_EXPECT_ERRORF(&g.srv, "GET", g.worker, NULL, 404, "not_found", "/v1/batches/%lld", (long long)batch);
    IT_EXPECT_ERRORF(&g.srv, "GET", g.worker, NULL, 404, "not_found", "/v1/batches/%lld/errors", (long long)batch);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.worker, NULL, 404, "not_found", "/v1/batches/%lld/close", (long long)batch);
    assert_int_equal(it_upload_bytes(&g.srv, g.worker, batch, "x.jpg", "abc", 3, &r), 0);
    IT_ASSERT_ERROR(r, 404, "not_found");
    it_response_free(&r);
    /* the worker's refused upload and close did nothing */
    assert_int_equal(it_requestf(&g.srv, "GET", g.mgr, NULL, &r, "/v1/batches/%lld", (long long)batch), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_string_equal(it_json_str(r.json, "state"), "open");
    assert_int_equal(it_json_int(r.json, "total"), 0);
    it_response_free(&r);

    /* consumer may read stats and item lists */
    IT_EXPECT_STATUSF(&g.srv, "GET", g.consumer, NULL, 200, "/v1/projects/%lld/stats", (long long)g.project);
    assert_int_equal(it_requestf(&g.srv, "GET", g.consumer, NULL, &r, "/v1/projects/%lld/items", (long long)g.project), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_true(json_is_array(json_object_get(r.json, "items")));
    it_response_free(&r);
    /* but not batches */
    IT_EXPECT_ERRORF(&g.srv, "GET", g.consumer, NULL, 403, "forbidden", "/v1/batches/%lld", (long long)batch);
}

/* ---- projects ---------------------------------------------------------------------- */

static void test_project_create_defaults(void **state)
{
    (void)state;
    it_response r;
    const char *body =
        "{\"name\":\"Cats and dogs\",\"media\":\"image\",\"guidelines\":\"Pick the animal.\","
        "\"template\":{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"],"
        "\"required\":true},{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"cat\",\"dog\"]}]}}";
    post_project(g.mgr, body, &r);
    IT_ASSERT_STATUS(r, 201);
    int64_t id = it_json_int(r.json, "id");
    assert_true(id > 0);
    assert_string_equal(it_json_str(r.json, "name"), "Cats and dogs");
    assert_string_equal(it_json_str(r.json, "media"), "image");
    assert_string_equal(it_json_str(r.json, "guidelines"), "Pick the animal.");
    json_t *controls = json_object_get(json_object_get(r.json, "template"), "controls");
    assert_int_equal(json_array_size(controls), 2);
    assert_string_equal(it_json_str(json_array_get(controls, 1), "type"), "bbox");
    json_t *wf = json_object_get(r.json, "workflow");
    assert_true(json_is_object(wf));
    assert_num(wf, "overlap", 3);
    assert_num(wf, "max_overlap", 5);
    assert_num(wf, "gold_rate", 0.1);
    assert_num(wf, "min_trust", 0.7);
    assert_num(wf, "lease_seconds", 600);
    json_t *quiz = json_object_get(wf, "quiz");
    assert_true(json_is_object(quiz));
    assert_num(quiz, "size", 4);
    assert_num(quiz, "pass", 0.75);
    assert_num(json_object_get(wf, "review"), "sample_rate", 0);
    assert_num(json_object_get(wf, "acceptance"), "aql", 1);
    json_t *pre = json_object_get(wf, "prelabel");
    assert_true(json_is_object(pre));
    assert_true(json_is_boolean(json_object_get(pre, "show")));
    assert_num(pre, "auto_accept", 0.95);
    assert_num(pre, "verify_rate", 0.1);
    char *created = strdup(it_json_str(r.json, "created_at"));
    assert_true(strlen(created) >= 20);
    it_response_free(&r);

    /* GET returns the same project */
    assert_int_equal(it_requestf(&g.srv, "GET", g.mgr, NULL, &r, "/v1/projects/%lld", (long long)id), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(it_json_int(r.json, "id"), id);
    assert_string_equal(it_json_str(r.json, "name"), "Cats and dogs");
    assert_string_equal(it_json_str(r.json, "created_at"), created);
    assert_num(json_object_get(r.json, "workflow"), "overlap", 3);
    assert_int_equal(json_array_size(json_object_get(json_object_get(r.json, "template"), "controls")), 2);
    it_response_free(&r);
    free(created);
    /* an admin may create projects too */
    char *b2 = project_body("by-admin", "audio",
                            "{\"controls\":[{\"name\":\"segs\",\"type\":\"audio_segments\",\"labels\":[\"speech\"]},"
                            "{\"name\":\"text\",\"type\":\"transcription\"}]}",
                            NULL);
    post_project(g.srv.admin_token, b2, &r);
    IT_ASSERT_STATUS(r, 201);
    assert_string_equal(it_json_str(r.json, "media"), "audio");
    it_response_free(&r);
    free(b2);

    /* unknown id */
    IT_EXPECT_ERRORF(&g.srv, "GET", g.mgr, NULL, 404, "not_found", "/v1/projects/987654");
    IT_EXPECT_ERRORF(&g.srv, "GET", g.mgr, NULL, 404, "not_found", "/v1/projects/987654/stats");
}

static void test_project_body_errors(void **state)
{
    (void)state;
    it_response r;
    post_project(g.mgr, "{\"media\":\"image\",\"template\":{\"controls\":[{\"name\":\"t\",\"type\":\"text\"}]}}", &r);
    IT_ASSERT_ERROR(r, 400, "missing_field");
    assert_non_null(strstr(it_err_msg(&r), "name"));
    it_response_free(&r);
    post_project(g.mgr, "{\"name\":\"p\",\"media\":\"image\"}", &r);
    IT_ASSERT_ERROR(r, 400, "missing_field");
    assert_non_null(strstr(it_err_msg(&r), "template"));
    it_response_free(&r);
    post_project(g.mgr, "{\"name\":\"p\",\"media\":\"image\",\"template\":{\"controls\":[{\"name\":\"t\",\"type\":\"text\"}]},\"colour\":1}", &r);
    IT_ASSERT_ERROR(r, 400, "unknown_field");
    assert_non_null(strstr(it_err_msg(&r), "colour"));
    it_response_free(&r);
    post_project(g.mgr, "{\"name\":\"p\",\"media\":\"video\",\"template\":{\"controls\":[{\"name\":\"t\",\"type\":\"text\"}]}}", &r);
    IT_ASSERT_ERROR(r, 400, "invalid_field");
    it_response_free(&r);
    post_project(g.mgr, "{\"name\":7,\"media\":\"image\",\"template\":{\"controls\":[{\"name\":\"t\",\"type\":\"text\"}]}}", &r);
    IT_ASSERT_ERROR(r, 400, "invalid_field");
    it_response_free(&r);
    post_project(g.mgr, "{\"name\":\"p\",\"media\":\"image\",\"template\":[1]}", &r);
    IT_ASSERT_STATUS(r, 400);
    it_response_free(&r);
    post_project(g.mgr, "{\"name\":\"p\",\"media\":\"image\",\"template\":{\"controls\":[{\"name\":\"t\",\"type\":\"text\"}]},\"guidelines\":5}", &r);
    IT_ASSERT_ERROR(r, 400, "invalid_field");
    it_response_free(&r);
    post_project(g.mgr, "{\"name\":\"p\",\"media\":\"image\",\"template\":{\"controls\":[{\"name\":\"t\",\"type\":\"text\"}]},\"workflow\":\"fast\"}", &r);
    IT_ASSERT_STATUS(r, 400);
    it_response_free(&r);
}

static void test_templates(void **state)
{
    (void)state;
    /* every control type the contract names is accepted where it applies */
    const char *image_ok =
        "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"a\",\"b\"]},"
        "{\"name\":\"tags\",\"type\":\"multi_choice\",\"options\":[\"x\",\"y\",\"z\"]},"
        "{\"name\":\"note\",\"type\":\"text\"},"
        "{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"car\"]},"
        "{\"name\":\"shape\",\"type\":\"polygon\",\"labels\":[\"road\"]},"
        "{\"name\":\"pose\",\"type\":\"keypoints\",\"points\":[\"nose\",\"tail\"]}]}";
    assert_true(it_create_project(&g.srv, g.mgr, "all-image-controls", "image", image_ok) > 0);
    const char *audio_ok =
        "{\"controls\":[{\"name\":\"segs\",\"type\":\"audio_segments\",\"labels\":[\"speech\",\"noise\"]},"
        "{\"name\":\"words\",\"type\":\"transcription\"},"
        "{\"name\":\"lang\",\"type\":\"choice\",\"options\":[\"en\",\"de\"]}]}";
    assert_true(it_create_project(&g.srv, g.mgr, "all-audio-controls", "audio", audio_ok) > 0);

    expect_bad_template("image", "{\"controls\":[{\"name\":\"x\",\"type\":\"slider\"}]}", "slider",
                        "unknown type", NULL);
    expect_bad_template("audio", "{\"controls\":[{\"name\":\"b\",\"type\":\"bbox\",\"labels\":[\"car\"]}]}",
                        "bbox", "audio", NULL);
    expect_bad_template("image", "{\"controls\":[{\"name\":\"s\",\"type\":\"audio_segments\",\"labels\":[\"x\"]}]}",
                        "audio_segments", NULL);
    expect_bad_template("image", "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\"}]}", "options", NULL);
    expect_bad_template("image", "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[]}]}",
                        "options", NULL);
    expect_bad_template("image",
                        "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"a\"]},"
                        "{\"name\":\"label\",\"type\":\"text\"}]}",
                        "label", NULL);
    expect_bad_template("image", "{\"controls\":[]}", "controls", NULL);
    expect_bad_template("image", "{}", "controls", NULL);
    expect_bad_template("image",
                        "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"a\"],\"colour\":\"red\"}]}",
                        "colour", NULL);
    expect_bad_template("image", "{\"controls\":[{\"type\":\"text\"}]}", "name", NULL);
    expect_bad_template("image", "{\"controls\":[{\"name\":\"t\"}]}", "type", NULL);
    expect_bad_template("image", "{\"controls\":[\"text\"]}", NULL);
    expect_bad_template("image", "{\"controls\":[{\"name\":\"b\",\"type\":\"bbox\"}]}", "labels", NULL);
    expect_bad_template("image", "{\"controls\":[{\"name\":\"1abc\",\"type\":\"text\"}]}", "1abc", NULL);
    expect_bad_template("image", "{\"controls\":[{\"name\":\"t\",\"type\":\"text\"}],\"layout\":1}", "layout",
                        NULL);
}

static void test_workflow(void **state)
{
    (void)state;
    it_response r;
    /* partial workflow: given values kept, the rest filled */
    char *body = project_body("wf-custom", "image", TEMPLATE,
                              "{\"overlap\":7,\"quiz\":{\"size\":2},\"review\":{\"sample_rate\":0.25}}");
    post_project(g.mgr, body, &r);
    IT_ASSERT_STATUS(r, 201);
    json_t *wf = json_object_get(r.json, "workflow");
    assert_num(wf, "overlap", 7);
    assert_true(json_number_value(json_object_get(wf, "max_overlap")) >= 7);
    assert_num(json_object_get(wf, "quiz"), "size", 2);
    assert_num(json_object_get(wf, "quiz"), "pass", 0.75);
    assert_num(json_object_get(wf, "review"), "sample_rate", 0.25);
    assert_num(wf, "gold_rate", 0.1);
    assert_num(json_object_get(wf, "acceptance"), "aql", 1);
    it_response_free(&r);
    free(body);

    body = project_body("wf-full", "image", TEMPLATE,
                        "{\"overlap\":2,\"max_overlap\":4,\"gold_rate\":0.2,\"quiz\":{\"size\":3,\"pass\":0.5},"
                        "\"min_trust\":0.8,\"lease_seconds\":120,\"review\":{\"sample_rate\":1},"
                        "\"acceptance\":{\"aql\":2.5},\"prelabel\":{\"show\":true,\"auto_accept\":0.9,\"verify_rate\":0.2}}");
    post_project(g.mgr, body, &r);
    IT_ASSERT_STATUS(r, 201);
    wf = json_object_get(r.json, "workflow");
    assert_num(wf, "overlap", 2);
    assert_num(wf, "max_overlap", 4);
    assert_num(wf, "gold_rate", 0.2);
    assert_num(wf, "min_trust", 0.8);
    assert_num(wf, "lease_seconds", 120);
    assert_num(json_object_get(wf, "quiz"), "pass", 0.5);
    assert_num(json_object_get(wf, "acceptance"), "aql", 2.5);
    assert_true(json_is_true(json_object_get(json_object_get(wf, "prelabel"), "show")));
    assert_num(json_object_get(wf, "prelabel"), "auto_accept", 0.9);
    int64_t id = it_json_int(r.json, "id");
    it_response_free(&r);
    free(body);
    /* stored as normalised */
    assert_int_equal(it_requestf(&g.srv, "GET", g.mgr, NULL, &r, "/v1/projects/%lld", (long long)id), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_num(json_object_get(r.json, "workflow"), "max_overlap", 4);
    assert_num(json_object_get(json_object_get(r.json, "workflow"), "quiz"), "size", 3);
    it_response_free(&r);

    expect_bad_workflow("{\"overlap\":0}", "overlap");
    expect_bad_workflow("{\"overlap\":-2}", "overlap");
    expect_bad_workflow("{\"overlp\":3}", "overlp");
    expect_bad_workflow("{\"overlap\":4,\"max_overlap\":2}", "max_overlap");
    expect_bad_workflow("{\"gold_rate\":1.5}", "gold_rate");
    expect_bad_workflow("{\"overlap\":\"three\"}", "overlap");
    expect_bad_workflow("{\"overlap\":2.5}", "overlap");
    expect_bad_workflow("{\"quiz\":{\"pass\":2}}", "pass");
    expect_bad_workflow("{\"quiz\":{\"sise\":2}}", "sise");
    expect_bad_workflow("{\"quiz\":5}", "quiz");
    expect_bad_workflow("{\"lease_seconds\":0}", "lease_seconds");
    expect_bad_workflow("{\"prelabel\":{\"show\":\"yes\"}}", "show");
}

static void test_project_list_paging(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "page-%d", i);
        assert_true(it_create_project(&g.srv, g.mgr, name, "image", TEMPLATE) > 0);
    }
    /* the full list in one go */
    it_response r;
    assert_int_equal(it_request_json(&g.srv, "GET", "/v1/projects?limit=1000", g.mgr, NULL, &r), 0);
    IT_ASSERT_STATUS(r, 200);
    size_t total = json_array_size(json_object_get(r.json, "items"));
    assert_true(total >= 6);
    assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
    it_response_free(&r);

    /* pages of 2 cover the same projects exactly once, in order */
    int64_t seen[256];
    size_t n = 0;
    char cursor[64] = "";
    int pages = 0;
    for (;;) {
        if (cursor[0])
            assert_int_equal(it_requestf(&g.srv, "GET", g.consumer, NULL, &r, "/v1/projects?limit=2&cursor=%s", cursor), 0);
        else
            assert_int_equal(it_request_json(&g.srv, "GET", "/v1/projects?limit=2", g.consumer, NULL, &r), 0);
        IT_ASSERT_STATUS(r, 200);
        json_t *items = json_object_get(r.json, "items");
        assert_true(json_is_array(items));
        assert_true(json_array_size(items) <= 2);
        size_t i;
        json_t *p;
        json_array_foreach(items, i, p) {
            int64_t id = it_json_int(p, "id");
            assert_true(id > 0);
            for (size_t k = 0; k < n; k++)
                assert_true(seen[k] != id);
            if (n)
                assert_true(id > seen[n - 1]);
            assert_true(n < 256);
            seen[n++] = id;
            assert_true(*it_json_str(p, "name"));
        }
        json_t *next = json_object_get(r.json, "next_cursor");
        assert_true(json_is_null(next) || json_is_string(next));
        pages++;
        assert_true(pages < 200);
        if (json_is_null(next)) {
            it_response_free(&r);
            break;
        }
        assert_true(json_array_size(items) == 2);
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        it_response_free(&r);
    }
    assert_int_equal(n, total);
    assert_true(pages >= 3);

    /* bad paging arguments */
    const char *bad[] = {"/v1/projects?limit=0", "/v1/projects?limit=abc", "/v1/projects?limit=-1",
                         "/v1/projects?limit=100000", "/v1/projects?cursor=zzz"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(it_request_json(&g.srv, "GET", bad[i], g.mgr, NULL, &r), 0);
        if (r.status != 400)
            fprintf(stderr, "GET %s -> %ld %s\n", bad[i], r.status, r.body);
        IT_ASSERT_STATUS(r, 400);
        assert_true(strlen(it_err_code(&r)) > 0);
        it_response_free(&r);
    }
}

static void test_project_stats_empty(void **state)
{
    (void)state;
    it_response r;
    assert_int_equal(it_requestf(&g.srv, "GET", g.mgr, NULL, &r, "/v1/projects/%lld/stats", (long long)g.project), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(it_json_int(r.json, "project_id"), g.project);
    assert_int_equal(it_json_int(r.json, "items_total"), 0);
    assert_int_equal(it_json_int(r.json, "gold"), 0);
    json_t *items = json_object_get(r.json, "items");
    assert_true(json_is_object(items));
    json_t *nw = json_object_get(items, "new");
    assert_true(nw == NULL || json_integer_value(nw) == 0);
    it_response_free(&r);
}

/* ---- --max-body ------------------------------------------------------------------- */

typedef struct {
    const char *data;
    size_t len, off;
} chunk_src;

static size_t chunk_read(char *dst, size_t size, size_t nmemb, void *userp)
{
    chunk_src *c = userp;
    size_t n = size * nmemb;
    if (n > 100)
        n = 100; /* many small chunks */
    if (n > c->len - c->off)
        n = c->len - c->off;
    memcpy(dst, c->data + c->off, n);
    c->off += n;
    return n;
}

/* A raw chunked POST (no Content-Length), so the server must enforce the cap while
 * reading. Returns the HTTP status; the body goes to *body_out (malloc'd). */
static long chunked_post(it_server *s, const char *path, const char *token, const char *body,
                         char **body_out)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[512], auth[300];
    snprintf(url, sizeof url, "%s%s", s->base_url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Transfer-Encoding: chunked");
    h = curl_slist_append(h, "Expect:");
    chunk_src src = {body, strlen(body), 0};
    *body_out = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, chunk_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &src);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body_out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    CURLcode cc = curl_easy_perform(c);
    long st = 0;
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    else
        fprintf(stderr, "chunked POST %s: %s\n", path, curl_easy_strerror(cc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return st;
}

static void test_max_body(void **state)
{
    (void)state;
    it_server s;
    const char *args[] = {"--max-body", "1K", NULL};
    char *mgr = NULL;
    assert_int_equal(it_server_start_users(&s, args, &mgr, NULL, NULL), 0);
    assert_non_null(mgr);

    /* a small body is fine */
    it_response r;
    assert_int_equal(it_request_json(&s, "POST", "/v1/projects", mgr,
                                     "{\"name\":\"small\",\"media\":\"image\",\"template\":{\"controls\":[{\"name\":\"t\",\"type\":\"text\"}]}}",
                                     &r),
                     0);
    IT_ASSERT_STATUS(r, 201);
    int64_t project = it_json_int(r.json, "id");
    it_response_free(&r);

    /* 2 KiB of guidelines: over 1K */
    char big[2600];
    char pad[2049];
    memset(pad, 'g', 2048);
    pad[2048] = '\0';
    snprintf(big, sizeof big,
             "{\"name\":\"big\",\"media\":\"image\",\"template\":{\"controls\":[{\"name\":\"t\",\"type\":\"text\"}]},"
             "\"guidelines\":\"%s\"}",
             pad);
    IT_EXPECT_ERRORF(&s, "POST", mgr, big, 413, "too_large", "/v1/projects");
    IT_EXPECT_ERRORF(&s, "POST", s.admin_token, big, 413, "too_large", "/v1/users");

    /* the same without a Content-Length: the cap holds while reading */
    char *resp = NULL;
    long st = chunked_post(&s, "/v1/projects", mgr, big, &resp);
    if (st != 413)
        fprintf(stderr, "chunked oversized POST -> %ld %s\n", st, resp ? resp : "");
    assert_int_equal(st, 413);
    assert_non_null(resp);
    assert_non_null(strstr(resp, "too_large"));
    free(resp);
    resp = NULL;
    /* and a small chunked body still works */
    st = chunked_post(&s, "/v1/projects", mgr,
                      "{\"name\":\"chunked\",\"media\":\"image\",\"template\":{\"controls\":[{\"name\":\"t\",\"type\":\"text\"}]}}",
                      &resp);
    if (st != 201)
        fprintf(stderr, "chunked small POST -> %ld %s\n", st, resp ? resp : "");
    assert_int_equal(st, 201);
    free(resp);

    /* nothing was created by the refused requests */
    assert_int_equal(it_request_json(&s, "GET", "/v1/projects?limit=100", mgr, NULL, &r), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 2);
    it_response_free(&r);

    /* --max-body is about JSON bodies: a 4 KiB file upload is not limited by it */
    int64_t batch = it_create_batch(&s, mgr, project, "b", NULL);
    assert_true(batch > 0);
    char *file = malloc(4096);
    assert_non_null(file);
    memset(file, 'x', 4096);
    assert_int_equal(it_upload_bytes(&s, mgr, batch, "blob.jpg", file, 4096, &r), 0);
    IT_ASSERT_STATUS(r, 201);
    assert_int_equal(it_json_int(r.json, "size"), 4096);
    it_response_free(&r);
    free(file);

    /* the server survived all of it */
    IT_EXPECT_STATUSF(&s, "GET", NULL, NULL, 200, "/healthz");
    free(mgr);
    int stopped = it_server_stop(&s);
    it_server_cleanup(&s);
    assert_int_equal(stopped, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthz),
        cmocka_unit_test(test_admin_token_file),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_auth_required),
        cmocka_unit_test(test_me_per_role),
        cmocka_unit_test(test_users),
        cmocka_unit_test(test_json_body_errors),
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_role_checks),
        cmocka_unit_test(test_project_create_defaults),
        cmocka_unit_test(test_project_body_errors),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_workflow),
        cmocka_unit_test(test_project_list_paging),
        cmocka_unit_test(test_project_stats_empty),
        cmocka_unit_test(test_max_body),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
