/* sqlite.c -- the SQLite driver of the SQL layer (sql.h).
 *
 * One tly_sql_conn wraps one sqlite3 handle used by exactly one thread, so it is
 * opened with SQLITE_OPEN_NOMUTEX: no per-call locking inside SQLite.
 *
 * Connection settings, and why:
 *   journal_mode=WAL    readers never block the writer and vice versa;
 *   synchronous=NORMAL  WAL frames are written in order at every commit (a process
 *                       crash loses nothing); durability against power loss comes
 *                       from the group wal_sync below, for connections that need it;
 *   busy_timeout=5000   a writer waits for the write lock instead of failing at once;
 *                       BEGIN IMMEDIATE is additionally retried (see sqlite_begin);
 *   foreign_keys=ON     the schema's REFERENCES clauses are enforced;
 *   cache_size=-4000    about 4 MB of page cache per connection (one per thread);
 *   temp_store=MEMORY   sorts and temp tables never touch the disk.
 *
 * Prepared statements are cached per connection in a small open-addressing hash
 * table keyed by the address of the SQL text (see sql.h), prepared with
 * SQLITE_PREPARE_PERSISTENT since they live as long as the connection.
 *
 * Durable commits are group commits. A connection that must not lose a commit
 * (TLY_DURABLE_SYNC, the default) runs with synchronous=NORMAL -- SQLite writes its
 * WAL frames in order but does not fsync them -- and after each commit waits for a
 * shared fdatasync of the WAL file (wal_sync) that started after the commit's
 * write. One fdatasync thus covers every commit written before it began, where
 * synchronous=FULL would have fsync'ed once per commit, one commit at a time under
 * the write lock. The guarantee is the same: the commit is on disk before the caller
 * acknowledges it. Checkpoints keep their own syncs (SQLite syncs the WAL before and
 * the database after each checkpoint in NORMAL mode).
 *
 * Checkpoints (copying WAL pages back into the database file) run on a background
 * thread with its own connection, as PASSIVE checkpoints every CHECKPOINT_MS, never
 * blocking a writer. SQLite's automatic checkpoint would instead run inside some
 * unlucky commit, under the write lock, with two fsyncs: a stall of milliseconds for
 * every writer behind it, which showed up as the p99 of crowd-work requests.
 *
 * Writers of one database inside this process queue on a mutex (struct wlock)
 * before they ask SQLite for its write lock. SQLite's own busy handler polls with
 * sleeps of 1, 2, 5, 10... ms, so two threads committing in turn would spend most of
 * their time asleep while the lock sits free; the mutex hands it over at once.
 * busy_timeout still covers other processes. The mutex is taken by BEGIN IMMEDIATE
 * (released at COMMIT / ROLLBACK) and by any auto-commit statement that writes
 * (released when the statement is reset, after SQLite committed it).
 */
#include "storage/sql.h"

#include "core/timeutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUSY_RETRY_MS 30000   /* BEGIN IMMEDIATE keeps retrying this long in total */

/* One per database file in this process, shared by its connections. */
struct wlock {
    char *dsn;
    pthread_mutex_t mu;         /* guards the ticket counters below */
    pthread_cond_t turn;
    uint64_t next_ticket, serving;
    int refs;
    struct wlock *next;
    /* Group commit of the WAL: tickets in order; a sync covers every ticket issued
     * before it started. */
    pthread_mutex_t sync_mu;
    pthread_cond_t synced;
    uint64_t requested, completed;
    int syncing;
    int wal_fd;            /* -1 until first needed */
    /* The checkpointer thread (see above). */
    pthread_t checkpointer;
    int checkpointer_started;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_wake;
    int ckpt_stop;
};

#define CHECKPOINT_MS 200

static void *checkpointer_main(void *arg)
{
    struct wlock *w = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(w->dsn, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        sqlite3_close_v2(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 1000);
    pthread_mutex_lock(&w->ckpt_mu);
    while (!w->ckpt_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += CHECKPOINT_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&w->ckpt_wake, &w->ckpt_mu, &until);
        if (w->ckpt_stop)
            break;
        pthread_mutex_unlock(&w->ckpt_mu);
        /* PASSIVE: copies what it can without waiting for readers or writers. */
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&w->ckpt_mu);
    }
    pthread_mutex_unlock(&w->ckpt_mu);
    sqlite3_close_v2(db);
    return NULL;
}

