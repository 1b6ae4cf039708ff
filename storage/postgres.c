/* postgres.c -- the PostgreSQL driver of the SQL layer (sql.h), over libpq.
 *
 * Selected by a store URL "postgres://..." or "postgresql://..."; the whole URL is
 * handed to libpq, which parses it (host may be a socket directory: ?host=/dir).
 *
 * The store's SQL is written once for both engines (sql.h), so this file only
 * translates:
 *   - `?` placeholders become $1..$n, once per statement (sq_pg_rewrite_placeholders:
 *     quoted strings, quoted identifiers and comments are left alone);
 *   - statements are prepared once per connection (PQprepare, names "s1", "s2"...)
 *     and cached in sql.h's sq_stmt_cache (keyed by the SQL text's address), like
 *     sqlite.c. A statement is prepared at its first execution, when the kinds of
 *     its arguments are known: int64 arguments are declared int8, doubles float8,
 *     blobs bytea (sent in binary), text and NULL are left for the server to infer
 *     from context (type 0). Declaring numbers matters: `INSERT ... SELECT ?, ?`
 *     has no context, and an untyped parameter would become text there;
 *   - results are read in text format, whole (PQexecPrepared): numbers are parsed
 *     from text, booleans 't'/'f' read as 1/0, bytea is unescaped on demand. A
 *     materialised result also lets a row callback run other statements on the
 *     same connection while it iterates, as it can on SQLite;
 *   - a write inside a begin() transaction runs under a savepoint ("tly_stmt"), so that a
 *     failed statement is undone alone and the transaction goes on, as on SQLite
 *     (the store reports a duplicate insert and continues; PostgreSQL would
 *     otherwise abort the whole transaction). SAVEPOINT, the statement and RELEASE
 *     go out together in libpq's pipeline mode: one round trip, not three (only a
 *     failed statement costs one more, for ROLLBACK TO);
 *   - errors map to tly_status by SQLSTATE (sq_pg_status_of): unique violation ->
 *     CONFLICT and foreign key violation -> NOT_FOUND, as sqlite.c maps its
 *     constraint errors; serialization failure / deadlock -> BUSY.
 *
 * Concurrency. SQLite serialises writers, and most of the store's transactions were
 * written under that rule (check, then act). To keep that exact behaviour across
 * nodes, begin() takes a transaction-scoped advisory lock (pg_advisory_xact_lock)
 * after BEGIN: those write transactions run one at a time cluster-wide, while reads
 * and single auto-commit statements run in parallel. The hot path does not: crowd
 * work (dispatch and submit, store_work.c's combiner, one per node) opens its
 * transactions with begin_concurrent(), which takes the same lock in shared mode --
 * the combiners of all nodes run at once, still never alongside a begin()
 * transaction -- and decides only on rows it has locked (row_lock: FOR NO KEY
 * UPDATE with NOWAIT or SKIP LOCKED; see dispatch_in_tx). Job claims are single
 * statements whose subquery locks the chosen row FOR UPDATE SKIP LOCKED
 * (claim_lock), so claimers on many nodes never wait for or double-claim a job.
 * Migrations hold a session advisory lock (migrate_lock), so two nodes never
 * migrate at once.
 *
 * Retries. An auto-commit statement that fails with a serialization failure or a
 * deadlock was rolled back by the server and is re-run here (up to RETRIES times,
 * with a short growing sleep). Inside a transaction the statement cannot be re-run
 * alone: the error (BUSY, code "serialization_failure") goes to the caller, whose
 * transaction is rolled back; job threads retry their job, HTTP clients get 503.
 *
 * Lost connections. A failure that leaves the connection bad (server restart,
 * network) resets it (PQreset) and forgets its prepared statements, which died with
 * the server session. A read outside a transaction is then run again; a write or
 * anything inside a transaction fails with BUSY "db_connection_lost" (a write may
 * have committed before the connection broke; a transaction is gone), which HTTP
 * clients see as 503 and job threads retry.
 *
 * Pooling. tallyd serves HTTP with a thread per connection, and the store opens a
 * connection per thread: without a pool every HTTP connection would start a
 * PostgreSQL backend (a fork, milliseconds). disconnect() therefore parks a healthy,
 * idle connection -- with its prepared statements -- in a per-DSN pool of at most
 * POOL_MAX, and connect() takes from it first. The pool lives while any connection
 * of its DSN is checked out; when the last one comes back (tly_store_close) it is
 * emptied and freed. (So a parked connection's statement cache, keyed by SQL text
 * addresses, never outlives the store whose texts those are -- unless two stores
 * share a DSN, whose texts are then the same SQL anyway.)
 *
 * Durability: synchronous_commit on (TLY_DURABLE_SYNC) or off (ORDERED: commits are
 * ordered and crash-safe for the server process, the last ones may be lost on an OS
 * crash -- the same promise as SQLite's NORMAL without the group sync).
 */
