/* test_qa_aggregate.c -- qa/aggregate.h: fusing several workers' answers per control,
 * with trust weights, on cases small enough to work out by hand (the arithmetic is in
 * the comments), plus whole answers and the error paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "qa/aggregate.h"
#include "qa/geometry.h"
#include "unit_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-9

static void assert_near(double got, double want, double tol)
{
    if (fabs(got - want) > tol)
        fail_msg("got %.10f, want %.10f (+- %g)", got, want, tol);
}

#define MAXW 8

/* One control fused from JSON texts (NULL = did not answer); weights may be NULL. The
 * result's value is returned (caller releases); method and confidence via out. */
static json_t *agg(const char *def, const char *const *vals, size_t n, const double *weights,
                   const tly_compare_opts *o, tly_agg_value *out)
{
    json_t *d = J(def), *v[MAXW];
    tly_error err;
    assert_true(n <= MAXW);
    for (size_t i = 0; i < n; i++)
        v[i] = vals[i] ? J(vals[i]) : NULL;
    tly_error_clear(&err);
    int rc = tly_aggregate_value(d, v, weights, n, o, out, &err);
    for (size_t i = 0; i < n; i++)
        json_decref(v[i]);
    json_decref(d);
    if (rc < 0)
        fail_msg("aggregate failed: %s", err.message);
    return out->value;
}

static void agg_err(const char *def, const char *const *vals, size_t n, const double *weights, tly_status status,
                    const char *code, const char *frag)
{
    json_t *d = J(def), *v[MAXW];
    tly_error err;
    tly_agg_value out;
    for (size_t i = 0; i < n; i++)
        v[i] = vals[i] ? J(vals[i]) : NULL;
    assert_int_equal(tly_aggregate_value(d, v, weights, n, NULL, &out, &err), -1);
    assert_null(out.value);
    assert_int_equal(err.status, status);
    assert_string_equal(err.code, code);
    if (frag && !strstr(err.message, frag))
        fail_msg("message '%s' lacks '%s'", err.message, frag);
    assert_int_equal(tly_aggregate_value(d, v, weights, n, NULL, &out, NULL), -1);
    for (size_t i = 0; i < n; i++)
        json_decref(v[i]);
    json_decref(d);
}

static double num(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        fail_msg("'%s' is not a number", key);
    return json_number_value(v);
}

static const char *CHOICE = "{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\",\"bird\"]}";
static const char *MULTI = "{\"name\":\"tags\",\"type\":\"multi_choice\",\"options\":[\"c\",\"b\",\"a\"]}";
static const char *TEXT = "{\"name\":\"note\",\"type\":\"text\"}";
static const char *TRANSCRIPT = "{\"name\":\"said\",\"type\":\"transcription\"}";
static const char *BBOX = "{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"car\",\"person\",\"truck\"]}";
static const char *SEGMENTS = "{\"name\":\"speech\",\"type\":\"audio_segments\",\"labels\":[\"speech\",\"music\"]}";
static const char *POLYGON = "{\"name\":\"areas\",\"type\":\"polygon\"}";
static const char *KEYPOINTS = "{\"name\":\"pose\",\"type\":\"keypoints\",\"points\":[\"nose\",\"eye\"]}";

