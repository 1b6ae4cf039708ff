/* test_qa_compare.c -- qa/geometry.h, qa/text.h and qa/compare.h on hand-computed
 * cases: IoU of boxes, intervals and polygons, text normalisation and WER, and an
 * answer against a gold answer for every control type, with the thresholds and the
 * error paths for malformed values. Every expected number is worked out in the
 * comment next to it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "qa/compare.h"
#include "qa/geometry.h"
#include "qa/text.h"
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

/* ---- geometry ---------------------------------------------------------------------- */

static void test_box_and_interval_iou(void **state)
{
    (void)state;
    /* (0,0,10,10) vs (5,5,10,10): intersection 5x5 = 25, union 100 + 100 - 25 = 175. */
    assert_near(tly_box_iou((tly_box){0, 0, 10, 10}, (tly_box){5, 5, 10, 10}), 25.0 / 175, TOL);
    /* (0,0,10,10) vs (1,0,10,10): 90 / 110. */
    assert_near(tly_box_iou((tly_box){0, 0, 10, 10}, (tly_box){1, 0, 10, 10}), 90.0 / 110, TOL);
    assert_near(tly_box_iou((tly_box){0, 0, 10, 10}, (tly_box){0, 0, 10, 10}), 1, TOL);
    /* Touching edges and disjoint boxes: 0. */
    assert_near(tly_box_iou((tly_box){0, 0, 10, 10}, (tly_box){10, 0, 10, 10}), 0, TOL);
    assert_near(tly_box_iou((tly_box){0, 0, 10, 10}, (tly_box){50, 50, 1, 1}), 0, TOL);
    /* Contained: 4 / 100. */
    assert_near(tly_box_iou((tly_box){0, 0, 10, 10}, (tly_box){2, 2, 2, 2}), 0.04, TOL);
    /* Zero-size: identical -> 1, else 0. */
    assert_near(tly_box_iou((tly_box){3, 3, 0, 0}, (tly_box){3, 3, 0, 0}), 1, TOL);
    assert_near(tly_box_iou((tly_box){3, 3, 0, 0}, (tly_box){4, 3, 0, 0}), 0, TOL);

    /* [0,2] vs [1,3]: 1 / 3. [0.5,1.25] vs [0.6,1.25]: 0.65 / 0.75. */
    assert_near(tly_interval_iou(0, 2, 1, 3), 1.0 / 3, TOL);
    assert_near(tly_interval_iou(0.5, 1.25, 0.6, 1.25), 0.65 / 0.75, TOL);
    assert_near(tly_interval_iou(0, 1, 2, 3), 0, TOL);
    assert_near(tly_interval_iou(1, 1, 1, 1), 1, TOL);

    assert_near(tly_point_distance((tly_point){1, 2}, (tly_point){4, 6}), 5, TOL);
}

static void test_polygon_area_and_iou(void **state)
{
    (void)state;
    tly_point sq[] = {{0, 0}, {10, 0}, {10, 10}, {0, 10}};
    tly_point sq_half[] = {{5, 0}, {15, 0}, {15, 10}, {5, 10}};
    tly_point tri[] = {{0, 0}, {10, 0}, {0, 10}};
    tly_point far[] = {{100, 100}, {110, 100}, {110, 110}};
    tly_point inner[] = {{2, 2}, {4, 2}, {4, 4}, {2, 4}};
    assert_near(tly_polygon_area(sq, 4), 100, TOL);
    assert_near(tly_polygon_area(tri, 3), 50, TOL);
    assert_near(tly_polygon_area(sq, 2), 0, TOL);
    tly_box b = tly_polygon_bounds(tri, 3);
    assert_near(b.x, 0, TOL);
    assert_near(b.w, 10, TOL);
    assert_near(b.h, 10, TOL);

    /* Exact values with the documented rasterisation tolerance. Squares overlapping by
     * half: 50 / 150; the 256-cell grid over the 15-wide union gives 86 / 256. */
    assert_near(tly_polygon_iou(sq, 4, sq_half, 4), 1.0 / 3, 0.01);
    assert_near(tly_polygon_iou(sq, 4, sq_half, 4), 86.0 / 256, TOL);
    /* The triangle is half the square: 50 / 100. */
    assert_near(tly_polygon_iou(sq, 4, tri, 3), 0.5, 0.01);
    /* 4 / 100. */
    assert_near(tly_polygon_iou(sq, 4, inner, 4), 0.04, 0.005);
    assert_near(tly_polygon_iou(sq, 4, sq, 4), 1, TOL);
    assert_near(tly_polygon_iou(sq, 4, far, 3), 0, TOL);
    /* Vertex order (clockwise or not) does not matter. */
    tly_point sq_cw[] = {{0, 0}, {0, 10}, {10, 10}, {10, 0}};
    assert_near(tly_polygon_iou(sq_cw, 4, tri, 3), 0.5, 0.01);
    /* Even-odd: a bow tie (0,0)-(10,10)-(10,0)-(0,10) fills two triangles of 25 each,
     * so against the square it is 50 / 100. */
    tly_point bow[] = {{0, 0}, {10, 10}, {10, 0}, {0, 10}};
    assert_near(tly_polygon_iou(sq, 4, bow, 4), 0.5, 0.01);
}

