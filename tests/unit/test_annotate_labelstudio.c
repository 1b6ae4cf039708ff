/* test_annotate_labelstudio.c -- unit tests for annotate/labelstudio.h: the Label Studio
 * labeling config made from a template, task data, and hand-made Label Studio
 * predictions translated into Tally answers (which the template engine then accepts).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "annotate/labelstudio.h"
#include "annotate/template.h"
#include "unit_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------- */

static const char *IMAGE_TMPL =
    "{\"controls\":["
    "{\"name\":\"species\",\"type\":\"choice\",\"required\":true,\"options\":[\"cat\",\"dog\"]},"
    "{\"name\":\"tags\",\"type\":\"multi_choice\",\"options\":[\"indoor\",\"outdoor\",\"blurry\"]},"
    "{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"car\",\"R&D \\\"lab\\\"\"]},"
    "{\"name\":\"outline\",\"type\":\"polygon\",\"labels\":[\"road\"]},"
    "{\"name\":\"blob\",\"type\":\"polygon\"},"
    "{\"name\":\"pose\",\"type\":\"keypoints\",\"labels\":[\"person\"],\"points\":[\"nose\",\"left_eye\",\"right_eye\"]},"
    "{\"name\":\"dots\",\"type\":\"keypoints\",\"labels\":[\"apple\",\"pear\"]},"
    "{\"name\":\"pins\",\"type\":\"keypoints\"},"
    "{\"name\":\"notes\",\"type\":\"text\"}"
    "]}";

static const char *AUDIO_TMPL =
    "{\"controls\":["
    "{\"name\":\"speakers\",\"type\":\"audio_segments\",\"labels\":[\"speech\",\"<music> & 'noise'\"]},"
    "{\"name\":\"words\",\"type\":\"transcription\",\"required\":true},"
    "{\"name\":\"audio\",\"type\":\"choice\",\"options\":[\"clean\",\"noisy\"]}"
    "]}";

static const char *IMAGE_640 = "{\"format\":\"jpeg\",\"width\":640,\"height\":480}";
static const char *AUDIO_10S = "{\"format\":\"wav\",\"duration\":10.0}";

/* Not fabs: the program does not link libm. */
static double dabs(double v)
{
    return v < 0 ? -v : v;
}

/* a and b are equal JSON, numbers compared by value (1e-9) so 64 matches 64.0. */
static int json_near(json_t *a, json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return dabs(json_number_value(a) - json_number_value(b)) <= 1e-9;
    if (json_typeof(a) != json_typeof(b))
        return 0;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_near(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        const char *k;
        json_t *v;
        json_object_foreach(a, k, v)
            if (!json_object_get(b, k) || !json_near(v, json_object_get(b, k)))
                return 0;
        return 1;
    }
    return json_equal(a, b);
}

/* Translates pred for tmpl/media; the answer must equal `want` and be accepted by the
 * template engine (unless want_valid is 0); *score and *ignored as given. */
static void translate_ok(const char *tmpl_text, const char *media_text, const char *pred_text, const char *want,
                         double want_score, int want_ignored)
{
    json_t *tmpl = J(tmpl_text), *media = media_text ? J(media_text) : NULL, *pred = J(pred_text);
    json_t *answer = (json_t *)1;
    double score = 42;
    int ignored = -5;
    tly_error err;
    tly_error_clear(&err);
    int rc = tly_ls_answer_from_prediction(tmpl, media, pred, &answer, &score, &ignored, &err);
    if (rc != 0)
        fail_msg("prediction should translate: %s -> %s", pred_text, err.message);
    json_t *w = J(want);
    char *got = json_dumps(answer, JSON_COMPACT);
    if (!json_near(answer, w))
        fail_msg("prediction %s\n  gave %s\n  want %s", pred_text, got, want);
    free(got);
    if (dabs(score - want_score) > 1e-9)
        fail_msg("score %g, want %g", score, want_score);
    assert_int_equal(ignored, want_ignored);
    tly_error_clear(&err);
    if (tly_template_validate_answer(tmpl, answer, media, &err) != 0)
        fail_msg("translated answer should validate: %s", err.message);
    /* NULL score / ignored are allowed. */
    json_t *again = NULL;
    assert_int_equal(tly_ls_answer_from_prediction(tmpl, media, pred, &again, NULL, NULL, NULL), 0);
    assert_true(json_equal(again, answer));
    json_decref(again);
    json_decref(w);
    json_decref(answer);
    json_decref(tmpl);
    json_decref(media);
    json_decref(pred);
}

