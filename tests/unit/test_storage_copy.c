/* test_storage_copy.c -- tly_store_copy (storage/store_copy.c) and its table list.
 *
 * The list (sq_tables in migrations.c) must name every table of the schema, in an
 * order where each table comes after the tables its foreign keys reference: checked
 * against sqlite_master and pragma_foreign_key_list of a fresh database, so a
 * migration that adds a table without listing it fails here. Then values that are
 * easy to lose on the way (int64 extremes, doubles that need all 17 digits, -0.0, the
 * smallest denormal, text with quotes and non-ASCII, '' next to NULL, blobs with
 * every byte value) are copied SQLite -> SQLite and, with TALLY_TEST_DB /
 * TALLY_TEST_DB_FILE (ctest's unit.test_storage_copy_pg), SQLite -> PostgreSQL, and
 * read back exactly. The checksums must catch a double changed by one ulp, and a
 * non-empty target is refused unless overwrite is asked for. Blobs: tly_blob_copy
 * between two local stores copies what the target lacks (strays in the fan-out
 * directories are not blobs), skips the rest on a rerun, and reports a file whose
 * bytes do not hash to its name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/fsutil.h"
#include "storage/blob.h"
#include "storage/sql.h"
#include "unit_util.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int listed(const char *name)
{
    for (size_t i = 0; i < sq_table_count; i++)
        if (strcmp(sq_tables[i].name, name) == 0)
            return (int)i;
    return -1;
}

struct names {
    char name[64][64];
    int n;
};

static int collect_name(const sq_row *r, void *ctx, tly_error *err)
{
    (void)err;
    struct names *n = ctx;
    if (n->n < 64)
        sq_col_copy(r, 0, n->name[n->n++], sizeof n->name[0]);
    return 0;
}

static void test_table_list_matches_schema(void **state)
{
    (void)state;
    char dir[256], url[320];
    tly_store *st = NULL;
    tly_error err;
    assert_int_equal(unit_store_open(dir, sizeof dir, "copy", "sqlite:%s/t.db", url, sizeof url, &st), 0);
    /* Every table of the schema is listed... */
    struct names tables = {.n = 0};
    assert_true(sq_each(st, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                        collect_name, &tables, &err, "") > 0);
    for (int i = 0; i < tables.n; i++)
        if (strcmp(tables.name[i], "schema_migrations") != 0 && listed(tables.name[i]) < 0)
            fail_msg("table %s is in the schema but not in sq_tables (storage/migrations.c)", tables.name[i]);
    assert_int_equal(tables.n, (int)sq_table_count + 1);   /* + schema_migrations; none listed twice */
    /* ...after every table it references. */
    for (size_t i = 0; i < sq_table_count; i++) {
        struct names refs = {.n = 0};
        assert_true(sq_each(st, "SELECT \"table\" FROM pragma_foreign_key_list(?)", collect_name, &refs, &err, "t",
                            sq_tables[i].name) >= 0);
        for (int k = 0; k < refs.n; k++) {
            int at = listed(refs.name[k]);
            if (at < 0 || at >= (int)i)
                fail_msg("sq_tables lists %s before %s, which it references", sq_tables[i].name, refs.name[k]);
        }
    }
    /* Each entry's key is the table's primary key, and identity_id says whether it
     * is the auto-increment id. */
    for (size_t i = 0; i < sq_table_count; i++) {
        struct names pk = {.n = 0};
        assert_true(sq_each(st, "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", collect_name, &pk,
                            &err, "t", sq_tables[i].name) > 0);
        char key[256] = "";
        for (int k = 0; k < pk.n; k++)
            snprintf(key + strlen(key), sizeof key - strlen(key), "%s%s", k ? ", " : "", pk.name[k]);
        if (strcmp(key, sq_tables[i].key) != 0 || pk.n != sq_tables[i].key_columns)
            fail_msg("sq_tables: %s has key \"%s\" (%d columns), the schema says \"%s\"", sq_tables[i].name,
                     sq_tables[i].key, sq_tables[i].key_columns, key);
        int64_t autoinc = -1;
        assert_int_equal(sq_int64(st, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
                                      " AND sql LIKE '%AUTOINCREMENT%'",
                                  &autoinc, &err, "t", sq_tables[i].name),
                         0);
        if (autoinc != sq_tables[i].identity_id)
            fail_msg("sq_tables: %s identity_id is %d, the schema says %lld", sq_tables[i].name,
                     sq_tables[i].identity_id, (long long)autoinc);
    }
    assert_int_equal(tly_store_copy_check_tables(st, &err), 0);
    unit_store_remove(st, dir);
}

