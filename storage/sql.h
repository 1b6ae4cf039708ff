/* sql.h -- the SQL driver layer under store.h (internal to storage/).
 *
 * A driver is a table of functions (struct tly_sql_driver), the way Redis hides its
 * connection types behind a vtable: sqlite.c fills one for SQLite, and a PostgreSQL
 * driver (postgres.c, libpq) fills another. The store operations (store_*.c) are written once
 * against this table in SQL both engines accept:
 *   - `?` placeholders (the PG driver rewrites them to $1, $2, ...);
 *   - INTEGER / BIGINT / TEXT / DOUBLE PRECISION column types;
 *   - INSERT ... RETURNING id, ON CONFLICT (...) DO NOTHING;
 *   - anything that must differ between dialects lives in the driver table (pk_type,
 *     claim_lock) and is substituted into SQL text once, never decided by if/else in
 *     the operations.
 *
 * Statements are cached per connection, keyed by the *pointer* of the SQL text: the
 * operations pass string literals (or strings that live as long as the store), so a
 * pointer compare finds the prepared statement without hashing the text.
 *
 * On top of the driver sit the sq_* helpers, so that a store operation is one call:
 * sq_exec / sq_one / sq_list / sq_each take the SQL, a bind format and the arguments:
 *
 *     i  int64_t            t  const char * (NULL binds SQL NULL)
 *     f  double             j  json_t * stored as TEXT (NULL binds SQL NULL)
 *     n  (no argument) NULL
 *
 * Note the C varargs rule: an `i` argument must really be an int64_t (cast ints).
 *
 * Connections: one per thread per store, opened lazily on first use and kept under a
 * pthread key whose destructor closes it when the thread exits. Every connection is
 * also on a global, mutex-protected registry, so tly_store_close can close those of
 * threads that are still alive (it deletes the key first, so their exit never runs
 * the destructor a second time). Threads must be done using a store before it is
 * closed.
 */
#ifndef TALLY_STORAGE_SQL_H
#define TALLY_STORAGE_SQL_H

#include "core/buf.h"
#include "core/error.h"
#include "storage/store.h"

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tly_sql_conn tly_sql_conn;   /* driver-defined */

/* The per-connection statement cache both drivers keep (see "Statements are cached"
 * above): an open-addressing table keyed by the SQL text's address, at most half
 * full, so a probe is short and always ends at the key or a hole. stmt is the
 * driver's statement. */
typedef struct {
    const char *sql;   /* key: the SQL text's address (NULL: empty) */
    void *stmt;
} sq_cache_slot;
typedef struct {
    sq_cache_slot *slots;
    size_t nslots;     /* a power of two, or 0 */
    size_t used;
} sq_stmt_cache;
/* The slot of sql: its own, or the empty one where it would go; NULL while empty. */
sq_cache_slot *sq_cache_find(sq_stmt_cache *c, const char *sql);
/* Makes room for one more entry (growing the table when it would be over half
 * full); 0, or -1 out of memory. Slot pointers found before are then stale. */
int sq_cache_reserve(sq_stmt_cache *c);
typedef struct tly_sql_stmt tly_sql_stmt;   /* driver-defined */

/* The kind of one value of a result row (column_type), for code that handles any
 * table's rows generically (store_copy.c). */
typedef enum { TLY_SQL_NULL = 0, TLY_SQL_INT, TLY_SQL_DOUBLE, TLY_SQL_TEXT, TLY_SQL_BLOB } tly_sql_type;

