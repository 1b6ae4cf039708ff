/* test_core.c -- unit tests for core/: errors, buffers, hashing, JSON helpers,
 * file-system helpers, metrics and time formatting.
 *
 * Everything runs against the real implementations (OpenSSL, jansson, the real file
 * system under a fresh mkdtemp directory); nothing is mocked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/metrics.h"
#include "core/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------- */

static void make_tmpdir(char *dir, size_t sz)
{
    snprintf(dir, sz, "/tmp/tally-core-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static size_t count_substr(const char *hay, const char *needle)
{
    size_t n = 0, len = strlen(needle);
    for (const char *p = strstr(hay, needle); p; p = strstr(p + len, needle))
        n++;
    return n;
}

static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* ---- error.h -------------------------------------------------------------------- */

static void test_error_fail_fills(void **state)
{
    (void)state;
    tly_error err;
    memset(&err, 0x55, sizeof err);
    assert_int_equal(tly_fail(&err, TLY_E_CONFLICT, "lease_expired", "lease %d expired", 42), -1);
    assert_int_equal(err.status, TLY_E_CONFLICT);
    assert_string_equal(err.code, "lease_expired");
    assert_string_equal(err.message, "lease 42 expired");
}

static void test_error_fail_null_err(void **state)
{
    (void)state;
    assert_int_equal(tly_fail(NULL, TLY_E_IO, "x", "no %s", "err"), -1);
    /* The other helpers must accept NULL too. */
    tly_error_clear(NULL);
    tly_error_prefix(NULL, "ctx %d", 1);
}

static void test_error_fail_null_code(void **state)
{
    (void)state;
    tly_error err;
    assert_int_equal(tly_fail(&err, TLY_E_INTERNAL, NULL, "boom"), -1);
    assert_true(err.code[0] != '\0');   /* some non-empty code, never garbage */
    assert_true(strlen(err.code) < sizeof err.code);
}

static void test_error_fail_truncates(void **state)
{
    (void)state;
    tly_error err;
    char longcode[200], longmsg[1000];
    memset(longcode, 'c', sizeof longcode - 1);
    longcode[sizeof longcode - 1] = '\0';
    memset(longmsg, 'm', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = '\0';
    assert_int_equal(tly_fail(&err, TLY_E_INVALID, longcode, "%s", longmsg), -1);
    assert_int_equal(strlen(err.code), sizeof err.code - 1);
    assert_int_equal(strlen(err.message), sizeof err.message - 1);
}

static void test_error_clear(void **state)
{
    (void)state;
    tly_error err;
    tly_fail(&err, TLY_E_IO, "disk", "disk full");
    tly_error_clear(&err);
    assert_int_equal(err.status, TLY_OK);
    assert_string_equal(err.code, "");
    assert_string_equal(err.message, "");
}

static void test_error_prefix(void **state)
{
    (void)state;
    tly_error err;
    tly_fail(&err, TLY_E_UNSUPPORTED, "bad_media", "not a JPEG");
    tly_error_prefix(&err, "file '%s'", "a.jpg");
    assert_string_equal(err.message, "file 'a.jpg': not a JPEG");
    assert_int_equal(err.status, TLY_E_UNSUPPORTED);
    assert_string_equal(err.code, "bad_media");
}

static void test_error_prefix_long(void **state)
{
    (void)state;
    tly_error err;
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';

    /* Long existing message, short prefix. */
    tly_fail(&err, TLY_E_IO, "io", "%s", big);
    tly_error_prefix(&err, "ctx");
    assert_true(strlen(err.message) < sizeof err.message);
    assert_memory_equal(err.message, "ctx: xxx", 8);

    /* Long prefix, long message: still bounded and NUL-terminated. */
    tly_fail(&err, TLY_E_IO, "io", "%s", big);
    tly_error_prefix(&err, "%s", big);
    assert_true(memchr(err.message, '\0', sizeof err.message) != NULL);
    assert_true(strlen(err.message) <= sizeof err.message - 1);

    /* Prefix repeated many times never overflows. */
    tly_fail(&err, TLY_E_IO, "io", "base");
    for (int i = 0; i < 100; i++)
        tly_error_prefix(&err, "level %d", i);
    assert_true(strlen(err.message) <= sizeof err.message - 1);
    assert_memory_equal(err.message, "level 99: level 98", 18);
}

static void test_error_status_names(void **state)
{
    (void)state;
    assert_string_equal(tly_status_name(TLY_OK), "ok");
    assert_string_equal(tly_status_name(TLY_E_NOT_FOUND), "not_found");
    assert_string_equal(tly_status_name(TLY_E_INVALID), "invalid");
    /* Every status has a distinct name. */
    for (int a = TLY_OK; a <= TLY_E_INTERNAL; a++)
        for (int b = a + 1; b <= TLY_E_INTERNAL; b++)
            assert_string_not_equal(tly_status_name((tly_status)a), tly_status_name((tly_status)b));
}

/* ---- buf.h ---------------------------------------------------------------------- */

static void test_buf_append_basic(void **state)
{
    (void)state;
    tly_buf b;
    tly_buf_init(&b, 1024);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(tly_buf_append(&b, "hello", 5), 0);
    assert_int_equal(tly_buf_append(&b, " world", 6), 0);
    assert_int_equal(b.len, 11);
    assert_string_equal(b.data, "hello world");
    assert_int_equal(b.data[b.len], '\0');
    tly_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 1024);
}

static void test_buf_cap_exact(void **state)
{
    (void)state;
    tly_buf b;
    tly_buf_init(&b, 10);
    assert_int_equal(tly_buf_append(&b, "0123456789", 10), 0);   /* exactly max */
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "0123456789");
    char *before = b.data;
    assert_int_equal(tly_buf_append(&b, "x", 1), -1);          /* one over */
    assert_int_equal(b.len, 10);
    assert_ptr_equal(b.data, before);
    assert_string_equal(b.data, "0123456789");
    assert_int_equal(tly_buf_append(&b, "", 0), 0);            /* nothing is fine */
    tly_buf_free(&b);

    /* A single append larger than max fails and leaves the buffer empty. */
    tly_buf_init(&b, 4);
    assert_int_equal(tly_buf_append(&b, "abcde", 5), -1);
    assert_int_equal(b.len, 0);
    assert_int_equal(tly_buf_append(&b, "abcd", 4), 0);
    assert_string_equal(b.data, "abcd");
    tly_buf_free(&b);

    /* Huge lengths must not wrap around the cap check. */
    tly_buf_init(&b, 16);
    assert_int_equal(tly_buf_append(&b, "ab", 2), 0);
    assert_int_equal(tly_buf_append(&b, "x", SIZE_MAX), -1);
    assert_int_equal(tly_buf_append(&b, "x", SIZE_MAX - 1), -1);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "ab");
    tly_buf_free(&b);
}

