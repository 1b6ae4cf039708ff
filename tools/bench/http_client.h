/* http_client.h -- the small libcurl client the HTTP benchmarks (dispatch.c,
 * prelabel-images.c) share, and their log / clock helpers: one keep-alive easy handle per connection, the response
 * body kept in a growing buffer, JSON helpers for the answers.
 *
 * A connection belongs to one thread at a time (libcurl easy handles are not shared),
 * which is how the benchmarks use them: one per simulated worker plus one admin.
 * Built as its own static library (tally_bench_http) because every other .c in
 * tools/bench is a program with a main.
 */
#ifndef TALLY_BENCH_HTTP_CLIENT_H
#define TALLY_BENCH_HTTP_CLIENT_H

#include <curl/curl.h>
#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data;   /* NUL-terminated (owned by the connection) */
    size_t len, cap;
} bench_rbuf;

typedef struct {
    CURL *h;
    const char *base;           /* "http://127.0.0.1:PORT" this connection talks to (not owned) */
    struct curl_slist *auth;    /* Authorization + Content-Type (+ an empty Expect) */
    bench_rbuf body;            /* the last response's body */
    char err[CURL_ERROR_SIZE];  /* the last transport error, "" if none */
} bench_conn;

/* A connection to base with a bearer token; 0, or -1 (then bench_conn_free it). */
int bench_conn_init(bench_conn *c, const char *token, const char *base);
void bench_conn_free(bench_conn *c);
/* One request: method "GET", "POST" or another with a body ("PATCH"); body NULL sends
 * an empty one. auth 0 sends no headers (for /healthz). Returns the HTTP status, or 0
 * on a transport error (message in c->err). The response body is in c->body. */
long bench_http(bench_conn *c, const char *method, const char *path, const char *body, int auth);
/* The last response's body as JSON (new reference), NULL if empty or not JSON. */
json_t *bench_body_json(bench_conn *c);
/* An integer member (ids sent as strings tolerated), -1 when absent or not one. */
int64_t bench_jint(json_t *obj, const char *key);
/* The transport error, else the start of the body: for error messages (thread-local). */
const char *bench_snippet(bench_conn *c);

/* A log line to stderr: prefix, the message, a newline. */
void bench_logf(const char *prefix, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The monotonic clock in seconds / microseconds. */
double bench_mono_s(void);
uint64_t bench_mono_us(void);
/* Sleeps ms milliseconds, resumed across signals. */
void bench_nap_ms(long ms);

#endif