/* Translation must fail with UNPROCESSABLE "invalid_prediction", a message containing
 * frag, *answer NULL and *score -1; also with a NULL err. */
static void translate_bad(const char *tmpl_text, const char *media_text, const char *pred_text, const char *frag)
{
    json_t *tmpl = J(tmpl_text), *media = media_text ? J(media_text) : NULL, *pred = J(pred_text);
    json_t *answer = (json_t *)1;
    double score = 42;
    int ignored = 0;
    tly_error err;
    tly_error_clear(&err);
    if (tly_ls_answer_from_prediction(tmpl, media, pred, &answer, &score, &ignored, &err) != -1)
        fail_msg("prediction should be rejected: %s", pred_text);
    assert_null(answer);
    assert_true(score == -1);
    assert_int_equal(err.status, TLY_E_UNPROCESSABLE);
    assert_string_equal(err.code, "invalid_prediction");
    if (!strstr(err.message, frag))
        fail_msg("message for %s lacks \"%s\": %s", pred_text, frag, err.message);
    assert_int_equal(tly_ls_answer_from_prediction(tmpl, media, pred, &answer, NULL, NULL, NULL), -1);
    assert_null(answer);
    json_decref(tmpl);
    json_decref(media);
    json_decref(pred);
}

/* ---- label config ---------------------------------------------------------------- */

static void test_config_image(void **state)
{
    json_t *tmpl = J(IMAGE_TMPL);
    tly_error err;
    tly_error_clear(&err);
    char *xml = tly_ls_label_config(tmpl, "image", &err);
    if (!xml)
        fail_msg("config: %s", err.message);
    const char *want =
        "<View>\n"
        "  <Image name=\"image\" value=\"$image\"/>\n"
        "  <Choices name=\"species\" toName=\"image\" choice=\"single\" required=\"true\">\n"
        "    <Choice value=\"cat\"/>\n"
        "    <Choice value=\"dog\"/>\n"
        "  </Choices>\n"
        "  <Choices name=\"tags\" toName=\"image\" choice=\"multiple\">\n"
        "    <Choice value=\"indoor\"/>\n"
        "    <Choice value=\"outdoor\"/>\n"
        "    <Choice value=\"blurry\"/>\n"
        "  </Choices>\n"
        "  <RectangleLabels name=\"boxes\" toName=\"image\">\n"
        "    <Label value=\"car\"/>\n"
        "    <Label value=\"R&amp;D &quot;lab&quot;\"/>\n"
        "  </RectangleLabels>\n"
        "  <PolygonLabels name=\"outline\" toName=\"image\">\n"
        "    <Label value=\"road\"/>\n"
        "  </PolygonLabels>\n"
        "  <Polygon name=\"blob\" toName=\"image\"/>\n"
        "  <KeyPointLabels name=\"pose\" toName=\"image\" choice=\"multiple\">\n"
        "    <Label value=\"nose\"/>\n"
        "    <Label value=\"left_eye\"/>\n"
        "    <Label value=\"right_eye\"/>\n"
        "    <Label value=\"person\"/>\n"
        "  </KeyPointLabels>\n"
        "  <KeyPointLabels name=\"dots\" toName=\"image\">\n"
        "    <Label value=\"apple\"/>\n"
        "    <Label value=\"pear\"/>\n"
        "  </KeyPointLabels>\n"
        "  <KeyPoint name=\"pins\" toName=\"image\"/>\n"
        "  <TextArea name=\"notes\" toName=\"image\" maxSubmissions=\"1\"/>\n"
        "</View>\n";
    assert_string_equal(xml, want);
    free(xml);
    json_decref(tmpl);
}