static void test_unlisted_table_is_refused(void **state)
{
    (void)state;
    char dir[256], url[320];
    tly_store *st = NULL;
    tly_error err;
    assert_int_equal(unit_store_open(dir, sizeof dir, "copy", "sqlite:%s/t.db", url, sizeof url, &st), 0);
    assert_int_equal(sq_exec(st, "CREATE TABLE shiny_new (id INTEGER PRIMARY KEY)", &err, ""), 0);
    assert_int_equal(tly_store_copy_check_tables(st, &err), -1);
    assert_string_equal(err.code, "schema_mismatch");
    assert_non_null(strstr(err.message, "shiny_new"));
    unit_store_remove(st, dir);
}

/* ---- values through a copy ------------------------------------------------------ */

static const double DOUBLES[] = {0.1, 1.0 / 3.0, -0.0, 4.9406564584124654e-324, DBL_MAX, -2.2250738585072014e-308,
                                 123456789.123456789};
#define N_ITEMS ((int)(sizeof DOUBLES / sizeof DOUBLES[0]))

#define N_EVENTS 150   /* two full multi-row INSERTs (64 rows each) and a remainder */

static void fill_source(tly_store *st)
{
    tly_error err;
    assert_int_equal(tly_store_begin(st, &err), 0);
    for (int i = 0; i < N_EVENTS; i++)
        assert_int_equal(sq_exec(st, "INSERT INTO item_events (item_id, project_id, at, kind, detail) VALUES (?, 7, ?, ?, ?)",
                                 &err, "iitt", (int64_t)(100 + i % 3), (int64_t)i * 1000, "judged",
                                 i % 5 ? "{\"n\":1}" : NULL),
                         0);
    assert_int_equal(tly_store_commit(st, &err), 0);
    assert_int_equal(sq_exec(st,
                             "INSERT INTO projects (id, name, media, state, template_json, workflow, guidelines, "
                             "created_by, created_at) VALUES (?, ?, 'image', 'active', NULL, '{}', ?, 1, ?)",
                             &err, "itti", (int64_t)7, "", "it's \"quoted\" \xc3\xa9t\xc3\xa9 \xe2\x9c\x93",
                             (int64_t)INT64_MIN),
                     0);
    unsigned char bytes[256];
    for (int i = 0; i < 256; i++)
        bytes[i] = (unsigned char)i;
    for (int i = 0; i < N_ITEMS; i++) {
        char name[32], sha[65];
        snprintf(name, sizeof name, "item %d", i);
        snprintf(sha, sizeof sha, "%064d", i);
        assert_int_equal(sq_exec(st,
                                 "INSERT INTO items (id, project_id, name, sha256, size, state, gold, created_at)"
                                 " VALUES (?, 7, ?, ?, ?, 'done', ?, ?)",
                                 &err, "ittiti", (int64_t)(100 + i), name, sha,
                                 i == 0 ? (int64_t)INT64_MAX : (int64_t)i, i % 2 ? NULL : "", (int64_t)i),
                         0);
        assert_int_equal(sq_exec(st,
                                 "INSERT INTO results (item_id, project_id, answer, confidence, method, judgments,"
                                 " updated_at) VALUES (?, 7, '{}', ?, 'vote', 1, 0)",
                                 &err, "if", (int64_t)(100 + i), DOUBLES[i]),
                         0);
        assert_int_equal(sq_exec(st, "INSERT INTO previews (item_id, kind, sha256, data) VALUES (?, ?, '', ?)", &err,
                                 "itb", (int64_t)(100 + i), i % 2 ? "thumb" : "Thumb", bytes, (size_t)(i * 40)),
                         0);
    }
}

