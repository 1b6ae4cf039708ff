/* harness_db.c -- the metadata store a test's tallyd runs on (see harness.h).
 *
 * By default tallyd keeps its SQLite database in the test's data dir and the harness
 * has nothing to do. With TALLY_TEST_DB (a libpq URL of a PostgreSQL server, e.g.
 * postgresql://tallytest@/postgres?host=/tmp/dir&port=5432) or TALLY_TEST_DB_FILE (a
 * file holding such a URL, as scripts/pg-cluster.sh writes it) every it_server gets
 * a database of its own: CREATE DATABASE t_<random> at start, passed to tallyd as
 * --db, DROP DATABASE at cleanup. The tests thus run unchanged on PostgreSQL, each as
 * isolated as in its own data dir, and the ctest runs of one build can share one
 * throwaway cluster (tests/CMakeLists.txt).
 *
 * it_db_share makes the next server a second node on an existing server's store (the
 * same PostgreSQL database, or on SQLite the same database file): multi-node tests.
 *
 * Blobs the same way: with TALLY_TEST_S3_FILE (the endpoint of an S3-compatible test
 * server, scripts/s3-server.sh) every server gets --blobs s3://tally/<random prefix>
 * on it, with s3rver's fixed key in the environment tallyd inherits.
 */
#include "harness.h"

#include "core/fsutil.h"
#include "core/hash.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The server URL from the environment into buf ("" when the tests use SQLite). */
static void base_url(char *buf, size_t size)
{
    buf[0] = '\0';
    const char *url = getenv("TALLY_TEST_DB");
    if (url && *url) {
        snprintf(buf, size, "%s", url);
        return;
    }
    const char *file = getenv("TALLY_TEST_DB_FILE");
    if (!file || !*file)
        return;
    size_t n = 0;
    char *text = tly_read_file(file, size - 1, &n);
    if (text) {
        text[strcspn(text, "\r\n")] = '\0';
        snprintf(buf, size, "%s", text);
    } else {
        fprintf(stderr, "harness: TALLY_TEST_DB_FILE %s is unreadable (cluster not started?)\n", file);
        snprintf(buf, size, "postgresql://unreadable-TALLY_TEST_DB_FILE");
    }
    free(text);
}

int it_db_is_postgres(void)
{
    char url[1024];
    base_url(url, sizeof url);
    return url[0] != '\0';
}

/* url with its database name replaced by name: "scheme://auth/NAME?query". */
static int url_with_db(const char *url, const char *name, char *out, size_t size)
{
    const char *auth = strstr(url, "://");
    if (!auth)
        return -1;
    auth += 3;
    const char *query = strchr(auth, '?');
    const char *end_auth = strchr(auth, '/');
    if (!end_auth || (query && end_auth > query))
        end_auth = query ? query : auth + strlen(auth);
    int n = snprintf(out, size, "%.*s/%s%s", (int)(end_auth - url), url, name, query ? query : "");
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static int admin_exec(const char *url, const char *sql)
{
    PGconn *pg = PQconnectdb(url);
    int rc = -1;
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "harness: cannot connect to %s: %s", url, PQerrorMessage(pg));
    } else {
        PGresult *res = PQexec(pg, sql);
        if (PQresultStatus(res) == PGRES_COMMAND_OK)
            rc = 0;
        else
            fprintf(stderr, "harness: %s: %s", sql, PQerrorMessage(pg));
        PQclear(res);
    }
    PQfinish(pg);
    return rc;
}

/* The first line of the file named by env var `var` into buf, "" if unset. */
static void env_file_line(const char *var, char *buf, size_t size)
{
    buf[0] = '\0';
    const char *file = getenv(var);
    if (!file || !*file)
        return;
    size_t n = 0;
    char *text = tly_read_file(file, size - 1, &n);
    if (text) {
        text[strcspn(text, "\r\n")] = '\0';
        snprintf(buf, size, "%s", text);
    } else {
        fprintf(stderr, "harness: %s %s is unreadable (server not started?)\n", var, file);
    }
    free(text);
}

int it_blobs_are_s3(void)
{
    char ep[512];
    env_file_line("TALLY_TEST_S3_FILE", ep, sizeof ep);
    return ep[0] != '\0';
}

#define S3_BUCKET "tally"

/* A fresh prefix in the test bucket for a new server (S3 runs), else nothing. */
static int blobs_create(it_server *s)
{
    char ep[512], hex[17];
    s->blobs_url[0] = '\0';
    env_file_line("TALLY_TEST_S3_FILE", ep, sizeof ep);
    if (!ep[0])
        return 0;
    if (tly_random_hex(8, hex, sizeof hex) < 0)
        return -1;
    setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);   /* s3rver's built-in account */
    setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    snprintf(s->blobs_url, sizeof s->blobs_url, "s3://" S3_BUCKET "/b%s?endpoint=%s&region=us-east-1&create=1&tmp=%s/s3",
             hex, ep, s->data_dir);
    return 0;
}

