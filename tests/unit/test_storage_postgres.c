/* test_storage_postgres.c -- the PostgreSQL driver (storage/postgres.c).
 *
 * Without a server: the `?` -> $n rewriting (which must leave quoted text and
 * comments alone) and the mapping of SQLSTATEs to tly_status that the store's error
 * handling relies on (unique violation = CONFLICT, foreign key = NOT_FOUND, as on
 * SQLite). With TALLY_TEST_DB / TALLY_TEST_DB_FILE (ctest's unit.test_storage_postgres_pg
 * run): values through the driver table (int64 extremes, doubles, text with quotes
 * and `?`, bytea, NULLs, booleans), CONFLICT with the transaction going on, and the
 * statement cache meeting other SQL at a reused address. Otherwise those skip; the
 * store on PostgreSQL as a whole is exercised by the integration tests' _pg runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/sql.h"
#include "unit_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void expect_rewrite(const char *in, const char *want, int want_n)
{
    int n = -1;
    char *out = sq_pg_rewrite_placeholders(in, &n);
    assert_non_null(out);
    assert_string_equal(out, want);
    assert_int_equal(n, want_n);
    free(out);
}

static void test_rewrite_plain(void **state)
{
    (void)state;
    expect_rewrite("SELECT 1", "SELECT 1", 0);
    expect_rewrite("", "", 0);
    expect_rewrite("SELECT id FROM t WHERE a = ? AND b = ?", "SELECT id FROM t WHERE a = $1 AND b = $2", 2);
    expect_rewrite("INSERT INTO t VALUES (?,?,?)", "INSERT INTO t VALUES ($1,$2,$3)", 3);
    expect_rewrite("?", "$1", 1);
}

static void test_rewrite_many(void **state)
{
    (void)state;
    /* Two-digit numbers: the output grows past the input's length. */
    char in[64] = "", want[128] = "";
    for (int i = 1; i <= 12; i++) {
        strcat(in, "?");
        char num[8];
        snprintf(num, sizeof num, "$%d", i);
        strcat(want, num);
    }
    expect_rewrite(in, want, 12);
}

static void test_rewrite_skips_quotes_and_comments(void **state)
{
    (void)state;
    expect_rewrite("SELECT '?' , ?", "SELECT '?' , $1", 1);
    expect_rewrite("SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1", 1);
    expect_rewrite("SELECT \"odd?name\" FROM t WHERE x = ?", "SELECT \"odd?name\" FROM t WHERE x = $1", 1);
    expect_rewrite("SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2", 2);
    expect_rewrite("SELECT /* ? */ ?", "SELECT /* ? */ $1", 1);
    /* Unterminated quote or comment: copied as is, nothing invented. */
    expect_rewrite("SELECT 'open ?", "SELECT 'open ?", 0);
    expect_rewrite("SELECT ? /* open ?", "SELECT $1 /* open ?", 1);
}

static void test_status_of(void **state)
{
    (void)state;
    assert_int_equal(sq_pg_status_of("23505", 0), TLY_E_CONFLICT);
    assert_int_equal(sq_pg_status_of("23503", 0), TLY_E_NOT_FOUND);
    assert_int_equal(sq_pg_status_of("40001", 0), TLY_E_BUSY);
    assert_int_equal(sq_pg_status_of("40P01", 0), TLY_E_BUSY);
    assert_int_equal(sq_pg_status_of("55P03", 0), TLY_E_BUSY);
    assert_int_equal(sq_pg_status_of("53300", 0), TLY_E_BUSY);
    assert_int_equal(sq_pg_status_of("53200", 0), TLY_E_INTERNAL);
    assert_int_equal(sq_pg_status_of("42601", 0), TLY_E_IO);   /* syntax error: a bug, not the caller's */
    assert_int_equal(sq_pg_status_of("23502", 0), TLY_E_IO);   /* not null: as SQLite maps it */
    assert_int_equal(sq_pg_status_of(NULL, 0), TLY_E_IO);
    /* A lost connection wins over whatever the last result said: try again. */
    assert_int_equal(sq_pg_status_of("23505", 1), TLY_E_BUSY);
    assert_int_equal(sq_pg_status_of(NULL, 1), TLY_E_BUSY);
}

