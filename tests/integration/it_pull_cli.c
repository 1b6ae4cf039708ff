/* it_pull_cli.c -- integration test of `tally pull` (tools/tally/pull.c) against a real
 * tallyd.
 *
 * The group setup makes an image project (choice cat/dog, overlap 1, no quiz, gold or
 * trust floor, min_confidence 0), ingests 4 JPEGs, has a worker label them over HTTP,
 * waits for the 4 results (state done) and releases them through an acceptance lot
 * (the lot is inspected whole at this size; every sampled item "ok" -> accepted). A
 * second, empty project is made for the wrong-project case. Then, through the CLI:
 *   - csv --no-media: a single annotation file with a header and 4 data rows, plus
 *     manifest.jsonl; pulling the same --version into the same directory again works;
 *   - jsonl with media: a tar unpacked into the directory, images/ with the 4 JPEGs, every
 *     manifest line checked again here with SHA-256 and size; again with --version;
 *   - a split + --min-confidence export (annotations only) verifies too;
 *   - resume: the first half of a downloaded artifact is written where an interrupted
 *     pull leaves it (OUT/.partial-<version 12>.tar); pull --version resumes it (the
 *     CLI reports the 206 "resumed at byte N"), and a partial file with wrong bytes
 *     is detected and fetched again from the start; the version's SHA-256 prefix
 *     works as --version;
 *   - bad input: unknown format, --version of another project or another format, an
 *     unknown export, a missing --format.
 * Tests run in order and share state through the static `g`.
 */
#include "harness.h"

#include "core/hash.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#define ITEMS 4

static struct {
    it_server srv;
    char *mgr, *worker;
    int64_t project, other;
    char pid[32], other_pid[32];
    int64_t csv_export, jsonl_export;
    char csv_id[32], jsonl_id[32];
} g;

static const char *PROJECT =
    "{\"name\":\"pull\",\"media\":\"image\",\"template\":{\"controls\":["
    "{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"]}]},"
    "\"workflow\":{\"overlap\":1,\"quiz\":{\"size\":0},\"gold_rate\":0,\"min_trust\":0,"
    "\"min_confidence\":0}}";

/* Run the CLI as the manager with args (NULL-terminated varargs). */
static int cli(char **out, char **err, ...)
{
    va_list ap;
    va_start(ap, err);
    int rc = it_run_cli_va(&g.srv, g.mgr, NULL, out, err, ap);
    va_end(ap);
    return rc;
}

/* DIR/name inside the server's data dir (removed by cleanup). */
static const char *dir_path(const char *name, char *buf, size_t bufsz)
{
    snprintf(buf, bufsz, "%s/%s", g.srv.data_dir, name);
    return buf;
}

/* The worker labels every task; the results appear (state done); an acceptance lot
 * releases them. */
static void label_and_release(void)
{
    for (int k = 0;; k++) {
        json_t *task = it_next_task(&g.srv, g.worker, g.project);
        if (!task)
            break;
        int64_t a = it_json_int(task, "assignment_id");
        json_decref(task);
        char body[96];
        snprintf(body, sizeof body, "{\"answer\":{\"label\":\"%s\"}}", k % 2 ? "dog" : "cat");
        json_decref(it_json_requestf(&g.srv, "POST", g.worker, body, 200, "/v1/assignments/%lld/submit",
                             (long long)a));
    }
    it_release_all(&g.srv, g.mgr, g.project, ITEMS);
    /* The whole lot at this size: every item released. */
    json_t *released = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200,
                                        "/v1/projects/%lld/results?state=released&limit=100", (long long)g.project);
    assert_int_equal(json_array_size(json_object_get(released, "items")), ITEMS);
    json_decref(released);
}

static int group_setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    if (it_server_start_users(&g.srv, NULL, &g.mgr, &g.worker, NULL) < 0)
        return -1;
    g.project = it_post_project(&g.srv, g.mgr, PROJECT);
    g.other = it_post_project(&g.srv, g.mgr, PROJECT);
    snprintf(g.pid, sizeof g.pid, "%lld", (long long)g.project);
    snprintf(g.other_pid, sizeof g.other_pid, "%lld", (long long)g.other);
    it_add_jpegs(&g.srv, g.mgr, g.project, "pull", "img", ITEMS, 1);
    label_and_release();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = it_server_finish(&g.srv);
    free(g.mgr);
    free(g.worker);
    return rc;
}

