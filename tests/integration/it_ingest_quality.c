/* it_ingest_quality.c -- ingest's image checks through a real tallyd: near duplicates
 * by perceptual hash, and blank / blurred / over-exposed flags (ingest/imagecheck.h,
 * docs/API.md "Image checks").
 *
 * The images are made here (synth_images.h, libjpeg): a picture, a resized and
 * recompressed copy of it (different bytes, same look), a blank frame, a blurred
 * picture, an over-exposed one and an unrelated normal one. Test 1 uploads them to a
 * project with the default settings (flag): all are accepted, and the items, the
 * batch report and the flagged list say which is what. Test 2 uses a project in
 * reject mode: the four bad files are rejected with their per-file codes, the two
 * good ones accepted, in one batch; a second batch with another copy of the picture
 * is rejected as a near duplicate of the committed item. Test 3: checks off.
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

#include "harness.h"
#include "synth_images.h"

static const char *TEMPLATE =
    "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"],"
    "\"required\":true}]}";

enum { PICTURE, COPY, BLANK, BLURRED, OVEREXPOSED, NORMAL, COPY2, N_FILES };
static const char *const NAMES[N_FILES] = {"picture.jpg", "picture-small.jpg", "blank.jpg", "blurred.jpg",
                                           "overexposed.jpg", "normal.jpg", "picture-medium.jpg"};

static struct {
    it_server srv;
    char *mgr;
    char dir[64];
    char paths[N_FILES][128];
} g;

static void make_images(void)
{
    snprintf(g.dir, sizeof g.dir, "/tmp/tally-it-quality-XXXXXX");
    assert_non_null(mkdtemp(g.dir));
    for (int i = 0; i < N_FILES; i++)
        snprintf(g.paths[i], sizeof g.paths[i], "%s/%s", g.dir, NAMES[i]);
    synth_image pic = synth_scene(1024, 768, 101);
    synth_write_jpeg(&pic, 90, g.paths[PICTURE]);
    synth_image small = synth_resize(&pic, 512, 384);
    synth_write_jpeg(&small, 50, g.paths[COPY]);
    synth_image medium = synth_resize(&pic, 800, 600);
    synth_write_jpeg(&medium, 70, g.paths[COPY2]);
    synth_image blank = synth_new(640, 480);
    synth_fill(&blank, 90, 120, 150);
    synth_write_jpeg(&blank, 90, g.paths[BLANK]);
    synth_image blurred = synth_scene(1024, 768, 202);
    synth_blur(&blurred, 10);
    synth_write_jpeg(&blurred, 90, g.paths[BLURRED]);
    synth_image over = synth_scene(1024, 768, 303);
    synth_shift(&over, 170);
    synth_write_jpeg(&over, 90, g.paths[OVEREXPOSED]);
    synth_image normal = synth_scene(1024, 768, 404);
    synth_write_jpeg(&normal, 90, g.paths[NORMAL]);
    synth_free(&pic);
    synth_free(&small);
    synth_free(&medium);
    synth_free(&blank);
    synth_free(&blurred);
    synth_free(&over);
    synth_free(&normal);
}

static int group_setup(void **state)
{
    (void)state;
    make_images();
    return it_server_start_users(&g.srv, NULL, &g.mgr, NULL, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = it_server_finish(&g.srv);
    free(g.mgr);
    for (int i = 0; i < N_FILES; i++)
        unlink(g.paths[i]);
    rmdir(g.dir);
    return rc;
}

static int64_t project_with(const char *name, const char *workflow_json)
{
    char body[1024];
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"media\":\"image\",\"template\":%s%s%s}", name, TEMPLATE,
             workflow_json ? ",\"workflow\":" : "", workflow_json ? workflow_json : "");
    return it_post_project(&g.srv, g.mgr, body);
}

/* Uploads the files (indexes into NAMES) as one batch, closes it, waits; the batch. */
static json_t *ingest(int64_t project, const int *files, int n)
{
    int64_t batch = it_create_batch(&g.srv, g.mgr, project, "b", NULL);
    assert_true(batch > 0);
    for (int i = 0; i < n; i++) {
        it_response r;
        assert_int_equal(it_upload_file(&g.srv, g.mgr, batch, NAMES[files[i]], g.paths[files[i]], &r), 0);
        IT_ASSERT_STATUS(r, 201);
        it_response_free(&r);
    }
    assert_int_equal(it_close_batch(&g.srv, g.mgr, batch), 200);
    json_t *b = it_wait_batch(&g.srv, g.mgr, batch, 120000);
    assert_non_null(b);
    assert_string_equal(it_json_str(b, "state"), "done");
    return b;
}

