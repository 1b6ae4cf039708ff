/* it_recovery.c -- crash safety of ingest (the acceptance test):
 *
 *   "kill -9 tallyd in the middle of a 1,000-file batch, start it again, and the
 *    batch finishes with every good file exactly once and no orphan temp files."
 *
 * 1. Directory batch: 1000 distinct small valid JPEGs (tests/data/gray.jpg with a
 *    unique COM segment "tally-test N" right after the SOI) plus a few bad files in
 *    an import root. Once some but not all are accepted, SIGKILL; check that every
 *    blob under a real name is whole (its bytes hash to its name); restart; the batch
 *    finishes with accepted == 1000 exactly, every bad file rejected with its code,
 *    1000 items with 1000 distinct sha256 (exactly the generated ones), and
 *    DATA/spool/tmp, DATA/blobs/tmp empty and no DATA/spool/ *.up left.
 * 2. Upload batch: 150 distinct uploads (+2 bad) acknowledged with 201, close,
 *    SIGKILL while processing, restart: every acknowledged upload is exactly one item
 *    with its name and sha256.
 * 3. SIGKILL while an upload body is half-way in: the partial temp file is removed
 *    at restart, nothing was recorded, and the same name can be uploaded again.
 */
#include "harness.h"

#include "core/fsutil.h"
#include "core/hash.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define N_DIR_FILES 1000
#define N_UPLOADS 150
#define FINISH_TIMEOUT_MS 240000

static const char *TEMPLATE =
    "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"]}]}";

/* The server and import root of the running test; the teardown cleans them up even
 * when an assertion failed half-way. */
static it_server S;
static char ROOT[4096];

static int teardown(void **state)
{
    (void)state;
    it_server_cleanup(&S);
    if (ROOT[0])
        tly_remove_tree(ROOT);
    ROOT[0] = '\0';
    return 0;
}

/* ---- helpers --------------------------------------------------------------------- */

static unsigned char *load_data(const char *name, size_t *len)
{
    unsigned char *b = it_load_test_data(name, len);
    assert_non_null(b);
    return b;
}

/* A distinct valid JPEG: base with a COM segment "tally-test N" after the SOI. */
static unsigned char *make_variant(const unsigned char *base, size_t len, int n, size_t *out_len)
{
    return it_jpeg_variant(base, len, "tally-test", n, out_len);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Every file under DATA/blobs (except tmp/) must be named by the SHA-256 of its bytes:
 * a crash may leave temp files, never a half blob under a real name. Returns the
 * number of blobs checked. */
static int check_blobs(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (depth == 0 && strcmp(de->d_name, "tmp") == 0)
            continue;
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            n += check_blobs(p, depth + 1);
            continue;
        }
        /* The S3 test server keeps an object's bytes as <key>._S3rver_object. */
        char name[256];
        snprintf(name, sizeof name, "%s", de->d_name);
        char *suffix = strstr(name, "._S3rver_object");
        if (suffix && suffix[strlen("._S3rver_object")] == '\0') {
            *suffix = '\0';
            /* s3rver streams a PUT straight into the object's file and writes its
             * metadata file only once the body is complete: an object without one is a
             * PUT the kill cut short, which S3 itself never makes visible (this test
             * failed once on such a 0-byte file). */
            char meta[4400];
            snprintf(meta, sizeof meta, "%s/%s._S3rver_metadata.json", dir, name);
            struct stat mst;
            if (lstat(meta, &mst) != 0)
                continue;
        }
        if (!tly_is_sha256_hex(name))
            continue; /* not a blob (e.g. a marker file of the store) */
        char sha[65];
        assert_int_equal(tly_sha256_file(p, sha, NULL), 0);
        if (strcmp(sha, name) != 0)
            fprintf(stderr, "blob %s holds bytes hashing to %s (size %lld)\n", p, sha, (long long)st.st_size);
        assert_string_equal(sha, name);
        n++;
    }
    closedir(d);
    return n;
}

static void check_no_leftovers(const it_server *s)
{
    char p[4400];
    snprintf(p, sizeof p, "%s/spool/tmp", s->data_dir);
    int n = it_count_entries(p, NULL, 1);
    assert_true(n == 0 || n == -1);
    snprintf(p, sizeof p, "%s/blobs/tmp", s->data_dir);
    n = it_count_entries(p, NULL, 1);
    assert_true(n == 0 || n == -1);
    snprintf(p, sizeof p, "%s/spool", s->data_dir);
    n = it_count_entries(p, ".up", 1);
    assert_true(n == 0 || n == -1);
    snprintf(p, sizeof p, "%s/spool", s->data_dir);
    n = it_count_entries(p, ".tmp", 1);
    assert_true(n == 0 || n == -1);
}

