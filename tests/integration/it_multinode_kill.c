/* it_multinode_kill.c -- three tallyd nodes, one killed with kill -9 mid-run (issue 8).
 *
 * Nodes A, B and C share one store (it_db_share: one PostgreSQL database in the _pg
 * run, one SQLite file otherwise) and one blob store (A's bucket prefix or A's
 * DATA/blobs), and run with a short job lease (--job-lease 4) so that a dead node's
 * jobs are taken over within seconds. 64 worker threads lease and submit tasks,
 * spread over the nodes. Meanwhile uploads stream into C (their bytes are on C's
 * disk and in the shared blob store, nowhere else) and exports are created on C.
 *
 * The kill is aimed, not timed: the test watches the store's jobs table until C
 * holds a running ingest job of the uploads and a running export at once, stops C
 * (SIGSTOP), checks again that C still holds them, and kills it (SIGKILL). So the
 * test knows exactly which jobs died with C. Afterwards it asserts:
 *   - the jobs C held are finished by A and B (gone from the queue, not failed), and
 *     in the end the queue is empty;
 *   - every upload C acknowledged (201) became an item: the batch is done with all
 *     of them accepted, though C's spool died with it;
 *   - the export C was writing is done, and A and B both serve it: the same bytes,
 *     whose SHA-256 is the artifact's, ETag/If-None-Match and a Range request work;
 *   - no item has more than `overlap` judgments or submitted assignments, no worker
 *     judged an item twice, every item has its `overlap` judgments, and every
 *     submission acknowledged with 200 (by any node, C included) is in the store.
 * The store is read directly (libpq or SQLite) for the jobs and the judgments: the
 * API has no view of job owners, and the checks should not depend on the API they
 * check.
 */
#include "harness.h"

#include "core/hash.h"

#include <setjmp.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_FIRST 160        /* work items before the workers start */
#define N_LATER 48         /* work items published after the kill */
#define OVERLAP 3
#define N_WORKERS 64
#define MAX_ACKED 256      /* acknowledged submissions one worker keeps */
#define MAX_UPLOADS 400    /* into C while the test waits for its moment */
#define LEASE_S "4"

static it_server NODES[3];   /* A, B, C; C is the one killed */
#define A (&NODES[0])
#define B (&NODES[1])
#define C (&NODES[2])
static char *MGR;
static int SEQ;
static volatile int C_DEAD;            /* set once C is killed; workers skip it */
static volatile int ALL_PUBLISHED;     /* the late work items are in */

static const char *TEMPLATE =
    "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"],"
    "\"required\":true}]}";

/* ---- the store, read directly ------------------------------------------------------- */

typedef struct {
    PGconn *pg;
    sqlite3 *lite;
} store_conn;

static store_conn DB;

