/* it_copy.c -- `tallyd copy`: a single-node install (SQLite, local blobs) moved to
 * PostgreSQL, then served from there (README "tallyd copy").
 *
 * A tallyd on SQLite is filled through the API (a project, a batch of images, workers,
 * judgments, results released through an accepted lot, an export) and stopped; its
 * answers to the read endpoints are kept. `tallyd copy --from-data DIR --to URL
 * --blobs-to URL` then fills a fresh PostgreSQL database and must report every table
 * matching, and puts the blobs into the run's blob store (the S3 test server's bucket
 * in ctest's _pg run, else a local directory). A tallyd on the copy (--db the
 * database, --blobs the copied blobs) must answer the same reads (as JSON), serve the
 * same media bytes and export download, and take new writes whose ids do not clash with copied ones (the
 * identity sequences were moved past them). A second copy into the now non-empty
 * database is refused with a clear message; a second blob copy skips every blob; a
 * source blob whose bytes do not match its name fails the blob copy.
 *
 * Needs a PostgreSQL server: registered only as integration.it_copy_pg (the ctest
 * fixture's cluster via TALLY_TEST_DB_FILE); run without one it skips. The source
 * tallyd must be on SQLite and local blobs whatever the run's configuration, so the
 * harness's database / S3 variables are hidden while it starts.
 */
#include "harness.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static const char *WORKFLOW = "{\"overlap\":1,\"quiz\":{\"size\":0},\"gold_rate\":0,\"min_trust\":0,\"min_confidence\":0,"
                              "\"checks\":{\"min_box_px\":0,\"same_answer_min\":0}}";

/* Runs `TALLYD_PATH copy args...` (NULL-terminated); its stdout+stderr into *out
 * (malloc'd). Returns the exit status, or -1 if it could not run / was killed. */
