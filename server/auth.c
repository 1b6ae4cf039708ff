/* auth.c -- bearer tokens and the bootstrap admin.
 *
 * Tokens are 24 random bytes (OpenSSL RAND) shown once as "tly_<48 hex>"; the store
 * keeps only their SHA-256, so a leaked database does not leak credentials. The
 * lookup is by hash, and the found hash is compared again in constant time so the
 * comparison itself leaks no timing about how much of a guess was right.
 */
#include "server/app.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "core/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int tly_auth_new_token(char *token, size_t tokensz, char sha256_hex[65])
{
    char hex[49];
    if (tokensz < 53 || tly_random_hex(24, hex, sizeof hex) < 0)
        return -1;
    snprintf(token, tokensz, "tly_%s", hex);
    tly_sha256_hex(token, strlen(token), sha256_hex);
    return 0;
}

int tly_auth_user(tly_app *app, const char *authorization, tly_user *out, tly_error *err)
{
    /* "Token <t>" too: what Label Studio ML backends send when they fetch media with
     * LABEL_STUDIO_API_KEY, so a model server can be given a consumer token. */
    const char *token = NULL;
    if (authorization && strncasecmp(authorization, "Bearer ", 7) == 0)
        token = authorization + 7;
    else if (authorization && strncasecmp(authorization, "Token ", 6) == 0)
        token = authorization + 6;
    if (!token)
        return tly_fail(err, TLY_E_UNAUTHORIZED, "unauthorized", "missing 'Authorization: Bearer <token>' header");
    while (*token == ' ')
        token++;
    size_t n = strlen(token);
    if (n == 0 || n > 256)
        return tly_fail(err, TLY_E_UNAUTHORIZED, "unauthorized", "invalid token");
    char hash[65];
    tly_sha256_hex(token, n, hash);
    tly_error lookup;
    if (tly_store_user_by_token(app->store, hash, out, &lookup) < 0) {
        if (lookup.status == TLY_E_NOT_FOUND)
            return tly_fail(err, TLY_E_UNAUTHORIZED, "unauthorized", "invalid token");
        if (err)
            *err = lookup;
        return -1;
    }
    if (!tly_const_eq(hash, out->token_sha256, 64))
        return tly_fail(err, TLY_E_UNAUTHORIZED, "unauthorized", "invalid token");
    return 0;
}

int tly_auth_bootstrap(tly_app *app, tly_error *err)
{
    int64_t users = 0;
    if (tly_store_user_count(app->store, &users, err) < 0)
        return -1;
    if (users > 0)
        return 0;
    char token[64], hash[65], path[PATH_MAX + 16], line[80];
    if (tly_auth_new_token(token, sizeof token, hash) < 0)
        return tly_fail(err, TLY_E_INTERNAL, "internal", "no randomness for the admin token");
    /* Write the file first: if we died after creating the user but before the file,
     * nobody could ever log in. A file without a user is simply rewritten next start. */
    snprintf(path, sizeof path, "%s/admin.token", app->cfg.data_dir);
    snprintf(line, sizeof line, "%s\n", token);
    if (tly_write_file_atomic(path, line, strlen(line), 0600) < 0)
        return tly_fail(err, TLY_E_IO, "io_error", "cannot write %s: %s", path, strerror(errno));
    tly_user admin;
    if (tly_store_user_create(app->store, "admin", TLY_ROLE_ADMIN, hash, &admin, err) < 0)
        return -1;
    LOG_INFO("auth", "created the admin user; its token is in %s", path);
    return 0;
}
