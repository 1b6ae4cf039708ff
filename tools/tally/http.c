/* http.c -- see http.h.
 *
 * Each request starts with curl_easy_reset on the one shared handle (clears options
 * left by the previous request, e.g. CURLOPT_UPLOAD, but keeps the open connection),
 * sets the common options (URL, headers, timeouts, capped write callback) and then
 * the per-kind ones. Ownership: tc_http owns the handle and its two strings; each
 * request owns its header list and request body text and frees them before return;
 * the response buffer and parsed JSON belong to the caller's tc_resp.
 */
#include "tools/tally/http.h"

#include <curl/curl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct tc_http {
    CURL *curl;
    char *base;   /* without trailing '/' */
    char *auth;   /* "Authorization: Bearer ..." or NULL */
    char curl_err[CURL_ERROR_SIZE];
    long stall_s; /* CURLOPT_LOW_SPEED_TIME */
    /* set only during tc_http_download: where a 2xx body goes instead of resp->body */
    FILE *sink;
    uint64_t sink_written, sink_max;
    int sink_error; /* 1: write to the file failed, 2: over sink_max, 3: aborted */
    const char *accept; /* the Accept header of the request; NULL: JSON */
};

typedef struct {
    FILE *f;
    int read_error;
} upload_src;

typedef struct {
    tc_upload_progress_fn fn;
    void *arg;
} progress_ctx;

tc_http *tc_http_new(const char *base_url, const char *token)
{
    static int global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        global_done = 1;
    }
    tc_http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->curl = curl_easy_init();
    h->base = strdup(base_url);
    h->stall_s = 60;
    if (token && *token) {
        size_t n = strlen(token) + sizeof "Authorization: Bearer ";
        h->auth = malloc(n);
        if (h->auth)
            snprintf(h->auth, n, "Authorization: Bearer %s", token);
    }
    if (!h->curl || !h->base || (token && *token && !h->auth)) {
        tc_http_free(h);
        return NULL;
    }
    size_t n = strlen(h->base);
    while (n > 0 && h->base[n - 1] == '/')
        h->base[--n] = '\0';
    return h;
}

void tc_http_free(tc_http *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    free(h->base);
    free(h->auth);
    free(h);
}

const char *tc_http_base_url(const tc_http *h)
{
    return h->base;
}

void tc_http_set_stall_timeout(tc_http *h, long seconds)
{
    h->stall_s = seconds > 0 ? seconds : 60;
}

void tc_resp_init(tc_resp *r)
{
    r->status = 0;
    tly_buf_init(&r->body, TC_HTTP_MAX_BODY);
    r->json = NULL;
}

void tc_resp_free(tc_resp *r)
{
    tly_buf_free(&r->body);
    if (r->json)
        json_decref(r->json);
    r->json = NULL;
    r->status = 0;
}

char *tc_http_escape(tc_http *h, const char *segment)
{
    char *e = curl_easy_escape(h->curl, segment, 0);
    if (!e)
        return NULL;
    char *copy = strdup(e); /* hand the caller plain malloc memory */
    curl_free(e);
    return copy;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
    tly_buf *b = userp;
    size_t n = size * nmemb;
    if (tly_buf_append(b, data, n) < 0)
        return 0; /* over the cap: curl aborts with CURLE_WRITE_ERROR */
    return n;
}

/* Download sink: a 2xx body streams to the file, any other body (an error reply) to
 * resp->body as usual. The status is known once the headers are in. */
typedef struct {
    tc_http *h;
    tly_buf *body;
} sink_ctx;

static size_t on_sink_write(char *data, size_t size, size_t nmemb, void *userp)
{
    sink_ctx *s = userp;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(s->h->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299)
        return tly_buf_append(s->body, data, n) < 0 ? 0 : n;
    if (s->h->sink_written + n > s->h->sink_max) {
        s->h->sink_error = 2;
        return 0;
    }
    if (fwrite(data, 1, n, s->h->sink) != n) {
        s->h->sink_error = 1;
        return 0;
    }
    s->h->sink_written += n;
    return n;
}

static size_t on_read(char *dst, size_t size, size_t nmemb, void *userp)
{
    upload_src *src = userp;
    size_t n = fread(dst, 1, size * nmemb, src->f);
    if (n == 0 && ferror(src->f)) {
        src->read_error = 1;
        return CURL_READFUNC_ABORT;
    }
    return n;
}

static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    progress_ctx *p = userp;
    (void)dltotal;
    (void)dlnow;
    p->fn(p->arg, (uint64_t)ulnow, (uint64_t)ultotal);
    return 0;
}

