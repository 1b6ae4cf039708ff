/* http.h -- the HTTP layer: libmicrohttpd wiring, request state, replies.
 *
 * A request goes through on_request() (http.c) in MHD's calls: the first call matches
 * the route, authenticates and checks the declared body size, so a bad request is
 * answered before its body is read; data calls append the body to a capped buffer,
 * or hand it chunk by chunk to a streaming route (uploads); the last call parses a
 * JSON body and runs the handler. Handlers fill the reply with the http_reply_*
 * helpers and never touch MHD themselves. When a request completes, its route,
 * status and latency are counted in the metrics.
 *
 * Only files in server/ include this.
 */
#ifndef TALLY_SERVER_HTTP_H
#define TALLY_SERVER_HTTP_H

#include "core/buf.h"
#include "core/error.h"
#include "server/app.h"

#include <jansson.h>
#include <microhttpd.h>

typedef struct tly_req tly_req;

/* Who may call a route. Workers are answered 404 rather than 403 on routes marked
 * HIDE_FROM_WORKER, so they cannot probe for other people's things. */
enum {
    R_ADMIN = 1 << TLY_ROLE_ADMIN,
    R_MANAGER = 1 << TLY_ROLE_MANAGER,
    R_WORKER = 1 << TLY_ROLE_WORKER,
    R_CONSUMER = 1 << TLY_ROLE_CONSUMER,
    R_STAFF = R_ADMIN | R_MANAGER,
    R_ANY = R_ADMIN | R_MANAGER | R_WORKER | R_CONSUMER,
    R_PUBLIC = 1 << 8,                /* no token needed */
};

/* F_JSON_OPTIONAL: with F_JSON_BODY, an empty body is allowed (r->json stays NULL). */
enum { F_JSON_BODY = 1, F_STREAM_BODY = 2, F_HIDE_FROM_WORKER = 4, F_JSON_OPTIONAL = 8 };

typedef struct {
    const char *method;
    const char *pattern;   /* "/v1/items/:id/media"; ":id" = positive integer, "*" = rest */
    const char *name;      /* metrics label */
    unsigned roles;
    unsigned flags;
    void (*handle)(tly_req *r);
    /* F_STREAM_BODY routes: called on the first call (after auth) and per chunk. */
    int (*stream_begin)(tly_req *r, tly_error *err);
    int (*stream_chunk)(tly_req *r, const char *data, size_t len, tly_error *err);
    void (*stream_abort)(tly_req *r);   /* request ended without handle() */
} tly_route;

struct tly_req {
    tly_app *app;
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    const tly_route *route;
    int64_t ids[4];            /* ":id" captures in order */
    const char *tail;          /* "*" capture: points into url (valid for the request) */
    tly_user user;
    int authed;
    json_t *json;              /* parsed body of F_JSON_BODY routes */
    tly_buf body;
    void *stream;              /* a streaming route's state */
    int64_t start_ns;
    int failed;                /* an error reply is set; ignore further body */
    unsigned status;
    struct MHD_Response *response;
};

/* Route table and matching (routes.c). */
extern const tly_route tly_routes[];
/* Finds the route for method+path, filling r->ids / r->tail. Returns the route, or
 * NULL with *method_mismatch set when the path exists under another method. */
const tly_route *tly_route_match(tly_req *r, const char *method, const char *path,
                                 int *method_mismatch);
/* "GET, PUT" -- the methods path exists under, for a 405's Allow header. */
void tly_route_allowed(const char *path, char *out, size_t outsz);

/* Replies. Each sets r->status and r->response (replacing an earlier one). */
void http_reply_json(tly_req *r, unsigned status, json_t *body);      /* steals body */
void http_reply_error(tly_req *r, const tly_error *err);
void http_reply_errorf(tly_req *r, tly_status st, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void http_reply_text(tly_req *r, unsigned status, const char *content_type, const char *text,
                     size_t len);
void http_reply_empty(tly_req *r, unsigned status);
/* Bytes named by their SHA-256 (copied): ETag and If-None-Match -> 304 as for blobs. */
void http_reply_bytes(tly_req *r, const void *data, size_t len, const char *sha256,
                      const char *content_type);
/* A blob with ETag (its hash), If-None-Match -> 304, and single-range Range -> 206. */
void http_reply_blob(tly_req *r, const char *sha256, const char *content_type);
/* The same with ETag "<etag_sha>" (a version's identity rather than the bytes' hash)
 * and Content-Disposition when download_name is set; Range works on any backend (S3
 * blobs are streamed with ranged reads). 1, with no reply made, when the blob store
 * has no such blob (the caller may have another source); 0 when a reply is made. */
int http_reply_blob_as(tly_req *r, const char *sha256, const char *etag_sha, const char *content_type,
                       const char *download_name);
/* A file with ETag "<etag_sha>" (a version's identity), If-None-Match -> 304, single
 * Range -> 206, and Content-Disposition when download_name is set. */
void http_reply_file(tly_req *r, const char *path, const char *etag_sha, const char *content_type,
                     const char *download_name);
unsigned http_status_for(tly_status st);
/* Sets a header on the reply already made (replacing one of the same name): for
 * replies whose caching or location differs from the helpers' defaults. */
void http_set_header(tly_req *r, const char *name, const char *value);

/* Query helpers: ?limit= (1..1000, default 100) and ?cursor= (an id). Return -1
 * after replying 400. */
int http_page_args(tly_req *r, int *limit, int64_t *after_id);
const char *http_query(tly_req *r, const char *key);
/* A request header's value, or NULL. */
const char *http_request_header(tly_req *r, const char *name);
/* {"items":[...],"next_cursor":"<last id>"|null}; steals items. */
json_t *http_page(json_t *items, int limit, int64_t last_id);

/* Starts MHD on cfg's listen address; writes DATA/tallyd.addr once bound. */
struct MHD_Daemon *tly_http_start(tly_app *app, tly_error *err);

#endif
