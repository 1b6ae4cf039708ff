/* test_storage_store.c -- the metadata store against a real SQLite file.
 *
 * Each test gets a fresh mkdtemp directory holding the database, so tests are
 * independent and exercise the real driver, migrations and per-thread connections
 * (no mocks). The concurrency tests use real threads, each with its own connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/fsutil.h"
#include "core/hash.h"
#include "storage/store.h"
#include "unit_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fixture {
    char dir[64];
    char path[128];
    tly_store *st;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || unit_store_open(f->dir, sizeof f->dir, "store", "%s/tally.db", f->path, sizeof f->path,
                              &f->st) < 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unit_store_remove(f->st, f->dir);
    free(f);
    return 0;
}

static void token_of(const char *token, char hex[65])
{
    tly_sha256_hex(token, strlen(token), hex);
}

static int64_t make_user(tly_store *st, const char *name)
{
    char tok[65];
    tly_user u;
    tly_error err;
    token_of(name, tok);
    assert_int_equal(tly_store_user_create(st, name, TLY_ROLE_MANAGER, tok, &u, &err), 0);
    return u.id;
}

static int64_t make_project(tly_store *st, const char *name)
{
    tly_project p;
    tly_error err;
    int64_t id = 0;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "%s", name);
    snprintf(p.media, sizeof p.media, "image");
    p.template_json = json_pack("{s:[{s:s,s:s}]}", "controls", "type", "choice", "name", "label");
    p.workflow = json_pack("{s:i}", "overlap", 3);
    p.guidelines = "Label the animal.";
    p.created_by = 1;
    assert_int_equal(tly_store_project_create(st, &p, &id, &err), 0);
    json_decref(p.template_json);
    json_decref(p.workflow);
    assert_true(id > 0);
    return id;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- open, migrations ---------------------------------------------------------- */

static void test_migrations_idempotent(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    int version = 0;
    char url[160];
    assert_string_equal(tly_store_backend_name(f->st), "sqlite");
    assert_int_equal(tly_store_schema_version(f->st, &version, &err), 0);
    assert_int_equal(version, 8);   /* the latest migration */
    make_user(f->st, "alice");

    /* Reopen through the "sqlite:" URL form: nothing is re-applied, data is kept. */
    tly_store_close(f->st);
    f->st = NULL;
    snprintf(url, sizeof url, "sqlite:%s", f->path);
    assert_int_equal(tly_store_open(url, &f->st, &err), 0);
    version = 0;
    assert_int_equal(tly_store_schema_version(f->st, &version, &err), 0);
    assert_int_equal(version, 8);   /* the latest migration */
    int64_t n = 0;
    assert_int_equal(tly_store_user_count(f->st, &n, &err), 0);
    assert_int_equal(n, 1);
}