static int run_copy(const it_server *src, const char *const *args, char **out)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/copy.out", src->data_dir);
    const char *argv[16] = {TALLYD_PATH, "copy"};
    int argc = 2;
    for (int i = 0; args[i] && argc < 15; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(TALLYD_PATH, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    size_t len = 0;
    *out = (char *)it_load_file(path, &len);
    if (*out)
        (*out)[len] = '\0';   /* the spare byte it_load_file leaves */
    else
        *out = strdup("");
    if (*out && (getenv("IT_VERBOSE") || !WIFEXITED(status) || it_has_sanitizer_report(*out)))
        fprintf(stderr, "tallyd copy output:\n%s\n", *out);
    if (*out && it_has_sanitizer_report(*out))
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The manager's view of a GET path (new reference), asserted 200. */
static json_t *get_json(it_server *s, const char *tok, const char *path)
{
    return it_json_requestf(s, "GET", tok, NULL, 200, "%s", path);
}

static void label_all(it_server *s, int64_t project, const char *tok)
{
    for (int k = 0;; k++) {
        json_t *task = it_next_task(s, tok, project);
        if (!task)
            break;
        int64_t a = it_json_int(task, "assignment_id");
        json_decref(task);
        char body[256];
        snprintf(body, sizeof body, "{\"answer\":{\"label\":\"%s\"},\"duration_ms\":%d}", k % 2 ? "dog" : "cat",
                 1000 + k);
        json_decref(it_json_requestf(s, "POST", tok, body, 200, "/v1/assignments/%lld/submit", (long long)a));
    }
}

static json_t *export_done(it_server *s, const char *mgr, int64_t project)
{
    json_t *e = it_json_requestf(s, "POST", mgr, "{\"format\":\"jsonl\"}", 202, "/v1/projects/%lld/exports",
                                 (long long)project);
    int64_t id = it_json_int(e, "id");
    json_decref(e);
    long long deadline = it_now_ms() + 60000;
    for (;;) {
        e = it_json_requestf(s, "GET", mgr, NULL, 200, "/v1/exports/%lld", (long long)id);
        if (strcmp(it_json_str(e, "state"), "done") == 0)
            return e;
        assert_string_not_equal(it_json_str(e, "state"), "failed");
        json_decref(e);
        assert_true(it_now_ms() < deadline);
        it_sleep_ms(100);
    }
}

/* The read endpoints compared before and after the move. */
#define N_VIEWS 8

static void views_of(int64_t project, int64_t item, int64_t export_id, char paths[N_VIEWS][128])
{
    snprintf(paths[0], 128, "/v1/projects");
    snprintf(paths[1], 128, "/v1/projects/%lld", (long long)project);
    snprintf(paths[2], 128, "/v1/projects/%lld/items?limit=200", (long long)project);
    snprintf(paths[3], 128, "/v1/projects/%lld/judgments?limit=200", (long long)project);
    snprintf(paths[4], 128, "/v1/projects/%lld/results?limit=200", (long long)project);
    snprintf(paths[5], 128, "/v1/projects/%lld/batches", (long long)project);
    snprintf(paths[6], 128, "/v1/items/%lld/history", (long long)item);
    snprintf(paths[7], 128, "/v1/exports/%lld", (long long)export_id);
}

/* Environment variables the harness reads to put a server on PostgreSQL / S3. */
/* GET path (printf-style) from s must answer 200 with exactly before's bytes; frees before. */
static void assert_serves_same(it_server *s, const char *tok, it_response *before, const char *fmt, ...)
{
    char path[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    it_response after;
    assert_int_equal(it_getf(s, tok, &after, "%s", path), 0);
    IT_ASSERT_STATUS(after, 200);
    assert_int_equal(after.len, before->len);
    assert_memory_equal(after.body, before->body, before->len);
    it_response_free(&after);
    it_response_free(before);
}

static const char *const HARNESS_ENV[] = {"TALLY_TEST_DB", "TALLY_TEST_DB_FILE", "TALLY_TEST_S3_FILE"};
#define N_ENV (sizeof HARNESS_ENV / sizeof HARNESS_ENV[0])

static void test_copy_sqlite_to_postgres(void **state)
{
    (void)state;
    if (!it_db_is_postgres()) {
        fprintf(stderr, "it_copy: no PostgreSQL server (TALLY_TEST_DB / TALLY_TEST_DB_FILE): skipped; "
                        "ctest runs it as integration.it_copy_pg\n");
        skip();
    }
    /* The source: SQLite and local blobs, whatever this run's configuration. */
    char *saved[N_ENV];
    for (size_t i = 0; i < N_ENV; i++) {
        const char *v = getenv(HARNESS_ENV[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(HARNESS_ENV[i]);
    }
    it_server src, dst, db;
    memset(&db, 0, sizeof db);
    memset(&dst, 0, sizeof dst);
    char *mgr = NULL, *worker = NULL;
    int started = it_server_start_users(&src, NULL, &mgr, &worker, NULL);
    for (size_t i = 0; i < N_ENV; i++) {
        if (saved[i])
            setenv(HARNESS_ENV[i], saved[i], 1);
        free(saved[i]);
    }
    assert_int_equal(started, 0);
    assert_string_equal(src.db_url, "");

    /* ---- a single-node install with some of everything ---- */
    char body[1024];
    snprintf(body, sizeof body,
             "{\"name\":\"copy-me\",\"media\":\"image\",\"guidelines\":\"Pick one. \\u00e9t\\u00e9 'quoted'\","
             "\"template\":{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"]}]},"
             "\"workflow\":%s}",
             WORKFLOW);
    int64_t project = it_post_project(&src, mgr, body);
    it_add_jpegs(&src, mgr, project, "copy", "img", 5, 1);
    label_all(&src, project, worker);
    it_release_all(&src, mgr, project, 5);
    json_t *export = export_done(&src, mgr, project);
    int64_t export_id = it_json_int(export, "id");
    json_decref(export);
    json_t *items = it_json_requestf(&src, "GET", mgr, NULL, 200, "/v1/projects/%lld/items?limit=200", (long long)project);
    json_t *first = json_array_get(json_object_get(items, "items"), 0);
    int64_t item = it_json_int(first, "id");
    json_decref(items);
    assert_true(item > 0);

    char paths[N_VIEWS][128];
    json_t *before[N_VIEWS];
    views_of(project, item, export_id, paths);
    for (int i = 0; i < N_VIEWS; i++)
        before[i] = get_json(&src, mgr, paths[i]);
    it_response media_before, export_before;
    assert_int_equal(it_getf(&src, mgr, &media_before, "/v1/items/%lld/media", (long long)item), 0);
    IT_ASSERT_STATUS(media_before, 200);
    assert_int_equal(it_getf(&src, mgr, &export_before, "/v1/exports/%lld/download", (long long)export_id), 0);
    IT_ASSERT_STATUS(export_before, 200);
    assert_int_equal(it_server_stop(&src), 0);

    /* ---- the copy into a fresh database (and blob store) ---- */
    snprintf(db.data_dir, sizeof db.data_dir, "%s", src.data_dir);   /* S3 runs: its tmp dir */
    assert_int_equal(it_db_create(&db), 0);
    assert_true(db.db_url[0] != '\0');
    char blobs_to[1400];
    if (db.blobs_url[0])
        snprintf(blobs_to, sizeof blobs_to, "%s", db.blobs_url);
    else
        snprintf(blobs_to, sizeof blobs_to, "file:%s/blobs-copy", src.data_dir);
    char *out = NULL;
    const char *const copy_args[] = {"--from-data", src.data_dir, "--to", db.db_url, "--blobs-to", blobs_to, NULL};
    assert_int_equal(run_copy(&src, copy_args, &out), 0);
    assert_non_null(strstr(out, "copying the sqlite store into the postgres store"));
    assert_non_null(strstr(out, "row counts and checksums match on every table"));
    assert_null(strstr(out, "MISMATCH"));
    /* The images, and the export's artifact and manifest (blobs since issue 8). */
    if (!strstr(out, "blobs: 7 copied") || !strstr(out, " 0 already there, 0 failed"))
        fail_msg("expected the 5 images' blobs and the export's 2 copied, got:\n%s", out);
    /* One line per table, with the rows it had. */
    static const char *const tables[] = {"users", "projects", "batches", "batch_files", "items", "previews", "jobs",
                                         "assignments", "judgments", "project_workers", "results", "item_events",
                                         "lots", "lot_items", "exports", "image_checks"};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char line[96];
        snprintf(line, sizeof line, "\n  %-22s ", tables[i]);
        const char *at = strstr(out, line);
        if (!at)
            fail_msg("no line for table %s in:\n%s", tables[i], out);
        assert_non_null(strstr(at, " ok\n"));
    }
    free(out);

    /* ---- tallyd on the copy: same answers, media from the original blobs ---- */
    it_server shared;
    memset(&shared, 0, sizeof shared);
    snprintf(shared.data_dir, sizeof shared.data_dir, "%s", src.data_dir);   /* admin.token, blobs */
    snprintf(shared.db_url, sizeof shared.db_url, "%s", db.db_url);
    snprintf(shared.blobs_url, sizeof shared.blobs_url, "%s", blobs_to);
    it_db_share(&shared);
    assert_int_equal(it_server_start(&dst, NULL), 0);
    assert_string_equal(dst.db_url, db.db_url);
    for (int i = 0; i < N_VIEWS; i++) {
        json_t *after = get_json(&dst, mgr, paths[i]);
        if (!json_equal(before[i], after)) {
            char *a = json_dumps(before[i], JSON_COMPACT), *b = json_dumps(after, JSON_COMPACT);
            fprintf(stderr, "GET %s differs after the copy:\nbefore %.3000s\nafter  %.3000s\n", paths[i], a, b);
            free(a);
            free(b);
            fail();
        }
        json_decref(after);
        json_decref(before[i]);
    }
    assert_serves_same(&dst, mgr, &media_before, "/v1/items/%lld/media", (long long)item);
    /* The export's artifact moved with the blobs: the copy serves the same bytes. */
    assert_serves_same(&dst, mgr, &export_before, "/v1/exports/%lld/download", (long long)export_id);

    /* ---- new writes: fresh ids past the copied ones ---- */
    int seq = 0;
    char *w2 = it_new_user(&dst, &seq, "worker");
    assert_non_null(w2);
    json_t *me = it_json_requestf(&dst, "GET", w2, NULL, 200, "/v1/me");
    assert_true(it_json_int(me, "id") > 3);   /* admin, pm, w1 were copied */
    json_decref(me);
    int64_t project2 = it_post_project(&dst, mgr, body);
    assert_true(project2 > project);
    it_add_jpegs(&dst, mgr, project2, "after-copy", "new", 3, 100);
    label_all(&dst, project2, w2);
    it_release_all(&dst, mgr, project2, 3);
    json_t *judged = it_json_requestf(&dst, "GET", mgr, NULL, 200, "/v1/projects/%lld/judgments?limit=200",
                                      (long long)project2);
    assert_int_equal(json_array_size(json_object_get(judged, "items")), 3);
    json_decref(judged);
    /* The copied project's results are still all there. */
    json_t *old = it_json_requestf(&dst, "GET", mgr, NULL, 200, "/v1/projects/%lld/results?limit=200",
                                   (long long)project);
    assert_int_equal(json_array_size(json_object_get(old, "items")), 5);
    json_decref(old);
    free(w2);
    assert_int_equal(it_server_stop(&dst), 0);

    /* ---- a second copy into the now non-empty database is refused ---- */
    out = NULL;
    assert_int_equal(run_copy(&src, copy_args, &out), 1);
    if (!strstr(out, "not empty") || !strstr(out, "--overwrite"))
        fail_msg("expected a 'not empty' refusal, got:\n%s", out);
    free(out);

    /* ---- blobs again: all there already; then a damaged source blob ---- */
    char blobs_from[4200];
    snprintf(blobs_from, sizeof blobs_from, "file:%s/blobs", src.data_dir);
    const char *const blob_args[] = {"--blobs-from", blobs_from, "--blobs-to", blobs_to, NULL};
    out = NULL;
    assert_int_equal(run_copy(&src, blob_args, &out), 0);
    if (!strstr(out, "blobs: 0 copied (0 bytes), 7 already there, 0 failed"))
        fail_msg("expected every blob skipped, got:\n%s", out);
    free(out);
    /* A file under the name of other bytes (the SHA-256 of "a"). */
    const char *liar = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
    char path[4300];
    snprintf(path, sizeof path, "%s/blobs/%.2s/%s", src.data_dir, liar, liar);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a", f);
    fclose(f);
    out = NULL;
    assert_int_equal(run_copy(&src, blob_args, &out), 1);
    if (!strstr(out, "1 failed") || !strstr(out, liar))
        fail_msg("expected the damaged blob named, got:\n%s", out);
    free(out);

    it_server_cleanup(&dst);
    it_db_drop(&db);
    it_server_cleanup(&src);
    free(mgr);
    free(worker);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_sqlite_to_postgres),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
