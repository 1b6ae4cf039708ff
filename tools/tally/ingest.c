/* ingest.c -- `tally ingest PROJECT PATH... [--name BATCH] [--no-wait] [--timeout S]`.
 *
 * Flow: collect the files (walk.h) before touching the server, so a typo in a path
 * creates no batch; create an upload batch; PUT each file, streamed from a FILE*
 * over the one keep-alive connection of tc_http; close the batch; then poll
 * GET /v1/batches/{b} (backing off from 250 ms to 2 s) until it is done or failed,
 * and print the report (batch.c).
 *
 * Failure policy: a file the server refuses (413 too_large, 409 file_exists, 400 bad
 * name, ...) or that cannot be read locally is reported on its own line and the
 * upload goes on; the batch is still closed and processed, but the exit code is 1.
 * A transport failure, or 401/403/404 (the batch or token is unusable), stops the
 * upload at once and leaves the batch open (its id is printed).
 * Exit 0 when the batch finished, even with files rejected by the server's checks.
 */
#include "tools/tally/cli.h"
#include "tools/tally/progress.h"
#include "tools/tally/walk.h"

#include "core/timeutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const tc_help ingest_help = {
    "ingest", "PROJECT_ID PATH... [--name BATCH] [--no-wait] [--timeout SECONDS]",
    "Creates an upload batch in the project, uploads every PATH (a directory is walked\n"
    "recursively; hidden files are skipped), closes the batch, waits until the server\n"
    "has processed it and prints the report: counts and one line per rejected file.\n"
    "  --name BATCH       batch name (default: cli-<time>)\n"
    "  --no-wait          do not wait for processing; see it later with 'tally batch show'\n"
    "  --timeout SECONDS  give up waiting after this long (default: wait forever)\n"
    "Exit status 0 when the batch finished (even with rejected files), 1 on errors.",
};

static int create_batch(tc_ctx *ctx, int64_t project, const char *name, int64_t *batch,
                        tly_error *err)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/projects/%lld/batches", (long long)project);
    json_t *body = json_pack("{s:s, s:{s:s}}", "name", name, "source", "kind", "upload");
    if (!body)
        return tly_fail(err, TLY_E_INVALID, "invalid_name", "--name must be UTF-8 text");
    tc_resp r;
    tc_resp_init(&r);
    int rc = tc_http_json(ctx->http, "POST", path, body, &r, err);
    if (rc == 0 && (*batch = tc_jint(r.json, "id")) <= 0)
        rc = tly_fail(err, TLY_E_IO, "bad_response", "the created batch has no id");
    tc_resp_free(&r);
    json_decref(body);
    return rc;
}

/* Upload one file. Returns 0 uploaded, 1 failed but the upload may go on, -1 stop. */
static int upload_one(tc_ctx *ctx, int64_t batch, const tc_file *f, tc_progress *prog,
                      uint64_t *sent_size)
{
    *sent_size = f->size;
    FILE *fp = fopen(f->path, "rb");
    struct stat st;
    if (!fp || fstat(fileno(fp), &st) < 0) {
        tc_progress_note(prog, "upload failed: %s: %s", f->path, strerror(errno));
        if (fp)
            fclose(fp);
        return 1;
    }
    *sent_size = (uint64_t)st.st_size;
    char *esc = tc_http_escape(ctx->http, f->name);
    size_t n = esc ? strlen(esc) + 64 : 0;
    char *path = esc ? malloc(n) : NULL;
    if (!path) {
        free(esc);
        fclose(fp);
        tc_progress_note(prog, "out of memory");
        return -1;
    }
    snprintf(path, n, "/v1/batches/%lld/files/%s", (long long)batch, esc);
    free(esc);

    tly_error err;
    tc_resp r;
    tc_resp_init(&r);
    int rc = 0;
    if (tc_http_put_file(ctx->http, path, fp, (uint64_t)st.st_size, tc_progress_bytes, prog, &r,
                         &err) < 0) {
        int fatal = (r.status == 0 && strcmp(err.code, "local_read") != 0) || r.status == 401 ||
                    r.status == 403 || r.status == 404;
        tc_progress_note(prog, "upload failed: %s (as %s): %s: %s", f->path, f->name, err.code,
                         err.message);
        rc = fatal ? -1 : 1;
    }
    tc_resp_free(&r);
    free(path);
    fclose(fp);
    return rc;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Poll the batch until done|failed; *out gets the final batch (new reference). */
static int wait_batch(tc_ctx *ctx, int64_t batch, int64_t timeout_s, json_t **out,
                      tly_error *err)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/batches/%lld", (long long)batch);
    int tty = isatty(STDERR_FILENO);
    int64_t start = tly_mono_ns();
    int delay = 250;
    for (;;) {
        tc_resp r;
        tc_resp_init(&r);
        if (tc_http_json(ctx->http, "GET", path, NULL, &r, err) < 0) {
            tc_resp_free(&r);
            return -1;
        }
        const char *state = tc_jstr(r.json, "state");
        if (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0) {
            if (tty)
                fputs("\r\033[K", stderr);
            *out = json_incref(r.json);
            tc_resp_free(&r);
            return 0;
        }
        if (tty) {
            fprintf(stderr, "\rprocessing batch %lld: %lld of %lld files pending\033[K",
                    (long long)batch, (long long)tc_jint(r.json, "pending"),
                    (long long)tc_jint(r.json, "total"));
            fflush(stderr);
        }
        tc_resp_free(&r);
        if (timeout_s > 0 && tly_mono_ns() - start > timeout_s * 1000000000LL) {
            if (tty)
                fputc('\n', stderr);
            return tly_fail(err, TLY_E_BUSY, "timeout",
                            "batch %lld still processing after %lld s (see: tally batch show %lld)",
                            (long long)batch, (long long)timeout_s, (long long)batch);
        }
        sleep_ms(delay);
        if (delay < 2000)
            delay = delay * 3 / 2;
    }
}