static void test_choice(void **state)
{
    (void)state;
    tly_agg_value r;
    /* cat 1.0 against dog 0.4 + 0.4: cat, 1 / 1.8. */
    const char *v1[] = {"\"cat\"", "\"dog\"", "\"dog\""};
    double w1[] = {1, 0.4, 0.4};
    json_t *val = agg(CHOICE, v1, 3, w1, NULL, &r);
    assert_string_equal(json_string_value(val), "cat");
    assert_near(r.confidence, 1 / 1.8, TOL);
    assert_string_equal(r.method, "weighted_vote");
    json_decref(val);
    /* Unweighted: dog 2 of 3. */
    val = agg(CHOICE, v1, 3, NULL, NULL, &r);
    assert_string_equal(json_string_value(val), "dog");
    assert_near(r.confidence, 2.0 / 3, TOL);
    json_decref(val);
    /* A tie goes to the option listed first (cat before dog), whatever the order of answers. */
    const char *v2[] = {"\"dog\"", "\"cat\""};
    val = agg(CHOICE, v2, 2, NULL, NULL, &r);
    assert_string_equal(json_string_value(val), "cat");
    assert_near(r.confidence, 0.5, TOL);
    json_decref(val);
    /* Weights <= 0 count as a tiny epsilon: both 0 is a tie (-> cat); 0 against 0.1 loses. */
    double w0[] = {0, -1};
    val = agg(CHOICE, v2, 2, w0, NULL, &r);
    assert_string_equal(json_string_value(val), "cat");
    json_decref(val);
    const char *v3[] = {"\"bird\"", "\"dog\""};
    double w3[] = {0.1, 0};
    val = agg(CHOICE, v3, 2, w3, NULL, &r);
    assert_string_equal(json_string_value(val), "bird");
    assert_near(r.confidence, 0.1 / (0.1 + 1e-6), 1e-9);
    json_decref(val);
    /* Workers who did not answer take no part. */
    const char *v4[] = {NULL, "\"dog\"", "null"};
    val = agg(CHOICE, v4, 3, NULL, NULL, &r);
    assert_string_equal(json_string_value(val), "dog");
    assert_near(r.confidence, 1, TOL);
    json_decref(val);
    /* Every worker left it empty: null, and they agree (confidence 1). */
    const char *v5[] = {NULL, "null"};
    val = agg(CHOICE, v5, 2, NULL, NULL, &r);
    assert_true(json_is_null(val));
    assert_near(r.confidence, 1, TOL);
    assert_string_equal(r.method, "weighted_vote");
    json_decref(val);
    /* No workers at all: null, nothing known (confidence 0). */
    val = agg(CHOICE, NULL, 0, NULL, NULL, &r);
    assert_true(json_is_null(val));
    assert_near(r.confidence, 0, TOL);
    json_decref(val);
}

static void test_multi_choice(void **state)
{
    (void)state;
    tly_agg_value r;
    /* Shares: a 1/3, b 3/3, c 1/3 -> [b]; confidence min(2/3, 1, 2/3) = 2/3. */
    const char *v1[] = {"[\"a\",\"b\"]", "[\"b\"]", "[\"b\",\"c\"]"};
    json_t *val = agg(MULTI, v1, 3, NULL, NULL, &r);
    json_t *want = J("[\"b\"]");
    assert_true(json_equal(val, want));
    assert_near(r.confidence, 2.0 / 3, TOL);
    assert_string_equal(r.method, "per_option_vote");
    json_decref(want);
    json_decref(val);
    /* Weighted: worker 0 (0.8) picks a and c, worker 1 (0.2) picks b; total 1.
     * a 0.8, c 0.8 in, b 0.2 out; output in the options' order c, b, a -> [c, a];
     * confidence min(0.8, 0.8, 0.8) = 0.8. A duplicate pick counts once. */
    const char *v2[] = {"[\"a\",\"c\",\"a\"]", "[\"b\"]"};
    double w2[] = {0.8, 0.2};
    val = agg(MULTI, v2, 2, w2, NULL, &r);
    want = J("[\"c\",\"a\"]");
    assert_true(json_equal(val, want));
    assert_near(r.confidence, 0.8, TOL);
    json_decref(want);
    json_decref(val);
    /* Exactly half is not a majority: [] with confidence 0.5. */
    const char *v3[] = {"[\"a\"]", "[]"};
    val = agg(MULTI, v3, 2, NULL, NULL, &r);
    assert_int_equal(json_array_size(val), 0);
    assert_near(r.confidence, 0.5, TOL);
    json_decref(val);
    /* Everyone picked nothing: [] with confidence 1. */
    const char *v4[] = {"[]", "[]"};
    val = agg(MULTI, v4, 2, NULL, NULL, &r);
    assert_int_equal(json_array_size(val), 0);
    assert_near(r.confidence, 1, TOL);
    json_decref(val);
}