/* ---- text -------------------------------------------------------------------------- */

static void check_norm(const char *in, const char *want)
{
    char *out = NULL;
    tly_error err;
    assert_int_equal(tly_text_normalize(in, strlen(in), &out, &err), 0);
    if (strcmp(out, want) != 0)
        fail_msg("normalise(\"%s\") = \"%s\", want \"%s\"", in, out, want);
    free(out);
}

static void test_text_normalize(void **state)
{
    (void)state;
    check_norm("Hello,  World!", "hello world");
    check_norm("   ", "");
    check_norm("", "");
    check_norm("  Don't STOP-me 'now'\t\n", "don't stop me now");
    check_norm("rock'n'roll", "rock'n'roll");
    check_norm("it's 5 o'clock.", "it's 5 o'clock");
    check_norm("dogs' toys", "dogs toys");
    check_norm("U.S.A.", "u s a");
    /* UTF-8 passes through unchanged (only ASCII is lowercased). */
    check_norm("Caf\xc3\xa9 na\xc3\xafve!", "caf\xc3\xa9 na\xc3\xafve");
    /* An embedded NUL separates words. */
    char *out = NULL;
    assert_int_equal(tly_text_normalize("a\0B", 3, &out, NULL), 0);
    assert_string_equal(out, "a b");
    free(out);
}

static void test_wer(void **state)
{
    (void)state;
    double w;
    tly_error err;
    /* One insertion over 3 reference words. */
    assert_int_equal(tly_wer("the cat sat", "the cat sat down", &w, &err), 0);
    assert_near(w, 1.0 / 3, TOL);
    /* The other way round: one deletion over 4. */
    assert_int_equal(tly_wer("the cat sat down", "the cat sat", &w, &err), 0);
    assert_near(w, 0.25, TOL);
    /* Normalisation first: identical. */
    assert_int_equal(tly_wer("Hello,  World!", "hello world", &w, &err), 0);
    assert_near(w, 0, TOL);
    /* Substitution + deletion: "a b c d" -> "a x c" = 2 / 4. */
    assert_int_equal(tly_wer("a b c d", "a x c", &w, &err), 0);
    assert_near(w, 0.5, TOL);
    /* Insertions can take WER above 1: "a" -> "b c d" = 3 / 1. */
    assert_int_equal(tly_wer("a", "b c d", &w, &err), 0);
    assert_near(w, 3, TOL);
    /* Empty reference. */
    assert_int_equal(tly_wer("", "", &w, &err), 0);
    assert_near(w, 0, TOL);
    assert_int_equal(tly_wer(" ...", "something", &w, &err), 0);
    assert_near(w, 1, TOL);
    assert_int_equal(tly_wer("something", "", &w, &err), 0);
    assert_near(w, 1, TOL);

    /* Distance is symmetric. */
    tly_words a, b;
    size_t d1, d2;
    assert_int_equal(tly_words_split("kitten sat on the mat", 21, &a, &err), 0);
    assert_int_equal(tly_words_split("sitting on a mat", 16, &b, &err), 0);
    assert_int_equal(a.n, 5);
    assert_string_equal(a.word[4], "mat");
    assert_int_equal(tly_words_distance(&a, &b, &d1, &err), 0);
    assert_int_equal(tly_words_distance(&b, &a, &d2, &err), 0);
    /* kitten->sitting, sat deleted, the->a: 3. */
    assert_int_equal(d1, 3);
    assert_int_equal(d2, 3);
    assert_false(tly_words_equal(&a, &b));
    tly_words_free(&a);
    tly_words_free(&b);
}

static void test_wer_cap(void **state)
{
    (void)state;
    size_t n = (TLY_TEXT_MAX_WORDS + 1) * 2;
    char *big = malloc(n + 1);
    assert_non_null(big);
    for (size_t i = 0; i < n; i += 2) {
        big[i] = 'a';
        big[i + 1] = ' ';
    }
    big[n] = '\0';
    double w = -1;
    tly_error err;
    assert_int_equal(tly_wer(big, "a", &w, &err), -1);
    assert_int_equal(err.status, TLY_E_UNPROCESSABLE);
    assert_string_equal(err.code, "text_too_long");
    /* Exactly the cap is fine. */
    big[TLY_TEXT_MAX_WORDS * 2] = '\0';
    assert_int_equal(tly_wer(big, "a", &w, &err), 0);
    assert_near(w, (double)(TLY_TEXT_MAX_WORDS - 1) / TLY_TEXT_MAX_WORDS, TOL);
    free(big);
}

