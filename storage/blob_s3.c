/* blob_s3.c -- the S3-compatible blob backend (AWS S3, MinIO, Ceph RGW, s3rver).
 *
 * URL: s3://BUCKET[/PREFIX]?endpoint=http://host:port&region=R&tmp=DIR&create=1
 *   endpoint   default https://s3.REGION.amazonaws.com (virtual-hosted style:
 *              BUCKET.s3.REGION.amazonaws.com); with an endpoint, path style
 *              (endpoint/BUCKET/key), which every S3 clone understands.
 *   region     default $AWS_REGION, $AWS_DEFAULT_REGION, then us-east-1.
 *   tmp        where blobs being written are spooled (default $TMPDIR or /tmp).
 *   create=1   create the bucket when it does not exist (tests, first start).
 * Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.
 *
 * Objects are named PREFIX/ab/<sha256> like the local layout. Every request is
 * signed by sigv4.c with the payload's SHA-256 in x-amz-content-sha256: for a whole
 * blob that is its name, for a multipart part it is computed by one read of the part
 * before it is streamed.
 *
 * Writes: a blob's name is only known once all its bytes are in, so a streaming
 * write spools to a local temp file (sink), and commit uploads that file: one PUT up
 * to MULTIPART_AT, multipart uploads of PART_SIZE parts beyond (aborted on failure,
 * so no orphaned parts are billed). Uploads stream from the file with a read
 * callback: no blob is ever whole in memory. A HEAD first skips bytes the bucket
 * already has (names are content hashes). S3 acknowledges a PUT only once it is
 * durable, which is the guarantee the store promises.
 *
 * Reads: HEAD for the size, then ranged GETs (read_at), so HTTP Range requests and
 * the export's copy loop work unchanged; there is no fd (reader_fd is NULL), and
 * the server streams through read_at instead of sendfile.
 *
 * Presigned URLs (s3_presign) let the server redirect media downloads to the bucket
 * (tallyd --media-redirect), so workers' image and audio bytes skip the node.
 *
 * Every request is retried with backoff (ATTEMPTS, 200 ms doubling) on transport
 * errors, 5xx and 429; other 4xx are final. Curl handles are pooled (POOL_MAX) so
 * keep-alive connections are reused across requests and threads.
 */
#include "core/buf.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "storage/blob_backend.h"
#include "storage/sigv4.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ATTEMPTS 4
#define MULTIPART_AT (16ull << 20)
#define PART_SIZE (8ull << 20)
#define MAX_PARTS 10000
#define POOL_MAX 16
#define MAX_REPLY (1u << 20)   /* XML replies (multipart ids, errors) */
#define CONNECT_TIMEOUT_MS 5000L
#define LOW_SPEED_S 30L        /* abort a transfer slower than 1 KB/s for this long */
#define TMP_PREFIX "tally-s3-"
#define SWEEP_AGE_S 3600

struct s3 {
    char bucket[64];
    char prefix[256];          /* "" or "dir/" */
    char base[512];            /* scheme://host[:port] requests go to */
    char host[300];            /* the Host header (signed) */
    int path_style;
    char region[64];
    char *access_key, *secret_key, *session_token;
    char tmp[PATH_MAX];
    pthread_mutex_t pool_mu;
    CURL *pool[POOL_MAX];
    int pooled;
};

struct sink {
    int fd;
    char path[PATH_MAX];
};

struct reader {
    struct s3 *s3;
    char sha256[65];
    uint64_t size;
};

/* ---- requests --------------------------------------------------------------------- */

/* What a request sends: nothing, a memory buffer, or a file region. */
typedef struct {
    const char *mem;
    size_t mem_len;
    int fd;                    /* -1: none */
    uint64_t off, len;         /* file region */
    uint64_t sent;
} payload;

/* What it receives: a capped buffer, or a caller buffer for ranged reads. */
typedef struct {
    tly_buf *buf;              /* may be NULL: the body is dropped */
    char *dst;
    size_t dst_cap, dst_len;
    char etag[130];            /* the ETag response header, quotes included */
} reply;

static size_t on_read(char *out, size_t sz, size_t n, void *arg)
{
    payload *p = arg;
    uint64_t left = p->len - p->sent;
    size_t want = sz * n < left ? sz * n : (size_t)left;
    if (want == 0)
        return 0;
    ssize_t got = pread(p->fd, out, want, (off_t)(p->off + p->sent));
    if (got <= 0)
        return CURL_READFUNC_ABORT;
    p->sent += (uint64_t)got;
    return (size_t)got;
}

