/* test_annotate.c -- unit tests for annotate/: the template engine (template.h),
 * workflow normalization and project creation (project.h).
 *
 * Project creation runs end to end against a real SQLite store in a fresh mkdtemp
 * directory per test; nothing is mocked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "annotate/project.h"
#include "annotate/template.h"
#include "core/buf.h"
#include "core/fsutil.h"
#include "storage/store.h"
#include "unit_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------- */

static void tmpl_ok(const char *text, const char *media)
{
    json_t *t = J(text);
    tly_error err;
    tly_error_clear(&err);
    int rc = tly_template_validate(t, media, &err);
    json_decref(t);
    if (rc != 0)
        fail_msg("template should be valid for %s: %s\n  -> %s", media, text, err.message);
}

/* The template must be rejected with TLY_E_INVALID / "invalid_template" and a message
 * containing each of the given fragments (NULL-terminated). */
static void tmpl_bad(const char *text, const char *media, ...)
{
    json_t *t = J(text);
    tly_error err;
    tly_error_clear(&err);
    if (tly_template_validate(t, media, &err) != -1) {
        json_decref(t);
        fail_msg("template should be rejected for %s: %s", media, text);
    }
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_string_equal(err.code, "invalid_template");
    va_list ap;
    va_start(ap, media);
    for (const char *frag = va_arg(ap, const char *); frag; frag = va_arg(ap, const char *))
        if (!strstr(err.message, frag))
            fail_msg("message for %s lacks \"%s\": %s", text, frag, err.message);
    va_end(ap);
    /* NULL err is allowed. */
    assert_int_equal(tly_template_validate(t, media, NULL), -1);
    json_decref(t);
}

/* {"controls":[{"name":"c","type":"choice","options":["a"], <extra>}]} */
static void one_control(char *out, size_t sz, const char *def)
{
    snprintf(out, sz, "{\"controls\":[%s]}", def);
}

/* ---- template: valid ------------------------------------------------------------ */

static void test_template_valid_image(void **state)
{
    (void)state;
    tmpl_ok("{\"title\":\"Animals\",\"controls\":["
            "{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"],\"required\":true,"
            " \"title\":\"Animal\",\"description\":\"Which animal?\"},"
            "{\"name\":\"tags\",\"type\":\"multi_choice\",\"options\":[\"a\",\"b\",\"c\"],\"min\":1,\"max\":2},"
            "{\"name\":\"tags2\",\"type\":\"multi_choice\",\"options\":[\"a\",\"b\"]},"
            "{\"name\":\"tags3\",\"type\":\"multi_choice\",\"options\":[\"a\",\"b\"],\"min\":2,\"max\":2},"
            "{\"name\":\"note\",\"type\":\"text\",\"max_length\":100,\"placeholder\":\"...\",\"required\":false},"
            "{\"name\":\"note2\",\"type\":\"text\"},"
            "{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"car\",\"person\"]},"
            "{\"name\":\"poly\",\"type\":\"polygon\",\"labels\":[\"road\"]},"
            "{\"name\":\"poly2\",\"type\":\"polygon\"},"
            "{\"name\":\"pose\",\"type\":\"keypoints\",\"labels\":[\"person\"],"
            " \"points\":[\"nose\",\"left_eye\",\"right_eye\"]},"
            "{\"name\":\"pts\",\"type\":\"keypoints\"}"
            "]}",
            "image");
}

static void test_template_valid_audio(void **state)
{
    (void)state;
    tmpl_ok("{\"controls\":["
            "{\"name\":\"speaker\",\"type\":\"choice\",\"options\":[\"male\",\"female\"]},"
            "{\"name\":\"noise\",\"type\":\"multi_choice\",\"options\":[\"hum\",\"hiss\"],\"max\":1},"
            "{\"name\":\"comment\",\"type\":\"text\"},"
            "{\"name\":\"segments\",\"type\":\"audio_segments\",\"labels\":[\"speech\",\"music\"]},"
            "{\"name\":\"words\",\"type\":\"transcription\",\"max_length\":5000,\"language\":\"en\","
            " \"required\":true}"
            "]}",
            "audio");
}

static void test_template_valid_names_and_limits(void **state)
{
    (void)state;
    char buf[4096];
    /* Names: letters, digits, '_' and '-', starting with a letter, up to 64 bytes. */
    tmpl_ok("{\"controls\":[{\"name\":\"a-b_C9\",\"type\":\"text\"},{\"name\":\"Z\",\"type\":\"text\"}]}",
            "image");
    char name64[65];
    memset(name64, 'n', 64);
    name64[64] = '\0';
    snprintf(buf, sizeof buf, "{\"controls\":[{\"name\":\"%s\",\"type\":\"text\"}]}", name64);
    tmpl_ok(buf, "image");

    /* Exactly 64 controls is fine. */
    tly_buf b;
    tly_buf_init(&b, 1 << 20);
    assert_int_equal(tly_buf_appendf(&b, "{\"controls\":["), 0);
    for (int i = 0; i < 64; i++)
        assert_int_equal(tly_buf_appendf(&b, "%s{\"name\":\"c%d\",\"type\":\"text\"}", i ? "," : "", i), 0);
    assert_int_equal(tly_buf_appendf(&b, "]}"), 0);
    tmpl_ok(b.data, "image");
    tly_buf_free(&b);

    /* Non-ASCII option strings are fine. */
    tmpl_ok("{\"controls\":[{\"name\":\"c\",\"type\":\"choice\",\"options\":[\"caf\\u00e9\",\"\\u732b\"]}]}",
            "image");
}

/* ---- template: rejections ------------------------------------------------------- */

static void test_template_unknown_type(void **state)
{
    (void)state;
    tmpl_bad("{\"controls\":[{\"name\":\"shape\",\"type\":\"circle\"}]}", "image", "'shape'",
             "unknown type", "circle", NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"shape\",\"type\":\"\"}]}", "image", "'shape'", "unknown type",
             NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"shape\",\"type\":\"Choice\"}]}", "image", "unknown type", NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"shape\",\"type\":5}]}", "image", "type", NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"shape\"}]}", "image", "type", NULL);
}

static void test_template_media_mismatch(void **state)
{
    (void)state;
    /* Image-only controls in an audio project. */
    tmpl_bad("{\"controls\":[{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"car\"]}]}", "audio",
             "'boxes'", "bbox", "audio", NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"poly\",\"type\":\"polygon\"}]}", "audio", "'poly'", "polygon",
             NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"pose\",\"type\":\"keypoints\"}]}", "audio", "'pose'", "keypoints",
             NULL);
    /* Audio-only controls in an image project. */
    tmpl_bad("{\"controls\":[{\"name\":\"segs\",\"type\":\"audio_segments\",\"labels\":[\"x\"]}]}", "image",
             "'segs'", "audio_segments", "image", NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"words\",\"type\":\"transcription\"}]}", "image", "'words'",
             "transcription", NULL);
    /* One bad control among good ones is still a rejection. */
    tmpl_bad("{\"controls\":[{\"name\":\"ok\",\"type\":\"text\"},"
             "{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"car\"]}]}",
             "audio", "'boxes'", NULL);
}