static void test_driver_table(void **state)
{
    (void)state;
    const struct tly_sql_driver *d = &tly_postgres_driver;
    assert_string_equal(d->name, "postgres");
    assert_string_equal(d->claim_lock, "FOR UPDATE SKIP LOCKED");
    assert_string_equal(d->blob_type, "BYTEA");
    assert_non_null(strstr(d->pk_type, "PRIMARY KEY"));
    assert_non_null(strstr(d->list_agg, "@X@"));
    assert_non_null(d->migrate_lock);
    assert_non_null(d->migrate_unlock);
    /* Every function of the table is there (a NULL would crash the store). */
    assert_non_null(d->connect);
    assert_non_null(d->disconnect);
    assert_non_null(d->exec);
    assert_non_null(d->prepare);
    assert_non_null(d->step);
    assert_non_null(d->column_blob);
    assert_non_null(d->set_durability);
}

/* ---- against a server: only with TALLY_TEST_DB / TALLY_TEST_DB_FILE (the _pg run) --- */

static const struct tly_sql_driver *D = &tly_postgres_driver;

static int live_setup(void **state)
{
    const char *url = unit_live_db_url();
    tly_sql_conn *c = NULL;
    tly_error err;
    if (!url) {
        *state = NULL;
        return 0;
    }
    if (D->connect(url, &c, &err) < 0) {
        fprintf(stderr, "connect %s: %s\n", url, err.message);
        return -1;
    }
    /* A temp table: private to this session, gone with it. */
    if (D->exec(c, "CREATE TEMP TABLE t (id BIGINT PRIMARY KEY, n BIGINT, x DOUBLE PRECISION, s TEXT, b BYTEA)",
                &err) < 0) {
        D->disconnect(c);
        return -1;
    }
    *state = c;
    return 0;
}

static int live_teardown(void **state)
{
    if (*state)
        D->disconnect(*state);
    return 0;
}

/* One statement with the given binds already done; returns step's first result. */
static tly_sql_stmt *run(tly_sql_conn *c, const char *sql, int *rc, tly_error *err)
{
    tly_sql_stmt *st = D->prepare(c, sql, err);
    assert_non_null(st);
    *rc = D->step(st, err);
    return st;
}

static void test_live_values(void **state)
{
    tly_sql_conn *c = *state;
    if (!c)
        skip();
    tly_error err;
    static const char ins[] = "INSERT INTO t (id, n, x, s, b) VALUES (?, ?, ?, ?, ?)";
    static const unsigned char bytes[] = {0, 1, 0xff, '\\', 'x', 0};
    tly_sql_stmt *st = D->prepare(c, ins, &err);
    assert_non_null(st);
    assert_int_equal(D->bind_int64(st, 1, 1), 0);
    assert_int_equal(D->bind_int64(st, 2, INT64_MIN), 0);
    assert_int_equal(D->bind_double(st, 3, 0.1), 0);
    assert_int_equal(D->bind_text(st, 4, "it's ? \"q\""), 0);
    assert_int_equal(D->bind_blob(st, 5, bytes, sizeof bytes), 0);
    assert_int_equal(D->step(st, &err), 0);
    D->reset(st);
    /* The same statement again, with NULLs where numbers were. */
    assert_int_equal(D->bind_int64(st, 1, 2), 0);
    assert_int_equal(D->bind_null(st, 2), 0);
    assert_int_equal(D->bind_null(st, 3), 0);
    assert_int_equal(D->bind_text(st, 4, NULL), 0);
    assert_int_equal(D->bind_null(st, 5), 0);
    assert_int_equal(D->step(st, &err), 0);
    D->reset(st);

    int rc;
    st = run(c, "SELECT n, x, s, b, n IS NULL, id FROM t ORDER BY id", &rc, &err);
    assert_int_equal(rc, 1);
    assert_true(D->column_int64(st, 0) == INT64_MIN);
    assert_true(D->column_double(st, 1) == 0.1);   /* exact: float8 text round-trips */
    assert_string_equal(D->column_text(st, 2), "it's ? \"q\"");
    size_t len = 0;
    const void *b = D->column_blob(st, 3, &len);
    assert_int_equal(len, sizeof bytes);
    assert_memory_equal(b, bytes, sizeof bytes);
    assert_int_equal(D->column_int64(st, 4), 0);   /* boolean 'f' */
    assert_int_equal(D->step(st, &err), 1);
    assert_true(D->column_is_null(st, 0));
    assert_null(D->column_text(st, 2));
    assert_int_equal(D->column_int64(st, 4), 1);   /* boolean 't' */
    assert_int_equal(D->step(st, &err), 0);
    D->reset(st);

    /* Untyped in the statement, typed by the binds: INSERT ... SELECT ?, ? */
    static const char sel_ins[] = "INSERT INTO t (id, n) SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM t WHERE id = ?)";
    st = D->prepare(c, sel_ins, &err);
    assert_non_null(st);
    D->bind_int64(st, 1, 3);
    D->bind_int64(st, 2, 42);
    D->bind_int64(st, 3, 3);
    assert_int_equal(D->step(st, &err), 0);
    D->reset(st);
}

