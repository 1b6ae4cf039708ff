/* test_server_routes.c -- unit tests for the route table and path matching
 * (server/routes.c via server/http.h): captures, rejection of malformed ids and
 * empty tails, method mismatches, and the consistency of the table itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Matches with a fresh zeroed request; returns the route (may be NULL). */
static const tly_route *match(tly_req *r, const char *method, const char *path, int *mismatch)
{
    memset(r, 0, sizeof *r);
    *mismatch = -1;
    return tly_route_match(r, method, path, mismatch);
}

static void expect_route(const char *method, const char *path, const char *name, int64_t id0,
                         int64_t id1)
{
    tly_req r;
    int mm;
    const tly_route *rt = match(&r, method, path, &mm);
    if (!rt)
        fail_msg("%s %s: no route (method_mismatch=%d), want %s", method, path, mm, name);
    if (strcmp(rt->name, name) != 0)
        fail_msg("%s %s: matched %s, want %s", method, path, rt->name, name);
    assert_int_equal(r.ids[0], id0);
    assert_int_equal(r.ids[1], id1);
}

static void expect_none(const char *method, const char *path, int want_mismatch)
{
    tly_req r;
    int mm;
    const tly_route *rt = match(&r, method, path, &mm);
    if (rt)
        fail_msg("%s %s: should not match, matched %s", method, path, rt->name);
    if (mm != want_mismatch)
        fail_msg("%s %s: method_mismatch=%d, want %d", method, path, mm, want_mismatch);
}

static void test_static_routes(void **state)
{
    (void)state;
    expect_route("GET", "/healthz", "healthz", 0, 0);
    expect_route("GET", "/metrics", "metrics", 0, 0);
    expect_route("GET", "/v1/me", "me", 0, 0);
    expect_route("POST", "/v1/users", "create_user", 0, 0);
    /* Same path, different methods, different routes. */
    expect_route("POST", "/v1/projects", "create_project", 0, 0);
    expect_route("GET", "/v1/projects", "list_projects", 0, 0);

    tly_req r;
    int mm;
    const tly_route *rt = match(&r, "GET", "/healthz", &mm);
    assert_non_null(rt);
    assert_int_equal(mm, 0);
    assert_string_equal(rt->method, "GET");
    assert_string_equal(rt->pattern, "/healthz");
    assert_true(rt->roles & R_PUBLIC);
    assert_non_null(rt->handle);
}

static void test_head_is_get(void **state)
{
    (void)state;
    expect_route("HEAD", "/healthz", "healthz", 0, 0);
    expect_route("HEAD", "/v1/items/42/media", "item_media", 42, 0);
    /* HEAD on a path that has no GET is a method mismatch. */
    expect_none("HEAD", "/v1/users", 1);
}

static void test_id_captures(void **state)
{
    (void)state;
    expect_route("GET", "/v1/items/42/media", "item_media", 42, 0);
    expect_route("GET", "/v1/items/42", "get_item", 42, 0);
    expect_route("GET", "/v1/items/1/thumbnail", "item_thumbnail", 1, 0);
    expect_route("GET", "/v1/items/7/waveform", "item_waveform", 7, 0);
    expect_route("PUT", "/v1/items/9/gold", "set_gold", 9, 0);
    expect_route("DELETE", "/v1/items/9/gold", "clear_gold", 9, 0);
    expect_route("GET", "/v1/projects/123", "get_project", 123, 0);
    expect_route("GET", "/v1/projects/5/stats", "project_stats", 5, 0);
    expect_route("POST", "/v1/projects/5/batches", "create_batch", 5, 0);
    expect_route("GET", "/v1/projects/5/batches", "list_batches", 5, 0);
    expect_route("GET", "/v1/projects/5/items", "list_items", 5, 0);
    expect_route("GET", "/v1/batches/3", "get_batch", 3, 0);
    expect_route("GET", "/v1/batches/3/errors", "batch_errors", 3, 0);
    expect_route("POST", "/v1/batches/3/close", "close_batch", 3, 0);
    /* Large ids within the accepted range. */
    expect_route("GET", "/v1/items/999999999999999999", "get_item", 999999999999999999LL, 0);
    expect_route("GET", "/v1/items/123456789012/media", "item_media", 123456789012LL, 0);
}