/* ---- checks on a pulled directory ------------------------------------------------------ */

/* The export id and version (12 hex digits) the summary names. */
static int64_t summary_export(const char *out, char v12[13])
{
    long long id = -1, project = -1;
    const char *s = strstr(out, "pulled export ");
    assert_non_null(s);
    assert_int_equal(sscanf(s, "pulled export %lld of project %lld", &id, &project), 2);
    assert_int_equal(project, g.project);
    const char *v = strstr(out, "version  ");
    assert_non_null(v);
    assert_int_equal(sscanf(v, "version  %12s", v12), 1);
    assert_int_equal(strlen(v12), 12);
    return id;
}

/* Entries of dir whose name starts with prefix. */
static int count_prefixed(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

/* Checks every line of DIR/manifest.jsonl here too (size, SHA-256) and that the
 * manifest hashes to the export's version; the number of files. */
static int verify_dir(const char *dir, int64_t export_id)
{
    json_t *e = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/exports/%lld", (long long)export_id);
    char path[4400], hex[TLY_SHA256_HEX_LEN + 1];
    uint64_t size;
    snprintf(path, sizeof path, "%s/manifest.jsonl", dir);
    assert_int_equal(tly_sha256_file(path, hex, &size), 0);
    assert_string_equal(hex, it_json_str(e, "sha256"));
    json_decref(e);
    size_t len;
    char *text = (char *)it_load_file(path, &len);
    assert_non_null(text);
    text[len] = '\0';
    int n = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *m = json_loads(l, 0, NULL);
        assert_non_null(m);
        const char *name = it_json_str(m, "path");
        assert_true(name[0] != '/' && !strstr(name, ".."));
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (tly_sha256_file(path, hex, &size) != 0)
            fail_msg("%s is missing", path);
        assert_int_equal((int64_t)size, it_json_int(m, "size"));
        assert_string_equal(hex, it_json_str(m, "sha256"));
        json_decref(m);
        n++;
    }
    free(text);
    assert_int_equal(count_prefixed(dir, ".partial-"), 0); /* removed after the pull */
    return n;
}

/* Polls an export made over HTTP until done; the export object. */
static json_t *export_done(const char *body)
{
    json_t *e = it_json_requestf(&g.srv, "POST", g.mgr, body, 202, "/v1/projects/%lld/exports", (long long)g.project);
    int64_t id = it_json_int(e, "id");
    json_decref(e);
    long long deadline = it_now_ms() + 60000;
    for (;;) {
        e = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/exports/%lld", (long long)id);
        if (strcmp(it_json_str(e, "state"), "done") == 0)
            return e;
        if (strcmp(it_json_str(e, "state"), "failed") == 0)
            fail_msg("export %lld failed: %s", (long long)id, json_dumps(e, 0));
        json_decref(e);
        assert_true(it_now_ms() < deadline);
        it_sleep_ms(100);
    }
}

/* ---- the tests ------------------------------------------------------------------------------ */