struct tly_sql_driver {
    const char *name;          /* "sqlite" */
    /* Dialect pieces substituted into SQL text (migrations.c, store.c). */
    const char *pk_type;       /* "@PK@" in migrations: auto-increment primary key */
    const char *claim_lock;    /* job-claim subquery suffix: "" or "FOR UPDATE SKIP LOCKED" */
    /* The clause that locks the rows a SELECT returns against other writers, to
     * which the store appends NOWAIT / SKIP LOCKED / OF <table>: "FOR NO KEY UPDATE"
     * on PostgreSQL. NULL when write transactions run one at a time anyway (SQLite)
     * and rows need no locks. */
    const char *row_lock;
    const char *blob_type;     /* "@BLOB@" in migrations: "BLOB" / "BYTEA" */
    /* Comma-separated list of the values @X@ of a group (export's worker ids):
     * "group_concat(@X@)" / "string_agg(@X@::text, ',')". */
    const char *list_agg;
    /* Starts a read snapshot that lasts across statements (tly_store_snapshot_begin):
     * "BEGIN" on SQLite (WAL readers see one snapshot), REPEATABLE READ on PostgreSQL
     * (READ COMMITTED would see new rows at every statement). */
    const char *snapshot_begin;
    /* Held around the whole of sq_migrate so two nodes never migrate at once; NULL
     * when each step's write transaction is enough (SQLite: one writer at a time). */
    const char *migrate_lock, *migrate_unlock;
    /* store_copy.c: the schema's tables (one name per row), and the statement that
     * moves the identity sequence of table @T@'s "id" past its largest value after
     * rows were inserted with explicit ids (NULL: SQLite's AUTOINCREMENT does that by
     * itself on every insert). */
    const char *list_tables;
    const char *sequence_reset;

    int (*connect)(const char *dsn, tly_sql_conn **out, tly_error *err);
    void (*disconnect)(tly_sql_conn *c);
    /* One or more statements without parameters or result rows (DDL, pragmas). */
    int (*exec)(tly_sql_conn *c, const char *sql, tly_error *err);
    /* Returns the cached prepared statement for this SQL text pointer (ready to bind). */
    tly_sql_stmt *(*prepare)(tly_sql_conn *c, const char *sql, tly_error *err);
    /* Parameters are numbered from 1. Return 0 or -1. */
    int (*bind_int64)(tly_sql_stmt *s, int idx, int64_t v);
    int (*bind_text)(tly_sql_stmt *s, int idx, const char *v);
    int (*bind_null)(tly_sql_stmt *s, int idx);
    int (*bind_double)(tly_sql_stmt *s, int idx, double v);
    int (*bind_blob)(tly_sql_stmt *s, int idx, const void *data, size_t len);
    /* 1 = a row is available, 0 = done, -1 = error (err filled, status mapped). */
    int (*step)(tly_sql_stmt *s, tly_error *err);
    /* Columns are numbered from 0. column_text returns NULL for SQL NULL; the pointer
     * is valid until the next step or reset. */
    int64_t (*column_int64)(tly_sql_stmt *s, int col);
    double (*column_double)(tly_sql_stmt *s, int col);
    const char *(*column_text)(tly_sql_stmt *s, int col);
    int (*column_is_null)(tly_sql_stmt *s, int col);
    /* Bytes of a blob column and their count; valid like column_text's. */
    const void *(*column_blob)(tly_sql_stmt *s, int col, size_t *len);
    /* The result's columns: their number and names (valid after a step, also one
     * that returned 0, until reset), and the kind of the current row's value in col
     * (SQLite: the value's storage class; PostgreSQL: from the column's type). */
    int (*column_count)(tly_sql_stmt *s);
    const char *(*column_name)(tly_sql_stmt *s, int col);
    tly_sql_type (*column_type)(tly_sql_stmt *s, int col);
    /* Ends the current execution and clears bindings; the statement stays cached. */
    void (*reset)(tly_sql_stmt *s);
    /* Write transaction (SQLite: BEGIN IMMEDIATE, retried while the database is busy). */
    int (*begin)(tly_sql_conn *c, tly_error *err);
    /* A write transaction that may run alongside others of its kind (store_work.c's
     * combiner, one per node): its caller locks every row it decides on (row_lock,
     * claim_lock) and undoes a failed statement itself with its own savepoints, so
     * the driver adds none. Still excludes begin()'s transactions, which were written
     * for one writer at a time. NULL: begin() is used. */
    int (*begin_concurrent)(tly_sql_conn *c, tly_error *err);
    int (*commit)(tly_sql_conn *c, tly_error *err);
    void (*rollback)(tly_sql_conn *c);
    /* Whether this connection's commits wait for the disk (see tly_durability). */
    int (*set_durability)(tly_sql_conn *c, tly_durability d, tly_error *err);
};