static void test_text_vote(void **state)
{
    (void)state;
    tly_agg_value r;
    /* "Hello, World!" and "hello world" normalise alike: 2 of 3, the first one as written. */
    const char *v1[] = {"\"Hello, World!\"", "\"hello world\"", "\"goodbye\""};
    json_t *val = agg(TEXT, v1, 3, NULL, NULL, &r);
    assert_string_equal(json_string_value(val), "Hello, World!");
    assert_near(r.confidence, 2.0 / 3, TOL);
    assert_string_equal(r.method, "text_vote");
    json_decref(val);
    /* Weights 0.5, 1, 1: the group has 1.5 / 2.5 = 0.6; its most trusted member wins. */
    double w1[] = {0.5, 1, 1};
    val = agg(TEXT, v1, 3, w1, NULL, &r);
    assert_string_equal(json_string_value(val), "hello world");
    assert_near(r.confidence, 0.6, TOL);
    json_decref(val);
    /* No majority: the medoid. "a b c d" / "a b c e" / "a x y z": d(0,1) = 1/4,
     * d(0,2) = d(1,2) = 3/4 -> costs 1, 1, 1.5; tie between 0 and 1 at equal weight ->
     * the earlier; confidence 1 - 1/2 = 0.5. */
    const char *v2[] = {"\"a b c d\"", "\"a b c e\"", "\"a x y z\""};
    val = agg(TEXT, v2, 3, NULL, NULL, &r);
    assert_string_equal(json_string_value(val), "a b c d");
    assert_near(r.confidence, 0.5, TOL);
    assert_string_equal(r.method, "text_vote");
    json_decref(val);
    /* With worker 1 more trusted, its transcript wins the tie... costs: c0 = w1/4 + w2*3/4,
     * c1 = w0/4 + w2*3/4; with w = (1, 2, 1): c0 = 0.5 + 0.75 = 1.25, c1 = 0.25 + 0.75 = 1.0
     * -> worker 1 outright; confidence 1 - 1.0 / (1 + 1) = 0.5. */
    double w2[] = {1, 2, 1};
    val = agg(TEXT, v2, 3, w2, NULL, &r);
    assert_string_equal(json_string_value(val), "a b c e");
    assert_near(r.confidence, 0.5, TOL);
    json_decref(val);
}

static void test_transcript_medoid(void **state)
{
    (void)state;
    tly_agg_value r;
    /* A = "the cat sat on the mat" (worker 1), B = "... a mat", C = "... the hat".
     * Symmetric WER (all 6 words long): d(A,B) = d(A,C) = 1/6, d(B,C) = 2/6.
     * Costs: A 2/6, B 3/6, C 3/6 -> A, as written; confidence 1 - (2/6) / 2 = 5/6. */
    const char *v[] = {"\"The cat sat on a mat\"", "\"The cat sat on the mat.\"", "\"the cat sat on the hat\""};
    json_t *val = agg(TRANSCRIPT, v, 3, NULL, NULL, &r);
    assert_string_equal(json_string_value(val), "The cat sat on the mat.");
    assert_near(r.confidence, 5.0 / 6, TOL);
    assert_string_equal(r.method, "transcript_medoid");
    json_decref(val);
    /* Different lengths: "the cat sat" vs "the cat sat down": WER 1/3 one way, 1/4 the
     * other; d = 7/24. With two workers each cost is the other's weight x d, so the
     * heavier worker's transcript wins: worker 1 (0.9), cost 0.5 d; confidence
     * 1 - 0.5 d / 0.5 = 17/24. */
    const char *v2[] = {"\"the cat sat\"", "\"the cat sat down\""};
    double w2[] = {0.5, 0.9};
    val = agg(TRANSCRIPT, v2, 2, w2, NULL, &r);
    assert_string_equal(json_string_value(val), "the cat sat down");
    assert_near(r.confidence, 17.0 / 24, TOL);
    json_decref(val);
    /* A single transcript is its own medoid. */
    val = agg(TRANSCRIPT, v2, 1, NULL, NULL, &r);
    assert_string_equal(json_string_value(val), "the cat sat");
    assert_near(r.confidence, 1, TOL);
    json_decref(val);
    /* Very different transcripts: confidence clamps at 0 (d(A,C) = (1 + 3) / 2 = 2). */
    const char *v3[] = {"\"a\"", "\"x y z\""};
    val = agg(TRANSCRIPT, v3, 2, NULL, NULL, &r);
    assert_near(r.confidence, 0, TOL);
    json_decref(val);
}

