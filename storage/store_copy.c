/* store_copy.c -- copying a whole store into another one (`tallyd copy`), verified.
 *
 * The use: moving a single-node install (SQLite) to the cluster setup (PostgreSQL)
 * without loss. Any direction works (both sides are just stores), but the target must
 * be empty, or emptied on purpose (options.overwrite), so nothing is ever merged.
 *
 * How:
 *   - Both stores are at the current schema (opening migrates) and must agree on the
 *     version; the tables to copy are sq_tables (migrations.c), in dependency order,
 *     and a store whose schema has a table the list lacks is refused, so a migration
 *     that adds a table cannot be silently left behind.
 *   - The source is read inside one read snapshot (tly_store_snapshot_begin: a
 *     running tallyd could go on writing, the copy still sees one instant), a page of
 *     PAGE_ROWS rows at a time in primary-key order (keyset: WHERE (key) > (last key)),
 *     so memory stays bounded by one page whatever the table's size. Rows are read
 *     generically: `SELECT *`, with the driver telling each value's kind
 *     (column_type), copied out of the source row, and inserted with explicit columns
 *     and ids, INSERT_ROWS rows per statement (a statement per row cost three round
 *     trips a row on PostgreSQL, with the driver's savepoint), one transaction per
 *     page on the target. Values keep their kind: integers as int64, doubles bound as
 *     double (the PostgreSQL driver sends "%.17g": exact), text, blobs (bytea), NULL.
 *   - Afterwards the target's identity sequences are moved past the largest id
 *     (driver->sequence_reset; SQLite's AUTOINCREMENT needs nothing), otherwise the
 *     first insert on the cluster would reuse id 1.
 *   - Verification: per table, the rows counted and a checksum computed on each side
 *     from rows read through that side's driver, in C: each row is encoded
 *     canonically (below) and hashed with SHA-256; the table's checksum is SHA-256
 *     over the sum of those row digests (as 256-bit numbers, mod 2^256) and the row
 *     count. The sum makes the checksum independent of row order, which matters:
 *     both sides page in primary-key order, but a text key (previews.kind,
 *     split_assignments.split_key) sorts by the database's collation, which differs
 *     between SQLite (bytes) and a PostgreSQL cluster's locale. The source side is
 *     summed while copying (read once); the target side is read back afterwards.
 *     Nothing is left to SQL functions, whose hashing and number formatting differ
 *     between engines.
 *
 * Canonical row encoding, per column in result order: the column's name and a NUL,
 * then 'N' for NULL, 'I' <decimal> ';' for integers, 'F' <%.17g> ';' for doubles
 * (exact: any difference in a double shows), 'T' <length> ':' <bytes> for text,
 * 'B' <length> ':' <bytes> for blobs.
 *
 * The SQL texts (per table: pages, any-row probe, delete, sequence reset, insert) are
 * built once per store and kept in st->copy_sql until the store closes: the drivers
 * cache prepared statements by the address of the SQL text, so a text must not be
 * freed (and its address reused by other SQL) while the store's connections live.
 */
#include "storage/sql.h"

#include "core/hash.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_ROWS 256          /* rows per page read and per target transaction */
#define INSERT_ROWS 64         /* rows per INSERT statement (a multiple of it fills a page) */
#define MAX_KEY_COLUMNS 3      /* the widest primary key in sq_tables */
#define CHECKSUM_DOMAIN "tally-store-copy-1"

struct table_sql {
    char *first_page, *next_page;   /* SELECT * ... ORDER BY key LIMIT ? */
    char *any_row;                  /* SELECT 1 ... LIMIT 1 */
    char *clear;                    /* DELETE FROM */
    char *sequence_reset;           /* NULL: nothing to do on this driver / table */
    /* Built from the source's columns at the first copy: one row, INSERT_ROWS rows. */
    char *insert_one, *insert_many;
};

struct sq_copy_sql {
    size_t n;
    struct table_sql *t;            /* sq_table_count of them */
};

