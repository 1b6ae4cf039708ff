/* test_qa.c -- unit tests for qa/gold.h: validating gold answers against a template
 * and the item, and setting / clearing them on items of a real SQLite store.
 *
 * Each store test gets a fresh mkdtemp directory with a project (image template),
 * a batch and one item created through storage/store.h; nothing is mocked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/fsutil.h"
#include "core/hash.h"
#include "qa/gold.h"
#include "storage/store.h"
#include "unit_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *TMPL =
    "{\"controls\":["
    "{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"],\"required\":true},"
    "{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"cat\",\"dog\"]},"
    "{\"name\":\"note\",\"type\":\"text\"}]}";

static const char *OPTIONAL_TMPL =
    "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"]},"
    "{\"name\":\"note\",\"type\":\"text\"}]}";

static const char *MEDIA = "{\"format\":\"jpeg\",\"width\":100,\"height\":50}";

/* ---- tly_gold_validate ---------------------------------------------------------- */

static void gold_ok(json_t *tmpl, const char *answer, const char *media_text)
{
    unit_validate_ok(tly_gold_validate, tmpl, answer, media_text);
}

/* Rejected with TLY_E_UNPROCESSABLE / "invalid_gold", message containing frag. */
static void gold_bad(json_t *tmpl, const char *answer, const char *media_text, const char *frag)
{
    unit_validate_bad(tly_gold_validate, "invalid_gold", tmpl, answer, media_text, frag);
}

static void test_gold_validate(void **state)
{
    (void)state;
    json_t *tmpl = J(TMPL);
    gold_ok(tmpl, "{\"label\":\"cat\"}", NULL);
    gold_ok(tmpl, "{\"label\":\"dog\",\"boxes\":[{\"label\":\"dog\",\"x\":1,\"y\":1,\"w\":10,\"h\":10}]}", MEDIA);
    gold_ok(tmpl, "{\"label\":\"dog\",\"note\":\"ok\"}", MEDIA);
    /* Unknown control. */
    gold_bad(tmpl, "{\"label\":\"cat\",\"colour\":\"red\"}", NULL, "colour");
    /* Missing required control. */
    gold_bad(tmpl, "{\"note\":\"x\"}", NULL, "label");
    /* Values are checked like any answer. */
    gold_bad(tmpl, "{\"label\":\"bird\"}", NULL, "label");
    gold_bad(tmpl, "{\"label\":\"cat\",\"note\":7}", NULL, "note");
    gold_bad(tmpl, "{\"label\":\"cat\",\"boxes\":[{\"label\":\"fox\",\"x\":1,\"y\":1,\"w\":1,\"h\":1}]}", NULL,
             "boxes");
    /* With media, boxes must be inside the image; without, only the shape counts. */
    const char *outside = "{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":95,\"y\":0,\"w\":10,\"h\":10}]}";
    gold_bad(tmpl, outside, MEDIA, "boxes");
    gold_ok(tmpl, outside, NULL);
    /* Not an object. */
    gold_bad(tmpl, "[]", NULL, NULL);
    gold_bad(tmpl, "\"cat\"", NULL, NULL);
    tly_error err;
    assert_int_equal(tly_gold_validate(tmpl, NULL, NULL, &err), -1);
    assert_int_equal(err.status, TLY_E_UNPROCESSABLE);
    assert_string_equal(err.code, "invalid_gold");
    json_decref(tmpl);
}

static void test_gold_validate_empty(void **state)
{
    (void)state;
    json_t *tmpl = J(OPTIONAL_TMPL);
    /* A gold answer must answer something. */
    gold_bad(tmpl, "{}", NULL, NULL);
    gold_ok(tmpl, "{\"note\":\"x\"}", NULL);
    json_decref(tmpl);
}

static int setup_optional_tmpl(void **state)
{
    *state = J(OPTIONAL_TMPL);
    return 0;
}

static int teardown_tmpl(void **state)
{
    json_decref(*state);
    return 0;
}

static void test_gold_validate_all_null(void **state)
{
    json_t *tmpl = *state;   /* OPTIONAL_TMPL, freed by the teardown even on failure */
    /* One real value among nulls is fine. */
    gold_ok(tmpl, "{\"label\":null,\"note\":\"x\"}", NULL);
    /* null means "not answered" for a non-required control (template.h), so an answer
     * whose every value is null answers no control, exactly like {}. */
    gold_bad(tmpl, "{\"label\":null}", NULL, NULL);
    gold_bad(tmpl, "{\"label\":null,\"note\":null}", NULL, NULL);
}

/* ---- tly_gold_set with a real store --------------------------------------------- */

struct fixture {
    char dir[64];
    tly_store *st;
    int64_t project_id;
    int64_t batch_id;
    int64_t item_id;
};