static int db_open(void)
{
    if (it_db_is_postgres()) {
        DB.pg = PQconnectdb(A->db_url);
        if (PQstatus(DB.pg) != CONNECTION_OK) {
            fprintf(stderr, "cannot connect to %s: %s\n", A->db_url, PQerrorMessage(DB.pg));
            return -1;
        }
        return 0;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/tally.db", A->data_dir);
    if (sqlite3_open_v2(path, &DB.lite, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    sqlite3_busy_timeout(DB.lite, 10000);
    return 0;
}

static void db_close(void)
{
    if (DB.pg)
        PQfinish(DB.pg);
    if (DB.lite)
        sqlite3_close(DB.lite);
    memset(&DB, 0, sizeof DB);
}

/* Runs sql (no parameters: the test formats integers and node ids, which are
 * [a-z0-9-], into it) and stores up to max_rows rows of `cols` integer columns in
 * out, row-major. Returns the number of rows (all of them, even beyond max_rows);
 * a failing query fails the test. */
static size_t db_ints(const char *sql, int cols, int64_t *out, size_t max_rows)
{
    size_t rows = 0;
    if (DB.pg) {
        PGresult *res = PQexec(DB.pg, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            fail_msg("query failed: %s: %s", sql, PQerrorMessage(DB.pg));
        rows = (size_t)PQntuples(res);
        for (size_t r = 0; r < rows && r < max_rows; r++)
            for (int c = 0; c < cols; c++)
                out[r * (size_t)cols + (size_t)c] = strtoll(PQgetvalue(res, (int)r, c), NULL, 10);
        PQclear(res);
        return rows;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(DB.lite, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("query failed: %s: %s", sql, sqlite3_errmsg(DB.lite));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < cols && rows < max_rows; c++)
            out[rows * (size_t)cols + (size_t)c] = sqlite3_column_int64(st, c);
        rows++;
    }
    if (rc != SQLITE_DONE)
        fail_msg("query failed: %s: %s", sql, sqlite3_errmsg(DB.lite));
    sqlite3_finalize(st);
    return rows;
}

static int64_t db_int(const char *sql)
{
    int64_t v = -1;
    assert_int_equal(db_ints(sql, 1, &v, 1), 1);
    return v;
}

/* ---- set-up ----------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    const char *args[] = {"--job-lease", LEASE_S, NULL};
    if (it_server_start(A, args) < 0)
        return -1;
    for (int i = 1; i < 3; i++) {
        it_db_share(A);   /* A's database and A's blobs */
        if (it_server_start(&NODES[i], args) < 0)
            return -1;
    }
    MGR = it_create_user(A, "mgr", "manager");
    return MGR && db_open() == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    db_close();
    /* C died by the test's hand; A last: its cleanup drops the shared database. */
    it_server_cleanup(C);
    if (B->pid > 0 && it_server_stop(B) < 0)
        rc = -1;
    it_server_cleanup(B);
    if (A->pid > 0 && it_server_stop(A) < 0)
        rc = -1;
    it_server_cleanup(A);
    free(MGR);
    return rc;
}

/* ---- workers ------------------------------------------------------------------------------ */

typedef struct {
    char *token;
    int64_t project;
    int index;
    int acked, unknown, transport, busy, ended;
    int64_t assignment[MAX_ACKED], item[MAX_ACKED];
    char error[400];
} worker;

static pthread_barrier_t START;

/* Worker w's node for its n-th request: round robin from its own offset, past C
 * once C is dead. */
static it_server *node_for(const worker *w, int n)
{
    for (int k = 0;; k++) {
        it_server *s = &NODES[(w->index + n + k) % 3];
        if (s != C || !C_DEAD)
            return s;
    }
}

/* POST path to the worker's next node. A transport failure is C dying under the
 * request: the same request goes to the next node (a lease or submission C committed
 * before dying is found there) and *retried is set; so does a 503. */
static int request(worker *w, int *n, const char *path, const char *body, it_response *r, int *retried)
{
    *retried = 0;
    for (int tries = 0; tries < 20; tries++) {
        it_server *s = node_for(w, (*n)++);
        if (it_request_json(s, "POST", path, w->token, body, r) == 0 && r->status != 503)
            return 0;
        /* 503: the store was busy (e.g. PostgreSQL dropping the dead node's
         * sessions); what a client does then is try again. */
        if (r->status == 503)
            w->busy++;
        else
            w->transport++;
        it_response_free(r);
        *retried = 1;
        it_sleep_ms(50);
    }
    return -1;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    char path[128];
    int n = 0, retried = 0;
    pthread_barrier_wait(&START);
    for (int rounds = 0; rounds < 4000; rounds++) {
        it_response r;
        snprintf(path, sizeof path, "/v1/projects/%lld/work/next", (long long)w->project);
        if (request(w, &n, path, NULL, &r, &retried) < 0 || (r.status != 200 && r.status != 204)) {
            snprintf(w->error, sizeof w->error, "next: HTTP %ld %.300s", r.status, r.body ? r.body : "");
            it_response_free(&r);
            return NULL;
        }
        if (r.status == 204) {
            it_response_free(&r);
            if (ALL_PUBLISHED) {
                w->ended = 1;
                return NULL;
            }
            it_sleep_ms(100);   /* more work comes after the kill */
            continue;
        }
        int64_t a = it_json_int(r.json, "assignment_id");
        int64_t item = it_json_int(json_object_get(r.json, "item"), "id");
        it_response_free(&r);
        it_sleep_ms(10 + (w->index * 7 + rounds * 13) % 30);   /* labeling */
        snprintf(path, sizeof path, "/v1/assignments/%lld/submit", (long long)a);
        if (request(w, &n, path, "{\"answer\":{\"label\":\"cat\"}}", &r, &retried) < 0) {
            w->unknown++;   /* no node answered: maybe recorded, maybe not */
            it_response_free(&r);
            continue;
        }
        if (r.status == 200) {
            if (w->acked < MAX_ACKED) {
                w->assignment[w->acked] = a;
                w->item[w->acked] = item;
            }
            w->acked++;
        } else if (r.status == 409 && retried) {
            /* A submit that C recorded but never answered, sent again. */
            w->unknown++;
        } else {
            snprintf(w->error, sizeof w->error, "submit: HTTP %ld %.300s", r.status, r.body ? r.body : "");
            it_response_free(&r);
            return NULL;
        }
        it_response_free(&r);
    }
    snprintf(w->error, sizeof w->error, "never ran out of work");
    return NULL;
}

/* ---- the aimed kill ------------------------------------------------------------------------ */

/* The running jobs owner holds: ids, 1 for an export else 0, and ref ids. */
typedef struct {
    int64_t rows[64][3];
    size_t n, exports, ingests;
} held_jobs;

static void held_by(const char *owner, held_jobs *h)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT id, CASE WHEN kind = 'export' THEN 1 WHEN kind = 'ingest_file' THEN 2 ELSE 0 END, ref_id"
             " FROM jobs WHERE owner = '%s' AND state = 'running' ORDER BY id",
             owner);
    h->n = db_ints(sql, 3, &h->rows[0][0], 64);
    if (h->n > 64)
        h->n = 64;
    h->exports = h->ingests = 0;
    for (size_t i = 0; i < h->n; i++) {
        h->exports += h->rows[i][1] == 1;
        h->ingests += h->rows[i][1] == 2;
    }
}