void sq_copy_sql_free(struct sq_copy_sql *sql)
{
    if (!sql)
        return;
    for (size_t i = 0; i < sql->n; i++) {
        struct table_sql *t = &sql->t[i];
        free(t->first_page);
        free(t->next_page);
        free(t->any_row);
        free(t->clear);
        free(t->sequence_reset);
        free(t->insert_one);
        free(t->insert_many);
    }
    free(sql->t);
    free(sql);
}

static int oom(tly_error *err)
{
    return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
}

/* "(?, ?)" for n key columns into buf. */
static void placeholders(int n, char *buf, size_t size)
{
    size_t len = (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, i ? ", ?" : "?");
    if (len < size)
        snprintf(buf + len, size - len, ")");
}

static int build_table_sql(const struct tly_sql_driver *d, const struct sq_table *tab, struct table_sql *t)
{
    char marks[32];
    placeholders(tab->key_columns, marks, sizeof marks);
    if (asprintf(&t->first_page, "SELECT * FROM %s ORDER BY %s LIMIT ?", tab->name, tab->key) < 0)
        t->first_page = NULL;
    if (asprintf(&t->next_page, "SELECT * FROM %s WHERE (%s) > %s ORDER BY %s LIMIT ?", tab->name, tab->key,
                 marks, tab->key) < 0)
        t->next_page = NULL;
    if (asprintf(&t->any_row, "SELECT 1 FROM %s LIMIT 1", tab->name) < 0)
        t->any_row = NULL;
    if (asprintf(&t->clear, "DELETE FROM %s", tab->name) < 0)
        t->clear = NULL;
    if (!t->first_page || !t->next_page || !t->any_row || !t->clear)
        return -1;
    if (tab->identity_id && d->sequence_reset && !(t->sequence_reset = sq_substitute(d->sequence_reset, "@T@", tab->name)))
        return -1;
    return 0;
}

/* st's statement texts, built at the first call (one copy at a time per store). */
static struct sq_copy_sql *copy_sql(tly_store *st, tly_error *err)
{
    if (st->copy_sql)
        return st->copy_sql;
    struct sq_copy_sql *sql = calloc(1, sizeof *sql);
    if (!sql || !(sql->t = calloc(sq_table_count, sizeof *sql->t))) {
        free(sql);
        oom(err);
        return NULL;
    }
    sql->n = sq_table_count;
    for (size_t i = 0; i < sq_table_count; i++) {
        if (build_table_sql(st->drv, &sq_tables[i], &sql->t[i]) < 0) {
            sq_copy_sql_free(sql);
            oom(err);
            return NULL;
        }
    }
    st->copy_sql = sql;
    return sql;
}