static void test_box_fusion(void **state)
{
    (void)state;
    tly_agg_value r;
    /* Worker 0 (1.0) and worker 1 (0.5) box the car; worker 2 (1.0) boxes a person
     * alone. Car boxes: IoU 90^2 / (20000 - 90^2) = 0.68 >= 0.5 -> one cluster,
     * support 1.5 / 2.5 = 0.6, kept. Person: 1 / 2.5 = 0.4, dropped.
     * Fused car: x = y = (10 * 1 + 20 * 0.5) / 1.5 = 13.333 -> 13.33; w = h = 100.
     * margin = (0.6 + (1 - 0.4)) / 2 = 0.6.
     * fit = mean(IoU((10,10,100,100), fused), IoU((20,20,100,100), fused))
     *     = mean(96.67^2 / (20000 - 96.67^2), 93.33^2 / (20000 - 93.33^2))
     *     = mean(9345.0889 / 10654.9111, 8710.4889 / 11289.5111) = mean(0.877067, 0.771556).
     * confidence = 0.6 * 0.824311 = 0.494587. */
    const char *v[] = {"[{\"label\":\"car\",\"x\":10,\"y\":10,\"w\":100,\"h\":100}]",
                       "[{\"label\":\"car\",\"x\":20,\"y\":20,\"w\":100,\"h\":100}]",
                       "[{\"label\":\"person\",\"x\":200,\"y\":200,\"w\":50,\"h\":50}]"};
    double w[] = {1, 0.5, 1};
    json_t *val = agg(BBOX, v, 3, w, NULL, &r);
    assert_string_equal(r.method, "box_fusion");
    assert_int_equal(json_array_size(val), 1);
    json_t *b = json_array_get(val, 0);
    assert_string_equal(json_string_value(json_object_get(b, "label")), "car");
    assert_near(num(b, "x"), 13.33, TOL);
    assert_near(num(b, "y"), 13.33, TOL);
    assert_near(num(b, "w"), 100, TOL);
    assert_near(num(b, "h"), 100, TOL);
    double i0 = 96.67 * 96.67 / (20000 - 96.67 * 96.67), i1 = 93.33 * 93.33 / (20000 - 93.33 * 93.33);
    assert_near(r.confidence, 0.6 * (i0 + i1) / 2, 1e-9);
    assert_near(r.confidence, 0.494587, 1e-5);
    json_decref(val);

    /* Labels never mix: car, truck, car on the same spot -> car kept (2/3), truck
     * dropped (1/3); margin (2/3 + 2/3) / 2, fit 1 (identical boxes). */
    const char *v2[] = {"[{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":10,\"h\":10}]",
                        "[{\"label\":\"truck\",\"x\":0,\"y\":0,\"w\":10,\"h\":10}]",
                        "[{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":10,\"h\":10}]"};
    val = agg(BBOX, v2, 3, NULL, NULL, &r);
    assert_int_equal(json_array_size(val), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(val, 0), "label")), "car");
    assert_near(r.confidence, 2.0 / 3, TOL);
    json_decref(val);

    /* Two objects drawn in different orders come out sorted by (y, x). */
    const char *v3[] = {"[{\"label\":\"car\",\"x\":0,\"y\":50,\"w\":10,\"h\":10},{\"label\":\"car\",\"x\":40,\"y\":0,\"w\":10,\"h\":10}]",
                        "[{\"label\":\"car\",\"x\":40,\"y\":0,\"w\":10,\"h\":10},{\"label\":\"car\",\"x\":0,\"y\":50,\"w\":10,\"h\":10}]"};
    val = agg(BBOX, v3, 2, NULL, NULL, &r);
    assert_int_equal(json_array_size(val), 2);
    assert_near(num(json_array_get(val, 0), "y"), 0, TOL);
    assert_near(num(json_array_get(val, 1), "y"), 50, TOL);
    assert_near(r.confidence, 1, TOL);
    json_decref(val);

    /* One worker's two overlapping boxes never share a cluster: worker 0 draws
     * (0,0,10,10) and (1,0,10,10), worker 1 only (0,0,10,10). Clusters: {w0 box0, w1},
     * support 1, and {w0 box1}, support 0.5 -> dropped. margin (1 + 0.5) / 2 = 0.75,
     * fit 1: confidence 0.75. */
    const char *v4[] = {"[{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":10,\"h\":10},{\"label\":\"car\",\"x\":1,\"y\":0,\"w\":10,\"h\":10}]",
                        "[{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":10,\"h\":10}]"};
    val = agg(BBOX, v4, 2, NULL, NULL, &r);
    assert_int_equal(json_array_size(val), 1);
    assert_near(num(json_array_get(val, 0), "x"), 0, TOL);
    assert_near(r.confidence, 0.75, TOL);
    json_decref(val);

    /* A higher bbox_iou threshold splits the car cluster of the first case: three
     * clusters of one box each, supports 1/2.5, 0.5/2.5 and 1/2.5, nothing kept:
     * margin = mean(1 - 0.4, 1 - 0.2, 1 - 0.4) = 2/3, fit 1. */
    tly_compare_opts o;
    tly_compare_opts_default(&o);
    o.bbox_iou = 0.9;
    val = agg(BBOX, v, 3, w, &o, &r);
    assert_int_equal(json_array_size(val), 0);
    assert_near(r.confidence, (0.6 + 0.8 + 0.6) / 3, TOL);
    json_decref(val);

    /* Nobody drew anything: [] with confidence 1. */
    const char *v5[] = {"[]", "[]", NULL};
    val = agg(BBOX, v5, 3, NULL, NULL, &r);
    assert_true(json_is_array(val));
    assert_int_equal(json_array_size(val), 0);
    assert_near(r.confidence, 1, TOL);
    json_decref(val);
}

