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
    /* What snprintf(dst, dstsz, "%s", v) does (truncated, always terminated), without
     * its format parsing: a handful of these run for every row read, and their
     * snprintf calls were ~1% of tallyd's CPU under tools/bench/dispatch. */
    const char *v = r->drv->column_text(r->stmt, col);
    if (!dstsz)
        return;
    size_t n = v ? strnlen(v, dstsz - 1) : 0;
    memcpy(dst, v ? v : "", n);
    dst[n] = '\0';
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

/* A per-thread memo of parsed JSON column values, for the texts a thread reads
 * over and over: a project's workflow (~1 KB, ~80 values) is read and parsed on
 * every work/next and every submit, which made json_loads ~10% of tallyd's CPU
 * under tools/bench/dispatch (perf; ~4% parsing + ~4% copying with the memo). A hit returns a deep copy of the
 * parsed value (callers own and may change what they get), ~5x cheaper than
 * parsing. Keyed by the whole text (hash, length, then compared byte for byte),
 * so a changed row is simply a different text: nothing to invalidate, and the
 * result is always what json_loads would have returned.
 *
 * A text is admitted only the second time the thread sees it (its hash waits in a
 * small ring of "ghosts" meanwhile), so texts read once -- an item's media, a page
 * of a listing -- cost a hash and nothing else. Sizes are bounded (MEMO_MIN_LEN
 * .. MEMO_MAX_LEN, MEMO_SLOTS entries) because there is one memo per thread, and
 * tallyd runs a thread per HTTP connection; the memo is freed with its thread. */
#define MEMO_SLOTS 4
#define MEMO_GHOSTS 16
#define MEMO_MIN_LEN 128     /* shorter texts parse about as fast as they copy */
#define MEMO_MAX_LEN 4096

struct json_memo {
    struct {
        char *text;          /* NULL: slot free */
        size_t len;
        uint64_t hash, used;
        json_t *value;
    } slot[MEMO_SLOTS];
    struct {
        uint64_t hash;
        size_t len;
    } ghost[MEMO_GHOSTS];
    unsigned next_ghost;
    uint64_t clock;
};

static pthread_key_t g_memo_key;
static int g_memo_key_ok;
static pthread_once_t g_memo_once = PTHREAD_ONCE_INIT;

static void memo_free(void *arg)
{
    struct json_memo *m = arg;
    for (int i = 0; i < MEMO_SLOTS; i++) {
        free(m->slot[i].text);
        json_decref(m->slot[i].value);
    }
    free(m);
}

static void memo_key_init(void)
{
    g_memo_key_ok = pthread_key_create(&g_memo_key, memo_free) == 0;
}

/* This thread's memo; NULL if there is none and none can be made (then: parse). */
static struct json_memo *memo_get(void)
{
    pthread_once(&g_memo_once, memo_key_init);
    if (!g_memo_key_ok)
        return NULL;
    struct json_memo *m = pthread_getspecific(g_memo_key);
    if (!m && (m = calloc(1, sizeof *m)) && pthread_setspecific(g_memo_key, m) != 0) {
        free(m);
        m = NULL;
    }
    return m;
}

static uint64_t fnv1a(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* The memo's copy of text's value: 1 *out set (NULL only when out of memory),
 * 0 not memoised (the caller parses and offers it to memo_keep). */
static int memo_find(struct json_memo *m, const char *text, size_t len, uint64_t hash, json_t **out)
{
    for (int i = 0; i < MEMO_SLOTS; i++)
        if (m->slot[i].text && m->slot[i].hash == hash && m->slot[i].len == len &&
            memcmp(m->slot[i].text, text, len) == 0) {
            m->slot[i].used = ++m->clock;
            *out = json_deep_copy(m->slot[i].value);
            return 1;
        }
    return 0;
}

/* Offers a freshly parsed value: kept (as a copy) if its text was seen before. */
static void memo_keep(struct json_memo *m, const char *text, size_t len, uint64_t hash, const json_t *value)
{
    int seen = 0;
    for (int i = 0; i < MEMO_GHOSTS && !seen; i++)
        seen = m->ghost[i].hash == hash && m->ghost[i].len == len;
    if (!seen) {
        m->ghost[m->next_ghost].hash = hash;
        m->ghost[m->next_ghost].len = len;
        m->next_ghost = (m->next_ghost + 1) % MEMO_GHOSTS;
        return;
    }
    int victim = 0;   /* a free slot, else the least recently used */
    for (int i = 0; i < MEMO_SLOTS; i++) {
        if (!m->slot[i].text) {
            victim = i;
            break;
        }
        if (m->slot[i].used < m->slot[victim].used)
            victim = i;
    }
    char *copy = malloc(len + 1);
    json_t *kept = json_deep_copy(value);
    if (!copy || !kept) {   /* no room: simply not memoised */
        free(copy);
        json_decref(kept);
        return;
    }
    memcpy(copy, text, len + 1);
    free(m->slot[victim].text);
    json_decref(m->slot[victim].value);
    m->slot[victim].text = copy;
    m->slot[victim].len = len;
    m->slot[victim].hash = hash;
    m->slot[victim].value = kept;
    m->slot[victim].used = ++m->clock;
}

int sq_col_json(const sq_row *r, int col, json_t **out, tly_error *err)
{
    const char *v = r->drv->column_text(r->stmt, col);
    *out = NULL;
    if (!v)
        return 0;
    size_t len = strlen(v);
    struct json_memo *m = len >= MEMO_MIN_LEN && len <= MEMO_MAX_LEN ? memo_get() : NULL;
    uint64_t hash = m ? fnv1a(v, len) : 0;
    if (m && memo_find(m, v, len, hash, out)) {
        if (!*out)
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        return 0;
    }
    json_error_t jerr;
    if (!(*out = json_loads(v, JSON_DECODE_ANY, &jerr)))
        return tly_fail(err, TLY_E_IO, "corrupt_row", "stored JSON in column %d: %s", col,
                        jerr.text);
    if (m)
        memo_keep(m, v, len, hash, *out);
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