static void test_config_audio(void **state)
{
    /* A control named "audio" pushes the object tag's name to "audio1"; the data key
     * stays $audio. */
    json_t *tmpl = J(AUDIO_TMPL);
    tly_error err;
    tly_error_clear(&err);
    char *xml = tly_ls_label_config(tmpl, "audio", &err);
    if (!xml)
        fail_msg("config: %s", err.message);
    const char *want =
        "<View>\n"
        "  <Audio name=\"audio1\" value=\"$audio\"/>\n"
        "  <Labels name=\"speakers\" toName=\"audio1\">\n"
        "    <Label value=\"speech\"/>\n"
        "    <Label value=\"&lt;music&gt; &amp; &apos;noise&apos;\"/>\n"
        "  </Labels>\n"
        "  <TextArea name=\"words\" toName=\"audio1\" maxSubmissions=\"1\" editable=\"true\" rows=\"4\" required=\"true\"/>\n"
        "  <Choices name=\"audio\" toName=\"audio1\" choice=\"single\">\n"
        "    <Choice value=\"clean\"/>\n"
        "    <Choice value=\"noisy\"/>\n"
        "  </Choices>\n"
        "</View>\n";
    assert_string_equal(xml, want);
    free(xml);
    json_decref(tmpl);
}

static void test_config_escapes_whitespace(void **state)
{
    json_t *tmpl = J("{\"controls\":[{\"name\":\"c\",\"type\":\"choice\",\"options\":[\"a\\tb\\nc\",\"x\\u0001y\"]}]}");
    char *xml = tly_ls_label_config(tmpl, "image", NULL);
    assert_non_null(xml);
    assert_non_null(strstr(xml, "<Choice value=\"a&#9;b&#10;c\"/>"));
    assert_non_null(strstr(xml, "<Choice value=\"xy\"/>"));
    free(xml);
    json_decref(tmpl);
}

static void test_config_rejects(void **state)
{
    tly_error err;
    /* audio_segments does not apply to image projects. */
    json_t *tmpl = J(AUDIO_TMPL);
    tly_error_clear(&err);
    assert_null(tly_ls_label_config(tmpl, "image", &err));
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_string_equal(err.code, "invalid_template");
    tly_error_clear(&err);
    assert_null(tly_ls_label_config(tmpl, "video", &err));
    assert_string_equal(err.code, "invalid_media");
    assert_null(tly_ls_label_config(tmpl, NULL, NULL));
    json_decref(tmpl);
    tmpl = J("{\"controls\":[]}");
    assert_null(tly_ls_label_config(tmpl, "image", NULL));
    json_decref(tmpl);
    tmpl = J("[1]");
    assert_null(tly_ls_label_config(tmpl, "image", NULL));
    json_decref(tmpl);
}

static void test_task_data(void **state)
{
    json_t *d = tly_ls_task_data("image", "http://h/v1/items/7/media");
    json_t *w = J("{\"image\":\"http://h/v1/items/7/media\"}");
    assert_true(json_equal(d, w));
    json_decref(d);
    json_decref(w);
    d = tly_ls_task_data("audio", "http://h/a");
    w = J("{\"audio\":\"http://h/a\"}");
    assert_true(json_equal(d, w));
    json_decref(d);
    json_decref(w);
}

/* ---- predictions ----------------------------------------------------------------- */

