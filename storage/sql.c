/* sql.c -- the sq_* helpers: one call per store operation (see sql.h).
 *
 * Every operation used to be "get connection, prepare, bind each argument, step,
 * read columns, reset, map the error". That boilerplate lives here once: sq_run
 * does it all for a printf-like bind format, and sq_one / sq_list / sq_int64 are
 * thin shapes over it for "one record", "a page of records" and "one number".
 * A statement is always reset before returning, so no read lock outlives a call
 * and the cached statement is ready for the next one.
 */
#include "storage/sql.h"

#include "core/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PAGE 100

static int bind_json(const struct tly_sql_driver *d, tly_sql_stmt *s, int idx, json_t *j,
                     tly_error *err)
{
    if (!j || json_is_null(j))
        return d->bind_null(s, idx);
    char *text = tly_json_dump(j);
    if (!text)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    int rc = d->bind_text(s, idx, text);   /* the driver copies the text */
    free(text);
    return rc;
}

static int bind_args(const struct tly_sql_driver *d, tly_sql_stmt *s, const char *fmt,
                     va_list ap, tly_error *err)
{
    for (int idx = 1; *fmt; fmt++, idx++) {
        int rc;
        switch (*fmt) {
        case 'i': rc = d->bind_int64(s, idx, va_arg(ap, int64_t)); break;
        case 't': rc = d->bind_text(s, idx, va_arg(ap, const char *)); break;
        case 'f': rc = d->bind_double(s, idx, va_arg(ap, double)); break;
        case 'j': rc = bind_json(d, s, idx, va_arg(ap, json_t *), err); break;
        case 'n': rc = d->bind_null(s, idx); break;
        case 'b': {   /* two arguments: const void *data, size_t len */
            const void *data = va_arg(ap, const void *);
            rc = d->bind_blob(s, idx, data, va_arg(ap, size_t));
            break;
        }
        default:
            return tly_fail(err, TLY_E_INTERNAL, "bad_bind", "bad bind format '%c'", *fmt);
        }
        if (rc < 0)
            return tly_fail(err, TLY_E_INTERNAL, "bind_failed", "binding parameter %d", idx);
    }
    return 0;
}

static int64_t sq_run(tly_store *st, const char *sql, sq_row_fn fn, void *ctx, tly_error *err,
                      const char *fmt, va_list ap)
{
    const struct tly_sql_driver *d = st->drv;
    tly_sql_conn *c = sq_conn(st, err);
    if (!c)
        return -1;
    tly_sql_stmt *s = d->prepare(c, sql, err);
    if (!s)
        return -1;
    int64_t n = 0;
    int rc = bind_args(d, s, fmt, ap, err);
    if (rc == 0) {
        sq_row row = {d, s};
        while ((rc = d->step(s, err)) == 1) {
            if (fn && fn(&row, ctx, err) < 0) {
                rc = -1;
                break;
            }
            n++;
        }
    }
    d->reset(s);
    return rc < 0 ? -1 : n;
}

int64_t sq_each(tly_store *st, const char *sql, sq_row_fn fn, void *ctx, tly_error *err,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int64_t n = sq_run(st, sql, fn, ctx, err, fmt, ap);
    va_end(ap);
    return n;
}

int sq_exec(tly_store *st, const char *sql, tly_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int64_t n = sq_run(st, sql, NULL, NULL, err, fmt, ap);
    va_end(ap);
    return n < 0 ? -1 : 0;
}

/* Row function wrapper that hands only the first row to the real one. */
struct first_row {
    sq_row_fn fn;
    void *ctx;
    int seen;
};

static int take_first(const sq_row *r, void *ctx, tly_error *err)
{
    struct first_row *f = ctx;
    if (f->seen++)
        return 0;
    return f->fn(r, f->ctx, err);
}

static int read_int64(const sq_row *r, void *ctx, tly_error *err)
{
    if (ctx)
        *(int64_t *)ctx = sq_col_i64(r, 0);
    return 0;
}