struct readback {
    double conf[N_ITEMS];
    int64_t size[N_ITEMS];
    int n;
};

static int read_result(const sq_row *r, void *ctx, tly_error *err)
{
    (void)err;
    struct readback *b = ctx;
    if (b->n < N_ITEMS) {
        b->conf[b->n] = sq_col_double(r, 0);
        b->size[b->n] = sq_col_i64(r, 1);
        b->n++;
    }
    return 0;
}

static int check_preview(const sq_row *r, void *ctx, tly_error *err)
{
    int *count = ctx;
    int64_t item = sq_col_i64(r, 0);
    tly_buf b;
    tly_buf_init(&b, 4096);
    assert_int_equal(sq_col_blob(r, 1, &b, err), 0);
    assert_int_equal(b.len, (size_t)((item - 100) * 40));
    for (size_t i = 0; i < b.len; i++)
        assert_int_equal((unsigned char)b.data[i], i);
    tly_buf_free(&b);
    (*count)++;
    return 0;
}

static void copy_and_check(const char *target_url)
{
    char dir[256], url[320];
    tly_store *src = NULL, *dst = NULL;
    tly_error err;
    assert_int_equal(unit_store_open(dir, sizeof dir, "copy", "sqlite:%s/src.db", url, sizeof url, &src), 0);
    fill_source(src);
    char local[320];
    snprintf(local, sizeof local, "sqlite:%s/dst.db", dir);
    if (!target_url)
        target_url = local;
    if (tly_store_open(target_url, &dst, &err) < 0)
        fail_msg("open target: %s", err.message);

    static tly_store_copy_report rep;
    assert_int_equal(tly_store_copy(src, dst, NULL, &rep, &err), 0);
    assert_int_equal(rep.mismatches, 0);
    assert_int_equal(rep.n_tables, sq_table_count);
    assert_int_equal(rep.rows, 1 + 3 * N_ITEMS + N_EVENTS);
    for (size_t i = 0; i < rep.n_tables; i++) {
        assert_true(rep.tables[i].match);
        assert_int_equal(rep.tables[i].source_rows, rep.tables[i].target_rows);
        assert_string_equal(rep.tables[i].source_checksum, rep.tables[i].target_checksum);
    }

    /* The values themselves, exactly as the source gives them (SQLite itself stores
     * -0.0 as 0: an integral REAL is kept as an integer on disk). */
    static const char *const read_sql = "SELECT r.confidence, i.size FROM results r JOIN items i ON i.id = r.item_id"
                                        " ORDER BY r.item_id";
    struct readback a = {.n = 0}, b = {.n = 0};
    assert_int_equal(sq_each(src, read_sql, read_result, &a, &err, ""), N_ITEMS);
    assert_int_equal(sq_each(dst, read_sql, read_result, &b, &err, ""), N_ITEMS);
    for (int i = 0; i < N_ITEMS; i++) {
        if (memcmp(&b.conf[i], &a.conf[i], sizeof(double)) != 0)   /* the bits */
            fail_msg("double %d: %.17g became %.17g", i, a.conf[i], b.conf[i]);
        if (DOUBLES[i] != 0)
            assert_true(a.conf[i] == DOUBLES[i]);
        assert_int_equal(b.size[i], i == 0 ? INT64_MAX : i);
    }
    int64_t n = 0;
    assert_int_equal(sq_int64(dst, "SELECT created_at FROM projects WHERE id = 7", &n, &err, ""), 0);
    assert_int_equal(n, INT64_MIN);
    assert_int_equal(sq_int64(dst, "SELECT COUNT(*) FROM items WHERE gold IS NULL", &n, &err, ""), 0);
    assert_int_equal(n, N_ITEMS / 2);
    assert_int_equal(sq_int64(dst, "SELECT COUNT(*) FROM items WHERE gold = ''", &n, &err, ""), 0);
    assert_int_equal(n, N_ITEMS - N_ITEMS / 2);
    assert_int_equal(sq_int64(dst, "SELECT COUNT(*) FROM item_events WHERE detail IS NULL", &n, &err, ""), 0);
    assert_int_equal(n, N_EVENTS / 5);
    char text[128];
    tly_project p;
    assert_int_equal(tly_store_project_get(dst, 7, &p, &err), 0);
    snprintf(text, sizeof text, "%s", p.guidelines ? p.guidelines : "(null)");
    tly_project_clear(&p);
    assert_string_equal(text, "it's \"quoted\" \xc3\xa9t\xc3\xa9 \xe2\x9c\x93");
    int previews = 0;
    assert_true(sq_each(dst, "SELECT item_id, data FROM previews", check_preview, &previews, &err, "") >= 0);
    assert_int_equal(previews, N_ITEMS);

    /* New rows get ids past the copied ones (PostgreSQL: the sequence was moved). */
    int64_t id = 0;
    assert_int_equal(tly_store_project_create(dst, &(tly_project){.name = "new", .media = "image", .state = "active"},
                                              &id, &err),
                     0);
    assert_true(id > 7);

    /* A double off by one ulp changes the checksum. */
    size_t results = 0;
    while (strcmp(rep.tables[results].name, "results") != 0)
        results++;
    char sum[65];
    int64_t rows = 0;
    assert_int_equal(tly_store_table_checksum(dst, "results", &rows, sum, &err), 0);
    assert_string_equal(sum, rep.tables[results].source_checksum);
    assert_int_equal(sq_exec(dst, "UPDATE results SET confidence = ? WHERE item_id = 101", &err, "f",
                             nextafter(DOUBLES[1], 1.0)),
                     0);
    assert_int_equal(tly_store_table_checksum(dst, "results", &rows, sum, &err), 0);
    assert_int_equal(rows, N_ITEMS);
    assert_string_not_equal(sum, rep.tables[results].source_checksum);

    /* Not into a store with rows, unless asked to overwrite. */
    assert_int_equal(tly_store_copy(src, dst, NULL, &rep, &err), -1);
    assert_string_equal(err.code, "target_not_empty");
    assert_non_null(strstr(err.message, "projects"));
    tly_store_copy_options opt = {.overwrite = 1};
    assert_int_equal(tly_store_copy(src, dst, &opt, &rep, &err), 0);
    assert_int_equal(rep.mismatches, 0);
    assert_int_equal(sq_int64(dst, "SELECT COUNT(*) FROM projects", &n, &err, ""), 0);
    assert_int_equal(n, 1);

    /* A store is not copied into itself. */
    assert_int_equal(tly_store_copy(src, src, NULL, &rep, &err), -1);
    tly_store_close(dst);
    unit_store_remove(src, dir);
}