static void test_buf_failed_append_unchanged(void **state)
{
    (void)state;
    tly_buf b;
    tly_buf_init(&b, 8);
    assert_int_equal(tly_buf_append(&b, "abcdef", 6), 0);
    assert_int_equal(tly_buf_append(&b, "ghi", 3), -1);
    assert_int_equal(b.len, 6);
    assert_string_equal(b.data, "abcdef");
    assert_int_equal(tly_buf_appendf(&b, "%s", "xyz"), -1);
    assert_int_equal(b.len, 6);
    assert_string_equal(b.data, "abcdef");
    assert_int_equal(tly_buf_appendf(&b, "%d", 12), 0);        /* exactly to max */
    assert_string_equal(b.data, "abcdef12");
    assert_int_equal(b.len, 8);
    tly_buf_free(&b);
}

static void test_buf_appendf(void **state)
{
    (void)state;
    tly_buf b;
    tly_buf_init(&b, 1 << 20);
    assert_int_equal(tly_buf_appendf(&b, "%s=%d;", "a", 1), 0);
    assert_int_equal(tly_buf_appendf(&b, "%s=%d;", "bb", 22), 0);
    assert_string_equal(b.data, "a=1;bb=22;");
    assert_int_equal(b.len, strlen("a=1;bb=22;"));
    /* Grow past the initial allocation with formatted output. */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(tly_buf_appendf(&b, "%04d", i), 0);
    assert_int_equal(b.len, strlen("a=1;bb=22;") + 4000);
    assert_memory_equal(b.data + b.len - 4, "0999", 4);
    assert_int_equal(b.data[b.len], '\0');
    /* An empty format still yields a valid string. */
    tly_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(tly_buf_appendf(&b, "%s", ""), 0);
    assert_string_equal(b.data, "");
    tly_buf_free(&b);

    tly_buf_init(&b, 100);
    assert_int_equal(tly_buf_appendf(&b, "%s", ""), 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    tly_buf_free(&b);
}

static void test_buf_binary_and_nul(void **state)
{
    (void)state;
    tly_buf b;
    tly_buf_init(&b, 64);
    const char bin[] = {'a', '\0', 'b'};
    assert_int_equal(tly_buf_append(&b, bin, 3), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, bin, 3);
    assert_int_equal(b.data[3], '\0');
    tly_buf_free(&b);
}

static void test_buf_detach(void **state)
{
    (void)state;
    tly_buf b;
    tly_buf_init(&b, 100);
    assert_int_equal(tly_buf_appendf(&b, "token-%d", 7), 0);
    char *p = tly_buf_detach(&b);
    assert_non_null(p);
    assert_string_equal(p, "token-7");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(p);
    /* Buffer is reusable after detach. */
    assert_int_equal(tly_buf_append(&b, "again", 5), 0);
    assert_string_equal(b.data, "again");
    tly_buf_free(&b);
    /* Detaching an empty buffer still gives an empty string the caller can free. */
    tly_buf_init(&b, 10);
    p = tly_buf_detach(&b);
    assert_non_null(p);
    assert_string_equal(p, "");
    free(p);
}

static void test_buf_reset_keeps_memory(void **state)
{
    (void)state;
    tly_buf b;
    tly_buf_init(&b, 100);
    assert_int_equal(tly_buf_append(&b, "abc", 3), 0);
    char *before = b.data;
    tly_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_ptr_equal(b.data, before);
    assert_string_equal(b.data, "");
    assert_int_equal(tly_buf_append(&b, "de", 2), 0);
    assert_string_equal(b.data, "de");
    tly_buf_free(&b);
    tly_buf_reset(&b);   /* reset on a freed buffer must not crash */
    assert_int_equal(b.len, 0);
}

/* ---- hash.h --------------------------------------------------------------------- */

#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[TLY_SHA256_HEX_LEN + 1];
    tly_sha256_hex("", 0, hex);
    assert_string_equal(hex, SHA_EMPTY);
    tly_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, SHA_ABC);
    tly_sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    assert_true(tly_is_sha256_hex(hex));
}

static void test_sha256_streaming(void **state)
{
    (void)state;
    char one[TLY_SHA256_HEX_LEN + 1], two[TLY_SHA256_HEX_LEN + 1];
    tly_sha256 *h = tly_sha256_new();
    assert_non_null(h);
    tly_sha256_finish(h, two);
    assert_string_equal(two, SHA_EMPTY);

    h = tly_sha256_new();
    assert_non_null(h);
    tly_sha256_update(h, "a", 1);
    tly_sha256_update(h, "", 0);
    tly_sha256_update(h, "bc", 2);
    tly_sha256_finish(h, two);
    assert_string_equal(two, SHA_ABC);

    /* A larger input fed in odd-sized chunks equals the one-shot digest. */
    size_t n = 100000;
    unsigned char *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 31 + 7);
    tly_sha256_hex(data, n, one);
    h = tly_sha256_new();
    assert_non_null(h);
    for (size_t off = 0; off < n;) {
        size_t chunk = (off % 997) + 1;
        if (chunk > n - off)
            chunk = n - off;
        tly_sha256_update(h, data + off, chunk);
        off += chunk;
    }
    tly_sha256_finish(h, two);
    assert_string_equal(one, two);
    free(data);

    /* Abandoning a hash does not leak (ASan checks). */
    h = tly_sha256_new();
    assert_non_null(h);
    tly_sha256_update(h, "x", 1);
    tly_sha256_free(h);
    tly_sha256_free(NULL);
}

