/* it_cli.c -- integration test of the `tally` CLI against a real tallyd.
 *
 * One server for the whole group (started in the group setup, stopped in the group
 * teardown, where a non-zero exit or a sanitizer report in its log fails the run).
 * The admin creates a manager; the tests then drive the CLI as that manager and
 * check what it prints against the API's own answers:
 *   login/whoami (config file, mode 0600), project create/list/show, ingest of a
 *   directory built from tests/data (good, duplicate, empty, corrupt, wrong-media
 *   and hidden files), items listing (table, --json, --limit), batch show, and the
 *   error paths (bad token, missing path, unknown project).
 * Tests run in order and share state through the static `g`.
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

static struct {
    it_server srv;
    char *mgr;          /* manager token */
    int64_t project;    /* created through the CLI */
    int64_t batch;      /* ingested through the CLI */
    char in_dir[4200];  /* the directory that was ingested */
} g;

static const char *TEMPLATE =
    "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"],"
    "\"required\":true}]}";

/* Run the CLI with args (NULL-terminated varargs); fills out/err, returns status. */
static int cli(const char *token, char **out, char **err, ...)
{
    va_list ap;
    va_start(ap, err);
    int rc = it_run_cli_va(&g.srv, token, NULL, out, err, ap);
    va_end(ap);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    return it_server_start_users(&g.srv, NULL, &g.mgr, NULL, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = it_server_finish(&g.srv);
    free(g.mgr);
    return rc;
}

static void test_login_whoami(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    /* a wrong token is refused and not saved */
    assert_int_equal(it_run_cli(&g.srv, NULL,
                                (const char *[]){ "login", "--url", g.srv.base_url, "--token",
                                                  "not-a-token", NULL },
                                &out, &err),
                     1);
    assert_non_null(strstr(err, "HTTP 401"));
    free(out);
    free(err);
    char cfg[4400];
    snprintf(cfg, sizeof cfg, "%s/cli-config/tally/config", g.srv.data_dir);
    assert_false(it_file_exists(cfg));

    assert_int_equal(cli(NULL, &out, &err, "login", "--url", g.srv.base_url, "--token", g.mgr,
                         NULL),
                     0);
    assert_non_null(strstr(out, "logged in"));
    free(out);
    free(err);
    struct stat st;
    assert_int_equal(stat(cfg, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* no TALLY_TOKEN in the environment: the saved token is used */
    assert_int_equal(cli(NULL, &out, &err, "whoami", NULL), 0);
    assert_non_null(strstr(out, "pm (manager)"));
    free(out);
    free(err);

    /* --token overrides the config file */
    assert_int_equal(it_run_cli(&g.srv, NULL,
                                (const char *[]){ "whoami", "--token", "bogus", NULL }, &out,
                                &err),
                     1);
    assert_non_null(strstr(err, "HTTP 401"));
    free(out);
    free(err);
}

static void test_project_create(void **state)
{
    (void)state;
    char tpl[4400], bad[4400], gl[4400];
    const char *guidelines = "Label the animal.\n";
    assert_int_equal(it_write_temp(&g.srv, "tpl.json", TEMPLATE, strlen(TEMPLATE), tpl, sizeof tpl), 0);
    assert_int_equal(it_write_temp(&g.srv, "gl.txt", guidelines, strlen(guidelines), gl, sizeof gl), 0);
    const char *bad_tpl = "{\"controls\":[{\"name\":\"x\",\"type\":\"no_such_control\"}]}";
    assert_int_equal(it_write_temp(&g.srv, "bad.json", bad_tpl, strlen(bad_tpl), bad, sizeof bad), 0);

    char *out = NULL, *err = NULL;
    assert_int_equal(cli(g.mgr, &out, &err, "project", "create", "--name", "cli-proj", "--media",
                         "image", "--template", tpl, "--guidelines", gl, NULL),
                     0);
    g.project = strtoll(out, NULL, 10);
    assert_true(g.project > 0);
    free(out);
    free(err);

    it_response r;
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/projects/%lld", (long long)g.project), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(it_json_str(r.json, "name"), "cli-proj");
    assert_string_equal(it_json_str(r.json, "media"), "image");
    assert_string_equal(it_json_str(r.json, "guidelines"), guidelines);
    it_response_free(&r);

    assert_int_equal(cli(g.mgr, &out, &err, "project", "list", NULL), 0);
    assert_non_null(strstr(out, "cli-proj"));
    free(out);
    free(err);

    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)g.project);
    assert_int_equal(cli(g.mgr, &out, &err, "project", "show", id, NULL), 0);
    assert_non_null(strstr(out, "\"cli-proj\""));
    free(out);
    free(err);

    /* an unknown control is the server's 400/422, shown with its code */
    int rc = it_run_cli(&g.srv, g.mgr,
                        (const char *[]){ "project", "create", "--name", "bad", "--media", "image",
                                          "--template", bad, NULL },
                        &out, &err);
    assert_int_equal(rc, 1);
    assert_true(strstr(err, "HTTP 400") || strstr(err, "HTTP 422"));
    free(out);
    free(err);
}

/* Build in/ from tests/data: 2 good images, a duplicate in a subdirectory under the
 * same base name, an empty and a corrupt JPEG, a WAV (wrong media for an image
 * project) and a hidden file that must be skipped. */
static void make_input_dir(void)
{
    char src[4400], dst[4400];
    static const char *const files[] = { "photo.jpg", "photo.png", "empty.jpg", "corrupt.jpg",
                                         "text.wav" };
    snprintf(g.in_dir, sizeof g.in_dir, "%s/in", g.srv.data_dir);
    snprintf(dst, sizeof dst, "%s/sub", g.in_dir);
    assert_int_equal(mkdir(g.in_dir, 0700), 0);
    assert_int_equal(mkdir(dst, 0700), 0);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        it_test_data(files[i], src, sizeof src);
        snprintf(dst, sizeof dst, "%s/%s", g.in_dir, files[i]);
        if (it_copy_file(src, dst) != 0)
            fail_msg("cannot copy %s (test data missing?)", src);
    }
    it_test_data("photo.jpg", src, sizeof src);
    snprintf(dst, sizeof dst, "%s/sub/photo.jpg", g.in_dir);
    assert_int_equal(it_copy_file(src, dst), 0);
    snprintf(dst, sizeof dst, "%s/.hidden.jpg", g.in_dir);
    assert_int_equal(it_copy_file(src, dst), 0);
}