static void test_csv_single_file(void **state)
{
    (void)state;
    char d1[4200], v12[13];
    dir_path("D1", d1, sizeof d1);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "pull", g.pid, "--format", "csv", "--no-media", "--out", d1, NULL), 0);
    g.csv_export = summary_export(out, v12);
    snprintf(g.csv_id, sizeof g.csv_id, "%lld", (long long)g.csv_export);
    assert_non_null(strstr(out, "items    4"));
    free(out);
    free(err);

    /* one file, the CSV (the artifact itself), and the manifest naming it */
    assert_int_equal(verify_dir(d1, g.csv_export), 1);
    char csv[4400], mpath[4400];
    snprintf(mpath, sizeof mpath, "%s/manifest.jsonl", d1);
    json_t *m = json_load_file(mpath, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(m);
    const char *name = it_json_str(m, "path");
    assert_non_null(strstr(name, ".csv"));
    snprintf(csv, sizeof csv, "%s/%s", d1, name);
    json_decref(m);
    size_t len;
    char *text = (char *)it_load_file(csv, &len);
    assert_non_null(text);
    text[len] = '\0';
    int lines = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\r\n", &save); l; l = strtok_r(NULL, "\r\n", &save))
        lines++;
    free(text);
    assert_int_equal(lines, 1 + ITEMS); /* header + one row per released item */

    /* the same version into the same directory again: overwritten, still verified */
    assert_int_equal(cli(&out, &err, "pull", g.pid, "--format", "csv", "--version", g.csv_id, "--out", d1, NULL),
                     0);
    char v12b[13];
    assert_int_equal(summary_export(out, v12b), g.csv_export);
    assert_string_equal(v12, v12b);
    free(out);
    free(err);
    assert_int_equal(verify_dir(d1, g.csv_export), 1);
}

static void test_jsonl_tar_with_media(void **state)
{
    (void)state;
    char d2[4200], images[4300], v12[13];
    dir_path("D2", d2, sizeof d2);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "pull", g.pid, "--format", "jsonl", "--out", d2, NULL), 0);
    g.jsonl_export = summary_export(out, v12);
    snprintf(g.jsonl_id, sizeof g.jsonl_id, "%lld", (long long)g.jsonl_export);
    free(out);
    free(err);
    snprintf(images, sizeof images, "%s/images", d2);
    assert_int_equal(it_count_entries(images, ".jpg", 1), ITEMS);
    int files = verify_dir(d2, g.jsonl_export);
    assert_true(files >= ITEMS + 1); /* the images and the annotations */

    json_t *e = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/exports/%lld", (long long)g.jsonl_export);
    assert_string_equal(it_json_str(json_object_get(e, "artifact"), "content_type"), "application/x-tar");
    assert_int_equal(it_json_int(e, "project_id"), g.project);
    json_decref(e);

    /* again by --version into the same directory */
    assert_int_equal(cli(&out, &err, "pull", g.pid, "--format", "jsonl", "--version", g.jsonl_id, "--out", d2, NULL),
                     0);
    free(out);
    free(err);
    assert_int_equal(verify_dir(d2, g.jsonl_export), files);
}

static void test_split_filters(void **state)
{
    (void)state;
    char d5[4200], v12[13];
    dir_path("D5", d5, sizeof d5);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "pull", g.pid, "--format", "jsonl", "--no-media", "--split",
                         "train=0.5,val=0.25,test=0.25,seed=3", "--min-confidence", "0", "--out", d5, NULL),
                     0);
    int64_t id = summary_export(out, v12);
    free(out);
    free(err);
    json_t *e = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/exports/%lld", (long long)id);
    json_t *split = json_object_get(json_object_get(e, "params"), "split");
    if (split) /* the params echo what was asked */
        assert_int_equal(it_json_int(split, "seed"), 3);
    json_decref(e);
    assert_true(verify_dir(d5, id) >= 1);
    assert_int_equal(it_count_entries(d5, ".jpg", 0), 0);
}

/* Writes the first n bytes of data (each XORed with x) as DIR/.partial-<v12>.tar. */
static void write_partial(const char *dir, const char *version, const char *data, size_t n, unsigned char x)
{
    assert_int_equal(mkdir(dir, 0755), 0);
    char path[4400];
    snprintf(path, sizeof path, "%s/.partial-%.12s.tar", dir, version);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fputc((unsigned char)data[i] ^ x, f);
    assert_int_equal(fclose(f), 0);
}