static void test_rectangle(void **state)
{
    /* The brief's example: 10/20/50/25 % of 640x480 = 64, 96, 320 x 120. */
    translate_ok(IMAGE_TMPL, IMAGE_640,
                 "{\"result\":[{\"from_name\":\"boxes\",\"to_name\":\"image\",\"type\":\"rectanglelabels\","
                 "\"original_width\":640,\"original_height\":480,"
                 "\"value\":{\"x\":10,\"y\":20,\"width\":50,\"height\":25,\"rotation\":0,\"rectanglelabels\":[\"car\"]}},"
                 "{\"from_name\":\"species\",\"to_name\":\"image\",\"type\":\"choices\",\"value\":{\"choices\":[\"cat\"]}}],"
                 "\"score\":0.87,\"model_version\":\"v1\"}",
                 "{\"boxes\":[{\"label\":\"car\",\"x\":64,\"y\":96,\"w\":320,\"h\":120}],\"species\":\"cat\"}", 0.87, 0);
    /* Clamped into the image: 90% + 50% wide ends at the right edge; one box wholly
     * outside is dropped (and counted); a label with & and " comes back as is. */
    translate_ok(IMAGE_TMPL, IMAGE_640,
                 "{\"result\":["
                 "{\"from_name\":\"boxes\",\"type\":\"rectanglelabels\","
                 "\"value\":{\"x\":90,\"y\":-10,\"width\":50,\"height\":20,\"rectanglelabels\":[\"R&D \\\"lab\\\"\"]}},"
                 "{\"from_name\":\"boxes\",\"type\":\"rectanglelabels\","
                 "\"value\":{\"x\":120,\"y\":10,\"width\":5,\"height\":5,\"rectanglelabels\":[\"car\"]}},"
                 "{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[\"dog\"]}}]}",
                 "{\"boxes\":[{\"label\":\"R&D \\\"lab\\\"\",\"x\":576,\"y\":0,\"w\":64,\"h\":48}],\"species\":\"dog\"}", -1,
                 1);
    /* Rotated 90 degrees clockwise around the top-left corner (320, 240): a 64x48 box
     * turns into the 48x64 box to the left, below. */
    translate_ok(IMAGE_TMPL, IMAGE_640,
                 "{\"result\":[{\"from_name\":\"boxes\",\"type\":\"rectanglelabels\","
                 "\"value\":{\"x\":50,\"y\":50,\"width\":10,\"height\":10,\"rotation\":90,\"rectanglelabels\":[\"car\"]}},"
                 "{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[\"cat\"]}}]}",
                 "{\"boxes\":[{\"label\":\"car\",\"x\":272,\"y\":240,\"w\":48,\"h\":64}],\"species\":\"cat\"}", -1, 0);
    /* A plain "rectangle" with no label gets the control's only label -- not here (two
     * labels), so the box has none and the template engine would name that. */
    json_t *tmpl = J(IMAGE_TMPL), *media = J(IMAGE_640), *answer = NULL;
    json_t *pred = J("{\"result\":[{\"from_name\":\"boxes\",\"type\":\"rectangle\","
                     "\"value\":{\"x\":0,\"y\":0,\"width\":100,\"height\":100}}]}");
    assert_int_equal(tly_ls_answer_from_prediction(tmpl, media, pred, &answer, NULL, NULL, NULL), 0);
    json_t *want = J("{\"boxes\":[{\"x\":0,\"y\":0,\"w\":640,\"h\":480}]}");
    assert_true(json_near(answer, want));
    assert_int_equal(tly_template_validate_answer(tmpl, answer, media, NULL), -1);
    json_decref(want);
    json_decref(answer);
    json_decref(tmpl);
    json_decref(media);
    json_decref(pred);
}

/* A 64x48 box at (320, 240) turned by deg degrees: the axis-aligned box around it. */
static void rotated(double deg, double x, double y, double w, double h)
{
    char pred[512], want[256];
    snprintf(pred, sizeof pred,
             "{\"result\":[{\"from_name\":\"boxes\",\"type\":\"rectanglelabels\",\"value\":{\"x\":50,\"y\":50,"
             "\"width\":10,\"height\":10,\"rotation\":%.17g,\"rectanglelabels\":[\"car\"]}},"
             "{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[\"cat\"]}}]}",
             deg);
    snprintf(want, sizeof want,
             "{\"boxes\":[{\"label\":\"car\",\"x\":%.17g,\"y\":%.17g,\"w\":%.17g,\"h\":%.17g}],\"species\":\"cat\"}",
             x, y, w, h);
    translate_ok(IMAGE_TMPL, IMAGE_640, pred, want, -1, 0);
}

static void test_rotation(void **state)
{
    const double c30 = 0.86602540378443864676;   /* cos 30 degrees */
    rotated(0, 320, 240, 64, 48);
    rotated(90, 272, 240, 48, 64);
    rotated(450, 272, 240, 48, 64);
    rotated(-270, 272, 240, 48, 64);
    rotated(180, 256, 192, 64, 48);
    rotated(-90, 320, 176, 48, 64);
    rotated(30, 320 - 24, 240, 64 * c30 + 24, 32 + 48 * c30);
    rotated(-30, 320, 240 - 32, 64 * c30 + 24, 32 + 48 * c30);
    rotated(390, 320 - 24, 240, 64 * c30 + 24, 32 + 48 * c30);
    /* 45 degrees: the corners at +-sqrt(2)/2 of each side. */
    const double r = 0.70710678118654752440;
    rotated(45, 320 - 48 * r, 240, 64 * r + 48 * r, 64 * r + 48 * r);
    /* Out of range rotation: malformed. */
    translate_bad(IMAGE_TMPL, IMAGE_640,
                  "{\"result\":[{\"from_name\":\"boxes\",\"type\":\"rectanglelabels\",\"value\":{\"x\":1,\"y\":1,"
                  "\"width\":5,\"height\":5,\"rotation\":1e300,\"rectanglelabels\":[\"car\"]}}]}",
                  "rotation");
}