/* ---- options ----------------------------------------------------------------------- */

static void opts_bad(const char *text)
{
    tly_compare_opts o;
    tly_error err;
    json_t *j = J(text);
    assert_int_equal(tly_compare_opts_from_json(j, &o, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_string_equal(err.code, "invalid_workflow");
    assert_near(o.bbox_iou, 0.5, TOL);   /* left at the defaults */
    json_decref(j);
}

static void test_opts(void **state)
{
    (void)state;
    tly_compare_opts o;
    tly_error err;
    assert_int_equal(tly_compare_opts_from_json(NULL, &o, &err), 0);
    assert_near(o.bbox_iou, 0.5, TOL);
    assert_near(o.segment_iou, 0.5, TOL);
    assert_near(o.polygon_iou, 0.5, TOL);
    assert_near(o.keypoint_dist, 0.05, TOL);
    assert_near(o.keypoint_px, 10, TOL);
    assert_near(o.max_wer, 0.1, TOL);
    assert_near(o.multi_jaccard, 1.0, TOL);
    json_t *j = J("{\"bbox_iou\":0.6,\"max_wer\":0,\"multi_jaccard\":0.5,\"keypoint_px\":4,\"segment_iou\":null}");
    assert_int_equal(tly_compare_opts_from_json(j, &o, &err), 0);
    assert_near(o.bbox_iou, 0.6, TOL);
    assert_near(o.max_wer, 0, TOL);
    assert_near(o.multi_jaccard, 0.5, TOL);
    assert_near(o.keypoint_px, 4, TOL);
    assert_near(o.segment_iou, 0.5, TOL);
    json_decref(j);
    opts_bad("{\"bbox_iuo\":0.6}");
    opts_bad("{\"bbox_iou\":0}");
    opts_bad("{\"bbox_iou\":1.5}");
    opts_bad("{\"max_wer\":-0.1}");
    opts_bad("{\"max_wer\":\"low\"}");
    opts_bad("{\"keypoint_dist\":true}");
    opts_bad("[1]");
}

/* ---- one control ------------------------------------------------------------------- */

/* Compares answer with gold for the control def (all JSON text); returns the verdict
 * and the score through *score. media may be NULL. */
static int cmp(const char *def, const char *answer, const char *gold, const char *media, const tly_compare_opts *o,
               double *score)
{
    json_t *d = J(def), *a = answer ? J(answer) : NULL, *g = J(gold), *m = media ? J(media) : NULL;
    tly_error err;
    tly_error_clear(&err);
    int rc = tly_compare_value(d, a, g, m, o, score, &err);
    if (rc < 0)
        fail_msg("compare failed: %s", err.message);
    json_decref(d);
    json_decref(a);
    json_decref(g);
    json_decref(m);
    return rc;
}

/* Must fail with the given status and code. */
static void cmp_err(const char *def, const char *answer, const char *gold, tly_status status, const char *code)
{
    json_t *d = J(def), *a = J(answer), *g = J(gold);
    tly_error err;
    double score = 7;
    tly_error_clear(&err);
    assert_int_equal(tly_compare_value(d, a, g, NULL, NULL, &score, &err), -1);
    assert_int_equal(err.status, status);
    assert_string_equal(err.code, code);
    assert_near(score, 0, TOL);
    /* A NULL err is allowed too. */
    assert_int_equal(tly_compare_value(d, a, g, NULL, NULL, NULL, NULL), -1);
    json_decref(d);
    json_decref(a);
    json_decref(g);
}

static const char *CHOICE = "{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"]}";
static const char *MULTI = "{\"name\":\"tags\",\"type\":\"multi_choice\",\"options\":[\"a\",\"b\",\"c\"]}";
static const char *TEXT = "{\"name\":\"note\",\"type\":\"text\"}";
static const char *TRANSCRIPT = "{\"name\":\"said\",\"type\":\"transcription\"}";
static const char *BBOX = "{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"car\",\"person\"]}";
static const char *POLYGON = "{\"name\":\"areas\",\"type\":\"polygon\"}";
static const char *KEYPOINTS = "{\"name\":\"pose\",\"type\":\"keypoints\",\"points\":[\"nose\",\"eye\",\"ear\"]}";
static const char *SEGMENTS = "{\"name\":\"speech\",\"type\":\"audio_segments\",\"labels\":[\"speech\",\"music\"]}";