/* Fills *out with a distinct JPEG (freed by the caller). */
static unsigned char *jpeg(const char *label, int n, size_t *len)
{
    size_t plen = 0;
    unsigned char *photo = it_load_test_data("photo.jpg", &plen);
    assert_non_null(photo);
    unsigned char *v = it_jpeg_variant(photo, plen, label, n, len);
    free(photo);
    assert_non_null(v);
    return v;
}

static int64_t create_export(int64_t project)
{
    json_t *e = it_json_requestf(C, "POST", MGR, "{\"format\":\"jsonl\",\"media\":true,\"filters\":{\"state\":\"done\"}}",
                                 202, "/v1/projects/%lld/exports", (long long)project);
    int64_t id = it_json_int(e, "id");
    json_decref(e);
    assert_true(id > 0);
    return id;
}

static void sha256_of(const void *data, size_t len, char out[65])
{
    tly_sha256_hex(data, len, out);
}

typedef struct {
    char *data;
    size_t len;
    long status;
} fetched;

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
    fetched *f = arg;
    char *grown = realloc(f->data, f->len + sz * n + 1);
    assert_non_null(grown);
    f->data = grown;
    memcpy(f->data + f->len, p, sz * n);
    f->len += sz * n;
    f->data[f->len] = 0;
    return sz * n;
}

