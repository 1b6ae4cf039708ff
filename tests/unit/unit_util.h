/* unit_util.h -- helpers shared by the cmocka unit tests (tests/unit/test_*.c).
 *
 * Header-only (static inline): tests/CMakeLists.txt builds every test_*.c as its own
 * program, with no shared test library. Include it after <cmocka.h> or on its own:
 * it includes what cmocka needs. Its users link tally_storage (directly or through
 * their folder's library), since the store helpers call storage/store.h.
 */
#ifndef TALLY_TEST_UNIT_UTIL_H
#define TALLY_TEST_UNIT_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "storage/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* JSON text (any value) parsed, a new reference; fails the test on bad JSON. */
static inline json_t *J(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!j)
        fail_msg("bad test JSON (%s): %s", jerr.text, text);
    return j;
}

/* ---- validators of an answer against a template (and optional media) ------------- */

/* tly_template_validate_answer, tly_gold_validate: 0, or -1 with err set (err may be NULL). */
typedef int (*unit_validate_fn)(json_t *tmpl, json_t *answer, json_t *media, tly_error *err);

/* validate(tmpl, answer, media) must accept. media_text may be NULL (media unknown). */
static inline void unit_validate_ok(unit_validate_fn validate, json_t *tmpl, const char *answer,
                                    const char *media_text)
{
    json_t *a = J(answer), *m = media_text ? J(media_text) : NULL;
    tly_error err;
    tly_error_clear(&err);
    int rc = validate(tmpl, a, m, &err);
    json_decref(a);
    json_decref(m);
    if (rc != 0)
        fail_msg("should be accepted: %s -> %s", answer, err.message);
}

/* validate(tmpl, answer, media) must reject, also with a NULL err, with
 * TLY_E_UNPROCESSABLE and the error code `code`; the message must contain frag
 * (NULL: any message). */
static inline void unit_validate_bad(unit_validate_fn validate, const char *code, json_t *tmpl,
                                     const char *answer, const char *media_text, const char *frag)
{
    json_t *a = J(answer), *m = media_text ? J(media_text) : NULL;
    tly_error err;
    tly_error_clear(&err);
    int rc = validate(tmpl, a, m, &err);
    int rc_null = validate(tmpl, a, m, NULL);
    json_decref(a);
    json_decref(m);
    if (rc != -1)
        fail_msg("should be rejected (%s): %s", code, answer);
    assert_int_equal(rc_null, -1);
    assert_int_equal(err.status, TLY_E_UNPROCESSABLE);
    assert_string_equal(err.code, code);
    if (frag && !strstr(err.message, frag))
        fail_msg("message for %s lacks \"%s\": %s", answer, frag, err.message);
}

/* ---- temp directories and stores for fixtures ------------------------------------- */

/* A fresh directory /tmp/tally-TAG-XXXXXX, its path in dir. 0 or -1. */
static inline int unit_tmpdir(char *dir, size_t dirsz, const char *tag)
{
    snprintf(dir, dirsz, "/tmp/tally-%s-XXXXXX", tag);
    return mkdtemp(dir) ? 0 : -1;
}

/* A fresh temp directory (as unit_tmpdir) and a store opened in it at url, which is
 * url_fmt with the directory for its one %s (e.g. "sqlite:%s/t.db"). 0, or -1 with
 * the reason printed and nothing left behind. */
static inline int unit_store_open(char *dir, size_t dirsz, const char *tag, const char *url_fmt,
                                  char *url, size_t urlsz, tly_store **st)
{
    tly_error err;
    if (unit_tmpdir(dir, dirsz, tag) < 0)
        return -1;
    snprintf(url, urlsz, url_fmt, dir);
    if (tly_store_open(url, st, &err) < 0) {
        fprintf(stderr, "open %s: %s\n", url, err.message);
        tly_remove_tree(dir);
        return -1;
    }
    return 0;
}

/* Closes the store (may be NULL) and removes the directory. */
static inline void unit_store_remove(tly_store *st, const char *dir)
{
    tly_store_close(st);
    tly_remove_tree(dir);
}

/* ---- a PostgreSQL server for the live tests ---------------------------------------- */

/* The server's URL: TALLY_TEST_DB, else the first line of the file TALLY_TEST_DB_FILE
 * names (ctest's _pg runs); NULL when neither gives one (the live tests then skip). */
static inline const char *unit_live_db_url(void)
{
    static char url[1024];
    const char *env = getenv("TALLY_TEST_DB"), *file = getenv("TALLY_TEST_DB_FILE");
    if (env && *env)
        return env;
    FILE *f = file && *file ? fopen(file, "r") : NULL;
    if (!f)
        return NULL;
    char *line = fgets(url, sizeof url, f);
    fclose(f);
    if (!line)
        return NULL;
    url[strcspn(url, "\r\n")] = '\0';
    return url[0] ? url : NULL;
}

#endif