static void test_sha256_file(void **state)
{
    (void)state;
    char dir[64], path[128], hex[TLY_SHA256_HEX_LEN + 1], want[TLY_SHA256_HEX_LEN + 1];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/f.bin", dir);

    write_text(path, "abc");
    uint64_t size = 99;
    assert_int_equal(tly_sha256_file(path, hex, &size), 0);
    assert_string_equal(hex, SHA_ABC);
    assert_int_equal(size, 3);

    /* Empty file; size_out optional. */
    write_text(path, "");
    assert_int_equal(tly_sha256_file(path, hex, NULL), 0);
    assert_string_equal(hex, SHA_EMPTY);

    /* File larger than the internal read buffer. */
    size_t n = 200000;
    char *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)('a' + i % 26);
    assert_int_equal(tly_write_file_atomic(path, data, n, 0644), 0);
    tly_sha256_hex(data, n, want);
    assert_int_equal(tly_sha256_file(path, hex, &size), 0);
    assert_string_equal(hex, want);
    assert_int_equal(size, n);
    free(data);

    /* Missing file: -1 with errno. */
    snprintf(path, sizeof path, "%s/missing", dir);
    errno = 0;
    assert_int_equal(tly_sha256_file(path, hex, &size), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(tly_remove_tree(dir), 0);
}