static void test_segment_fusion(void **state)
{
    (void)state;
    tly_agg_value r;
    /* [0.5, 1.25] and [0.6, 1.35]: IoU 0.65 / 0.85 >= 0.5 -> one cluster, support 1.
     * Fused: [0.55, 1.3]; each member's IoU to it: 0.7 / 0.8 = 0.875 -> confidence 0.875.
     * The music segment of worker 1 alone: support 0.5, dropped; margin (1 + 0.5) / 2. */
    const char *v[] = {"[{\"label\":\"speech\",\"start\":0.5,\"end\":1.25}]",
                       "[{\"label\":\"music\",\"start\":2,\"end\":3},{\"label\":\"speech\",\"start\":0.6,\"end\":1.35}]"};
    json_t *val = agg(SEGMENTS, v, 2, NULL, NULL, &r);
    assert_string_equal(r.method, "segment_fusion");
    assert_int_equal(json_array_size(val), 1);
    json_t *s = json_array_get(val, 0);
    assert_string_equal(json_string_value(json_object_get(s, "label")), "speech");
    assert_near(num(s, "start"), 0.55, TOL);
    assert_near(num(s, "end"), 1.3, TOL);
    assert_near(r.confidence, 0.75 * 0.875, TOL);
    json_decref(val);
    /* Weighted: 3 : 1 -> start 0.525, end 1.275 (to the millisecond). */
    double w[] = {0.75, 0.25};
    const char *v2[] = {"[{\"label\":\"speech\",\"start\":0.5,\"end\":1.25}]", "[{\"label\":\"speech\",\"start\":0.6,\"end\":1.35}]"};
    val = agg(SEGMENTS, v2, 2, w, NULL, &r);
    assert_near(num(json_array_get(val, 0), "start"), 0.525, TOL);
    assert_near(num(json_array_get(val, 0), "end"), 1.275, TOL);
    json_decref(val);
    /* Sorted by start. */
    const char *v3[] = {"[{\"label\":\"music\",\"start\":5,\"end\":6},{\"label\":\"speech\",\"start\":1,\"end\":2}]"};
    val = agg(SEGMENTS, v3, 1, NULL, NULL, &r);
    assert_near(num(json_array_get(val, 0), "start"), 1, TOL);
    assert_near(num(json_array_get(val, 1), "start"), 5, TOL);
    json_decref(val);
}