static struct wlock *g_wlocks;
static pthread_mutex_t g_wlocks_mu = PTHREAD_MUTEX_INITIALIZER;

static struct wlock *wlock_get(const char *dsn)
{
    pthread_mutex_lock(&g_wlocks_mu);
    struct wlock *w = g_wlocks;
    while (w && strcmp(w->dsn, dsn) != 0)
        w = w->next;
    if (!w && (w = calloc(1, sizeof *w))) {
        if (!(w->dsn = strdup(dsn))) {
            free(w);
            w = NULL;
        } else {
            pthread_mutex_init(&w->mu, NULL);
            pthread_cond_init(&w->turn, NULL);
            pthread_mutex_init(&w->sync_mu, NULL);
            pthread_cond_init(&w->synced, NULL);
            pthread_mutex_init(&w->ckpt_mu, NULL);
            pthread_cond_init(&w->ckpt_wake, NULL);
            w->wal_fd = -1;
            w->next = g_wlocks;
            g_wlocks = w;
        }
    }
    if (w)
        w->refs++;
    pthread_mutex_unlock(&g_wlocks_mu);
    return w;
}

static void wlock_put(struct wlock *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&g_wlocks_mu);
    if (--w->refs == 0) {
        struct wlock **pp = &g_wlocks;
        while (*pp != w)
            pp = &(*pp)->next;
        *pp = w->next;
        if (w->checkpointer_started) {
            pthread_mutex_lock(&w->ckpt_mu);
            w->ckpt_stop = 1;
            pthread_cond_signal(&w->ckpt_wake);
            pthread_mutex_unlock(&w->ckpt_mu);
            pthread_join(w->checkpointer, NULL);
        }
        pthread_mutex_destroy(&w->ckpt_mu);
        pthread_cond_destroy(&w->ckpt_wake);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->turn);
        pthread_mutex_destroy(&w->sync_mu);
        pthread_cond_destroy(&w->synced);
        if (w->wal_fd >= 0)
            close(w->wal_fd);
        free(w->dsn);
        free(w);
    }
    pthread_mutex_unlock(&g_wlocks_mu);
}

/* The writer lock is a ticket lock: writers get it in the order they asked. A plain
 * mutex lets a thread that just released it take it again, so under load some
 * requests waited many rounds: the p99 latency of crowd work. */
static void writer_lock(struct wlock *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t me = w->next_ticket++;
    while (w->serving != me)
        pthread_cond_wait(&w->turn, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void writer_unlock(struct wlock *w)
{
    pthread_mutex_lock(&w->mu);
    w->serving++;
    pthread_cond_broadcast(&w->turn);
    pthread_mutex_unlock(&w->mu);
}

struct tly_sql_conn;

/* What prepare hands out: the statement and the connection it belongs to. */
struct tly_sql_stmt {
    sqlite3_stmt *stmt;
    struct tly_sql_conn *conn;
};

struct tly_sql_conn {
    sqlite3 *db;
    sq_stmt_cache cache;  /* its statements, struct tly_sql_stmt * */
    struct wlock *wl;
    int wl_tx;                       /* held for an explicit transaction */
    struct tly_sql_stmt *wl_stmt;    /* held for this auto-commit statement */
    int group_sync;                  /* TLY_DURABLE_SYNC: wait for wal_sync after commits */
};

/* An fd on the database's WAL file, reopened if SQLite replaced the file (it
 * deletes it when the last connection closes). Called with sync_mu held. */
static int wal_fd(struct wlock *w)
{
    char path[4200];
    struct stat by_path, by_fd;
    snprintf(path, sizeof path, "%s-wal", w->dsn);
    if (stat(path, &by_path) < 0)
        return -1;
    if (w->wal_fd >= 0 && (fstat(w->wal_fd, &by_fd) < 0 || by_fd.st_ino != by_path.st_ino)) {
        close(w->wal_fd);
        w->wal_fd = -1;
    }
    if (w->wal_fd < 0)
        w->wal_fd = open(path, O_RDWR | O_CLOEXEC);
    return w->wal_fd;
}

/* Returns once everything written to the WAL before the call is on disk. */
static int wal_sync(struct wlock *w, tly_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&w->sync_mu);
    uint64_t ticket = ++w->requested;
    while (w->completed < ticket) {
        if (w->syncing) {
            pthread_cond_wait(&w->synced, &w->sync_mu);
            continue;
        }
        w->syncing = 1;
        uint64_t covers = w->requested;
        int fd = wal_fd(w);
        pthread_mutex_unlock(&w->sync_mu);
        int ok = fd >= 0 && fdatasync(fd) == 0;
        pthread_mutex_lock(&w->sync_mu);
        w->syncing = 0;
        if (ok && covers > w->completed)
            w->completed = covers;
        pthread_cond_broadcast(&w->synced);
        if (!ok) {
            rc = tly_fail(err, TLY_E_IO, "db_error", "sqlite: cannot sync the WAL of '%s'", w->dsn);
            break;
        }
    }
    pthread_mutex_unlock(&w->sync_mu);
    return rc;
}

static tly_status status_of(int extended)
{
    switch (extended) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return TLY_E_CONFLICT;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return TLY_E_NOT_FOUND;   /* the referenced row does not exist */
    default:
        break;
    }
    switch (extended & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return TLY_E_BUSY;
    case SQLITE_NOMEM:
        return TLY_E_INTERNAL;
    default:
        return TLY_E_IO;
    }
}

