/* it_work_recovery.c -- crowd work over time and crashes, against a real tallyd:
 *
 *  1. Lease expiry: lease_seconds 10 (PATCH), overlap 1, one item. Worker A takes it,
 *     B gets 204; after 11 s B gets the item, A's submit is 409 lease_expired (and
 *     A's assignment shows "expired"), B's submit 200.
 *  2. An acknowledged submission survives kill -9: 30 judgments acknowledged (ids
 *     recorded), SIGKILL, restart: all 30 are listed with their answers, and
 *     resubmitting one is still idempotent (same judgment id).
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
#include <time.h>

#include <cmocka.h>

static struct {
    it_server srv;
    char *mgr;
    int seq;
} g;

static const char *TEMPLATE =
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

/* ---- helpers ------------------------------------------------------------------------ */

static char *new_user(const char *role)
{
    return it_new_user(&g.srv, &g.seq, role);
}

static int64_t make_project(int overlap)
{
    char *body = NULL;
    assert_true(asprintf(&body,
                         "{\"name\":\"work-rec-%d\",\"media\":\"image\",\"template\":%s,\"workflow\":"
                         "{\"overlap\":%d,\"quiz\":{\"size\":0},\"gold_rate\":0,\"min_trust\":0}}",
                         ++g.seq, TEMPLATE, overlap) > 0);
    int64_t id = it_post_project(&g.srv, g.mgr, body);
    free(body);
    return id;
}

/* n distinct JPEG items: photo.jpg with a COM segment "tally-rec N" after the SOI. */
static void add_jpegs(int64_t project, int n, int first)
{
    it_add_jpegs(&g.srv, g.mgr, project, "tally-rec", "rec", n, first);
}

/* work/next: the 200 body (new reference) or NULL on 204. */
static json_t *next_task(const char *tok, int64_t project)
{
    return it_next_task(&g.srv, tok, project);
}

static int64_t take(const char *tok, int64_t project, int64_t *item)
{
    return it_take(&g.srv, tok, project, item);
}

