/* test_ingest_imagecheck.c -- the perceptual hash and the quality measures and flags
 * of ingest/imagecheck.h, on synthetic images (tests/integration/synth_images.h) and
 * on the real photos of tests/data, straight and through the media probe (so through
 * the thumbnail's box sums, as ingest computes them).
 *
 * Measured values are printed (cmocka's print_message) to show where the defaults
 * sit: a sharp synthetic scene scores 133, the same blurred by a few thumbnail
 * pixels below 5; the real photos of tests/data 250-1,700.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../integration/synth_images.h"
#include "annotate/project.h"
#include "ingest/imagecheck.h"
#include "ingest/media.h"

#define DATA(name) TALLY_TEST_DATA "/" name

/* Measures of an RGB image as ingest sees it: reduced to a 256-px-long thumbnail. */
static tly_image_measures measure_at_thumb(const synth_image *im)
{
    int w = im->w, h = im->h;
    if (w > 256 || h > 256) {
        w = im->w >= im->h ? 256 : im->w * 256 / im->h;
        h = im->w >= im->h ? im->h * 256 / im->w : 256;
    }
    synth_image small = synth_resize(im, w, h);
    unsigned char *g = synth_gray(&small);
    tly_image_measures m;
    tly_error err;
    assert_int_equal(tly_image_measure_gray(g, w, h, &m, &err), 0);
    free(g);
    synth_free(&small);
    return m;
}

static tly_image_check_settings default_settings(void)
{
    tly_error err;
    json_t *wf = tly_workflow_normalize(NULL, &err);
    assert_non_null(wf);
    tly_image_check_settings s;
    tly_image_check_settings_from_workflow(wf, &s);
    json_decref(wf);
    return s;
}

static void test_settings(void **state)
{
    (void)state;
    tly_image_check_settings s = default_settings();
    assert_int_equal(s.near_duplicate, TLY_CHECK_FLAG);
    assert_int_equal(s.near_duplicate_distance, 6);
    assert_int_equal(s.quality, TLY_CHECK_FLAG);
    assert_true(s.blank_stddev > 0 && s.blur_sharpness > 0);
    assert_true(s.overexposed_fraction == 0.5 && s.underexposed_fraction == 0.5);

    tly_error err;
    json_t *in = json_loads("{\"media_checks\":{\"near_duplicate\":\"reject\",\"quality\":\"off\","
                            "\"near_duplicate_distance\":9}}", 0, NULL);
    json_t *wf = tly_workflow_normalize(in, &err);
    assert_non_null(wf);
    tly_image_check_settings_from_workflow(wf, &s);
    assert_int_equal(s.near_duplicate, TLY_CHECK_REJECT);
    assert_int_equal(s.quality, TLY_CHECK_OFF);
    assert_int_equal(s.near_duplicate_distance, 9);
    json_decref(wf);
    json_decref(in);
    /* Out of range and unknown values are refused. */
    const char *bad[] = {"{\"media_checks\":{\"near_duplicate\":\"drop\"}}",
                         "{\"media_checks\":{\"near_duplicate_distance\":12}}",
                         "{\"media_checks\":{\"blur\":1}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        in = json_loads(bad[i], 0, NULL);
        assert_null(tly_workflow_normalize(in, &err));
        assert_string_equal(err.code, "invalid_workflow");
        json_decref(in);
    }
}

