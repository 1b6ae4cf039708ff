/* fetch.c -- downloading URL-list and manifest entries with libcurl.
 *
 * Every transfer is bounded: only http and https (also after redirects), at most
 * url_max_redirects redirects, a connect timeout and a whole-transfer timeout, and a
 * size cap enforced both from Content-Length and while bytes arrive. Bytes are hashed
 * as they are written to the spool, so the file is read once. Failures are sorted
 * into transient (timeouts, refused connections, 5xx, 429: the job is retried) and
 * permanent (4xx, bad URL, too large: the file is rejected with the reason).
 */
#include "ingest/internal.h"
#include "core/fsutil.h"
#include "core/hash.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int fd;
    tly_sha256 *hash;
    uint64_t size;
    uint64_t cap;
    int over_cap;
    int write_failed;
} sink;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    sink *s = userdata;
    size_t n = size * nmemb;
    if (s->cap && s->size + n > s->cap) {
        s->over_cap = 1;
        return 0;   /* abort the transfer */
    }
    if (tly_write_all(s->fd, ptr, n) < 0) {
        s->write_failed = 1;
        return 0;
    }
    tly_sha256_update(s->hash, ptr, n);
    s->size += n;
    return n;
}

static int transient_curl_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return 1;
    default:
        return 0;
    }
}

int tly_fetch_url(tly_ingest *ing, const char *url, tly_local_file *out, tly_error *err)
{
    sink s = {.fd = -1, .cap = ing->cfg.probe.max_bytes};
    s.fd = tly_spool_create_tmp(ing, out->path, sizeof out->path, err);
    if (s.fd < 0)
        return -1;
    out->temp = 1;
    s.hash = tly_sha256_new();
    CURL *c = curl_easy_init();
    if (!c || !s.hash) {
        tly_fail(err, TLY_E_INTERNAL, "internal", "out of memory");
        goto fail;
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, ing->cfg.url_max_redirects);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, ing->cfg.url_connect_timeout_s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, ing->cfg.url_timeout_s);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "tallyd/0.1");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    if (s.cap)
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s.cap);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    int result = -1;
    if (s.over_cap || rc == CURLE_FILESIZE_EXCEEDED) {
        tly_fail(err, TLY_E_UNPROCESSABLE, "too_large", "download is over the %llu-byte limit",
                 (unsigned long long)s.cap);
    } else if (s.write_failed) {
        tly_fail(err, TLY_E_IO, "io_error", "spool write failed");
        result = 1;
    } else if (rc != CURLE_OK) {
        tly_fail(err, TLY_E_UNPROCESSABLE, "fetch_failed", "%s", curl_err[0] ? curl_err : curl_easy_strerror(rc));
        result = transient_curl_error(rc) ? 1 : -1;
    } else if (status < 200 || status >= 300) {
        tly_fail(err, TLY_E_UNPROCESSABLE, "fetch_failed", "server answered HTTP %ld", status);
        result = (status >= 500 || status == 429) ? 1 : -1;
    } else {
        result = 0;
    }
    curl_easy_cleanup(c);
    c = NULL;
    if (result != 0)
        goto fail_with;
    /* No fsync here: the blob store syncs the file when it takes it. Starting the
     * write-back now lets that sync find the data already on its way. */
    sync_file_range(s.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    close(s.fd);
    tly_sha256_finish(s.hash, out->sha256);
    out->size = s.size;
    return 0;
fail:
    result = -1;
fail_with:
    curl_easy_cleanup(c);
    tly_sha256_free(s.hash);
    close(s.fd);
    unlink(out->path);
    out->temp = 0;
    return result;
}