#include "storage/sql.h"

#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define RETRIES 5            /* auto-commit statements re-run on serialization failure */
#define POOL_MAX 32          /* idle connections kept per DSN */
#define OID_UNKNOWN 0        /* let the server infer the parameter's type */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_BOOL 16
#define OID_FLOAT8 701
#define OID_INT2 21
#define OID_INT4 23
#define OID_OID 26
#define OID_FLOAT4 700

/* Advisory lock keys ("tally" in ASCII, plus one). Advisory locks are scoped to a
 * database, so tallyds on different databases of one cluster never meet. */
#define LOCK_WRITERS "500068989049"
#define LOCK_MIGRATE "500068989050"

struct pool;

struct param {
    char num[40];            /* int64 / double as text */
    char *owned;             /* malloc'd copy of a text value, or NULL */
    const void *data;        /* blob bytes (the caller's: valid until step) */
    const char *value;       /* what is sent; NULL = SQL NULL */
    int length;              /* for binary (blob) values */
    int format;              /* 0 text, 1 binary */
    unsigned int type;       /* Oid declared at prepare */
};

struct tly_sql_stmt {
    struct tly_sql_conn *conn;
    const char *key;         /* the caller's SQL text (cache key) */
    char *text;              /* a copy of it: see pg_prepare */
    char *sql;               /* rewritten to $n */
    char name[16];
    int nparams;
    int prepared;            /* PQprepare'd on this connection's current session */
    int writes;              /* INSERT / UPDATE / DELETE: guarded by a savepoint in transactions */
    struct param *params;
    PGresult *res;           /* the current execution's rows */
    int row, nrows;          /* row = index of the current row; -1 before the first */
    unsigned char *blob;     /* unescaped bytea of the last column_blob call */
};

struct tly_sql_conn {
    PGconn *pg;
    struct pool *pool;
    sq_stmt_cache cache;     /* its statements, struct tly_sql_stmt * */
    unsigned next_name;
    int needs_reset;         /* the connection broke: PQreset before the next use */
    int durable;             /* synchronous_commit as last set */
    int tx_open;             /* between begin() and commit() / rollback() */
    int unguarded;           /* a begin_concurrent() transaction: no savepoint per write */
    struct tly_sql_conn *next_idle;
};

/* Idle connections of one DSN (see the opening comment). */
struct pool {
    char *dsn;
    int refs;                        /* connections checked out */
    int nidle;
    struct tly_sql_conn *idle;
    struct pool *next;
};

static pthread_mutex_t g_pools_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pool *g_pools;

/* ---- pure helpers, shared with the unit tests (sql.h) ----------------------------- */