static size_t on_write(char *in, size_t sz, size_t n, void *arg)
{
    reply *r = arg;
    size_t len = sz * n;
    if (r->dst) {
        if (r->dst_len + len > r->dst_cap)
            return 0;   /* more than the range asked for: fail the transfer */
        memcpy(r->dst + r->dst_len, in, len);
        r->dst_len += len;
        return len;
    }
    if (r->buf && tly_buf_append(r->buf, in, len) < 0)
        return 0;
    return len;
}

static size_t on_header(char *line, size_t sz, size_t n, void *arg)
{
    reply *r = arg;
    size_t len = sz * n;
    if (len > 5 && strncasecmp(line, "etag:", 5) == 0) {
        size_t i = 5;
        while (i < len && line[i] == ' ')
            i++;
        size_t end = len;
        while (end > i && (line[end - 1] == '\r' || line[end - 1] == '\n' || line[end - 1] == ' '))
            end--;
        if (end - i < sizeof r->etag) {
            memcpy(r->etag, line + i, end - i);
            r->etag[end - i] = 0;
        }
    }
    return len;
}

static CURL *handle_get(struct s3 *s)
{
    CURL *c = NULL;
    pthread_mutex_lock(&s->pool_mu);
    if (s->pooled)
        c = s->pool[--s->pooled];
    pthread_mutex_unlock(&s->pool_mu);
    if (c)
        curl_easy_reset(c);
    else
        c = curl_easy_init();
    return c;
}

static void handle_put(struct s3 *s, CURL *c)
{
    pthread_mutex_lock(&s->pool_mu);
    if (s->pooled < POOL_MAX) {
        s->pool[s->pooled++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&s->pool_mu);
    if (c)
        curl_easy_cleanup(c);
}

/* The request path of an object key ("" = the bucket itself). */
static void request_path(const struct s3 *s, const char *key, char *out, size_t outsz)
{
    if (s->path_style)
        snprintf(out, outsz, "/%s%s%s", s->bucket, *key ? "/" : "", key);
    else
        snprintf(out, outsz, "/%s", key);
}

static void object_key(const struct s3 *s, const char *sha256, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s%.2s/%s", s->prefix, sha256, sha256);
}

/* One signed request with retries. query: raw pairs (canonicalised here). Returns the
 * final HTTP status (>= 200), or -1 with err filled when no answer came. */
static long s3_request(struct s3 *s, const char *method, const char *key, const tly_sigv4_pair *query,
                       size_t nquery, payload *body, const char *payload_sha256, const char *range, reply *out,
                       uint64_t *length_out, tly_error *err)
{
    char path[800], canon_query[2048], url[4096];
    request_path(s, key, path, sizeof path);
    if (tly_sigv4_query(query, nquery, canon_query, sizeof canon_query) < 0)
        return tly_fail(err, TLY_E_INTERNAL, "s3_request", "query too long");
    char enc_path[2400];
    if (tly_sigv4_encode(path, 1, enc_path, sizeof enc_path) < 0)
        return tly_fail(err, TLY_E_INTERNAL, "s3_request", "path too long");
    int ulen = snprintf(url, sizeof url, "%s%s%s%s", s->base, enc_path, canon_query[0] ? "?" : "", canon_query);
    if (ulen < 0 || (size_t)ulen >= sizeof url)
        return tly_fail(err, TLY_E_INTERNAL, "s3_request", "URL too long");
    const char *hash = payload_sha256 ? payload_sha256 : TLY_SIGV4_EMPTY_SHA256;
    tly_sigv4_key k = {s->access_key, s->secret_key, s->session_token, s->region, "s3"};
    long status = -1;
    for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
        if (attempt)
            usleep(200000u << (attempt - 1));
        if (out) {
            if (out->buf)
                tly_buf_reset(out->buf);
            out->dst_len = 0;
        }
        if (body)
            body->sent = 0;
        char date[17];
        tly_sigv4_date((long long)time(NULL), date);
        tly_sigv4_pair h[6];
        size_t nh = 0;
        h[nh++] = (tly_sigv4_pair){"host", s->host};
        h[nh++] = (tly_sigv4_pair){"x-amz-content-sha256", hash};
        h[nh++] = (tly_sigv4_pair){"x-amz-date", date};
        if (range)
            h[nh++] = (tly_sigv4_pair){"range", range};
        if (s->session_token && *s->session_token)
            h[nh++] = (tly_sigv4_pair){"x-amz-security-token", s->session_token};
        char auth[512];
        if (tly_sigv4_authorization(&k, method, path, canon_query, h, nh, hash, date, auth, sizeof auth) < 0)
            return tly_fail(err, TLY_E_INTERNAL, "s3_sign", "cannot sign the request");
        struct curl_slist *hl = NULL;
        char line[700];
        for (size_t i = 0; i < nh; i++) {
            snprintf(line, sizeof line, "%s: %s", h[i].name, h[i].value);
            hl = curl_slist_append(hl, line);
        }
        snprintf(line, sizeof line, "Authorization: %s", auth);
        hl = curl_slist_append(hl, line);
        hl = curl_slist_append(hl, "Expect:");   /* no 100-continue round trip */
        CURL *c = handle_get(s);
        if (!c || !hl) {
            curl_slist_free_all(hl);
            if (c)
                curl_easy_cleanup(c);
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        }
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_S);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
        reply sink = {0};
        curl_easy_setopt(c, CURLOPT_WRITEDATA, out ? out : &sink);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, out ? out : &sink);
        if (strcmp(method, "HEAD") == 0) {
            curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        } else if (strcmp(method, "PUT") == 0) {
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            if (body && body->fd >= 0) {
                curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
                curl_easy_setopt(c, CURLOPT_READDATA, body);
                curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body->len);
            } else {
                curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)0);
            }
        } else if (strcmp(method, "POST") == 0) {
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body && body->mem ? body->mem : "");
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body && body->mem ? body->mem_len : 0));
        } else if (strcmp(method, "GET") != 0) {
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        }
        CURLcode cc = curl_easy_perform(c);
        status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (length_out) {
            curl_off_t cl = -1;
            curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
            *length_out = cl > 0 ? (uint64_t)cl : 0;
        }
        curl_slist_free_all(hl);
        handle_put(s, c);
        if (cc != CURLE_OK) {
            tly_fail(err, TLY_E_IO, "s3_unreachable", "S3 %s %s: %s", method, path, curl_easy_strerror(cc));
            status = -1;
            continue;
        }
        if (status >= 500 || status == 429) {
            tly_fail(err, TLY_E_IO, "s3_error", "S3 %s %s: HTTP %ld", method, path, status);
            continue;
        }
        return status;
    }
    return status < 0 ? -1 : status;
}