static void test_copy_sqlite_to_sqlite(void **state)
{
    (void)state;
    copy_and_check(NULL);
}

/* ---- SQLite -> PostgreSQL: only with TALLY_TEST_DB / TALLY_TEST_DB_FILE ---------------- */

/* The server's URL with database name instead of its own ("scheme://auth/NAME?query"). */
static void url_with_db(const char *url, const char *name, char *out, size_t size)
{
    const char *auth = strstr(url, "://") + 3;
    const char *query = strchr(auth, '?'), *slash = strchr(auth, '/');
    if (!slash || (query && slash > query))
        slash = query ? query : auth + strlen(auth);
    snprintf(out, size, "%.*s/%s%s", (int)(slash - url), url, name, query ? query : "");
}

static void admin_exec(const char *url, const char *sql)
{
    const struct tly_sql_driver *d = &tly_postgres_driver;
    tly_sql_conn *c = NULL;
    tly_error err;
    if (d->connect(url, &c, &err) < 0)
        fail_msg("connect: %s", err.message);
    if (d->exec(c, sql, &err) < 0)
        fail_msg("%s: %s", sql, err.message);
    d->disconnect(c);
}

static void test_copy_sqlite_to_postgres(void **state)
{
    (void)state;
    const char *base = unit_live_db_url();
    if (!base) {
        fprintf(stderr, "no PostgreSQL server (TALLY_TEST_DB / TALLY_TEST_DB_FILE): skipped\n");
        skip();
    }
    char name[64], create[128], drop[160], url[1200];
    snprintf(name, sizeof name, "copy_%ld", (long)getpid());
    snprintf(create, sizeof create, "CREATE DATABASE %s", name);
    snprintf(drop, sizeof drop, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    admin_exec(base, drop);
    admin_exec(base, create);
    url_with_db(base, name, url, sizeof url);
    copy_and_check(url);
    admin_exec(base, drop);
}

/* ---- blobs: tly_blob_copy between two local stores ------------------------------- */

static void test_blob_copy(void **state)
{
    (void)state;
    char dir[256], from_url[300], to_url[300], path[400], sha[65];
    tly_blob_store *from = NULL, *to = NULL;
    tly_error err;
    assert_int_equal(unit_tmpdir(dir, sizeof dir, "blobcopy"), 0);
    snprintf(from_url, sizeof from_url, "file:%s/a", dir);
    snprintf(to_url, sizeof to_url, "file:%s/b", dir);
    assert_int_equal(tly_blob_open(from_url, &from, &err), 0);
    assert_int_equal(tly_blob_open(to_url, &to, &err), 0);
    static unsigned char big[600 * 1024];   /* more than one copy chunk */
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 7);
    assert_int_equal(tly_blob_put_buf(from, "one", 3, sha, &err), 0);
    assert_int_equal(tly_blob_put_buf(from, "", 0, sha, &err), 0);
    assert_int_equal(tly_blob_put_buf(from, big, sizeof big, sha, &err), 0);
    /* Strays that are not blobs: never listed. */
    snprintf(path, sizeof path, "%s/a/%.2s/notes.txt", dir, sha);
    assert_int_equal(tly_write_file_atomic(path, "x", 1, 0600), 0);
    snprintf(path, sizeof path, "%s/a/00/%s", dir, sha);   /* a blob name in the wrong folder */
    assert_int_equal(tly_write_file_atomic(path, "x", 1, 0600), 0);

    tly_blob_copy_report rep;
    assert_int_equal(tly_blob_copy(from, to, &rep, &err), 0);
    assert_int_equal(rep.copied, 3);
    assert_int_equal(rep.skipped, 0);
    assert_int_equal(rep.bytes, 3 + sizeof big);
    uint64_t size = 0;
    assert_int_equal(tly_blob_exists(to, sha, &size, &err), 1);
    assert_int_equal(size, sizeof big);
    /* Again: nothing to do. */
    assert_int_equal(tly_blob_copy(from, to, &rep, &err), 0);
    assert_int_equal(rep.copied, 0);
    assert_int_equal(rep.skipped, 3);
    /* A file whose bytes are not its name's: reported, the others still copied. */
    const char *liar = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";   /* SHA-256 of "a" */
    snprintf(path, sizeof path, "%s/a/%.2s/%s", dir, liar, liar);
    assert_int_equal(tly_write_file_atomic(path, "b", 1, 0600), 0);
    assert_int_equal(tly_blob_copy(from, to, &rep, &err), -1);
    assert_int_equal(rep.failed, 1);
    assert_int_equal(rep.skipped, 3);
    assert_string_equal(err.code, "blob_damaged");
    assert_non_null(strstr(err.message, liar));
    assert_int_equal(tly_blob_exists(to, liar, NULL, &err), 0);
    tly_blob_close(to);
    tly_blob_close(from);
    tly_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_list_matches_schema),
        cmocka_unit_test(test_unlisted_table_is_refused),
        cmocka_unit_test(test_copy_sqlite_to_sqlite),
        cmocka_unit_test(test_copy_sqlite_to_postgres),
        cmocka_unit_test(test_blob_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