static void test_polygon_medoid(void **state)
{
    (void)state;
    tly_agg_value r;
    /* Three 10x10 squares at x = 0, 2 and 1 (workers 0, 1, 2). IoU: 0-2 and 1-2 are
     * 90/110 = 0.818, 0-1 is 80/120 = 0.667. All one cluster (each joins the seed at
     * IoU >= 0.5). The medoid is worker 2's square (mean 0.818 against 0.742);
     * fit = mean IoU of the others to it = 0.818; margin 1. */
    const char *v[] = {"[{\"points\":[[0,0],[10,0],[10,10],[0,10]]}]",
                       "[{\"points\":[[2,0],[12,0],[12,10],[2,10]]}]",
                       "[{\"points\":[[1,0],[11,0],[11,10],[1,10]]}]"};
    json_t *val = agg(POLYGON, v, 3, NULL, NULL, &r);
    assert_string_equal(r.method, "polygon_medoid");
    assert_int_equal(json_array_size(val), 1);
    json_t *want = J("{\"points\":[[1,0],[11,0],[11,10],[1,10]]}");
    assert_true(json_equal(json_array_get(val, 0), want));
    json_decref(want);
    assert_near(r.confidence, 90.0 / 110, 0.01);
    json_decref(val);
    /* A polygon only one of three drew is dropped; sorted by bounding box (y, x). */
    const char *v2[] = {"[{\"points\":[[0,50],[10,50],[10,60]]},{\"points\":[[0,0],[10,0],[10,10]]}]",
                        "[{\"points\":[[0,0],[10,0],[10,10]]},{\"points\":[[0,50],[10,50],[10,60]]}]",
                        "[{\"points\":[[100,100],[110,100],[110,110]]}]"};
    val = agg(POLYGON, v2, 3, NULL, NULL, &r);
    assert_int_equal(json_array_size(val), 2);
    assert_near(json_number_value(json_array_get(json_array_get(json_object_get(json_array_get(val, 0), "points"), 0), 1)), 0,
                TOL);
    /* margin = mean(2/3, 2/3, 1 - 1/3) = 2/3, fit 1. */
    assert_near(r.confidence, 2.0 / 3, TOL);
    json_decref(val);
}

static void test_keypoint_fusion(void **state)
{
    (void)state;
    tly_agg_value r;
    /* nose seen by all at x = 10, 12, 14 -> (12, 10), share 1; eye seen by workers 0
     * and 2 -> share 2/3, visible at ((20 + 22) / 2, 20) = (21, 20).
     * Worker 0's second instance: support 1/3, dropped.
     * margin = mean(1, 2/3) = 5/6; agreement = mean(1, 2/3) = 5/6 -> 25/36. */
    const char *v[] = {"[{\"points\":[[10,10],[20,20]]},{\"points\":[[100,100],null]}]",
                       "[{\"points\":[[12,10],null]}]",
                       "[{\"points\":[[14,10],[22,20]]}]"};
    json_t *val = agg(KEYPOINTS, v, 3, NULL, NULL, &r);
    assert_string_equal(r.method, "keypoint_fusion");
    json_t *want = J("[{\"points\":[[12.0,10.0],[21.0,20.0]]}]");
    if (!json_equal(val, want)) {
        char *s = json_dumps(val, 0);
        fail_msg("got %s", s);
    }
    json_decref(want);
    assert_near(r.confidence, 25.0 / 36, TOL);
    json_decref(val);
    /* Weighted: worker 1 (weight 3) against 0 and 2 (1 each): the eye's visible share is
     * 2 / 5 -> null; nose at (10 + 36 + 14) / 5 = 12; agreement mean(1, 3/5) = 0.8. */
    double w[] = {1, 3, 1};
    val = agg(KEYPOINTS, v, 3, w, NULL, &r);
    want = J("[{\"points\":[[12.0,10.0],null]}]");
    assert_true(json_equal(val, want));
    json_decref(want);
    /* slot 1: support 1/5 -> margin mean(1, 4/5) = 0.9 -> 0.9 * 0.8. */
    assert_near(r.confidence, 0.72, TOL);
    json_decref(val);
    /* Labelled instances take the weighted vote of their labels. */
    const char *def = "{\"name\":\"k\",\"type\":\"keypoints\",\"labels\":[\"cat\",\"dog\"]}";
    const char *v2[] = {"[{\"label\":\"dog\",\"points\":[[1,1]]}]", "[{\"label\":\"cat\",\"points\":[[3,1]]}]"};
    val = agg(def, v2, 2, NULL, NULL, &r);
    want = J("[{\"label\":\"cat\",\"points\":[[2.0,1.0]]}]");
    assert_true(json_equal(val, want));
    json_decref(want);
    json_decref(val);
}