/* Response headers of a tc_http_download_ex, handed to its on_headers callback once
 * the header block of the final response is complete. */
typedef struct {
    tc_http *h;
    const tc_download_opts *o;
    char etag[160], content_range[160], content_type[160];
} header_ctx;

/* Copy the value of a header line (name: value) into dst, trimmed. */
static void header_value(char *dst, size_t dstsz, const char *line, size_t n, size_t namelen)
{
    const char *v = line + namelen, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= dstsz)
        len = dstsz - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    header_ctx *hc = userp;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new response (after a 1xx) */
        hc->etag[0] = hc->content_range[0] = hc->content_type[0] = '\0';
        return n;
    }
    if (n <= 2 && (data[0] == '\r' || data[0] == '\n')) { /* end of the header block */
        long status = 0;
        curl_easy_getinfo(hc->h->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || !hc->o->on_headers)
            return n;
        if (hc->o->on_headers(hc->o->arg, status, hc->etag, hc->content_range,
                              hc->content_type) < 0) {
            hc->h->sink_error = 3;
            return 0; /* curl aborts the transfer */
        }
        return n;
    }
    static const struct {
        const char *name;
        size_t off;
    } wanted[] = {
        { "etag:", offsetof(header_ctx, etag) },
        { "content-range:", offsetof(header_ctx, content_range) },
        { "content-type:", offsetof(header_ctx, content_type) },
    };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        size_t len = strlen(wanted[i].name);
        if (n >= len && strncasecmp(data, wanted[i].name, len) == 0)
            header_value((char *)hc + wanted[i].off, sizeof hc->etag, data, n, len);
    }
    return n;
}

static int on_download_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow,
                                curl_off_t ultotal, curl_off_t ulnow)
{
    const tc_download_opts *o = userp;
    (void)ultotal;
    (void)ulnow;
    o->progress(o->arg, (uint64_t)dlnow, (uint64_t)dltotal);
    return 0;
}

static tly_status status_kind(long status)
{
    switch (status) {
    case 400: return TLY_E_INVALID;
    case 401: return TLY_E_UNAUTHORIZED;
    case 403: return TLY_E_FORBIDDEN;
    case 404: return TLY_E_NOT_FOUND;
    case 409: return TLY_E_CONFLICT;
    case 413: return TLY_E_TOO_LARGE;
    case 415: return TLY_E_UNSUPPORTED;
    case 422: return TLY_E_UNPROCESSABLE;
    case 503: return TLY_E_BUSY;
    default: return status >= 500 ? TLY_E_INTERNAL : TLY_E_INVALID;
    }
}

/* Turn a non-2xx response into err, using the server's error body when present. */
static int http_error(const tc_resp *resp, tly_error *err)
{
    json_t *e = resp->json ? json_object_get(resp->json, "error") : NULL;
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (code) {
        return tly_fail(err, status_kind(resp->status), code, "%s (HTTP %ld)",
                        msg ? msg : "no message", resp->status);
    }
    char fallback[32];
    snprintf(fallback, sizeof fallback, "http_%ld", resp->status);
    /* show the start of a non-JSON body: often a proxy's error page */
    int show = resp->body.len > 200 ? 200 : (int)resp->body.len;
    return tly_fail(err, status_kind(resp->status), fallback, "HTTP %ld%s%.*s", resp->status,
                    show ? ": " : "", show, resp->body.data ? resp->body.data : "");
}