static void test_template_missing_options_labels(void **state)
{
    (void)state;
    tmpl_bad("{\"controls\":[{\"name\":\"label\",\"type\":\"choice\"}]}", "image", "'label'", "options", NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"tags\",\"type\":\"multi_choice\"}]}", "image", "'tags'", "options",
             NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"boxes\",\"type\":\"bbox\"}]}", "image", "'boxes'", "labels", NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"segs\",\"type\":\"audio_segments\"}]}", "audio", "'segs'", "labels",
             NULL);
}

static void test_template_bad_option_sets(void **state)
{
    (void)state;
    char buf[512];
    static const char *const bad_sets[] = {
        "[]",                 /* empty */
        "\"cat\"",            /* not an array */
        "{}",                 /* not an array */
        "[1,2]",              /* non-string */
        "[\"cat\",null]",     /* non-string */
        "[\"cat\",[\"x\"]]",  /* non-string */
        "[\"\"]",             /* empty string */
        "[\"cat\",\"cat\"]",  /* duplicate */
        "[\"a\",\"b\",\"a\"]", /* duplicate, not adjacent */
    };
    for (size_t i = 0; i < sizeof bad_sets / sizeof bad_sets[0]; i++) {
        snprintf(buf, sizeof buf, "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":%s}]}",
                 bad_sets[i]);
        tmpl_bad(buf, "image", "'label'", "options", NULL);
        snprintf(buf, sizeof buf, "{\"controls\":[{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":%s}]}",
                 bad_sets[i]);
        tmpl_bad(buf, "image", "'boxes'", "labels", NULL);
        snprintf(buf, sizeof buf, "{\"controls\":[{\"name\":\"pose\",\"type\":\"keypoints\",\"points\":%s}]}",
                 bad_sets[i]);
        tmpl_bad(buf, "image", "'pose'", "points", NULL);
        snprintf(buf, sizeof buf,
                 "{\"controls\":[{\"name\":\"segs\",\"type\":\"audio_segments\",\"labels\":%s}]}", bad_sets[i]);
        tmpl_bad(buf, "audio", "'segs'", "labels", NULL);
    }
    /* Duplicates are named in the message. */
    tmpl_bad("{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"cat\"]}]}", "image",
             "'label'", "cat", NULL);
    /* An option over 200 bytes. */
    char longopt[260];
    memset(longopt, 'o', 201);
    longopt[201] = '\0';
    snprintf(buf, sizeof buf, "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"%s\"]}]}",
             longopt);
    tmpl_bad(buf, "image", "'label'", NULL);
}

static void test_template_unknown_key(void **state)
{
    (void)state;
    tmpl_bad("{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"a\"],\"colour\":\"red\"}]}",
             "image", "'label'", "colour", NULL);
    /* A key valid for another type is unknown here. */
    tmpl_bad("{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"a\"],\"labels\":[\"a\"]}]}",
             "image", "'label'", "labels", NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"a\"],\"min\":1}]}", "image",
             "'label'", "min", NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"a\"],\"points\":[\"p\"]}]}",
             "image", "'boxes'", "points", NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"note\",\"type\":\"text\",\"language\":\"en\"}]}", "image", "'note'",
             "language", NULL);
}

static void test_template_common_key_types(void **state)
{
    (void)state;
    /* "required" must be a boolean. */
    tmpl_bad("{\"controls\":[{\"name\":\"note\",\"type\":\"text\",\"required\":1}]}", "image", "required",
             NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"note\",\"type\":\"text\",\"required\":\"yes\"}]}", "image",
             "required", NULL);
    /* text max_length in range. */
    tmpl_bad("{\"controls\":[{\"name\":\"note\",\"type\":\"text\",\"max_length\":0}]}", "image", "'note'",
             "max_length", NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"note\",\"type\":\"text\",\"max_length\":\"10\"}]}", "image",
             "'note'", "max_length", NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"w\",\"type\":\"transcription\",\"max_length\":-5}]}", "audio", "'w'",
             "max_length", NULL);
    /* A control that is not an object. */
    tmpl_bad("{\"controls\":[\"label\"]}", "image", NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"ok\",\"type\":\"text\"},42]}", "image", NULL);
}

static void test_template_duplicate_names(void **state)
{
    (void)state;
    tmpl_bad("{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"a\"]},"
             "{\"name\":\"label\",\"type\":\"text\"}]}",
             "image", "'label'", NULL);
    tmpl_bad("{\"controls\":[{\"name\":\"a\",\"type\":\"text\"},{\"name\":\"b\",\"type\":\"text\"},"
             "{\"name\":\"a\",\"type\":\"text\"}]}",
             "image", "'a'", NULL);
}

static void test_template_invalid_names(void **state)
{
    (void)state;
    char buf[512];
    static const char *const bad_names[] = {
        "\"\"", "\"1abc\"", "\"_x\"", "\"-x\"", "\"a b\"", "\"a/b\"", "\"a.b\"", "\"a'b\"",
        "\"caf\\u00e9\"", "\"a\\tb\"",
    };
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        snprintf(buf, sizeof buf, "{\"controls\":[{\"name\":%s,\"type\":\"text\"}]}", bad_names[i]);
        tmpl_bad(buf, "image", "name", NULL);
    }
    char name65[66];
    memset(name65, 'n', 65);
    name65[65] = '\0';
    snprintf(buf, sizeof buf, "{\"controls\":[{\"name\":\"%s\",\"type\":\"text\"}]}", name65);
    tmpl_bad(buf, "image", "name", NULL);
    /* Non-string and missing names. */
    tmpl_bad("{\"controls\":[{\"name\":5,\"type\":\"text\"}]}", "image", "name", NULL);
    tmpl_bad("{\"controls\":[{\"name\":null,\"type\":\"text\"}]}", "image", "name", NULL);
    tmpl_bad("{\"controls\":[{\"type\":\"text\"}]}", "image", "name", NULL);
}