static json_t *get_batch(it_server *s, int64_t batch)
{
    it_response r;
    if (it_getf(s, s->admin_token, &r, "/v1/batches/%lld", (long long)batch) != 0 || r.status != 200) {
        fprintf(stderr, "GET batch: %ld %s\n", r.status, r.body ? r.body : "");
        it_response_free(&r);
        return NULL;
    }
    json_t *b = json_incref(r.json);
    it_response_free(&r);
    return b;
}

/* Polls the batch until accepted >= want (and returns that snapshot), failing if it
 * finishes first or takes more than timeout_ms. */
static json_t *wait_accepted(it_server *s, int64_t batch, int64_t want, int timeout_ms)
{
    long long deadline = it_now_ms() + timeout_ms;
    for (;;) {
        json_t *b = get_batch(s, batch);
        assert_non_null(b);
        if (it_json_int(b, "accepted") >= want)
            return b;
        if (strcmp(it_json_str(b, "state"), "done") == 0 || strcmp(it_json_str(b, "state"), "failed") == 0) {
            char *t = json_dumps(b, JSON_COMPACT);
            fprintf(stderr, "batch finished before %lld files were accepted: %s\n", (long long)want, t);
            free(t);
            json_decref(b);
            fail();
        }
        json_decref(b);
        if (it_now_ms() > deadline)
            fail_msg("fewer than %lld files accepted after %d ms", (long long)want, timeout_ms);
        it_sleep_ms(5);
    }
}

/* Every item of a project, paged. */
static json_t *list_items(it_server *s, int64_t project)
{
    json_t *all = json_array();
    char cursor[64] = "";
    for (int guard = 0; guard < 1000; guard++) {
        it_response r;
        if (cursor[0])
            assert_int_equal(it_getf(s, s->admin_token, &r, "/v1/projects/%lld/items?limit=500&cursor=%s",
                                     (long long)project, cursor),
                             0);
        else
            assert_int_equal(it_getf(s, s->admin_token, &r, "/v1/projects/%lld/items?limit=500", (long long)project), 0);
        assert_int_equal(r.status, 200);
        json_array_extend(all, json_object_get(r.json, "items"));
        json_t *next = json_object_get(r.json, "next_cursor");
        if (!json_is_string(next)) {
            it_response_free(&r);
            return all;
        }
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        it_response_free(&r);
    }
    fail_msg("paging did not end");
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void expect_errors(const json_t *b, const char *const (*want)[2], size_t n)
{
    json_t *errors = json_object_get(b, "errors");
    assert_int_equal(json_array_size(errors), n);
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        size_t k;
        json_t *e;
        json_array_foreach(errors, k, e)
            if (strcmp(it_json_str(e, "file"), want[i][0]) == 0) {
                found++;
                if (strcmp(it_json_str(e, "code"), want[i][1]) != 0)
                    fprintf(stderr, "%s: %s (%s), want %s\n", want[i][0], it_json_str(e, "code"),
                            it_json_str(e, "message"), want[i][1]);
                assert_string_equal(it_json_str(e, "code"), want[i][1]);
            }
        if (found != 1)
            fprintf(stderr, "%s appears %d times in the errors\n", want[i][0], found);
        assert_int_equal(found, 1);
    }
}

static void print_batch(const char *what, const json_t *b)
{
    fprintf(stderr, "%s: state %s total %lld pending %lld accepted %lld duplicates %lld rejected %lld\n", what,
            it_json_str(b, "state"), (long long)it_json_int(b, "total"), (long long)it_json_int(b, "pending"),
            (long long)it_json_int(b, "accepted"), (long long)it_json_int(b, "duplicates"),
            (long long)it_json_int(b, "rejected"));
}

/* check_blobs over DATA/blobs of the running test's server. */
static int check_all_blobs(void)
{
    char p[4400];
    /* The blob root: the directory above <ab>/ of any blob's file. */
    static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";
    assert_int_equal(it_blob_file(&S, zeros, p, sizeof p), 0);
    char *fan = strstr(p, "/00/");
    assert_non_null(fan);
    *fan = '\0';
    return check_blobs(p, 0);
}