/* A final status that is not what was wanted, as an error naming S3's own code. */
static int s3_status_fail(long status, const char *what, const reply *r, tly_error *err)
{
    const char *code = "";
    int codelen = 0;
    if (r && r->buf && r->buf->len) {
        const char *b = strstr(r->buf->data, "<Code>");
        const char *e = b ? strstr(b, "</Code>") : NULL;
        if (b && e) {
            code = b + 6;
            codelen = (int)(e - code);
        }
    }
    return tly_fail(err, status == 404 ? TLY_E_NOT_FOUND : TLY_E_IO, "s3_error", "S3 %s: HTTP %ld %.*s", what,
                    status, codelen, code);
}

/* ---- open / close -------------------------------------------------------------------- */

static int query_param(const char *q, const char *name, char *out, size_t outsz)
{
    size_t n = strlen(name);
    for (const char *p = q; p && *p;) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            const char *v = p + n + 1;
            size_t len = strcspn(v, "&");
            if (len >= outsz)
                return -1;
            memcpy(out, v, len);
            out[len] = 0;
            return 1;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
    return 0;
}

static void s3_close(void *impl)
{
    struct s3 *s = impl;
    if (!s)
        return;
    for (int i = 0; i < s->pooled; i++)
        curl_easy_cleanup(s->pool[i]);
    pthread_mutex_destroy(&s->pool_mu);
    free(s->access_key);
    free(s->secret_key);
    free(s->session_token);
    free(s);
}

