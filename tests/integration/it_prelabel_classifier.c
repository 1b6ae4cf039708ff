/* it_prelabel_classifier.c -- the built-in image classifier end to end: an image
 * project with a choice control ("horizontal" / "vertical" stripes) gets the
 * "image-classifier" model; 120 synthetic stripe PNGs (random period, phase and noise,
 * generated here) are ingested. While the project has fewer accepted labels than
 * prelabel.min_train the model predicts nothing and reports no error (items wait);
 * a worker labels items through work/next + submit as the crowd would; once enough
 * results are accepted the model fits in the background and predicts the remaining
 * items with calibrated scores, and the confident ones are accepted per
 * prelabel.auto_accept (method "model"), all correctly. Bad requests: a template
 * without a choice control and an audio project get 422 template_unsuitable.
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

#include <cmocka.h>

#define SIDE 32
#define ITEMS 120
#define MIN_TRAIN 40

static struct {
    it_server srv;
    char *mgr;
    int seq;
} g;

/* ---- a minimal PNG writer (8-bit gray, zlib "stored" blocks: no compression) -------------- */

static uint32_t crc32_of(const unsigned char *p, size_t n, uint32_t crc)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Appends a chunk (length, type, data, CRC) at out + *len. */
static void chunk(unsigned char *out, size_t *len, const char *type, const unsigned char *data, size_t n)
{
    put32(out + *len, (uint32_t)n);
    memcpy(out + *len + 4, type, 4);
    if (n)
        memcpy(out + *len + 8, data, n);
    put32(out + *len + 8 + n, crc32_of(out + *len + 4, n + 4, 0));
    *len += 12 + n;
}

/* A SIDE x SIDE gray PNG of pixels (malloc'd; its length in *len). */
static unsigned char *png_gray(const unsigned char *pixels, size_t *len)
{
    size_t raw_len = (size_t)SIDE * (SIDE + 1);   /* a filter byte (0) per row */
    unsigned char *raw = malloc(raw_len), *z = malloc(raw_len + 11), *out = malloc(raw_len + 128);
    assert_non_null(raw);
    assert_non_null(z);
    assert_non_null(out);
    for (int y = 0; y < SIDE; y++) {
        raw[(size_t)y * (SIDE + 1)] = 0;
        memcpy(raw + (size_t)y * (SIDE + 1) + 1, pixels + (size_t)y * SIDE, SIDE);
    }
    uint32_t a = 1, b = 0;   /* Adler-32 of the raw data */
    for (size_t i = 0; i < raw_len; i++) {
        a = (a + raw[i]) % 65521;
        b = (b + a) % 65521;
    }
    size_t zn = 0;
    z[zn++] = 0x78;
    z[zn++] = 0x01;
    z[zn++] = 0x01;   /* final block, stored */
    z[zn++] = (unsigned char)(raw_len & 0xff);
    z[zn++] = (unsigned char)(raw_len >> 8);
    z[zn++] = (unsigned char)(~raw_len & 0xff);
    z[zn++] = (unsigned char)((~raw_len >> 8) & 0xff);
    memcpy(z + zn, raw, raw_len);
    zn += raw_len;
    put32(z + zn, (b << 16) | a);
    zn += 4;
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char ihdr[13];
    put32(ihdr, SIDE);
    put32(ihdr + 4, SIDE);
    ihdr[8] = 8;   /* bit depth */
    ihdr[9] = 0;   /* grayscale */
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    size_t n = 0;
    memcpy(out, sig, 8);
    n = 8;
    chunk(out, &n, "IHDR", ihdr, sizeof ihdr);
    chunk(out, &n, "IDAT", z, zn);
    chunk(out, &n, "IEND", NULL, 0);
    free(raw);
    free(z);
    *len = n;
    return out;
}

/* Stripes across (horizontal) or down (vertical), random period / phase, plus noise. */
static unsigned char *stripes(int vertical, unsigned *seed, size_t *len)
{
    unsigned char px[SIDE * SIDE];
    int period = 4 + (int)(rand_r(seed) % 5), phase = (int)(rand_r(seed) % 8);
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            int t = ((vertical ? x : y) + phase) % period < period / 2;
            int v = (t ? 200 : 50) + (int)(rand_r(seed) % 41) - 20;
            px[y * SIDE + x] = (unsigned char)v;
        }
    return png_gray(px, len);
}

/* ---- steps ---------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    curl_global_init(CURL_GLOBAL_ALL);
    return it_server_start_users(&g.srv, NULL, &g.mgr, NULL, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = it_server_finish(&g.srv);
    free(g.mgr);
    curl_global_cleanup();
    return rc;
}

static const char *TEMPLATE = "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"horizontal\","
                              "\"vertical\"]}]}";

static size_t prediction_count(int64_t item)
{
    json_t *list = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/items/%lld/predictions", (long long)item);
    size_t n = json_array_size(json_object_get(list, "items"));
    json_decref(list);
    return n;
}

/* The item's true class: the first letter of its name ("h..." / "v..."). */
static const char *truth_of(json_t *items, int64_t id)
{
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
        if (it_json_int(it, "id") == id)
            return it_json_str(it, "name")[0] == 'v' ? "vertical" : "horizontal";
    fail_msg("item %lld is not in the project", (long long)id);
    return "";
}