static void test_phash_resized_and_distinct(void **state)
{
    (void)state;
    synth_image a = synth_scene(640, 480, 1);
    synth_image a_small = synth_resize(&a, 480, 360);
    synth_image a_blur = synth_scene(640, 480, 1);
    synth_blur(&a_blur, 1);
    tly_image_measures ma = measure_at_thumb(&a), ms = measure_at_thumb(&a_small),
                       mb = measure_at_thumb(&a_blur);
    int near = tly_phash_distance(ma.phash, ms.phash), soft = tly_phash_distance(ma.phash, mb.phash);
    print_message("phash %016llx, resized copy at distance %d, slightly blurred copy at %d\n",
                  (unsigned long long)ma.phash, near, soft);
    assert_true(near <= 4);
    assert_true(soft <= 6);
    int ones = __builtin_popcountll(ma.phash);
    assert_true(ones >= 24 && ones <= 40);   /* a median split: about half the bits */
    for (uint32_t seed = 2; seed < 12; seed++) {
        synth_image o = synth_scene(640, 480, seed);
        tly_image_measures mo = measure_at_thumb(&o);
        int d = tly_phash_distance(ma.phash, mo.phash);
        if (d <= 14)
            fail_msg("unrelated scene %u at distance %d", seed, d);
        synth_free(&o);
    }
    /* Aspect is ignored: a stretched copy stays near. */
    synth_image stretched = synth_resize(&a, 400, 480);
    assert_true(tly_phash_distance(ma.phash, measure_at_thumb(&stretched).phash) <= 6);
    synth_free(&stretched);
    synth_free(&a);
    synth_free(&a_small);
    synth_free(&a_blur);
    assert_int_equal(tly_phash_distance(0, ~0ULL), 64);
    assert_int_equal(tly_phash_distance(0xF0, 0x0F), 8);
}

static void test_blank(void **state)
{
    (void)state;
    tly_image_check_settings s = default_settings();
    synth_image im = synth_new(300, 200);
    synth_fill(&im, 128, 128, 128);
    tly_image_measures m = measure_at_thumb(&im);
    assert_true(m.stddev < 0.01);
    assert_true(m.sharpness == 0);
    assert_int_equal(tly_image_quality_flags(&m, &s), TLY_IMAGE_BLANK);   /* not also blurred */
    synth_fill(&im, 255, 255, 255);
    m = measure_at_thumb(&im);
    assert_int_equal(tly_image_quality_flags(&m, &s), TLY_IMAGE_BLANK | TLY_IMAGE_OVEREXPOSED);
    synth_fill(&im, 0, 0, 0);
    m = measure_at_thumb(&im);
    assert_int_equal(tly_image_quality_flags(&m, &s), TLY_IMAGE_BLANK | TLY_IMAGE_UNDEREXPOSED);
    synth_free(&im);
}

static void test_blur(void **state)
{
    (void)state;
    tly_image_check_settings s = default_settings();
    double prev = 1e18;
    for (int radius = 0; radius <= 8; radius += 2) {
        synth_image im = synth_scene(800, 600, 7);
        if (radius)
            synth_blur(&im, radius);
        tly_image_measures m = measure_at_thumb(&im);
        unsigned flags = tly_image_quality_flags(&m, &s);
        print_message("blur radius %d (x3 passes) at 800 px: sharpness %.1f%s\n", radius, m.sharpness,
                      flags & TLY_IMAGE_BLURRED ? " -> blurred" : "");
        assert_true(m.sharpness < prev);   /* monotone in the blur */
        prev = m.sharpness;
        if (radius == 0)
            assert_int_equal(flags, 0);
        if (radius >= 4)
            assert_int_equal(flags, TLY_IMAGE_BLURRED);
        synth_free(&im);
    }
    /* Too small to judge: no sharpness, never blurred. */
    synth_image tiny = synth_scene(12, 12, 3);
    unsigned char *g = synth_gray(&tiny);
    tly_image_measures m;
    tly_error err;
    assert_int_equal(tly_image_measure_gray(g, 12, 12, &m, &err), 0);
    assert_true(m.sharpness < 0);
    assert_int_equal(tly_image_quality_flags(&m, &s) & TLY_IMAGE_BLURRED, 0);
    /* A 1x1 image still hashes. */
    assert_int_equal(tly_image_measure_gray(g, 1, 1, &m, &err), 0);
    free(g);
    synth_free(&tiny);
}