static void test_ingest(void **state)
{
    (void)state;
    make_input_dir();
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)g.project);
    char *out = NULL, *err = NULL;
    assert_int_equal(cli(g.mgr, &out, &err, "ingest", id, g.in_dir, "--name", "first",
                         "--timeout", "60", NULL),
                     0);

    long long b = 0, total = -1, acc = -1, dup = -1, rej = -1, pend = -1;
    const char *line = strstr(out, "batch ");
    assert_non_null(line);
    assert_int_equal(sscanf(line, "batch %lld", &b), 1);
    g.batch = b;
    const char *counts = strstr(out, " total, ");
    assert_non_null(counts);
    while (counts > out && counts[-1] != '\n')
        counts--;
    assert_int_equal(sscanf(counts, " %lld total, %lld accepted, %lld duplicates, %lld rejected, "
                                    "%lld pending",
                            &total, &acc, &dup, &rej, &pend),
                     5);
    /* the same numbers as the API */
    json_t *batch = it_wait_batch(&g.srv, g.mgr, g.batch, 1000);
    assert_non_null(batch);
    assert_string_equal(it_json_str(batch, "state"), "done");
    assert_int_equal(total, it_json_int(batch, "total"));
    assert_int_equal(acc, it_json_int(batch, "accepted"));
    assert_int_equal(dup, it_json_int(batch, "duplicates"));
    assert_int_equal(rej, it_json_int(batch, "rejected"));
    json_decref(batch);
    /* and what the files call for: the hidden file was skipped */
    assert_int_equal(total, 6);
    assert_int_equal(acc, 2);
    assert_int_equal(dup, 1);
    assert_int_equal(rej, 3);
    assert_int_equal(pend, 0);
    assert_non_null(strstr(out, "rejected empty.jpg: "));
    assert_non_null(strstr(out, "rejected corrupt.jpg: "));
    assert_non_null(strstr(out, "rejected text.wav: "));
    assert_non_null(strstr(out, "3 files rejected"));
    assert_null(strstr(out, "hidden"));
    free(out);
    free(err);

    snprintf(id, sizeof id, "%lld", (long long)g.batch);
    assert_int_equal(cli(g.mgr, &out, &err, "batch", "show", id, NULL), 0);
    assert_non_null(strstr(out, "'first'"));
    assert_non_null(strstr(out, "6 total, 2 accepted, 1 duplicates, 3 rejected"));
    free(out);
    free(err);
}