/* The worker labels n items, truthfully (tasks do not show names: looked up in items).
 * may_run_out: stop early when no task is left (the model may have finished the rest).
 * Returns how many it labelled. */
static int label_items(const char *worker, int64_t project, json_t *items, int n, int may_run_out)
{
    for (int k = 0; k < n; k++) {
        json_t *t = it_next_task(&g.srv, worker, project);
        if (!t && may_run_out)
            return k;
        assert_non_null(t);
        const char *truth = truth_of(items, it_json_int(json_object_get(t, "item"), "id"));
        char body[96];
        snprintf(body, sizeof body, "{\"answer\":{\"label\":\"%s\"}}", truth);
        json_decref(it_json_requestf(&g.srv, "POST", worker, body, 200, "/v1/assignments/%lld/submit",
                                     (long long)it_json_int(t, "assignment_id")));
        json_decref(t);
    }
    return n;
}

/* Items of the project in a state (GET /stats). */
static int64_t state_count(int64_t project, const char *state)
{
    json_t *stats = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/stats", (long long)project);
    int64_t n = it_json_int(json_object_get(stats, "items"), state);
    json_decref(stats);
    return n < 0 ? 0 : n;
}

static void wait_done(int64_t project, int64_t n)
{
    long long deadline = it_now_ms() + 30000;
    while (state_count(project, "done") < n) {
        assert_true(it_now_ms() < deadline);
        it_sleep_ms(100);
    }
}

static json_t *model_of(int64_t project)
{
    json_t *list = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/models", (long long)project);
    json_t *m = json_array_get(json_object_get(list, "items"), 0);
    assert_non_null(m);
    json_incref(m);
    json_decref(list);
    return m;
}