/* Common options, perform, status and JSON decoding. headers is consumed (freed). */
static int perform(tc_http *h, const char *method, const char *path, struct curl_slist *headers,
                   tc_resp *resp, tly_error *err, int *local_read_error)
{
    CURL *c = h->curl;
    char *url = NULL;
    size_t n = strlen(h->base) + strlen(path) + 1;
    int rc = -1;
    url = malloc(n);
    if (!url) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    snprintf(url, n, "%s%s", h->base, path);

    struct curl_slist *more =
        curl_slist_append(headers, h->accept ? h->accept : "Accept: application/json");
    if (more && h->auth) {
        headers = more;
        more = curl_slist_append(headers, h->auth);
    }
    if (!more) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    headers = more;

    h->curl_err[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    sink_ctx sc = { h, &resp->body };
    if (h->sink) {
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_sink_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &sc);
    } else {
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp->body);
    }
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->curl_err);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    /* no overall timeout (uploads may be long); give up on a stalled transfer */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, h->stall_s);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "tally-cli/1");
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");

    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        resp->status = 0;
        if (local_read_error && *local_read_error)
            tly_fail(err, TLY_E_IO, "local_read", "reading the local file failed");
        else if (h->sink && h->sink_error == 1)
            tly_fail(err, TLY_E_IO, "local_write", "writing the local file failed");
        else if (h->sink && h->sink_error == 3)
            tly_fail(err, TLY_E_IO, "aborted", "%s %s: the download was stopped", method, url);
        else if (h->sink && h->sink_error == 2)
            tly_fail(err, TLY_E_TOO_LARGE, "response_too_large",
                     "%s %s: the file is larger than %llu bytes", method, url,
                     (unsigned long long)h->sink_max);
        else if (cc == CURLE_WRITE_ERROR)
            tly_fail(err, TLY_E_TOO_LARGE, "response_too_large",
                     "%s %s: the response is larger than %u bytes", method, url,
                     TC_HTTP_MAX_BODY);
        else
            tly_fail(err, TLY_E_IO, "transport", "%s %s: %s", method, url,
                     h->curl_err[0] ? h->curl_err : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    if (resp->body.len > 0) {
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        if (!ct || strstr(ct, "json"))
            resp->json = json_loadb(resp->body.data, resp->body.len, 0, NULL);
    }
    if (resp->status < 200 || resp->status > 299) {
        http_error(resp, err);
        goto out;
    }
    rc = 0;
out:
    curl_slist_free_all(headers);
    free(url);
    return rc;
}

int tc_http_json(tc_http *h, const char *method, const char *path, const json_t *body,
                 tc_resp *resp, tly_error *err)
{
    char *text = NULL;
    struct curl_slist *headers = NULL;
    curl_easy_reset(h->curl);
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        headers = curl_slist_append(NULL, "Content-Type: application/json");
        if (!text || !headers) {
            free(text);
            curl_slist_free_all(headers);
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        }
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    int rc = perform(h, method, path, headers, resp, err, NULL);
    free(text);
    return rc;
}

int tc_http_put_file(tc_http *h, const char *path, FILE *f, uint64_t size,
                     tc_upload_progress_fn progress, void *progress_arg, tc_resp *resp,
                     tly_error *err)
{
    upload_src src = { f, 0 };
    progress_ctx pc = { progress, progress_arg };
    curl_easy_reset(h->curl);
    struct curl_slist *headers =
        curl_slist_append(NULL, "Content-Type: application/octet-stream");
    if (!headers)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    curl_easy_setopt(h->curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h->curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h->curl, CURLOPT_READDATA, &src);
    curl_easy_setopt(h->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    if (progress) {
        curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, &pc);
        curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
    }
    return perform(h, "PUT", path, headers, resp, err, &src.read_error);
}

int tc_http_download(tc_http *h, const char *path, FILE *f, uint64_t max_bytes, tc_resp *resp,
                     uint64_t *written, tly_error *err)
{
    curl_easy_reset(h->curl);
    h->sink = f;
    h->sink_written = 0;
    h->sink_max = max_bytes;
    h->sink_error = 0;
    struct curl_slist *headers = NULL; /* perform adds Accept and Authorization */
    int rc = perform(h, "GET", path, headers, resp, err, NULL);
    if (written)
        *written = h->sink_written;
    h->sink = NULL;
    return rc;
}

int tc_http_download_ex(tc_http *h, const char *path, FILE *f, uint64_t max_bytes,
                        const tc_download_opts *opts, tc_resp *resp, uint64_t *written,
                        tly_error *err)
{
    static const tc_download_opts none;
    const tc_download_opts *o = opts ? opts : &none;
    curl_easy_reset(h->curl);
    h->sink = f;
    h->sink_written = 0;
    h->sink_max = max_bytes;
    h->sink_error = 0;
    struct curl_slist *headers = NULL; /* perform adds Accept and Authorization */
    for (const char *const *x = o->headers; x && *x; x++) {
        struct curl_slist *more = curl_slist_append(headers, *x);
        if (!more) {
            curl_slist_free_all(headers);
            h->sink = NULL;
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        }
        headers = more;
    }
    header_ctx hc = { .h = h, .o = o };
    curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, &hc);
    if (o->progress) {
        curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, on_download_progress);
        curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, (void *)o);
        curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
    }
    h->accept = "Accept: */*";
    int rc = perform(h, "GET", path, headers, resp, err, NULL);
    h->accept = NULL;
    if (written)
        *written = h->sink_written;
    h->sink = NULL;
    return rc;
}