static void test_bad_ids(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "/v1/items/0",
        "/v1/items/-1",
        "/v1/items/abc",
        "/v1/items/99999999999999999999",
        "/v1/items/9999999999999999999999999999999999",
        "/v1/items/42abc",
        "/v1/items/4 2",
        "/v1/items/+42",
        "/v1/items/0x2a",
        "/v1/items/1.5",
        "/v1/items/",
        "/v1/items//media",
        "/v1/items/0/media",
        "/v1/items/-3/media",
        "/v1/items/abc/media",
        "/v1/items/99999999999999999999/media",
        "/v1/projects/0/batches",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        expect_none("GET", paths[i], 0);
        expect_none("POST", paths[i], 0);
    }
}

static void test_trailing_and_extra_segments(void **state)
{
    (void)state;
    expect_none("GET", "/v1/items/42/", 0);
    expect_none("GET", "/v1/items/42/media/", 0);
    expect_none("GET", "/v1/items/42/media/x", 0);
    expect_none("GET", "/v1/items/42/medi", 0);
    expect_none("GET", "/v1/items/42/mediaa", 0);
    expect_none("GET", "/healthz/", 0);
    expect_none("GET", "/healthzz", 0);
    expect_none("GET", "/healt", 0);
    expect_none("GET", "/v1/me/", 0);
    expect_none("GET", "//v1/me", 0);
    expect_none("GET", "/V1/ME", 0);
}

static void test_tail_capture(void **state)
{
    (void)state;
    tly_req r;
    int mm;
    const tly_route *rt = match(&r, "PUT", "/v1/batches/7/files/a.jpg", &mm);
    assert_non_null(rt);
    assert_string_equal(rt->name, "upload_file");
    assert_int_equal(r.ids[0], 7);
    assert_non_null(r.tail);
    assert_string_equal(r.tail, "a.jpg");
    assert_true(rt->flags & F_STREAM_BODY);
    assert_non_null(rt->stream_begin);
    assert_non_null(rt->stream_chunk);

    /* The tail is the whole rest of the path. */
    rt = match(&r, "PUT", "/v1/batches/12/files/dir/sub/b c.png", &mm);
    assert_non_null(rt);
    assert_int_equal(r.ids[0], 12);
    assert_string_equal(r.tail, "dir/sub/b c.png");

    /* A one-character tail is enough. */
    rt = match(&r, "PUT", "/v1/batches/7/files/x", &mm);
    assert_non_null(rt);
    assert_string_equal(r.tail, "x");

    /* Empty tail or missing separator: no match. */
    expect_none("PUT", "/v1/batches/7/files/", 0);
    expect_none("PUT", "/v1/batches/7/files", 0);
    expect_none("PUT", "/v1/batches/7/filesa.jpg", 0);
    expect_none("PUT", "/v1/batches/0/files/a.jpg", 0);
    expect_none("PUT", "/v1/batches/x/files/a.jpg", 0);

    /* Long tails are captured whole. */
    char path[3000];
    int n = snprintf(path, sizeof path, "/v1/batches/7/files/");
    memset(path + n, 'a', 2000);
    path[n + 2000] = '\0';
    rt = match(&r, "PUT", path, &mm);
    if (rt) {   /* a length cap is allowed; a truncated capture is not */
        assert_non_null(r.tail);
        assert_int_equal(strlen(r.tail), 2000);
    } else {
        assert_int_equal(mm, 0);
    }

    /* Other methods on an upload path are a mismatch. */
    expect_none("GET", "/v1/batches/7/files/a.jpg", 1);
    expect_none("POST", "/v1/batches/7/files/a.jpg", 1);
}

static void test_method_mismatch(void **state)
{
    (void)state;
    expect_none("POST", "/v1/me", 1);
    expect_none("DELETE", "/v1/me", 1);
    expect_none("PUT", "/healthz", 1);
    expect_none("POST", "/v1/items/42", 1);
    expect_none("GET", "/v1/items/42/gold", 1);
    expect_none("PATCH", "/v1/projects", 1);
    expect_none("GET", "/v1/batches/3/close", 1);
    expect_none("get", "/healthz", 1);   /* methods are case-sensitive */
}

static void test_unknown_paths(void **state)
{
    (void)state;
    expect_none("GET", "/", 0);
    expect_none("GET", "", 0);
    expect_none("GET", "/v1", 0);
    expect_none("GET", "/v1/", 0);
    expect_none("GET", "/v1/nope", 0);
    expect_none("POST", "/v1/nope", 0);
    expect_none("GET", "/v2/items/42", 0);
    expect_none("GET", "/v1/items/42/unknown", 0);
    expect_none("DELETE", "/v1/unknown/1", 0);
}

