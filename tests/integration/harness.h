/* harness.h -- start a real tallyd on loopback and talk to it over HTTP, for the
 * cmocka integration tests (tests/integration/it_*.c).
 *
 * Everything returns a status instead of aborting, so tests write
 *     assert_int_equal(it_server_start(&s, NULL), 0);
 * and get cmocka's report. Typical test:
 *
 *     it_server s;
 *     assert_int_equal(it_server_start(&s, NULL), 0);
 *     char *tok = it_create_user(&s, "pm", "manager");
 *     ... it_request_json(&s, "GET", "/v1/me", tok, NULL, &r) ...
 *     it_response_free(&r);
 *     free(tok);
 *     assert_int_equal(it_server_stop(&s), 0);   // exit 0 and no sanitizer report
 *     it_server_cleanup(&s);                     // always: frees and removes data dir
 *
 * Processes: tallyd and the CLI run as children with PR_SET_PDEATHSIG, so they die
 * with a crashed test. tallyd's stdout+stderr go to DIR/tallyd.log (appended across
 * restarts); sanitizer reports of the server land there and make it_server_stop fail.
 * The CLI (it_run_cli) gets XDG_CONFIG_HOME=DIR/cli-config so `tally login` never
 * touches the real user's config.
 */
#ifndef TALLY_IT_HARNESS_H
#define TALLY_IT_HARNESS_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;              /* 0 when not running */
    int port;
    char data_dir[4096];    /* "" until created */
    char base_url[64];      /* "http://127.0.0.1:PORT" */
    char admin_token[128];
    char log_path[4200];    /* DIR/tallyd.log */
    char **extra_args;      /* owned NULL-terminated copy, reused by it_server_restart */
    long log_offset;        /* where this run's part of the log starts */
    char db_name[40];       /* PostgreSQL runs (harness_db.c): this server's database, else "" */
    char db_url[1200];      /* passed to tallyd as --db when set */
    char blobs_url[1400];   /* passed to tallyd as --blobs when set (S3 runs, shared nodes) */
} it_server;

typedef struct {
    long status;            /* HTTP status; 0 if the request failed at transport level */
    char *body;             /* NUL-terminated (malloc'd), "" if empty */
    size_t len;
    json_t *json;           /* parsed if the body is JSON, else NULL */
    char content_type[128];
    char etag[128];
} it_response;

/* Start tallyd on a fresh temp data dir: TALLYD_PATH --data DIR --listen 127.0.0.1:0
 * [extra_args...] (extra_args NULL-terminated, may be NULL). Waits up to 20 s for
 * DIR/tallyd.addr and a 200 from /healthz, reads DIR/admin.token. 0 or -1 (log tail
 * printed). Call it_server_cleanup afterwards in every case. */
int it_server_start(it_server *s, const char *const *extra_args);
/* SIGTERM, wait up to 20 s (then SIGKILL). 0 only if it exited with status 0 and its
 * log has no sanitizer report; otherwise prints the log tail and returns -1. */
int it_server_stop(it_server *s);
/* SIGKILL + waitpid (simulated crash). */
void it_server_kill(it_server *s);
/* Start again on the same data dir with the same extra args (the port may change).
 * The server must be stopped or killed first. */
int it_server_restart(it_server *s);
/* The same with other extra args (they replace the old ones for later restarts). */
int it_server_restart_args(it_server *s, const char *const *extra_args);
/* Kill the server if still running, free extra_args, remove the data dir. Idempotent. */
void it_server_cleanup(it_server *s);

/* harness_db.c: with TALLY_TEST_DB (a PostgreSQL URL) or TALLY_TEST_DB_FILE (a file
 * holding one) set, every server gets a fresh database (it_server_start creates it,
 * it_server_cleanup drops it) and tallyd runs with --db on it. */
int it_db_is_postgres(void);
int it_db_create(it_server *s);   /* 0 (also when on SQLite) or -1 */
void it_db_drop(it_server *s);
/* The next it_server_start runs a second node on with's store (PostgreSQL database or
 * SQLite file) and blob store (the same bucket prefix, or with's DATA/blobs) instead
 * of fresh ones, with with's admin token; with must outlive it. */
void it_db_share(const it_server *with);

/* With TALLY_TEST_S3_FILE set (a file holding the endpoint of an S3-compatible server,
 * as scripts/s3-server.sh writes it) every server stores its blobs in that server,
 * under a bucket prefix of its own: the PostgreSQL + S3 configuration. */
int it_blobs_are_s3(void);
/* Where the bytes of blob sha256 of s can be read (and damaged) as a local file: DATA/
 * blobs/ab/<sha>, or the S3 test server's own file for the object. -1 if unknown. */