static void test_open_errors(void **state)
{
    tly_store *st = (tly_store *)1;
    tly_error err;
    /* PostgreSQL (storage/postgres.c): no server behind this socket directory. */
    assert_int_equal(tly_store_open("postgresql://tally@/tally?host=/nonexistent-dir", &st, &err), -1);
    assert_int_equal(err.status, TLY_E_IO);
    assert_null(st);
    assert_int_equal(tly_store_open("mysql://db/tally", &st, &err), -1);
    assert_int_equal(err.status, TLY_E_UNSUPPORTED);
    assert_int_equal(tly_store_open("", &st, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_int_equal(tly_store_open("/nonexistent-dir/x/tally.db", &st, &err), -1);
    assert_int_equal(err.status, TLY_E_IO);
}

/* ---- users --------------------------------------------------------------------- */

static void test_users(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    tly_user u, v;
    char tok[65], tok2[65];
    token_of("secret-1", tok);
    token_of("secret-2", tok2);

    assert_int_equal(tly_store_user_create(f->st, "bob", TLY_ROLE_WORKER, tok, &u, &err), 0);
    assert_true(u.id > 0);
    assert_string_equal(u.name, "bob");
    assert_int_equal(u.role, TLY_ROLE_WORKER);
    assert_true(u.created_at > 0);

    assert_int_equal(tly_store_user_by_token(f->st, tok, &v, &err), 0);
    assert_int_equal(v.id, u.id);
    assert_string_equal(v.token_sha256, tok);
    assert_int_equal(tly_store_user_get(f->st, u.id, &v, &err), 0);
    assert_string_equal(v.name, "bob");

    assert_int_equal(tly_store_user_create(f->st, "bob", TLY_ROLE_ADMIN, tok2, &v, &err), -1);
    assert_int_equal(err.status, TLY_E_CONFLICT);
    assert_string_equal(err.code, "name_taken");

    assert_int_equal(tly_store_user_by_token(f->st, tok2, &v, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);
    assert_int_equal(tly_store_user_get(f->st, 999, &v, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);
    assert_int_equal(tly_store_user_create(f->st, "eve", TLY_ROLE_WORKER, "not-a-hash", &v,
                                           &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);

    int64_t n = 0;
    assert_int_equal(tly_store_user_count(f->st, &n, &err), 0);
    assert_int_equal(n, 1);

    tly_role r;
    assert_int_equal(tly_role_parse("consumer", &r), 0);
    assert_int_equal(r, TLY_ROLE_CONSUMER);
    assert_string_equal(tly_role_name(TLY_ROLE_ADMIN), "admin");
    assert_int_equal(tly_role_parse("root", &r), -1);
}

/* ---- projects ------------------------------------------------------------------ */

static void test_projects(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    int64_t ids[5];
    char name[32];
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "project %d", i);
        ids[i] = make_project(f->st, name);
    }

    tly_project p;
    assert_int_equal(tly_store_project_get(f->st, ids[2], &p, &err), 0);
    assert_string_equal(p.name, "project 2");
    assert_string_equal(p.media, "image");
    assert_string_equal(p.state, "active");
    assert_string_equal(p.guidelines, "Label the animal.");
    assert_int_equal(json_integer_value(json_object_get(p.workflow, "overlap")), 3);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(p.template_json, "controls"), 0),
                            "type")),
                        "choice");
    tly_project_clear(&p);
    assert_null(p.workflow);

    assert_int_equal(tly_store_project_get(f->st, 12345, &p, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);

    /* Keyset paging: 2 + 2 + 1, then an empty page. */
    int64_t after = 0;
    size_t seen = 0, pages[4];
    for (int page = 0; page < 4; page++) {
        tly_project *list;
        size_t n;
        assert_int_equal(tly_store_project_list(f->st, after, 2, &list, &n, &err), 0);
        pages[page] = n;
        for (size_t i = 0; i < n; i++)
            assert_int_equal(list[i].id, ids[seen + i]);
        seen += n;
        if (n)
            after = list[n - 1].id;
        tly_project_list_free(list, n);
    }
    assert_int_equal(pages[0], 2);
    assert_int_equal(pages[1], 2);
    assert_int_equal(pages[2], 1);
    assert_int_equal(pages[3], 0);

    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "bad");
    snprintf(p.media, sizeof p.media, "video");
    assert_int_equal(tly_store_project_create(f->st, &p, NULL, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
}

/* ---- batches and batch files --------------------------------------------------- */

static int64_t add_file(tly_store *st, int64_t batch, const char *name, json_t *gold)
{
    tly_batch_file in;
    tly_error err;
    int64_t id = 0;
    memset(&in, 0, sizeof in);
    in.batch_id = batch;
    snprintf(in.name, sizeof in.name, "%s", name);
    snprintf(in.source_kind, sizeof in.source_kind, "spool");
    in.location = "upload-123.part";
    tly_sha256_hex(name, strlen(name), in.sha256);
    in.size = 42;
    in.gold = gold;
    assert_int_equal(tly_store_batch_file_add(st, &in, &id, &err), 0);
    return id;
}

static void test_batches(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    int64_t pid = make_project(f->st, "p");
    int64_t bid = 0;
    json_t *src = json_pack("{s:s}", "dir", "/data/in");
    assert_int_equal(tly_store_batch_create(f->st, pid, "first", "dir", src, &bid, &err), 0);
    json_decref(src);
    assert_int_equal(tly_store_batch_create(f->st, 777, "orphan", "dir", NULL, NULL, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);

    json_t *gold = json_pack("{s:s}", "label", "cat");
    int64_t a = add_file(f->st, bid, "a.jpg", gold);
    int64_t b = add_file(f->st, bid, "b.jpg", NULL);
    int64_t c = add_file(f->st, bid, "c.jpg", NULL);
    add_file(f->st, bid, "d.jpg", NULL);
    json_decref(gold);

    tly_batch_file dup;
    memset(&dup, 0, sizeof dup);
    dup.batch_id = bid;
    snprintf(dup.name, sizeof dup.name, "a.jpg");
    snprintf(dup.source_kind, sizeof dup.source_kind, "path");
    assert_int_equal(tly_store_batch_file_add(f->st, &dup, NULL, &err), -1);
    assert_int_equal(err.status, TLY_E_CONFLICT);
    assert_string_equal(err.code, "file_exists");

    tly_batch_file bf;
    assert_int_equal(tly_store_batch_file_get(f->st, a, &bf, &err), 0);
    assert_string_equal(bf.name, "a.jpg");
    assert_string_equal(bf.location, "upload-123.part");
    assert_string_equal(json_string_value(json_object_get(bf.gold, "label")), "cat");
    assert_null(bf.meta);
    assert_int_equal(bf.state, TLY_BF_PENDING);
    assert_int_equal(bf.size, 42);
    tly_batch_file_clear(&bf);

    tly_batch batch;
    assert_int_equal(tly_store_batch_get(f->st, bid, &batch, &err), 0);
    assert_int_equal(batch.total, 4);
    assert_int_equal(batch.pending, 4);
    assert_int_equal(batch.accepted, 0);
    assert_false(batch.closed);
    assert_string_equal(json_string_value(json_object_get(batch.source, "dir")), "/data/in");
    tly_batch_clear(&batch);

    assert_int_equal(tly_store_batch_file_finish(f->st, a, TLY_BF_ACCEPTED, 10, NULL, NULL, &err),
                     0);
    assert_int_equal(tly_store_batch_file_finish(f->st, b, TLY_BF_DUPLICATE, 10, NULL, NULL, &err),
                     0);
    assert_int_equal(tly_store_batch_file_finish(f->st, c, TLY_BF_REJECTED, 0, "truncated",
                                                 "JPEG ends early", &err), 0);
    /* A finished file cannot finish again; a missing one is NOT_FOUND. */
    assert_int_equal(tly_store_batch_file_finish(f->st, a, TLY_BF_REJECTED, 0, "x", "y", &err), -1);
    assert_int_equal(err.status, TLY_E_CONFLICT);
    assert_int_equal(tly_store_batch_file_finish(f->st, 9999, TLY_BF_ACCEPTED, 1, NULL, NULL, &err),
                     -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);

    assert_int_equal(tly_store_batch_get(f->st, bid, &batch, &err), 0);
    assert_int_equal(batch.total, 4);
    assert_int_equal(batch.pending, 1);
    assert_int_equal(batch.accepted, 1);
    assert_int_equal(batch.duplicates, 1);
    assert_int_equal(batch.rejected, 1);
    tly_batch_clear(&batch);

    tly_batch_file *list;
    size_t n;
    assert_int_equal(tly_store_batch_file_list(f->st, bid, TLY_BF_REJECTED, 0, 10, &list, &n, &err),
                     0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, c);
    assert_string_equal(list[0].error_code, "truncated");
    assert_string_equal(list[0].error_message, "JPEG ends early");
    tly_batch_file_list_free(list, n);
    assert_int_equal(tly_store_batch_file_list(f->st, bid, TLY_BF_PENDING, 0, 10, &list, &n, &err),
                     0);
    assert_int_equal(n, 1);
    tly_batch_file_list_free(list, n);

    /* Close is idempotent and keeps the first closing time. */
    assert_int_equal(tly_store_batch_close(f->st, bid, &err), 0);
    assert_int_equal(tly_store_batch_get(f->st, bid, &batch, &err), 0);
    int64_t closed_at = batch.closed_at;
    assert_true(batch.closed);
    assert_true(closed_at > 0);
    tly_batch_clear(&batch);
    sleep_ms(5);
    assert_int_equal(tly_store_batch_close(f->st, bid, &err), 0);
    assert_int_equal(tly_store_batch_get(f->st, bid, &batch, &err), 0);
    assert_int_equal(batch.closed_at, closed_at);
    assert_null(batch.error);
    tly_batch_clear(&batch);
    assert_int_equal(tly_store_batch_close(f->st, 4242, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);

    int64_t bid2 = 0;
    assert_int_equal(tly_store_batch_create(f->st, pid, "second", "urls", NULL, &bid2, &err), 0);
    assert_int_equal(tly_store_batch_fail(f->st, bid2, "manifest unreadable", &err), 0);
    tly_batch *bl;
    assert_int_equal(tly_store_batch_list(f->st, pid, 0, 0, &bl, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(bl[0].id, bid);
    assert_int_equal(bl[0].accepted, 1);
    assert_int_equal(bl[1].id, bid2);
    assert_int_equal(bl[1].total, 0);
    assert_true(bl[1].closed);
    assert_string_equal(bl[1].error, "manifest unreadable");
    assert_null(bl[1].source);
    tly_batch_list_free(bl, n);
    assert_int_equal(tly_store_batch_list(f->st, pid, bid, 10, &bl, &n, &err), 0);
    assert_int_equal(n, 1);
    tly_batch_list_free(bl, n);
}

/* ---- items --------------------------------------------------------------------- */

static int item_insert(tly_store *st, int64_t pid, const char *bytes, const char *state,
                       int64_t *id)
{
    tly_item in;
    tly_error err;
    memset(&in, 0, sizeof in);
    in.project_id = pid;
    snprintf(in.name, sizeof in.name, "%s.jpg", bytes);
    tly_sha256_hex(bytes, strlen(bytes), in.sha256);
    in.size = (int64_t)strlen(bytes);
    if (state)
        snprintf(in.state, sizeof in.state, "%s", state);
    in.media = json_pack("{s:s,s:i,s:i}", "format", "jpeg", "width", 640, "height", 480);
    int rc = tly_store_item_insert(st, &in, id, &err);
    json_decref(in.media);
    return rc;
}

static void test_items(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    int64_t pid = make_project(f->st, "p");
    int64_t other = make_project(f->st, "q");
    int64_t ids[6], dup = 0, id = 0;

    for (int i = 0; i < 5; i++) {
        char bytes[16];
        snprintf(bytes, sizeof bytes, "img-%d", i);
        assert_int_equal(item_insert(f->st, pid, bytes, NULL, &ids[i]), 0);
    }
    assert_int_equal(item_insert(f->st, pid, "img-2", NULL, &dup), 1);
    assert_int_equal(dup, ids[2]);
    /* The same bytes in another project are a different item. */
    assert_int_equal(item_insert(f->st, other, "img-2", NULL, &id), 0);
    assert_true(id != ids[2]);
    assert_int_equal(item_insert(f->st, pid, "img-5", "review", &ids[5]), 0);

    tly_item it;
    assert_int_equal(tly_store_item_get(f->st, ids[1], &it, &err), 0);
    assert_string_equal(it.state, "new");
    assert_string_equal(it.name, "img-1.jpg");
    assert_int_equal(json_integer_value(json_object_get(it.media, "width")), 640);
    assert_null(it.gold);
    assert_string_equal(it.thumb_sha256, "");
    tly_item_clear(&it);
    assert_int_equal(tly_store_item_get(f->st, 9999, &it, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);

    /* By state, in pages of 2: 2 + 2 + 1 "new" items, in id order. */
    tly_item *list;
    size_t n, total = 0;
    int64_t after = 0;
    do {
        assert_int_equal(tly_store_item_list(f->st, pid, "new", after, 2, &list, &n, &err), 0);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(list[i].id, ids[total + i]);
            assert_string_equal(list[i].state, "new");
        }
        total += n;
        if (n)
            after = list[n - 1].id;
        tly_item_list_free(list, n);
    } while (n > 0);
    assert_int_equal(total, 5);
    assert_int_equal(tly_store_item_list(f->st, pid, "review", 0, 10, &list, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, ids[5]);
    tly_item_list_free(list, n);
    assert_int_equal(tly_store_item_list(f->st, pid, NULL, 0, 100, &list, &n, &err), 0);
    assert_int_equal(n, 6);
    tly_item_list_free(list, n);

    json_t *gold = json_pack("{s:s}", "label", "dog");
    assert_int_equal(tly_store_item_set_gold(f->st, ids[0], gold, &err), 0);
    assert_int_equal(tly_store_item_set_gold(f->st, ids[3], gold, &err), 0);
    assert_int_equal(tly_store_item_set_gold(f->st, 9999, gold, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);
    json_decref(gold);
    assert_int_equal(tly_store_item_get(f->st, ids[0], &it, &err), 0);
    assert_string_equal(json_string_value(json_object_get(it.gold, "label")), "dog");
    tly_item_clear(&it);
    assert_int_equal(tly_store_item_set_gold(f->st, ids[3], NULL, &err), 0);

    json_t *counts;
    assert_int_equal(tly_store_item_counts(f->st, pid, &counts, &err), 0);
    /* A test question waits in state 'gold' (ids[0]); cleared, ids[3] is work again. */
    assert_int_equal(json_integer_value(json_object_get(counts, "new")), 4);
    assert_int_equal(json_integer_value(json_object_get(counts, "review")), 1);
    assert_int_equal(json_integer_value(json_object_get(counts, "gold")), 1);
    assert_int_equal(json_object_size(counts), 3);
    json_decref(counts);

    tly_item bad;
    memset(&bad, 0, sizeof bad);
    bad.project_id = pid;
    snprintf(bad.name, sizeof bad.name, "x");
    snprintf(bad.sha256, sizeof bad.sha256, "../../etc/passwd");
    assert_int_equal(tly_store_item_insert(f->st, &bad, &id, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
}

/* ---- jobs ---------------------------------------------------------------------- */

static void assert_counts(tly_store *st, int64_t q, int64_t r, int64_t fl)
{
    int64_t a = -1, b = -1, c = -1;
    tly_error err;
    assert_int_equal(tly_store_job_counts(st, &a, &b, &c, &err), 0);
    assert_int_equal(a, q);
    assert_int_equal(b, r);
    assert_int_equal(c, fl);
}

/* Previews are kept with their item: put once, read back exactly, bounded by the
 * reader's buffer, and tied to an existing item. */
static void test_previews(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    int64_t pid = make_project(f->st, "p"), id = 0;
    assert_int_equal(item_insert(f->st, pid, "img", NULL, &id), 0);
    char sha[65], got_sha[65];
    const char bytes[] = "\xff\xd8 thumbnail \0 with a NUL \xff\xd9";
    tly_sha256_hex(bytes, sizeof bytes, sha);
    assert_int_equal(tly_store_preview_put(f->st, id, "thumbnail", sha, bytes, sizeof bytes, &err), 0);
    assert_int_equal(tly_store_preview_put(f->st, id, "thumbnail", sha, bytes, sizeof bytes, &err), -1);
    assert_int_equal(err.status, TLY_E_CONFLICT);
    assert_int_equal(tly_store_preview_put(f->st, id, "waveform", "nothex", "x", 1, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_int_equal(tly_store_preview_put(f->st, 99999, "thumbnail", sha, "x", 1, &err), -1);

    tly_buf out;
    tly_buf_init(&out, 1 << 20);
    assert_int_equal(tly_store_preview_get(f->st, id, "thumbnail", &out, got_sha, &err), 0);
    assert_int_equal(out.len, sizeof bytes);
    assert_memory_equal(out.data, bytes, sizeof bytes);
    assert_string_equal(got_sha, sha);
    tly_buf_free(&out);
    assert_int_equal(tly_store_preview_get(f->st, id, "waveform", &out, got_sha, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);
    tly_buf_init(&out, 8);   /* too small: refused, not truncated */
    assert_int_equal(tly_store_preview_get(f->st, id, "thumbnail", &out, got_sha, &err), -1);
    assert_int_equal(err.status, TLY_E_TOO_LARGE);
    tly_buf_free(&out);
}

static void test_jobs(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    tly_job j;
    int64_t j1, j2, j3;
    json_t *payload = json_pack("{s:i}", "file", 7);
    assert_int_equal(tly_store_job_enqueue(f->st, "ingest_file", 7, payload, &j1, &err), 0);
    json_decref(payload);
    assert_int_equal(tly_store_job_enqueue(f->st, "ingest_file", 8, NULL, &j2, &err), 0);
    assert_int_equal(tly_store_job_enqueue(f->st, "expand_batch", 1, NULL, &j3, &err), 0);
    assert_counts(f->st, 3, 0, 0);

    assert_int_equal(tly_store_job_claim(f->st, "w1", 60000, &j, &err), 0);
    assert_int_equal(j.id, j1);
    assert_string_equal(j.kind, "ingest_file");
    assert_int_equal(j.ref_id, 7);
    assert_int_equal(j.attempts, 1);
    assert_int_equal(json_integer_value(json_object_get(j.payload, "file")), 7);
    assert_null(j.last_error);
    tly_job_clear(&j);
    assert_counts(f->st, 2, 1, 0);
    assert_int_equal(tly_store_job_done(f->st, j1, &err), 0);
    assert_counts(f->st, 2, 0, 0);
    assert_int_equal(tly_store_job_done(f->st, j1, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);

    /* Retry without delay: claimable again, attempts counted, error kept. */
    assert_int_equal(tly_store_job_claim(f->st, "w1", 60000, &j, &err), 0);
    assert_int_equal(j.id, j2);
    tly_job_clear(&j);
    assert_int_equal(tly_store_job_retry(f->st, j2, "timeout", 0, &err), 0);
    assert_int_equal(tly_store_job_claim(f->st, "w1", 60000, &j, &err), 0);
    assert_int_equal(j.id, j2);
    assert_int_equal(j.attempts, 2);
    assert_string_equal(j.last_error, "timeout");
    tly_job_clear(&j);

    /* Retry with a long delay: not due, so j3 comes next, then nothing. */
    assert_int_equal(tly_store_job_retry(f->st, j2, "again", 60000, &err), 0);
    assert_int_equal(tly_store_job_claim(f->st, "w1", 60000, &j, &err), 0);
    assert_int_equal(j.id, j3);
    tly_job_clear(&j);
    assert_int_equal(tly_store_job_claim(f->st, "w1", 60000, &j, &err), 1);

    /* release_owner requeues w1's running job for someone else. */
    int64_t released = 0;
    assert_int_equal(tly_store_job_release_owner(f->st, "w1", &released, &err), 0);
    assert_int_equal(released, 1);
    assert_int_equal(tly_store_job_release_owner(f->st, "w1", &released, &err), 0);
    assert_int_equal(released, 0);
    assert_int_equal(tly_store_job_claim(f->st, "w2", 60000, &j, &err), 0);
    assert_int_equal(j.id, j3);
    assert_int_equal(j.attempts, 2);
    tly_job_clear(&j);

    assert_int_equal(tly_store_job_fail(f->st, j3, "bad manifest", &err), 0);
    assert_counts(f->st, 1, 0, 1);
    assert_int_equal(tly_store_job_fail(f->st, 12345, "x", &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);
}

static void test_job_lease_expiry(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    tly_job j;
    int64_t id;
    assert_int_equal(tly_store_job_enqueue(f->st, "probe", 1, NULL, &id, &err), 0);
    assert_int_equal(tly_store_job_claim(f->st, "a", 300, &j, &err), 0);
    tly_job_clear(&j);
    /* Leased to a: not claimable while the lease runs. */
    assert_int_equal(tly_store_job_claim(f->st, "b", 300, &j, &err), 1);
    sleep_ms(400);
    assert_int_equal(tly_store_job_claim(f->st, "b", 60000, &j, &err), 0);
    assert_int_equal(j.id, id);
    assert_int_equal(j.attempts, 2);
    tly_job_clear(&j);
    /* Now it belongs to b: releasing a's jobs changes nothing. */
    int64_t released = -1;
    assert_int_equal(tly_store_job_release_owner(f->st, "a", &released, &err), 0);
    assert_int_equal(released, 0);
}

#define NJOBS 200
#define NTHREADS 4

struct claimer {
    tly_store *st;
    char owner[16];
    int *claimed;           /* shared: claims per job index */
    pthread_mutex_t *mu;
    int64_t first_id;
    int n, errors;
};

static void *claim_loop(void *arg)
{
    struct claimer *c = arg;
    tly_error err;
    for (;;) {
        tly_job j;
        int rc = tly_store_job_claim(c->st, c->owner, 60000, &j, &err);
        if (rc == 1)
            break;
        if (rc < 0) {
            c->errors++;
            break;
        }
        pthread_mutex_lock(c->mu);
        c->claimed[j.id - c->first_id]++;
        pthread_mutex_unlock(c->mu);
        c->n++;
        if (tly_store_job_done(c->st, j.id, &err) < 0)
            c->errors++;
        tly_job_clear(&j);
    }
    return NULL;
}

static void test_concurrent_claims(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    int64_t first = 0, id;
    int claimed[NJOBS] = {0};
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    for (int i = 0; i < NJOBS; i++) {
        assert_int_equal(tly_store_job_enqueue(f->st, "probe", i, NULL, &id, &err), 0);
        if (i == 0)
            first = id;
    }
    assert_int_equal(id, first + NJOBS - 1);

    struct claimer cl[NTHREADS];
    pthread_t th[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        cl[t] = (struct claimer){f->st, "", claimed, &mu, first, 0, 0};
        snprintf(cl[t].owner, sizeof cl[t].owner, "worker-%d", t);
        assert_int_equal(pthread_create(&th[t], NULL, claim_loop, &cl[t]), 0);
    }
    int total = 0;
    for (int t = 0; t < NTHREADS; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(cl[t].errors, 0);
        total += cl[t].n;
    }
    assert_int_equal(total, NJOBS);
    for (int i = 0; i < NJOBS; i++)
        assert_int_equal(claimed[i], 1);
    assert_counts(f->st, 0, 0, 0);
}

/* ---- transactions and connection lifetime -------------------------------------- */

static void test_transactions(void **state)
{
    struct fixture *f = *state;
    tly_error err;
    tly_user u;
    char tok[65];
    int64_t n = -1;
    token_of("tx", tok);

    assert_int_equal(tly_store_begin(f->st, &err), 0);
    assert_int_equal(tly_store_user_create(f->st, "tx", TLY_ROLE_WORKER, tok, &u, &err), 0);
    assert_int_equal(tly_store_user_count(f->st, &n, &err), 0);
    assert_int_equal(n, 1);   /* visible inside the transaction */
    tly_store_rollback(f->st);
    assert_int_equal(tly_store_user_count(f->st, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(tly_store_user_by_token(f->st, tok, &u, &err), -1);
    assert_int_equal(err.status, TLY_E_NOT_FOUND);

    assert_int_equal(tly_store_begin(f->st, &err), 0);
    assert_int_equal(tly_store_user_create(f->st, "tx", TLY_ROLE_WORKER, tok, &u, &err), 0);
    make_project(f->st, "in tx");
    assert_int_equal(tly_store_commit(f->st, &err), 0);
    assert_int_equal(tly_store_user_by_token(f->st, tok, &u, &err), 0);
    assert_string_equal(u.name, "tx");
    /* Rolling back with no transaction open is harmless. */
    tly_store_rollback(f->st);
    assert_int_equal(tly_store_user_count(f->st, &n, &err), 0);
    assert_int_equal(n, 1);
}

struct lingerer {
    tly_store *st;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int used, closed;
    int64_t count;
};

static void *linger(void *arg)
{
    struct lingerer *l = arg;
    tly_error err;
    tly_store_user_count(l->st, &l->count, &err);   /* opens this thread's connection */
    pthread_mutex_lock(&l->mu);
    l->used = 1;
    pthread_cond_broadcast(&l->cv);
    while (!l->closed)
        pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    return NULL;   /* exits after the store was closed: must not close twice */
}

static void test_close_with_live_thread(void **state)
{
    struct fixture *f = *state;
    struct lingerer l = {.st = f->st, .count = -1};
    pthread_t th;
    make_user(f->st, "x");
    pthread_mutex_init(&l.mu, NULL);
    pthread_cond_init(&l.cv, NULL);
    assert_int_equal(pthread_create(&th, NULL, linger, &l), 0);
    pthread_mutex_lock(&l.mu);
    while (!l.used)
        pthread_cond_wait(&l.cv, &l.mu);
    pthread_mutex_unlock(&l.mu);
    assert_int_equal(l.count, 1);

    tly_store_close(f->st);   /* closes the thread's connection too (LSan checks) */
    f->st = NULL;
    pthread_mutex_lock(&l.mu);
    l.closed = 1;
    pthread_cond_broadcast(&l.cv);
    pthread_mutex_unlock(&l.mu);
    pthread_join(th, NULL);
    pthread_mutex_destroy(&l.mu);
    pthread_cond_destroy(&l.cv);

    tly_error err;
    assert_int_equal(tly_store_open(f->path, &f->st, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_idempotent, setup, teardown),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test_setup_teardown(test_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_projects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_previews, setup, teardown),
        cmocka_unit_test_setup_teardown(test_items, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_lease_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_live_thread, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