static void test_compare_choice_and_multi(void **state)
{
    (void)state;
    double s;
    assert_int_equal(cmp(CHOICE, "\"cat\"", "\"cat\"", NULL, NULL, &s), 1);
    assert_near(s, 1, TOL);
    assert_int_equal(cmp(CHOICE, "\"dog\"", "\"cat\"", NULL, NULL, &s), 0);
    assert_near(s, 0, TOL);
    /* Not answered: wrong, score 0; null gold expects no answer. */
    assert_int_equal(cmp(CHOICE, NULL, "\"cat\"", NULL, NULL, &s), 0);
    assert_int_equal(cmp(CHOICE, "null", "\"cat\"", NULL, NULL, &s), 0);
    assert_int_equal(cmp(CHOICE, NULL, "null", NULL, NULL, &s), 1);
    assert_near(s, 1, TOL);
    assert_int_equal(cmp(CHOICE, "\"cat\"", "null", NULL, NULL, &s), 0);

    /* {a,b} vs {a,b,c}: Jaccard 2/3. Wrong at the default (set equality), right at 0.6. */
    assert_int_equal(cmp(MULTI, "[\"a\",\"b\"]", "[\"a\",\"b\",\"c\"]", NULL, NULL, &s), 0);
    assert_near(s, 2.0 / 3, TOL);
    tly_compare_opts o;
    tly_compare_opts_default(&o);
    o.multi_jaccard = 0.6;
    assert_int_equal(cmp(MULTI, "[\"a\",\"b\"]", "[\"a\",\"b\",\"c\"]", NULL, &o, &s), 1);
    o.multi_jaccard = 0.7;
    assert_int_equal(cmp(MULTI, "[\"a\",\"b\"]", "[\"a\",\"b\",\"c\"]", NULL, &o, &s), 0);
    /* Order does not matter; duplicates count once. {b,a} vs {a,b}: 1. */
    assert_int_equal(cmp(MULTI, "[\"b\",\"a\",\"a\"]", "[\"a\",\"b\"]", NULL, NULL, &s), 1);
    assert_near(s, 1, TOL);
    /* Two empty sets are equal; {a} vs {}: 0. */
    assert_int_equal(cmp(MULTI, "[]", "[]", NULL, NULL, &s), 1);
    assert_near(s, 1, TOL);
    assert_int_equal(cmp(MULTI, "[\"a\"]", "[]", NULL, NULL, &s), 0);
    assert_near(s, 0, TOL);
    /* {a,c} vs {b,c}: 1/3. */
    assert_int_equal(cmp(MULTI, "[\"a\",\"c\"]", "[\"b\",\"c\"]", NULL, NULL, &s), 0);
    assert_near(s, 1.0 / 3, TOL);
}

static void test_compare_text(void **state)
{
    (void)state;
    double s;
    assert_int_equal(cmp(TEXT, "\"Hello,  World!\"", "\"hello world\"", NULL, NULL, &s), 1);
    assert_near(s, 1, TOL);
    /* Gold is the reference: "the cat sat" + "down" = WER 1/3 > 0.1. */
    assert_int_equal(cmp(TRANSCRIPT, "\"the cat sat down\"", "\"The cat sat.\"", NULL, NULL, &s), 0);
    assert_near(s, 2.0 / 3, TOL);
    tly_compare_opts o;
    tly_compare_opts_default(&o);
    o.max_wer = 0.34;
    assert_int_equal(cmp(TRANSCRIPT, "\"the cat sat down\"", "\"The cat sat.\"", NULL, &o, &s), 1);
    /* 1 error in 10 words is exactly the default max_wer: right. */
    assert_int_equal(cmp(TRANSCRIPT, "\"one two three four five six seven eight nine ten\"",
                         "\"one two three four five six seven eight nine TEN!\"", NULL, NULL, &s), 1);
    assert_int_equal(cmp(TRANSCRIPT, "\"one two three four five six seven eight nine zehn\"",
                         "\"one two three four five six seven eight nine ten\"", NULL, NULL, &s), 1);
    assert_near(s, 0.9, TOL);
    assert_int_equal(cmp(TRANSCRIPT, "\"one two three four five six seven eight neun zehn\"",
                         "\"one two three four five six seven eight nine ten\"", NULL, NULL, &s), 0);
    assert_near(s, 0.8, TOL);
    /* WER above 1 gives score 0. */
    assert_int_equal(cmp(TRANSCRIPT, "\"b c d\"", "\"a\"", NULL, NULL, &s), 0);
    assert_near(s, 0, TOL);
}

static const char *GOLD_BOXES =
    "[{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":10,\"h\":10},{\"label\":\"person\",\"x\":20,\"y\":20,\"w\":10,\"h\":10}]";