static int64_t add_item(tly_store *st, int64_t project_id, int64_t batch_id, const char *name,
                        const char *media)
{
    tly_item it;
    tly_error err;
    int64_t id = 0;
    memset(&it, 0, sizeof it);
    it.project_id = project_id;
    it.batch_id = batch_id;
    snprintf(it.name, sizeof it.name, "%s", name);
    tly_sha256_hex(name, strlen(name), it.sha256);
    it.size = 1234;
    it.media = media ? J(media) : NULL;
    int rc = tly_store_item_insert(st, &it, &id, &err);
    json_decref(it.media);
    if (rc != 0)
        fail_msg("item insert: %s", err.message);
    return id;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char url[128];
    tly_error err;
    if (!f)
        return -1;
    if (unit_store_open(f->dir, sizeof f->dir, "qa", "sqlite:%s/t.db", url, sizeof url, &f->st) < 0) {
        free(f);
        return -1;
    }
    tly_project p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "gold project");
    snprintf(p.media, sizeof p.media, "image");
    snprintf(p.state, sizeof p.state, "active");
    p.template_json = J(TMPL);
    p.workflow = json_pack("{s:i}", "overlap", 3);
    p.created_by = 1;
    int rc = tly_store_project_create(f->st, &p, &f->project_id, &err);
    json_decref(p.template_json);
    json_decref(p.workflow);
    if (rc < 0) {
        fprintf(stderr, "project: %s\n", err.message);
        goto fail;
    }
    json_t *source = json_pack("{s:s}", "kind", "upload");
    rc = tly_store_batch_create(f->st, f->project_id, "batch 1", "upload", source, &f->batch_id, &err);
    json_decref(source);
    if (rc < 0) {
        fprintf(stderr, "batch: %s\n", err.message);
        goto fail;
    }
    *state = f;
    f->item_id = add_item(f->st, f->project_id, f->batch_id, "cat1.jpg", MEDIA);
    return 0;
fail:
    unit_store_remove(f->st, f->dir);
    free(f);
    return -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unit_store_remove(f->st, f->dir);
    free(f);
    return 0;
}

static int64_t gold_count(tly_store *st, int64_t project_id)
{
    json_t *counts = NULL;
    tly_error err;
    assert_int_equal(tly_store_item_counts(st, project_id, &counts, &err), 0);
    int64_t n = json_integer_value(json_object_get(counts, "gold"));
    json_decref(counts);
    return n;
}

static void test_gold_set_and_clear(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    tly_item it;
    memset(&it, 0, sizeof it);
    assert_true(f->item_id > 0);
    assert_int_equal(gold_count(f->st, f->project_id), 0);

    json_t *answer = J("{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":0,\"y\":0,\"w\":100,\"h\":50}]}");
    if (tly_gold_set(f->st, f->item_id, answer, &it, &err) != 0)
        fail_msg("gold set: %s", err.message);
    assert_int_equal(it.id, f->item_id);
    assert_non_null(it.gold);
    assert_true(json_equal(it.gold, answer));
    assert_int_equal(it.project_id, f->project_id);
    tly_item_clear(&it);
    assert_int_equal(gold_count(f->st, f->project_id), 1);

    /* Stored: a fresh read sees it. */
    assert_int_equal(tly_store_item_get(f->st, f->item_id, &it, &err), 0);
    assert_true(json_equal(it.gold, answer));
    tly_item_clear(&it);
    json_decref(answer);

    /* Replace, with item_out NULL. */
    answer = J("{\"label\":\"dog\"}");
    assert_int_equal(tly_gold_set(f->st, f->item_id, answer, NULL, &err), 0);
    assert_int_equal(tly_store_item_get(f->st, f->item_id, &it, &err), 0);
    assert_true(json_equal(it.gold, answer));
    tly_item_clear(&it);
    json_decref(answer);
    assert_int_equal(gold_count(f->st, f->project_id), 1);

    /* Clear. */
    assert_int_equal(tly_gold_set(f->st, f->item_id, NULL, &it, &err), 0);
    assert_null(it.gold);
    assert_int_equal(it.id, f->item_id);
    tly_item_clear(&it);
    assert_int_equal(tly_store_item_get(f->st, f->item_id, &it, &err), 0);
    assert_null(it.gold);
    tly_item_clear(&it);
    assert_int_equal(gold_count(f->st, f->project_id), 0);
    /* Clearing again is fine. */
    assert_int_equal(tly_gold_set(f->st, f->item_id, NULL, NULL, &err), 0);
}

