/* fetch.c -- downloading URL-list and manifest entries with libcurl.
 *
 * Every transfer is bounded: only http and https (also after redirects), at most
 * url_max_redirects redirects, a connect timeout and a whole-transfer timeout, and a
 * size cap enforced both from Content-Length and while bytes arrive. Bytes are hashed
 * as they are written to the spool, so the file is read once. Failures are sorted
 * into transient (timeouts, refused connections, 5xx, 429: the job is retried) and
 * permanent (4xx, bad URL, too large: the file is rejected with the reason).
 *
 * Server-side request forgery: a URL list is written by a customer, and the fetch
 * runs inside the operator's network. Unless url_allow_private is set, every
 * connection -- after DNS, and again for each redirect -- is checked and refused if
 * it goes to a loopback, private, link-local (cloud metadata), CGNAT, multicast or
 * unspecified address. Checking the socket address libcurl is about to connect to,
 * not the host name, closes the DNS-rebinding and redirect loopholes.
 */
#include "ingest/internal.h"
#include "core/fsutil.h"
#include "core/hash.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
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

/* 1 if addr is not a public unicast address. */
static int internal_address(const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr);
        return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||   /* this, private, loopback */
               (a >> 20) == (172u << 4 | 1) ||                             /* 172.16/12 */
               (a >> 16) == (192u << 8 | 168) ||                           /* 192.168/16 */
               (a >> 16) == (169u << 8 | 254) ||                           /* link-local, metadata */
               (a >> 22) == (100u << 2 | 1) ||                             /* 100.64/10 CGNAT */
               (a >> 28) >= 14;                                            /* multicast, reserved */
    }
    if (addr->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            struct sockaddr_in v4 = {.sin_family = AF_INET};
            memcpy(&v4.sin_addr, a->s6_addr + 12, 4);
            return internal_address((const struct sockaddr *)&v4);
        }
        return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
               IN6_IS_ADDR_SITELOCAL(a) || IN6_IS_ADDR_MULTICAST(a) ||
               (a->s6_addr[0] & 0xfe) == 0xfc;   /* unique local fc00::/7 */
    }
    return 1;   /* unix sockets and the like: never */
}

typedef struct {
    int refused;
} guard;

static curl_socket_t open_guarded(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
    guard *g = clientp;
    if (internal_address(&address->addr)) {
        g->refused = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype, address->protocol);
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
    guard g = {0};
    if (!ing->cfg.url_allow_private) {
        curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_guarded);
        curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &g);
    }
    if (s.cap)
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s.cap);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    int result = -1;
    if (s.over_cap || rc == CURLE_FILESIZE_EXCEEDED) {
        tly_fail(err, TLY_E_UNPROCESSABLE, "too_large", "download is over the %llu-byte limit",
                 (unsigned long long)s.cap);
    } else if (g.refused) {
        tly_fail(err, TLY_E_UNPROCESSABLE, "url_not_allowed",
                 "the URL leads to an internal address (loopback, private or link-local network); "
                 "tallyd fetches only from public addresses unless started with --url-allow-private");
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