static int s3_open(const char *where, void **impl, tly_error *err)
{
    /* where = "BUCKET[/PREFIX][?params]" (the "s3://" is gone) */
    struct s3 *s = calloc(1, sizeof *s);
    if (!s)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    pthread_mutex_init(&s->pool_mu, NULL);
    const char *q = strchr(where, '?');
    size_t head = q ? (size_t)(q - where) : strlen(where);
    size_t blen = strcspn(where, "/?");
    char endpoint[512] = "", create[8] = "";
    const char *env_region = getenv("AWS_REGION");
    if (!env_region || !*env_region)
        env_region = getenv("AWS_DEFAULT_REGION");
    snprintf(s->region, sizeof s->region, "%s", env_region && *env_region ? env_region : "us-east-1");
    const char *tmpdir = getenv("TMPDIR");
    snprintf(s->tmp, sizeof s->tmp, "%s", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (blen == 0 || blen >= sizeof s->bucket || head - blen >= sizeof s->prefix - 1 ||
        (q && (query_param(q + 1, "endpoint", endpoint, sizeof endpoint) < 0 ||
               query_param(q + 1, "region", s->region, sizeof s->region) < 0 ||
               query_param(q + 1, "tmp", s->tmp, sizeof s->tmp) < 0 ||
               query_param(q + 1, "create", create, sizeof create) < 0))) {
        s3_close(s);
        return tly_fail(err, TLY_E_INVALID, "invalid_blob_url",
                        "S3 URL must be s3://BUCKET[/PREFIX]?endpoint=URL&region=R (bucket up to 63 bytes)");
    }
    memcpy(s->bucket, where, blen);
    if (head > blen + 1) {
        snprintf(s->prefix, sizeof s->prefix, "%.*s/", (int)(head - blen - 1), where + blen + 1);
    }
    const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
    const char *tok = getenv("AWS_SESSION_TOKEN");
    if (!ak || !*ak || !sk || !*sk) {
        s3_close(s);
        return tly_fail(err, TLY_E_INVALID, "missing_credentials",
                        "the S3 blob store needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment");
    }
    s->access_key = strdup(ak);
    s->secret_key = strdup(sk);
    s->session_token = tok && *tok ? strdup(tok) : NULL;
    if (endpoint[0]) {
        size_t el = strlen(endpoint);
        while (el && endpoint[el - 1] == '/')
            endpoint[--el] = 0;
        const char *hostpart = strstr(endpoint, "://");
        if (!hostpart || strncmp(endpoint, "http", 4) != 0 || strchr(hostpart + 3, '/')) {
            s3_close(s);
            return tly_fail(err, TLY_E_INVALID, "invalid_blob_url", "endpoint must be http(s)://host[:port]");
        }
        snprintf(s->base, sizeof s->base, "%s", endpoint);
        snprintf(s->host, sizeof s->host, "%s", hostpart + 3);
        s->path_style = 1;
    } else {
        snprintf(s->host, sizeof s->host, "%s.s3.%s.amazonaws.com", s->bucket, s->region);
        snprintf(s->base, sizeof s->base, "https://%s", s->host);
    }
    if (!s->access_key || !s->secret_key || (tok && *tok && !s->session_token) || tly_mkdirs(s->tmp, 0700) < 0) {
        s3_close(s);
        return tly_fail(err, TLY_E_IO, "io_error", "cannot prepare the S3 store's temp directory '%s'", s->tmp);
    }
    /* The bucket must answer now: a wrong endpoint or key fails at start-up, not on
     * the first upload. */
    long st = s3_request(s, "HEAD", "", NULL, 0, NULL, NULL, NULL, NULL, NULL, err);
    if (st == 404 && strcmp(create, "1") == 0) {
        st = s3_request(s, "PUT", "", NULL, 0, NULL, NULL, NULL, NULL, NULL, err);
        if (st == 409)   /* another node (or test) created it meanwhile: fine */
            st = 200;
    }
    if (st < 0 || st >= 300) {
        if (st >= 300)
            tly_fail(err, st == 404 ? TLY_E_NOT_FOUND : TLY_E_IO, "s3_bucket",
                     "S3 bucket '%s' at %s: HTTP %ld%s", s->bucket, s->base, st,
                     st == 404 ? " (no such bucket; add create=1 to create it)" : st == 403 ? " (access denied)" : "");
        s3_close(s);
        return -1;
    }
    *impl = s;
    return 0;
}

/* ---- writes ---------------------------------------------------------------------------- */

static int s3_sink_new(void *impl, void **out, tly_error *err)
{
    struct s3 *s = impl;
    struct sink *k = malloc(sizeof *k);
    if (!k)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    int plen = snprintf(k->path, sizeof k->path, "%s/" TMP_PREFIX "XXXXXX", s->tmp);
    k->fd = plen > 0 && (size_t)plen < sizeof k->path ? mkostemp(k->path, O_CLOEXEC) : -1;
    if (k->fd < 0) {
        int e = errno;
        free(k);
        return tly_fail(err, TLY_E_IO, "io_error", "creating a temp file in '%s': %s", s->tmp, strerror(e));
    }
    *out = k;
    return 0;
}

static int s3_sink_write(void *sink, const void *data, size_t len, tly_error *err)
{
    struct sink *k = sink;
    if (tly_write_all(k->fd, data, len) < 0)
        return tly_fail(err, TLY_E_IO, "io_error", "writing '%s': %s", k->path, strerror(errno));
    return 0;
}

static void s3_sink_abort(void *impl, void *sink)
{
    (void)impl;
    struct sink *k = sink;
    close(k->fd);
    unlink(k->path);
    free(k);
}

/* The value of <tag> in an XML reply. */
static int xml_value(const tly_buf *b, const char *tag, char *out, size_t outsz)
{
    char open[64], close_[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close_, sizeof close_, "</%s>", tag);
    const char *p = b->len ? strstr(b->data, open) : NULL;
    const char *e = p ? strstr(p, close_) : NULL;
    if (!p || !e || (size_t)(e - p - strlen(open)) >= outsz)
        return -1;
    p += strlen(open);
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = 0;
    return 0;
}

static int multipart_upload(struct s3 *s, const char *key, int fd, uint64_t size, tly_error *err)
{
    tly_buf xml;
    tly_buf_init(&xml, MAX_REPLY);
    reply r = {.buf = &xml};
    tly_sigv4_pair q_init[] = {{"uploads", NULL}};
    char upload_id[512];
    long st = s3_request(s, "POST", key, q_init, 1, NULL, NULL, NULL, &r, NULL, err);
    if (st < 0 || st >= 300 || xml_value(&xml, "UploadId", upload_id, sizeof upload_id) < 0) {
        int rc = st < 0 ? -1 : s3_status_fail(st, "starting a multipart upload", &r, err);
        tly_buf_free(&xml);
        return rc;
    }
    uint64_t parts = (size + PART_SIZE - 1) / PART_SIZE;
    tly_buf done;
    tly_buf_init(&done, (size_t)parts * 160 + 256);
    int rc = parts > MAX_PARTS ? tly_fail(err, TLY_E_TOO_LARGE, "too_large", "blob too large for S3") : 0;
    if (rc == 0 && tly_buf_appendf(&done, "<CompleteMultipartUpload>") < 0)
        rc = tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    char *chunk = rc == 0 ? malloc(1u << 20) : NULL;
    if (rc == 0 && !chunk)
        rc = tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    for (uint64_t i = 0; rc == 0 && i < parts; i++) {
        uint64_t off = i * PART_SIZE, len = size - off < PART_SIZE ? size - off : PART_SIZE;
        /* The part's hash first (signed), then the part itself, both read from disk. */
        tly_sha256 *h = tly_sha256_new();
        char hash[65];
        for (uint64_t at = 0; h && at < len;) {
            size_t want = len - at < (1u << 20) ? (size_t)(len - at) : (1u << 20);
            ssize_t got = pread(fd, chunk, want, (off_t)(off + at));
            if (got <= 0) {
                tly_sha256_free(h);
                h = NULL;
                break;
            }
            tly_sha256_update(h, chunk, (size_t)got);
            at += (uint64_t)got;
        }
        if (!h) {
            rc = tly_fail(err, TLY_E_IO, "io_error", "reading a part of the blob to upload");
            break;
        }
        tly_sha256_finish(h, hash);
        char partno[24];
        snprintf(partno, sizeof partno, "%llu", (unsigned long long)(i + 1));
        tly_sigv4_pair q[] = {{"partNumber", partno}, {"uploadId", upload_id}};
        payload body = {.fd = fd, .off = off, .len = len};
        tly_buf hdr;
        tly_buf_init(&hdr, 4096);
        reply pr = {.buf = &hdr};
        st = s3_request(s, "PUT", key, q, 2, &body, hash, NULL, &pr, NULL, err);
        if (st < 0 || st >= 300) {
            rc = st < 0 ? -1 : s3_status_fail(st, "uploading a part", &pr, err);
            tly_buf_free(&hdr);
            break;
        }
        tly_buf_free(&hdr);
        /* The completion names each part by number and the ETag S3 gave it. */
        if (!pr.etag[0])
            rc = tly_fail(err, TLY_E_IO, "s3_error", "S3 gave no ETag for part %s", partno);
        else if (tly_buf_appendf(&done, "<Part><PartNumber>%s</PartNumber><ETag>%s</ETag></Part>", partno,
                                 pr.etag) < 0)
            rc = tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    free(chunk);
    if (rc == 0 && tly_buf_appendf(&done, "</CompleteMultipartUpload>") == 0) {
        char hash[65];
        tly_sha256_hex(done.data, done.len, hash);
        payload body = {.mem = done.data, .mem_len = done.len, .fd = -1};
        tly_sigv4_pair q[] = {{"uploadId", upload_id}};
        st = s3_request(s, "POST", key, q, 1, &body, hash, NULL, &r, NULL, err);
        /* S3 may answer 200 with an <Error> body when completion fails late. */
        if (st < 0 || st >= 300 || (xml.len && strstr(xml.data, "<Error>")))
            rc = st < 0 ? -1 : s3_status_fail(st >= 300 ? st : 500, "completing a multipart upload", &r, err);
    }
    if (rc < 0) {
        tly_error ignore;
        tly_sigv4_pair q[] = {{"uploadId", upload_id}};
        s3_request(s, "DELETE", key, q, 1, NULL, NULL, NULL, NULL, NULL, &ignore);
    }
    tly_buf_free(&done);
    tly_buf_free(&xml);
    return rc;
}

/* Uploads the file at fd (its bytes hash to sha256) unless the bucket has it. */
static int upload_fd(struct s3 *s, int fd, const char *sha256, tly_error *err)
{
    char key[400];
    object_key(s, sha256, key, sizeof key);
    struct stat sb;
    if (fstat(fd, &sb) < 0)
        return tly_fail(err, TLY_E_IO, "io_error", "stat of the blob to upload: %s", strerror(errno));
    long st = s3_request(s, "HEAD", key, NULL, 0, NULL, NULL, NULL, NULL, NULL, err);
    if (st == 200)
        return 0;   /* same name, same bytes */
    if (st < 0)
        return -1;
    uint64_t size = (uint64_t)sb.st_size;
    if (size > MULTIPART_AT)
        return multipart_upload(s, key, fd, size, err);
    tly_buf xml;
    tly_buf_init(&xml, MAX_REPLY);
    reply r = {.buf = &xml};
    payload body = {.fd = fd, .off = 0, .len = size};
    st = s3_request(s, "PUT", key, NULL, 0, &body, sha256, NULL, &r, NULL, err);
    int rc = st < 0 ? -1 : st >= 300 ? s3_status_fail(st, "storing a blob", &r, err) : 0;
    tly_buf_free(&xml);
    return rc;
}

static int s3_sink_commit(void *impl, void *sink, const char *sha256, tly_error *err)
{
    struct sink *k = sink;
    int rc = upload_fd(impl, k->fd, sha256, err);
    close(k->fd);
    unlink(k->path);
    free(k);
    return rc;
}

static int s3_adopt_file(void *impl, const char *path, const char *sha256, tly_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tly_fail(err, errno == ENOENT ? TLY_E_NOT_FOUND : TLY_E_IO, "io_error", "opening '%s': %s", path,
                        strerror(errno));
    int rc = upload_fd(impl, fd, sha256, err);
    close(fd);
    if (rc == 0)
        unlink(path);
    return rc;
}

/* ---- reads ----------------------------------------------------------------------------- */

static int s3_exists(void *impl, const char *sha256, uint64_t *size_out, tly_error *err)
{
    struct s3 *s = impl;
    char key[400];
    object_key(s, sha256, key, sizeof key);
    uint64_t len = 0;
    long st = s3_request(s, "HEAD", key, NULL, 0, NULL, NULL, NULL, NULL, &len, err);
    if (st < 0)
        return -1;
    if (st == 404)
        return 0;
    if (st >= 300)
        return s3_status_fail(st, "checking a blob", NULL, err);
    if (size_out)
        *size_out = len;
    return 1;
}

static int s3_remove(void *impl, const char *sha256, tly_error *err)
{
    struct s3 *s = impl;
    char key[400];
    object_key(s, sha256, key, sizeof key);
    long st = s3_request(s, "DELETE", key, NULL, 0, NULL, NULL, NULL, NULL, NULL, err);
    if (st < 0)
        return -1;
    return st >= 300 && st != 404 ? s3_status_fail(st, "deleting a blob", NULL, err) : 0;
}

static int s3_reader_open(void *impl, const char *sha256, void **out, uint64_t *size_out, tly_error *err)
{
    uint64_t size = 0;
    int e = s3_exists(impl, sha256, &size, err);
    if (e < 0)
        return -1;
    if (e == 0)
        return tly_fail(err, TLY_E_NOT_FOUND, "not_found", "blob %s not found", sha256);
    struct reader *r = malloc(sizeof *r);
    if (!r)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    r->s3 = impl;
    memcpy(r->sha256, sha256, 65);
    r->size = size;
    *out = r;
    *size_out = size;
    return 0;
}

static ssize_t s3_read_at(void *reader, void *buf, size_t len, uint64_t offset)
{
    struct reader *r = reader;
    if (offset >= r->size || len == 0)
        return 0;
    if (len > r->size - offset)
        len = (size_t)(r->size - offset);
    char key[400], range[64];
    object_key(r->s3, r->sha256, key, sizeof key);
    snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)offset,
             (unsigned long long)(offset + len - 1));
    reply rp = {.dst = buf, .dst_cap = len};
    tly_error err;
    long st = s3_request(r->s3, "GET", key, NULL, 0, NULL, NULL, range, &rp, NULL, &err);
    if (st != 206 && st != 200)
        return -1;
    if (st == 200 && rp.dst_len != len)
        return -1;   /* a server that ignored the range sent the whole blob: refused above */
    return (ssize_t)rp.dst_len;
}

