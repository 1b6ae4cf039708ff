/* it_url_guard.c -- URL-list ingest must not become a way into the operator's
 * network (server-side request forgery).
 *
 * Without --url-allow-private, URLs that lead to loopback, private or link-local
 * addresses (including by name, e.g. localhost, and the cloud metadata address) are
 * rejected per file with code url_not_allowed, and nothing is fetched. With the
 * flag, the same loopback URL is attempted (and fails here only because nothing
 * listens on port 1).
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char *TEMPLATE =
    "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"]}]}";

/* Runs a URL batch and returns it when done (new reference). */
static json_t *run_urls(it_server *s, const char *token, const char *urls_json)
{
    int64_t project = it_create_project(s, token, "guard", "image", TEMPLATE);
    assert_true(project > 0);
    char source[1024];
    snprintf(source, sizeof source, "{\"kind\":\"urls\",\"urls\":%s}", urls_json);
    int64_t batch = it_create_batch(s, token, project, "urls", source);
    assert_true(batch > 0);
    json_t *b = it_wait_batch(s, token, batch, 120000);
    assert_non_null(b);
    return b;
}

static const char *code_of(json_t *batch, const char *file)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(batch, "errors"), i, e)
        if (strcmp(it_json_str(e, "file"), file) == 0)
            return it_json_str(e, "code");
    return "";
}

static void test_internal_addresses_refused(void **state)
{
    (void)state;
    it_server s;
    assert_int_equal(it_server_start(&s, NULL), 0);
    json_t *b = run_urls(&s, s.admin_token,
                         "[\"http://127.0.0.1:1/loop.jpg\",\"http://localhost:1/name.jpg\","
                         "\"http://169.254.169.254/latest/meta-data.jpg\",\"http://10.1.2.3/private.jpg\","
                         "\"http://[::1]:1/v6.jpg\"]");
    assert_string_equal(it_json_str(b, "state"), "done");
    assert_int_equal(it_json_int(b, "rejected"), 5);
    assert_int_equal(it_json_int(b, "accepted"), 0);
    const char *files[] = {"loop.jpg", "name.jpg", "meta-data.jpg", "private.jpg", "v6.jpg"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(code_of(b, files[i]), "url_not_allowed");
    json_decref(b);
    assert_int_equal(it_server_stop(&s), 0);
    it_server_cleanup(&s);
}

static void test_allowed_with_flag(void **state)
{
    (void)state;
    it_server s;
    const char *args[] = {"--url-allow-private", NULL};
    assert_int_equal(it_server_start(&s, args), 0);
    json_t *b = run_urls(&s, s.admin_token, "[\"http://127.0.0.1:1/loop.jpg\"]");
    /* Attempted: nothing listens there, so it fails to connect instead. */
    assert_string_equal(code_of(b, "loop.jpg"), "fetch_failed");
    json_decref(b);
    assert_int_equal(it_server_stop(&s), 0);
    it_server_cleanup(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_internal_addresses_refused),
        cmocka_unit_test(test_allowed_with_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
