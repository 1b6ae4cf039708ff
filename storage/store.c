/* store.c -- opening and closing a store, per-thread connections, transactions.
 *
 * A tly_store is just "which driver, which DSN" plus a pthread key. The first call
 * a thread makes on a store opens that thread's own connection (SQLite handles are
 * opened NOMUTEX and must not be shared), keeps it under the key, and registers it
 * in g_conns so nothing is lost:
 *   - a thread that exits runs the key destructor, which unregisters and closes
 *     its connection;
 *   - tly_store_close deletes the key first (so threads exiting later no longer run
 *     the destructor: no double close), then closes every registered connection of
 *     the store, including the calling thread's.
 * The destructor only dereferences its connection after finding it in g_conns under
 * g_conns_mu, so a close racing with a thread's exit closes each connection once.
 *
 * Transactions are per connection, hence per thread: tly_store_begin on thread A has
 * no effect on operations running on thread B.
 */
#include "storage/sql.h"

#include <stdlib.h>
#include <string.h>

struct sq_conn {
    tly_store *st;
    tly_sql_conn *dc;
    struct sq_conn *prev, *next;
};

static pthread_mutex_t g_conns_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sq_conn *g_conns;

static void conn_unlink(struct sq_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        g_conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void conn_destructor(void *value)
{
    struct sq_conn *found = NULL;
    const struct tly_sql_driver *drv = NULL;
    pthread_mutex_lock(&g_conns_mu);
    for (struct sq_conn *c = g_conns; c; c = c->next) {
        if (c == value) {
            found = c;
            drv = c->st->drv;
            conn_unlink(c);
            break;
        }
    }
    pthread_mutex_unlock(&g_conns_mu);
    if (found) {
        drv->disconnect(found->dc);
        free(found);
    }
}

tly_sql_conn *sq_conn(tly_store *st, tly_error *err)
{
    struct sq_conn *c = pthread_getspecific(st->key);
    if (c)
        return c->dc;
    if (!(c = calloc(1, sizeof *c))) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        return NULL;
    }
    c->st = st;
    if (st->drv->connect(st->dsn, &c->dc, err) < 0) {
        free(c);
        return NULL;
    }
    if (pthread_setspecific(st->key, c) != 0) {
        st->drv->disconnect(c->dc);
        free(c);
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "cannot keep a per-thread connection");
        return NULL;
    }
    pthread_mutex_lock(&g_conns_mu);
    c->next = g_conns;
    if (g_conns)
        g_conns->prev = c;
    g_conns = c;
    pthread_mutex_unlock(&g_conns_mu);
    return c->dc;
}

int tly_store_set_durability(tly_store *st, tly_durability d, tly_error *err)
{
    tly_sql_conn *c = sq_conn(st, err);
    return c ? st->drv->set_durability(c, d, err) : -1;
}

/* URL prefix -> driver; a NULL driver is a backend that is reserved but not built. */
static const struct {
    const char *prefix;
    const struct tly_sql_driver *drv;
} backends[] = {
    {"sqlite:", &tly_sqlite_driver},
    {"postgres://", &tly_postgres_driver},
    {"postgresql://", &tly_postgres_driver},
};

static int resolve_url(const char *url, const struct tly_sql_driver **drv, const char **dsn,
                       tly_error *err)
{
    if (!url || !*url)
        return tly_fail(err, TLY_E_INVALID, "invalid", "empty store URL");
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        size_t n = strlen(backends[i].prefix);
        if (strncmp(url, backends[i].prefix, n) != 0)
            continue;
        if (!backends[i].drv)
            return tly_fail(err, TLY_E_UNSUPPORTED, "unsupported_backend",
                            "store backend '%.*s' is not available in this build", (int)n,
                            url);
        *drv = backends[i].drv;
        /* libpq parses the whole URL itself; SQLite wants the path after "sqlite:". */
        *dsn = backends[i].drv == &tly_postgres_driver ? url : url + n;
        if (!**dsn)
            return tly_fail(err, TLY_E_INVALID, "invalid", "store URL '%s' has no path", url);
        return 0;
    }
    if (strstr(url, "://"))
        return tly_fail(err, TLY_E_UNSUPPORTED, "unsupported_backend",
                        "unknown store URL scheme in '%s'", url);
    *drv = &tly_sqlite_driver;   /* a plain path */
    *dsn = url;
    return 0;
}