/* After the restart: waits for the batch, which must be done with these counts and no
 * duplicates; returns it (new reference). */
static json_t *wait_finished(int64_t batch, int64_t total, int64_t accepted, int64_t rejected)
{
    json_t *b = it_wait_batch(&S, S.admin_token, batch, FINISH_TIMEOUT_MS);
    assert_non_null(b);
    print_batch("after restart", b);
    assert_string_equal(it_json_str(b, "state"), "done");
    assert_int_equal(it_json_int(b, "total"), total);
    assert_int_equal(it_json_int(b, "accepted"), accepted);
    assert_int_equal(it_json_int(b, "duplicates"), 0);
    assert_int_equal(it_json_int(b, "rejected"), rejected);
    return b;
}

/* Every step-th item's media is retrievable and whole (its bytes hash to its sha256);
 * with thumbnails, it also has a JPEG thumbnail. */
static void check_media_sample(const json_t *items, size_t step, int thumbnails)
{
    for (size_t i = 0; i < json_array_size(items); i += step) {
        json_t *item = json_array_get(items, i);
        it_response r;
        assert_int_equal(it_getf(&S, S.admin_token, &r, "/v1/items/%lld/media", (long long)it_json_int(item, "id")), 0);
        assert_int_equal(r.status, 200);
        char sha[65];
        tly_sha256_hex(r.body, r.len, sha);
        assert_string_equal(sha, it_json_str(item, "sha256"));
        it_response_free(&r);
        if (!thumbnails)
            continue;
        assert_int_equal(it_getf(&S, S.admin_token, &r, "/v1/items/%lld/thumbnail", (long long)it_json_int(item, "id")), 0);
        assert_int_equal(r.status, 200);
        assert_true(r.len > 100 && (unsigned char)r.body[0] == 0xFF && (unsigned char)r.body[1] == 0xD8);
        it_response_free(&r);
    }
}

/* ---- 1. a 1,000-file directory batch ---------------------------------------------- */