/* GET path on s with one extra request header (the harness sends none). */
static void get_with(it_server *s, const char *path, const char *header, fetched *f)
{
    char url[512], auth[256];
    snprintf(url, sizeof url, "%s%s", s->base_url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", MGR);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, header);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
}

/* ---- the test ------------------------------------------------------------------------------ */

static void test_kill_a_node(void **state)
{
    (void)state;
    int64_t project = it_post_fixed_overlap_project(A, MGR, "kill", TEMPLATE, OVERLAP);
    /* Uploaded to A, ingested by whichever node claims each job: the nodes that did
     * not receive a file fetch it from the blob store. */
    it_add_jpegs(A, MGR, project, "kill", "w", N_FIRST, 0);
    int64_t intake = it_create_project(B, MGR, "intake", "image", TEMPLATE);
    assert_true(intake > 0);
    int64_t batch = it_create_batch(C, MGR, intake, "into-c", NULL);
    assert_true(batch > 0);

    char c_node[64] = "";
    {
        char path[4200];
        snprintf(path, sizeof path, "%s/node.id", C->data_dir);
        size_t len = 0;
        unsigned char *text = it_load_file(path, &len);
        assert_non_null(text);
        snprintf(c_node, sizeof c_node, "%.*s", (int)strcspn((char *)text, "\r\n"), (char *)text);
        free(text);
        for (const char *p = c_node; *p; p++)
            assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-');
    }

    static worker ws[N_WORKERS];
    memset(ws, 0, sizeof ws);
    for (int i = 0; i < N_WORKERS; i++) {
        ws[i].token = it_new_user(&NODES[i % 3], &SEQ, "worker");
        assert_non_null(ws[i].token);
        ws[i].project = project;
        ws[i].index = i;
    }
    pthread_t th[N_WORKERS];
    assert_int_equal(pthread_barrier_init(&START, NULL, N_WORKERS), 0);
    for (int i = 0; i < N_WORKERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &ws[i]), 0);

    /* Feed C uploads and exports until it holds both kinds of job at one moment. */
    int uploads = 0;
    int64_t export_id = 0, killed_export = 0;
    held_jobs held = {0};
    long long deadline = it_now_ms() + 90000;
    while (!C_DEAD) {
        if (it_now_ms() > deadline || uploads >= MAX_UPLOADS)
            fail_msg("C never held an upload's ingest and an export at once (%d uploads)", uploads);
        if (!export_id) {
            export_id = create_export(project);
        } else {
            json_t *e = it_json_requestf(A, "GET", MGR, NULL, 200, "/v1/exports/%lld", (long long)export_id);
            const char *st = it_json_str(e, "state");
            if (strcmp(st, "done") == 0 || strcmp(st, "failed") == 0)
                export_id = 0;   /* missed it: another one */
            json_decref(e);
        }
        size_t len = 0;
        unsigned char *v = jpeg("late", uploads, &len);
        char name[32];
        snprintf(name, sizeof name, "u%04d.jpg", uploads);
        it_response r;
        assert_int_equal(it_upload_bytes(C, MGR, batch, name, v, len, &r), 0);
        IT_ASSERT_STATUS(r, 201);
        it_response_free(&r);
        free(v);
        uploads++;
        for (int look = 0; look < 40 && !C_DEAD; look++) {
            held_by(c_node, &held);
            if (!held.exports || !held.ingests) {
                it_sleep_ms(1);
                continue;
            }
            /* Freeze C and look again: what it holds now is what dies with it. */
            assert_int_equal(kill(C->pid, SIGSTOP), 0);
            held_by(c_node, &held);
            if (held.exports && held.ingests) {
                it_server_kill(C);   /* SIGKILL + waitpid */
                C_DEAD = 1;
            } else {
                assert_int_equal(kill(C->pid, SIGCONT), 0);
            }
        }
    }
    for (size_t i = 0; i < held.n; i++)
        if (held.rows[i][1] == 1)
            killed_export = held.rows[i][2];
    fprintf(stderr, "killed C after %d uploads, holding %zu jobs (%zu ingest, %zu export: export %lld)\n", uploads,
            held.n, held.ingests, held.exports, (long long)killed_export);
    assert_true(killed_export > 0);

    /* The rest of the work, through the survivors; then the workers may finish. */
    it_add_jpegs(B, MGR, project, "kill-later", "x", N_LATER, N_FIRST);
    ALL_PUBLISHED = 1;
    for (int i = 0; i < N_WORKERS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&START);

    /* The jobs C held are finished by A and B once their leases run out. */
    long long until = it_now_ms() + 120000;
    for (;;) {
        int left = 0;
        for (size_t i = 0; i < held.n; i++) {
            char sql[160];
            snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM jobs WHERE id = %lld", (long long)held.rows[i][0]);
            left += db_int(sql) > 0;
        }
        if (!left)
            break;
        if (it_now_ms() > until)
            fail_msg("%d of the %zu jobs C held are still in the queue", left, held.n);
        it_sleep_ms(200);
    }
    /* Every upload C acknowledged is an item, though C's spool is gone. */
    assert_int_equal(it_close_batch(A, MGR, batch), 200);
    json_t *b = it_wait_batch(B, MGR, batch, 120000);
    assert_non_null(b);
    assert_string_equal(it_json_str(b, "state"), "done");
    assert_int_equal(it_json_int(b, "total"), uploads);
    assert_int_equal(it_json_int(b, "accepted"), uploads);
    json_decref(b);

    /* The export C was writing: done, the same bytes from A and B. */
    json_t *e = NULL;
    for (long long t = it_now_ms() + 60000;; it_sleep_ms(100)) {
        e = it_json_requestf(B, "GET", MGR, NULL, 200, "/v1/exports/%lld", (long long)killed_export);
        if (strcmp(it_json_str(e, "state"), "done") == 0)
            break;
        assert_string_not_equal(it_json_str(e, "state"), "failed");
        json_decref(e);
        assert_true(it_now_ms() < t);
    }
    const char *artifact_sha = it_json_str(json_object_get(e, "artifact"), "sha256");
    int64_t artifact_size = it_json_int(json_object_get(e, "artifact"), "size");
    char version[65];
    snprintf(version, sizeof version, "%s", it_json_str(e, "sha256"));
    it_response da, db;
    assert_int_equal(it_getf(A, MGR, &da, "/v1/exports/%lld/download", (long long)killed_export), 0);
    assert_int_equal(it_getf(B, MGR, &db, "/v1/exports/%lld/download", (long long)killed_export), 0);
    IT_ASSERT_STATUS(da, 200);
    IT_ASSERT_STATUS(db, 200);
    assert_int_equal(da.len, (size_t)artifact_size);
    assert_int_equal(db.len, da.len);
    assert_memory_equal(da.body, db.body, da.len);
    char got[65];
    sha256_of(da.body, da.len, got);
    assert_string_equal(got, artifact_sha);
    char etag[80];
    snprintf(etag, sizeof etag, "\"%s\"", version);
    assert_string_equal(db.etag, etag);
    /* Ranged and conditional reads on the node that did not necessarily write it. */
    for (int i = 0; i < 2; i++) {
        it_server *s = i ? B : A;
        char path[128];
        snprintf(path, sizeof path, "/v1/exports/%lld/download", (long long)killed_export);
        fetched f = {0};
        get_with(s, path, "Range: bytes=100-1099", &f);
        assert_int_equal(f.status, 206);
        assert_int_equal(f.len, 1000);
        assert_memory_equal(f.data, da.body + 100, 1000);
        free(f.data);
        char inm[120];
        snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
        fetched g = {0};
        get_with(s, path, inm, &g);
        assert_int_equal(g.status, 304);
        free(g.data);
    }
    it_response_free(&da);
    it_response_free(&db);
    /* The manifest: the version's identity is its hash. */
    it_response m;
    assert_int_equal(it_getf(A, MGR, &m, "/v1/exports/%lld/manifest", (long long)killed_export), 0);
    IT_ASSERT_STATUS(m, 200);
    sha256_of(m.body, m.len, got);
    assert_string_equal(got, version);
    it_response_free(&m);
    json_decref(e);

    /* The crowd's work: nothing over-assigned, doubled or lost. */
    int bad = 0, acked = 0, unknown = 0, transport = 0, busy = 0;
    for (int i = 0; i < N_WORKERS; i++) {
        if (ws[i].error[0] || !ws[i].ended) {
            fprintf(stderr, "worker %d: %s\n", i, ws[i].error[0] ? ws[i].error : "did not finish");
            bad++;
        }
        acked += ws[i].acked;
        unknown += ws[i].unknown;
        transport += ws[i].transport;
        busy += ws[i].busy;
    }
    fprintf(stderr, "%d acknowledged submissions, %d unanswered, %d requests retried on another node, %d after a 503\n",
            acked, unknown, transport, busy);
    assert_int_equal(bad, 0);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM items WHERE project_id = %lld", (long long)project);
    assert_int_equal(db_int(sql), N_FIRST + N_LATER);
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM (SELECT item_id FROM judgments WHERE project_id = %lld GROUP BY item_id"
             " HAVING COUNT(*) <> %d) t",
             (long long)project, OVERLAP);
    assert_int_equal(db_int(sql), 0);   /* every item exactly OVERLAP judgments */
    snprintf(sql, sizeof sql, "SELECT COUNT(DISTINCT item_id) FROM judgments WHERE project_id = %lld",
             (long long)project);
    assert_int_equal(db_int(sql), N_FIRST + N_LATER);
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM (SELECT item_id FROM assignments WHERE project_id = %lld AND state = 'submitted'"
             " GROUP BY item_id HAVING COUNT(*) > %d) t",
             (long long)project, OVERLAP);
    assert_int_equal(db_int(sql), 0);   /* no item over-assigned */
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM (SELECT item_id, worker_id FROM judgments WHERE project_id = %lld"
             " GROUP BY item_id, worker_id HAVING COUNT(*) > 1) t",
             (long long)project);
    assert_int_equal(db_int(sql), 0);   /* no duplicate judgment */
    /* Every acknowledged submission is in the store, for its item. */
    int64_t *rows = calloc((size_t)(N_FIRST + N_LATER) * OVERLAP * 2 + 2, sizeof *rows);
    assert_non_null(rows);
    snprintf(sql, sizeof sql, "SELECT assignment_id, item_id FROM judgments WHERE project_id = %lld",
             (long long)project);
    size_t n = db_ints(sql, 2, rows, (size_t)(N_FIRST + N_LATER) * OVERLAP + 1);
    assert_int_equal(n, (size_t)(N_FIRST + N_LATER) * OVERLAP);
    int lost = 0;
    for (int i = 0; i < N_WORKERS; i++)
        for (int k = 0; k < ws[i].acked && k < MAX_ACKED; k++) {
            int found = 0;
            for (size_t j = 0; j < n && !found; j++)
                found = rows[2 * j] == ws[i].assignment[k] && rows[2 * j + 1] == ws[i].item[k];
            if (!found) {
                fprintf(stderr, "acknowledged submission of assignment %lld (item %lld) is not in the store\n",
                        (long long)ws[i].assignment[k], (long long)ws[i].item[k]);
                lost++;
            }
        }
    free(rows);
    assert_int_equal(lost, 0);
    assert_true(acked + unknown >= (N_FIRST + N_LATER) * OVERLAP);
    for (int i = 0; i < N_WORKERS; i++)
        free(ws[i].token);

    /* And the queue drains: no job failed, none is left running (a finished job's
     * row must go, or it is claimed and run again whenever its lease runs out). */
    for (long long t = it_now_ms() + 60000;; it_sleep_ms(200)) {
        int64_t left = db_int("SELECT COUNT(*) FROM jobs WHERE state <> 'failed'");
        if (left == 0)
            break;
        if (it_now_ms() > t)
            fail_msg("%lld jobs still queued or running", (long long)left);
    }
    assert_int_equal(db_int("SELECT COUNT(*) FROM jobs WHERE state = 'failed'"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_a_node),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