static void test_resume(void **state)
{
    (void)state;
    json_t *e = export_done("{\"format\":\"jsonl\"}");
    int64_t id = it_json_int(e, "id");
    char version[65], id_s[32];
    snprintf(version, sizeof version, "%s", it_json_str(e, "sha256"));
    snprintf(id_s, sizeof id_s, "%lld", (long long)id);
    int64_t size = it_json_int(json_object_get(e, "artifact"), "size");
    json_decref(e);

    it_response r;
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/exports/%lld/download", (long long)id), 0);
    IT_ASSERT_STATUS(r, 200);
    assert_int_equal((int64_t)r.len, size);
    char etag[80];
    snprintf(etag, sizeof etag, "\"%s\"", version);
    assert_string_equal(r.etag, etag);
    size_t half = r.len / 2;

    /* an interrupted pull: half of the artifact in the partial file */
    char d3[4200], want[64];
    dir_path("D3", d3, sizeof d3);
    write_partial(d3, version, r.body, half, 0);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "pull", g.pid, "--format", "jsonl", "--version", id_s, "--out", d3, NULL), 0);
    snprintf(want, sizeof want, "resumed at byte %zu of %lld", half, (long long)size);
    if (!strstr(err, want))
        fail_msg("expected '%s' (a 206 to the Range request) in:\n%s", want, err);
    assert_null(strstr(err, "starting over"));
    assert_null(strstr(err, "again from the start"));
    free(out);
    free(err);
    char images[4300];
    snprintf(images, sizeof images, "%s/images", d3);
    assert_int_equal(it_count_entries(images, ".jpg", 0), ITEMS);
    int files = verify_dir(d3, id);

    /* a partial file with wrong bytes: resumed, found wrong, fetched again */
    char d4[4200];
    dir_path("D4", d4, sizeof d4);
    write_partial(d4, version, r.body, half, 0xff);
    assert_int_equal(cli(&out, &err, "pull", g.pid, "--format", "jsonl", "--version", id_s, "--out", d4, NULL), 0);
    assert_non_null(strstr(err, "again from the start"));
    free(out);
    free(err);
    assert_int_equal(verify_dir(d4, id), files);
    it_response_free(&r);

    /* the version's SHA-256 prefix as --version, into a used directory */
    char v12[13];
    snprintf(v12, sizeof v12, "%.12s", version);
    assert_int_equal(cli(&out, &err, "pull", g.pid, "--format", "jsonl", "--version", v12, "--out", d3, NULL), 0);
    char got[13];
    summary_export(out, got);
    assert_string_equal(got, v12);
    free(out);
    free(err);
    assert_int_equal(verify_dir(d3, id), files);
}

static void test_bad_input(void **state)
{
    (void)state;
    char d9[4200];
    dir_path("D9", d9, sizeof d9);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(&out, &err, "pull", g.pid, "--format", "tfrecord", "--out", d9, NULL), 2);
    assert_non_null(strstr(err, "unknown format"));
    free(out);
    free(err);
    assert_int_equal(cli(&out, &err, "pull", g.pid, "--out", d9, NULL), 2);
    assert_non_null(strstr(err, "--format"));
    free(out);
    free(err);
    /* an export of another project */
    assert_int_equal(cli(&out, &err, "pull", g.other_pid, "--format", "csv", "--version", g.csv_id, "--out", d9, NULL),
                     1);
    assert_non_null(strstr(err, "belongs to project"));
    free(out);
    free(err);
    /* an export in another format */
    assert_int_equal(cli(&out, &err, "pull", g.pid, "--format", "coco", "--version", g.csv_id, "--out", d9, NULL), 1);
    assert_non_null(strstr(err, "format"));
    free(out);
    free(err);
    /* no such export */
    assert_int_equal(cli(&out, &err, "pull", g.pid, "--format", "csv", "--version", "987654", "--out", d9, NULL), 1);
    assert_non_null(strstr(err, "no export 987654"));
    free(out);
    free(err);
    /* shaping options with --version */
    assert_int_equal(cli(&out, &err, "pull", g.pid, "--format", "csv", "--version", g.csv_id, "--no-media", NULL), 2);
    free(out);
    free(err);
    assert_false(it_file_exists(d9)); /* nothing was written for a refused pull */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_single_file),
        cmocka_unit_test(test_jsonl_tar_with_media),
        cmocka_unit_test(test_split_filters),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests_name("it_pull_cli", tests, group_setup, group_teardown);
}