/* The project's item named name (GET /v1/items/{id}), or NULL if it has none. */
static json_t *item_named(int64_t project, const char *name)
{
    json_t *list = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/items?limit=100",
                                    (long long)project);
    json_t *found = NULL, *it;
    size_t i;
    json_array_foreach(json_object_get(list, "items"), i, it)
        if (strcmp(it_json_str(it, "name"), name) == 0)
            found = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/items/%lld",
                                     (long long)it_json_int(it, "id"));
    json_decref(list);
    return found;
}

static int flag_of(json_t *item, const char *flag)
{
    json_t *q = json_object_get(json_object_get(item, "media"), "quality");
    assert_true(json_is_object(q));
    json_t *v = json_object_get(q, flag);
    assert_true(json_is_boolean(v));
    return json_is_true(v);
}

/* The flagged_files entry of the batch for file name, or NULL. */
static json_t *flagged_entry(json_t *batch, const char *name)
{
    json_t *f;
    size_t i;
    json_array_foreach(json_object_get(batch, "flagged_files"), i, f)
        if (strcmp(it_json_str(f, "file"), name) == 0)
            return f;
    return NULL;
}

static int entry_has(json_t *entry, const char *flag)
{
    json_t *v;
    size_t i;
    json_array_foreach(json_object_get(entry, "flags"), i, v)
        if (strcmp(json_string_value(v), flag) == 0)
            return 1;
    return 0;
}

static void test_flag_mode(void **state)
{
    (void)state;
    int64_t p = project_with("flags", NULL);
    int files[] = {PICTURE, COPY, BLANK, BLURRED, OVEREXPOSED, NORMAL};
    json_t *b = ingest(p, files, 6);
    assert_int_equal(it_json_int(b, "accepted"), 6);
    assert_int_equal(it_json_int(b, "rejected"), 0);

    /* Exactly one of the picture and its copy is the near duplicate of the other
     * (whichever committed second: they may be processed at the same time). */
    json_t *pic = item_named(p, NAMES[PICTURE]), *copy = item_named(p, NAMES[COPY]);
    assert_non_null(pic);
    assert_non_null(copy);
    assert_string_not_equal(it_json_str(pic, "sha256"), it_json_str(copy, "sha256"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(pic, "media"), "quality"),
                                                          "phash")),
                        json_string_value(json_object_get(json_object_get(json_object_get(copy, "media"), "quality"),
                                                          "phash")));
    json_t *dup = flag_of(copy, "near_duplicate") ? copy : pic, *orig = dup == copy ? pic : copy;
    assert_true(flag_of(dup, "near_duplicate"));
    assert_false(flag_of(orig, "near_duplicate"));
    assert_int_equal(it_json_int(dup, "near_duplicate_of"), it_json_int(orig, "id"));
    assert_true(json_is_null(json_object_get(orig, "near_duplicate_of")));
    for (int k = 0; k < 2; k++) {
        json_t *it = k ? dup : orig;
        assert_false(flag_of(it, "blank"));
        assert_false(flag_of(it, "blurred"));
        assert_false(flag_of(it, "overexposed"));
        assert_false(flag_of(it, "underexposed"));
    }

    json_t *blank = item_named(p, NAMES[BLANK]), *blurred = item_named(p, NAMES[BLURRED]),
           *over = item_named(p, NAMES[OVEREXPOSED]), *normal = item_named(p, NAMES[NORMAL]);
    assert_true(flag_of(blank, "blank"));
    assert_false(flag_of(blank, "blurred"));
    assert_true(flag_of(blurred, "blurred"));
    assert_false(flag_of(blurred, "blank"));
    assert_true(json_real_value(json_object_get(json_object_get(json_object_get(blurred, "media"), "quality"),
                                                "sharpness")) < 10);
    assert_true(flag_of(over, "overexposed"));
    assert_false(flag_of(over, "underexposed"));
    const char *all[] = {"near_duplicate", "blank", "blurred", "overexposed", "underexposed"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        assert_false(flag_of(normal, all[i]));
    assert_true(json_real_value(json_object_get(json_object_get(json_object_get(normal, "media"), "quality"),
                                                "sharpness")) > 50);

    /* The batch report: counts per flag and the files. */
    json_t *flagged = json_object_get(b, "flagged");
    assert_int_equal(it_json_int(flagged, "total"), 4);
    assert_int_equal(it_json_int(flagged, "near_duplicate"), 1);
    assert_int_equal(it_json_int(flagged, "blank"), 1);
    assert_int_equal(it_json_int(flagged, "overexposed"), 1);
    assert_int_equal(it_json_int(flagged, "underexposed"), 0);
    assert_true(it_json_int(flagged, "blurred") >= 1);   /* the flat over-exposed frame may be too */
    assert_int_equal(json_array_size(json_object_get(b, "flagged_files")), 4);
    json_t *e = flagged_entry(b, it_json_str(dup, "name"));
    assert_non_null(e);
    assert_true(entry_has(e, "near_duplicate"));
    assert_int_equal(it_json_int(e, "near_duplicate_of"), it_json_int(orig, "id"));
    assert_int_equal(it_json_int(e, "item_id"), it_json_int(dup, "id"));
    assert_true(entry_has(flagged_entry(b, NAMES[BLANK]), "blank"));
    assert_true(entry_has(flagged_entry(b, NAMES[BLURRED]), "blurred"));
    assert_true(entry_has(flagged_entry(b, NAMES[OVEREXPOSED]), "overexposed"));
    assert_null(flagged_entry(b, NAMES[NORMAL]));
    assert_null(flagged_entry(b, it_json_str(orig, "name")));

    /* The same bytes again are dedup's duplicate, not a near duplicate. */
    int again[] = {PICTURE};
    json_t *b2 = ingest(p, again, 1);
    assert_int_equal(it_json_int(b2, "duplicates"), 1);
    assert_int_equal(it_json_int(json_object_get(b2, "flagged"), "total"), 0);
    json_decref(b2);

    json_decref(pic);
    json_decref(copy);
    json_decref(blank);
    json_decref(blurred);
    json_decref(over);
    json_decref(normal);
    json_decref(b);
}