char *sq_pg_rewrite_placeholders(const char *sql, int *nparams)
{
    size_t len = strlen(sql), count = 0;
    for (const char *p = sql; *p; p++)
        count += *p == '?';
    /* Each '?' grows by at most 5 characters ("$65535"). */
    char *out = malloc(len + count * 5 + 1), *o = out;
    if (!out)
        return NULL;
    int n = 0;
    for (const char *p = sql; *p;) {
        if (*p == '\'' || *p == '"') {   /* a literal or quoted identifier, '' escapes */
            char q = *p;
            *o++ = *p++;
            while (*p) {
                if (*p == q && p[1] == q) {
                    *o++ = *p++;
                    *o++ = *p++;
                } else if (*p == q) {
                    *o++ = *p++;
                    break;
                } else {
                    *o++ = *p++;
                }
            }
        } else if (p[0] == '-' && p[1] == '-') {   /* comment to the end of the line */
            while (*p && *p != '\n')
                *o++ = *p++;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            size_t k = end ? (size_t)(end + 2 - p) : strlen(p);
            memcpy(o, p, k);
            o += k;
            p += k;
        } else if (*p == '?' && n < 65535) {
            o += sprintf(o, "$%d", ++n);
            p++;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    if (nparams)
        *nparams = n;
    return out;
}

tly_status sq_pg_status_of(const char *sqlstate, int connection_bad)
{
    if (connection_bad)   /* try again: the next use reconnects */
        return TLY_E_BUSY;
    if (!sqlstate)
        return TLY_E_IO;
    if (strcmp(sqlstate, "23505") == 0)   /* unique_violation */
        return TLY_E_CONFLICT;
    if (strcmp(sqlstate, "23503") == 0)   /* foreign_key_violation: the row is missing */
        return TLY_E_NOT_FOUND;
    if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0 ||   /* serialization, deadlock */
        strcmp(sqlstate, "55P03") == 0 || strcmp(sqlstate, "53300") == 0)     /* lock not available, too many connections */
        return TLY_E_BUSY;
    if (strcmp(sqlstate, "53200") == 0)   /* out_of_memory */
        return TLY_E_INTERNAL;
    return TLY_E_IO;
}

/* Whether a failed auto-commit statement may simply be run again. */
static int retryable(const char *sqlstate)
{
    return sqlstate && (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0);
}

/* ---- errors ------------------------------------------------------------------------ */

static int fail_pg(tly_sql_conn *c, const PGresult *res, tly_error *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    int bad = PQstatus(c->pg) == CONNECTION_BAD;
    if (bad)
        c->needs_reset = 1;
    tly_status status = sq_pg_status_of(state, bad);
    const char *code = bad                          ? "db_connection_lost"
                       : status == TLY_E_CONFLICT   ? "conflict"
                       : status == TLY_E_NOT_FOUND  ? "not_found"
                       : status == TLY_E_BUSY && retryable(state) ? "serialization_failure"
                       : status == TLY_E_BUSY && state && strcmp(state, "55P03") == 0 ? "row_locked"
                       : status == TLY_E_BUSY       ? "busy"
                       : status == TLY_E_INTERNAL   ? "out_of_memory"
                                                    : "db_error";
    const char *msg = res ? PQresultErrorMessage(res) : "";
    if (!msg || !*msg)
        msg = PQerrorMessage(c->pg);
    /* libpq messages end with a newline (and may have a DETAIL line): keep line one. */
    int n = (int)strcspn(msg, "\n");
    return tly_fail(err, status, code, "postgres: %.*s%s%s", n, msg, state ? " SQLSTATE " : "",
                    state ? state : "");
}

/* ---- statements -------------------------------------------------------------------- */

static void stmt_clear_run(struct tly_sql_stmt *s)
{
    if (s->res) {
        PQclear(s->res);
        s->res = NULL;
    }
    if (s->blob) {
        PQfreemem(s->blob);
        s->blob = NULL;
    }
    for (int i = 0; s->params && i < s->nparams; i++) {
        free(s->params[i].owned);
        s->params[i].owned = NULL;
        s->params[i].value = NULL;
        s->params[i].data = NULL;
        s->params[i].length = 0;
        s->params[i].format = 0;
    }
    s->row = -1;
    s->nrows = 0;
}

static void stmt_free(struct tly_sql_stmt *s)
{
    stmt_clear_run(s);
    free(s->params);
    free(s->text);
    free(s->sql);
    free(s);
}

/* ---- connections ------------------------------------------------------------------- */

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;   /* "relation already exists, skipping" and the like */
}

static void conn_close(tly_sql_conn *c)
{
    for (size_t i = 0; i < c->cache.nslots; i++)
        if (c->cache.slots[i].stmt)
            stmt_free(c->cache.slots[i].stmt);
    free(c->cache.slots);
    PQfinish(c->pg);
    free(c);
}

