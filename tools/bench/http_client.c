/* http_client.c -- see http_client.h: the benchmarks' libcurl client.
 *
 * Every request resets what the previous one may have set (custom method, headers,
 * body), so one handle serves GET, POST and PATCH in any order and keeps its
 * connection alive across them.
 */
#include "http_client.h"
#include <errno.h>
#include <time.h>
#include <stdarg.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    bench_rbuf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *p = realloc(b->data, nc);
        if (!p)
            return 0;   /* libcurl then fails the transfer (CURLE_WRITE_ERROR) */
        b->data = p;
        b->cap = nc;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

int bench_conn_init(bench_conn *c, const char *token, const char *base)
{
    memset(c, 0, sizeof *c);
    c->base = base;
    c->h = curl_easy_init();
    if (!c->h)
        return -1;
    char hdr[512];
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", token);
    c->auth = curl_slist_append(NULL, hdr);
    if (c->auth)
        c->auth = curl_slist_append(c->auth, "Content-Type: application/json");
    if (c->auth)   /* no "Expect: 100-continue" round trip before bodies */
        c->auth = curl_slist_append(c->auth, "Expect:");
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->body);
    curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, c->err);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT, 10L);
    return c->auth ? 0 : -1;
}

void bench_conn_free(bench_conn *c)
{
    if (c->h)
        curl_easy_cleanup(c->h);
    curl_slist_free_all(c->auth);
    free(c->body.data);
    memset(c, 0, sizeof *c);
}

long bench_http(bench_conn *c, const char *method, const char *path, const char *body, int auth)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", c->base, path);
    c->body.len = 0;
    if (c->body.data)
        c->body.data[0] = 0;
    c->err[0] = 0;
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, auth ? c->auth : NULL);
    curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, NULL);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
    } else {
        const char *b = body ? body : "";
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, b);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)strlen(b));
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(c->h);
    if (rc != CURLE_OK) {
        if (!c->err[0])
            snprintf(c->err, sizeof c->err, "%s", curl_easy_strerror(rc));
        return 0;
    }
    long status = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

json_t *bench_body_json(bench_conn *c)
{
    return c->body.len ? json_loadb(c->body.data, c->body.len, 0, NULL) : NULL;
}

int64_t bench_jint(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_string(v)) {   /* tolerate ids sent as strings */
        char *end;
        long long x = strtoll(json_string_value(v), &end, 10);
        if (*end == 0 && end != json_string_value(v))
            return x;
    }
    return -1;
}

const char *bench_snippet(bench_conn *c)
{
    static _Thread_local char s[301];
    if (c->err[0])
        return c->err;
    snprintf(s, sizeof s, "%.*s", (int)(c->body.len < 300 ? c->body.len : 300), c->body.data ? c->body.data : "");
    return s;
}

/* ---- log and clock ------------------------------------------------------------------ */

void bench_logf(const char *prefix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(prefix, stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

double bench_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t bench_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void bench_nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}