static int fail_db(sqlite3 *db, int rc, tly_error *err)
{
    int ext = db ? sqlite3_extended_errcode(db) : rc;
    tly_status status = status_of(ext);
    static const char *const codes[] = {
        [TLY_E_CONFLICT] = "conflict", [TLY_E_NOT_FOUND] = "not_found",
        [TLY_E_BUSY] = "busy", [TLY_E_INTERNAL] = "out_of_memory", [TLY_E_IO] = "db_error",
    };
    return tly_fail(err, status, codes[status], "sqlite: %s",
                    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static void conn_free(tly_sql_conn *c)
{
    for (size_t i = 0; i < c->cache.nslots; i++) {
        struct tly_sql_stmt *w = c->cache.slots[i].stmt;
        if (w) {
            sqlite3_finalize(w->stmt);
            free(w);
        }
    }
    free(c->cache.slots);
    sqlite3_close_v2(c->db);
    if (c->wl_tx || c->wl_stmt)
        writer_unlock(c->wl);
    wlock_put(c->wl);
    free(c);
}

static int sqlite_exec(tly_sql_conn *c, const char *sql, tly_error *err)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : fail_db(c->db, rc, err);
}

static int sqlite_connect(const char *dsn, tly_sql_conn **out, tly_error *err)
{
    tly_sql_conn *c = calloc(1, sizeof *c);
    if (!c)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(dsn, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        tly_fail(err, TLY_E_IO, "db_open", "sqlite: cannot open '%s': %s", dsn,
                 c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        conn_free(c);
        return -1;
    }
    if (!(c->wl = wlock_get(dsn))) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        conn_free(c);
        return -1;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, 5000);
    /* journal_mode returns a row; sqlite3_exec discards it. */
    c->group_sync = 1;
    if (sqlite_exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                       "PRAGMA foreign_keys=ON; PRAGMA cache_size=-4000;"
                       "PRAGMA wal_autocheckpoint=0;"   /* the checkpointer thread does it */
                       "PRAGMA temp_store=MEMORY;", err) < 0) {
        tly_error_prefix(err, "'%s': ", dsn);
        conn_free(c);
        return -1;
    }
    /* The first connection to a database starts its checkpointer (the database is
     * in WAL mode by now). Unconditional here: wlock_put stops it with the last. */
    pthread_mutex_lock(&g_wlocks_mu);
    if (!c->wl->checkpointer_started &&
        pthread_create(&c->wl->checkpointer, NULL, checkpointer_main, c->wl) == 0)
        c->wl->checkpointer_started = 1;
    pthread_mutex_unlock(&g_wlocks_mu);
    *out = c;
    return 0;
}

static void sqlite_disconnect(tly_sql_conn *c)
{
    if (c)
        conn_free(c);
}