static void test_exposure(void **state)
{
    (void)state;
    tly_image_check_settings s = default_settings();
    synth_image im = synth_scene(640, 480, 9);
    tly_image_measures m = measure_at_thumb(&im);
    assert_int_equal(tly_image_quality_flags(&m, &s), 0);
    synth_shift(&im, 170);
    m = measure_at_thumb(&im);
    print_message("over-exposed: %.0f%% clipped white, mean %.1f\n", m.clipped_high * 100, m.mean);
    assert_true(tly_image_quality_flags(&m, &s) & TLY_IMAGE_OVEREXPOSED);
    assert_false(tly_image_quality_flags(&m, &s) & (TLY_IMAGE_UNDEREXPOSED | TLY_IMAGE_BLANK));
    synth_free(&im);
    im = synth_scene(640, 480, 9);
    synth_shift(&im, -170);
    m = measure_at_thumb(&im);
    print_message("under-exposed: %.0f%% clipped black, mean %.1f\n", m.clipped_low * 100, m.mean);
    assert_true(tly_image_quality_flags(&m, &s) & TLY_IMAGE_UNDEREXPOSED);
    assert_false(tly_image_quality_flags(&m, &s) & TLY_IMAGE_OVEREXPOSED);
    /* 0 turns a flag off; mode off turns all off. */
    s.underexposed_fraction = 0;
    assert_false(tly_image_quality_flags(&m, &s) & TLY_IMAGE_UNDEREXPOSED);
    s.quality = TLY_CHECK_OFF;
    synth_fill(&im, 0, 0, 0);
    m = measure_at_thumb(&im);
    assert_int_equal(tly_image_quality_flags(&m, &s), 0);
    synth_free(&im);
}