static void test_polygon(void **state)
{
    translate_ok(IMAGE_TMPL, IMAGE_640,
                 "{\"result\":["
                 "{\"from_name\":\"outline\",\"type\":\"polygonlabels\","
                 "\"value\":{\"points\":[[10,10],[50,10],[50,50],[10,50]],\"polygonlabels\":[\"road\"],\"closed\":true}},"
                 /* no label, one label in the control: that one; a point past the edge is clamped */
                 "{\"from_name\":\"outline\",\"type\":\"polygon\",\"value\":{\"points\":[[0,0],[110,0],[50,25]]}},"
                 /* a control without labels drops the region's label */
                 "{\"from_name\":\"blob\",\"type\":\"polygonlabels\","
                 "\"value\":{\"points\":[[25,25],[75,25],[75,75]],\"polygonlabels\":[\"x\"]}},"
                 /* fewer than 3 points: dropped */
                 "{\"from_name\":\"blob\",\"type\":\"polygon\",\"value\":{\"points\":[[1,1],[2,2]]}},"
                 "{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[\"cat\"]}}]}",
                 "{\"outline\":[{\"label\":\"road\",\"points\":[[64,48],[320,48],[320,240],[64,240]]},"
                 "{\"label\":\"road\",\"points\":[[0,0],[640,0],[320,120]]}],"
                 "\"blob\":[{\"points\":[[160,120],[480,120],[480,360]]}],\"species\":\"cat\"}",
                 -1, 1);
}

static void test_keypoints(void **state)
{
    /* Named points: the k-th region of each name fills instance k; "person" is the
     * instance label (the only one, so also when a region does not say it). */
    translate_ok(IMAGE_TMPL, IMAGE_640,
                 "{\"result\":["
                 "{\"from_name\":\"pose\",\"type\":\"keypointlabels\","
                 "\"value\":{\"x\":50,\"y\":25,\"width\":1,\"keypointlabels\":[\"nose\",\"person\"]},\"score\":0.9},"
                 "{\"from_name\":\"pose\",\"type\":\"keypointlabels\","
                 "\"value\":{\"x\":45,\"y\":20,\"width\":1,\"keypointlabels\":[\"left_eye\"]},\"score\":0.7},"
                 "{\"from_name\":\"pose\",\"type\":\"keypointlabels\","
                 "\"value\":{\"x\":10,\"y\":10,\"keypointlabels\":[\"nose\"]},\"score\":0.5},"
                 "{\"from_name\":\"pose\",\"type\":\"keypointlabels\","
                 "\"value\":{\"x\":10,\"y\":10,\"keypointlabels\":[\"tail\"]},\"score\":0.1},"
                 "{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[\"cat\"]}}]}",
                 "{\"pose\":[{\"label\":\"person\",\"points\":[[320,120],[288,96],null]},"
                 "{\"label\":\"person\",\"points\":[[64,48],null,null]}],\"species\":\"cat\"}",
                 0.7, 1);
    /* Unnamed points: one instance per label, in order of first appearance; without
     * labels, one instance. */
    translate_ok(IMAGE_TMPL, IMAGE_640,
                 "{\"result\":["
                 "{\"from_name\":\"dots\",\"type\":\"keypointlabels\",\"value\":{\"x\":10,\"y\":10,\"keypointlabels\":[\"pear\"]}},"
                 "{\"from_name\":\"dots\",\"type\":\"keypointlabels\",\"value\":{\"x\":20,\"y\":20,\"keypointlabels\":[\"apple\"]}},"
                 "{\"from_name\":\"dots\",\"type\":\"keypointlabels\",\"value\":{\"x\":30,\"y\":30,\"keypointlabels\":[\"pear\"]}},"
                 "{\"from_name\":\"pins\",\"type\":\"keypoint\",\"value\":{\"x\":100,\"y\":100}},"
                 "{\"from_name\":\"pins\",\"type\":\"keypoint\",\"value\":{\"x\":-5,\"y\":50}},"
                 "{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[\"cat\"]}}]}",
                 "{\"dots\":[{\"label\":\"pear\",\"points\":[[64,48],[192,144]]},{\"label\":\"apple\",\"points\":[[128,96]]}],"
                 "\"pins\":[{\"points\":[[640,480],[0,240]]}],\"species\":\"cat\"}",
                 -1, 0);
}

