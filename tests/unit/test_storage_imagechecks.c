/* test_storage_imagechecks.c -- the image_checks rows and the multi-index near-duplicate
 * search of storage/store_imagechecks.c, against a brute-force scan.
 *
 * A project gets random 64-bit hashes plus planted neighbours of a few query hashes at
 * every distance 0..12; for every allowed max_distance (0..11) the indexed search must
 * return exactly the nearest item the brute force finds (lowest id on ties). Also:
 * another project's hashes are never returned, the exact-bytes skip, the batch counts
 * and the flagged list. The time of a search over 20,000 hashes is printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "unit_util.h"

#define N_RANDOM 20000
#define N_QUERIES 6

static struct {
    char dir[128];
    tly_store *st;
    int64_t project, other_project, batch, other_batch;
    size_t n;
    int64_t *ids;
    uint64_t *hashes;
} f;

static uint64_t rnd64(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* flips `bits` distinct random bits of h */
static uint64_t flip_bits(uint64_t h, int bits, uint64_t *s)
{
    uint64_t mask = 0;
    while (__builtin_popcountll(mask) < bits)
        mask |= 1ULL << (rnd64(s) % 64);
    return h ^ mask;
}

static int64_t make_project(const char *name)
{
    tly_project p;
    tly_error err;
    int64_t id = 0;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "%s", name);
    snprintf(p.media, sizeof p.media, "image");
    p.template_json = json_pack("{s:[{s:s,s:s}]}", "controls", "type", "choice", "name", "label");
    p.workflow = json_object();
    p.created_by = 1;
    assert_int_equal(tly_store_project_create(f.st, &p, &id, &err), 0);
    json_decref(p.template_json);
    json_decref(p.workflow);
    return id;
}

static int64_t add_item(int64_t project, int64_t batch, uint64_t hash, unsigned flags, int64_t near_of)
{
    static int seq;
    tly_item it;
    tly_error err;
    memset(&it, 0, sizeof it);
    it.project_id = project;
    it.batch_id = batch;
    snprintf(it.name, sizeof it.name, "img-%d.jpg", ++seq);
    snprintf(it.sha256, sizeof it.sha256, "%064x", seq);
    it.size = 1;
    int64_t id = 0;
    assert_int_equal(tly_store_item_insert(f.st, &it, &id, &err), 0);
    tly_image_check c = {.item_id = id, .project_id = project, .batch_id = batch, .phash = hash,
                         .flags = flags, .near_duplicate_of = near_of};
    assert_int_equal(tly_store_image_check_put(f.st, &c, &err), 0);
    return id;
}

static void remember(int64_t id, uint64_t hash)
{
    f.ids[f.n] = id;
    f.hashes[f.n++] = hash;
}

static int setup(void **state)
{
    (void)state;
    char url[256];
    if (unit_store_open(f.dir, sizeof f.dir, "imagechecks", "sqlite:%s/t.db", url, sizeof url, &f.st) < 0)
        return -1;
    tly_error err;
    f.project = make_project("p");
    f.other_project = make_project("other");
    if (tly_store_batch_create(f.st, f.project, "b", "upload", NULL, &f.batch, &err) < 0 ||
        tly_store_batch_create(f.st, f.other_project, "b", "upload", NULL, &f.other_batch, &err) < 0)
        return -1;
    size_t cap = N_RANDOM + N_QUERIES * 16;
    f.ids = calloc(cap, sizeof *f.ids);
    f.hashes = calloc(cap, sizeof *f.hashes);
    uint64_t s = 42;
    if (tly_store_begin(f.st, &err) < 0)
        return -1;
    for (int i = 0; i < N_RANDOM; i++) {
        uint64_t h = rnd64(&s);
        remember(add_item(f.project, f.batch, h, 0, 0), h);
    }
    /* Neighbours of the queries (query q = rnd from seed 1000 + q) at distances 0..12,
     * some twice to test the lowest-id tie break. */
    for (int q = 0; q < N_QUERIES; q++) {
        uint64_t qs = 1000 + (uint64_t)q, qh = rnd64(&qs);
        for (int d = 12; d >= q; d -= 3) {
            uint64_t h = flip_bits(qh, d, &s);
            remember(add_item(f.project, f.batch, h, 0x04, 0), h);
        }
        /* The other project's exact copy must never be found. */
        add_item(f.other_project, f.other_batch, qh, 0, 0);
    }
    return tly_store_commit(f.st, &err);
}

static int teardown(void **state)
{
    (void)state;
    unit_store_remove(f.st, f.dir);
    free(f.ids);
    free(f.hashes);
    return 0;
}