static void test_reject_codes_and_json(void **state)
{
    (void)state;
    tly_image_check_settings s = default_settings();
    tly_image_measures m = {.phash = 0x0123456789abcdefULL, .mean = 250, .stddev = 1, .sharpness = 0.5,
                            .clipped_high = 0.9};
    struct {
        unsigned flags;
        const char *code;
    } cases[] = {
        {TLY_IMAGE_BLANK | TLY_IMAGE_OVEREXPOSED, "blank_image"},
        {TLY_IMAGE_OVEREXPOSED | TLY_IMAGE_BLURRED, "overexposed_image"},
        {TLY_IMAGE_UNDEREXPOSED, "underexposed_image"},
        {TLY_IMAGE_BLURRED, "blurry_image"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tly_error err;
        assert_int_equal(tly_image_quality_reject(&m, cases[i].flags, &s, &err), -1);
        assert_int_equal(err.status, TLY_E_UNPROCESSABLE);
        assert_string_equal(err.code, cases[i].code);
        assert_true(strlen(err.message) > 10);
    }
    const char *names[] = {"near_duplicate", "blank", "blurred", "overexposed", "underexposed"};
    const char *codes[] = {"near_duplicate", "blank_image", "blurry_image", "overexposed_image",
                           "underexposed_image"};
    for (int i = 0; i < TLY_IMAGE_FLAG_COUNT; i++) {
        assert_string_equal(tly_image_flag_name(i), names[i]);
        assert_string_equal(tly_image_flag_code(i), codes[i]);
        assert_int_equal(tly_image_flag_bit(i), 1u << i);
    }

    json_t *media = json_pack("{s:s}", "format", "jpeg");
    json_t *q = tly_image_quality_json(&m, TLY_IMAGE_BLANK, &s);
    assert_non_null(q);
    json_object_set_new(media, "quality", q);
    assert_string_equal(json_string_value(json_object_get(q, "phash")), "0123456789abcdef");
    assert_true(json_is_true(json_object_get(q, "blank")));
    assert_true(json_is_false(json_object_get(q, "blurred")));
    assert_true(json_is_false(json_object_get(q, "near_duplicate")));
    assert_true(json_real_value(json_object_get(q, "sharpness")) == 0.5);
    tly_image_quality_mark_near_duplicate(media, 42, 3);
    assert_true(json_is_true(json_object_get(q, "near_duplicate")));
    assert_int_equal(json_integer_value(json_object_get(q, "near_duplicate_of")), 42);
    assert_int_equal(json_integer_value(json_object_get(q, "near_duplicate_distance")), 3);
    tly_image_quality_mark_near_duplicate(media, 0, 0);   /* cleared again */
    assert_true(json_is_false(json_object_get(q, "near_duplicate")));
    assert_null(json_object_get(q, "near_duplicate_of"));
    json_decref(media);
    /* Checks off: measures only. */
    s.quality = TLY_CHECK_OFF;
    s.near_duplicate = TLY_CHECK_OFF;
    q = tly_image_quality_json(&m, 0, &s);
    assert_null(json_object_get(q, "blank"));
    assert_null(json_object_get(q, "near_duplicate"));
    assert_non_null(json_object_get(q, "phash"));
    json_decref(q);
}

static tly_image_measures probe(const char *path)
{
    tly_probe_opts opts;
    tly_probe_opts_default(&opts);
    tly_media_info info;
    tly_buf thumb;
    tly_buf_init(&thumb, 4u << 20);
    tly_error err;
    if (tly_media_probe_file(path, NULL, TLY_MEDIA_IMAGE, &opts, &info, &thumb, NULL, &err) != 0)
        fail_msg("probe %s: %s", path, err.message);
    tly_buf_free(&thumb);
    assert_true(info.has_measures);
    return info.measures;
}

static void test_probe_files(void **state)
{
    (void)state;
    tly_image_check_settings s = default_settings();
    /* Real photos: sharp, well exposed, not flagged at the defaults. */
    const char *photos[] = {DATA("photo.jpg"), DATA("photo2.jpg"), DATA("progressive.jpg"), DATA("gray.jpg"),
                            DATA("photo.png"), DATA("interlaced.png"), DATA("palette.png"), DATA("deep.png")};
    for (size_t i = 0; i < sizeof photos / sizeof photos[0]; i++) {
        tly_image_measures m = probe(photos[i]);
        print_message("%s: sharpness %.1f stddev %.1f\n", strrchr(photos[i], '/') + 1, m.sharpness, m.stddev);
        assert_int_equal(tly_image_quality_flags(&m, &s), 0);
    }
    /* The CMYK print version of photo.jpg hashes like it; photo2 does not. */
    tly_image_measures photo = probe(DATA("photo.jpg"));
    assert_true(tly_phash_distance(photo.phash, probe(DATA("cmyk.jpg")).phash) <= 2);
    assert_true(tly_phash_distance(photo.phash, probe(DATA("photo2.jpg")).phash) > 16);
    /* Interlaced and plain PNG of one picture: the same hash, whatever the pixel order. */
    assert_int_equal(probe(DATA("photo.png")).phash, probe(DATA("interlaced.png")).phash);
    /* The probe's view of a synthetic JPEG and of a resized, recompressed copy. */
    char dir[] = "/tmp/tally-imagecheck-XXXXXX", a[64], b[64];
    assert_non_null(mkdtemp(dir));
    snprintf(a, sizeof a, "%s/a.jpg", dir);
    snprintf(b, sizeof b, "%s/b.jpg", dir);
    synth_image im = synth_scene(1200, 900, 21);
    synth_write_jpeg(&im, 92, a);
    synth_image small = synth_resize(&im, 500, 375);
    synth_write_jpeg(&small, 45, b);
    tly_image_measures ma = probe(a), mb = probe(b);
    print_message("synthetic JPEG vs resized q45 copy: distance %d\n", tly_phash_distance(ma.phash, mb.phash));
    assert_true(tly_phash_distance(ma.phash, mb.phash) <= 4);
    assert_int_equal(tly_image_quality_flags(&ma, &s), 0);
    assert_int_equal(tly_image_quality_flags(&mb, &s), 0);
    unlink(a);
    unlink(b);
    rmdir(dir);
    synth_free(&im);
    synth_free(&small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_phash_resized_and_distinct),
        cmocka_unit_test(test_blank),
        cmocka_unit_test(test_blur),
        cmocka_unit_test(test_exposure),
        cmocka_unit_test(test_reject_codes_and_json),
        cmocka_unit_test(test_probe_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