static void test_choices(void **state)
{
    /* Single: the first choice; a second choices result is dropped. Multiple: the
     * union, without repeats. */
    translate_ok(IMAGE_TMPL, IMAGE_640,
                 "{\"result\":["
                 "{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[\"dog\",\"cat\"]},\"score\":0.6},"
                 "{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[\"cat\"]},\"score\":0.1},"
                 "{\"from_name\":\"tags\",\"type\":\"choices\",\"value\":{\"choices\":[\"outdoor\",\"blurry\"]},\"score\":0.8},"
                 "{\"from_name\":\"tags\",\"type\":\"choices\",\"value\":{\"choices\":[\"blurry\",\"indoor\"]}}]}",
                 "{\"species\":\"dog\",\"tags\":[\"outdoor\",\"blurry\",\"indoor\"]}", 0.7, 1);
    /* An empty choices list for a single choice is dropped; for multi_choice it is []. */
    translate_ok(IMAGE_TMPL, IMAGE_640,
                 "{\"result\":["
                 "{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[]}},"
                 "{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[\"cat\"]}},"
                 "{\"from_name\":\"tags\",\"type\":\"choices\",\"value\":{\"choices\":[]}}]}",
                 "{\"species\":\"cat\",\"tags\":[]}", -1, 1);
}

static void test_audio(void **state)
{
    translate_ok(AUDIO_TMPL, AUDIO_10S,
                 "{\"result\":["
                 "{\"from_name\":\"speakers\",\"to_name\":\"audio\",\"type\":\"labels\","
                 "\"value\":{\"start\":0.5,\"end\":2.25,\"channel\":0,\"labels\":[\"speech\"]},\"score\":0.5},"
                 /* clamped to the duration */
                 "{\"from_name\":\"speakers\",\"type\":\"labels\","
                 "\"value\":{\"start\":8,\"end\":12,\"labels\":[\"<music> & 'noise'\"]},\"score\":1.0},"
                 /* wholly after the end: dropped */
                 "{\"from_name\":\"speakers\",\"type\":\"labels\",\"value\":{\"start\":11,\"end\":12,\"labels\":[\"speech\"]}},"
                 /* textarea, per-segment texts of a transcription run together */
                 "{\"from_name\":\"words\",\"type\":\"textarea\",\"value\":{\"start\":0,\"end\":2,\"text\":[\"hello\"]}},"
                 "{\"from_name\":\"words\",\"type\":\"textarea\",\"value\":{\"text\":[\"big\",\"world\"]}},"
                 "{\"from_name\":\"audio\",\"type\":\"choices\",\"value\":{\"choices\":[\"noisy\"]}}]}",
                 "{\"speakers\":[{\"label\":\"speech\",\"start\":0.5,\"end\":2.25},"
                 "{\"label\":\"<music> & 'noise'\",\"start\":8,\"end\":10}],"
                 "\"words\":\"hello big world\",\"audio\":\"noisy\"}",
                 0.75, 1);
    /* Unknown duration: spans kept as given. */
    translate_ok(AUDIO_TMPL, "{\"format\":\"wav\"}",
                 "{\"result\":[{\"from_name\":\"speakers\",\"type\":\"labels\","
                 "\"value\":{\"start\":8,\"end\":12,\"labels\":[\"speech\"]}},"
                 "{\"from_name\":\"words\",\"type\":\"textarea\",\"value\":{\"text\":\"a string\"}}]}",
                 "{\"speakers\":[{\"label\":\"speech\",\"start\":8,\"end\":12}],\"words\":\"a string\"}", -1, 0);
}

static void test_textarea(void **state)
{
    translate_ok(IMAGE_TMPL, IMAGE_640,
                 "{\"result\":["
                 "{\"from_name\":\"notes\",\"type\":\"textarea\",\"value\":{\"text\":[\"two\",\"lines\"]}},"
                 "{\"from_name\":\"notes\",\"type\":\"textarea\",\"value\":{\"text\":[]}},"
                 "{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[\"cat\"]}}],\"score\":0.3}",
                 "{\"notes\":\"two\\nlines\",\"species\":\"cat\"}", 0.3, 1);
}