static void test_kill_during_dir_batch(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    char *root = ROOT;
    snprintf(ROOT, sizeof ROOT, "%s/tally-it-recovery-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(ROOT)) {
        ROOT[0] = '\0';
        fail_msg("mkdtemp: %s", strerror(errno));
    }

    /* 1000 good files in 10 sub-directories, and bad ones next to them */
    size_t base_len;
    unsigned char *base = load_data("gray.jpg", &base_len);
    char **shas = calloc(N_DIR_FILES, sizeof *shas);
    assert_non_null(shas);
    for (int i = 0; i < N_DIR_FILES; i++) {
        char dir[4200], path[4300];
        snprintf(dir, sizeof dir, "%s/set/part%d", root, i % 10);
        if (i < 10)
            assert_int_equal(tly_mkdirs(dir, 0700), 0);
        snprintf(path, sizeof path, "%s/img%04d.jpg", dir, i);
        size_t len;
        unsigned char *v = make_variant(base, base_len, i, &len);
        write_file(path, v, len);
        shas[i] = malloc(65);
        assert_non_null(shas[i]);
        tly_sha256_hex(v, len, shas[i]);
        free(v);
    }
    free(base);
    static const char *const bad[][2] = {
        {"empty.jpg", "empty_file"},         {"part3/empty2.jpg", "empty_file"},
        {"notes.wav", "unsupported_format"}, {"part7/half.jpg", "truncated"},
        {"broken.jpg", "corrupt"},
    };
    const size_t n_bad = sizeof bad / sizeof *bad;
    const char *bad_src[] = {"empty.jpg", "empty.jpg", "text.wav", "truncated.jpg", "corrupt.jpg"};
    for (size_t i = 0; i < n_bad; i++) {
        size_t len;
        unsigned char *b = load_data(bad_src[i], &len);
        char path[4300];
        snprintf(path, sizeof path, "%s/set/%s", root, bad[i][0]);
        write_file(path, b, len);
        free(b);
    }
    char hidden[4300];
    snprintf(hidden, sizeof hidden, "%s/set/.DS_Store", root);
    write_file(hidden, "junk", 4);

    const char *args[] = {"--import-root", root, "--job-threads", "2", NULL};
    assert_int_equal(it_server_start(&S, args), 0);
    int64_t project = it_create_project(&S, S.admin_token, "recovery-dir", "image", TEMPLATE);
    assert_true(project > 0);
    char src[4400];
    snprintf(src, sizeof src, "{\"kind\":\"dir\",\"path\":\"%s/set\"}", root);
    int64_t batch = it_create_batch(&S, S.admin_token, project, "thousand", src);
    assert_true(batch > 0);

    /* some but not all: then the crash */
    json_t *before = wait_accepted(&S, batch, 100, 180000);
    print_batch("before SIGKILL", before);
    assert_int_equal(it_json_int(before, "total"), N_DIR_FILES + (int64_t)n_bad);
    assert_true(it_json_int(before, "pending") > 0);
    json_decref(before);
    it_server_kill(&S);

    /* the data dir after the crash: every blob under a real name is whole */
    int blobs = check_all_blobs();
    assert_true(blobs >= 100);
    char p[4400];
    snprintf(p, sizeof p, "%s/spool/tmp", S.data_dir);
    fprintf(stderr, "after SIGKILL: %d blobs, %d files in spool/tmp\n", blobs, it_count_entries(p, NULL, 0));
    snprintf(p, sizeof p, "%s/tally.db", S.data_dir);
    if (!it_db_is_postgres())   /* on PostgreSQL the store is not in the data dir */
        assert_true(it_file_exists(p));

    assert_int_equal(it_server_restart(&S), 0);
    json_t *b = wait_finished(batch, N_DIR_FILES + (int64_t)n_bad, N_DIR_FILES, (int64_t)n_bad);
    assert_int_equal(it_json_int(b, "pending"), 0);
    expect_errors(b, bad, n_bad);
    json_decref(b);

    /* exactly one item per good file */
    json_t *items = list_items(&S, project);
    assert_int_equal(json_array_size(items), N_DIR_FILES);
    char **got = calloc(N_DIR_FILES, sizeof *got);
    char **names = calloc(N_DIR_FILES, sizeof *names);
    assert_non_null(got);
    assert_non_null(names);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        got[i] = (char *)it_json_str(it, "sha256");
        names[i] = (char *)it_json_str(it, "name");
    }
    qsort(got, N_DIR_FILES, sizeof *got, cmp_str);
    qsort(shas, N_DIR_FILES, sizeof *shas, cmp_str);
    qsort(names, N_DIR_FILES, sizeof *names, cmp_str);
    for (i = 0; i < N_DIR_FILES; i++) {
        if (i > 0)
            assert_string_not_equal(got[i - 1], got[i]);
        assert_string_equal(got[i], shas[i]);
    }
    /* named by their path relative to the imported directory */
    char **want_names = calloc(N_DIR_FILES, sizeof *want_names);
    assert_non_null(want_names);
    for (i = 0; i < N_DIR_FILES; i++)
        assert_true(asprintf(&want_names[i], "part%zu/img%04zu.jpg", i % 10, i) > 0);
    qsort(want_names, N_DIR_FILES, sizeof *want_names, cmp_str);
    for (i = 0; i < N_DIR_FILES; i++) {
        assert_string_equal(names[i], want_names[i]);
        free(want_names[i]);
    }
    free(want_names);
    /* each item's media is retrievable and whole (a sample) */
    check_media_sample(items, 50, 1);
    free(got);
    free(names);
    json_decref(items);
    for (int k = 0; k < N_DIR_FILES; k++)
        free(shas[k]);
    free(shas);

    /* stats agree */
    it_response r;
    assert_int_equal(it_getf(&S, S.admin_token, &r, "/v1/projects/%lld/stats", (long long)project), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(it_json_int(r.json, "items_total"), N_DIR_FILES);
    it_response_free(&r);

    /* no orphan temp files, and blobs still whole */
    check_no_leftovers(&S);
    assert_true(check_all_blobs() >= N_DIR_FILES);

    assert_int_equal(it_server_stop(&S), 0);
}

/* ---- 2. an upload batch ------------------------------------------------------------- */