static int table_index(const char *name)
{
    for (size_t i = 0; i < sq_table_count; i++)
        if (strcmp(sq_tables[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- the schema against the list ------------------------------------------------- */

struct table_walk {
    unsigned char *seen;            /* per sq_tables entry */
    char unknown[64];               /* first schema table not in the list */
};

static int note_table(const sq_row *r, void *ctx, tly_error *err)
{
    (void)err;
    struct table_walk *w = ctx;
    char name[64];
    sq_col_copy(r, 0, name, sizeof name);
    if (strcmp(name, "schema_migrations") == 0)
        return 0;
    int i = table_index(name);
    if (i >= 0)
        w->seen[i] = 1;
    else if (!w->unknown[0])
        snprintf(w->unknown, sizeof w->unknown, "%s", name);
    return 0;
}

int tly_store_copy_check_tables(tly_store *st, tly_error *err)
{
    struct table_walk w = {calloc(sq_table_count, 1), ""};
    if (!w.seen)
        return oom(err);
    int rc = sq_each(st, st->drv->list_tables, note_table, &w, err, "") < 0 ? -1 : 0;
    if (rc == 0 && w.unknown[0])
        rc = tly_fail(err, TLY_E_INVALID, "schema_mismatch",
                      "table %s of the %s schema is not in the copy's table list (storage/migrations.c sq_tables)",
                      w.unknown, st->drv->name);
    for (size_t i = 0; rc == 0 && i < sq_table_count; i++)
        if (!w.seen[i])
            rc = tly_fail(err, TLY_E_INVALID, "schema_mismatch", "the %s schema has no table %s (listed in sq_tables)",
                          st->drv->name, sq_tables[i].name);
    free(w.seen);
    return rc;
}

/* ---- checksums ------------------------------------------------------------------- */

struct table_sum {
    EVP_MD_CTX *md;                 /* reused for every row */
    uint64_t acc[4];                /* sum of row digests mod 2^256, little-endian words */
    int64_t rows;
};

static int sum_init(struct table_sum *s, tly_error *err)
{
    memset(s, 0, sizeof *s);
    if (!(s->md = EVP_MD_CTX_new()))
        return oom(err);
    return 0;
}

static void sum_free(struct table_sum *s)
{
    EVP_MD_CTX_free(s->md);
    s->md = NULL;
}

/* Adds the canonical encoding's digest of the current row to the sum. */
static int sum_row(struct table_sum *s, const struct tly_sql_driver *d, tly_sql_stmt *st, int ncols, tly_error *err)
{
    if (EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1)
        return tly_fail(err, TLY_E_INTERNAL, "hash_failed", "SHA-256 unavailable");
    for (int c = 0; c < ncols; c++) {
        const char *name = d->column_name(st, c);
        char head[64];
        const void *bytes = NULL;
        size_t len = 0;
        int n = 0;
        EVP_DigestUpdate(s->md, name ? name : "", (name ? strlen(name) : 0) + 1);
        switch (d->column_type(st, c)) {
        case TLY_SQL_NULL:
            n = snprintf(head, sizeof head, "N");
            break;
        case TLY_SQL_INT:
            n = snprintf(head, sizeof head, "I%lld;", (long long)d->column_int64(st, c));
            break;
        case TLY_SQL_DOUBLE:
            n = snprintf(head, sizeof head, "F%.17g;", d->column_double(st, c));
            break;
        case TLY_SQL_TEXT:
            bytes = d->column_text(st, c);
            len = bytes ? strlen(bytes) : 0;
            n = snprintf(head, sizeof head, "T%zu:", len);
            break;
        case TLY_SQL_BLOB:
            bytes = d->column_blob(st, c, &len);
            n = snprintf(head, sizeof head, "B%zu:", len);
            break;
        }
        EVP_DigestUpdate(s->md, head, (size_t)n);
        if (len)
            EVP_DigestUpdate(s->md, bytes, len);
    }
    unsigned char digest[32];
    unsigned int dlen = 0;
    if (EVP_DigestFinal_ex(s->md, digest, &dlen) != 1 || dlen != sizeof digest)
        return tly_fail(err, TLY_E_INTERNAL, "hash_failed", "SHA-256 failed");
    unsigned carry = 0;
    for (int w = 0; w < 4; w++) {
        uint64_t part = 0;
        for (int b = 7; b >= 0; b--)
            part = part << 8 | digest[w * 8 + b];
        uint64_t sum = s->acc[w] + part;
        unsigned next = sum < part;
        sum += carry;
        next |= carry && sum == 0;
        s->acc[w] = sum;
        carry = next;
    }
    s->rows++;
    return 0;
}

static void sum_hex(const struct table_sum *s, char out[65])
{
    char buf[sizeof CHECKSUM_DOMAIN + 4 * 17 + 24];
    int n = snprintf(buf, sizeof buf, "%s:%016llx%016llx%016llx%016llx:%lld", CHECKSUM_DOMAIN,
                     (unsigned long long)s->acc[3], (unsigned long long)s->acc[2], (unsigned long long)s->acc[1],
                     (unsigned long long)s->acc[0], (long long)s->rows);
    tly_sha256_hex(buf, (size_t)n, out);
}

/* ---- paging through a table -------------------------------------------------------- */

struct key_value {
    tly_sql_type type;
    int64_t i;
    double f;
    char *text;                     /* owned (TEXT / BLOB keys; none exist today) */
};

/* Called for each row of a page; page_done after each page (rows = its row count). */
struct scan_hooks {
    int (*row)(void *ctx, const struct tly_sql_driver *d, tly_sql_stmt *s, int ncols, tly_error *err);
    int (*page_done)(void *ctx, int64_t rows, tly_error *err);
    void *ctx;
};

static void keys_clear(struct key_value *keys)
{
    for (int i = 0; i < MAX_KEY_COLUMNS; i++) {
        free(keys[i].text);
        memset(&keys[i], 0, sizeof keys[i]);
    }
}

/* Positions of the table's key columns among the result's columns. */
static int find_key_columns(const struct sq_table *tab, const struct tly_sql_driver *d, tly_sql_stmt *s, int ncols,
                            int *pos, tly_error *err)
{
    const char *p = tab->key;
    for (int k = 0; k < tab->key_columns; k++) {
        size_t len = strcspn(p, ", ");
        pos[k] = -1;
        for (int c = 0; c < ncols; c++) {
            const char *name = d->column_name(s, c);
            if (name && strlen(name) == len && strncmp(name, p, len) == 0)
                pos[k] = c;
        }
        if (pos[k] < 0)
            return tly_fail(err, TLY_E_INVALID, "schema_mismatch", "table %s has no key column %.*s", tab->name,
                            (int)len, p);
        p += len;
        p += strspn(p, ", ");
    }
    return 0;
}

static int keys_remember(struct key_value *keys, int nkeys, const int *pos, const struct tly_sql_driver *d,
                         tly_sql_stmt *s, tly_error *err)
{
    keys_clear(keys);
    for (int k = 0; k < nkeys; k++) {
        keys[k].type = d->column_type(s, pos[k]);
        if (keys[k].type == TLY_SQL_INT)
            keys[k].i = d->column_int64(s, pos[k]);
        else if (keys[k].type == TLY_SQL_DOUBLE)
            keys[k].f = d->column_double(s, pos[k]);
        else if (keys[k].type != TLY_SQL_NULL && !(keys[k].text = strdup(d->column_text(s, pos[k]))))
            return oom(err);
    }
    return 0;
}

static int bind_key(const struct tly_sql_driver *d, tly_sql_stmt *s, int idx, const struct key_value *k)
{
    switch (k->type) {
    case TLY_SQL_INT: return d->bind_int64(s, idx, k->i);
    case TLY_SQL_DOUBLE: return d->bind_double(s, idx, k->f);
    case TLY_SQL_NULL: return d->bind_null(s, idx);   /* primary keys are never NULL */
    default: return d->bind_text(s, idx, k->text);
    }
}

/* Every row of table t of st, a page at a time in key order. */
static int scan_table(tly_store *st, size_t t, const struct scan_hooks *h, tly_error *err)
{
    const struct tly_sql_driver *d = st->drv;
    const struct sq_table *tab = &sq_tables[t];
    struct sq_copy_sql *sql = copy_sql(st, err);
    tly_sql_conn *c = sql ? sq_conn(st, err) : NULL;
    if (!c)
        return -1;
    if (tab->key_columns < 1 || tab->key_columns > MAX_KEY_COLUMNS)
        return tly_fail(err, TLY_E_INTERNAL, "internal", "table %s: key of %d columns (at most %d)", tab->name,
                        tab->key_columns, MAX_KEY_COLUMNS);
    struct key_value keys[MAX_KEY_COLUMNS] = {{0}};
    int pos[MAX_KEY_COLUMNS] = {0}, have_pos = 0, rc = 0;
    for (int first = 1;; first = 0) {
        tly_sql_stmt *s = d->prepare(c, first ? sql->t[t].first_page : sql->t[t].next_page, err);
        if (!s) {
            rc = -1;
            break;
        }
        int idx = 1;
        for (int k = 0; !first && k < tab->key_columns && rc == 0; k++)
            if (bind_key(d, s, idx++, &keys[k]) < 0)
                rc = tly_fail(err, TLY_E_INTERNAL, "bind_failed", "binding the key of %s", tab->name);
        if (rc == 0 && d->bind_int64(s, idx, PAGE_ROWS) < 0)
            rc = tly_fail(err, TLY_E_INTERNAL, "bind_failed", "binding the page size");
        int64_t rows = 0;
        int step = 0;
        while (rc == 0 && (step = d->step(s, err)) == 1) {
            int ncols = d->column_count(s);
            if (!have_pos && find_key_columns(tab, d, s, ncols, pos, err) < 0) {
                rc = -1;
                break;
            }
            have_pos = 1;
            if (h->row(h->ctx, d, s, ncols, err) < 0 || keys_remember(keys, tab->key_columns, pos, d, s, err) < 0)
                rc = -1;
            else
                rows++;
        }
        if (step < 0)
            rc = -1;
        d->reset(s);
        if (rc == 0 && h->page_done)
            rc = h->page_done(h->ctx, rows, err);
        if (rc < 0 || rows < PAGE_ROWS)
            break;
    }
    keys_clear(keys);
    return rc;
}

static int sum_visit(void *ctx, const struct tly_sql_driver *d, tly_sql_stmt *s, int ncols, tly_error *err)
{
    return sum_row(ctx, d, s, ncols, err);
}

static int checksum_at(tly_store *st, size_t t, int64_t *rows, char checksum[65], tly_error *err)
{
    struct table_sum sum;
    if (sum_init(&sum, err) < 0)
        return -1;
    struct scan_hooks h = {sum_visit, NULL, &sum};
    int rc = scan_table(st, t, &h, err);
    if (rc == 0) {
        *rows = sum.rows;
        sum_hex(&sum, checksum);
    }
    sum_free(&sum);
    return rc;
}

int tly_store_table_checksum(tly_store *st, const char *table, int64_t *rows, char checksum[65], tly_error *err)
{
    int t = table_index(table);
    if (t < 0)
        return tly_fail(err, TLY_E_INVALID, "invalid", "table %s is not one the copy knows", table);
    return checksum_at(st, (size_t)t, rows, checksum, err);
}

/* ---- the copy ---------------------------------------------------------------------- */

/* One value of a buffered row: copied out of the source row, whose text and blob
 * pointers die at the next step. */
struct value {
    tly_sql_type type;
    int64_t i;
    double f;
    char *bytes;                    /* TEXT (NUL-terminated) / BLOB, owned */
    size_t len;
};

struct table_copy {
    tly_store *to;
    size_t t;
    struct table_sum sum;           /* the source side */
    tly_sql_conn *to_conn;
    int in_tx;
    int ncols;
    struct value *rows;             /* INSERT_ROWS rows of ncols values */
    int buffered;
};

static void values_clear(struct table_copy *tc)
{
    for (int i = 0; tc->rows && i < tc->buffered * tc->ncols; i++) {
        free(tc->rows[i].bytes);
        memset(&tc->rows[i], 0, sizeof tc->rows[i]);
    }
    tc->buffered = 0;
}

/* "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)..." for nrows rows of the source's
 * columns. */
static char *insert_sql(const char *table, const struct tly_sql_driver *d, tly_sql_stmt *s, int ncols, int nrows)
{
    tly_buf b;
    tly_buf_init(&b, 1024 * 1024);   /* 64 rows of a few dozen columns are far less */
    int ok = tly_buf_appendf(&b, "INSERT INTO %s (", table) == 0;
    for (int c = 0; ok && c < ncols; c++)
        ok = tly_buf_appendf(&b, "%s%s", c ? ", " : "", d->column_name(s, c)) == 0;
    ok = ok && tly_buf_appendf(&b, ") VALUES ") == 0;
    for (int r = 0; ok && r < nrows; r++) {
        ok = tly_buf_appendf(&b, r ? ", (" : "(") == 0;
        for (int c = 0; ok && c < ncols; c++)
            ok = tly_buf_appendf(&b, c ? ", ?" : "?") == 0;
        ok = ok && tly_buf_appendf(&b, ")") == 0;
    }
    if (!ok) {
        tly_buf_free(&b);
        return NULL;
    }
    return tly_buf_detach(&b);
}

/* Keeps (or checks against) the target's insert texts for this table: built once per
 * store from the first source row's columns, which a later copy must repeat. */
static int ensure_insert_sql(struct table_copy *tc, const struct tly_sql_driver *sd, tly_sql_stmt *src, int ncols,
                             tly_error *err)
{
    const struct sq_table *tab = &sq_tables[tc->t];
    struct table_sql *ts = &tc->to->copy_sql->t[tc->t];
    char *one = insert_sql(tab->name, sd, src, ncols, 1);
    if (!one)
        return oom(err);
    if (ts->insert_one) {
        int same = strcmp(ts->insert_one, one) == 0;
        free(one);
        if (!same)
            return tly_fail(err, TLY_E_INVALID, "schema_mismatch", "table %s: the source's columns changed", tab->name);
        return 0;
    }
    char *many = insert_sql(tab->name, sd, src, ncols, INSERT_ROWS);
    if (!many) {
        free(one);
        return oom(err);
    }
    ts->insert_one = one;
    ts->insert_many = many;
    return 0;
}

static int bind_value(const struct tly_sql_driver *d, tly_sql_stmt *s, int idx, const struct value *v)
{
    switch (v->type) {
    case TLY_SQL_INT: return d->bind_int64(s, idx, v->i);
    case TLY_SQL_DOUBLE: return d->bind_double(s, idx, v->f);
    case TLY_SQL_TEXT: return d->bind_text(s, idx, v->bytes);
    case TLY_SQL_BLOB: return d->bind_blob(s, idx, v->bytes, v->len);
    default: return d->bind_null(s, idx);
    }
}

/* Inserts nrows buffered rows from first with one statement (sql has that many). */
static int insert_rows(struct table_copy *tc, const char *sql, int first, int nrows, tly_error *err)
{
    const struct tly_sql_driver *td = tc->to->drv;
    if (!tc->in_tx) {
        if (tly_store_begin(tc->to, err) < 0)
            return -1;
        tc->in_tx = 1;
    }
    tly_sql_stmt *ins = td->prepare(tc->to_conn, sql, err);
    if (!ins)
        return -1;
    int rc = 0;
    const struct value *v = &tc->rows[first * tc->ncols];
    for (int k = 0; k < nrows * tc->ncols && rc == 0; k++)
        if (bind_value(td, ins, k + 1, &v[k]) < 0)
            rc = tly_fail(err, TLY_E_INTERNAL, "bind_failed", "binding parameter %d", k + 1);
    if (rc == 0 && td->step(ins, err) < 0)
        rc = -1;
    td->reset(ins);
    if (rc < 0)
        tly_error_prefix(err, "inserting into %s", sq_tables[tc->t].name);
    return rc;
}

/* Writes the buffered rows: a full buffer with one statement, a partial one (the end
 * of a table) a row at a time. */
static int flush_rows(struct table_copy *tc, tly_error *err)
{
    struct table_sql *ts = &tc->to->copy_sql->t[tc->t];
    int rc = 0;
    if (tc->buffered == INSERT_ROWS)
        rc = insert_rows(tc, ts->insert_many, 0, INSERT_ROWS, err);
    else
        for (int r = 0; r < tc->buffered && rc == 0; r++)
            rc = insert_rows(tc, ts->insert_one, r, 1, err);
    values_clear(tc);
    return rc;
}

static int copy_visit(void *ctx, const struct tly_sql_driver *sd, tly_sql_stmt *src, int ncols, tly_error *err)
{
    struct table_copy *tc = ctx;
    if (sum_row(&tc->sum, sd, src, ncols, err) < 0)
        return -1;
    if (!tc->rows) {
        if (ensure_insert_sql(tc, sd, src, ncols, err) < 0)
            return -1;
        if (!(tc->rows = calloc((size_t)INSERT_ROWS * (size_t)ncols, sizeof *tc->rows)))
            return oom(err);
        tc->ncols = ncols;
    }
    if (ncols != tc->ncols)
        return tly_fail(err, TLY_E_INTERNAL, "internal", "table %s: column count changed", sq_tables[tc->t].name);
    struct value *v = &tc->rows[tc->buffered * ncols];
    tc->buffered++;   /* counted now so values_clear frees what is copied below */
    for (int c = 0; c < ncols; c++) {
        const void *data = NULL;
        v[c].type = sd->column_type(src, c);
        if (v[c].type == TLY_SQL_INT) {
            v[c].i = sd->column_int64(src, c);
        } else if (v[c].type == TLY_SQL_DOUBLE) {
            v[c].f = sd->column_double(src, c);
        } else if (v[c].type == TLY_SQL_TEXT) {
            data = sd->column_text(src, c);
            v[c].len = data ? strlen(data) : 0;
        } else if (v[c].type == TLY_SQL_BLOB) {
            data = sd->column_blob(src, c, &v[c].len);
        }
        if (v[c].type == TLY_SQL_TEXT || v[c].type == TLY_SQL_BLOB) {
            if (!(v[c].bytes = malloc(v[c].len + 1)))
                return oom(err);
            if (v[c].len)
                memcpy(v[c].bytes, data, v[c].len);
            v[c].bytes[v[c].len] = '\0';
        }
    }
    return tc->buffered == INSERT_ROWS ? flush_rows(tc, err) : 0;
}

static int copy_page_done(void *ctx, int64_t rows, tly_error *err)
{
    (void)rows;
    struct table_copy *tc = ctx;
    if (tc->buffered && flush_rows(tc, err) < 0)
        return -1;
    if (!tc->in_tx)
        return 0;
    tc->in_tx = 0;
    return tly_store_commit(tc->to, err);
}

static int copy_table(tly_store *from, tly_store *to, size_t t, tly_store_copy_table *out, tly_error *err)
{
    struct table_copy tc = {.to = to, .t = t, .rows = NULL};
    if (sum_init(&tc.sum, err) < 0)
        return -1;
    int rc = (tc.to_conn = sq_conn(to, err)) ? 0 : -1;
    struct scan_hooks h = {copy_visit, copy_page_done, &tc};
    if (rc == 0)
        rc = scan_table(from, t, &h, err);
    if (tc.in_tx)
        tly_store_rollback(to);
    values_clear(&tc);
    free(tc.rows);
    if (rc == 0) {
        out->source_rows = tc.sum.rows;
        sum_hex(&tc.sum, out->source_checksum);
    }
    sum_free(&tc.sum);
    return rc;
}

/* The first table of to that holds a row into *name (""), or -1. */
static int find_rows(tly_store *to, struct sq_copy_sql *sql, char *name, size_t size, tly_error *err)
{
    name[0] = '\0';
    for (size_t t = 0; t < sq_table_count; t++) {
        int rc = sq_int64(to, sql->t[t].any_row, NULL, err, "");
        if (rc < 0)
            return -1;
        if (rc == 0) {
            snprintf(name, size, "%s", sq_tables[t].name);
            return 0;
        }
    }
    return 0;
}

static int clear_target(tly_store *to, struct sq_copy_sql *sql, tly_error *err)
{
    if (tly_store_begin(to, err) < 0)
        return -1;
    for (size_t t = sq_table_count; t-- > 0;) {   /* referencing tables first */
        if (sq_exec(to, sql->t[t].clear, err, "") < 0) {
            tly_store_rollback(to);
            return -1;
        }
    }
    return tly_store_commit(to, err);
}

static int check_stores(tly_store *from, tly_store *to, tly_error *err)
{
    if (from->drv == to->drv && strcmp(from->dsn, to->dsn) == 0)
        return tly_fail(err, TLY_E_INVALID, "invalid", "source and target are the same store");
    if (sq_table_count > TLY_STORE_COPY_MAX_TABLES)
        return tly_fail(err, TLY_E_INTERNAL, "internal", "more tables than TLY_STORE_COPY_MAX_TABLES");
    int vfrom = 0, vto = 0;
    if (tly_store_schema_version(from, &vfrom, err) < 0 || tly_store_schema_version(to, &vto, err) < 0)
        return -1;
    if (vfrom != vto)
        return tly_fail(err, TLY_E_INVALID, "schema_mismatch", "schema versions differ: source %d, target %d", vfrom,
                        vto);
    if (tly_store_copy_check_tables(from, err) < 0) {
        tly_error_prefix(err, "source");
        return -1;
    }
    if (tly_store_copy_check_tables(to, err) < 0) {
        tly_error_prefix(err, "target");
        return -1;
    }
    return 0;
}

int tly_store_copy(tly_store *from, tly_store *to, const tly_store_copy_options *opt, tly_store_copy_report *rep,
                   tly_error *err)
{
    static const tly_store_copy_options defaults;
    if (!opt)
        opt = &defaults;
    memset(rep, 0, sizeof *rep);
    struct sq_copy_sql *to_sql;
    if (check_stores(from, to, err) < 0 || !copy_sql(from, err) || !(to_sql = copy_sql(to, err)))
        return -1;
    char busy[64];
    if (find_rows(to, to_sql, busy, sizeof busy, err) < 0)
        return -1;
    if (busy[0] && !opt->overwrite)
        return tly_fail(err, TLY_E_CONFLICT, "target_not_empty",
                        "the target store is not empty (table %s has rows): copy into an empty database, or "
                        "overwrite to delete the target's rows first",
                        busy);
    if (busy[0] && clear_target(to, to_sql, err) < 0) {
        tly_error_prefix(err, "clearing the target");
        return -1;
    }
    if (tly_store_snapshot_begin(from, err) < 0)
        return -1;
    int rc = 0;
    for (size_t t = 0; t < sq_table_count && rc == 0; t++) {
        tly_store_copy_table *out = &rep->tables[rep->n_tables++];
        snprintf(out->name, sizeof out->name, "%s", sq_tables[t].name);
        rc = copy_table(from, to, t, out, err);
        if (rc < 0) {
            tly_error_prefix(err, "copying %s (pages before this one are committed: --overwrite to redo)", out->name);
            break;
        }
        const char *reset = to_sql->t[t].sequence_reset;
        if (reset && sq_exec(to, reset, err, "") < 0) {
            tly_error_prefix(err, "resetting the id sequence of %s", out->name);
            rc = -1;
            break;
        }
        if (checksum_at(to, t, &out->target_rows, out->target_checksum, err) < 0) {
            tly_error_prefix(err, "verifying %s", out->name);
            rc = -1;
            break;
        }
        out->match = out->source_rows == out->target_rows &&
                     strcmp(out->source_checksum, out->target_checksum) == 0;
        rep->rows += out->source_rows;
        rep->mismatches += !out->match;
        if (opt->on_table)
            opt->on_table(out, opt->arg);
    }
    tly_store_snapshot_end(from);
    if (rc < 0)
        return -1;
    if (rep->mismatches)
        return tly_fail(err, TLY_E_IO, "copy_mismatch", "%d of %zu tables differ after the copy", rep->mismatches,
                        rep->n_tables);
    return 0;
}