static void test_compare_bbox(void **state)
{
    (void)state;
    double s;
    /* Car shifted by 1 px: IoU 90/110; person exact. Answer order does not matter. */
    assert_int_equal(cmp(BBOX,
                         "[{\"label\":\"person\",\"x\":20,\"y\":20,\"w\":10,\"h\":10},"
                         "{\"label\":\"car\",\"x\":1,\"y\":0,\"w\":10,\"h\":10}]",
                         GOLD_BOXES, NULL, NULL, &s),
                     1);
    assert_near(s, (90.0 / 110 + 1) / 2, TOL);
    /* One gold box missing: matched 1 of (2 + 1 - 1). */
    assert_int_equal(cmp(BBOX, "[{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":10,\"h\":10}]", GOLD_BOXES, NULL, NULL, &s), 0);
    assert_near(s, 0.5, TOL);
    /* One extra box: 2 matched at IoU 1 over 2 + 3 - 2 = 3. */
    assert_int_equal(cmp(BBOX,
                         "[{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":10,\"h\":10},"
                         "{\"label\":\"person\",\"x\":20,\"y\":20,\"w\":10,\"h\":10},"
                         "{\"label\":\"car\",\"x\":50,\"y\":50,\"w\":10,\"h\":10}]",
                         GOLD_BOXES, NULL, NULL, &s),
                     0);
    assert_near(s, 2.0 / 3, TOL);
    /* A duplicate of the car box is extra too (one-to-one). */
    assert_int_equal(cmp(BBOX,
                         "[{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":10,\"h\":10},"
                         "{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":10,\"h\":10},"
                         "{\"label\":\"person\",\"x\":20,\"y\":20,\"w\":10,\"h\":10}]",
                         GOLD_BOXES, NULL, NULL, &s),
                     0);
    /* Right place, wrong label: nothing matches for it. */
    assert_int_equal(cmp(BBOX,
                         "[{\"label\":\"person\",\"x\":0,\"y\":0,\"w\":10,\"h\":10},"
                         "{\"label\":\"person\",\"x\":20,\"y\":20,\"w\":10,\"h\":10}]",
                         GOLD_BOXES, NULL, NULL, &s),
                     0);
    assert_near(s, 1.0 / 3, TOL);
    /* IoU 25/175 = 1/7 is below 0.5 but above 0.1. */
    const char *off = "[{\"label\":\"car\",\"x\":5,\"y\":5,\"w\":10,\"h\":10},"
                      "{\"label\":\"person\",\"x\":20,\"y\":20,\"w\":10,\"h\":10}]";
    assert_int_equal(cmp(BBOX, off, GOLD_BOXES, NULL, NULL, &s), 0);
    tly_compare_opts o;
    tly_compare_opts_default(&o);
    o.bbox_iou = 0.1;
    assert_int_equal(cmp(BBOX, off, GOLD_BOXES, NULL, &o, &s), 1);
    assert_near(s, (1.0 / 7 + 1) / 2, TOL);
    /* Exactly at the threshold matches: IoU (0,0,10,10) vs (0,0,10,5) = 0.5. */
    assert_int_equal(cmp(BBOX, "[{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":10,\"h\":5}]",
                         "[{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":10,\"h\":10}]", NULL, NULL, &s),
                     1);
    /* Both empty: right. */
    assert_int_equal(cmp(BBOX, "[]", "[]", NULL, NULL, &s), 1);
    assert_near(s, 1, TOL);
    /* Greedy takes the best pair first: gold A (0,0,10,10) and B (4,0,10,10); answer
     * (4,0,10,10) goes to B at IoU 1 and (1,0,10,10) to A at 90/110. */
    assert_int_equal(cmp(BBOX,
                         "[{\"label\":\"car\",\"x\":1,\"y\":0,\"w\":10,\"h\":10},{\"label\":\"car\",\"x\":4,\"y\":0,\"w\":10,\"h\":10}]",
                         "[{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":10,\"h\":10},{\"label\":\"car\",\"x\":4,\"y\":0,\"w\":10,\"h\":10}]",
                         NULL, NULL, &s),
                     1);
    assert_near(s, (1 + 90.0 / 110) / 2, TOL);
}