static int64_t submit_ok(const char *tok, int64_t a, const char *body)
{
    it_response r;
    assert_int_equal(it_requestf(&g.srv, "POST", tok, body, &r, "/v1/assignments/%lld/submit", (long long)a), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_true(json_is_true(json_object_get(r.json, "ok")));
    int64_t j = it_json_int(r.json, "judgment_id");
    assert_true(j > 0);
    it_response_free(&r);
    return j;
}

/* RFC 3339 UTC "YYYY-MM-DDTHH:MM:SS[.fff]Z" to a time_t, or -1. */
static time_t parse_time(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return -1;
    return timegm(&tm);
}

/* ---- 1. lease expiry ---------------------------------------------------------------- */

static void test_lease_expiry(void **state)
{
    (void)state;
    int64_t p = make_project(1);
    add_jpegs(p, 1, 100);

    it_response r;
    assert_int_equal(it_requestf(&g.srv, "PATCH", g.mgr, "{\"workflow\":{\"lease_seconds\":10}}", &r,
                                 "/v1/projects/%lld", (long long)p),
                     0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal(it_json_int(json_object_get(r.json, "workflow"), "lease_seconds"), 10);
    assert_int_equal(it_json_int(json_object_get(r.json, "workflow"), "overlap"), 1);
    it_response_free(&r);

    char *wa = new_user("worker"), *wb = new_user("worker");
    json_t *t = next_task(wa, p);
    assert_non_null(t);
    time_t now = time(NULL);
    long long t0 = it_now_ms();
    int64_t a = it_json_int(t, "assignment_id");
    int64_t item = it_json_int(json_object_get(t, "item"), "id");
    time_t exp = parse_time(it_json_str(t, "lease_expires_at"));
    if (exp < 0)
        fprintf(stderr, "lease_expires_at \"%s\" is not RFC 3339\n", it_json_str(t, "lease_expires_at"));
    assert_true(exp > 0);
    if (exp < now + 8 || exp > now + 12)
        fprintf(stderr, "lease_expires_at %s is not about now + 10 s\n", it_json_str(t, "lease_expires_at"));
    assert_true(exp >= now + 8 && exp <= now + 12);
    assert_int_equal(it_json_int(t, "lease_seconds"), 10);
    json_decref(t);

    /* the single slot is leased: B gets nothing */
    t = next_task(wb, p);
    assert_null(t);

    /* meanwhile, in a second project with 10 s leases, C submits before its lease ends */
    int64_t p2 = make_project(1);
    add_jpegs(p2, 1, 150);
    IT_EXPECT_STATUSF(&g.srv, "PATCH", g.mgr, "{\"workflow\":{\"lease_seconds\":10}}", 200, "/v1/projects/%lld",
                      (long long)p2);
    char *wc = new_user("worker");
    int64_t c = take(wc, p2, NULL);
    int64_t jc = submit_ok(wc, c, "{\"answer\":{\"label\":\"cat\"}}");

    /* wait out the lease (11 s from the lease) */
    long long left = 11000 - (it_now_ms() - t0);
    if (left > 0)
        it_sleep_ms((int)left);

    /* B now gets the item (expiry frees the slot without a sweep) */
    int64_t b_item;
    int64_t b = take(wb, p, &b_item);
    assert_int_equal(b_item, item);
    assert_true(b != a);

    /* A's late submit: 409 lease_expired; its assignment shows expired */
    IT_EXPECT_ERRORF(&g.srv, "POST", wa, "{\"answer\":{\"label\":\"cat\"}}", 409, "lease_expired",
                     "/v1/assignments/%lld/submit", (long long)a);
    assert_int_equal(it_getf(&g.srv, wa, &r, "/v1/assignments/%lld", (long long)a), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_string_equal(it_json_str(r.json, "state"), "expired");
    it_response_free(&r);
    /* A cannot read the item any more */
    IT_EXPECT_STATUSF(&g.srv, "GET", wa, NULL, 404, "/v1/items/%lld", (long long)item);

    int64_t j = submit_ok(wb, b, "{\"answer\":{\"label\":\"dog\"}}");
    /* still 409 for A after B's submit; nothing more for anyone */
    IT_EXPECT_ERRORF(&g.srv, "POST", wa, "{\"answer\":{\"label\":\"cat\"}}", 409, "lease_expired",
                     "/v1/assignments/%lld/submit", (long long)a);
    assert_null(next_task(wa, p));

    /* C's lease time has passed too, but C had submitted in time: the resubmit is
     * still idempotent (200, same judgment), a different answer already_submitted */
    assert_int_equal(submit_ok(wc, c, "{\"answer\":{\"label\":\"cat\"}}"), jc);
    IT_EXPECT_ERRORF(&g.srv, "POST", wc, "{\"answer\":{\"label\":\"dog\"}}", 409, "already_submitted",
                     "/v1/assignments/%lld/submit", (long long)c);
    assert_int_equal(it_getf(&g.srv, wc, &r, "/v1/assignments/%lld", (long long)c), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_string_equal(it_json_str(r.json, "state"), "submitted");
    it_response_free(&r);
    assert_null(next_task(wc, p2));
    free(wc);

    /* exactly one judgment: B's */
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/projects/%lld/judgments", (long long)p), 0);
    IT_ASSERT_STATUS(r, 200);
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 1);
    assert_int_equal(it_json_int(json_array_get(items, 0), "id"), j);
    assert_int_equal(it_json_int(json_array_get(items, 0), "assignment_id"), b);
    it_response_free(&r);
    free(wa);
    free(wb);
}

/* ---- 2. acknowledged submissions survive kill -9 ------------------------------------ */

#define N_ITEMS 10
#define N_WORKERS 3
#define N_JUDGMENTS (N_ITEMS * N_WORKERS)

static void test_submit_survives_kill(void **state)
{
    (void)state;
    int64_t p = make_project(N_WORKERS);
    add_jpegs(p, N_ITEMS, 200);
    char *w[N_WORKERS];
    for (int i = 0; i < N_WORKERS; i++)
        w[i] = new_user("worker");

    int64_t jid[N_JUDGMENTS], asg[N_JUDGMENTS];
    int owner[N_JUDGMENTS];
    int n = 0;
    for (int round = 0; round < N_ITEMS; round++)
        for (int i = 0; i < N_WORKERS; i++) {
            asg[n] = take(w[i], p, NULL);
            owner[n] = i;
            jid[n] = submit_ok(w[i], asg[n],
                               (n % 2) ? "{\"answer\":{\"label\":\"cat\"},\"duration_ms\":1234}"
                                       : "{\"answer\":{\"label\":\"dog\"},\"duration_ms\":1234}");
            n++;
        }
    assert_int_equal(n, N_JUDGMENTS);
    for (int i = 0; i < N_WORKERS; i++)
        assert_null(next_task(w[i], p));

    /* crash right after the last acknowledgement */
    it_server_kill(&g.srv);
    assert_int_equal(it_server_restart(&g.srv), 0);

    it_response r;
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/projects/%lld/judgments?limit=1000", (long long)p), 0);
    IT_ASSERT_STATUS(r, 200);
    json_t *items = json_object_get(r.json, "items");
    if (json_array_size(items) != N_JUDGMENTS)
        fprintf(stderr, "after kill -9: %zu judgments listed, %d acknowledged\n", json_array_size(items),
                N_JUDGMENTS);
    assert_int_equal(json_array_size(items), N_JUDGMENTS);
    for (int k = 0; k < N_JUDGMENTS; k++) {
        json_t *found = NULL;
        size_t i;
        json_t *j;
        json_array_foreach(items, i, j) if (it_json_int(j, "id") == jid[k]) found = j;
        if (!found)
            fprintf(stderr, "acknowledged judgment %lld lost in the crash\n", (long long)jid[k]);
        assert_non_null(found);
        assert_int_equal(it_json_int(found, "assignment_id"), asg[k]);
        assert_string_equal(it_json_str(json_object_get(found, "answer"), "label"), (k % 2) ? "cat" : "dog");
        assert_int_equal(it_json_int(found, "duration_ms"), 1234);
    }
    it_response_free(&r);

    /* idempotency survives the restart; the assignment is still submitted */
    assert_int_equal(submit_ok(w[owner[0]], asg[0], "{\"answer\":{\"label\":\"dog\"},\"duration_ms\":1234}"),
                     jid[0]);
    IT_EXPECT_ERRORF(&g.srv, "POST", w[owner[1]], "{\"answer\":{\"label\":\"dog\"}}", 409, "already_submitted",
                     "/v1/assignments/%lld/submit", (long long)asg[1]);
    for (int i = 0; i < N_WORKERS; i++) {
        assert_null(next_task(w[i], p));
        free(w[i]);
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_expiry),
        cmocka_unit_test(test_submit_survives_kill),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
