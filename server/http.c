/* http.c -- see http.h for the request lifecycle. */
#include "server/http.h"
#include "core/fsutil.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/timeutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

unsigned http_status_for(tly_status st)
{
    switch (st) {
    case TLY_OK: return MHD_HTTP_OK;
    case TLY_E_INVALID: return MHD_HTTP_BAD_REQUEST;
    case TLY_E_UNPROCESSABLE: return MHD_HTTP_UNPROCESSABLE_CONTENT;
    case TLY_E_UNAUTHORIZED: return MHD_HTTP_UNAUTHORIZED;
    case TLY_E_FORBIDDEN: return MHD_HTTP_FORBIDDEN;
    case TLY_E_NOT_FOUND: return MHD_HTTP_NOT_FOUND;
    case TLY_E_CONFLICT: return MHD_HTTP_CONFLICT;
    case TLY_E_TOO_LARGE: return MHD_HTTP_CONTENT_TOO_LARGE;
    case TLY_E_UNSUPPORTED: return MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
    case TLY_E_BUSY: return MHD_HTTP_SERVICE_UNAVAILABLE;
    case TLY_E_IO:
    case TLY_E_INTERNAL: return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
    return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

static void set_response(tly_req *r, unsigned status, struct MHD_Response *resp)
{
    if (r->response)
        MHD_destroy_response(r->response);
    r->response = resp;
    r->status = status;
}

void http_reply_text(tly_req *r, unsigned status, const char *content_type, const char *text,
                     size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    set_response(r, status, resp);
}

void http_reply_empty(tly_req *r, unsigned status)
{
    set_response(r, status, MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT));
}

void http_reply_json(tly_req *r, unsigned status, json_t *body)
{
    char *text = body ? tly_json_dump(body) : NULL;
    json_decref(body);
    if (!text) {
        static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        http_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", oom, sizeof oom - 1);
        return;
    }
    size_t len = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
    set_response(r, status, resp);
}

void http_reply_error(tly_req *r, const tly_error *err)
{
    unsigned status = http_status_for(err->status);
    if (status >= 500)
        LOG_ERROR("http", "%s %s -> %u %s: %s", r->method, r->url, status, err->code, err->message);
    json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", err->code[0] ? err->code : tly_status_name(err->status),
                             "message", err->message);
    http_reply_json(r, status, body);
    r->failed = 1;
}