static void test_ignored(void **state)
{
    /* Unknown from_name, no from_name (a relation), a type that does not fit its
     * control, an unknown type: all ignored, counted, never an error -- even the
     * rectangle on an item with no image size. */
    translate_ok(IMAGE_TMPL, NULL,
                 "{\"result\":["
                 "{\"from_name\":\"nope\",\"type\":\"choices\",\"value\":{\"choices\":[\"cat\"]}},"
                 "{\"type\":\"relation\",\"from_id\":\"a\",\"to_id\":\"b\"},"
                 "{\"from_name\":\"species\",\"type\":\"rectanglelabels\",\"value\":{\"x\":1}},"
                 "{\"from_name\":\"boxes\",\"type\":\"choices\",\"value\":{\"choices\":[\"car\"]}},"
                 "{\"from_name\":\"notes\",\"type\":\"brushlabels\",\"value\":{}},"
                 "{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[\"cat\"]}}]}",
                 "{\"species\":\"cat\"}", -1, 5);
    /* An empty result is an empty answer (which a required control then rejects). */
    json_t *tmpl = J(IMAGE_TMPL), *pred = J("{\"result\":[],\"score\":2}"), *answer = NULL;
    double score = 0;
    assert_int_equal(tly_ls_answer_from_prediction(tmpl, NULL, pred, &answer, &score, NULL, NULL), 0);
    assert_int_equal(json_object_size(answer), 0);
    assert_true(score == 1);   /* clamped */
    json_decref(answer);
    json_decref(pred);
    json_decref(tmpl);
}

static void test_bad_shapes(void **state)
{
    translate_bad(IMAGE_TMPL, IMAGE_640, "[]", "must be an object");
    translate_bad(IMAGE_TMPL, IMAGE_640, "\"x\"", "must be an object");
    translate_bad(IMAGE_TMPL, IMAGE_640, "{\"score\":0.5}", "'result' must be a list");
    translate_bad(IMAGE_TMPL, IMAGE_640, "{\"result\":{}}", "'result' must be a list");
    translate_bad(IMAGE_TMPL, IMAGE_640, "{\"result\":[1]}", "result 0 must be an object");
    translate_bad(IMAGE_TMPL, IMAGE_640, "{\"result\":[{\"from_name\":\"species\",\"type\":\"choices\"}]}",
                  "'value' must be an object");
    translate_bad(IMAGE_TMPL, IMAGE_640,
                  "{\"result\":[{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":\"cat\"}}]}",
                  "value.choices must be a list of strings");
    translate_bad(IMAGE_TMPL, IMAGE_640,
                  "{\"result\":[{\"from_name\":\"tags\",\"type\":\"choices\",\"value\":{\"choices\":[1]}}]}",
                  "value.choices must be a list of strings");
    translate_bad(IMAGE_TMPL, IMAGE_640,
                  "{\"result\":[{\"from_name\":\"boxes\",\"type\":\"rectanglelabels\","
                  "\"value\":{\"x\":1,\"y\":1,\"width\":\"5\",\"height\":5}}]}",
                  "result 0 ('boxes'): a rectanglelabels needs numbers x, y, width and height");
    translate_bad(IMAGE_TMPL, IMAGE_640,
                  "{\"result\":[{\"from_name\":\"boxes\",\"type\":\"rectanglelabels\","
                  "\"value\":{\"x\":1,\"y\":1,\"width\":5,\"height\":5,\"rectanglelabels\":\"car\"}}]}",
                  "value.rectanglelabels must be a list of strings");
    translate_bad(IMAGE_TMPL, IMAGE_640,
                  "{\"result\":[{\"from_name\":\"outline\",\"type\":\"polygonlabels\","
                  "\"value\":{\"points\":[[1,1],[2],[3,3]]}}]}",
                  "needs 'points' as a list of [x, y] numbers");
    translate_bad(IMAGE_TMPL, IMAGE_640,
                  "{\"result\":[{\"from_name\":\"pins\",\"type\":\"keypoint\",\"value\":{\"x\":1}}]}",
                  "needs numbers x and y");
    translate_bad(IMAGE_TMPL, IMAGE_640,
                  "{\"result\":[{\"from_name\":\"notes\",\"type\":\"textarea\",\"value\":{\"text\":[null]}}]}",
                  "value.text must be a list of strings");
    translate_bad(AUDIO_TMPL, AUDIO_10S,
                  "{\"result\":[{\"from_name\":\"speakers\",\"type\":\"labels\",\"value\":{\"start\":1}}]}",
                  "needs numbers start and end");
    /* Image regions need the image size. */
    translate_bad(IMAGE_TMPL, NULL,
                  "{\"result\":[{\"from_name\":\"boxes\",\"type\":\"rectanglelabels\","
                  "\"value\":{\"x\":1,\"y\":1,\"width\":5,\"height\":5,\"rectanglelabels\":[\"car\"]}}]}",
                  "image size is not known");
    translate_bad(IMAGE_TMPL, "{\"format\":\"jpeg\"}",
                  "{\"result\":[{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[\"cat\"]}},"
                  "{\"from_name\":\"pins\",\"type\":\"keypoint\",\"value\":{\"x\":1,\"y\":1}}]}",
                  "result 1 ('pins'): keypoint regions are in percent of the image");
}

