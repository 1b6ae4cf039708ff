/* it_multinode.c -- two tallyd nodes on one store (issue 8, scale-out).
 *
 * Node A starts on a fresh store; node B on the same store (it_db_share: the same
 * PostgreSQL database in the _pg run, the same SQLite file otherwise) and A's blob
 * directory. What must hold whichever node a request or a job lands on:
 *   - dispatch: workers alternating between the nodes never over-fill an item
 *     (exactly `overlap` judgments each), never get an item twice, and every item
 *     ends with its judgments (the write transactions of both nodes serialise);
 *   - jobs: a server-side directory import run by both nodes' job threads (claims
 *     with leases, FOR UPDATE SKIP LOCKED on PostgreSQL) ingests every file exactly
 *     once.
 */
#include "harness.h"

#include "core/fsutil.h"

#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define N_ITEMS 24
#define OVERLAP 3
#define N_WORKERS 16
#define MAX_TAKES 32
#define N_DIR_FILES 40

static it_server A, B;
static char ROOT[256];          /* import root shared by both nodes */
static char *MGR;
static int SEQ;

static const char *TEMPLATE =
    "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"],"
    "\"required\":true}]}";

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(ROOT, sizeof ROOT, "%s/tally-mn-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(ROOT))
        return -1;
    const char *args_a[] = {"--import-root", ROOT, NULL};
    if (it_server_start(&A, args_a) < 0)
        return -1;
    const char *args_b[] = {"--import-root", ROOT, NULL};
    it_db_share(&A);   /* A's database and A's blobs */
    if (it_server_start(&B, args_b) < 0)
        return -1;
    MGR = it_create_user(&A, "mgr", "manager");
    return MGR ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    /* B first: A's cleanup drops the shared database. */
    if (B.pid > 0 && it_server_stop(&B) < 0)
        rc = -1;
    it_server_cleanup(&B);
    if (A.pid > 0 && it_server_stop(&A) < 0)
        rc = -1;
    it_server_cleanup(&A);
    free(MGR);
    if (ROOT[0])
        tly_remove_tree(ROOT);
    return rc;
}

/* n distinct JPEGs in ROOT/sub (created), imported into project as a directory batch
 * through node `via`, waited for on the other node; asserts all n accepted. (Uploads
 * to one node ingested by another are it_multinode_kill's subject.) */
static void import_jpegs(it_server *via, int64_t project, const char *sub, int n)
{
    char dir[400], path[480];
    snprintf(dir, sizeof dir, "%s/%s", ROOT, sub);
    assert_int_equal(mkdir(dir, 0755), 0);
    size_t len = 0;
    unsigned char *photo = it_load_test_data("photo.jpg", &len);
    assert_non_null(photo);
    for (int i = 0; i < n; i++) {
        size_t vlen = 0;
        unsigned char *v = it_jpeg_variant(photo, len, sub, i, &vlen);
        assert_non_null(v);
        snprintf(path, sizeof path, "%s/f%03d.jpg", dir, i);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(v, 1, vlen, f), vlen);
        assert_int_equal(fclose(f), 0);
        free(v);
    }
    free(photo);
    char src[600];
    snprintf(src, sizeof src, "{\"kind\":\"dir\",\"path\":\"%s\"}", dir);
    int64_t batch = it_create_batch(via, MGR, project, sub, src);
    assert_true(batch > 0);
    /* Waited for on the other node: both read the one store. */
    json_t *b = it_wait_batch(via == &A ? &B : &A, MGR, batch, 120000);
    assert_non_null(b);
    assert_string_equal(it_json_str(b, "state"), "done");
    assert_int_equal(it_json_int(b, "total"), n);
    assert_int_equal(it_json_int(b, "accepted"), n);
    assert_int_equal(it_json_int(b, "duplicates"), 0);
    json_decref(b);
}

/* ---- dispatch across nodes ------------------------------------------------------- */

typedef struct {
    char *token;
    int64_t project;
    int index;
    int submitted, errors, ended;
    int64_t items[MAX_TAKES];
    char first_error[400];
} worker;

static pthread_barrier_t START;