void http_reply_errorf(tly_req *r, tly_status st, const char *code, const char *fmt, ...)
{
    tly_error err;
    err.status = st;
    snprintf(err.code, sizeof err.code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    http_reply_error(r, &err);
}

void http_set_header(tly_req *r, const char *name, const char *value)
{
    if (!r->response)
        return;
    const char *old = MHD_get_response_header(r->response, name);
    char *copy = old ? strdup(old) : NULL;   /* MHD frees the old value while deleting it */
    if (copy)
        MHD_del_response_header(r->response, name, copy);
    free(copy);
    MHD_add_response_header(r->response, name, value);
}

const char *http_request_header(tly_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_query(tly_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

static int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int http_page_args(tly_req *r, int *limit, int64_t *after_id)
{
    const char *l = http_query(r, "limit"), *c = http_query(r, "cursor");
    int64_t v = 100;
    if (l && parse_i64(l, 1, 1000, &v) < 0) {
        http_reply_errorf(r, TLY_E_INVALID, "invalid_query", "limit must be an integer from 1 to 1000");
        return -1;
    }
    *limit = (int)v;
    *after_id = 0;
    if (c && c[0] && parse_i64(c, 0, INT64_MAX, after_id) < 0) {
        http_reply_errorf(r, TLY_E_INVALID, "invalid_query", "cursor is not one this server gave out");
        return -1;
    }
    return 0;
}

json_t *http_page(json_t *items, int limit, int64_t last_id)
{
    json_t *page = json_object();
    int full = (int)json_array_size(items) == limit;
    json_object_set_new(page, "items", items);
    if (full) {
        char cursor[24];
        snprintf(cursor, sizeof cursor, "%" PRId64, last_id);
        json_object_set_new(page, "next_cursor", json_string(cursor));
    } else {
        json_object_set_new(page, "next_cursor", json_null());
    }
    return page;
}

/* ---- blobs: ETag, conditional and range requests -------------------------------- */

/* Parses a single "bytes=a-b" / "bytes=a-" / "bytes=-n" range. 0 ok, -1 unsatisfiable,
 * 1 ignore (malformed or multi-range: serve the whole thing, as RFC 9110 allows). */
static int parse_range(const char *h, uint64_t size, uint64_t *from, uint64_t *to)
{
    if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 1;
    h += 6;
    char *end;
    if (*h == '-') {
        unsigned long long n = strtoull(h + 1, &end, 10);
        if (*end || end == h + 1)
            return 1;
        if (n == 0 || size == 0)
            return -1;
        *from = n >= size ? 0 : size - n;
        *to = size - 1;
        return 0;
    }
    unsigned long long a = strtoull(h, &end, 10);
    if (end == h || *end != '-')
        return 1;
    const char *b = end + 1;
    unsigned long long z = size ? size - 1 : 0;
    if (*b) {
        z = strtoull(b, &end, 10);
        if (*end || z < a)
            return 1;
    }
    if (a >= size)
        return -1;
    *from = a;
    *to = z >= size ? size - 1 : z;
    return 0;
}

/* If the client already has these bytes (If-None-Match), replies 304 and returns 1. */
static int not_modified(tly_req *r, const char *sha256, const char *etag)
{
    const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (!inm || !(strstr(inm, sha256) || strcmp(inm, "*") == 0))
        return 0;
    http_reply_empty(r, MHD_HTTP_NOT_MODIFIED);
    MHD_add_response_header(r->response, MHD_HTTP_HEADER_ETAG, etag);
    return 1;
}

static void add_cache_headers(struct MHD_Response *resp, const char *content_type, const char *etag)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "private, max-age=31536000, immutable");
}

void http_reply_bytes(tly_req *r, const void *data, size_t len, const char *sha256,
                      const char *content_type)
{
    char etag[72];
    snprintf(etag, sizeof etag, "\"%s\"", sha256);
    if (not_modified(r, sha256, etag))
        return;
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    add_cache_headers(resp, content_type, etag);
    set_response(r, MHD_HTTP_OK, resp);
}

/* Where a reply's bytes come from: a file descriptor (sendfile-style, local files
 * and local blobs) or a blob reader without one (S3), read through read_at as MHD
 * asks for blocks. Owned: closed here or by MHD when the reply is done. */
typedef struct {
    int fd;                    /* -1: use reader */
    tly_blob_reader *reader;
    uint64_t from;             /* reader: offset of the reply's first byte */
} reply_source;

static void source_close(reply_source *src)
{
    if (src->fd >= 0)
        close(src->fd);
    tly_blob_reader_close(src->reader);
    src->fd = -1;
    src->reader = NULL;
}

static ssize_t reader_block(void *cls, uint64_t pos, char *buf, size_t max)
{
    reply_source *src = cls;
    ssize_t n = tly_blob_read_at(src->reader, buf, max, src->from + pos);
    return n > 0 ? n : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void reader_done(void *cls)
{
    reply_source *src = cls;
    source_close(src);
    free(src);
}

/* A response of len bytes from src at offset from; src is taken either way. */
static struct MHD_Response *source_response(reply_source *src, uint64_t len, uint64_t from)
{
    if (src->fd >= 0) {
        struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, src->fd, from);
        if (!resp)
            source_close(src);
        return resp;
    }
    reply_source *owned = malloc(sizeof *owned);
    if (!owned) {
        source_close(src);
        return NULL;
    }
    *owned = *src;
    owned->from = from;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(len, 256 * 1024, reader_block, owned, reader_done);
    if (!resp)
        reader_done(owned);
    return resp;
}

/* Serves size bytes of src with ETag "<etag_sha>", If-None-Match -> 304, and a
 * single Range -> 206 (If-Range honoured). */
static void reply_source_bytes(tly_req *r, reply_source *src, uint64_t size, const char *etag_sha,
                               const char *content_type, const char *download_name)
{
    char etag[72];
    snprintf(etag, sizeof etag, "\"%s\"", etag_sha);
    if (not_modified(r, etag_sha, etag)) {
        source_close(src);
        return;
    }
    uint64_t from = 0, to = size ? size - 1 : 0;
    unsigned status = MHD_HTTP_OK;
    const char *range = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
    const char *if_range = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_RANGE);
    if (range && (!if_range || strstr(if_range, etag_sha))) {
        int pr = parse_range(range, size, &from, &to);
        if (pr < 0) {
            source_close(src);
            http_reply_errorf(r, TLY_E_INVALID, "range_not_satisfiable", "range is outside the %" PRIu64 " bytes",
                              size);
            char cr[64];
            snprintf(cr, sizeof cr, "bytes */%" PRIu64, size);
            MHD_add_response_header(r->response, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
            r->status = MHD_HTTP_RANGE_NOT_SATISFIABLE;
            return;
        }
        if (pr == 0)
            status = MHD_HTTP_PARTIAL_CONTENT;
    }
    uint64_t len = size ? to - from + 1 : 0;
    struct MHD_Response *resp = source_response(src, len, from);
    if (!resp) {
        http_reply_errorf(r, TLY_E_IO, "io_error", "cannot read the stored file");
        return;
    }
    add_cache_headers(resp, content_type, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    if (download_name) {
        char cd[320];
        snprintf(cd, sizeof cd, "attachment; filename=\"%s\"", download_name);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, cd);
    }
    if (status == MHD_HTTP_PARTIAL_CONTENT) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, from, to, size);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
    }
    set_response(r, status, resp);
}