static void test_live_errors_and_savepoints(void **state)
{
    tly_sql_conn *c = *state;
    if (!c)
        skip();
    tly_error err;
    static const char ins[] = "INSERT INTO t (id) VALUES (?)";
    assert_int_equal(D->begin(c, &err), 0);
    tly_sql_stmt *st = D->prepare(c, ins, &err);
    D->bind_int64(st, 1, 100);
    assert_int_equal(D->step(st, &err), 0);
    D->reset(st);
    /* A unique violation is CONFLICT, and the transaction goes on (as on SQLite). */
    D->bind_int64(st, 1, 100);
    assert_int_equal(D->step(st, &err), -1);
    assert_int_equal(err.status, TLY_E_CONFLICT);
    D->reset(st);
    D->bind_int64(st, 1, 101);
    assert_int_equal(D->step(st, &err), 0);
    D->reset(st);
    assert_int_equal(D->commit(c, &err), 0);
    int rc;
    st = run(c, "SELECT COUNT(*) FROM t WHERE id IN (100, 101)", &rc, &err);
    assert_int_equal(rc, 1);
    assert_int_equal(D->column_int64(st, 0), 2);
    D->reset(st);
    /* A syntax error is an error, not a crash or a hang. */
    st = D->prepare(c, "SELEKT 1", &err);
    assert_non_null(st);   /* prepared lazily: the error comes with the first step */
    assert_int_equal(D->step(st, &err), -1);
    assert_int_equal(err.status, TLY_E_IO);
    D->reset(st);
}

/* The statement cache is keyed by the SQL text's address; a text freed by a closed
 * store may come back at the same address with other SQL (pooled connections). */
static void test_live_reused_address(void **state)
{
    tly_sql_conn *c = *state;
    if (!c)
        skip();
    tly_error err;
    char sql[64];
    int rc;
    snprintf(sql, sizeof sql, "SELECT 1");
    tly_sql_stmt *st = run(c, sql, &rc, &err);
    assert_int_equal(rc, 1);
    assert_int_equal(D->column_int64(st, 0), 1);
    D->reset(st);
    snprintf(sql, sizeof sql, "SELECT 2, 3");
    st = run(c, sql, &rc, &err);
    assert_int_equal(rc, 1);
    assert_int_equal(D->column_int64(st, 0), 2);
    assert_int_equal(D->column_int64(st, 1), 3);
    D->reset(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewrite_plain),
        cmocka_unit_test(test_rewrite_many),
        cmocka_unit_test(test_rewrite_skips_quotes_and_comments),
        cmocka_unit_test(test_status_of),
        cmocka_unit_test(test_driver_table),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test(test_live_values),
        cmocka_unit_test(test_live_errors_and_savepoints),
        cmocka_unit_test(test_live_reused_address),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed + cmocka_run_group_tests(live, live_setup, live_teardown);
}