static void test_compare_polygon(void **state)
{
    (void)state;
    double s;
    const char *gold = "[{\"points\":[[0,0],[10,0],[10,10],[0,10]]}]";
    /* The same square, listed from another vertex. */
    assert_int_equal(cmp(POLYGON, "[{\"points\":[[10,0],[10,10],[0,10],[0,0]]}]", gold, NULL, NULL, &s), 1);
    assert_near(s, 1, 0.01);
    /* The lower-left triangle: IoU 0.5, rasterised within 0.01 of it (so the score, a
     * matched pair's IoU, is read at a threshold of 0.4). */
    tly_compare_opts o;
    tly_compare_opts_default(&o);
    o.polygon_iou = 0.4;
    assert_int_equal(cmp(POLYGON, "[{\"points\":[[0,0],[10,0],[0,10]]}]", gold, NULL, &o, &s), 1);
    assert_near(s, 0.5, 0.01);
    o.polygon_iou = 0.6;
    assert_int_equal(cmp(POLYGON, "[{\"points\":[[0,0],[10,0],[0,10]]}]", gold, NULL, &o, &s), 0);
    /* Shifted by 1: IoU 90/110 = 0.818. */
    assert_int_equal(cmp(POLYGON, "[{\"points\":[[1,0],[11,0],[11,10],[1,10]]}]", gold, NULL, NULL, &s), 1);
    assert_near(s, 90.0 / 110, 0.01);
    /* Half over: 1/3 < 0.5, so no match, and an unmatched pair scores 0. */
    assert_int_equal(cmp(POLYGON, "[{\"points\":[[5,0],[15,0],[15,10],[5,10]]}]", gold, NULL, NULL, &s), 0);
    assert_near(s, 0, TOL);
    /* Labels must agree when present. */
    assert_int_equal(cmp(POLYGON, "[{\"label\":\"roof\",\"points\":[[0,0],[10,0],[10,10],[0,10]]}]", gold, NULL, NULL, &s), 0);
    /* Missing. */
    assert_int_equal(cmp(POLYGON, "[]", gold, NULL, NULL, &s), 0);
    assert_near(s, 0, TOL);
}

static void test_compare_keypoints(void **state)
{
    (void)state;
    double s;
    /* 300x400 image: diagonal 500, tolerance 0.05 * 500 = 25 px. */
    const char *media = "{\"width\":300,\"height\":400}";
    const char *gold = "[{\"points\":[[10,10],[50,50],null]}]";
    /* Distances 10 and 20, ear invisible in both: right. */
    assert_int_equal(cmp(KEYPOINTS, "[{\"points\":[[20,10],[50,70],null]}]", gold, media, NULL, &s), 1);
    assert_near(s, 1, TOL);
    /* Without the media the tolerance is 10 px: the eye (20 px off) is wrong, 2 of 3. */
    assert_int_equal(cmp(KEYPOINTS, "[{\"points\":[[20,10],[50,70],null]}]", gold, NULL, NULL, &s), 0);
    assert_near(s, 2.0 / 3, TOL);
    /* 30 px off: wrong even with the media. */
    assert_int_equal(cmp(KEYPOINTS, "[{\"points\":[[40,10],[50,50],null]}]", gold, media, NULL, &s), 0);
    assert_near(s, 2.0 / 3, TOL);
    /* Visibility must agree both ways. */
    assert_int_equal(cmp(KEYPOINTS, "[{\"points\":[[10,10],null,null]}]", gold, media, NULL, &s), 0);
    assert_near(s, 2.0 / 3, TOL);
    assert_int_equal(cmp(KEYPOINTS, "[{\"points\":[[10,10],[50,50],[60,60]]}]", gold, media, NULL, &s), 0);
    /* Two instances, answered in the other order: matched by distance. */
    const char *gold2 = "[{\"points\":[[10,10],[50,50],null]},{\"points\":[[200,200],[210,210],[220,220]]}]";
    assert_int_equal(cmp(KEYPOINTS, "[{\"points\":[[201,200],[210,212],[220,220]]},{\"points\":[[10,12],[50,50],null]}]",
                         gold2, media, NULL, &s),
                     1);
    /* One instance extra: its 3 points count against: 6 right of 3 + 3 + 3. */
    assert_int_equal(cmp(KEYPOINTS,
                         "[{\"points\":[[10,10],[50,50],null]},{\"points\":[[200,200],[210,210],[220,220]]},"
                         "{\"points\":[[100,100],null,null]}]",
                         gold2, media, NULL, &s),
                     0);
    assert_near(s, 6.0 / 9, TOL);
    /* Missing instance: 3 right of 6. */
    assert_int_equal(cmp(KEYPOINTS, "[{\"points\":[[10,10],[50,50],null]}]", gold2, media, NULL, &s), 0);
    assert_near(s, 0.5, TOL);
}

static void test_compare_segments(void **state)
{
    (void)state;
    double s;
    const char *gold = "[{\"label\":\"speech\",\"start\":0.5,\"end\":1.25}]";
    /* IoU 0.65 / 0.75. */
    assert_int_equal(cmp(SEGMENTS, "[{\"label\":\"speech\",\"start\":0.6,\"end\":1.25}]", gold, NULL, NULL, &s), 1);
    assert_near(s, 0.65 / 0.75, TOL);
    /* [1.0, 2.0] vs [0.5, 1.25]: 0.25 / 1.5 < 0.5. */
    assert_int_equal(cmp(SEGMENTS, "[{\"label\":\"speech\",\"start\":1.0,\"end\":2.0}]", gold, NULL, NULL, &s), 0);
    assert_near(s, 0, TOL);
    /* Wrong label. */
    assert_int_equal(cmp(SEGMENTS, "[{\"label\":\"music\",\"start\":0.5,\"end\":1.25}]", gold, NULL, NULL, &s), 0);
    /* Extra segment: 1 / (1 + 2 - 1). */
    assert_int_equal(cmp(SEGMENTS,
                         "[{\"label\":\"speech\",\"start\":0.5,\"end\":1.25},{\"label\":\"music\",\"start\":2,\"end\":3}]",
                         gold, NULL, NULL, &s),
                     0);
    assert_near(s, 0.5, TOL);
    tly_compare_opts o;
    tly_compare_opts_default(&o);
    o.segment_iou = 0.9;
    assert_int_equal(cmp(SEGMENTS, "[{\"label\":\"speech\",\"start\":0.6,\"end\":1.25}]", gold, NULL, &o, &s), 0);
}