static void test_score(void **state)
{
    /* The prediction's score wins over the regions'. */
    translate_ok(IMAGE_TMPL, IMAGE_640,
                 "{\"result\":[{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[\"cat\"]},\"score\":0.2}],"
                 "\"score\":0.9}",
                 "{\"species\":\"cat\"}", 0.9, 0);
    /* Else the mean of the used regions' scores (ignored ones do not count; a score
     * that is not a number is no score). */
    translate_ok(IMAGE_TMPL, IMAGE_640,
                 "{\"result\":["
                 "{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[\"cat\"]},\"score\":0.2},"
                 "{\"from_name\":\"boxes\",\"type\":\"rectanglelabels\",\"score\":0.6,"
                 "\"value\":{\"x\":0,\"y\":0,\"width\":10,\"height\":10,\"rectanglelabels\":[\"car\"]}},"
                 "{\"from_name\":\"boxes\",\"type\":\"rectanglelabels\",\"score\":\"high\","
                 "\"value\":{\"x\":10,\"y\":10,\"width\":10,\"height\":10,\"rectanglelabels\":[\"car\"]}},"
                 "{\"from_name\":\"ghost\",\"type\":\"choices\",\"value\":{\"choices\":[\"x\"]},\"score\":0.0}],"
                 "\"score\":null}",
                 "{\"species\":\"cat\",\"boxes\":[{\"label\":\"car\",\"x\":0,\"y\":0,\"w\":64,\"h\":48},"
                 "{\"label\":\"car\",\"x\":64,\"y\":48,\"w\":64,\"h\":48}]}",
                 0.4, 1);
    /* Neither: unknown. */
    translate_ok(IMAGE_TMPL, IMAGE_640,
                 "{\"result\":[{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[\"cat\"]}}]}",
                 "{\"species\":\"cat\"}", -1, 0);
}

/* Boxes reaching the right / bottom edge through fractions of a percent stay inside
 * the image, so the template engine (which has no tolerance) accepts them. */
static void test_edges_exact(void **state)
{
    json_t *tmpl = J(IMAGE_TMPL), *media = J("{\"width\":1001,\"height\":997}");
    for (int k = 1; k < 300; k++) {
        char pred[512];
        double x = k / 3.0, y = k / 7.0;
        snprintf(pred, sizeof pred,
                 "{\"result\":[{\"from_name\":\"boxes\",\"type\":\"rectanglelabels\",\"value\":{\"x\":%.17g,\"y\":%.17g,"
                 "\"width\":%.17g,\"height\":%.17g,\"rectanglelabels\":[\"car\"]}},"
                 "{\"from_name\":\"species\",\"type\":\"choices\",\"value\":{\"choices\":[\"cat\"]}}]}",
                 x, y, 100 - x, 100 - y);
        json_t *p = J(pred), *answer = NULL;
        assert_int_equal(tly_ls_answer_from_prediction(tmpl, media, p, &answer, NULL, NULL, NULL), 0);
        tly_error err;
        if (tly_template_validate_answer(tmpl, answer, media, &err) != 0)
            fail_msg("k=%d: %s", k, err.message);
        json_decref(answer);
        json_decref(p);
    }
    json_decref(media);
    json_decref(tmpl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_image),
        cmocka_unit_test(test_config_audio),
        cmocka_unit_test(test_config_escapes_whitespace),
        cmocka_unit_test(test_config_rejects),
        cmocka_unit_test(test_task_data),
        cmocka_unit_test(test_rectangle),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_polygon),
        cmocka_unit_test(test_keypoints),
        cmocka_unit_test(test_choices),
        cmocka_unit_test(test_audio),
        cmocka_unit_test(test_textarea),
        cmocka_unit_test(test_ignored),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_score),
        cmocka_unit_test(test_edges_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