static void test_kill_during_upload_batch(void **state)
{
    (void)state;
    /* No job threads: every upload is acknowledged and left unprocessed, so the kill
     * below finds them all in the spool, whatever the machine's speed. */
    const char *args[] = {"--job-threads", "0", NULL};
    assert_int_equal(it_server_start(&S, args), 0);
    int64_t project = it_create_project(&S, S.admin_token, "recovery-upload", "image", TEMPLATE);
    assert_true(project > 0);
    int64_t batch = it_create_batch(&S, S.admin_token, project, "uploads", NULL);
    assert_true(batch > 0);

    size_t base_len;
    unsigned char *base = load_data("photo2.jpg", &base_len);
    char (*acked_name)[32] = calloc(N_UPLOADS, sizeof *acked_name);
    char (*acked_sha)[65] = calloc(N_UPLOADS, sizeof *acked_sha);
    assert_non_null(acked_name);
    assert_non_null(acked_sha);
    int acked = 0;
    for (int i = 0; i < N_UPLOADS; i++) {
        size_t len;
        unsigned char *v = make_variant(base, base_len, 5000 + i, &len);
        char name[32];
        snprintf(name, sizeof name, "up-%03d.jpg", i);
        it_response r;
        assert_int_equal(it_upload_bytes(&S, S.admin_token, batch, name, v, len, &r), 0);
        if (r.status != 201)
            fprintf(stderr, "upload %s: %ld %s\n", name, r.status, r.body);
        assert_int_equal(r.status, 201); /* acknowledged */
        char sha[65];
        tly_sha256_hex(v, len, sha);
        assert_string_equal(it_json_str(r.json, "sha256"), sha);
        snprintf(acked_name[acked], sizeof acked_name[acked], "%s", name);
        memcpy(acked_sha[acked], sha, 65);
        acked++;
        it_response_free(&r);
        free(v);
    }
    free(base);
    it_response r;
    assert_int_equal(it_upload_bytes(&S, S.admin_token, batch, "zero.jpg", NULL, 0, &r), 0);
    assert_int_equal(r.status, 201);
    it_response_free(&r);
    assert_int_equal(it_upload_bytes(&S, S.admin_token, batch, "readme.wav", "just text\n", 10, &r), 0);
    assert_int_equal(r.status, 201);
    it_response_free(&r);
    assert_int_equal(it_close_batch(&S, S.admin_token, batch), 200);

    it_response rb;
    assert_int_equal(it_getf(&S, S.admin_token, &rb, "/v1/batches/%lld", (long long)batch), 0);
    print_batch("before SIGKILL", rb.json);
    assert_int_equal(it_json_int(rb.json, "pending"), N_UPLOADS + 2);
    it_response_free(&rb);
    it_server_kill(&S);

    int blobs = check_all_blobs();
    char p[4400];
    snprintf(p, sizeof p, "%s/spool", S.data_dir);
    int ups = it_count_entries(p, ".up", 0);
    fprintf(stderr, "after SIGKILL: %d blobs, %d uploads still spooled\n", blobs, ups);
    assert_int_equal(ups, N_UPLOADS + 2); /* every acknowledged upload survived the crash */

    const char *with_jobs[] = {"--job-threads", "2", NULL};
    assert_int_equal(it_server_restart_args(&S, with_jobs), 0);
    json_t *b = wait_finished(batch, N_UPLOADS + 2, N_UPLOADS, 2);
    static const char *const bad[][2] = {{"zero.jpg", "empty_file"}, {"readme.wav", "unsupported_format"}};
    expect_errors(b, bad, 2);
    json_decref(b);

    json_t *items = list_items(&S, project);
    assert_int_equal(json_array_size(items), (size_t)acked);
    for (int i = 0; i < acked; i++) {
        int found = 0;
        size_t k;
        json_t *it;
        json_array_foreach(items, k, it)
            if (strcmp(it_json_str(it, "name"), acked_name[i]) == 0) {
                found++;
                assert_string_equal(it_json_str(it, "sha256"), acked_sha[i]);
                assert_int_equal(it_json_int(it, "batch_id"), batch);
            }
        if (found != 1)
            fprintf(stderr, "%s: %d items\n", acked_name[i], found);
        assert_int_equal(found, 1);
    }
    /* every item's bytes are there */
    check_media_sample(items, 10, 0);
    json_decref(items);
    free(acked_name);
    free(acked_sha);

    check_no_leftovers(&S);
    assert_true(check_all_blobs() >= N_UPLOADS);
    assert_int_equal(it_server_stop(&S), 0);
}

/* ---- 3. a crash while an upload body is streaming in ------------------------------ */

typedef struct {
    const unsigned char *data;
    size_t len, off, stop_at;
} paced_src;

/* Sends up to stop_at bytes, then pauses the transfer (the body never completes). */
static size_t paced_read(char *dst, size_t size, size_t nmemb, void *userp)
{
    paced_src *p = userp;
    if (p->off >= p->stop_at)
        return CURL_READFUNC_PAUSE;
    size_t n = size * nmemb;
    if (n > p->stop_at - p->off)
        n = p->stop_at - p->off;
    memcpy(dst, p->data + p->off, n);
    p->off += n;
    return n;
}