/* Runs sql with the simple protocol (several statements allowed). */
static int simple_exec(tly_sql_conn *c, const char *sql, tly_error *err)
{
    PGresult *res = PQexec(c->pg, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : fail_pg(c, res, err);
    PQclear(res);
    return rc;
}

/* After a reset the server session is new: its prepared statements are gone. */
static void forget_prepared(tly_sql_conn *c)
{
    for (size_t i = 0; i < c->cache.nslots; i++)
        if (c->cache.slots[i].stmt)
            ((struct tly_sql_stmt *)c->cache.slots[i].stmt)->prepared = 0;
}

static int ensure_live(tly_sql_conn *c, tly_error *err)
{
    if (!c->needs_reset && PQstatus(c->pg) == CONNECTION_OK)
        return 0;
    /* A transaction died with the connection: the caller must see it fail (and roll
     * back) rather than have its remaining statements run in auto-commit. */
    if (c->tx_open)
        return tly_fail(err, TLY_E_IO, "db_connection_lost", "postgres: connection lost inside a transaction");
    PQreset(c->pg);
    if (PQpipelineStatus(c->pg) != PQ_PIPELINE_OFF)   /* left by a pipeline the break cut short */
        PQexitPipelineMode(c->pg);
    if (PQstatus(c->pg) != CONNECTION_OK)
        return tly_fail(err, TLY_E_IO, "db_connection_lost", "postgres: cannot reconnect: %.200s",
                        PQerrorMessage(c->pg));
    c->needs_reset = 0;
    forget_prepared(c);
    if (!c->durable && simple_exec(c, "SET synchronous_commit = off", err) < 0)
        return -1;
    return 0;
}

static struct pool *pool_get(const char *dsn)
{
    struct pool *p = g_pools;
    while (p && strcmp(p->dsn, dsn) != 0)
        p = p->next;
    if (!p && (p = calloc(1, sizeof *p))) {
        if (!(p->dsn = strdup(dsn))) {
            free(p);
            return NULL;
        }
        p->next = g_pools;
        g_pools = p;
    }
    return p;
}

/* Called with g_pools_mu held when a pool has no connection checked out. */
static void pool_drop(struct pool *p)
{
    struct pool **pp = &g_pools;
    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    while (p->idle) {
        tly_sql_conn *c = p->idle;
        p->idle = c->next_idle;
        conn_close(c);
    }
    free(p->dsn);
    free(p);
}

static int pg_connect(const char *dsn, tly_sql_conn **out, tly_error *err)
{
    pthread_mutex_lock(&g_pools_mu);
    struct pool *p = pool_get(dsn);
    if (!p) {
        pthread_mutex_unlock(&g_pools_mu);
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    p->refs++;
    tly_sql_conn *c = p->idle;
    if (c) {
        p->idle = c->next_idle;
        p->nidle--;
        c->next_idle = NULL;
    }
    pthread_mutex_unlock(&g_pools_mu);
    if (c) {
        *out = c;
        return 0;
    }
    if (!(c = calloc(1, sizeof *c))) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto fail;
    }
    c->pool = p;
    c->durable = 1;
    c->pg = PQconnectdb(dsn);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
        const char *why = c->pg ? PQerrorMessage(c->pg) : "out of memory";
        tly_fail(err, TLY_E_IO, "db_open", "postgres: cannot connect: %.*s", (int)strcspn(why, "\n"), why);
        goto fail;
    }
    PQsetNoticeProcessor(c->pg, ignore_notice, NULL);
    /* UTC and a fixed text format for numbers, whatever the server's defaults. */
    if (simple_exec(c, "SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC'; SET extra_float_digits = 1", err) < 0)
        goto fail;
    *out = c;
    return 0;
fail:
    if (c) {
        if (c->pg)
            PQfinish(c->pg);
        free(c);
    }
    pthread_mutex_lock(&g_pools_mu);
    if (--p->refs == 0)
        pool_drop(p);
    pthread_mutex_unlock(&g_pools_mu);
    return -1;
}

static void pg_disconnect(tly_sql_conn *c)
{
    if (!c)
        return;
    /* Only a healthy connection outside any transaction may serve someone else. */
    int reusable = !c->needs_reset && PQstatus(c->pg) == CONNECTION_OK &&
                   PQtransactionStatus(c->pg) == PQTRANS_IDLE && c->durable;
    struct pool *p = c->pool;
    pthread_mutex_lock(&g_pools_mu);
    if (reusable && p->nidle < POOL_MAX) {
        c->next_idle = p->idle;
        p->idle = c;
        p->nidle++;
        c = NULL;
    }
    if (--p->refs == 0)
        pool_drop(p);
    pthread_mutex_unlock(&g_pools_mu);
    if (c)
        conn_close(c);
}

static int pg_exec(tly_sql_conn *c, const char *sql, tly_error *err)
{
    if (ensure_live(c, err) < 0)
        return -1;
    return simple_exec(c, sql, err);
}