void http_reply_blob(tly_req *r, const char *sha256, const char *content_type)
{
    if (http_reply_blob_as(r, sha256, sha256, content_type, NULL) == 1)
        http_reply_errorf(r, TLY_E_IO, "blob_missing", "the stored file is missing");
}

int http_reply_blob_as(tly_req *r, const char *sha256, const char *etag_sha, const char *content_type,
                       const char *download_name)
{
    char etag[72];
    snprintf(etag, sizeof etag, "\"%s\"", etag_sha);
    if (not_modified(r, etag_sha, etag))
        return 0;
    tly_blob_reader *br = NULL;
    tly_error err;
    if (tly_blob_open_read(r->app->blobs, sha256, &br, &err) < 0) {
        if (err.status == TLY_E_NOT_FOUND)
            return 1;
        http_reply_error(r, &err);
        return 0;
    }
    uint64_t size = tly_blob_reader_size(br);
    int fd = tly_blob_reader_fd(br);
    reply_source src = {.fd = -1, .reader = br};
    if (fd >= 0) {   /* zero-copy from the file; MHD closes the fd it is given */
        src.fd = dup(fd);
        src.reader = NULL;
        tly_blob_reader_close(br);
        if (src.fd < 0) {
            http_reply_errorf(r, TLY_E_IO, "io_error", "cannot read the stored file");
            return 0;
        }
    }
    reply_source_bytes(r, &src, size, etag_sha, content_type, download_name);
    return 0;
}

void http_reply_file(tly_req *r, const char *path, const char *etag_sha, const char *content_type,
                     const char *download_name)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0) {
        if (fd >= 0)
            close(fd);
        http_reply_errorf(r, TLY_E_IO, "file_missing", "the stored file is missing");
        return;
    }
    reply_source src = {.fd = fd, .reader = NULL};
    reply_source_bytes(r, &src, (uint64_t)sb.st_size, etag_sha, content_type, download_name);
}