int it_blob_file(const it_server *s, const char *sha256, char *out, size_t size);

/* One HTTP request. path starts with '/'; token, content_type and body may be NULL.
 * Returns 0 when a response arrived (any status; check out->status), -1 on transport
 * failure (out->status 0). Always it_response_free(out) afterwards. */
int it_request(it_server *s, const char *method, const char *path, const char *token,
               const char *content_type, const void *body, size_t len, it_response *out);
/* Same with a JSON text body (Content-Type: application/json) or none. */
int it_request_json(it_server *s, const char *method, const char *path, const char *token,
                    const char *json_text_or_NULL, it_response *out);
/* A JSON request (body a JSON text or NULL) whose status must be `status` (asserted,
 * with the body printed on a mismatch); the reply's JSON (new reference) or NULL. */
json_t *it_json_requestf(it_server *s, const char *method, const char *token, const char *body, long status,
                         const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* GET with a printf-style path: it_getf(s, tok, &r, "/v1/items/%lld", (long long)id). */
int it_getf(it_server *s, const char *token, it_response *out, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Any method with a printf-style path and an optional JSON text body (NULL: none):
 * it_requestf(s, "PUT", tok, "{...}", &r, "/v1/items/%lld/gold", (long long)id).
 * A path longer than 2047 bytes is cut. */
int it_requestf(it_server *s, const char *method, const char *token, const char *body,
                it_response *out, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* PUT /v1/batches/{b}/files/{urlencoded name}, streaming the file at path. */
int it_upload_file(it_server *s, const char *token, int64_t batch_id, const char *name,
                   const char *path, it_response *out);
/* PUT of in-memory bytes as a batch file. */
int it_upload_bytes(it_server *s, const char *token, int64_t batch_id, const char *name,
                    const void *data, size_t len, it_response *out);
void it_response_free(it_response *r);
/* The "code" / "message" of an error reply {"error":{"code","message"}}; "" if absent. */
const char *it_err_code(const it_response *r);
const char *it_err_msg(const it_response *r);

/* cmocka assertions on a response (include <cmocka.h> before using them). On a
 * mismatch they print the location, what was expected and the body, then fail.
 * IT_ASSERT_STATUS: the HTTP status is st.
 * IT_ASSERT_ERROR: status st and an error reply with the given code and a non-empty
 * message. r is an it_response (not a pointer) and is evaluated several times. */
#define IT_ASSERT_STATUS(r, st)                                                                \
    do {                                                                                       \
        if ((r).status != (st))                                                                \
            fprintf(stderr, "%s:%d: expected HTTP %d, got %ld: %.2000s\n", __FILE__, __LINE__, \
                    (int)(st), (r).status, (r).body ? (r).body : "");                          \
        assert_int_equal((r).status, (st));                                                    \
    } while (0)

#define IT_ASSERT_ERROR(r, st, code)                                                           \
    do {                                                                                       \
        if ((r).status != (st) || strcmp(it_err_code(&(r)), (code)) != 0)                      \
            fprintf(stderr, "%s:%d: expected %d %s, got HTTP %ld: %.2000s\n", __FILE__,        \
                    __LINE__, (int)(st), (code), (r).status, (r).body ? (r).body : "");        \
        assert_int_equal((r).status, (st));                                                    \
        assert_non_null((r).json);                                                             \
        assert_true(json_is_object(json_object_get((r).json, "error")));                       \
        assert_string_equal(it_err_code(&(r)), (code));                                        \
        assert_true(strlen(it_err_msg(&(r))) > 0);                                             \
    } while (0)

/* One request and its check, for the common "request, assert, free" step:
 * it_requestf(s, method, token, body, ..., fmt, ...) must get a response, which must
 * pass IT_ASSERT_STATUS(st) / IT_ASSERT_ERROR(st, code); it is then freed. body is a
 * JSON text or NULL; the trailing arguments are the printf-style path. */
#define IT_EXPECT_STATUSF(s, method, token, body, st, ...)                                     \
    do {                                                                                       \
        it_response it_r_;                                                                     \
        assert_int_equal(it_requestf((s), (method), (token), (body), &it_r_, __VA_ARGS__), 0); \
        IT_ASSERT_STATUS(it_r_, st);                                                           \
        it_response_free(&it_r_);                                                              \
    } while (0)

#define IT_EXPECT_ERRORF(s, method, token, body, st, code, ...)                                \
    do {                                                                                       \
        it_response it_r_;                                                                     \
        assert_int_equal(it_requestf((s), (method), (token), (body), &it_r_, __VA_ARGS__), 0); \
        IT_ASSERT_ERROR(it_r_, st, code);                                                      \
        it_response_free(&it_r_);                                                              \
    } while (0)

/* POST /v1/users with the admin token; the new user's token (malloc'd) or NULL. */
char *it_create_user(it_server *s, const char *name, const char *role);
/* The usual start of a test (group): it_server_start(s, extra_args), then with the
 * admin token, for each pointer that is not NULL, the user "pm" (manager) into *mgr,
 * "w1" (worker) into *worker and "ml" (consumer) into *consumer (malloc'd tokens, the
 * caller frees them). 0, or -1 if the server or a user failed: then the tokens are
 * freed and NULL, and the server is cleaned up (it_server_cleanup). */
int it_server_start_users(it_server *s, const char *const *extra_args, char **mgr, char **worker,
                          char **consumer);
/* The usual end of a test group: it_server_stop if the server runs (else -1), then
 * it_server_cleanup in any case; returns it_server_stop's result. */
int it_server_finish(it_server *s);
/* POST /v1/projects; the project id or -1. template_json is the template's JSON text. */
int64_t it_create_project(it_server *s, const char *token, const char *name, const char *media,
                          const char *template_json);
/* POST /v1/projects/{p}/batches with source_json as "source" (NULL: {"kind":"upload"});
 * the batch id or -1. */
int64_t it_create_batch(it_server *s, const char *token, int64_t project_id, const char *name,
                        const char *source_json);
/* POST /v1/batches/{b}/close; returns the HTTP status (200 expected) or -1. */
long it_close_batch(it_server *s, const char *token, int64_t batch_id);
/* Polls GET /v1/batches/{b} until state is done|failed; the batch (new reference) or
 * NULL on timeout / error. */
json_t *it_wait_batch(it_server *s, const char *token, int64_t batch_id, int timeout_ms);

/* Run TALLY_CLI_PATH args... with TALLY_URL set to the server and TALLY_TOKEN to
 * token (unset if NULL), XDG_CONFIG_HOME=DIR/cli-config. args is NULL-terminated and
 * excludes the program name. out / err_out (optional) receive stdout / stderr
 * (malloc'd, NUL-terminated). Returns the exit status (0..255); 128+N if killed by
 * signal N or timed out (120 s); -1 if it could not run or its stderr holds a
 * sanitizer report (printed). */
int it_run_cli(it_server *s, const char *token, const char *const *args, char **out,
               char **err_out);
/* it_run_cli with input (a NUL-terminated text, NULL: empty) as the CLI's stdin, fed
 * from a file, so the CLI sees a regular file, not a terminal, and end of input after
 * the text. */
int it_run_cli_input(it_server *s, const char *token, const char *const *args,
                     const char *input, char **out, char **err_out);

/* Asserting helpers: the steps several test files share. Unlike the functions above
 * they fail the running cmocka test (assert_*) instead of returning a status. */
/* A distinct valid JPEG: base (len bytes, starting with the SOI FF D8) with a COM
 * segment "<label> <n>" right after the SOI; malloc'd, its length in *out_len. */
unsigned char *it_jpeg_variant(const unsigned char *base, size_t len, const char *label, int n,
                               size_t *out_len);
/* it_create_user with the unique name "<role>-<++*seq>"; its token (malloc'd). */
char *it_new_user(it_server *s, int *seq, const char *role);
/* POST /v1/projects with body (a JSON text) as token; asserts 201 and an id > 0,
 * returns the id. */
int64_t it_post_project(it_server *s, const char *token, const char *body);
/* Waits (60 s at most) until n results of project are done, then accepts them all in
 * an acceptance lot (every sampled item "ok"), asserting the lot is accepted. */
void it_release_all(it_server *s, const char *mgr, int64_t project, int n);
/* A project whose items get exactly `overlap` judgments each: no quiz, no gold, no
 * dynamic overlap, no trust or confidence floor (the multi-node tests count on it). */
int64_t it_post_fixed_overlap_project(it_server *s, const char *token, const char *name, const char *template_json,
                                      int overlap);
/* Closes the batch, waits up to 120 s for it and asserts state "done" with `accepted`
 * files accepted (the batch is printed when the count differs). */
void it_finish_batch(it_server *s, const char *token, int64_t batch, int accepted);
/* One batch named batch_name of test data files (by name), each upload 201, then
 * it_finish_batch with all n accepted. */
void it_add_files(it_server *s, const char *token, int64_t project, const char *batch_name,
                  const char *const *names, int n);
/* One batch "jpegs" of n distinct JPEG items: it_jpeg_variant(photo.jpg, label,
 * first + i) uploaded as "<prefix>NNNN.jpg" (NNNN = first + i), then it_finish_batch. */
void it_add_jpegs(it_server *s, const char *token, int64_t project, const char *label,
                  const char *prefix, int n, int first);
/* POST /v1/projects/{p}/work/next as tok: the 200 body (new reference, with an
 * assignment_id and an item id > 0) or NULL on 204 (no body). Any other status fails. */
json_t *it_next_task(it_server *s, const char *tok, int64_t project);
/* it_next_task that must give a task; its assignment id, the item id into *item (may
 * be NULL). */
int64_t it_take(it_server *s, const char *tok, int64_t project, int64_t *item);
/* A test group's server with one manager: curl_global_init, then it_server_start_users
 * (the manager's token into *mgr); cmocka's group-setup result (0 or -1). */
int it_group_start(it_server *s, char **mgr);
/* Its end: it_server_finish, the token freed (*mgr NULL), curl_global_cleanup;
 * it_server_finish's result. */
int it_group_finish(it_server *s, char **mgr);
/* Pre-labeling (the it_prelabel* tests). The workflow their model projects start from:
 * one judgment per item, no quiz, no test questions, no trust floor, predictions shown
 * to workers, auto_accept 1 (docs/API.md: routes nothing past the workers). */
#define IT_PRELABEL_WORKFLOW                                                                 \
    "{\"overlap\":1,\"quiz\":{\"size\":0},\"gold_rate\":0,\"min_trust\":0,"                      \
    "\"prelabel\":{\"show\":true,\"auto_accept\":1}}"
/* it_post_project of a project named "<prefix>-<++*seq>" with media, template (JSON
 * text) and IT_PRELABEL_WORKFLOW; returns its id. */
int64_t it_prelabel_project(it_server *s, const char *token, int *seq, const char *prefix,
                            const char *media, const char *template_json);
/* Polls GET /v1/items/{item}/predictions every 100 ms until it lists a prediction by
 * model (its "model" member; NULL: any, the first) and returns it (new reference);
 * fails the test after timeout_ms. */
json_t *it_wait_prediction(it_server *s, const char *token, int64_t item, const char *model,
                           int timeout_ms);
/* it_run_cli (input NULL) or it_run_cli_input with the NULL-terminated const char *
 * arguments in ap (at most 31 are used); prints the command's stdout / stderr when it
 * fails or IT_VERBOSE is set. Returns it_run_cli's status. */
int it_run_cli_va(it_server *s, const char *token, const char *input, char **out, char **err,
                  va_list ap);

/* Small helpers. */
/* TALLY_TEST_DATA "/" name into buf; returns buf. */
const char *it_test_data(const char *name, char *buf, size_t bufsz);
/* 1 if the file exists. */
int it_file_exists(const char *path);
/* The whole file (malloc'd, one spare byte after the end) and its length in *len,
 * or NULL (nothing printed: a missing file is an expected case for some callers). */
unsigned char *it_load_file(const char *path, size_t *len);
/* it_load_file of TALLY_TEST_DATA "/" name; prints the path when it fails. */
unsigned char *it_load_test_data(const char *name, size_t *len);
/* Copies the file from to the path to (created or truncated). 0 or -1. */
int it_copy_file(const char *from, const char *to);
/* Entries of dir (not . / ..) whose name ends with suffix (NULL: all), each printed
 * as "found DIR/NAME" when verbose; -1 if dir cannot be opened. */
int it_count_entries(const char *dir, const char *suffix, int verbose);
/* The value of the Prometheus text line that starts with series followed by a space,
 * or -1 when there is none. */
double it_metric_value(const char *text, const char *series);
/* Copies a header value of n bytes to dst (NUL-terminated, cut to dstsz), without
 * leading blanks and trailing blanks / CR / LF. */
void it_copy_header_value(char *dst, size_t dstsz, const char *v, size_t n);
/* Sleeps ms milliseconds (resumed after a signal). */
void it_sleep_ms(int ms);
/* CLOCK_MONOTONIC in milliseconds. */
long long it_now_ms(void);
/* Write len bytes to DIR/name (inside the server's data dir, so cleanup removes it);
 * the full path goes to path_out. 0 or -1. */
int it_write_temp(it_server *s, const char *name, const void *data, size_t len, char *path_out,
                  size_t path_outsz);
/* Integer member of an object, or -1 when missing / not an integer. */
int64_t it_json_int(const json_t *obj, const char *key);
/* String member, or "" when missing. */
const char *it_json_str(const json_t *obj, const char *key);
/* The first element of array whose string member key equals value (borrowed), or NULL. */
json_t *it_json_find(const json_t *array, const char *key, const char *value);
/* 1 if the text contains a sanitizer report. */
int it_has_sanitizer_report(const char *text);

#endif