static void test_items(void **state)
{
    (void)state;
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)g.project);
    it_response r;
    assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/projects/%lld/items?limit=100",
                             (long long)g.project),
                     0);
    assert_int_equal(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 2);

    char *out = NULL, *err = NULL;
    assert_int_equal(cli(g.mgr, &out, &err, "items", id, NULL), 0);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        json_t *m = json_object_get(it, "media");
        char size[64], row_id[32];
        snprintf(size, sizeof size, "%lldx%lld", (long long)it_json_int(m, "width"),
                 (long long)it_json_int(m, "height"));
        snprintf(row_id, sizeof row_id, "\n%lld ", (long long)it_json_int(it, "id"));
        assert_non_null(strstr(out, it_json_str(it, "name")));
        assert_non_null(strstr(out, size));
        assert_non_null(strstr(out, row_id));
    }
    assert_non_null(strstr(out, "photo.jpg"));
    assert_non_null(strstr(out, "photo.png"));
    free(out);
    free(err);
    it_response_free(&r);

    /* --json: one object per line; --limit caps the count */
    assert_int_equal(cli(g.mgr, &out, &err, "items", id, "--json", NULL), 0);
    size_t lines = 0;
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(l, 0, NULL);
        assert_non_null(j);
        assert_true(it_json_int(j, "id") > 0);
        json_decref(j);
        lines++;
    }
    assert_int_equal(lines, 2);
    free(out);
    free(err);

    assert_int_equal(cli(g.mgr, &out, &err, "items", id, "--json", "--limit", "1", NULL), 0);
    assert_non_null(strchr(out, '\n'));
    assert_null(strchr(strchr(out, '\n') + 1, '\n'));
    free(out);
    free(err);
}

static void test_errors(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    char missing[4400], id[32];
    snprintf(missing, sizeof missing, "%s/no-such-dir", g.srv.data_dir);
    snprintf(id, sizeof id, "%lld", (long long)g.project);
    /* a missing path fails before any batch is created */
    assert_int_equal(it_run_cli(&g.srv, g.mgr, (const char *[]){ "ingest", id, missing, NULL },
                                &out, &err),
                     1);
    assert_non_null(strstr(err, "No such file"));
    assert_null(strstr(err, "batch"));
    free(out);
    free(err);

    /* an unknown project: the server's 404 and its code */
    assert_int_equal(it_run_cli(&g.srv, g.mgr,
                                (const char *[]){ "ingest", "999999", g.in_dir, NULL }, &out,
                                &err),
                     1);
    assert_non_null(strstr(err, "HTTP 404"));
    free(out);
    free(err);

    /* usage errors exit 2 */
    assert_int_equal(it_run_cli(&g.srv, g.mgr, (const char *[]){ "items", "abc", NULL }, &out,
                                &err),
                     2);
    free(out);
    free(err);
    assert_int_equal(it_run_cli(&g.srv, g.mgr, (const char *[]){ "ingest", "--help", NULL },
                                &out, &err),
                     0);
    assert_non_null(strstr(out, "usage: tally ingest"));
    free(out);
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_whoami),
        cmocka_unit_test(test_project_create),
        cmocka_unit_test(test_ingest),
        cmocka_unit_test(test_items),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