static tly_sql_stmt *pg_prepare(tly_sql_conn *c, const char *sql, tly_error *err)
{
    if (ensure_live(c, err) < 0)
        return NULL;
    sq_cache_slot *slot = sq_cache_find(&c->cache, sql);
    struct tly_sql_stmt *cached = slot ? slot->stmt : NULL;
    /* A pooled connection outlives threads, so a text freed by a closed store could
     * come back at the same address with other SQL: the text itself confirms a hit
     * (a compare is nothing next to the round trip that follows). */
    if (cached && strcmp(cached->text, sql) == 0)
        return cached;
    int reuse_slot = slot && slot->sql;   /* same address, other (or no) statement */
    if (cached) {                         /* stale: forget it here and on the server */
        char dealloc[32];
        snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", cached->name);
        if (cached->prepared)
            simple_exec(c, dealloc, NULL);
        stmt_free(cached);
        slot->stmt = NULL;
    }
    if (!reuse_slot && sq_cache_reserve(&c->cache) < 0) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        return NULL;
    }
    struct tly_sql_stmt *s = calloc(1, sizeof *s);
    if (!s || !(s->text = strdup(sql)) || !(s->sql = sq_pg_rewrite_placeholders(sql, &s->nparams)) ||
        (s->nparams && !(s->params = calloc((size_t)s->nparams, sizeof *s->params)))) {
        if (s)
            stmt_free(s);
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        return NULL;
    }
    s->conn = c;
    s->key = sql;
    s->row = -1;
    size_t lead = strspn(sql, " \t\r\n(");
    s->writes = strncasecmp(sql + lead, "INSERT", 6) == 0 || strncasecmp(sql + lead, "UPDATE", 6) == 0 ||
                strncasecmp(sql + lead, "DELETE", 6) == 0;
    snprintf(s->name, sizeof s->name, "s%u", ++c->next_name);
    slot = sq_cache_find(&c->cache, sql);
    slot->sql = sql;
    slot->stmt = s;
    if (!reuse_slot)
        c->cache.used++;
    return s;
}

static struct param *param_at(tly_sql_stmt *s, int idx)
{
    return idx >= 1 && idx <= s->nparams ? &s->params[idx - 1] : NULL;
}

static int pg_bind_int64(tly_sql_stmt *s, int idx, int64_t v)
{
    struct param *p = param_at(s, idx);
    if (!p)
        return -1;
    snprintf(p->num, sizeof p->num, "%lld", (long long)v);
    p->value = p->num;
    if (!s->prepared)
        p->type = OID_INT8;
    return 0;
}

static int pg_bind_double(tly_sql_stmt *s, int idx, double v)
{
    struct param *p = param_at(s, idx);
    if (!p)
        return -1;
    if (isnan(v))
        snprintf(p->num, sizeof p->num, "NaN");
    else if (isinf(v))
        snprintf(p->num, sizeof p->num, "%sInfinity", v < 0 ? "-" : "");
    else
        snprintf(p->num, sizeof p->num, "%.17g", v);
    p->value = p->num;
    if (!s->prepared)
        p->type = OID_FLOAT8;
    return 0;
}

static int pg_bind_text(tly_sql_stmt *s, int idx, const char *v)
{
    struct param *p = param_at(s, idx);
    if (!p)
        return -1;
    free(p->owned);
    p->owned = NULL;
    p->value = NULL;
    if (v && !(p->value = p->owned = strdup(v)))
        return -1;
    return 0;
}

static int pg_bind_null(tly_sql_stmt *s, int idx)
{
    struct param *p = param_at(s, idx);
    if (!p)
        return -1;
    p->value = NULL;
    return 0;
}

static int pg_bind_blob(tly_sql_stmt *s, int idx, const void *data, size_t len)
{
    struct param *p = param_at(s, idx);
    if (!p || len > 0x7fffffff)
        return -1;
    p->data = data;
    p->value = data ? data : "";
    p->length = (int)len;
    p->format = 1;
    if (!s->prepared)
        p->type = OID_BYTEA;
    return 0;
}

static int prepare_now(tly_sql_stmt *s, tly_error *err)
{
    unsigned int types[s->nparams > 0 ? s->nparams : 1];
    for (int i = 0; i < s->nparams; i++)
        types[i] = s->params[i].type;
    PGresult *res = PQprepare(s->conn->pg, s->name, s->sql, s->nparams, s->nparams ? types : NULL);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : fail_pg(s->conn, res, err);
    PQclear(res);
    if (rc < 0) {
        tly_error_prefix(err, "preparing [%.120s]: ", s->key);
        return -1;
    }
    s->prepared = 1;
    return 0;
}

/* The bound parameters as libpq's three parallel arrays (each of nparams entries). */
static void gather_params(const tly_sql_stmt *s, const char **values, int *lengths, int *formats)
{
    for (int i = 0; i < s->nparams; i++) {
        values[i] = s->params[i].value;
        lengths[i] = s->params[i].length;
        formats[i] = s->params[i].format;
    }
}