int tly_store_open(const char *url, tly_store **out, tly_error *err)
{
    const struct tly_sql_driver *drv = NULL;
    const char *dsn = NULL;
    *out = NULL;
    if (resolve_url(url, &drv, &dsn, err) < 0)
        return -1;
    tly_store *st = calloc(1, sizeof *st);
    if (!st)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    st->drv = drv;
    pthread_mutex_init(&st->combiner_mu, NULL);
    st->dsn = strdup(dsn);
    st->sql_job_claim = sq_substitute(sq_job_claim_template, "@LOCK@", drv->claim_lock);
    char *worker_ids = sq_substitute(drv->list_agg, "@X@", "j.worker_id");
    for (int i = 0; i < 2 && worker_ids; i++)
        st->sql_export_rows[i] = sq_substitute(sq_export_rows_template[i], "@WORKER_IDS@", worker_ids);
    free(worker_ids);
    if (!st->dsn || !st->sql_job_claim || !st->sql_export_rows[0] || !st->sql_export_rows[1] ||
        sq_work_sql_build(st) < 0) {
        tly_store_close(st);
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    if (pthread_key_create(&st->key, conn_destructor) != 0) {
        tly_store_close(st);
        return tly_fail(err, TLY_E_INTERNAL, "no_keys", "cannot create a thread key");
    }
    st->key_ok = 1;
    if (sq_migrate(st, err) < 0) {
        tly_store_close(st);
        return -1;
    }
    *out = st;
    return 0;
}

void tly_store_close(tly_store *st)
{
    if (!st)
        return;
    sq_combiner_stop(st);   /* its thread's connection closes as the thread exits */
    pthread_mutex_destroy(&st->combiner_mu);
    if (st->key_ok) {
        struct sq_conn *mine = NULL;
        pthread_mutex_lock(&g_conns_mu);
        pthread_key_delete(st->key);
        for (struct sq_conn *c = g_conns, *next; c; c = next) {
            next = c->next;
            if (c->st != st)
                continue;
            conn_unlink(c);
            c->next = mine;
            mine = c;
        }
        pthread_mutex_unlock(&g_conns_mu);
        while (mine) {
            struct sq_conn *next = mine->next;
            st->drv->disconnect(mine->dc);
            free(mine);
            mine = next;
        }
    }
    sq_copy_sql_free(st->copy_sql);   /* after the connections whose caches point into it */
    free(st->sql_job_claim);
    sq_work_sql_free(st->work_sql);   /* after the connections, as copy_sql */
    free(st->sql_export_rows[0]);
    free(st->sql_export_rows[1]);
    free(st->dsn);
    free(st);
}

const char *tly_store_backend_name(const tly_store *st)
{
    return st->drv->name;
}

int tly_store_schema_version(tly_store *st, int *out, tly_error *err)
{
    int64_t v = 0;
    if (sq_int64(st, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &v, err, "") <
        0)
        return -1;
    *out = (int)v;
    return 0;
}

int tly_store_begin(tly_store *st, tly_error *err)
{
    tly_sql_conn *c = sq_conn(st, err);
    return c ? st->drv->begin(c, err) : -1;
}

int tly_store_commit(tly_store *st, tly_error *err)
{
    tly_sql_conn *c = sq_conn(st, err);
    if (!c)
        return -1;
    if (st->drv->commit(c, err) < 0) {
        /* Never leave the connection inside a half-done transaction. */
        st->drv->rollback(c);
        return -1;
    }
    return 0;
}

void tly_store_rollback(tly_store *st)
{
    struct sq_conn *c = pthread_getspecific(st->key);
    if (c)
        st->drv->rollback(c->dc);
}