extern const struct tly_sql_driver tly_sqlite_driver;
extern const struct tly_sql_driver tly_postgres_driver;

/* postgres.c, exposed for its unit test: `?` -> $1..$n outside quotes and comments
 * (malloc'd; *nparams = n), and the tly_status of a SQLSTATE. */
char *sq_pg_rewrite_placeholders(const char *sql, int *nparams);
tly_status sq_pg_status_of(const char *sqlstate, int connection_bad);

struct tly_store {
    const struct tly_sql_driver *drv;
    char *dsn;                 /* what the driver's connect() takes */
    pthread_key_t key;         /* this thread's struct sq_conn */
    char *sql_job_claim;       /* built once with drv->claim_lock; see store_jobs.c */
    struct sq_work_sql *work_sql;  /* store_work.c: statements built with the driver's row locks */
    char *sql_export_rows[2];  /* built once with drv->list_agg; see store_exports.c */
    int key_ok;                /* key was created (for close after a failed open) */
    pthread_mutex_t combiner_mu;   /* guards the lazy start of combiner */
    struct sq_combiner *combiner;  /* store_work.c: batches crowd-work writes */
    struct sq_copy_sql *copy_sql;  /* store_copy.c: its statements' texts, built at first use */
};

/* store_copy.c: frees st->copy_sql (tly_store_close). */
void sq_copy_sql_free(struct sq_copy_sql *sql);

/* migrations.c: every table of the schema (but schema_migrations) in dependency order
 * (a table after those its foreign keys reference), with its primary key columns and
 * whether "id" is an identity column. tly_store_copy copies exactly these; a
 * migration that adds a table must add it here (test_storage_copy fails otherwise). */
struct sq_table {
    const char *name;
    const char *key;      /* primary key columns, comma-separated, as in ORDER BY */
    int key_columns;
    int identity_id;      /* "id @PK@": its sequence is reset after a copy */
};
extern const struct sq_table sq_tables[];
extern const size_t sq_table_count;

/* store_work.c: stops the crowd-work write combiner, if started (tly_store_close). */
void sq_combiner_stop(tly_store *st);
/* store_work.c: builds / frees st->work_sql (tly_store_open / tly_store_close). */
int sq_work_sql_build(tly_store *st);
void sq_work_sql_free(struct sq_work_sql *sql);

/* store_jobs.c: the claim statement with "@LOCK@" where drv->claim_lock goes. */
extern const char sq_job_claim_template[];
/* store_exports.c: the export walk without / with splits, "@WORKER_IDS@" where
 * drv->list_agg of j.worker_id goes. */
extern const char *const sq_export_rows_template[2];

/* This thread's driver connection to st, opened on first use. NULL on error. */
tly_sql_conn *sq_conn(tly_store *st, tly_error *err);

/* The current result row, as handed to row functions. */
typedef struct {
    const struct tly_sql_driver *drv;
    tly_sql_stmt *stmt;
} sq_row;

/* Reads one result row into ctx. Returns 0, or -1 with err filled to stop. */
typedef int (*sq_row_fn)(const sq_row *r, void *ctx, tly_error *err);
typedef void (*sq_clear_fn)(void *rec);

/* Run sql with the bound arguments, calling fn (may be NULL) for every row.
 * Returns the number of rows (>= 0) or -1. */
int64_t sq_each(tly_store *st, const char *sql, sq_row_fn fn, void *ctx, tly_error *err,
                const char *fmt, ...);
/* Run sql, ignoring result rows. 0 or -1. */
int sq_exec(tly_store *st, const char *sql, tly_error *err, const char *fmt, ...);
/* First column of the first row as int64 into *out (may be NULL).
 * Returns 0 if there was a row, 1 if none, -1 on error. */
int sq_int64(tly_store *st, const char *sql, int64_t *out, tly_error *err, const char *fmt,
             ...);