static void worker_fail(worker *w, const char *what, const it_response *r)
{
    if (w->errors++ == 0)
        snprintf(w->first_error, sizeof w->first_error, "%s: HTTP %ld %.300s", what, r->status,
                 r->body ? r->body : "");
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    char path[128];
    pthread_barrier_wait(&START);
    for (int round = 0; round < MAX_TAKES + 4; round++) {
        /* Every request to the other node than the last one. */
        it_server *node = (round + w->index) % 2 ? &B : &A;
        it_response r;
        snprintf(path, sizeof path, "/v1/projects/%lld/work/next", (long long)w->project);
        if (it_request_json(node, "POST", path, w->token, NULL, &r) != 0 || (r.status != 200 && r.status != 204)) {
            worker_fail(w, "next", &r);
            it_response_free(&r);
            return NULL;
        }
        if (r.status == 204) {
            w->ended = 1;
            it_response_free(&r);
            return NULL;
        }
        int64_t a = it_json_int(r.json, "assignment_id");
        int64_t item = it_json_int(json_object_get(r.json, "item"), "id");
        it_response_free(&r);
        node = node == &A ? &B : &A;
        snprintf(path, sizeof path, "/v1/assignments/%lld/submit", (long long)a);
        if (it_request_json(node, "POST", path, w->token, "{\"answer\":{\"label\":\"cat\"}}", &r) != 0 ||
            r.status != 200) {
            worker_fail(w, "submit", &r);
            it_response_free(&r);
            return NULL;
        }
        it_response_free(&r);
        if (w->submitted < MAX_TAKES)
            w->items[w->submitted] = item;
        w->submitted++;
    }
    snprintf(w->first_error, sizeof w->first_error, "never got 204 after %d tasks", w->submitted);
    w->errors++;
    return NULL;
}

static void test_dispatch_across_nodes(void **state)
{
    (void)state;
    int64_t project = it_post_fixed_overlap_project(&A, MGR, "multinode", TEMPLATE, OVERLAP);
    import_jpegs(&A, project, "dispatch", N_ITEMS);

    static worker ws[N_WORKERS];
    memset(ws, 0, sizeof ws);
    for (int i = 0; i < N_WORKERS; i++) {
        ws[i].token = it_new_user(i % 2 ? &B : &A, &SEQ, "worker");
        assert_non_null(ws[i].token);
        ws[i].project = project;
        ws[i].index = i;
    }
    pthread_t th[N_WORKERS];
    assert_int_equal(pthread_barrier_init(&START, NULL, N_WORKERS), 0);
    for (int i = 0; i < N_WORKERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &ws[i]), 0);
    for (int i = 0; i < N_WORKERS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&START);

    json_t *per_item = json_object();
    int total = 0, bad = 0;
    for (int i = 0; i < N_WORKERS; i++) {
        if (ws[i].errors || !ws[i].ended) {
            fprintf(stderr, "worker %d: %s\n", i, ws[i].first_error);
            bad++;
        }
        total += ws[i].submitted;
        for (int k = 0; k < ws[i].submitted && k < MAX_TAKES; k++) {
            char key[32];
            snprintf(key, sizeof key, "%lld", (long long)ws[i].items[k]);
            for (int m = 0; m < k; m++)
                if (ws[i].items[m] == ws[i].items[k]) {
                    fprintf(stderr, "worker %d got item %s twice\n", i, key);
                    bad++;
                }
            json_int_t n = json_integer_value(json_object_get(per_item, key));
            json_object_set_new(per_item, key, json_integer(n + 1));
        }
        free(ws[i].token);
    }
    const char *key;
    json_t *v;
    json_object_foreach(per_item, key, v) {
        if (json_integer_value(v) != OVERLAP) {
            fprintf(stderr, "item %s: %lld judgments, want %d\n", key, (long long)json_integer_value(v), OVERLAP);
            bad++;
        }
    }
    assert_int_equal(json_object_size(per_item), N_ITEMS);
    json_decref(per_item);
    assert_int_equal(bad, 0);
    assert_int_equal(total, N_ITEMS * OVERLAP);
}

/* ---- jobs across nodes ------------------------------------------------------------ */

static void test_import_across_nodes(void **state)
{
    (void)state;
    int64_t project = it_create_project(&B, MGR, "multinode-dir", "image", TEMPLATE);
    assert_true(project > 0);
    import_jpegs(&B, project, "import", N_DIR_FILES);

    it_response r;
    assert_int_equal(it_getf(&A, MGR, &r, "/v1/projects/%lld/items?limit=100", (long long)project), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), N_DIR_FILES);
    it_response_free(&r);
    /* Every item's bytes are in the shared blob store, whichever node ingested it. */
    assert_int_equal(it_getf(&B, MGR, &r, "/v1/projects/%lld/items?limit=100", (long long)project), 0);
    json_t *items = json_incref(json_object_get(r.json, "items"));
    it_response_free(&r);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        it_server *node = i % 2 ? &A : &B;
        assert_int_equal(it_getf(node, MGR, &r, "/v1/items/%lld/media", (long long)it_json_int(it, "id")), 0);
        assert_int_equal(r.status, 200);
        it_response_free(&r);
    }
    json_decref(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch_across_nodes),
        cmocka_unit_test(test_import_across_nodes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