static tly_sql_stmt *sqlite_prepare(tly_sql_conn *c, const char *sql, tly_error *err)
{
    sq_cache_slot *slot = sq_cache_find(&c->cache, sql);
    if (slot && slot->sql)
        return slot->stmt;
    if (sq_cache_reserve(&c->cache) < 0) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        return NULL;
    }
    struct tly_sql_stmt *w = calloc(1, sizeof *w);
    if (!w) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        return NULL;
    }
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &w->stmt, NULL);
    if (rc != SQLITE_OK) {
        free(w);
        fail_db(c->db, rc, err);
        tly_error_prefix(err, "preparing [%.120s]: ", sql);
        return NULL;
    }
    w->conn = c;
    slot = sq_cache_find(&c->cache, sql);
    slot->sql = sql;
    slot->stmt = w;
    c->cache.used++;
    return w;
}

#define STMT(s) ((s)->stmt)

static int sqlite_bind_int64(tly_sql_stmt *s, int idx, int64_t v)
{
    return sqlite3_bind_int64(STMT(s), idx, v) == SQLITE_OK ? 0 : -1;
}

static int sqlite_bind_text(tly_sql_stmt *s, int idx, const char *v)
{
    int rc = v ? sqlite3_bind_text(STMT(s), idx, v, -1, SQLITE_TRANSIENT)
               : sqlite3_bind_null(STMT(s), idx);
    return rc == SQLITE_OK ? 0 : -1;
}

static int sqlite_bind_null(tly_sql_stmt *s, int idx)
{
    return sqlite3_bind_null(STMT(s), idx) == SQLITE_OK ? 0 : -1;
}

static int sqlite_bind_blob(tly_sql_stmt *s, int idx, const void *data, size_t len)
{
    return sqlite3_bind_blob64(STMT(s), idx, data ? data : "", (sqlite3_uint64)len, SQLITE_TRANSIENT) == SQLITE_OK
               ? 0
               : -1;
}

static const void *sqlite_column_blob(tly_sql_stmt *s, int col, size_t *len)
{
    const void *p = sqlite3_column_blob(STMT(s), col);
    *len = (size_t)sqlite3_column_bytes(STMT(s), col);
    return p;
}

static int sqlite_bind_double(tly_sql_stmt *s, int idx, double v)
{
    return sqlite3_bind_double(STMT(s), idx, v) == SQLITE_OK ? 0 : -1;
}

static int sqlite_step(tly_sql_stmt *s, tly_error *err)
{
    tly_sql_conn *c = s->conn;
    if (!c->wl_tx && !c->wl_stmt && !sqlite3_stmt_readonly(s->stmt) && sqlite3_get_autocommit(c->db)) {
        writer_lock(c->wl);
        c->wl_stmt = s;
    }
    int rc = sqlite3_step(STMT(s));
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return fail_db(sqlite3_db_handle(STMT(s)), rc, err);
}

static int64_t sqlite_column_int64(tly_sql_stmt *s, int col)
{
    return sqlite3_column_int64(STMT(s), col);
}

static double sqlite_column_double(tly_sql_stmt *s, int col)
{
    return sqlite3_column_double(STMT(s), col);
}

static const char *sqlite_column_text(tly_sql_stmt *s, int col)
{
    return (const char *)sqlite3_column_text(STMT(s), col);
}

static int sqlite_column_is_null(tly_sql_stmt *s, int col)
{
    return sqlite3_column_type(STMT(s), col) == SQLITE_NULL;
}

static int sqlite_column_count(tly_sql_stmt *s)
{
    return sqlite3_column_count(STMT(s));
}

static const char *sqlite_column_name(tly_sql_stmt *s, int col)
{
    return sqlite3_column_name(STMT(s), col);
}

/* The value's storage class: SQLite types values, not columns (a REAL-affinity column
 * stores even whole numbers as REAL, a TEXT one stores numbers as text). */
static tly_sql_type sqlite_column_type(tly_sql_stmt *s, int col)
{
    switch (sqlite3_column_type(STMT(s), col)) {
    case SQLITE_INTEGER: return TLY_SQL_INT;
    case SQLITE_FLOAT: return TLY_SQL_DOUBLE;
    case SQLITE_TEXT: return TLY_SQL_TEXT;
    case SQLITE_BLOB: return TLY_SQL_BLOB;
    default: return TLY_SQL_NULL;
    }
}