static PGresult *execute(tly_sql_stmt *s)
{
    int n = s->nparams;
    const char *values[n > 0 ? n : 1];
    int lengths[n > 0 ? n : 1], formats[n > 0 ? n : 1];
    gather_params(s, values, lengths, formats);
    return PQexecPrepared(s->conn->pg, s->name, n, n ? values : NULL, n ? lengths : NULL,
                          n ? formats : NULL, 0);
}

/* A write inside a transaction, guarded by a savepoint, in one round trip:
 * SAVEPOINT tly_stmt, the statement and RELEASE tly_stmt are sent as one pipeline.
 * Returns the result to report: the statement's, or the SAVEPOINT's or RELEASE's if
 * that failed (NULL if none came: connection trouble). *open is set when the
 * savepoint is still there (the statement failed: the caller rolls back to it). */
static PGresult *execute_guarded(tly_sql_stmt *s, int *open)
{
    PGconn *pg = s->conn->pg;
    *open = 0;
    if (!PQenterPipelineMode(pg))
        return NULL;
    int n = s->nparams;
    const char *values[n > 0 ? n : 1];
    int lengths[n > 0 ? n : 1], formats[n > 0 ? n : 1];
    gather_params(s, values, lengths, formats);
    int sent = PQsendQueryParams(pg, "SAVEPOINT tly_stmt", 0, NULL, NULL, NULL, NULL, 0) &&
               PQsendQueryPrepared(pg, s->name, n, n ? values : NULL, n ? lengths : NULL,
                                   n ? formats : NULL, 0) &&
               PQsendQueryParams(pg, "RELEASE tly_stmt", 0, NULL, NULL, NULL, NULL, 0) &&
               PQpipelineSync(pg);
    /* Results: one per query, each followed by NULL, then the sync. After an error
     * the server skips the rest up to the sync (PGRES_PIPELINE_ABORTED). */
    PGresult *res[3] = {NULL, NULL, NULL};
    int q = 0;
    while (sent) {
        PGresult *r = PQgetResult(pg);
        if (!r) {
            if (PQstatus(pg) == CONNECTION_BAD || ++q > 3)
                break;
            continue;
        }
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (q < 3 && !res[q])
            res[q] = r;
        else
            PQclear(r);
    }
    /* A pipeline that could not be sent or left unread would wedge the connection:
     * start a new session before its next use (a transaction is lost either way). */
    if (!PQexitPipelineMode(pg) || !sent)
        s->conn->needs_reset = 1;
    ExecStatusType st0 = res[0] ? PQresultStatus(res[0]) : PGRES_FATAL_ERROR;
    ExecStatusType st1 = res[1] ? PQresultStatus(res[1]) : PGRES_FATAL_ERROR;
    ExecStatusType st2 = res[2] ? PQresultStatus(res[2]) : PGRES_FATAL_ERROR;
    int stmt_ok = st1 == PGRES_TUPLES_OK || st1 == PGRES_COMMAND_OK;
    PGresult *out;
    if (st0 != PGRES_COMMAND_OK) {        /* no savepoint: nothing ran */
        out = res[0];
        res[0] = NULL;
    } else if (!stmt_ok) {                 /* the statement failed: undo it alone */
        *open = 1;
        out = res[1];
        res[1] = NULL;
    } else if (st2 != PGRES_COMMAND_OK) {  /* it ran, but RELEASE failed */
        *open = 1;
        out = res[2];
        res[2] = NULL;
    } else {
        out = res[1];
        res[1] = NULL;
    }
    for (int i = 0; i < 3; i++)
        PQclear(res[i]);
    return out;
}

