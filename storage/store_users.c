/* store_users.c -- users and their API tokens.
 *
 * Only the SHA-256 of a token is stored (unique index), so a token is looked up by
 * hashing what the client sent; a leaked database does not leak usable tokens.
 * Roles are stored by name.
 */
#include "storage/sql.h"

#include "core/hash.h"
#include "core/timeutil.h"

#include <string.h>

static const char *const role_names[] = {
    [TLY_ROLE_ADMIN] = "admin",
    [TLY_ROLE_MANAGER] = "manager",
    [TLY_ROLE_WORKER] = "worker",
    [TLY_ROLE_CONSUMER] = "consumer",
};

const char *tly_role_name(tly_role role)
{
    if ((unsigned)role >= sizeof role_names / sizeof role_names[0])
        return "unknown";
    return role_names[role];
}

int tly_role_parse(const char *name, tly_role *out)
{
    for (size_t i = 0; name && i < sizeof role_names / sizeof role_names[0]; i++) {
        if (strcmp(name, role_names[i]) == 0) {
            *out = (tly_role)i;
            return 0;
        }
    }
    return -1;
}

#define USER_COLS "id, name, role, token_sha256, created_at"

static int read_user(const sq_row *r, void *ctx, tly_error *err)
{
    tly_user *u = ctx;
    char role[16];
    u->id = sq_col_i64(r, 0);
    sq_col_copy(r, 1, u->name, sizeof u->name);
    sq_col_copy(r, 2, role, sizeof role);
    sq_col_copy(r, 3, u->token_sha256, sizeof u->token_sha256);
    u->created_at = sq_col_i64(r, 4);
    if (tly_role_parse(role, &u->role) < 0)
        return tly_fail(err, TLY_E_IO, "corrupt_row", "user %lld has unknown role '%s'",
                        (long long)u->id, role);
    return 0;
}

int tly_store_user_create(tly_store *st, const char *name, tly_role role,
                          const char *token_sha256, tly_user *out, tly_error *err)
{
    tly_user u;
    tly_error e;
    if (sq_check_str(name, sizeof u.name, 0, "user name", err) < 0)
        return -1;
    if ((unsigned)role > TLY_ROLE_CONSUMER)
        return tly_fail(err, TLY_E_INVALID, "invalid", "unknown role %d", (int)role);
    if (!tly_is_sha256_hex(token_sha256))
        return tly_fail(err, TLY_E_INVALID, "invalid", "token hash must be 64 hex digits");
    if (sq_one(st,
               "INSERT INTO users (name, role, token_sha256, created_at) VALUES (?, ?, ?, ?)"
               " RETURNING " USER_COLS,
               read_user, NULL, &u, sizeof u, "user", &e, "ttti", name, tly_role_name(role),
               token_sha256, tly_now_ms()) < 0)
        return sq_fail_as(err, &e, TLY_E_CONFLICT, "name_taken", "user name '%s' is taken",
                          name);
    if (out)
        *out = u;
    return 0;
}

int tly_store_user_by_token(tly_store *st, const char *token_sha256, tly_user *out,
                            tly_error *err)
{
    return sq_one(st, "SELECT " USER_COLS " FROM users WHERE token_sha256 = ?", read_user, NULL,
                  out, sizeof *out, "user", err, "t", token_sha256 ? token_sha256 : "");
}

int tly_store_user_get(tly_store *st, int64_t id, tly_user *out, tly_error *err)
{
    return sq_one(st, "SELECT " USER_COLS " FROM users WHERE id = ?", read_user, NULL, out,
                  sizeof *out, "user", err, "i", id);
}

int tly_store_user_count(tly_store *st, int64_t *out, tly_error *err)
{
    return sq_int64(st, "SELECT COUNT(*) FROM users", out, err, "") < 0 ? -1 : 0;
}