static void s3_reader_close(void *reader)
{
    free(reader);
}

static int s3_sweep_tmp(void *impl, tly_error *err)
{
    struct s3 *s = impl;
    DIR *d = opendir(s->tmp);
    if (!d)
        return tly_fail(err, TLY_E_IO, "io_error", "opening '%s': %s", s->tmp, strerror(errno));
    int removed = 0;
    struct dirent *e;
    char path[PATH_MAX + 256];
    time_t old = time(NULL) - SWEEP_AGE_S;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", s->tmp, e->d_name);
        struct stat sb;
        /* The temp directory may be shared with other nodes on this host: only
         * spool files nobody has touched for a long time are strays. */
        if (stat(path, &sb) == 0 && sb.st_mtime < old && unlink(path) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

static int s3_presign(void *impl, const char *sha256, long expires_s, const char *content_type, char *out,
                      size_t outsz, tly_error *err)
{
    struct s3 *s = impl;
    char key[400], path[800], date[17];
    object_key(s, sha256, key, sizeof key);
    request_path(s, key, path, sizeof path);
    tly_sigv4_date((long long)time(NULL), date);
    tly_sigv4_key k = {s->access_key, s->secret_key, s->session_token, s->region, "s3"};
    /* S3 keeps no media type for our objects: the URL asks for one in the reply. */
    tly_sigv4_pair extra[] = {{"response-content-type", content_type}};
    if (expires_s < 1 || expires_s > 604800)   /* SigV4's own limit: 7 days */
        return tly_fail(err, TLY_E_INVALID, "invalid", "presigned URLs last 1 s to 7 days");
    if (tly_sigv4_presign(&k, "GET", s->base, s->host, path, extra, content_type ? 1 : 0, date, expires_s, out,
                          outsz) < 0)
        return tly_fail(err, TLY_E_INTERNAL, "s3_sign", "presigned URL too long");
    return 0;
}

const struct tly_blob_backend tly_blob_s3_backend = {
    .name = "s3",
    .open = s3_open,
    .close = s3_close,
    .sink_new = s3_sink_new,
    .sink_write = s3_sink_write,
    .sink_commit = s3_sink_commit,
    .sink_abort = s3_sink_abort,
    .adopt_file = s3_adopt_file,
    .adopt_files = NULL,
    .exists = s3_exists,
    .remove = s3_remove,
    .reader_open = s3_reader_open,
    .read_at = s3_read_at,
    .reader_fd = NULL,
    .reader_close = s3_reader_close,
    .sweep_tmp = s3_sweep_tmp,
    .presign = s3_presign,
};