int sq_int64(tly_store *st, const char *sql, int64_t *out, tly_error *err, const char *fmt,
             ...)
{
    struct first_row f = {read_int64, out, 0};
    va_list ap;
    va_start(ap, fmt);
    int64_t n = sq_run(st, sql, take_first, &f, err, fmt, ap);
    va_end(ap);
    return n < 0 ? -1 : n == 0 ? 1 : 0;
}

int sq_insert(tly_store *st, const char *sql, int64_t *id_out, tly_error *err, const char *fmt,
              ...)
{
    int64_t id = 0;
    struct first_row f = {read_int64, &id, 0};
    va_list ap;
    va_start(ap, fmt);
    int64_t n = sq_run(st, sql, take_first, &f, err, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if (n == 0)
        return tly_fail(err, TLY_E_IO, "db_error", "insert returned no id");
    if (id_out)
        *id_out = id;
    return 0;
}

int sq_one(tly_store *st, const char *sql, sq_row_fn fn, sq_clear_fn clear, void *rec,
           size_t recsz, const char *what, tly_error *err, const char *fmt, ...)
{
    memset(rec, 0, recsz);
    struct first_row f = {fn, rec, 0};
    va_list ap;
    va_start(ap, fmt);
    int64_t n = sq_run(st, sql, take_first, &f, err, fmt, ap);
    va_end(ap);
    if (n < 0 && clear)
        clear(rec);
    if (n < 0)
        return -1;
    if (n == 0)
        return tly_fail(err, TLY_E_NOT_FOUND, "not_found", "%s not found", what);
    return 0;
}

struct collect {
    sq_row_fn fn;
    sq_clear_fn clear;
    size_t recsz;
    char *recs;
    size_t n, cap;
};

static int collect_row(const sq_row *r, void *ctx, tly_error *err)
{
    struct collect *c = ctx;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        char *p = realloc(c->recs, cap * c->recsz);
        if (!p)
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        c->recs = p;
        c->cap = cap;
    }
    void *rec = c->recs + c->n * c->recsz;
    memset(rec, 0, c->recsz);
    if (c->fn(r, rec, err) < 0) {
        if (c->clear)
            c->clear(rec);
        return -1;
    }
    c->n++;
    return 0;
}

int sq_list(tly_store *st, const char *sql, sq_row_fn fn, sq_clear_fn clear, size_t recsz,
            void **out, size_t *n_out, tly_error *err, const char *fmt, ...)
{
    struct collect c = {fn, clear, recsz, NULL, 0, 0};
    va_list ap;
    va_start(ap, fmt);
    int64_t n = sq_run(st, sql, collect_row, &c, err, fmt, ap);
    va_end(ap);
    *out = NULL;
    *n_out = 0;
    if (n < 0) {
        sq_list_free(c.recs, c.n, recsz, clear);
        return -1;
    }
    *out = c.recs;
    *n_out = c.n;
    return 0;
}

void sq_list_free(void *list, size_t n, size_t recsz, sq_clear_fn clear)
{
    if (!list)
        return;
    for (size_t i = 0; clear && i < n; i++)
        clear((char *)list + i * recsz);
    free(list);
}

int64_t sq_col_i64(const sq_row *r, int col)
{
    return r->drv->column_int64(r->stmt, col);
}

double sq_col_double(const sq_row *r, int col)
{
    return r->drv->column_double(r->stmt, col);
}

int sq_col_is_null(const sq_row *r, int col)
{
    return r->drv->column_is_null(r->stmt, col);
}

void sq_col_copy(const sq_row *r, int col, char *dst, size_t dstsz)
{
    const char *v = r->drv->column_text(r->stmt, col);
    snprintf(dst, dstsz, "%s", v ? v : "");
}

int sq_col_dup(const sq_row *r, int col, char **out, tly_error *err)
{
    const char *v = r->drv->column_text(r->stmt, col);
    *out = NULL;
    if (!v)
        return 0;
    if (!(*out = strdup(v)))
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    return 0;
}