static void test_template_structure(void **state)
{
    (void)state;
    /* Zero controls, missing or wrong-typed controls. */
    tmpl_bad("{\"controls\":[]}", "image", "controls", NULL);
    tmpl_bad("{}", "image", "controls", NULL);
    tmpl_bad("{\"controls\":{}}", "image", "controls", NULL);
    tmpl_bad("{\"controls\":\"label\"}", "image", "controls", NULL);
    tmpl_bad("{\"controls\":null}", "image", "controls", NULL);
    /* Non-object templates. */
    tmpl_bad("[]", "image", NULL);
    tmpl_bad("[{\"name\":\"a\",\"type\":\"text\"}]", "image", NULL);
    tmpl_bad("\"template\"", "image", NULL);
    tmpl_bad("42", "audio", NULL);
    tmpl_bad("null", "image", NULL);
    tly_error err;
    assert_int_equal(tly_template_validate(NULL, "image", &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_string_equal(err.code, "invalid_template");
    /* Unknown top-level key. */
    tmpl_bad("{\"controls\":[{\"name\":\"a\",\"type\":\"text\"}],\"layout\":\"grid\"}", "image", "layout",
             NULL);
    tmpl_bad("{\"control\":[{\"name\":\"a\",\"type\":\"text\"}]}", "image", "control", NULL);
}

static void test_template_too_many_controls(void **state)
{
    (void)state;
    tly_buf b;
    tly_buf_init(&b, 1 << 20);
    assert_int_equal(tly_buf_appendf(&b, "{\"controls\":["), 0);
    for (int i = 0; i < 65; i++)
        assert_int_equal(tly_buf_appendf(&b, "%s{\"name\":\"c%d\",\"type\":\"text\"}", i ? "," : "", i), 0);
    assert_int_equal(tly_buf_appendf(&b, "]}"), 0);
    tmpl_bad(b.data, "image", "64", NULL);
    tly_buf_free(&b);
}

static void test_template_multi_choice_bounds(void **state)
{
    (void)state;
    /* The bounds of a multi_choice over 3 options; want: the member the message names
     * (NULL: the template is valid), media: what it is checked for. */
    static const struct {
        const char *bounds, *want, *media;
    } cases[] = {
        {"\"min\":3,\"max\":2", "min", "image"}, /* min > max */
        {"\"min\":4", "min", "image"},             /* min > number of options */
        /* max > number of options, max 0, negative min */
        {"\"max\":4", "max", "image"},
        {"\"max\":0", "max", "image"},
        {"\"min\":-1", "min", "image"},
        /* wrong types */
        {"\"min\":\"1\"", "min", "image"},
        {"\"max\":1.5", "max", "image"},
        /* min alone up to the option count, and min == max, are fine. */
        {"\"min\":3", NULL, "image"},
        {"\"min\":0,\"max\":3", NULL, "audio"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char buf[512], t[600];
        snprintf(buf, sizeof buf,
                 "{\"name\":\"tags\",\"type\":\"multi_choice\",\"options\":[\"a\",\"b\",\"c\"],%s}",
                 cases[i].bounds);
        one_control(t, sizeof t, buf);
        if (cases[i].want)
            tmpl_bad(t, cases[i].media, "'tags'", cases[i].want, NULL);
        else
            tmpl_ok(t, cases[i].media);
    }
}

/* ---- template: answers ---------------------------------------------------------- */

static const char *ANSWER_TMPL =
    "{\"controls\":["
    "{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"],\"required\":true},"
    "{\"name\":\"tags\",\"type\":\"multi_choice\",\"options\":[\"a\",\"b\",\"c\"],\"min\":1,\"max\":2},"
    "{\"name\":\"note\",\"type\":\"text\",\"max_length\":5},"
    "{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"cat\",\"dog\"]},"
    "{\"name\":\"poly\",\"type\":\"polygon\"},"
    "{\"name\":\"pose\",\"type\":\"keypoints\",\"points\":[\"nose\",\"eye\"]},"
    "{\"name\":\"extra\",\"type\":\"text\",\"required\":false}]}";

static const char *IMAGE_MEDIA = "{\"format\":\"jpeg\",\"width\":100,\"height\":50}";

/* media_text may be NULL (media unknown). */
static void answer_ok(json_t *tmpl, const char *answer, const char *media_text)
{
    unit_validate_ok(tly_template_validate_answer, tmpl, answer, media_text);
}

/* Rejected with TLY_E_UNPROCESSABLE / "invalid_answer", message containing frag. */
static void answer_bad(json_t *tmpl, const char *answer, const char *media_text, const char *frag)
{
    unit_validate_bad(tly_template_validate_answer, "invalid_answer", tmpl, answer, media_text, frag);
}

static void test_answer_keys(void **state)
{
    (void)state;
    json_t *tmpl = J(ANSWER_TMPL);
    assert_int_equal(tly_template_validate(tmpl, "image", NULL), 0);
    answer_ok(tmpl, "{\"label\":\"cat\"}", NULL);
    answer_ok(tmpl, "{\"label\":\"dog\",\"note\":\"x\",\"extra\":\"y\"}", IMAGE_MEDIA);
    /* A non-required control may be null. */
    answer_ok(tmpl, "{\"label\":\"cat\",\"note\":null,\"boxes\":null}", NULL);
    /* Unknown control name (matching is case-sensitive). */
    answer_bad(tmpl, "{\"label\":\"cat\",\"bogus\":1}", NULL, "bogus");
    answer_bad(tmpl, "{\"Label\":\"cat\"}", NULL, "Label");
    /* Missing or null required control. */
    answer_bad(tmpl, "{\"note\":\"x\"}", NULL, "'label'");
    answer_bad(tmpl, "{\"label\":null}", NULL, "'label'");
    answer_bad(tmpl, "{}", NULL, "'label'");
    /* Not an object. */
    answer_bad(tmpl, "[\"cat\"]", NULL, NULL);
    answer_bad(tmpl, "\"cat\"", NULL, NULL);
    answer_bad(tmpl, "null", NULL, NULL);
    tly_error err;
    assert_int_equal(tly_template_validate_answer(tmpl, NULL, NULL, &err), -1);
    assert_int_equal(err.status, TLY_E_UNPROCESSABLE);
    json_decref(tmpl);

    /* With no required control, an empty answer fits. */
    tmpl = J("{\"controls\":[{\"name\":\"note\",\"type\":\"text\"}]}");
    answer_ok(tmpl, "{}", NULL);
    answer_ok(tmpl, "{\"note\":\"x\"}", NULL);
    answer_bad(tmpl, "{\"notes\":\"x\"}", NULL, "notes");
    json_decref(tmpl);
}

static void test_answer_choice_and_text(void **state)
{
    (void)state;
    json_t *tmpl = J(ANSWER_TMPL);
    /* choice */
    answer_bad(tmpl, "{\"label\":\"bird\"}", NULL, "'label'");
    answer_bad(tmpl, "{\"label\":\"Cat\"}", NULL, "'label'");
    answer_bad(tmpl, "{\"label\":5}", NULL, "'label'");
    answer_bad(tmpl, "{\"label\":[\"cat\"]}", NULL, "'label'");
    /* multi_choice with min 1 / max 2 */
    answer_ok(tmpl, "{\"label\":\"cat\",\"tags\":[\"a\"]}", NULL);
    answer_ok(tmpl, "{\"label\":\"cat\",\"tags\":[\"c\",\"a\"]}", NULL);
    answer_bad(tmpl, "{\"label\":\"cat\",\"tags\":[]}", NULL, "'tags'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"tags\":[\"a\",\"b\",\"c\"]}", NULL, "'tags'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"tags\":[\"a\",\"a\"]}", NULL, "'tags'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"tags\":[\"z\"]}", NULL, "'tags'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"tags\":[1]}", NULL, "'tags'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"tags\":\"a\"}", NULL, "'tags'");
    /* text with max_length 5 (bytes) */
    answer_ok(tmpl, "{\"label\":\"cat\",\"note\":\"12345\"}", NULL);
    answer_ok(tmpl, "{\"label\":\"cat\",\"note\":\"\"}", NULL);
    answer_bad(tmpl, "{\"label\":\"cat\",\"note\":\"123456\"}", NULL, "'note'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"note\":5}", NULL, "'note'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"note\":{\"t\":\"x\"}}", NULL, "'note'");
    /* text without max_length accepts long strings */
    char big[3000];
    char ans[3100];
    memset(big, 'x', 2999);
    big[2999] = '\0';
    snprintf(ans, sizeof ans, "{\"label\":\"cat\",\"extra\":\"%s\"}", big);
    answer_ok(tmpl, ans, NULL);
    json_decref(tmpl);
}

static void test_answer_shapes(void **state)
{
    (void)state;
    json_t *tmpl = J(ANSWER_TMPL);
    /* bbox: labelled boxes inside the image. */
    answer_ok(tmpl, "{\"label\":\"cat\",\"boxes\":[]}", IMAGE_MEDIA);
    answer_ok(tmpl, "{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":0,\"y\":0,\"w\":100,\"h\":50}]}",
              IMAGE_MEDIA);
    answer_ok(tmpl, "{\"label\":\"cat\",\"boxes\":[{\"label\":\"dog\",\"x\":10.5,\"y\":2,\"w\":3.25,\"h\":4}]}",
              IMAGE_MEDIA);
    /* Without media only the shape is checked. */
    answer_ok(tmpl, "{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":500,\"y\":500,\"w\":100,\"h\":50}]}",
              NULL);
    answer_bad(tmpl, "{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":1,\"y\":0,\"w\":100,\"h\":50}]}",
               IMAGE_MEDIA, "'boxes'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":0,\"y\":0,\"w\":10,\"h\":51}]}",
               IMAGE_MEDIA, "'boxes'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":-1,\"y\":0,\"w\":10,\"h\":10}]}",
               NULL, "'boxes'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":0,\"y\":0,\"w\":0,\"h\":10}]}",
               NULL, "'boxes'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":0,\"y\":0,\"w\":10,\"h\":-2}]}",
               NULL, "'boxes'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"boxes\":[{\"label\":\"bird\",\"x\":0,\"y\":0,\"w\":10,\"h\":10}]}",
               NULL, "'boxes'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"boxes\":[{\"x\":0,\"y\":0,\"w\":10,\"h\":10}]}", NULL, "'boxes'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":\"0\",\"y\":0,\"w\":10,\"h\":10}]}",
               NULL, "'boxes'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"y\":0,\"w\":10,\"h\":10}]}", NULL,
               "'boxes'");
    answer_bad(tmpl,
               "{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":0,\"y\":0,\"w\":10,\"h\":10,\"z\":1}]}",
               NULL, "'boxes'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"boxes\":[[0,0,10,10]]}", NULL, "'boxes'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"boxes\":{\"label\":\"cat\"}}", NULL, "'boxes'");

    /* polygon (no labels in the template): at least 3 [x, y] points inside the image. */
    answer_ok(tmpl, "{\"label\":\"cat\",\"poly\":[{\"points\":[[0,0],[100,0],[100,50]]}]}", IMAGE_MEDIA);
    answer_ok(tmpl, "{\"label\":\"cat\",\"poly\":[{\"label\":\"any\",\"points\":[[0,0],[1,0],[1,1]]}]}", NULL);
    answer_bad(tmpl, "{\"label\":\"cat\",\"poly\":[{\"points\":[[0,0],[1,0]]}]}", NULL, "'poly'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"poly\":[{\"points\":[[0,0],[1,0],[1]]}]}", NULL, "'poly'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"poly\":[{\"points\":[[0,0],[1,0],[\"1\",1]]}]}", NULL, "'poly'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"poly\":[{\"points\":[[0,0],[101,0],[1,1]]}]}", IMAGE_MEDIA,
               "'poly'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"poly\":[{\"points\":[[0,0],[-1,0],[1,1]]}]}", NULL, "'poly'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"poly\":[{\"label\":3,\"points\":[[0,0],[1,0],[1,1]]}]}", NULL,
               "'poly'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"poly\":[{}]}", NULL, "'poly'");

    /* keypoints with named points: one entry per name, null = not visible. */
    answer_ok(tmpl, "{\"label\":\"cat\",\"pose\":[{\"points\":[[1,1],null]}]}", IMAGE_MEDIA);
    answer_ok(tmpl, "{\"label\":\"cat\",\"pose\":[{\"points\":[[1,1],[2,2]]},{\"points\":[null,null]}]}", NULL);
    answer_bad(tmpl, "{\"label\":\"cat\",\"pose\":[{\"points\":[[1,1]]}]}", NULL, "'pose'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"pose\":[{\"points\":[[1,1],[2,2],[3,3]]}]}", NULL, "'pose'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"pose\":[{\"points\":[]}]}", NULL, "'pose'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"pose\":[{\"points\":[[1,1],[200,2]]}]}", IMAGE_MEDIA, "'pose'");
    answer_bad(tmpl, "{\"label\":\"cat\",\"pose\":[{\"points\":[[1,1],[2,2]],\"score\":1}]}", NULL, "'pose'");
    json_decref(tmpl);
}

static void test_answer_audio(void **state)
{
    (void)state;
    json_t *tmpl = J("{\"controls\":["
                     "{\"name\":\"segs\",\"type\":\"audio_segments\",\"labels\":[\"speech\",\"music\"]},"
                     "{\"name\":\"words\",\"type\":\"transcription\",\"max_length\":10}]}");
    assert_int_equal(tly_template_validate(tmpl, "audio", NULL), 0);
    const char *media = "{\"format\":\"wav\",\"duration\":2.0}";
    answer_ok(tmpl, "{\"segs\":[{\"label\":\"speech\",\"start\":0,\"end\":1.5},"
                    "{\"label\":\"music\",\"start\":1.5,\"end\":2}]}",
              media);
    answer_ok(tmpl, "{\"segs\":[{\"label\":\"speech\",\"start\":0,\"end\":1000}]}", NULL);
    answer_ok(tmpl, "{\"words\":\"hello\"}", media);
    answer_bad(tmpl, "{\"segs\":[{\"label\":\"speech\",\"start\":0,\"end\":3}]}", media, "'segs'");
    answer_bad(tmpl, "{\"segs\":[{\"label\":\"speech\",\"start\":1,\"end\":1}]}", NULL, "'segs'");
    answer_bad(tmpl, "{\"segs\":[{\"label\":\"speech\",\"start\":1.5,\"end\":1}]}", NULL, "'segs'");
    answer_bad(tmpl, "{\"segs\":[{\"label\":\"speech\",\"start\":-0.5,\"end\":1}]}", NULL, "'segs'");
    answer_bad(tmpl, "{\"segs\":[{\"label\":\"noise\",\"start\":0,\"end\":1}]}", NULL, "'segs'");
    answer_bad(tmpl, "{\"segs\":[{\"start\":0,\"end\":1}]}", NULL, "'segs'");
    answer_bad(tmpl, "{\"segs\":[{\"label\":\"speech\",\"start\":\"0\",\"end\":1}]}", NULL, "'segs'");
    answer_bad(tmpl, "{\"segs\":[{\"label\":\"speech\",\"start\":0,\"end\":1,\"x\":1}]}", NULL, "'segs'");
    answer_bad(tmpl, "{\"segs\":[[0,1]]}", NULL, "'segs'");
    answer_bad(tmpl, "{\"segs\":{\"label\":\"speech\"}}", NULL, "'segs'");
    answer_bad(tmpl, "{\"words\":\"hello world!\"}", NULL, "'words'");
    answer_bad(tmpl, "{\"words\":[\"hello\"]}", NULL, "'words'");
    json_decref(tmpl);
}

/* ---- workflow ------------------------------------------------------------------- */

static json_t *wf_ok(const char *text)
{
    json_t *in = text ? J(text) : NULL;
    tly_error err;
    tly_error_clear(&err);
    json_t *out = tly_workflow_normalize(in, &err);
    int same = out && out == in;
    json_decref(in);
    if (!out)
        fail_msg("workflow should be valid: %s -> %s", text ? text : "NULL", err.message);
    assert_false(same);
    return out;
}

static void wf_bad(const char *text, const char *frag)
{
    json_t *in = J(text);
    tly_error err;
    tly_error_clear(&err);
    json_t *out = tly_workflow_normalize(in, &err);
    if (out) {
        json_decref(out);
        fail_msg("workflow should be rejected: %s", text);
    }
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_string_equal(err.code, "invalid_workflow");
    if (frag && !strstr(err.message, frag))
        fail_msg("message for %s lacks \"%s\": %s", text, frag, err.message);
    assert_null(tly_workflow_normalize(in, NULL));
    json_decref(in);
}

static double num_at(json_t *wf, const char *section, const char *key)
{
    json_t *obj = section ? json_object_get(wf, section) : wf;
    assert_true(json_is_object(obj));
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        fail_msg("workflow %s.%s missing or not a number", section ? section : "", key);
    return json_number_value(v);
}

static int64_t int_at(json_t *wf, const char *section, const char *key)
{
    json_t *obj = section ? json_object_get(wf, section) : wf;
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        fail_msg("workflow %s.%s missing or not an integer", section ? section : "", key);
    return json_integer_value(v);
}

static int near(double a, double b)
{
    return a - b < 1e-9 && b - a < 1e-9;
}

static void test_workflow_defaults(void **state)
{
    (void)state;
    json_t *wf = wf_ok(NULL);
    assert_int_equal(int_at(wf, NULL, "overlap"), 3);
    assert_int_equal(int_at(wf, NULL, "max_overlap"), 5);
    assert_true(near(num_at(wf, NULL, "gold_rate"), 0.1));
    assert_true(near(num_at(wf, NULL, "min_trust"), 0.7));
    assert_int_equal(int_at(wf, NULL, "lease_seconds"), 600);
    assert_int_equal(int_at(wf, "quiz", "size"), 4);
    assert_true(near(num_at(wf, "quiz", "pass"), 0.75));
    assert_true(near(num_at(wf, "review", "sample_rate"), 0.0));
    assert_true(near(num_at(wf, "acceptance", "aql"), 1.0));
    json_t *show = json_object_get(json_object_get(wf, "prelabel"), "show");
    assert_true(json_is_boolean(show));
    assert_true(json_is_false(show));
    assert_true(near(num_at(wf, "prelabel", "auto_accept"), 0.95));
    assert_true(near(num_at(wf, "prelabel", "verify_rate"), 0.1));
    assert_int_equal(int_at(wf, NULL, "per_worker_cap"), 0);
    /* Exactly those keys. */
    assert_int_equal(json_object_size(wf), 16);
    /* Ingest's image checks (ingest/imagecheck.h): flag by default. */
    assert_int_equal(json_object_size(json_object_get(wf, "media_checks")), 7);
    assert_string_equal(json_string_value(json_object_get(json_object_get(wf, "media_checks"), "near_duplicate")),
                        "flag");
    assert_string_equal(json_string_value(json_object_get(json_object_get(wf, "media_checks"), "quality")), "flag");
    assert_int_equal(int_at(wf, "media_checks", "near_duplicate_distance"), 6);
    assert_int_equal(json_object_size(json_object_get(wf, "quiz")), 2);
    assert_int_equal(json_object_size(json_object_get(wf, "review")), 3);
    assert_int_equal(json_object_size(json_object_get(wf, "acceptance")), 2);
    assert_string_equal(json_string_value(json_object_get(json_object_get(wf, "acceptance"), "level")), "II");
    assert_string_equal(json_string_value(json_object_get(json_object_get(wf, "consensus"), "choice")), "dawid_skene");
    assert_true(near(num_at(wf, NULL, "min_confidence"), 0.7));
    assert_true(near(num_at(wf, "gold", "bbox_iou"), 0.5));
    assert_true(near(num_at(wf, "gold", "max_wer"), 0.1));
    assert_true(near(num_at(wf, "trust", "prior_correct"), 3));
    assert_int_equal(int_at(wf, "checks", "same_answer_min"), 20);
    assert_int_equal(json_object_size(json_object_get(wf, "prelabel")), 11);   /* ... verify_from, uncertain_first, model_vote */
    assert_true(json_is_false(json_object_get(json_object_get(wf, "prelabel"), "uncertain_first")));
    assert_true(json_is_false(json_object_get(json_object_get(wf, "prelabel"), "model_vote")));
    json_decref(wf);

    /* {} is the same as NULL. */
    json_t *empty = wf_ok("{}");
    json_t *null_wf = wf_ok(NULL);
    assert_true(json_equal(empty, null_wf));
    json_decref(empty);
    json_decref(null_wf);

    /* Normalizing a normalized workflow is the identity. */
    json_t *once = wf_ok(NULL);
    tly_error err;
    json_t *twice = tly_workflow_normalize(once, &err);
    assert_non_null(twice);
    assert_true(json_equal(once, twice));
    json_decref(once);
    json_decref(twice);
}

static void test_workflow_overrides(void **state)
{
    (void)state;
    json_t *wf = wf_ok("{\"overlap\":7}");
    assert_int_equal(int_at(wf, NULL, "overlap"), 7);
    assert_int_equal(int_at(wf, NULL, "max_overlap"), 7);
    json_decref(wf);

    wf = wf_ok("{\"overlap\":2}");
    assert_int_equal(int_at(wf, NULL, "max_overlap"), 5);
    json_decref(wf);

    wf = wf_ok("{\"overlap\":4,\"max_overlap\":4}");
    assert_int_equal(int_at(wf, NULL, "max_overlap"), 4);
    json_decref(wf);

    wf = wf_ok("{\"overlap\":1,\"max_overlap\":1}");
    assert_int_equal(int_at(wf, NULL, "overlap"), 1);
    assert_int_equal(int_at(wf, NULL, "max_overlap"), 1);
    json_decref(wf);

    /* A section given partly keeps the other defaults; input is not modified. */
    json_t *in = J("{\"quiz\":{\"size\":10},\"prelabel\":{\"show\":true},\"gold_rate\":0}");
    json_t *copy = json_deep_copy(in);
    tly_error err;
    wf = tly_workflow_normalize(in, &err);
    assert_non_null(wf);
    assert_true(json_equal(in, copy));
    assert_int_equal(int_at(wf, "quiz", "size"), 10);
    assert_true(near(num_at(wf, "quiz", "pass"), 0.75));
    assert_true(json_is_true(json_object_get(json_object_get(wf, "prelabel"), "show")));
    assert_true(near(num_at(wf, "prelabel", "auto_accept"), 0.95));
    assert_true(near(num_at(wf, NULL, "gold_rate"), 0.0));
    assert_int_equal(int_at(wf, NULL, "overlap"), 3);
    json_decref(wf);
    json_decref(in);
    json_decref(copy);

    /* Boundary values accepted. */
    wf = wf_ok("{\"overlap\":100,\"lease_seconds\":10,\"gold_rate\":1,\"min_trust\":0,"
               "\"quiz\":{\"size\":0,\"pass\":1},\"review\":{\"sample_rate\":1},"
               "\"acceptance\":{\"aql\":0.01},\"prelabel\":{\"auto_accept\":0,\"verify_rate\":1}}");
    assert_int_equal(int_at(wf, NULL, "max_overlap"), 100);
    assert_int_equal(int_at(wf, NULL, "lease_seconds"), 10);
    assert_true(near(num_at(wf, "acceptance", "aql"), 0.01));
    json_decref(wf);
    wf = wf_ok("{\"lease_seconds\":86400,\"acceptance\":{\"aql\":100},\"quiz\":{\"size\":100}}");
    assert_int_equal(int_at(wf, NULL, "lease_seconds"), 86400);
    json_decref(wf);
    /* Integers are accepted where a number is wanted. */
    wf = wf_ok("{\"quiz\":{\"pass\":1},\"acceptance\":{\"aql\":4}}");
    assert_true(near(num_at(wf, "acceptance", "aql"), 4.0));
    json_decref(wf);
}

static void test_workflow_null_max_overlap_is_absent(void **state)
{
    (void)state;
    /* core/json.h getters treat null as absent; an explicit null max_overlap must then
     * behave like a missing one (defaulting to at least overlap), not fail with a
     * "max_overlap (5) is less than overlap (7)" the caller never wrote. */
    json_t *wf = wf_ok("{\"overlap\":7,\"max_overlap\":null}");
    assert_int_equal(int_at(wf, NULL, "max_overlap"), 7);
    json_decref(wf);
}

static void test_workflow_max_overlap_below_overlap(void **state)
{
    (void)state;
    wf_bad("{\"overlap\":7,\"max_overlap\":6}", "max_overlap");
    wf_bad("{\"overlap\":4,\"max_overlap\":3}", "overlap");
    wf_bad("{\"max_overlap\":2}", "max_overlap");   /* default overlap 3 */
}

static void test_workflow_out_of_range(void **state)
{
    (void)state;
    wf_bad("{\"overlap\":0}", "overlap");
    wf_bad("{\"overlap\":101}", "overlap");
    wf_bad("{\"overlap\":-1}", "overlap");
    wf_bad("{\"max_overlap\":0}", "max_overlap");
    wf_bad("{\"max_overlap\":101}", "max_overlap");
    wf_bad("{\"gold_rate\":-0.1}", "gold_rate");
    wf_bad("{\"gold_rate\":1.01}", "gold_rate");
    wf_bad("{\"min_trust\":2}", "min_trust");
    wf_bad("{\"lease_seconds\":9}", "lease_seconds");
    wf_bad("{\"lease_seconds\":86401}", "lease_seconds");
    wf_bad("{\"quiz\":{\"size\":-1}}", "size");
    wf_bad("{\"quiz\":{\"size\":101}}", "size");
    wf_bad("{\"quiz\":{\"pass\":1.5}}", "pass");
    wf_bad("{\"review\":{\"sample_rate\":-0.5}}", "sample_rate");
    wf_bad("{\"acceptance\":{\"aql\":0}}", "aql");
    wf_bad("{\"acceptance\":{\"aql\":1000.5}}", "aql");
    wf_bad("{\"acceptance\":{\"level\":\"IV\"}}", "level");
    wf_bad("{\"consensus\":{\"choice\":\"vote\"}}", "dawid_skene");
    wf_bad("{\"consensus\":{\"choice\":3}}", "choice");
    wf_bad("{\"min_confidence\":1.5}", "min_confidence");
    wf_bad("{\"gold\":{\"bbox_iou\":0}}", "bbox_iou");
    wf_bad("{\"gold\":{\"max_wer\":2}}", "max_wer");
    wf_bad("{\"checks\":{\"min_duration_ms\":-1}}", "min_duration_ms");
    wf_bad("{\"trust\":{\"prior_wrong\":-1}}", "prior_wrong");
    wf_bad("{\"prelabel\":{\"auto_accept\":1.1}}", "auto_accept");
    wf_bad("{\"prelabel\":{\"verify_rate\":-1}}", "verify_rate");
    /* The section is named in errors inside a section. */
    wf_bad("{\"quiz\":{\"pass\":2}}", "quiz");
}

static void test_workflow_unknown_keys(void **state)
{
    (void)state;
    wf_bad("{\"overlp\":3}", "overlp");
    wf_bad("{\"overlap\":3,\"extra\":true}", "extra");
    wf_bad("{\"quiz\":{\"sise\":3}}", "sise");
    wf_bad("{\"quiz\":{\"sise\":3}}", "quiz");
    /* A top-level key is unknown inside a section, and a section key inside another. */
    wf_bad("{\"review\":{\"overlap\":3}}", "overlap");
    wf_bad("{\"prelabel\":{\"quiz\":{}}}", "quiz");
    wf_bad("{\"acceptance\":{\"aql\":1,\"sample_rate\":0.5}}", "sample_rate");
}

static void test_workflow_wrong_types(void **state)
{
    (void)state;
    wf_bad("{\"overlap\":\"3\"}", "overlap");
    wf_bad("{\"overlap\":3.5}", "overlap");
    wf_bad("{\"overlap\":true}", "overlap");
    wf_bad("{\"lease_seconds\":[600]}", "lease_seconds");
    wf_bad("{\"gold_rate\":\"0.1\"}", "gold_rate");
    wf_bad("{\"prelabel\":{\"show\":1}}", "show");
    wf_bad("{\"prelabel\":{\"show\":\"true\"}}", "show");
    wf_bad("{\"quiz\":5}", "quiz");
    wf_bad("{\"quiz\":[]}", "quiz");
    wf_bad("{\"review\":\"none\"}", "review");
    /* The workflow itself must be an object. */
    wf_bad("[]", NULL);
    wf_bad("3", NULL);
    wf_bad("\"defaults\"", NULL);
}

/* ---- projects with a real store ------------------------------------------------- */

struct fixture {
    char dir[64];
    tly_store *st;
};

static int setup_store(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char url[128];
    if (!f)
        return -1;
    if (unit_store_open(f->dir, sizeof f->dir, "annotate", "sqlite:%s/t.db", url, sizeof url, &f->st) < 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown_store(void **state)
{
    struct fixture *f = *state;
    unit_store_remove(f->st, f->dir);
    free(f);
    return 0;
}

static const char *IMAGE_TMPL =
    "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"],\"required\":true},"
    "{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"cat\",\"dog\"]}]}";

static size_t project_count(tly_store *st)
{
    tly_project *list = NULL;
    size_t n = 0;
    tly_error err;
    assert_int_equal(tly_store_project_list(st, 0, 100, &list, &n, &err), 0);
    tly_project_list_free(list, n);
    return n;
}

static void test_project_create_end_to_end(void **state)
{
    struct fixture *f = *state;
    char body_text[2048];
    snprintf(body_text, sizeof body_text,
             "{\"name\":\"Cats and dogs\",\"media\":\"image\",\"template\":%s,"
             "\"workflow\":{\"overlap\":5,\"quiz\":{\"size\":2}},\"guidelines\":\"Box every animal.\"}",
             IMAGE_TMPL);
    json_t *body = J(body_text);
    tly_project p;
    memset(&p, 0, sizeof p);
    tly_error err;
    tly_error_clear(&err);
    if (tly_project_create(f->st, body, 42, &p, &err) != 0)
        fail_msg("create: %s", err.message);
    assert_true(p.id > 0);
    assert_string_equal(p.name, "Cats and dogs");
    assert_string_equal(p.media, "image");
    assert_string_equal(p.state, "active");
    assert_int_equal(p.created_by, 42);
    assert_true(p.created_at > 1600000000000LL);
    assert_non_null(p.guidelines);
    assert_string_equal(p.guidelines, "Box every animal.");
    json_t *tmpl = J(IMAGE_TMPL);
    assert_true(json_equal(p.template_json, tmpl));
    /* Stored workflow has every default filled in. */
    assert_int_equal(int_at(p.workflow, NULL, "overlap"), 5);
    assert_int_equal(int_at(p.workflow, NULL, "max_overlap"), 5);
    assert_int_equal(int_at(p.workflow, "quiz", "size"), 2);
    assert_true(near(num_at(p.workflow, "quiz", "pass"), 0.75));
    assert_int_equal(int_at(p.workflow, NULL, "lease_seconds"), 600);
    assert_true(near(num_at(p.workflow, "acceptance", "aql"), 1.0));

    /* The API object. */
    json_t *pj = tly_project_json(&p);
    assert_non_null(pj);
    assert_int_equal(json_integer_value(json_object_get(pj, "id")), p.id);
    assert_string_equal(json_string_value(json_object_get(pj, "name")), "Cats and dogs");
    assert_string_equal(json_string_value(json_object_get(pj, "media")), "image");
    assert_string_equal(json_string_value(json_object_get(pj, "state")), "active");
    assert_string_equal(json_string_value(json_object_get(pj, "guidelines")), "Box every animal.");
    assert_int_equal(json_integer_value(json_object_get(pj, "created_by")), 42);
    assert_true(json_equal(json_object_get(pj, "template"), tmpl));
    assert_true(json_equal(json_object_get(pj, "workflow"), p.workflow));
    const char *created = json_string_value(json_object_get(pj, "created_at"));
    assert_non_null(created);
    assert_int_equal(strlen(created), 20);   /* "2026-11-22T03:08:06Z" */
    assert_int_equal(created[4], '-');
    assert_int_equal(created[10], 'T');
    assert_int_equal(created[19], 'Z');
    json_decref(pj);

    /* Reading it back from the store gives the same record. */
    tly_project again;
    memset(&again, 0, sizeof again);
    assert_int_equal(tly_store_project_get(f->st, p.id, &again, &err), 0);
    assert_string_equal(again.name, p.name);
    assert_true(json_equal(again.workflow, p.workflow));
    assert_true(json_equal(again.template_json, p.template_json));
    tly_project_clear(&again);

    /* The caller's body is not consumed or modified. */
    assert_string_equal(json_string_value(json_object_get(body, "name")), "Cats and dogs");
    assert_int_equal(json_object_size(json_object_get(body, "workflow")), 2);

    json_decref(tmpl);
    json_decref(body);
    tly_project_clear(&p);
    assert_int_equal(project_count(f->st), 1);
}

static void test_project_create_minimal_audio(void **state)
{
    struct fixture *f = *state;
    json_t *body = J("{\"name\":\"Speech\",\"media\":\"audio\",\"template\":{\"controls\":["
                     "{\"name\":\"words\",\"type\":\"transcription\"},"
                     "{\"name\":\"segs\",\"type\":\"audio_segments\",\"labels\":[\"speech\"]}]}}");
    tly_project p;
    memset(&p, 0, sizeof p);
    tly_error err;
    if (tly_project_create(f->st, body, 1, &p, &err) != 0)
        fail_msg("create: %s", err.message);
    assert_string_equal(p.media, "audio");
    /* No workflow given: all defaults. */
    json_t *defaults = tly_workflow_normalize(NULL, &err);
    assert_non_null(defaults);
    assert_true(json_equal(p.workflow, defaults));
    json_decref(defaults);
    json_t *pj = tly_project_json(&p);
    assert_non_null(pj);
    /* No guidelines: the API shows an empty string. */
    assert_string_equal(json_string_value(json_object_get(pj, "guidelines")), "");
    json_decref(pj);
    /* Two projects get distinct ids. */
    tly_project q;
    memset(&q, 0, sizeof q);
    assert_int_equal(tly_project_create(f->st, body, 1, &q, &err), 0);
    assert_true(q.id != p.id);
    tly_project_clear(&q);
    tly_project_clear(&p);
    json_decref(body);
}

static void project_bad(tly_store *st, const char *body_text, tly_status status, const char *code,
                        const char *frag)
{
    json_t *body = J(body_text);
    tly_project p;
    memset(&p, 0, sizeof p);
    tly_error err;
    tly_error_clear(&err);
    if (tly_project_create(st, body, 1, &p, &err) != -1) {
        tly_project_clear(&p);
        fail_msg("project should be rejected: %s", body_text);
    }
    assert_int_equal(err.status, status);
    if (code)
        assert_string_equal(err.code, code);
    if (frag && !strstr(err.message, frag))
        fail_msg("message for %s lacks \"%s\": %s", body_text, frag, err.message);
    json_decref(body);
}

static void test_project_create_rejections(void **state)
{
    struct fixture *f = *state;
    char buf[2048];
    /* Missing / wrong name. */
    snprintf(buf, sizeof buf, "{\"media\":\"image\",\"template\":%s}", IMAGE_TMPL);
    project_bad(f->st, buf, TLY_E_INVALID, NULL, "name");
    snprintf(buf, sizeof buf, "{\"name\":\"\",\"media\":\"image\",\"template\":%s}", IMAGE_TMPL);
    project_bad(f->st, buf, TLY_E_INVALID, NULL, "name");
    snprintf(buf, sizeof buf, "{\"name\":7,\"media\":\"image\",\"template\":%s}", IMAGE_TMPL);
    project_bad(f->st, buf, TLY_E_INVALID, NULL, "name");
    char longname[260];
    memset(longname, 'n', 201);
    longname[201] = '\0';
    snprintf(buf, sizeof buf, "{\"name\":\"%s\",\"media\":\"image\",\"template\":%s}", longname, IMAGE_TMPL);
    project_bad(f->st, buf, TLY_E_INVALID, NULL, "name");
    /* Media. */
    snprintf(buf, sizeof buf, "{\"name\":\"p\",\"media\":\"video\",\"template\":%s}", IMAGE_TMPL);
    project_bad(f->st, buf, TLY_E_INVALID, NULL, "media");
    snprintf(buf, sizeof buf, "{\"name\":\"p\",\"media\":\"IMAGE\",\"template\":%s}", IMAGE_TMPL);
    project_bad(f->st, buf, TLY_E_INVALID, NULL, "media");
    snprintf(buf, sizeof buf, "{\"name\":\"p\",\"template\":%s}", IMAGE_TMPL);
    project_bad(f->st, buf, TLY_E_INVALID, NULL, "media");
    /* Template. */
    project_bad(f->st, "{\"name\":\"p\",\"media\":\"image\"}", TLY_E_INVALID, NULL, "template");
    project_bad(f->st, "{\"name\":\"p\",\"media\":\"image\",\"template\":[]}", TLY_E_INVALID, NULL,
                "template");
    project_bad(f->st, "{\"name\":\"p\",\"media\":\"image\",\"template\":{\"controls\":[]}}", TLY_E_INVALID,
                "invalid_template", NULL);
    project_bad(f->st,
                "{\"name\":\"p\",\"media\":\"image\",\"template\":{\"controls\":"
                "[{\"name\":\"x\",\"type\":\"circle\"}]}}",
                TLY_E_INVALID, "invalid_template", "circle");
    /* A valid image template in an audio project. */
    snprintf(buf, sizeof buf, "{\"name\":\"p\",\"media\":\"audio\",\"template\":%s}", IMAGE_TMPL);
    project_bad(f->st, buf, TLY_E_INVALID, "invalid_template", "bbox");
    /* Workflow. */
    snprintf(buf, sizeof buf, "{\"name\":\"p\",\"media\":\"image\",\"template\":%s,\"workflow\":{\"overlp\":2}}",
             IMAGE_TMPL);
    project_bad(f->st, buf, TLY_E_INVALID, "invalid_workflow", "overlp");
    snprintf(buf, sizeof buf, "{\"name\":\"p\",\"media\":\"image\",\"template\":%s,\"workflow\":[1]}",
             IMAGE_TMPL);
    project_bad(f->st, buf, TLY_E_INVALID, NULL, "workflow");
    /* Guidelines must be a string; unknown body keys are rejected. */
    snprintf(buf, sizeof buf, "{\"name\":\"p\",\"media\":\"image\",\"template\":%s,\"guidelines\":5}",
             IMAGE_TMPL);
    project_bad(f->st, buf, TLY_E_INVALID, NULL, "guidelines");
    snprintf(buf, sizeof buf, "{\"name\":\"p\",\"media\":\"image\",\"template\":%s,\"colour\":\"red\"}",
             IMAGE_TMPL);
    project_bad(f->st, buf, TLY_E_INVALID, NULL, "colour");

    /* Nothing was stored by any rejected request. */
    assert_int_equal(project_count(f->st), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_template_valid_image),
        cmocka_unit_test(test_template_valid_audio),
        cmocka_unit_test(test_template_valid_names_and_limits),
        cmocka_unit_test(test_template_unknown_type),
        cmocka_unit_test(test_template_media_mismatch),
        cmocka_unit_test(test_template_missing_options_labels),
        cmocka_unit_test(test_template_bad_option_sets),
        cmocka_unit_test(test_template_unknown_key),
        cmocka_unit_test(test_template_common_key_types),
        cmocka_unit_test(test_template_duplicate_names),
        cmocka_unit_test(test_template_invalid_names),
        cmocka_unit_test(test_template_structure),
        cmocka_unit_test(test_template_too_many_controls),
        cmocka_unit_test(test_template_multi_choice_bounds),
        cmocka_unit_test(test_answer_keys),
        cmocka_unit_test(test_answer_choice_and_text),
        cmocka_unit_test(test_answer_shapes),
        cmocka_unit_test(test_answer_audio),
        cmocka_unit_test(test_workflow_defaults),
        cmocka_unit_test(test_workflow_overrides),
        cmocka_unit_test(test_workflow_null_max_overlap_is_absent),
        cmocka_unit_test(test_workflow_max_overlap_below_overlap),
        cmocka_unit_test(test_workflow_out_of_range),
        cmocka_unit_test(test_workflow_unknown_keys),
        cmocka_unit_test(test_workflow_wrong_types),
        cmocka_unit_test_setup_teardown(test_project_create_end_to_end, setup_store, teardown_store),
        cmocka_unit_test_setup_teardown(test_project_create_minimal_audio, setup_store, teardown_store),
        cmocka_unit_test_setup_teardown(test_project_create_rejections, setup_store, teardown_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