/* ---- the MHD callbacks -------------------------------------------------------------- */

static enum MHD_Result queue(tly_req *r)
{
    if (!r->response)
        http_reply_errorf(r, TLY_E_INTERNAL, "internal", "handler produced no reply");
    MHD_add_response_header(r->response, "X-Content-Type-Options", "nosniff");
    return MHD_queue_response(r->conn, r->status, r->response);
}

/* First call: route, auth, size checks, stream start. Returns 0 to go on reading
 * the body, or -1 when an error reply is ready. */
static int start_request(tly_req *r)
{
    int method_mismatch = 0;
    const char *path = r->url;
    r->route = tly_route_match(r, r->method, path, &method_mismatch);
    if (!r->route) {
        if (!method_mismatch) {
            http_reply_errorf(r, TLY_E_NOT_FOUND, "not_found", "no such endpoint: %s", path);
            return -1;
        }
        char allow[64];
        tly_route_allowed(path, allow, sizeof allow);
        http_reply_errorf(r, TLY_E_INVALID, "method_not_allowed", "%s is not allowed on %s (allowed: %s)",
                          r->method, path, allow);
        r->status = MHD_HTTP_METHOD_NOT_ALLOWED;
        MHD_add_response_header(r->response, MHD_HTTP_HEADER_ALLOW, allow);
        return -1;
    }
    const tly_route *rt = r->route;
    if (!(rt->roles & R_PUBLIC)) {
        tly_error err;
        const char *auth = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (tly_auth_user(r->app, auth, &r->user, &err) < 0) {
            http_reply_error(r, &err);
            if (r->status == MHD_HTTP_UNAUTHORIZED)
                MHD_add_response_header(r->response, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
            return -1;
        }
        r->authed = 1;
        if (!(rt->roles & (1u << r->user.role))) {
            if (r->user.role == TLY_ROLE_WORKER && (rt->flags & F_HIDE_FROM_WORKER))
                http_reply_errorf(r, TLY_E_NOT_FOUND, "not_found", "not found");
            else
                http_reply_errorf(r, TLY_E_FORBIDDEN, "forbidden", "role '%s' may not %s %s",
                                  tly_role_name(r->user.role), r->method, rt->pattern);
            return -1;
        }
    }
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    long long declared = cl ? atoll(cl) : -1;
    if (!(rt->flags & F_STREAM_BODY) && declared > (long long)r->app->cfg.max_json_body) {
        http_reply_errorf(r, TLY_E_TOO_LARGE, "too_large", "request body is over %zu bytes",
                          r->app->cfg.max_json_body);
        return -1;
    }
    if (rt->flags & F_STREAM_BODY) {
        tly_error err;
        if (rt->stream_begin(r, &err) < 0) {
            http_reply_error(r, &err);
            return -1;
        }
    }
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    tly_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->app = cls;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->start_ns = tly_mono_ns();
        tly_buf_init(&r->body, r->app->cfg.max_json_body);
        *con_cls = r;
        if (start_request(r) < 0)
            return queue(r);   /* answered before the body is read */
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!r->failed) {
            tly_error err;
            if (r->route->flags & F_STREAM_BODY) {
                if (r->route->stream_chunk(r, upload_data, *upload_data_size, &err) < 0)
                    http_reply_error(r, &err);
            } else if (tly_buf_append(&r->body, upload_data, *upload_data_size) < 0) {
                http_reply_errorf(r, TLY_E_TOO_LARGE, "too_large", "request body is over %zu bytes",
                                  r->app->cfg.max_json_body);
            }
        }
        *upload_data_size = 0;   /* consumed (or discarded after an error) */
        return MHD_YES;
    }
    if (r->failed)
        return queue(r);
    if (r->route->flags & F_JSON_BODY) {
        tly_error err;
        if (r->body.len == 0 && strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0 &&
            !(r->route->flags & F_JSON_OPTIONAL)) {
            http_reply_errorf(r, TLY_E_INVALID, "invalid_json", "a JSON object body is required");
            return queue(r);
        }
        if (r->body.len && tly_json_parse_object(r->body.data, r->body.len, &r->json, &err) < 0) {
            http_reply_error(r, &err);
            return queue(r);
        }
    }
    r->route->handle(r);
    return queue(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    tly_req *r = *con_cls;
    if (!r)
        return;
    if (r->stream && r->route && r->route->stream_abort)
        r->route->stream_abort(r);
    const char *route = r->route ? r->route->name : "unmatched";
    char labels[128];
    snprintf(labels, sizeof labels, "route=\"%s\",status=\"%u\"", route, r->status);
    tly_counter_add(tly_metrics_counter("tally_http_requests_total", "HTTP requests by route and status", labels), 1);
    snprintf(labels, sizeof labels, "route=\"%s\"", route);
    tly_histogram_observe(tly_metrics_histogram("tally_http_request_duration_seconds",
                                                "HTTP request latency by route", labels),
                          (double)(tly_mono_ns() - r->start_ns) / 1e9);
    if (r->response)
        MHD_destroy_response(r->response);
    json_decref(r->json);
    tly_buf_free(&r->body);
    free(r);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    LOG_WARN("mhd", "%s", msg);
}