/* INSERT ... RETURNING id: the new id into *id_out (may be NULL). 0 or -1. */
int sq_insert(tly_store *st, const char *sql, int64_t *id_out, tly_error *err, const char *fmt,
              ...);
/* Zero rec (recsz bytes), read the first row into it with fn. No row: NOT_FOUND with
 * message "<what> not found". On error rec is cleared with clear (if not NULL). */
int sq_one(tly_store *st, const char *sql, sq_row_fn fn, sq_clear_fn clear, void *rec,
           size_t recsz, const char *what, tly_error *err, const char *fmt, ...);
/* Every row into a malloc'd array of recsz-byte records (*out NULL when empty).
 * On error nothing is returned and what was read is cleared. */
int sq_list(tly_store *st, const char *sql, sq_row_fn fn, sq_clear_fn clear, size_t recsz,
            void **out, size_t *n_out, tly_error *err, const char *fmt, ...);
/* Free an array from sq_list, clearing each record first. */
void sq_list_free(void *list, size_t n, size_t recsz, sq_clear_fn clear);

/* Column readers for row functions. */
int64_t sq_col_i64(const sq_row *r, int col);
double sq_col_double(const sq_row *r, int col);
int sq_col_is_null(const sq_row *r, int col);
/* Copy text (NULL -> "") into a fixed buffer, truncating. */
void sq_col_copy(const sq_row *r, int col, char *dst, size_t dstsz);
/* malloc'd copy, or NULL for SQL NULL. -1 on out-of-memory. */
int sq_col_dup(const sq_row *r, int col, char **out, tly_error *err);
/* Append a blob column's bytes to out; -1 if over out's cap. */
int sq_col_blob(const sq_row *r, int col, tly_buf *out, tly_error *err);
/* Parsed JSON column, or NULL for SQL NULL. -1 if unparsable. */
int sq_col_json(const sq_row *r, int col, json_t **out, tly_error *err);

/* Copy src into err (if err); if src has the given status, replace its code and
 * message: lets an operation give a uniqueness clash its own name ("name_taken") or
 * a foreign-key miss a useful message ("project 7 not found"). Returns -1. */
int sq_fail_as(tly_error *err, const tly_error *src, tly_status status, const char *code,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* For UPDATE/DELETE ... RETURNING id run with sq_int64: turns "no row" (rc 1) into
 * NOT_FOUND "<what> <id> not found". Returns 0 or -1. */
int sq_found(int rc, const char *what, int64_t id, tly_error *err);

/* Fail with TLY_E_INVALID unless s is non-empty (or empty is allowed) and shorter
 * than max bytes (the size of the record field it will be read back into). */
int sq_check_str(const char *s, size_t max, int allow_empty, const char *what,
                 tly_error *err);

/* A limit argument: <= 0 means the default page size. */
int64_t sq_page_limit(int limit);

/* migrations.c: bring the schema up to date (each step in its own transaction). */
int sq_migrate(tly_store *st, tly_error *err);
/* Replace every `token` in sql by repl; malloc'd result or NULL. */
char *sq_substitute(const char *sql, const char *token, const char *repl);

/* store_work.c: judgment rows, shared with store_quality.c. */
#define SQ_JUDGMENT_COLS \
    "id, project_id, item_id, assignment_id, worker_id, answer, duration_ms, created_at, gold," \
    " COALESCE(correct, -1), COALESCE(excluded, ''), source"
int sq_read_judgment(const sq_row *r, void *ctx, tly_error *err);   /* into a tly_judgment */
void sq_clear_judgment(void *j);
/* Queues the project's aggregation job (once: not if one is already queued). */
int sq_queue_aggregation(tly_store *st, int64_t project_id, int64_t now_ms, tly_error *err);
/* Counts a new judgment on a work item ('labeled' at overlap + extra, then queues the
 * aggregation). */
int sq_item_count_judgment(tly_store *st, int64_t project_id, int64_t item_id, int overlap, int64_t now_ms,
                           tly_error *err);

/* store_quality.c: reads column 0 into an int64_t record (lists of ids). */
int sq_read_id(const sq_row *r, void *ctx, tly_error *err);

#endif