static void sqlite_reset(tly_sql_stmt *s)
{
    sqlite3_reset(STMT(s));
    sqlite3_clear_bindings(STMT(s));
    tly_sql_conn *c = s->conn;
    if (c->wl_stmt == s) {   /* the auto-commit write is committed now */
        c->wl_stmt = NULL;
        writer_unlock(c->wl);
        /* Outside the write lock, so other writers go on while we wait for the disk.
         * reset has no error channel: a failed sync is logged by the next commit's. */
        if (c->group_sync)
            wal_sync(c->wl, NULL);
    }
}

/* busy_timeout already waits up to 5 s inside SQLite; under heavy write contention
 * that can still run out, so keep retrying with a short sleep up to BUSY_RETRY_MS. */
static int sqlite_begin(tly_sql_conn *c, tly_error *err)
{
    int64_t deadline = tly_mono_ns() + (int64_t)BUSY_RETRY_MS * 1000000;
    if (!c->wl_tx) {
        writer_lock(c->wl);
        c->wl_tx = 1;
    }
    for (;;) {
        int rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            return 0;
        if ((rc & 0xff) != SQLITE_BUSY || tly_mono_ns() > deadline) {
            c->wl_tx = 0;
            writer_unlock(c->wl);
            return fail_db(c->db, rc, err);
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void release_tx_lock(tly_sql_conn *c)
{
    if (c->wl_tx) {
        c->wl_tx = 0;
        writer_unlock(c->wl);
    }
}

static int sqlite_commit(tly_sql_conn *c, tly_error *err)
{
    if (sqlite_exec(c, "COMMIT", err) < 0) {
        /* Still in the transaction unless SQLite rolled it back itself; the caller's
         * rollback releases the lock in the first case. */
        if (sqlite3_get_autocommit(c->db))
            release_tx_lock(c);
        return -1;
    }
    release_tx_lock(c);
    /* Durable before the caller may acknowledge it; waited for outside the lock. */
    return c->group_sync ? wal_sync(c->wl, err) : 0;
}

static void sqlite_rollback(tly_sql_conn *c)
{
    /* Fails harmlessly when no transaction is open (e.g. SQLite already rolled back). */
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    release_tx_lock(c);
}

/* Every connection runs synchronous=NORMAL: each commit reaches the WAL in order,
 * so a process crash loses nothing. TLY_DURABLE_SYNC adds the group wal_sync after
 * each commit (durable before it is acknowledged); TLY_DURABLE_ORDERED skips it, so
 * the last commits before a power cut may be lost, never reordered. */
static int sqlite_set_durability(tly_sql_conn *c, tly_durability d, tly_error *err)
{
    /* Both levels run synchronous=NORMAL; SYNC adds the group wal_sync after commits. */
    (void)err;
    c->group_sync = d == TLY_DURABLE_SYNC;
    return 0;
}

const struct tly_sql_driver tly_sqlite_driver = {
    .name = "sqlite",
    .pk_type = "INTEGER PRIMARY KEY AUTOINCREMENT",
    .claim_lock = "",   /* a single UPDATE statement holds SQLite's one write lock */
    .blob_type = "BLOB",
    .list_agg = "group_concat(@X@)",
    .snapshot_begin = "BEGIN",   /* deferred: the first read fixes the WAL snapshot */
    .migrate_lock = NULL,        /* each step's BEGIN IMMEDIATE already excludes other writers */
    .migrate_unlock = NULL,
    .list_tables = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    .sequence_reset = NULL,      /* AUTOINCREMENT keeps sqlite_sequence at the largest id inserted */
    .connect = sqlite_connect,
    .disconnect = sqlite_disconnect,
    .exec = sqlite_exec,
    .prepare = sqlite_prepare,
    .bind_int64 = sqlite_bind_int64,
    .bind_text = sqlite_bind_text,
    .bind_null = sqlite_bind_null,
    .bind_double = sqlite_bind_double,
    .bind_blob = sqlite_bind_blob,
    .step = sqlite_step,
    .column_int64 = sqlite_column_int64,
    .column_double = sqlite_column_double,
    .column_text = sqlite_column_text,
    .column_is_null = sqlite_column_is_null,
    .column_blob = sqlite_column_blob,
    .column_count = sqlite_column_count,
    .column_name = sqlite_column_name,
    .column_type = sqlite_column_type,
    .reset = sqlite_reset,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .set_durability = sqlite_set_durability,
};