struct MHD_Daemon *tly_http_start(tly_app *app, tly_error *err)
{
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)app->cfg.listen_port);
    if (inet_pton(AF_INET, app->cfg.listen_host, &addr.sin_addr) != 1) {
        tly_fail(err, TLY_E_INVALID, "invalid_listen", "--listen host '%s' is not an IPv4 address",
                 app->cfg.listen_host);
        return NULL;
    }
    /* By default every connection gets its own thread: a request waiting for its
     * commit to reach the disk then holds up only itself. With a thread pool
     * (--http-threads N) each pool thread serves many connections in turn, and one
     * waiting request stalls all the others on that thread -- under 64 crowd
     * workers that tripled the p99 latency. The connection limit bounds the threads;
     * idle keep-alive connections close after the connection timeout. */
    int per_connection = app->cfg.http_threads == 0;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
                     (per_connection ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL : MHD_USE_EPOLL);
    /* The logger goes first so MHD's own complaints about later options reach it. */
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, app, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(per_connection ? 0 : app->cfg.http_threads),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)app->cfg.max_connections, MHD_OPTION_THREAD_STACK_SIZE,
        (size_t)(1u << 20), MHD_OPTION_NOTIFY_COMPLETED, on_completed, app, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)120, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)512, MHD_OPTION_END);
    if (!d) {
        tly_fail(err, TLY_E_IO, "listen_failed", "cannot listen on %s:%d: %s", app->cfg.listen_host,
                 app->cfg.listen_port, strerror(errno));
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? info->port : app->cfg.listen_port;
    char path[PATH_MAX + 16], line[300];
    snprintf(path, sizeof path, "%s/tallyd.addr", app->cfg.data_dir);
    snprintf(line, sizeof line, "%s:%d\n", app->cfg.listen_host, port);
    if (tly_write_file_atomic(path, line, strlen(line), 0644) < 0)
        LOG_WARN("http", "cannot write %s: %s", path, strerror(errno));
    LOG_INFO("http", "listening on http://%s:%d", app->cfg.listen_host, port);
    if (app->cfg.public_url[0])
        snprintf(app->base_url, sizeof app->base_url, "%s", app->cfg.public_url);
    else
        snprintf(app->base_url, sizeof app->base_url, "http://%s:%d",
                 strcmp(app->cfg.listen_host, "0.0.0.0") == 0 ? "127.0.0.1" : app->cfg.listen_host, port);
    return d;
}