static size_t discard(char *data, size_t size, size_t nmemb, void *userp)
{
    (void)data;
    (void)userp;
    return size * nmemb;
}

/* Size of the largest file in dir, or -1 if none. */
static long long largest_file(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    long long best = -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > best)
            best = st.st_size;
    }
    closedir(d);
    return best;
}

static void test_kill_during_upload_body(void **state)
{
    (void)state;
    assert_int_equal(it_server_start(&S, NULL), 0);
    int64_t project = it_create_project(&S, S.admin_token, "recovery-partial", "image", TEMPLATE);
    assert_true(project > 0);
    int64_t batch = it_create_batch(&S, S.admin_token, project, "partial", NULL);
    assert_true(batch > 0);
    size_t len;
    unsigned char *photo = load_data("photo.jpg", &len);

    /* half of photo.jpg, then the client stalls */
    CURLM *multi = curl_multi_init();
    CURL *c = curl_easy_init();
    assert_non_null(multi);
    assert_non_null(c);
    char url[256], auth[300];
    snprintf(url, sizeof url, "%s/v1/batches/%lld/files/partial.jpg", S.base_url, (long long)batch);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", S.admin_token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Expect:");
    h = curl_slist_append(h, "Content-Type: application/octet-stream");
    paced_src src = {photo, len, 0, 16384};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, paced_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &src);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_multi_add_handle(multi, c);

    char spool_tmp[4400];
    snprintf(spool_tmp, sizeof spool_tmp, "%s/spool/tmp", S.data_dir);
    long long deadline = it_now_ms() + 20000, seen = -1;
    int running = 1;
    while (it_now_ms() < deadline) {
        curl_multi_perform(multi, &running);
        int numfds;
        curl_multi_poll(multi, NULL, 0, 20, &numfds);
        seen = largest_file(spool_tmp);
        if (seen >= 8192)
            break;
    }
    fprintf(stderr, "partial upload: %lld bytes in the spool before SIGKILL\n", seen);
    assert_true(seen >= 8192);            /* the server was writing the body */
    assert_true(seen < (long long)len);   /* and had not got all of it */
    it_server_kill(&S);
    assert_int_equal(it_count_entries(spool_tmp, ".tmp", 0), 1); /* the crash left it */
    for (int i = 0; i < 50 && running; i++) {
        curl_multi_perform(multi, &running);
        int numfds;
        curl_multi_poll(multi, NULL, 0, 20, &numfds);
    }
    curl_multi_remove_handle(multi, c);
    curl_easy_cleanup(c);
    curl_multi_cleanup(multi);
    curl_slist_free_all(h);

    assert_int_equal(it_server_restart(&S), 0);
    /* recovery removed the partial file; the upload was never recorded */
    int left = it_count_entries(spool_tmp, NULL, 1);
    assert_true(left == 0 || left == -1);
    json_t *b = get_batch(&S, batch);
    assert_non_null(b);
    assert_string_equal(it_json_str(b, "state"), "open");
    assert_int_equal(it_json_int(b, "total"), 0);
    json_decref(b);
    /* so the same name can be sent again, whole */
    it_response r;
    assert_int_equal(it_upload_bytes(&S, S.admin_token, batch, "partial.jpg", photo, len, &r), 0);
    assert_int_equal(r.status, 201);
    it_response_free(&r);
    assert_int_equal(it_close_batch(&S, S.admin_token, batch), 200);
    b = it_wait_batch(&S, S.admin_token, batch, FINISH_TIMEOUT_MS);
    assert_non_null(b);
    assert_int_equal(it_json_int(b, "total"), 1);
    assert_int_equal(it_json_int(b, "accepted"), 1);
    json_decref(b);
    json_t *items = list_items(&S, project);
    assert_int_equal(json_array_size(items), 1);
    char sha[65];
    tly_sha256_hex(photo, len, sha);
    assert_string_equal(it_json_str(json_array_get(items, 0), "sha256"), sha);
    json_decref(items);
    free(photo);
    check_no_leftovers(&S);

    assert_int_equal(it_server_stop(&S), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_kill_during_dir_batch, teardown),
        cmocka_unit_test_teardown(test_kill_during_upload_batch, teardown),
        cmocka_unit_test_teardown(test_kill_during_upload_body, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