int sq_col_json(const sq_row *r, int col, json_t **out, tly_error *err)
{
    const char *v = r->drv->column_text(r->stmt, col);
    *out = NULL;
    if (!v)
        return 0;
    json_error_t jerr;
    if (!(*out = json_loads(v, JSON_DECODE_ANY, &jerr)))
        return tly_fail(err, TLY_E_IO, "corrupt_row", "stored JSON in column %d: %s", col,
                        jerr.text);
    return 0;
}

int sq_fail_as(tly_error *err, const tly_error *src, tly_status status, const char *code,
               const char *fmt, ...)
{
    if (!err)
        return -1;
    if (err != src)
        *err = *src;
    if (src->status != status)
        return -1;
    snprintf(err->code, sizeof err->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

int sq_found(int rc, const char *what, int64_t id, tly_error *err)
{
    if (rc == 1)
        return tly_fail(err, TLY_E_NOT_FOUND, "not_found", "%s %lld not found", what,
                        (long long)id);
    return rc < 0 ? -1 : 0;
}

int sq_check_str(const char *s, size_t max, int allow_empty, const char *what,
                 tly_error *err)
{
    if (!s || (!allow_empty && !*s))
        return tly_fail(err, TLY_E_INVALID, "invalid", "%s is required", what);
    if (strlen(s) >= max)
        return tly_fail(err, TLY_E_INVALID, "invalid", "%s is too long (max %zu bytes)", what,
                        max - 1);
    return 0;
}

int64_t sq_page_limit(int limit)
{
    return limit <= 0 ? DEFAULT_PAGE : limit;
}

char *sq_substitute(const char *sql, const char *token, const char *repl)
{
    size_t tlen = strlen(token), rlen = strlen(repl), count = 0;
    for (const char *p = strstr(sql, token); p; p = strstr(p + tlen, token))
        count++;
    size_t len = strlen(sql) + count * rlen - count * tlen;
    char *out = malloc(len + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = sql, *hit; ; p = hit + tlen) {
        hit = strstr(p, token);
        size_t n = hit ? (size_t)(hit - p) : strlen(p);
        memcpy(o, p, n);
        o += n;
        if (!hit)
            break;
        memcpy(o, repl, rlen);
        o += rlen;
    }
    *o = '\0';
    return out;
}

int sq_col_blob(const sq_row *r, int col, tly_buf *out, tly_error *err)
{
    size_t len = 0;
    const void *data = r->drv->column_blob(r->stmt, col, &len);
    if (tly_buf_append(out, data ? data : "", len) < 0)
        return tly_fail(err, TLY_E_TOO_LARGE, "too_large", "stored value of %zu bytes is over the buffer's cap", len);
    return 0;
}

/* ---- the statement cache (sql.h) ----------------------------------------------------- */

static size_t slot_of(const char *sql, size_t nslots)
{
    uintptr_t h = (uintptr_t)sql;
    h ^= h >> 17;
    h *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 7) & (nslots - 1);
}

sq_cache_slot *sq_cache_find(sq_stmt_cache *c, const char *sql)
{
    if (!c->nslots)
        return NULL;
    for (size_t i = slot_of(sql, c->nslots);; i = (i + 1) & (c->nslots - 1))
        if (c->slots[i].sql == sql || !c->slots[i].sql)
            return &c->slots[i];
}

int sq_cache_reserve(sq_stmt_cache *c)
{
    if ((c->used + 1) * 2 <= c->nslots)
        return 0;
    sq_cache_slot *old = c->slots;
    size_t oldn = c->nslots;
    size_t n = oldn ? oldn * 2 : 64;
    if (!(c->slots = calloc(n, sizeof *c->slots))) {
        c->slots = old;
        return -1;
    }
    c->nslots = n;
    for (size_t i = 0; i < oldn; i++)
        if (old[i].sql)
            *sq_cache_find(c, old[i].sql) = old[i];
    free(old);
    return 0;
}