static void test_is_sha256_hex(void **state)
{
    (void)state;
    assert_true(tly_is_sha256_hex(SHA_ABC));
    assert_true(tly_is_sha256_hex("0000000000000000000000000000000000000000000000000000000000000000"));
    assert_false(tly_is_sha256_hex(NULL));
    assert_false(tly_is_sha256_hex(""));
    /* Uppercase rejected. */
    assert_false(tly_is_sha256_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
    /* 63 and 65 digits. */
    assert_false(tly_is_sha256_hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"));
    assert_false(tly_is_sha256_hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0"));
    /* Non-hex letter. */
    assert_false(tly_is_sha256_hex("ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    /* Short strings must not be read past their end (ASan would catch it). */
    assert_false(tly_is_sha256_hex("abc"));
}

static void test_random_hex(void **state)
{
    (void)state;
    char a[129], b[129];
    assert_int_equal(tly_random_hex(16, a, sizeof a), 0);
    assert_int_equal(strlen(a), 32);
    assert_int_equal(tly_random_hex(32, b, sizeof b), 0);
    assert_int_equal(strlen(b), 64);
    assert_true(tly_is_sha256_hex(b));
    for (size_t i = 0; a[i]; i++)
        assert_non_null(strchr("0123456789abcdef", a[i]));
    /* Two draws differ. */
    assert_int_equal(tly_random_hex(32, a, sizeof a), 0);
    assert_string_not_equal(a, b);
    /* Zero bytes gives an empty string. */
    assert_int_equal(tly_random_hex(0, a, sizeof a), 0);
    assert_string_equal(a, "");
    /* Output exactly big enough works; one byte short fails. */
    assert_int_equal(tly_random_hex(8, a, 17), 0);
    assert_int_equal(strlen(a), 16);
    assert_int_equal(tly_random_hex(8, a, 16), -1);

    /* Many draws are all distinct. */
    enum { N = 200 };
    static char seen[N][33];
    for (int i = 0; i < N; i++) {
        assert_int_equal(tly_random_hex(16, seen[i], sizeof seen[i]), 0);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(seen[i], seen[j]);
    }

    unsigned char raw1[32], raw2[32];
    assert_int_equal(tly_random_bytes(raw1, sizeof raw1), 0);
    assert_int_equal(tly_random_bytes(raw2, sizeof raw2), 0);
    assert_true(memcmp(raw1, raw2, sizeof raw1) != 0);
}

static void test_const_eq(void **state)
{
    (void)state;
    assert_true(tly_const_eq("abcdef", "abcdef", 6));
    assert_false(tly_const_eq("abcdef", "abcdeg", 6));
    assert_false(tly_const_eq("xbcdef", "abcdef", 6));
    assert_true(tly_const_eq("abcX", "abcY", 3));   /* only len bytes compared */
    assert_true(tly_const_eq("a", "b", 0));
}

static void test_hmac_rfc4231_case2(void **state)
{
    (void)state;
    char hex[TLY_SHA256_HEX_LEN + 1];
    const char *key = "Jefe", *msg = "what do ya want for nothing?";
    tly_hmac_sha256_hex(key, strlen(key), msg, strlen(msg), hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* RFC 4231 test case 1: key = 20 x 0x0b, "Hi There". */
    unsigned char key1[20];
    memset(key1, 0x0b, sizeof key1);
    tly_hmac_sha256_hex(key1, sizeof key1, "Hi There", 8, hex);
    assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

/* ---- json.h --------------------------------------------------------------------- */

static json_t *parse_ok(const char *text)
{
    json_t *j = NULL;
    tly_error err;
    if (tly_json_parse_object(text, strlen(text), &j, &err) < 0)
        fail_msg("parse of %s failed: %s", text, err.message);
    return j;
}

static void test_json_parse_errors(void **state)
{
    (void)state;
    json_t *j = NULL;
    tly_error err;
    const char *bad = "{\n  \"a\": 1,\n  \"b\": }";
    assert_int_equal(tly_json_parse_object(bad, strlen(bad), &j, &err), -1);
    assert_null(j);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_string_equal(err.code, "invalid_json");
    assert_non_null(strstr(err.message, "line 3"));
    assert_non_null(strstr(err.message, "column"));

    /* Empty input, truncated input, trailing garbage. */
    const char *cases[] = {"", "{", "{\"a\":1} x", "{'a':1}", "nul"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tly_error_clear(&err);
        assert_int_equal(tly_json_parse_object(cases[i], strlen(cases[i]), &j, &err), -1);
        assert_int_equal(err.status, TLY_E_INVALID);
        assert_string_equal(err.code, "invalid_json");
    }

    /* len is honoured: the bytes after len are not parsed. */
    const char *prefix = "{\"a\":1}garbage";
    assert_int_equal(tly_json_parse_object(prefix, 7, &j, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "a")), 1);
    json_decref(j);

    /* NULL err allowed. */
    assert_int_equal(tly_json_parse_object("{", 1, &j, NULL), -1);
}

static void test_json_parse_non_object(void **state)
{
    (void)state;
    const char *cases[] = {"[]", "[1,2]", "1", "\"s\"", "null", "true"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = NULL;
        tly_error err;
        tly_error_clear(&err);
        assert_int_equal(tly_json_parse_object(cases[i], strlen(cases[i]), &j, &err), -1);
        assert_null(j);
        assert_int_equal(err.status, TLY_E_INVALID);
        assert_string_equal(err.code, "invalid_json");
    }
}

static void test_json_parse_duplicates(void **state)
{
    (void)state;
    json_t *j = NULL;
    tly_error err;
    const char *dup = "{\"a\":1,\"a\":2}";
    assert_int_equal(tly_json_parse_object(dup, strlen(dup), &j, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_string_equal(err.code, "invalid_json");
    const char *nested = "{\"o\":{\"k\":1,\"k\":1}}";
    assert_int_equal(tly_json_parse_object(nested, strlen(nested), &j, &err), -1);
    assert_string_equal(err.code, "invalid_json");
}

static void test_json_get_string(void **state)
{
    (void)state;
    json_t *j = parse_ok("{\"s\":\"hi\",\"n\":5,\"z\":null}");
    tly_error err;
    const char *s = "untouched";
    assert_int_equal(tly_json_get_string(j, "s", 1, &s, &err), 0);
    assert_string_equal(s, "hi");
    s = "untouched";
    assert_int_equal(tly_json_get_string(j, "missing", 0, &s, &err), 1);
    assert_string_equal(s, "untouched");
    assert_int_equal(tly_json_get_string(j, "z", 0, &s, &err), 1);   /* null = absent */
    assert_string_equal(s, "untouched");
    assert_int_equal(tly_json_get_string(j, "missing", 1, &s, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_non_null(strstr(err.message, "missing"));
    assert_int_equal(tly_json_get_string(j, "n", 0, &s, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_non_null(strstr(err.message, "'n'"));
    assert_string_equal(s, "untouched");
    assert_int_equal(tly_json_get_string(j, "n", 1, &s, NULL), -1);
    json_decref(j);
}

static void test_json_get_int(void **state)
{
    (void)state;
    json_t *j = parse_ok("{\"i\":7,\"neg\":-3,\"f\":7.5,\"s\":\"7\",\"big\":9007199254740993}");
    tly_error err;
    int64_t v = -99;
    assert_int_equal(tly_json_get_int(j, "i", 1, 0, 10, &v, &err), 0);
    assert_int_equal(v, 7);
    /* Bounds are inclusive. */
    assert_int_equal(tly_json_get_int(j, "i", 1, 7, 7, &v, &err), 0);
    v = -99;
    assert_int_equal(tly_json_get_int(j, "i", 1, 8, 10, &v, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_non_null(strstr(err.message, "'i'"));
    assert_int_equal(v, -99);
    assert_int_equal(tly_json_get_int(j, "i", 1, 0, 6, &v, &err), -1);
    assert_int_equal(tly_json_get_int(j, "neg", 1, 0, 10, &v, &err), -1);
    assert_int_equal(tly_json_get_int(j, "neg", 1, -3, 10, &v, &err), 0);
    assert_int_equal(v, -3);
    assert_int_equal(tly_json_get_int(j, "f", 1, 0, 10, &v, &err), -1);   /* real is not int */
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_int_equal(tly_json_get_int(j, "s", 1, 0, 10, &v, &err), -1);
    assert_int_equal(tly_json_get_int(j, "big", 1, INT64_MIN, INT64_MAX, &v, &err), 0);
    assert_int_equal(v, 9007199254740993LL);
    v = 5;
    assert_int_equal(tly_json_get_int(j, "absent", 0, 0, 10, &v, &err), 1);
    assert_int_equal(v, 5);
    assert_int_equal(tly_json_get_int(j, "absent", 1, 0, 10, &v, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    json_decref(j);
}

static void test_json_get_number(void **state)
{
    (void)state;
    json_t *j = parse_ok("{\"r\":0.5,\"i\":1,\"s\":\"x\",\"b\":true}");
    tly_error err;
    double d = -1;
    assert_int_equal(tly_json_get_number(j, "r", 1, 0, 1, &d, &err), 0);
    assert_true(d == 0.5);
    assert_int_equal(tly_json_get_number(j, "i", 1, 0, 1, &d, &err), 0);   /* ints are numbers */
    assert_true(d == 1.0);
    d = -1;
    assert_int_equal(tly_json_get_number(j, "r", 1, 0.6, 1, &d, &err), -1);
    assert_true(d == -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_int_equal(tly_json_get_number(j, "i", 1, 0, 0.99, &d, &err), -1);
    assert_int_equal(tly_json_get_number(j, "s", 1, 0, 1, &d, &err), -1);
    assert_int_equal(tly_json_get_number(j, "b", 1, 0, 1, &d, &err), -1);
    assert_int_equal(tly_json_get_number(j, "none", 0, 0, 1, &d, &err), 1);
    assert_true(d == -1);
    assert_int_equal(tly_json_get_number(j, "none", 1, 0, 1, &d, &err), -1);
    json_decref(j);
}

static void test_json_get_bool_object_array(void **state)
{
    (void)state;
    json_t *j = parse_ok("{\"t\":true,\"f\":false,\"n\":1,\"o\":{\"k\":1},\"a\":[1],\"s\":\"x\"}");
    tly_error err;
    int b = -1;
    assert_int_equal(tly_json_get_bool(j, "t", 1, &b, &err), 0);
    assert_int_equal(b, 1);
    assert_int_equal(tly_json_get_bool(j, "f", 1, &b, &err), 0);
    assert_int_equal(b, 0);
    b = -1;
    assert_int_equal(tly_json_get_bool(j, "n", 1, &b, &err), -1);   /* 1 is not a bool */
    assert_int_equal(b, -1);
    assert_int_equal(tly_json_get_bool(j, "x", 0, &b, &err), 1);
    assert_int_equal(tly_json_get_bool(j, "x", 1, &b, &err), -1);

    json_t *o = NULL;
    assert_int_equal(tly_json_get_object(j, "o", 1, &o, &err), 0);
    assert_ptr_equal(o, json_object_get(j, "o"));
    o = NULL;
    assert_int_equal(tly_json_get_object(j, "a", 1, &o, &err), -1);
    assert_null(o);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_int_equal(tly_json_get_object(j, "x", 0, &o, &err), 1);
    assert_int_equal(tly_json_get_object(j, "x", 1, &o, &err), -1);

    json_t *a = NULL;
    assert_int_equal(tly_json_get_array(j, "a", 1, &a, &err), 0);
    assert_int_equal(json_array_size(a), 1);
    a = NULL;
    assert_int_equal(tly_json_get_array(j, "o", 1, &a, &err), -1);
    assert_int_equal(tly_json_get_array(j, "s", 0, &a, &err), -1);
    assert_null(a);
    assert_int_equal(tly_json_get_array(j, "x", 0, &a, &err), 1);
    json_decref(j);
}

static void test_json_only_keys(void **state)
{
    (void)state;
    static const char *const allowed[] = {"name", "media", NULL};
    tly_error err;
    json_t *ok = parse_ok("{\"name\":\"x\",\"media\":\"image\"}");
    assert_int_equal(tly_json_only_keys(ok, "project", allowed, &err), 0);
    json_t *empty = parse_ok("{}");
    assert_int_equal(tly_json_only_keys(empty, "project", allowed, &err), 0);
    json_t *bad = parse_ok("{\"name\":\"x\",\"nmae\":1}");
    assert_int_equal(tly_json_only_keys(bad, "project", allowed, &err), -1);
    assert_int_equal(err.status, TLY_E_INVALID);
    assert_non_null(strstr(err.message, "nmae"));
    assert_non_null(strstr(err.message, "project"));
    static const char *const none[] = {NULL};
    assert_int_equal(tly_json_only_keys(ok, "x", none, &err), -1);
    json_decref(ok);
    json_decref(empty);
    json_decref(bad);
}

static void test_json_dump(void **state)
{
    (void)state;
    json_t *j = parse_ok("{\"b\":1,\"a\":0.1,\"c\":[true,null]}");
    char *s = tly_json_dump(j);
    assert_non_null(s);
    assert_string_equal(s, "{\"b\":1,\"a\":0.1,\"c\":[true,null]}");
    free(s);
    json_decref(j);
}

/* ---- fsutil.h ------------------------------------------------------------------- */

static void test_fs_mkdirs(void **state)
{
    (void)state;
    char dir[64], path[256];
    struct stat st;
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/a/b/c/d", dir);
    assert_int_equal(tly_mkdirs(path, 0755), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* Existing path is fine; trailing slash too. */
    assert_int_equal(tly_mkdirs(path, 0755), 0);
    snprintf(path, sizeof path, "%s/a/b/e/", dir);
    assert_int_equal(tly_mkdirs(path, 0755), 0);
    snprintf(path, sizeof path, "%s/a/b/e", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* A file in the way fails. */
    snprintf(path, sizeof path, "%s/file", dir);
    write_text(path, "x");
    snprintf(path, sizeof path, "%s/file/sub", dir);
    assert_int_equal(tly_mkdirs(path, 0755), -1);
    assert_int_equal(tly_mkdirs("", 0755), -1);
    assert_int_equal(tly_remove_tree(dir), 0);
    assert_int_equal(stat(dir, &st), -1);
}

static void test_fs_write_atomic(void **state)
{
    (void)state;
    char dir[64], path[128];
    struct stat st;
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/out.txt", dir);
    assert_int_equal(tly_write_file_atomic(path, "hello", 5, 0600), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 5);
    size_t len = 0;
    char *s = tly_read_file(path, 100, &len);
    assert_non_null(s);
    assert_string_equal(s, "hello");
    assert_int_equal(len, 5);
    free(s);
    /* Overwrite with new content and a different mode (umask must not interfere). */
    mode_t old = umask(077);
    assert_int_equal(tly_write_file_atomic(path, "bye", 3, 0644), 0);
    umask(old);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    s = tly_read_file(path, 100, &len);
    assert_non_null(s);
    assert_string_equal(s, "bye");
    free(s);
    /* Empty content. */
    assert_int_equal(tly_write_file_atomic(path, "", 0, 0600), 0);
    s = tly_read_file(path, 100, &len);
    assert_non_null(s);
    assert_int_equal(len, 0);
    free(s);
    /* No temp file left behind: only out.txt in the directory. */
    assert_int_equal(dir_entries(dir), 1);
    /* A missing directory fails and leaves nothing. */
    snprintf(path, sizeof path, "%s/nodir/out.txt", dir);
    assert_int_equal(tly_write_file_atomic(path, "x", 1, 0600), -1);
    assert_int_equal(dir_entries(dir), 1);
    assert_int_equal(tly_remove_tree(dir), 0);
}

static void test_fs_read_file_cap(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ten", dir);
    write_text(path, "0123456789");
    size_t len = 0;
    char *s = tly_read_file(path, 10, &len);   /* exactly at max */
    assert_non_null(s);
    assert_int_equal(len, 10);
    assert_string_equal(s, "0123456789");
    free(s);
    errno = 0;
    s = tly_read_file(path, 9, &len);           /* one over */
    assert_null(s);
    assert_int_equal(errno, EFBIG);
    s = tly_read_file(path, 1000, NULL);         /* len_out optional */
    assert_non_null(s);
    assert_string_equal(s, "0123456789");
    free(s);
    snprintf(path, sizeof path, "%s/empty", dir);
    write_text(path, "");
    s = tly_read_file(path, 0, &len);
    assert_non_null(s);
    assert_int_equal(len, 0);
    assert_string_equal(s, "");
    free(s);
    snprintf(path, sizeof path, "%s/missing", dir);
    errno = 0;
    assert_null(tly_read_file(path, 10, &len));
    assert_int_equal(errno, ENOENT);
    assert_int_equal(tly_remove_tree(dir), 0);
}

static void test_fs_safe_filename(void **state)
{
    (void)state;
    char n255[256], n256[257];
    memset(n255, 'a', 255);
    n255[255] = '\0';
    memset(n256, 'a', 256);
    n256[256] = '\0';
    static const struct {
        const char *name;
        int ok;
    } cases[] = {
        {"a.jpg", 1},
        {"photo 1 (copy).PNG", 1},
        {".hidden", 1},
        {"...", 1},
        {"a..b", 1},
        {"caf\xc3\xa9.jpg", 1},                       /* UTF-8 */
        {"\xe7\x8c\xab.png", 1},                      /* UTF-8 CJK */
        {"", 0},
        {".", 0},
        {"..", 0},
        {"a/b", 0},
        {"/abs", 0},
        {"dir/", 0},
        {"a\\b", 0},
        {"a\nb", 0},
        {"a\rb", 0},
        {"a\tb", 0},
        {"\x01", 0},
        {"a\x1f", 0},
        {"del\x7f", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (tly_is_safe_filename(cases[i].name) != cases[i].ok)
            fail_msg("tly_is_safe_filename(case %zu \"%s\") != %d", i, cases[i].name, cases[i].ok);
    assert_true(tly_is_safe_filename(n255));
    assert_false(tly_is_safe_filename(n256));
}

static void test_fs_basename(void **state)
{
    (void)state;
    assert_string_equal(tly_basename("/a/b/c.jpg"), "c.jpg");
    assert_string_equal(tly_basename("c.jpg"), "c.jpg");
    assert_string_equal(tly_basename("a/"), "");
}

struct roots_fixture {
    char base[64];       /* realpath'd mkdtemp dir */
    char root[PATH_MAX];
    char rootx[PATH_MAX];
    char outside[PATH_MAX];
};

static void make_roots(struct roots_fixture *f)
{
    char tmp[64];
    char path[PATH_MAX + 64];
    make_tmpdir(tmp, sizeof tmp);
    assert_non_null(realpath(tmp, f->base));
    snprintf(f->root, sizeof f->root, "%s/root", f->base);
    snprintf(f->rootx, sizeof f->rootx, "%s/rootX", f->base);
    snprintf(f->outside, sizeof f->outside, "%s/outside", f->base);
    snprintf(path, sizeof path, "%s/sub", f->root);
    assert_int_equal(tly_mkdirs(path, 0755), 0);
    assert_int_equal(tly_mkdirs(f->rootx, 0755), 0);
    assert_int_equal(tly_mkdirs(f->outside, 0755), 0);
    snprintf(path, sizeof path, "%s/sub/in.jpg", f->root);
    write_text(path, "in");
    snprintf(path, sizeof path, "%s/x.jpg", f->rootx);
    write_text(path, "x");
    snprintf(path, sizeof path, "%s/secret", f->outside);
    write_text(path, "secret");
    /* root/link -> outside/secret, root/dirlink -> outside, root/inlink -> sub/in.jpg */
    snprintf(path, sizeof path, "%s/link", f->root);
    char target[PATH_MAX + 16];
    snprintf(target, sizeof target, "%s/secret", f->outside);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof path, "%s/dirlink", f->root);
    assert_int_equal(symlink(f->outside, path), 0);
    snprintf(path, sizeof path, "%s/inlink", f->root);
    assert_int_equal(symlink("sub/in.jpg", path), 0);
}

static void test_fs_path_within_roots(void **state)
{
    (void)state;
    struct roots_fixture f;
    make_roots(&f);
    const char *roots[] = {f.root};
    char out[PATH_MAX], path[PATH_MAX + 64], want[PATH_MAX + 64];

    /* Inside. */
    snprintf(path, sizeof path, "%s/sub/in.jpg", f.root);
    memset(out, 0, sizeof out);
    assert_int_equal(tly_path_within_roots(path, roots, 1, out, sizeof out), 0);
    assert_string_equal(out, path);

    /* ".." that stays inside resolves and is accepted. */
    snprintf(path, sizeof path, "%s/sub/../sub/in.jpg", f.root);
    assert_int_equal(tly_path_within_roots(path, roots, 1, out, sizeof out), 0);
    snprintf(want, sizeof want, "%s/sub/in.jpg", f.root);
    assert_string_equal(out, want);

    /* Symlink inside the root pointing inside: accepted, resolved. */
    snprintf(path, sizeof path, "%s/inlink", f.root);
    assert_int_equal(tly_path_within_roots(path, roots, 1, out, sizeof out), 0);
    assert_string_equal(out, want);

    /* The root itself. */
    assert_int_equal(tly_path_within_roots(f.root, roots, 1, out, sizeof out), 0);
    assert_string_equal(out, f.root);

    /* Outside. */
    snprintf(path, sizeof path, "%s/secret", f.outside);
    assert_int_equal(tly_path_within_roots(path, roots, 1, out, sizeof out), -1);
    assert_int_equal(tly_path_within_roots("/etc/passwd", roots, 1, out, sizeof out), -1);
    assert_int_equal(tly_path_within_roots(f.base, roots, 1, out, sizeof out), -1);

    /* ".." escaping the root. */
    snprintf(path, sizeof path, "%s/../outside/secret", f.root);
    assert_int_equal(tly_path_within_roots(path, roots, 1, out, sizeof out), -1);
    snprintf(path, sizeof path, "%s/sub/../../outside", f.root);
    assert_int_equal(tly_path_within_roots(path, roots, 1, out, sizeof out), -1);

    /* Symlinks inside the root pointing outside. */
    snprintf(path, sizeof path, "%s/link", f.root);
    assert_int_equal(tly_path_within_roots(path, roots, 1, out, sizeof out), -1);
    snprintf(path, sizeof path, "%s/dirlink/secret", f.root);
    assert_int_equal(tly_path_within_roots(path, roots, 1, out, sizeof out), -1);

    /* A sibling whose name starts with the root's name. */
    assert_int_equal(tly_path_within_roots(f.rootx, roots, 1, out, sizeof out), -1);
    snprintf(path, sizeof path, "%s/x.jpg", f.rootx);
    assert_int_equal(tly_path_within_roots(path, roots, 1, out, sizeof out), -1);

    /* Missing path. */
    snprintf(path, sizeof path, "%s/nope.jpg", f.root);
    assert_int_equal(tly_path_within_roots(path, roots, 1, out, sizeof out), -1);

    /* No roots at all. */
    snprintf(path, sizeof path, "%s/sub/in.jpg", f.root);
    assert_int_equal(tly_path_within_roots(path, roots, 0, out, sizeof out), -1);

    /* Several roots: a missing root is skipped, the second one matches. */
    char missing_root[PATH_MAX + 16];
    snprintf(missing_root, sizeof missing_root, "%s/gone", f.base);
    const char *two[] = {missing_root, f.outside};
    snprintf(path, sizeof path, "%s/secret", f.outside);
    assert_int_equal(tly_path_within_roots(path, two, 2, out, sizeof out), 0);
    assert_string_equal(out, path);

    /* A root given with a trailing slash or through ".." works the same. */
    char root_slash[PATH_MAX + 16];
    snprintf(root_slash, sizeof root_slash, "%s/", f.root);
    const char *rs[] = {root_slash};
    snprintf(path, sizeof path, "%s/sub/in.jpg", f.root);
    assert_int_equal(tly_path_within_roots(path, rs, 1, out, sizeof out), 0);
    assert_int_equal(tly_path_within_roots(f.rootx, rs, 1, out, sizeof out), -1);

    /* Output too small fails rather than truncating. */
    char tiny[8];
    assert_int_equal(tly_path_within_roots(path, roots, 1, tiny, sizeof tiny), -1);

    assert_int_equal(tly_remove_tree(f.base), 0);
}

/* ---- metrics.h ------------------------------------------------------------------ */

static void test_metrics_counter(void **state)
{
    (void)state;
    tly_metrics_reset();
    tly_counter *a = tly_metrics_counter("t_requests_total", "Requests.", "route=\"a\",status=\"200\"");
    tly_counter *a2 = tly_metrics_counter("t_requests_total", "Requests.", "route=\"a\",status=\"200\"");
    tly_counter *b = tly_metrics_counter("t_requests_total", "Requests.", "route=\"b\",status=\"404\"");
    tly_counter *plain = tly_metrics_counter("t_plain_total", "Plain.", "");
    tly_counter *plain_null = tly_metrics_counter("t_plain_total", "Plain.", NULL);
    assert_non_null(a);
    assert_ptr_equal(a, a2);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(plain, plain_null);
    assert_int_equal(tly_counter_value(a), 0);
    tly_counter_add(a, 1);
    tly_counter_add(a2, 2);
    tly_counter_add(b, 5);
    tly_counter_add(plain, 0);
    assert_int_equal(tly_counter_value(a), 3);
    assert_int_equal(tly_counter_value(b), 5);
    assert_int_equal(tly_counter_value(plain), 0);

    tly_buf out;
    tly_buf_init(&out, 1 << 20);
    assert_int_equal(tly_metrics_render(&out), 0);
    assert_non_null(out.data);
    assert_int_equal(count_substr(out.data, "# HELP t_requests_total Requests.\n"), 1);
    assert_int_equal(count_substr(out.data, "# TYPE t_requests_total counter\n"), 1);
    assert_int_equal(count_substr(out.data, "# HELP t_plain_total Plain.\n"), 1);
    assert_int_equal(count_substr(out.data, "# TYPE t_plain_total counter\n"), 1);
    assert_non_null(strstr(out.data, "t_requests_total{route=\"a\",status=\"200\"} 3\n"));
    assert_non_null(strstr(out.data, "t_requests_total{route=\"b\",status=\"404\"} 5\n"));
    assert_non_null(strstr(out.data, "\nt_plain_total 0\n"));
    /* HELP/TYPE precede the series of the family. */
    assert_true(strstr(out.data, "# TYPE t_requests_total") <
                strstr(out.data, "t_requests_total{route=\"a\""));
    tly_buf_free(&out);
    tly_metrics_reset();
}

static void test_metrics_interleaved_families(void **state)
{
    (void)state;
    tly_metrics_reset();
    /* Register families interleaved; each still gets one header. */
    tly_counter_add(tly_metrics_counter("t_a_total", "A.", "k=\"1\""), 1);
    tly_counter_add(tly_metrics_counter("t_b_total", "B.", "k=\"1\""), 2);
    tly_counter_add(tly_metrics_counter("t_a_total", "A.", "k=\"2\""), 3);
    tly_buf out;
    tly_buf_init(&out, 1 << 20);
    assert_int_equal(tly_metrics_render(&out), 0);
    assert_int_equal(count_substr(out.data, "# HELP t_a_total"), 1);
    assert_int_equal(count_substr(out.data, "# TYPE t_a_total"), 1);
    assert_int_equal(count_substr(out.data, "# HELP t_b_total"), 1);
    assert_non_null(strstr(out.data, "t_a_total{k=\"1\"} 1\n"));
    assert_non_null(strstr(out.data, "t_a_total{k=\"2\"} 3\n"));
    assert_non_null(strstr(out.data, "t_b_total{k=\"1\"} 2\n"));
    /* Both t_a_total series are grouped under the t_a_total header, before t_b's. */
    assert_true(strstr(out.data, "t_a_total{k=\"2\"}") < strstr(out.data, "# HELP t_b_total"));
    tly_buf_free(&out);

    /* Render into a too-small buffer fails. */
    tly_buf_init(&out, 16);
    assert_int_equal(tly_metrics_render(&out), -1);
    tly_buf_free(&out);
    tly_metrics_reset();
}

static uint64_t series_value(const char *text, const char *prefix)
{
    const char *p = strstr(text, prefix);
    if (!p)
        fail_msg("series %s not rendered", prefix);
    return strtoull(p + strlen(prefix), NULL, 10);
}

static void test_metrics_histogram(void **state)
{
    (void)state;
    tly_metrics_reset();
    tly_histogram *h = tly_metrics_histogram("t_latency_seconds", "Latency.", "route=\"x\"");
    assert_ptr_equal(h, tly_metrics_histogram("t_latency_seconds", "Latency.", "route=\"x\""));
    const double obs[] = {0.001, 0.003, 0.02, 0.7, 3.0, 100.0};
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        tly_histogram_observe(h, obs[i]);

    tly_buf out;
    tly_buf_init(&out, 1 << 20);
    assert_int_equal(tly_metrics_render(&out), 0);
    assert_int_equal(count_substr(out.data, "# TYPE t_latency_seconds histogram\n"), 1);
    assert_int_equal(count_substr(out.data, "# HELP t_latency_seconds Latency.\n"), 1);

    /* Buckets are cumulative (non-decreasing, in order) and +Inf equals the count. */
    uint64_t prev = 0;
    int nb = 0;
    const char *p = out.data;
    const char *pre = "t_latency_seconds_bucket{route=\"x\",le=\"";
    while ((p = strstr(p, pre))) {
        const char *q = strchr(p, '}');
        assert_non_null(q);
        uint64_t v = strtoull(q + 2, NULL, 10);
        assert_true(v >= prev);
        prev = v;
        nb++;
        p = q;
    }
    assert_true(nb >= 2);
    uint64_t inf = series_value(out.data, "t_latency_seconds_bucket{route=\"x\",le=\"+Inf\"} ");
    uint64_t count = series_value(out.data, "t_latency_seconds_count{route=\"x\"} ");
    assert_int_equal(count, 6);
    assert_int_equal(inf, count);
    assert_int_equal(prev, inf);   /* the last bucket rendered is +Inf */
    assert_int_equal(series_value(out.data, "t_latency_seconds_bucket{route=\"x\",le=\"0.005\"} "), 2);
    assert_int_equal(series_value(out.data, "t_latency_seconds_bucket{route=\"x\",le=\"0.025\"} "), 3);
    assert_int_equal(series_value(out.data, "t_latency_seconds_bucket{route=\"x\",le=\"1\"} "), 4);
    assert_int_equal(series_value(out.data, "t_latency_seconds_bucket{route=\"x\",le=\"10\"} "), 5);
    const char *sum = strstr(out.data, "t_latency_seconds_sum{route=\"x\"} ");
    assert_non_null(sum);
    double s = strtod(sum + strlen("t_latency_seconds_sum{route=\"x\"} "), NULL);
    assert_true(s > 103.72 && s < 103.73);
    tly_buf_free(&out);

    /* Histogram without labels renders le as the only label. */
    tly_metrics_reset();
    tly_histogram *u = tly_metrics_histogram("t_plain_seconds", "P.", "");
    tly_histogram_observe(u, 0.2);
    tly_buf_init(&out, 1 << 20);
    assert_int_equal(tly_metrics_render(&out), 0);
    assert_non_null(strstr(out.data, "t_plain_seconds_bucket{le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(out.data, "t_plain_seconds_count 1\n"));
    tly_buf_free(&out);
    tly_metrics_reset();
}

static double gauge_fn(void *arg)
{
    return *(double *)arg;
}

static void test_metrics_gauge_and_overflow(void **state)
{
    (void)state;
    tly_metrics_reset();
    double depth = 42;
    tly_metrics_gauge("t_queue_depth", "Depth.", gauge_fn, &depth);
    tly_buf out;
    tly_buf_init(&out, 1 << 20);
    assert_int_equal(tly_metrics_render(&out), 0);
    assert_non_null(strstr(out.data, "# TYPE t_queue_depth gauge\n"));
    assert_non_null(strstr(out.data, "t_queue_depth 42\n"));
    tly_buf_free(&out);

    /* Past capacity lookups still return a usable (shared) series. */
    tly_metrics_reset();
    char labels[64];
    for (int i = 0; i < TLY_METRICS_MAX; i++) {
        snprintf(labels, sizeof labels, "i=\"%d\"", i);
        assert_non_null(tly_metrics_counter("t_many_total", "Many.", labels));
    }
    tly_counter *o1 = tly_metrics_counter("t_many_total", "Many.", "i=\"over1\"");
    tly_counter *o2 = tly_metrics_counter("t_many_total", "Many.", "i=\"over2\"");
    assert_non_null(o1);
    assert_ptr_equal(o1, o2);
    tly_counter_add(o1, 1);
    assert_true(tly_counter_value(o2) >= 1);
    tly_metrics_reset();
}

/* ---- timeutil.h ----------------------------------------------------------------- */

static void test_time_rfc3339(void **state)
{
    (void)state;
    char out[64];
    tly_format_rfc3339(0, out, sizeof out);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    tly_format_rfc3339_ms(0, out, sizeof out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    tly_format_rfc3339(1700000000123LL, out, sizeof out);
    assert_string_equal(out, "2023-11-14T22:13:20Z");
    tly_format_rfc3339_ms(1700000000123LL, out, sizeof out);
    assert_string_equal(out, "2023-11-14T22:13:20.123Z");
    tly_format_rfc3339_ms(1700000000999LL, out, sizeof out);
    assert_string_equal(out, "2023-11-14T22:13:20.999Z");
    /* Leap day. */
    tly_format_rfc3339(951782400000LL, out, sizeof out);
    assert_string_equal(out, "2000-02-29T00:00:00Z");
    /* The documented minimum sizes suffice. */
    char small[21], small_ms[25];
    tly_format_rfc3339(1700000000123LL, small, sizeof small);
    assert_string_equal(small, "2023-11-14T22:13:20Z");
    tly_format_rfc3339_ms(1700000000123LL, small_ms, sizeof small_ms);
    assert_string_equal(small_ms, "2023-11-14T22:13:20.123Z");
}

static void test_time_clocks(void **state)
{
    (void)state;
    int64_t now = tly_now_ms();
    assert_true(now > 1600000000000LL);   /* after 2020 */
    int64_t a = tly_mono_ns();
    int64_t b = tly_mono_ns();
    assert_true(b >= a);
    assert_true(a > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_fail_fills),
        cmocka_unit_test(test_error_fail_null_err),
        cmocka_unit_test(test_error_fail_null_code),
        cmocka_unit_test(test_error_fail_truncates),
        cmocka_unit_test(test_error_clear),
        cmocka_unit_test(test_error_prefix),
        cmocka_unit_test(test_error_prefix_long),
        cmocka_unit_test(test_error_status_names),
        cmocka_unit_test(test_buf_append_basic),
        cmocka_unit_test(test_buf_cap_exact),
        cmocka_unit_test(test_buf_failed_append_unchanged),
        cmocka_unit_test(test_buf_appendf),
        cmocka_unit_test(test_buf_binary_and_nul),
        cmocka_unit_test(test_buf_detach),
        cmocka_unit_test(test_buf_reset_keeps_memory),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_sha256_streaming),
        cmocka_unit_test(test_sha256_file),
        cmocka_unit_test(test_is_sha256_hex),
        cmocka_unit_test(test_random_hex),
        cmocka_unit_test(test_const_eq),
        cmocka_unit_test(test_hmac_rfc4231_case2),
        cmocka_unit_test(test_json_parse_errors),
        cmocka_unit_test(test_json_parse_non_object),
        cmocka_unit_test(test_json_parse_duplicates),
        cmocka_unit_test(test_json_get_string),
        cmocka_unit_test(test_json_get_int),
        cmocka_unit_test(test_json_get_number),
        cmocka_unit_test(test_json_get_bool_object_array),
        cmocka_unit_test(test_json_only_keys),
        cmocka_unit_test(test_json_dump),
        cmocka_unit_test(test_fs_mkdirs),
        cmocka_unit_test(test_fs_write_atomic),
        cmocka_unit_test(test_fs_read_file_cap),
        cmocka_unit_test(test_fs_safe_filename),
        cmocka_unit_test(test_fs_basename),
        cmocka_unit_test(test_fs_path_within_roots),
        cmocka_unit_test(test_metrics_counter),
        cmocka_unit_test(test_metrics_interleaved_families),
        cmocka_unit_test(test_metrics_histogram),
        cmocka_unit_test(test_metrics_gauge_and_overflow),
        cmocka_unit_test(test_time_rfc3339),
        cmocka_unit_test(test_time_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