static void test_aggregate_answer(void **state)
{
    (void)state;
    json_t *tmpl = J("{\"controls\":["
                     "{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"]},"
                     "{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"cat\",\"dog\"]},"
                     "{\"name\":\"note\",\"type\":\"text\"}]}");
    json_t *a[3] = {
        J("{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":0,\"y\":0,\"w\":10,\"h\":10}]}"),
        J("{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":0,\"y\":0,\"w\":10,\"h\":10}],\"note\":null}"),
        J("{\"label\":\"dog\",\"boxes\":[]}"),
    };
    json_t *answer = NULL, *detail = NULL;
    double conf;
    const char *method;
    tly_error err;
    assert_int_equal(tly_aggregate_answer(tmpl, a, NULL, 3, NULL, &answer, &conf, &detail, &method, &err), 0);
    /* label: cat 2/3; boxes: one cluster at 2/3, fit 1 -> 2/3; note: nobody -> left out. */
    json_t *want = J("{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":0.0,\"y\":0.0,\"w\":10.0,\"h\":10.0}]}");
    if (!json_equal(answer, want)) {
        char *s = json_dumps(answer, 0);
        fail_msg("got %s", s);
    }
    json_decref(want);
    assert_near(conf, 2.0 / 3, TOL);
    assert_string_equal(method, "mixed");
    assert_string_equal(json_string_value(json_object_get(json_object_get(detail, "boxes"), "method")), "box_fusion");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(detail, "label"), "workers")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(detail, "note"), "workers")), 0);
    assert_near(json_number_value(json_object_get(json_object_get(detail, "note"), "confidence")), 1, TOL);
    json_decref(answer);
    json_decref(detail);
    for (int i = 0; i < 3; i++)
        json_decref(a[i]);

    /* One method throughout; a worker with no answer at all (NULL) is skipped. */
    json_t *t2 = J("{\"controls\":[{\"name\":\"l\",\"type\":\"choice\",\"options\":[\"x\",\"y\"]},"
                   "{\"name\":\"m\",\"type\":\"choice\",\"options\":[\"x\",\"y\"]}]}");
    json_t *b[3] = {J("{\"l\":\"x\",\"m\":\"y\"}"), NULL, J("{\"l\":\"x\",\"m\":\"x\"}")};
    double w[] = {1, 1, 0.25};
    assert_int_equal(tly_aggregate_answer(t2, b, w, 3, NULL, &answer, &conf, NULL, &method, &err), 0);
    assert_string_equal(method, "weighted_vote");
    assert_string_equal(json_string_value(json_object_get(answer, "m")), "y");
    assert_near(conf, 1 / 1.25, TOL);   /* l: 1, m: 1 / 1.25 */
    json_decref(answer);

    /* Errors: an answer that is not an object, a malformed value (named), no controls. */
    json_t *bad = J("[1]");
    json_t *c[2] = {b[0], bad};
    answer = (json_t *)1;
    assert_int_equal(tly_aggregate_answer(t2, c, NULL, 2, NULL, &answer, &conf, &detail, &method, &err), -1);
    assert_string_equal(err.code, "invalid_answer");
    assert_null(answer);
    json_decref(bad);
    bad = J("{\"l\":7}");
    c[1] = bad;
    assert_int_equal(tly_aggregate_answer(t2, c, NULL, 2, NULL, &answer, &conf, &detail, &method, &err), -1);
    assert_string_equal(err.code, "invalid_answer");
    assert_non_null(strstr(err.message, "control 'l'"));
    assert_non_null(strstr(err.message, "worker 1"));
    assert_null(detail);
    json_decref(bad);
    /* No workers: an empty answer with confidence 0. */
    assert_int_equal(tly_aggregate_answer(t2, NULL, NULL, 0, NULL, &answer, &conf, NULL, &method, &err), 0);
    assert_int_equal(json_object_size(answer), 0);
    assert_near(conf, 0, TOL);
    json_decref(answer);
    json_t *t3 = J("{\"controls\":[]}");
    assert_int_equal(tly_aggregate_answer(t3, c, NULL, 1, NULL, &answer, &conf, NULL, NULL, &err), -1);
    assert_string_equal(err.code, "invalid_template");
    json_decref(t3);
    json_decref(b[0]);
    json_decref(b[2]);
    json_decref(t2);
    json_decref(tmpl);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    const char *v1[] = {"[]", "{\"x\":1}"};
    agg_err(BBOX, v1, 2, NULL, TLY_E_UNPROCESSABLE, "invalid_answer", "worker 1");
    const char *v2[] = {"[{\"label\":\"car\",\"x\":1,\"y\":1,\"w\":0,\"h\":1}]"};
    agg_err(BBOX, v2, 1, NULL, TLY_E_UNPROCESSABLE, "invalid_answer", "box 0");
    const char *v3[] = {"[{\"points\":[[0,0],[1,1]]}]"};
    agg_err(POLYGON, v3, 1, NULL, TLY_E_UNPROCESSABLE, "invalid_answer", "polygon 0");
    const char *v4[] = {"[{\"points\":[\"nose\"]}]"};
    agg_err(KEYPOINTS, v4, 1, NULL, TLY_E_UNPROCESSABLE, "invalid_answer", "instance 0");
    const char *v5[] = {"[{\"label\":\"speech\",\"start\":1}]"};
    agg_err(SEGMENTS, v5, 1, NULL, TLY_E_UNPROCESSABLE, "invalid_answer", "segment 0");
    const char *v6[] = {"\"cat\"", "[\"cat\"]"};
    agg_err(CHOICE, v6, 2, NULL, TLY_E_UNPROCESSABLE, "invalid_answer", "worker 1");
    const char *v7[] = {"[\"a\", 2]"};
    agg_err(MULTI, v7, 1, NULL, TLY_E_UNPROCESSABLE, "invalid_answer", NULL);
    const char *v8[] = {"12"};
    agg_err(TEXT, v8, 1, NULL, TLY_E_UNPROCESSABLE, "invalid_answer", NULL);
    agg_err(TRANSCRIPT, v8, 1, NULL, TLY_E_UNPROCESSABLE, "invalid_answer", NULL);
    const char *v9[] = {"\"cat\"", "\"dog\""};
    double nan_w[] = {1, NAN};
    agg_err(CHOICE, v9, 2, nan_w, TLY_E_INVALID, "invalid_weight", NULL);
    agg_err("{\"name\":\"s\",\"type\":\"slider\"}", v9, 2, NULL, TLY_E_INVALID, "invalid_template", NULL);

    /* Too many shapes over all workers. */
    json_t *many = json_array();
    for (int i = 0; i < TLY_AGG_MAX_SHAPES / 2 + 1; i++)
        json_array_append_new(many, json_pack("{s:s,s:i,s:i,s:i,s:i}", "label", "car", "x", i, "y", 0, "w", 5, "h", 5));
    json_t *def = J(BBOX), *vals[2] = {many, many};
    tly_agg_value out;
    tly_error err;
    assert_int_equal(tly_aggregate_value(def, vals, NULL, 2, NULL, &out, &err), -1);
    assert_string_equal(err.code, "too_many_shapes");
    json_decref(def);
    json_decref(many);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choice),
        cmocka_unit_test(test_multi_choice),
        cmocka_unit_test(test_text_vote),
        cmocka_unit_test(test_transcript_medoid),
        cmocka_unit_test(test_box_fusion),
        cmocka_unit_test(test_segment_fusion),
        cmocka_unit_test(test_polygon_medoid),
        cmocka_unit_test(test_keypoint_fusion),
        cmocka_unit_test(test_aggregate_answer),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