int it_blob_file(const it_server *s, const char *sha256, char *out, size_t size)
{
    if (!s->blobs_url[0] || strncmp(s->blobs_url, "file:", 5) == 0) {
        const char *root = s->blobs_url[0] ? s->blobs_url + 5 : NULL;
        int n = root ? snprintf(out, size, "%s/%.2s/%s", root, sha256, sha256)
                     : snprintf(out, size, "%s/blobs/%.2s/%s", s->data_dir, sha256, sha256);
        return n > 0 && (size_t)n < size ? 0 : -1;
    }
    /* s3rver keeps an object as DIR/<bucket>/<key>._S3rver_object; its data dir is
     * in the "data" file next to the endpoint file (scripts/s3-server.sh). */
    const char *ep_file = getenv("TALLY_TEST_S3_FILE");
    const char *prefix = strstr(s->blobs_url, "://" S3_BUCKET "/");
    if (!ep_file || !prefix)
        return -1;
    prefix += strlen("://" S3_BUCKET "/");
    char data_file[4200], dir[4200];
    const char *slash = strrchr(ep_file, '/');
    if (slash)
        snprintf(data_file, sizeof data_file, "%.*s/data", (int)(slash - ep_file), ep_file);
    else
        snprintf(data_file, sizeof data_file, "data");
    size_t n = 0;
    char *text = tly_read_file(data_file, sizeof dir - 1, &n);
    if (!text)
        return -1;
    text[strcspn(text, "\r\n")] = '\0';
    snprintf(dir, sizeof dir, "%s", text);
    free(text);
    int len = snprintf(out, size, "%s/" S3_BUCKET "/%.*s/%.2s/%s._S3rver_object", dir, (int)strcspn(prefix, "?"),
                       prefix, sha256, sha256);
    return len > 0 && (size_t)len < size ? 0 : -1;
}

/* Set by it_db_share for the next it_db_create (servers start one at a time). */
static const it_server *g_share;

void it_db_share(const it_server *with)
{
    g_share = with;
}

/* The next server on with's store: its URL (not its ownership: the database is
 * dropped with `with`), and with's admin.token, since the admin exists already. */
static int share_db(it_server *s, const it_server *with)
{
    char from[4200], to[4200];
    if (with->db_url[0])
        snprintf(s->db_url, sizeof s->db_url, "%s", with->db_url);
    else
        snprintf(s->db_url, sizeof s->db_url, "sqlite:%s/tally.db", with->data_dir);
    if (with->blobs_url[0])
        snprintf(s->blobs_url, sizeof s->blobs_url, "%s", with->blobs_url);
    else
        snprintf(s->blobs_url, sizeof s->blobs_url, "file:%s/blobs", with->data_dir);
    snprintf(from, sizeof from, "%s/admin.token", with->data_dir);
    snprintf(to, sizeof to, "%s/admin.token", s->data_dir);
    if (it_copy_file(from, to) < 0) {
        fprintf(stderr, "harness: cannot copy %s\n", from);
        return -1;
    }
    return 0;
}

int it_db_create(it_server *s)
{
    char url[1024], hex[17], sql[128];
    s->db_name[0] = '\0';
    s->db_url[0] = '\0';
    s->blobs_url[0] = '\0';
    if (g_share) {
        const it_server *with = g_share;
        g_share = NULL;
        return share_db(s, with);
    }
    if (blobs_create(s) < 0)
        return -1;
    base_url(url, sizeof url);
    if (!url[0])
        return 0;
    if (tly_random_hex(8, hex, sizeof hex) < 0)
        return -1;
    snprintf(s->db_name, sizeof s->db_name, "t_%s", hex);
    if (url_with_db(url, s->db_name, s->db_url, sizeof s->db_url) < 0) {
        fprintf(stderr, "harness: cannot make a database URL from %s\n", url);
        s->db_name[0] = s->db_url[0] = '\0';
        return -1;
    }
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", s->db_name);
    if (admin_exec(url, sql) < 0) {
        s->db_name[0] = s->db_url[0] = '\0';
        return -1;
    }
    return 0;
}

void it_db_drop(it_server *s)
{
    char url[1024], sql[128];
    if (!s->db_name[0])
        return;
    base_url(url, sizeof url);
    if (getenv("TALLY_IT_KEEP")) {
        fprintf(stderr, "harness: keeping database %s (TALLY_IT_KEEP)\n", s->db_name);
    } else if (url[0]) {
        /* WITH (FORCE): a killed tallyd's sessions may not be gone yet. */
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", s->db_name);
        admin_exec(url, sql);
    }
    s->db_name[0] = s->db_url[0] = '\0';
}