static void test_compare_bad_values(void **state)
{
    (void)state;
    /* Answer side -> invalid_answer, gold side -> invalid_gold; never a crash. */
    cmp_err(BBOX, "{\"x\":1}", GOLD_BOXES, TLY_E_UNPROCESSABLE, "invalid_answer");
    cmp_err(BBOX, "\"boxes\"", GOLD_BOXES, TLY_E_UNPROCESSABLE, "invalid_answer");
    cmp_err(BBOX, "[{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":10}]", GOLD_BOXES, TLY_E_UNPROCESSABLE, "invalid_answer");
    cmp_err(BBOX, "[{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":-1,\"h\":3}]", GOLD_BOXES, TLY_E_UNPROCESSABLE,
            "invalid_answer");
    cmp_err(BBOX, "[{\"label\":3,\"x\":0,\"y\":0,\"w\":1,\"h\":3}]", GOLD_BOXES, TLY_E_UNPROCESSABLE, "invalid_answer");
    cmp_err(BBOX, "[7]", GOLD_BOXES, TLY_E_UNPROCESSABLE, "invalid_answer");
    cmp_err(BBOX, "[]", "{\"boxes\":[]}", TLY_E_UNPROCESSABLE, "invalid_gold");
    cmp_err(POLYGON, "[{\"points\":[[0,0],[1,1]]}]", "[]", TLY_E_UNPROCESSABLE, "invalid_answer");
    cmp_err(POLYGON, "[{\"points\":[[0,0],[1,1],[1]]}]", "[]", TLY_E_UNPROCESSABLE, "invalid_answer");
    cmp_err(POLYGON, "[{\"points\":\"square\"}]", "[]", TLY_E_UNPROCESSABLE, "invalid_answer");
    cmp_err(KEYPOINTS, "[{\"points\":[]}]", "[]", TLY_E_UNPROCESSABLE, "invalid_answer");
    cmp_err(KEYPOINTS, "[{\"points\":[[1,\"2\"]]}]", "[]", TLY_E_UNPROCESSABLE, "invalid_answer");
    cmp_err(SEGMENTS, "[{\"label\":\"speech\",\"start\":2,\"end\":1}]", "[]", TLY_E_UNPROCESSABLE, "invalid_answer");
    cmp_err(SEGMENTS, "[]", "[{\"label\":\"speech\",\"start\":\"0\",\"end\":1}]", TLY_E_UNPROCESSABLE, "invalid_gold");
    cmp_err(CHOICE, "3", "\"cat\"", TLY_E_UNPROCESSABLE, "invalid_answer");
    cmp_err(CHOICE, "\"cat\"", "[\"cat\"]", TLY_E_UNPROCESSABLE, "invalid_gold");
    cmp_err(MULTI, "\"a\"", "[\"a\"]", TLY_E_UNPROCESSABLE, "invalid_answer");
    cmp_err(MULTI, "[\"a\", 1]", "[\"a\"]", TLY_E_UNPROCESSABLE, "invalid_answer");
    cmp_err(TEXT, "{}", "\"x\"", TLY_E_UNPROCESSABLE, "invalid_answer");
    cmp_err("{\"name\":\"x\",\"type\":\"slider\"}", "1", "1", TLY_E_INVALID, "invalid_template");
    cmp_err("{\"name\":\"x\"}", "1", "1", TLY_E_INVALID, "invalid_template");
    cmp_err("[]", "1", "1", TLY_E_INVALID, "invalid_template");

    /* The message names the control and the shape. */
    json_t *d = J(BBOX), *a = J("[{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":10}]"), *g = J(GOLD_BOXES);
    tly_error err;
    assert_int_equal(tly_compare_value(d, a, g, NULL, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.message, "control 'boxes'"));
    assert_non_null(strstr(err.message, "box 0"));
    json_decref(d);
    json_decref(a);
    json_decref(g);

    /* Too many pairs to compare: 1001 x 1001 > TLY_COMPARE_MAX_PAIRS. */
    json_t *many = json_array();
    for (int i = 0; i < 1001; i++)
        json_array_append_new(many, json_pack("{s:i,s:i,s:i,s:i}", "x", i, "y", 0, "w", 5, "h", 5));
    d = J("{\"name\":\"b\",\"type\":\"bbox\"}");
    assert_int_equal(tly_compare_value(d, many, many, NULL, NULL, NULL, &err), -1);
    assert_string_equal(err.code, "too_many_shapes");
    json_decref(d);
    json_decref(many);
}