static void backoff(int attempt)
{
    struct timespec ts = {0, (long)(1 + attempt * 4) * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static int pg_step(tly_sql_stmt *s, tly_error *err)
{
    if (s->res) {   /* the next row of the current execution */
        if (s->blob) {
            PQfreemem(s->blob);
            s->blob = NULL;
        }
        return ++s->row < s->nrows ? 1 : 0;
    }
    tly_sql_conn *c = s->conn;
    for (int attempt = 0;; attempt++) {
        if (!s->prepared && prepare_now(s, err) < 0)
            return -1;
        int in_tx = PQtransactionStatus(c->pg) != PQTRANS_IDLE;
        /* SQLite undoes a failed statement alone and the transaction goes on; the
         * store relies on that (a duplicate insert it reports and then continues).
         * PostgreSQL would abort the whole transaction: a savepoint around each write
         * inside a transaction gives SQLite's behaviour. */
        int guard = s->writes && !c->unguarded && PQtransactionStatus(c->pg) == PQTRANS_INTRANS;
        int open = 0;
        PGresult *res = guard ? execute_guarded(s, &open) : execute(s);
        ExecStatusType st = PQresultStatus(res);
        if (!open && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)) {
            s->res = res;
            s->nrows = PQntuples(res);
            s->row = 0;
            return s->nrows > 0 ? 1 : 0;
        }
        if (open && PQstatus(c->pg) == CONNECTION_OK)
            simple_exec(c, "ROLLBACK TO tly_stmt; RELEASE tly_stmt", NULL);
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        /* "prepared statement does not exist": the session was replaced under us. */
        if (state && strcmp(state, "26000") == 0 && attempt == 0 && !in_tx) {
            PQclear(res);
            s->prepared = 0;
            continue;
        }
        /* The server went away (restart, failover, idle timeout): a read outside a
         * transaction is simply run again on a new session. A write is not: it may
         * have committed before the connection broke, so its caller gets BUSY. */
        if (PQstatus(c->pg) == CONNECTION_BAD && !in_tx && !s->writes && attempt == 0) {
            PQclear(res);
            c->needs_reset = 1;
            if (ensure_live(c, err) < 0)
                return -1;
            continue;
        }
        if (!in_tx && retryable(state) && attempt < RETRIES) {
            PQclear(res);
            backoff(attempt);
            continue;
        }
        fail_pg(c, res, err);
        PQclear(res);
        return -1;
    }
}

static const char *cell(tly_sql_stmt *s, int col)
{
    if (!s->res || s->row < 0 || s->row >= s->nrows || col < 0 || col >= PQnfields(s->res) ||
        PQgetisnull(s->res, s->row, col))
        return NULL;
    return PQgetvalue(s->res, s->row, col);
}

static int64_t pg_column_int64(tly_sql_stmt *s, int col)
{
    const char *v = cell(s, col);
    if (!v)
        return 0;
    if (PQftype(s->res, col) == OID_BOOL)
        return v[0] == 't';
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end == '.' || *end == 'e' || *end == 'E')   /* numeric / float text, as SQLite would cast */
        return (int64_t)strtod(v, NULL);
    return n;
}

static double pg_column_double(tly_sql_stmt *s, int col)
{
    const char *v = cell(s, col);
    if (!v)
        return 0;
    if (PQftype(s->res, col) == OID_BOOL)
        return v[0] == 't';
    return strtod(v, NULL);
}

static const char *pg_column_text(tly_sql_stmt *s, int col)
{
    return cell(s, col);
}

static int pg_column_is_null(tly_sql_stmt *s, int col)
{
    return cell(s, col) == NULL;
}

static const void *pg_column_blob(tly_sql_stmt *s, int col, size_t *len)
{
    *len = 0;
    const char *v = cell(s, col);
    if (!v)
        return NULL;
    if (PQftype(s->res, col) != OID_BYTEA) {   /* text read as bytes, as SQLite allows */
        *len = strlen(v);
        return v;
    }
    if (s->blob)
        PQfreemem(s->blob);
    s->blob = PQunescapeBytea((const unsigned char *)v, len);
    if (!s->blob)
        *len = 0;
    return s->blob;
}

static int pg_column_count(tly_sql_stmt *s)
{
    return s->res ? PQnfields(s->res) : 0;
}

static const char *pg_column_name(tly_sql_stmt *s, int col)
{
    return s->res && col >= 0 && col < PQnfields(s->res) ? PQfname(s->res, col) : NULL;
}

/* From the column's type: the text format says nothing else. Booleans and integers
 * read as integers (column_int64 does), float4/float8 as doubles, bytea as blobs;
 * everything else (text, numeric, json, dates...) as its text. */
static tly_sql_type pg_column_type(tly_sql_stmt *s, int col)
{
    if (!cell(s, col))
        return TLY_SQL_NULL;
    switch (PQftype(s->res, col)) {
    case OID_BOOL: case OID_INT8: case OID_INT2: case OID_INT4: case OID_OID:
        return TLY_SQL_INT;
    case OID_FLOAT4: case OID_FLOAT8:
        return TLY_SQL_DOUBLE;
    case OID_BYTEA:
        return TLY_SQL_BLOB;
    default:
        return TLY_SQL_TEXT;
    }
}

static void pg_reset(tly_sql_stmt *s)
{
    stmt_clear_run(s);
}