static void test_gold_set_invalid_keeps_old(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    tly_item it;
    memset(&it, 0, sizeof it);
    json_t *good = J("{\"label\":\"cat\"}");
    assert_int_equal(tly_gold_set(f->st, f->item_id, good, NULL, &err), 0);

    static const char *const bad[] = {
        "{\"label\":\"cat\",\"shape\":\"x\"}",                                       /* unknown control */
        "{\"note\":\"no label\"}",                                                   /* missing required */
        "{\"label\":\"bird\"}",                                                      /* not an option */
        "{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":0,\"y\":40,\"w\":10,\"h\":20}]}", /* off image */
        "{}",
        "[\"cat\"]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *a = J(bad[i]);
        tly_error_clear(&err);
        memset(&it, 0, sizeof it);
        int rc = tly_gold_set(f->st, f->item_id, a, &it, &err);
        json_decref(a);
        if (rc != -1)
            fail_msg("gold should be rejected: %s", bad[i]);
        assert_int_equal(err.status, TLY_E_UNPROCESSABLE);
        assert_string_equal(err.code, "invalid_gold");
        assert_null(it.gold);   /* item_out untouched on failure */
    }
    /* The unknown control is named. */
    json_t *a = J(bad[0]);
    assert_int_equal(tly_gold_set(f->st, f->item_id, a, NULL, &err), -1);
    assert_non_null(strstr(err.message, "shape"));
    json_decref(a);

    /* The earlier gold answer is still there. */
    assert_int_equal(tly_store_item_get(f->st, f->item_id, &it, &err), 0);
    assert_true(json_equal(it.gold, good));
    tly_item_clear(&it);
    json_decref(good);
    assert_int_equal(gold_count(f->st, f->project_id), 1);
}

static void test_gold_set_unknown_item(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    tly_item it;
    memset(&it, 0, sizeof it);
    json_t *answer = J("{\"label\":\"cat\"}");
    tly_error_clear(&err);
    assert_int_equal(tly_gold_set(f->st, f->item_id + 1000, answer, &it, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);
    assert_null(it.gold);
    tly_error_clear(&err);
    assert_int_equal(tly_gold_set(f->st, f->item_id + 1000, NULL, NULL, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);
    assert_int_equal(tly_gold_set(f->st, 0, answer, NULL, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);
    assert_int_equal(tly_gold_set(f->st, -5, answer, NULL, NULL), -1);
    json_decref(answer);
    assert_int_equal(gold_count(f->st, f->project_id), 0);
}

static void test_gold_set_media_unknown(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    /* An item whose media is not probed yet: only the shape of boxes is checked. */
    int64_t id = add_item(f->st, f->project_id, f->batch_id, "unprobed.jpg", NULL);
    json_t *big = J("{\"label\":\"cat\",\"boxes\":[{\"label\":\"cat\",\"x\":500,\"y\":500,\"w\":10,\"h\":10}]}");
    if (tly_gold_set(f->st, id, big, NULL, &err) != 0) {
        json_decref(big);
        fail_msg("gold on unprobed item: %s", err.message);
    }
    /* ...but the probed item rejects the same box. */
    assert_int_equal(tly_gold_set(f->st, f->item_id, big, NULL, &err), -1);
    assert_string_equal(err.code, "invalid_gold");
    json_decref(big);
    assert_int_equal(gold_count(f->st, f->project_id), 1);
}

static void test_gold_set_per_project_template(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    /* A second project with an audio template: its item's gold follows that template. */
    tly_project p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "audio project");
    snprintf(p.media, sizeof p.media, "audio");
    p.template_json = J("{\"controls\":[{\"name\":\"words\",\"type\":\"transcription\",\"required\":true}]}");
    p.workflow = json_object();
    p.created_by = 1;
    int64_t pid = 0;
    int rc = tly_store_project_create(f->st, &p, &pid, &err);
    json_decref(p.template_json);
    json_decref(p.workflow);
    assert_int_equal(rc, 0);
    int64_t id = add_item(f->st, pid, 0, "a.wav", "{\"format\":\"wav\",\"duration\":1.5}");

    json_t *image_gold = J("{\"label\":\"cat\"}");
    assert_int_equal(tly_gold_set(f->st, id, image_gold, NULL, &err), -1);
    assert_int_equal(err.status, TLY_E_UNPROCESSABLE);
    assert_string_equal(err.code, "invalid_gold");
    json_decref(image_gold);

    json_t *audio_gold = J("{\"words\":\"hello\"}");
    assert_int_equal(tly_gold_set(f->st, id, audio_gold, NULL, &err), 0);
    /* ...and the image item rejects the audio answer. */
    assert_int_equal(tly_gold_set(f->st, f->item_id, audio_gold, NULL, &err), -1);
    assert_string_equal(err.code, "invalid_gold");
    json_decref(audio_gold);
    assert_int_equal(gold_count(f->st, pid), 1);
    assert_int_equal(gold_count(f->st, f->project_id), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gold_validate),
        cmocka_unit_test(test_gold_validate_empty),
        cmocka_unit_test_setup_teardown(test_gold_validate_all_null, setup_optional_tmpl, teardown_tmpl),
        cmocka_unit_test_setup_teardown(test_gold_set_and_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gold_set_invalid_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gold_set_unknown_item, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gold_set_media_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gold_set_per_project_template, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