/* The code of the batch's error for file name, or "" if it has none. */
static const char *error_code(json_t *batch, const char *name)
{
    json_t *e;
    size_t i;
    json_array_foreach(json_object_get(batch, "errors"), i, e)
        if (strcmp(it_json_str(e, "file"), name) == 0)
            return it_json_str(e, "code");
    return "";
}

static void test_reject_mode(void **state)
{
    (void)state;
    int64_t p = project_with("rejects", "{\"media_checks\":{\"near_duplicate\":\"reject\",\"quality\":\"reject\"}}");
    int files[] = {PICTURE, COPY, BLANK, BLURRED, OVEREXPOSED, NORMAL};
    json_t *b = ingest(p, files, 6);
    assert_int_equal(it_json_int(b, "accepted"), 2);
    assert_int_equal(it_json_int(b, "rejected"), 4);
    assert_string_equal(error_code(b, NAMES[BLANK]), "blank_image");
    assert_string_equal(error_code(b, NAMES[BLURRED]), "blurry_image");
    assert_string_equal(error_code(b, NAMES[OVEREXPOSED]), "overexposed_image");
    assert_string_equal(error_code(b, NAMES[NORMAL]), "");
    /* One of the picture and its copy is kept, the other rejected. */
    const char *cp = error_code(b, NAMES[PICTURE]), *cc = error_code(b, NAMES[COPY]);
    assert_true((strcmp(cp, "near_duplicate") == 0) != (strcmp(cc, "near_duplicate") == 0));
    assert_true(cp[0] == '\0' || cc[0] == '\0');
    assert_int_equal(it_json_int(json_object_get(b, "flagged"), "total"), 0);
    json_t *normal = item_named(p, NAMES[NORMAL]);
    assert_non_null(normal);
    assert_null(item_named(p, NAMES[BLANK]));
    json_decref(normal);
    json_decref(b);

    /* Later, another copy: rejected against the committed item, before storage. */
    int later[] = {COPY2, NORMAL};
    b = ingest(p, later, 2);
    assert_int_equal(it_json_int(b, "rejected"), 1);
    assert_int_equal(it_json_int(b, "duplicates"), 1);
    assert_string_equal(error_code(b, NAMES[COPY2]), "near_duplicate");
    json_t *e = json_array_get(json_object_get(b, "errors"), 0);
    assert_non_null(strstr(it_json_str(e, "message"), "near duplicate of item"));
    json_decref(b);
}

static void test_checks_off(void **state)
{
    (void)state;
    int64_t p = project_with("off", "{\"media_checks\":{\"near_duplicate\":\"off\",\"quality\":\"off\"}}");
    int files[] = {PICTURE, COPY, BLANK};
    json_t *b = ingest(p, files, 3);
    assert_int_equal(it_json_int(b, "accepted"), 3);
    assert_int_equal(it_json_int(json_object_get(b, "flagged"), "total"), 0);
    json_t *blank = item_named(p, NAMES[BLANK]);
    json_t *q = json_object_get(json_object_get(blank, "media"), "quality");
    assert_non_null(json_object_get(q, "phash"));   /* measured, not judged */
    assert_null(json_object_get(q, "blank"));
    assert_null(json_object_get(q, "near_duplicate"));
    json_decref(blank);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flag_mode),
        cmocka_unit_test(test_reject_mode),
        cmocka_unit_test(test_checks_off),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