/* ---- whole answers ----------------------------------------------------------------- */

static const char *TMPL =
    "{\"controls\":["
    "{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"]},"
    "{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"cat\",\"dog\"]},"
    "{\"name\":\"note\",\"type\":\"text\"}]}";

static void test_compare_answer(void **state)
{
    (void)state;
    json_t *tmpl = J(TMPL);
    json_t *gold = J("{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":0,\"y\":0,\"w\":10,\"h\":10}],\"note\":null}");
    json_t *detail = NULL;
    tly_error err;
    double s;

    /* Everything right; "note" is not in the gold (null), so it is ignored. */
    json_t *a = J("{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":1,\"y\":0,\"w\":10,\"h\":10}],\"note\":\"hi\"}");
    assert_int_equal(tly_compare_answer(tmpl, a, gold, NULL, NULL, &s, &detail, &err), 1);
    assert_near(s, (1 + 90.0 / 110) / 2, TOL);
    assert_int_equal(json_object_size(detail), 2);
    assert_true(json_is_true(json_object_get(json_object_get(detail, "label"), "correct")));
    assert_near(json_real_value(json_object_get(json_object_get(detail, "boxes"), "score")), 90.0 / 110, TOL);
    assert_null(json_object_get(detail, "note"));
    json_decref(detail);
    json_decref(a);

    /* Boxes missing from the answer: wrong, score 0 for that control. */
    a = J("{\"label\":\"cat\"}");
    assert_int_equal(tly_compare_answer(tmpl, a, gold, NULL, NULL, &s, &detail, &err), 0);
    assert_near(s, 0.5, TOL);
    assert_true(json_is_false(json_object_get(json_object_get(detail, "boxes"), "correct")));
    assert_near(json_real_value(json_object_get(json_object_get(detail, "boxes"), "score")), 0, TOL);
    json_decref(detail);
    json_decref(a);

    /* NULL answer counts as {}; detail may be left out. */
    assert_int_equal(tly_compare_answer(tmpl, NULL, gold, NULL, NULL, &s, NULL, &err), 0);
    assert_near(s, 0, TOL);

    /* Errors: a gold answering nothing, a gold that is no object, a bad value. */
    json_t *empty = J("{\"note\":null,\"unknown\":1}");
    a = J("{\"label\":\"cat\"}");
    detail = (json_t *)1;
    assert_int_equal(tly_compare_answer(tmpl, a, empty, NULL, NULL, &s, &detail, &err), -1);
    assert_string_equal(err.code, "invalid_gold");
    assert_null(detail);
    json_decref(empty);
    json_t *arr = J("[]");
    assert_int_equal(tly_compare_answer(tmpl, a, arr, NULL, NULL, &s, &detail, &err), -1);
    assert_string_equal(err.code, "invalid_gold");
    assert_int_equal(tly_compare_answer(tmpl, arr, gold, NULL, NULL, &s, &detail, &err), -1);
    assert_string_equal(err.code, "invalid_answer");
    json_decref(arr);
    json_decref(a);
    a = J("{\"label\":\"cat\",\"boxes\":{\"x\":1}}");
    assert_int_equal(tly_compare_answer(tmpl, a, gold, NULL, NULL, &s, &detail, &err), -1);
    assert_string_equal(err.code, "invalid_answer");
    assert_non_null(strstr(err.message, "boxes"));
    assert_null(detail);
    json_decref(a);
    json_t *bad_tmpl = J("{\"controls\":{}}");
    assert_int_equal(tly_compare_answer(bad_tmpl, NULL, gold, NULL, NULL, &s, NULL, &err), -1);
    assert_string_equal(err.code, "invalid_template");
    json_decref(bad_tmpl);

    json_decref(gold);
    json_decref(tmpl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_box_and_interval_iou),
        cmocka_unit_test(test_polygon_area_and_iou),
        cmocka_unit_test(test_text_normalize),
        cmocka_unit_test(test_wer),
        cmocka_unit_test(test_wer_cap),
        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_compare_choice_and_multi),
        cmocka_unit_test(test_compare_text),
        cmocka_unit_test(test_compare_bbox),
        cmocka_unit_test(test_compare_polygon),
        cmocka_unit_test(test_compare_keypoints),
        cmocka_unit_test(test_compare_segments),
        cmocka_unit_test(test_compare_bad_values),
        cmocka_unit_test(test_compare_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
