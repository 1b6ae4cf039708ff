/* http.h -- the CLI's small HTTP client over one libcurl easy handle.
 *
 * One tc_http owns one CURL handle for the whole run, so consecutive requests reuse
 * the keep-alive connection (curl_easy_reset keeps the connection cache). Every
 * request sends "Authorization: Bearer <token>" when a token is set.
 *
 * Responses are read into a capped tly_buf (TC_HTTP_MAX_BODY): a server that sends
 * more fails the request instead of filling memory. JSON bodies are parsed into
 * resp->json. Uploads stream from a FILE* through CURLOPT_READFUNCTION, never
 * loading the file.
 *
 * Return convention: 0 when the server answered 2xx; -1 otherwise, with err filled:
 *   - transport failure (connect, timeout, read error): code "transport" or
 *     "local_read", resp->status == 0;
 *   - HTTP 4xx/5xx: code and message from the server's {"error":{...}} body (or
 *     "http_<status>" when the body is not one), resp->status holds the status.
 * resp is always safe to pass to tc_resp_free afterwards.
 */
#ifndef TALLY_CLI_HTTP_H
#define TALLY_CLI_HTTP_H

#include "core/buf.h"
#include "core/error.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#define TC_HTTP_MAX_BODY (16u << 20) /* 16 MiB: far above any JSON page the API returns */

typedef struct tc_http tc_http;

typedef struct {
    long status;   /* HTTP status, 0 when no response arrived */
    tly_buf body;  /* raw body, NUL-terminated */
    json_t *json;  /* parsed body when it is JSON, else NULL (owned) */
} tc_resp;

/* Called during uploads with the bytes of the current file sent so far. */
typedef void (*tc_upload_progress_fn)(void *arg, uint64_t sent, uint64_t total);

/* base_url like "http://host:port" (a trailing '/' is dropped); token may be NULL.
 * Both strings are copied. NULL on out-of-memory or curl failure. */
tc_http *tc_http_new(const char *base_url, const char *token);
void tc_http_free(tc_http *h);
const char *tc_http_base_url(const tc_http *h);
/* How long a transfer may move no bytes before it is given up (default 60 s). A
 * request the server works on for a long time before answering (a large judgments
 * import, one transaction) needs more. */
void tc_http_set_stall_timeout(tc_http *h, long seconds);

void tc_resp_init(tc_resp *r);
void tc_resp_free(tc_resp *r);

/* method + path ("/v1/me"); body is a JSON value (sent compact) or NULL. */
int tc_http_json(tc_http *h, const char *method, const char *path, const json_t *body,
                 tc_resp *resp, tly_error *err);

/* PUT the open file f (size bytes) to path as application/octet-stream. */
int tc_http_put_file(tc_http *h, const char *path, FILE *f, uint64_t size,
                     tc_upload_progress_fn progress, void *progress_arg, tc_resp *resp,
                     tly_error *err);

/* GET path and stream a 2xx body into f (at most max_bytes; more fails with
 * response_too_large, a failed write with local_write); *written (optional) gets the
 * byte count. Error replies land in resp as with tc_http_json. The caller owns f and
 * decides what to do with a partial file. */
int tc_http_download(tc_http *h, const char *path, FILE *f, uint64_t max_bytes, tc_resp *resp,
                     uint64_t *written, tly_error *err);

/* The extras of tc_http_download_ex (all optional: zero the struct for none). */
typedef struct {
    /* extra request headers ("Range: bytes=10-"), NULL-terminated, or NULL */
    const char *const *headers;
    /* Called once the final response's headers are in, before any body byte is
     * written: its status and the ETag / Content-Range / Content-Type values ("" when
     * absent). Return 0 to go on, -1 to abort: the download then fails with code
     * "aborted" (the callback says why). */
    int (*on_headers)(void *arg, long status, const char *etag, const char *content_range,
                      const char *content_type);
    /* Called as body bytes arrive: bytes of this response so far and its announced
     * length (0 when unknown). */
    tc_upload_progress_fn progress;
    void *arg; /* for both callbacks */
} tc_download_opts;

/* tc_http_download with extra headers and callbacks (opts may be NULL); it accepts
 * any content type instead of asking for JSON. A 206 is a 2xx: its body goes to f. */
int tc_http_download_ex(tc_http *h, const char *path, FILE *f, uint64_t max_bytes,
                        const tc_download_opts *opts, tc_resp *resp, uint64_t *written,
                        tly_error *err);

/* Percent-encode one path segment; caller frees. NULL on out-of-memory. */
char *tc_http_escape(tc_http *h, const char *segment);

#endif