int cmd_ingest(tc_ctx *ctx, int argc, char **argv)
{
    const char *name = NULL, *timeout_str = NULL;
    int no_wait = 0;
    const tc_opt opts[] = {
        { "name", 1, &name, NULL }, { "no-wait", 0, NULL, &no_wait },
        { "timeout", 1, &timeout_str, NULL }, { NULL, 0, NULL, NULL },
    };
    int npos;
    TC_PARSE(ctx, argc, argv, opts, &ingest_help, argv, &npos);
    int64_t project = npos >= 1 ? tc_parse_id(argv[0]) : -1;
    if (project < 0)
        return tc_usage_error(&ingest_help, "expected a PROJECT_ID (a positive integer) first");
    if (npos < 2)
        return tc_usage_error(&ingest_help, "expected at least one PATH");
    int64_t timeout_s = timeout_str ? tc_parse_id(timeout_str) : 0;
    if (timeout_s < 0)
        return tc_usage_error(&ingest_help, "--timeout must be a positive number of seconds");

    tly_error err;
    tc_filelist files;
    tc_files_init(&files);
    json_t *final = NULL;
    int rc = TC_EXIT_FAIL;
    for (int i = 1; i < npos; i++)
        if (tc_files_add_path(&files, argv[i], &err) < 0) {
            tc_report(&err);
            goto out;
        }
    if (files.n == 0) {
        tc_fail_local("no files to upload (hidden files and non-regular files are skipped)");
        goto out;
    }
    if (tc_connect(ctx, 1, &err) < 0) {
        tc_report(&err);
        goto out;
    }
    char default_name[48], stamp[32];
    tly_format_rfc3339(tly_now_ms(), stamp, sizeof stamp);
    snprintf(default_name, sizeof default_name, "cli-%s", stamp);
    int64_t batch = 0;
    if (create_batch(ctx, project, name ? name : default_name, &batch, &err) < 0) {
        tc_report(&err);
        goto out;
    }
    fprintf(stderr, "batch %lld: uploading %zu file%s\n", (long long)batch, files.n,
            files.n == 1 ? "" : "s");

    tc_progress prog;
    tc_progress_init(&prog, files.n, files.total_bytes);
    size_t failed = 0;
    int stopped = 0;
    for (size_t i = 0; i < files.n && !stopped; i++) {
        uint64_t size;
        int u = upload_one(ctx, batch, &files.files[i], &prog, &size);
        if (u != 0)
            failed++;
        stopped = u < 0;
        tc_progress_file_done(&prog, size);
    }
    tc_progress_finish(&prog);
    if (stopped) {
        tc_fail_local("upload stopped; batch %lld is left open", (long long)batch);
        goto out;
    }

    char path[64];
    snprintf(path, sizeof path, "/v1/batches/%lld/close", (long long)batch);
    tc_resp r;
    tc_resp_init(&r);
    int closed = tc_http_json(ctx->http, "POST", path, NULL, &r, &err);
    tc_resp_free(&r);
    if (closed < 0) {
        tc_report(&err);
        goto out;
    }
    if (no_wait) {
        printf("batch %lld closed with %zu file%s; processing continues "
               "(see: tally batch show %lld)\n",
               (long long)batch, files.n - failed, files.n - failed == 1 ? "" : "s",
               (long long)batch);
    } else {
        if (wait_batch(ctx, batch, timeout_s, &final, &err) < 0) {
            tc_report(&err);
            goto out;
        }
        tc_print_batch(final);
    }
    if (failed) {
        printf("%zu file%s failed to upload\n", failed, failed == 1 ? "" : "s");
        goto out;
    }
    if (final && strcmp(tc_jstr(final, "state"), "failed") == 0) {
        tc_fail_local("batch %lld failed", (long long)batch);
        goto out;
    }
    rc = TC_EXIT_OK;
out:
    json_decref(final);
    tc_files_free(&files);
    return rc;
}