static void test_learns_from_accepted_labels(void **state)
{
    (void)state;
    char body[1024];
    snprintf(body, sizeof body,
             "{\"name\":\"classify-%d\",\"media\":\"image\",\"template\":%s,\"workflow\":{\"overlap\":1,"
             "\"quiz\":{\"size\":0},\"gold_rate\":0,\"min_trust\":0,\"min_confidence\":0,"
             "\"checks\":{\"same_answer_min\":0},"
             "\"prelabel\":{\"show\":true,\"auto_accept\":0.9,\"verify_rate\":0,\"min_train\":%d,"
             "\"min_per_class\":10}}}",
             ++g.seq, TEMPLATE, MIN_TRAIN);
    int64_t project = it_post_project(&g.srv, g.mgr, body);
    json_t *m = it_json_requestf(&g.srv, "POST", g.mgr, "{\"name\":\"stripes\",\"kind\":\"builtin\",\"model\":\"image-classifier\"}",
                                 201, "/v1/projects/%lld/models", (long long)project);
    assert_string_equal(it_json_str(m, "model"), "image-classifier");
    assert_string_equal(it_json_str(m, "model_version"), "image-classifier/1 untrained");
    json_decref(m);

    /* Items: alternating classes, "hNNN.png" / "vNNN.png". */
    int64_t batch = it_create_batch(&g.srv, g.mgr, project, "stripes", NULL);
    assert_true(batch > 0);
    unsigned seed = 12345;
    for (int i = 0; i < ITEMS; i++) {
        size_t len;
        unsigned char *png = stripes(i % 2, &seed, &len);
        char name[32];
        snprintf(name, sizeof name, "%c%03d.png", i % 2 ? 'v' : 'h', i);
        it_response r;
        assert_int_equal(it_upload_bytes(&g.srv, g.mgr, batch, name, png, len, &r), 0);
        IT_ASSERT_STATUS(r, 201);
        it_response_free(&r);
        free(png);
    }
    it_finish_batch(&g.srv, g.mgr, batch, ITEMS);
    json_t *items = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/items?limit=500",
                                     (long long)project);
    json_t *list = json_object_get(items, "items");
    assert_int_equal((int)json_array_size(list), ITEMS);
    int64_t last = it_json_int(json_array_get(list, ITEMS - 1), "id");

    /* Too few accepted labels: the model waits (no prediction, no error). */
    char *w = it_new_user(&g.srv, &g.seq, "worker");
    it_sleep_ms(500);
    assert_int_equal((int)prediction_count(last), 0);
    label_items(w, project, list, MIN_TRAIN / 2, 0);
    wait_done(project, MIN_TRAIN / 2);
    it_sleep_ms(800);
    assert_int_equal((int)prediction_count(last), 0);
    m = model_of(project);
    assert_int_equal(it_json_int(m, "errors"), 0);
    assert_int_equal(it_json_int(m, "predicted"), 0);
    assert_string_equal(it_json_str(m, "model_version"), "image-classifier/1 untrained");
    json_decref(m);
    assert_int_equal(state_count(project, "new"), ITEMS - MIN_TRAIN / 2);

    /* Enough labels: the aggregation's trigger has the model fit and predict the rest. */
    int labelled = MIN_TRAIN + 10;
    /* The fit starts at MIN_TRAIN labels, racing the worker's last ten: items it
     * accepts meanwhile leave the worker without tasks, never before MIN_TRAIN. */
    labelled = MIN_TRAIN / 2 + label_items(w, project, list, labelled - MIN_TRAIN / 2, 1);
    assert_true(labelled >= MIN_TRAIN);
    wait_done(project, labelled);
    long long deadline = it_now_ms() + 60000;
    while (prediction_count(last) == 0) {
        assert_true(it_now_ms() < deadline);
        it_sleep_ms(100);
    }
    m = model_of(project);
    assert_int_equal(it_json_int(m, "errors"), 0);
    assert_non_null(strstr(it_json_str(m, "model_version"), "image-classifier/1 n="));
    json_decref(m);

    /* The worker's judgments all aggregated (nothing judged is left undecided). */
    deadline = it_now_ms() + 30000;
    while (state_count(project, "labeling") + state_count(project, "labeled") > 0) {
        assert_true(it_now_ms() < deadline);
        it_sleep_ms(100);
    }
    /* Every item has a prediction now. The ones nobody labelled (the worker may have
     * been overtaken by the model while finishing its 50) with a score, right, and
     * routed: at or above auto_accept (0.9) done by the model, below still to label. */
    int by_model = 0, scored = 0, by_people = 0, wrong = 0;
    size_t i;
    json_t *it;
    json_array_foreach(list, i, it) {
        int64_t id = it_json_int(it, "id");
        const char *truth = it_json_str(it, "name")[0] == 'v' ? "vertical" : "horizontal";
        deadline = it_now_ms() + 30000;
        json_t *preds;
        for (;;) {
            preds = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/items/%lld/predictions", (long long)id);
            if (json_array_size(json_object_get(preds, "items")) > 0)
                break;
            json_decref(preds);
            assert_true(it_now_ms() < deadline);
            it_sleep_ms(100);
        }
        json_t *p = json_array_get(json_object_get(preds, "items"), 0);
        assert_null(json_object_get(p, "error"));
        wrong += strcmp(it_json_str(json_object_get(p, "answer"), "label"), truth) != 0;
        json_t *score = json_object_get(p, "score");
        it_response r;
        assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/items/%lld/result", (long long)id), 0);
        if (r.status == 200 && strcmp(it_json_str(r.json, "method"), "model") != 0) {
            by_people++;   /* the score is null if the model was fitted on this label */
        } else {
            assert_true(json_is_number(score));
            double sc = json_number_value(score);
            assert_true(sc >= 0 && sc <= 1.0);
            scored++;
            if (sc >= 0.9) {
                IT_ASSERT_STATUS(r, 200);
                assert_string_equal(it_json_str(json_object_get(r.json, "answer"), "label"), truth);
                by_model++;
            } else {
                assert_int_equal((int)r.status, 404);
            }
        }
        it_response_free(&r);
        json_decref(preds);
    }
    assert_true(by_people >= labelled);
    assert_int_equal(scored + by_people, ITEMS);
    assert_int_equal(wrong, 0);
    assert_true(by_model >= scored / 2);   /* stripes are easy: most are confident */
    json_decref(items);
    free(w);
}

static void test_bad_requests(void **state)
{
    (void)state;
    char body[1024];
    snprintf(body, sizeof body,
             "{\"name\":\"no-choice-%d\",\"media\":\"image\",\"template\":{\"controls\":[{\"name\":\"caption\","
             "\"type\":\"text\"}]}}",
             ++g.seq);
    int64_t project = it_post_project(&g.srv, g.mgr, body);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{\"name\":\"c\",\"kind\":\"builtin\",\"model\":\"image-classifier\"}", 422,
                     "template_unsuitable", "/v1/projects/%lld/models", (long long)project);
    snprintf(body, sizeof body, "{\"name\":\"audio-%d\",\"media\":\"audio\",\"template\":%s}", ++g.seq, TEMPLATE);
    project = it_post_project(&g.srv, g.mgr, body);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{\"name\":\"c\",\"kind\":\"builtin\",\"model\":\"image-classifier\"}", 422,
                     "template_unsuitable", "/v1/projects/%lld/models", (long long)project);
    /* Nothing was saved. */
    json_t *list = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/models", (long long)project);
    assert_int_equal((int)json_array_size(json_object_get(list, "items")), 0);
    json_decref(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_learns_from_accepted_labels),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
