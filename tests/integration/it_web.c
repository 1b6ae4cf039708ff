/* it_web.c -- integration tests of what tallyd adds for the browser client, without a
 * browser (that is tests/browser):
 *
 *  - the static files under /app/ (server/static.c): /app redirects to /app/, content
 *    types, a stable ETag (If-None-Match -> 304 and the CSP on HTML are checked by
 *    tests/browser, whose client can send and read any header), and 404 for
 *    traversal, hidden files, empty segments and odd characters;
 *  - GET /v1/projects/{id}/throughput: buckets with zeros filled in, the judgments of
 *    the current bucket counted, an unknown bucket 400, a worker 404, an unknown
 *    project 404.
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

static struct {
    it_server srv;
    char *mgr;
    char *worker;
} g;

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

static void test_static_files(void **state)
{
    (void)state;
    it_response r;
    assert_int_equal(it_request(&g.srv, "GET", "/app", NULL, NULL, NULL, 0, &r), 0);
    IT_ASSERT_STATUS(r, 301);
    it_response_free(&r);

    assert_int_equal(it_request(&g.srv, "GET", "/app/", NULL, NULL, NULL, 0, &r), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_non_null(strstr(r.content_type, "text/html"));
    assert_non_null(strstr(r.body, "<!doctype html>"));
    assert_true(r.etag[0] != '\0');
    it_response_free(&r);

    struct {
        const char *path, *type;
    } files[] = {
        {"/app/js/work.js", "text/javascript"},
        {"/app/css/app.css", "text/css"},
        {"/app/templates/predefined.json", "application/json"},
        {"/app/favicon.svg", "image/svg+xml"},
        {"/app/controls/bbox.js", "text/javascript"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        assert_int_equal(it_request(&g.srv, "GET", files[i].path, NULL, NULL, NULL, 0, &r), 0);
        IT_ASSERT_STATUS(r, 200);
        if (!strstr(r.content_type, files[i].type))
            fprintf(stderr, "%s: content type %s\n", files[i].path, r.content_type);
        assert_non_null(strstr(r.content_type, files[i].type));
        it_response_free(&r);
    }

    /* The ETag names the file's version: unchanged file, unchanged ETag. */
    assert_int_equal(it_request(&g.srv, "GET", "/app/js/api.js", NULL, NULL, NULL, 0, &r), 0);
    IT_ASSERT_STATUS(r, 200);
    char etag[128];
    snprintf(etag, sizeof etag, "%s", r.etag);
    it_response_free(&r);
    assert_true(etag[0] != '\0');
    assert_int_equal(it_request(&g.srv, "GET", "/app/js/api.js", NULL, NULL, NULL, 0, &r), 0);
    assert_string_equal(r.etag, etag);
    it_response_free(&r);

    const char *refused[] = {
        "/app/../CMakeLists.txt", "/app/%2e%2e/CMakeLists.txt", "/app/js/..%2f..%2fCMakeLists.txt",
        "/app/.hidden", "/app/js//api.js", "/app/js/", "/app/no-such.html", "/app/js/a%00b.js",
        "/app/js/%7e.js",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(it_request(&g.srv, "GET", refused[i], NULL, NULL, NULL, 0, &r), 0);
        if (r.status != 404)
            fprintf(stderr, "GET %s -> %ld\n", refused[i], r.status);
        IT_ASSERT_STATUS(r, 404);
        it_response_free(&r);
    }
}

static void test_throughput(void **state)
{
    (void)state;
    int64_t project = it_post_project(
        &g.srv, g.mgr,
        "{\"name\":\"web-throughput\",\"media\":\"image\",\"workflow\":{\"overlap\":1,\"gold_rate\":0,"
        "\"quiz\":{\"size\":0}},\"template\":{\"controls\":[{\"name\":\"label\",\"type\":\"choice\","
        "\"options\":[\"cat\",\"dog\"]}]}}");
    it_add_jpegs(&g.srv, g.mgr, project, "tally-web", "img", 2, 1);

    json_t *empty = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/throughput",
                                     (long long)project);
    assert_string_equal(it_json_str(empty, "bucket"), "hour");
    assert_int_equal(it_json_int(empty, "bucket_seconds"), 3600);
    assert_int_equal(json_array_size(json_object_get(empty, "series")), 48);
    assert_int_equal(it_json_int(empty, "total"), 0);
    json_decref(empty);

    for (int i = 0; i < 2; i++) {
        int64_t a = it_take(&g.srv, g.worker, project, NULL);
        IT_EXPECT_STATUSF(&g.srv, "POST", g.worker, "{\"answer\":{\"label\":\"cat\"}}", 200,
                          "/v1/assignments/%lld/submit", (long long)a);
    }
    json_t *t = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/throughput?bucket=minute",
                                 (long long)project);
    json_t *series = json_object_get(t, "series");
    assert_int_equal(json_array_size(series), 120);
    assert_int_equal(it_json_int(t, "total"), 2);
    /* Both judgments are in the last minute or two (a minute boundary may fall between). */
    int64_t recent = 0;
    for (size_t i = json_array_size(series) - 2; i < json_array_size(series); i++)
        recent += it_json_int(json_array_get(series, i), "judgments");
    assert_int_equal(recent, 2);
    json_t *last = json_array_get(series, json_array_size(series) - 1);
    assert_true(it_json_int(last, "workers") <= 1);
    json_decref(t);

    t = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/throughput?bucket=day",
                         (long long)project);
    assert_int_equal(json_array_size(json_object_get(t, "series")), 30);
    assert_int_equal(it_json_int(t, "total"), 2);
    json_decref(t);

    IT_EXPECT_ERRORF(&g.srv, "GET", g.mgr, NULL, 400, "invalid_query", "/v1/projects/%lld/throughput?bucket=week",
                     (long long)project);
    IT_EXPECT_ERRORF(&g.srv, "GET", g.worker, NULL, 404, "not_found", "/v1/projects/%lld/throughput",
                     (long long)project);
    IT_EXPECT_ERRORF(&g.srv, "GET", g.mgr, NULL, 404, "not_found", "/v1/projects/%d/throughput", 987654);
    IT_EXPECT_ERRORF(&g.srv, "GET", NULL, NULL, 401, "unauthorized", "/v1/projects/%lld/throughput",
                     (long long)project);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_static_files),
        cmocka_unit_test(test_throughput),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