/* BEGIN and the writers' lock in one round trip; the lock is released by COMMIT /
 * ROLLBACK. READ COMMITTED whatever the server's default: every statement after the
 * lock must see what the previous lock holder committed. */
static int begin_locked(tly_sql_conn *c, const char *sql, int unguarded, tly_error *err)
{
    if (ensure_live(c, err) < 0)
        return -1;
    if (simple_exec(c, sql, err) < 0) {
        if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
            simple_exec(c, "ROLLBACK", NULL);
        return -1;
    }
    c->tx_open = 1;
    c->unguarded = unguarded;
    return 0;
}

static int pg_begin(tly_sql_conn *c, tly_error *err)
{
    return begin_locked(c, "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(" LOCK_WRITERS ")", 0,
                        err);
}

/* The combiner's transaction (sql.h): the writers' lock in shared mode, so the
 * combiners of all nodes run at once -- their correctness rests on the row locks
 * they take -- while a begin() transaction, which takes it exclusively, still runs
 * alone. PostgreSQL queues a lock request behind conflicting waiters, so a stream
 * of shared holders never starves an exclusive one. No savepoint per write: the
 * combiner has one per operation, and a transaction with hundreds of
 * subtransactions overflows the per-backend subxid cache, which slows every
 * snapshot on the server. */
static int pg_begin_concurrent(tly_sql_conn *c, tly_error *err)
{
    return begin_locked(c, "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock_shared(" LOCK_WRITERS ")",
                        1, err);
}

static int pg_commit(tly_sql_conn *c, tly_error *err)
{
    if (PQtransactionStatus(c->pg) == PQTRANS_INERROR) {
        simple_exec(c, "ROLLBACK", NULL);
        c->tx_open = c->unguarded = 0;
        return tly_fail(err, TLY_E_IO, "db_error", "postgres: commit of a failed transaction (rolled back)");
    }
    int rc = simple_exec(c, "COMMIT", err);
    if (rc == 0 || PQtransactionStatus(c->pg) == PQTRANS_IDLE)
        c->tx_open = c->unguarded = 0;
    return rc;
}

static void pg_rollback(tly_sql_conn *c)
{
    if (PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        simple_exec(c, "ROLLBACK", NULL);
    c->tx_open = c->unguarded = 0;
}

static int pg_set_durability(tly_sql_conn *c, tly_durability d, tly_error *err)
{
    int durable = d == TLY_DURABLE_SYNC;
    if (durable == c->durable)
        return 0;
    if (ensure_live(c, err) < 0 ||
        simple_exec(c, durable ? "SET synchronous_commit = on" : "SET synchronous_commit = off", err) < 0)
        return -1;
    c->durable = durable;
    return 0;
}

const struct tly_sql_driver tly_postgres_driver = {
    .name = "postgres",
    .pk_type = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    .claim_lock = "FOR UPDATE SKIP LOCKED",
    /* NO KEY UPDATE: what an UPDATE of non-key columns takes, so the foreign-key
     * checks of other inserts (KEY SHARE) never wait for these locks. */
    .row_lock = "FOR NO KEY UPDATE",
    .blob_type = "BYTEA",
    .list_agg = "string_agg(@X@::text, ',')",
    .snapshot_begin = "BEGIN ISOLATION LEVEL REPEATABLE READ",
    .migrate_lock = "SELECT pg_advisory_lock(" LOCK_MIGRATE ")",
    .migrate_unlock = "SELECT pg_advisory_unlock(" LOCK_MIGRATE ")",
    .list_tables = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                   " AND table_type = 'BASE TABLE' ORDER BY table_name",
    /* setval is strict: an empty table (MAX NULL) leaves the sequence alone. */
    .sequence_reset = "SELECT setval(pg_get_serial_sequence('@T@', 'id'), MAX(id)) FROM @T@",
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .exec = pg_exec,
    .prepare = pg_prepare,
    .bind_int64 = pg_bind_int64,
    .bind_text = pg_bind_text,
    .bind_null = pg_bind_null,
    .bind_double = pg_bind_double,
    .bind_blob = pg_bind_blob,
    .step = pg_step,
    .column_int64 = pg_column_int64,
    .column_double = pg_column_double,
    .column_text = pg_column_text,
    .column_is_null = pg_column_is_null,
    .column_blob = pg_column_blob,
    .column_count = pg_column_count,
    .column_name = pg_column_name,
    .column_type = pg_column_type,
    .reset = pg_reset,
    .begin = pg_begin,
    .begin_concurrent = pg_begin_concurrent,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .set_durability = pg_set_durability,
};