static void test_route_table_consistency(void **state)
{
    (void)state;
    size_t n = 0;
    for (const tly_route *rt = tly_routes; rt->method; rt++, n++) {
        assert_non_null(rt->pattern);
        assert_non_null(rt->name);
        assert_true(rt->name[0] != '\0');
        assert_int_equal(rt->pattern[0], '/');
        assert_non_null(rt->handle);
        assert_true(rt->roles != 0);
        if (rt->flags & F_STREAM_BODY) {
            assert_non_null(rt->stream_begin);
            assert_non_null(rt->stream_chunk);
        }
        /* Names are unique, and so are method + pattern pairs. */
        for (const tly_route *o = tly_routes; o != rt; o++) {
            if (strcmp(o->name, rt->name) == 0)
                fail_msg("route name '%s' used twice", rt->name);
            if (strcmp(o->method, rt->method) == 0 && strcmp(o->pattern, rt->pattern) == 0)
                fail_msg("route %s %s listed twice", rt->method, rt->pattern);
        }
    }
    assert_true(n >= 20);
}

/* Every route is reachable: an instance of its own pattern matches it (no earlier
 * route shadows it) and captures the ids placed in it. */
static void test_every_route_reachable(void **state)
{
    (void)state;
    for (const tly_route *rt = tly_routes; rt->method; rt++) {
        char path[512];
        size_t len = 0;
        int64_t want[4] = {0};
        int nids = 0;
        for (const char *p = rt->pattern; *p;) {
            if (*p == ':') {
                want[nids] = 1000 + 17 * nids + (int64_t)(rt - tly_routes);
                len += (size_t)snprintf(path + len, sizeof path - len, "%lld", (long long)want[nids]);
                nids++;
                p = strchr(p, '/');
                if (!p)
                    break;
            } else if (*p == '*') {
                len += (size_t)snprintf(path + len, sizeof path - len, "file.bin");
                p++;
            } else {
                path[len++] = *p++;
            }
            assert_true(len < sizeof path);
        }
        path[len] = '\0';
        tly_req r;
        int mm;
        const tly_route *got = match(&r, rt->method, path, &mm);
        if (got != rt)
            fail_msg("%s %s (from %s) matched %s", rt->method, path, rt->pattern, got ? got->name : "nothing");
        for (int i = 0; i < nids; i++)
            assert_int_equal(r.ids[i], want[i]);
        if (strchr(rt->pattern, '*'))
            assert_string_equal(r.tail, "file.bin");
    }
}

static void test_route_allowed(void **state)
{
    (void)state;
    char out[128];
    tly_route_allowed("/v1/items/5/gold", out, sizeof out);
    assert_non_null(strstr(out, "PUT"));
    assert_non_null(strstr(out, "DELETE"));
    assert_null(strstr(out, "GET"));
    tly_route_allowed("/v1/projects", out, sizeof out);
    assert_non_null(strstr(out, "GET"));
    assert_non_null(strstr(out, "POST"));
    assert_int_equal(strlen(out), strlen("GET, POST"));
    tly_route_allowed("/healthz", out, sizeof out);
    assert_string_equal(out, "GET");
    tly_route_allowed("/v1/batches/7/files/a.jpg", out, sizeof out);
    assert_string_equal(out, "PUT");
    tly_route_allowed("/v1/nope", out, sizeof out);
    assert_string_equal(out, "");
    tly_route_allowed("/v1/items/0/gold", out, sizeof out);
    assert_string_equal(out, "");

    /* A buffer too small for every method holds whole method names only, never a
     * cut one such as "PUT, D". */
    char small[8];
    tly_route_allowed("/v1/items/5/gold", small, sizeof small);
    assert_true(strlen(small) < sizeof small);
    const char *tokens[] = {"", "PUT", "DELETE", "PUT, DELETE", "DELETE, PUT"};
    int whole = 0;
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++)
        whole |= strcmp(small, tokens[i]) == 0;
    if (!whole)
        fail_msg("tly_route_allowed into 8 bytes gave a cut method list: \"%s\"", small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_static_routes),
        cmocka_unit_test(test_head_is_get),
        cmocka_unit_test(test_id_captures),
        cmocka_unit_test(test_bad_ids),
        cmocka_unit_test(test_trailing_and_extra_segments),
        cmocka_unit_test(test_tail_capture),
        cmocka_unit_test(test_method_mismatch),
        cmocka_unit_test(test_unknown_paths),
        cmocka_unit_test(test_route_table_consistency),
        cmocka_unit_test(test_every_route_reachable),
        cmocka_unit_test(test_route_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