static void brute_force(uint64_t q, int max_d, int64_t *id, int *dist)
{
    *id = 0;
    *dist = 0;
    for (size_t i = 0; i < f.n; i++) {
        int d = __builtin_popcountll(q ^ f.hashes[i]);
        if (d <= max_d && (*id == 0 || d < *dist || (d == *dist && f.ids[i] < *id))) {
            *id = f.ids[i];
            *dist = d;
        }
    }
}

static void test_search_matches_brute_force(void **state)
{
    (void)state;
    tly_error err;
    int checked = 0, found = 0;
    for (int q = 0; q < N_QUERIES + 20; q++) {
        uint64_t qs = 1000 + (uint64_t)q, qh = rnd64(&qs);
        for (int max_d = 0; max_d <= 11; max_d++) {
            int64_t want_id, got_id;
            int want_d, got_d;
            brute_force(qh, max_d, &want_id, &want_d);
            int rc = tly_store_image_near(f.st, f.project, NULL, qh, max_d, &got_id, &got_d, &err);
            assert_int_equal(rc, want_id ? 1 : 0);
            assert_int_equal(got_id, want_id);
            assert_int_equal(got_d, want_d);
            checked++;
            found += rc;
        }
    }
    print_message("%d searches agree with the brute force (%d found an item)\n", checked, found);
    assert_true(found > N_QUERIES * 5);
    int64_t id;
    int d;
    assert_int_equal(tly_store_image_near(f.st, f.project, NULL, 0, 12, &id, &d, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
}

static void test_search_time(void **state)
{
    (void)state;
    tly_error err;
    struct timespec a, b;
    uint64_t s = 7;
    int64_t id;
    int d;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 200; i++)
        assert_true(tly_store_image_near(f.st, f.project, NULL, rnd64(&s), 6, &id, &d, &err) >= 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3 / 200;
    print_message("near-duplicate search (distance 6) over %d hashes: %.0f us\n", N_RANDOM, us);
}

static void test_skip_exact_and_report(void **state)
{
    (void)state;
    tly_error err;
    int64_t id;
    int d;
    /* An item with these bytes exists: no near duplicate is reported. */
    char sha[65];
    snprintf(sha, sizeof sha, "%064x", 1);
    assert_int_equal(tly_store_image_near(f.st, f.project, sha, f.hashes[0], 6, &id, &d, &err), 0);
    assert_int_equal(tly_store_image_near(f.st, f.project, NULL, f.hashes[0], 6, &id, &d, &err), 1);
    assert_int_equal(id, f.ids[0]);
    assert_int_equal(d, 0);

    int64_t batch2;
    assert_int_equal(tly_store_batch_create(f.st, f.project, "b2", "upload", NULL, &batch2, &err), 0);
    add_item(f.project, batch2, 1, 0, 0);
    int64_t a = add_item(f.project, batch2, 2, 0x01 | 0x04, 5);
    int64_t b = add_item(f.project, batch2, 3, 0x02, 0);
    int64_t flagged, counts[TLY_IMAGE_CHECK_BITS];
    assert_int_equal(tly_store_image_check_counts(f.st, batch2, &flagged, counts, &err), 0);
    assert_int_equal(flagged, 2);
    int64_t want[TLY_IMAGE_CHECK_BITS] = {1, 1, 1, 0, 0};
    for (int i = 0; i < TLY_IMAGE_CHECK_BITS; i++)
        assert_int_equal(counts[i], want[i]);
    tly_image_check *list = NULL;
    size_t n = 0;
    assert_int_equal(tly_store_image_check_flagged(f.st, batch2, 0, 10, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].item_id, a);
    assert_int_equal(list[0].flags, 0x05);
    assert_int_equal(list[0].near_duplicate_of, 5);
    assert_int_equal(list[0].phash, 2);
    assert_true(strncmp(list[0].name, "img-", 4) == 0);
    assert_int_equal(list[1].item_id, b);
    free(list);
    assert_int_equal(tly_store_image_check_flagged(f.st, batch2, a, 10, &list, &n, &err), 0);
    assert_int_equal(n, 1);
    free(list);
    /* Hashes with the top bit set survive the signed BIGINT column. */
    int64_t c = add_item(f.project, batch2, 0xFEDCBA9876543210ULL, 0x02, 0);
    tly_image_check got;
    assert_int_equal(tly_store_image_check_get(f.st, c, &got, &err), 0);
    assert_true(got.phash == 0xFEDCBA9876543210ULL);
    assert_int_equal(tly_store_image_near(f.st, f.project, NULL, 0xFEDCBA9876543211ULL, 1, &id, &d, &err), 1);
    assert_int_equal(id, c);
    assert_int_equal(d, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_matches_brute_force),
        cmocka_unit_test(test_search_time),
        cmocka_unit_test(test_skip_exact_and_report),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
