/* test_export_jsonview.c -- the exports' read-only JSON view (export/jsonview.c).
 *
 * The view stands in for jansson on stored answers, so the tests hold it to jansson:
 * it must accept exactly the texts json_loads(JSON_DECODE_ANY) accepts (hand-picked
 * edge cases, then thousands of generated and mutated texts), and what it reads out
 * -- types, decoded strings, the last of duplicate keys, every number's double to
 * the bit -- must rebuild a value json_equal to jansson's own parse.
 */
#include "export/jsonview.h"

#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- helpers ------------------------------------------------------------------------------ */

/* The view rebuilt as a jansson value (NULL for TLY_JV_NONE), from the view's
 * accessors only. */
static json_t *rebuild(tly_jv v)
{
    switch (v.type) {
    case TLY_JV_NULL: return json_null();
    case TLY_JV_TRUE: return json_true();
    case TLY_JV_FALSE: return json_false();
    case TLY_JV_INTEGER: return json_integer(tly_jv_integer(v));
    case TLY_JV_REAL: return json_real(tly_jv_number(v));
    case TLY_JV_STRING: {
        long n = tly_jv_string(v, NULL, 0);
        char *buf = malloc((size_t)n + 1);
        assert_int_equal(tly_jv_string(v, buf, (size_t)n + 1), n);
        json_t *s = json_stringn(buf, (size_t)n);
        free(buf);
        return s;
    }
    case TLY_JV_ARRAY: {
        json_t *a = json_array();
        tly_jv e;
        for (tly_jv_iter it = tly_jv_iter_of(v); tly_jv_next(&it, &e);)
            json_array_append_new(a, rebuild(e));
        assert_int_equal(json_array_size(a), tly_jv_size(v));
        return a;
    }
    case TLY_JV_OBJECT: {
        json_t *o = json_object();
        tly_jv k, e;
        for (tly_jv_iter it = tly_jv_iter_of(v); tly_jv_next_member(&it, &k, &e);) {
            char key[512];
            long n = tly_jv_string(k, key, sizeof key);
            assert_true(n >= 0 && n < (long)sizeof key);
            json_object_set_new(o, key, rebuild(e));
            /* tly_jv_get finds the member json_object_get finds: the last of that name. */
            json_t *mine = rebuild(tly_jv_get(v, key));
            assert_non_null(mine);
            json_decref(mine);
        }
        return o;
    }
    default: return NULL;
    }
}

/* Parses text both ways; asserts that they agree. Returns 1 if accepted. */
static int agree(const char *text)
{
    json_error_t jerr;
    json_t *ref = json_loads(text, JSON_DECODE_ANY, &jerr);
    tly_jv root;
    const char *why = NULL;
    int ok = tly_jv_parse(text, strlen(text), &root, &why) == 0;
    if (ok != (ref != NULL))
        fail_msg("'%s': jansson %s (%s), view %s (%s)", text, ref ? "accepts" : "refuses", ref ? "" : jerr.text,
                 ok ? "accepts" : "refuses", why ? why : "");
    /* With a doc (recorded container ends), the same verdict and the same values. */
    static tly_jv_doc doc;
    tly_jv doc_root;
    if ((tly_jv_parse_doc(&doc, text, strlen(text), &doc_root, NULL) == 0) != ok)
        fail_msg("'%s': parse and parse_doc disagree", text);
    for (int pass = 0; ok && pass < 2; pass++) {
        json_t *mine = rebuild(pass ? doc_root : root);
        if (!json_equal(mine, ref)) {
            char *a = json_dumps(ref, JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
            char *b = json_dumps(mine, JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
            fail_msg("'%s': jansson reads %s, the view %s (%s)", text, a, b, pass ? "with a doc" : "scanning");
        }
        json_decref(mine);
    }
    json_decref(ref);
    return ok;
}

/* ---- hand-picked cases ------------------------------------------------------------------ */

static void test_edge_cases(void **state)
{
    (void)state;
    static const char *const valid[] = {
        "{}", "[]", " \t\r\n{ } \n", "0", "-0", "-0.0", "1.5e3", "-1E-3", "1e+2", "3.0", "12345678901234567890e-5",
        "9223372036854775807", "-9223372036854775808", "1e308", "1e-400", "0.1", "2.2250738585072014e-308",
        "123456789012345678901234567890.5", "\"\"", "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", "\"\\u00e9\\u20AC\"",
        "\"\\ud83d\\ude00\"", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", "true", "false", "null",
        "[1,[2,[3,[4,[]]]],{\"a\":[{}]}]", "{\"a\":1,\"a\":2,\"b\":{\"a\":3}}", "{\"\\u0061\":1,\"a\":2}",
        "{\"objects\":[{\"label\":\"car\",\"x\":0.5,\"y\":0.25,\"w\":40.0,\"h\":30.0}]}",
        "[-1.25e-7, 1e-0400, 1E+0308]", "[1e-99999]", "0.000000000000000000000000000001",
    };
    static const char *const invalid[] = {
        "", " ", "{", "}", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}", "{\"a\" 1}", "[1 2]",
        "01", "-", "-01", "1.", ".5", "1e", "1e+", "+1", "0x10", "NaN", "Infinity", "tru", "truex", "nul",
        "[true false]", "\"abc", "\"a\nb\"", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\u0000\"",
        "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud800x\"", "\"\xc3\"", "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xff\"", "9223372036854775808", "-9223372036854775809",
        "1e309", "-1e400", "[1] [2]", "{} x", "{\"a\\u0000\":1}", "\xef\xbb\xbf{}", "[\"\x01\"]",
    };
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++)
        if (!agree(valid[i]))
            fail_msg("refused '%s'", valid[i]);
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++)
        if (agree(invalid[i]))
            fail_msg("accepted '%s'", invalid[i]);
    /* More containers than a doc records: the rest are found by scanning. */
    char many[8192] = "[";
    for (int i = 0; i < 300; i++)
        strcat(many, i ? ",{\"a\":[1,{}]}" : "{\"a\":[1,{}]}");
    strcat(many, "]");
    assert_true(agree(many));
    /* A text ends at its length, not at a NUL: "[1]" of "[1]]" is valid alone. */
    tly_jv root;
    assert_int_equal(tly_jv_parse("[1]]", 3, &root, NULL), 0);
    assert_int_equal(root.type, TLY_JV_ARRAY);
    assert_int_equal(tly_jv_parse("[1]]", 4, &root, NULL), -1);
    /* A number that ends the text is read within it (a heap copy without a NUL, so
     * that ASan sees any read past the end). */
    char *digits = malloc(3);
    memcpy(digits, "-12", 3);
    assert_int_equal(tly_jv_parse(digits, 3, &root, NULL), 0);
    assert_int_equal(root.type, TLY_JV_INTEGER);
    assert_int_equal(root.len, 3);
    assert_int_equal(tly_jv_integer(root), -12);
    assert_true(tly_jv_number(root) == -12.0);
    memcpy(digits, "1.5", 3);
    assert_int_equal(tly_jv_parse(digits, 3, &root, NULL), 0);
    assert_true(tly_jv_number(root) == 1.5);
    free(digits);
}

static void test_depth_limit(void **state)
{
    (void)state;
    /* jansson counts every value: 2048 levels of arrays are fine when the innermost is
     * empty, and so are 2047 around a scalar; one more is refused. */
    for (int depth = 2046; depth <= 2050; depth++)
        for (int scalar = 0; scalar < 2; scalar++) {
            size_t n = (size_t)depth * 2 + 2;
            char *text = malloc(n);
            size_t k = 0;
            for (int i = 0; i < depth; i++)
                text[k++] = '[';
            if (scalar)
                text[k++] = '7';
            for (int i = 0; i < depth; i++)
                text[k++] = ']';
            text[k] = 0;
            agree(text);
            free(text);
        }
}

static void test_reading(void **state)
{
    (void)state;
    const char *text = "{\"objects\":[{\"label\":\"p\\u00e9\",\"x\":-1.5e2,\"y\":7,\"w\":\"9\"}, null, [1, 2]],"
                       "\"dup\":1, \"dup\":[3], \"n\":-0, \"r\":-0.0}";
    tly_jv root, shape;
    assert_int_equal(tly_jv_parse(text, strlen(text), &root, NULL), 0);
    tly_jv objects = tly_jv_get(root, "objects");
    assert_int_equal(objects.type, TLY_JV_ARRAY);
    assert_int_equal(tly_jv_size(objects), 3);
    shape = tly_jv_at(objects, 0);
    assert_true(tly_jv_string_eq(tly_jv_get(shape, "label"), "p\xc3\xa9"));
    assert_false(tly_jv_string_eq(tly_jv_get(shape, "label"), "p"));
    assert_false(tly_jv_string_is_plain(tly_jv_get(shape, "label")));
    assert_true(tly_jv_string_cmp(tly_jv_get(shape, "label"), "p") > 0);
    assert_true(tly_jv_string_cmp(tly_jv_get(shape, "label"), "q") < 0);
    assert_int_equal(tly_jv_string_cmp(tly_jv_get(shape, "label"), "p\xc3\xa9"), 0);
    assert_true(tly_jv_number(tly_jv_get(shape, "x")) == -150.0);
    assert_true(tly_jv_number(tly_jv_get(shape, "y")) == 7.0);
    assert_int_equal(tly_jv_integer(tly_jv_get(shape, "y")), 7);
    assert_true(tly_jv_number(tly_jv_get(shape, "w")) == 0.0);   /* a string is not a number */
    assert_int_equal(tly_jv_get(shape, "h").type, TLY_JV_NONE);
    assert_true(tly_jv_number(tly_jv_get(shape, "h")) == 0.0);
    assert_int_equal(tly_jv_at(objects, 1).type, TLY_JV_NULL);
    assert_int_equal(tly_jv_at(objects, 3).type, TLY_JV_NONE);
    assert_int_equal(tly_jv_get(root, "dup").type, TLY_JV_ARRAY);   /* the last one */
    assert_false(signbit(tly_jv_number(tly_jv_get(root, "n"))));   /* an integer: 0 */
    assert_true(signbit(tly_jv_number(tly_jv_get(root, "r"))));    /* a real: -0.0, as strtod */
    /* Iterating the wrong kind yields nothing (json_array_foreach on an object). */
    tly_jv e, k;
    tly_jv_iter it = tly_jv_iter_of(root);
    assert_int_equal(tly_jv_next(&it, &e), 0);
    it = tly_jv_iter_of(objects);
    assert_int_equal(tly_jv_next_member(&it, &k, &e), 0);
    it = tly_jv_iter_of(tly_jv_get(root, "n"));
    assert_int_equal(tly_jv_next(&it, &e), 0);
    /* Accessors on an absent value behave like jansson's on NULL. */
    tly_jv none = tly_jv_get(root, "missing");
    assert_int_equal(tly_jv_get(none, "x").type, TLY_JV_NONE);
    assert_int_equal(tly_jv_size(none), 0);
    assert_int_equal(tly_jv_string(none, NULL, 0), -1);
    char small[4];
    assert_int_equal(tly_jv_string(tly_jv_get(shape, "label"), small, sizeof small), 3);
    assert_string_equal(small, "p\xc3\xa9");
    assert_int_equal(tly_jv_string(tly_jv_get(shape, "label"), small, 2), 3);
    assert_string_equal(small, "p");
}

/* ---- numbers: the fast path is strtod to the bit ------------------------------------------ */

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

static void test_numbers_are_strtods(void **state)
{
    (void)state;
    char text[64];
    for (int i = 0; i < 300000; i++) {
        int int_digits = 1 + (int)(next_rand() % 18), frac_digits = (int)(next_rand() % 12);
        size_t n = 0;
        if (next_rand() % 4 == 0)
            text[n++] = '-';
        for (int d = 0; d < int_digits; d++)
            text[n++] = (char)('0' + (d == 0 && int_digits > 1 ? 1 + next_rand() % 9 : next_rand() % 10));
        if (frac_digits || next_rand() % 2) {
            text[n++] = '.';
            for (int d = 0; d < (frac_digits ? frac_digits : 1); d++)
                text[n++] = (char)('0' + next_rand() % 10);
        }
        if (next_rand() % 8 == 0)
            n += (size_t)snprintf(text + n, sizeof text - n, "e%d", (int)(next_rand() % 40) - 20);
        text[n] = 0;
        tly_jv v;
        if (tly_jv_parse(text, n, &v, NULL) < 0)
            fail_msg("refused %s", text);
        double mine = tly_jv_number(v), ref = strtod(text, NULL);
        if (v.type == TLY_JV_INTEGER)
            ref = (double)strtoll(text, NULL, 10);
        if (memcmp(&mine, &ref, sizeof mine) != 0)
            fail_msg("%s: view %.17g, reference %.17g", text, mine, ref);
    }
}

/* ---- generated and mutated texts --------------------------------------------------------- */

static void gen_value(char *buf, size_t cap, size_t *n, int depth);

static void put(char *buf, size_t cap, size_t *n, const char *s)
{
    size_t len = strlen(s);
    if (*n + len < cap) {
        memcpy(buf + *n, s, len);
        *n += len;
        buf[*n] = 0;
    }
}

static void gen_ws(char *buf, size_t cap, size_t *n)
{
    static const char *const ws[] = {"", "", "", " ", "\n", "\t ", "\r\n"};
    put(buf, cap, n, ws[next_rand() % 7]);
}

static void gen_string(char *buf, size_t cap, size_t *n)
{
    static const char *const pieces[] = {"a", "car", "x", "y", "label", "\\\"", "\\\\", "\\/", "\\n", "\\t",
                                         "\\u0041", "\\u00e9", "\\uD83D\\uDE00", "\xc3\xa9", "\xe2\x82\xac", " ",
                                         "\\b", "\\f", "\\r", "\\u20ac", "\xf0\x9f\x98\x80"};
    put(buf, cap, n, "\"");
    int k = (int)(next_rand() % 4);
    for (int i = 0; i < k; i++)
        put(buf, cap, n, pieces[next_rand() % (sizeof pieces / sizeof *pieces)]);
    put(buf, cap, n, "\"");
}

static void gen_value(char *buf, size_t cap, size_t *n, int depth)
{
    char num[48];
    unsigned kind = (unsigned)(next_rand() % (depth > 4 ? 6 : 9));
    switch (kind) {
    case 0: put(buf, cap, n, next_rand() % 2 ? "true" : next_rand() % 2 ? "false" : "null"); break;
    case 1: snprintf(num, sizeof num, "%lld", (long long)(next_rand() % 200000) - 100000); put(buf, cap, n, num); break;
    case 2:
        snprintf(num, sizeof num, "%.*f", (int)(next_rand() % 7), ((double)(next_rand() % 2000000) - 1e6) / 64);
        put(buf, cap, n, num);
        break;
    case 3:
        snprintf(num, sizeof num, "%.6e", ((double)(next_rand() % 1000) - 500) * 1.37);
        put(buf, cap, n, num);
        break;
    case 4:
    case 5: gen_string(buf, cap, n); break;
    case 6:
    case 7: {
        put(buf, cap, n, "[");
        int k = (int)(next_rand() % 4);
        for (int i = 0; i < k; i++) {
            if (i)
                put(buf, cap, n, ",");
            gen_ws(buf, cap, n);
            gen_value(buf, cap, n, depth + 1);
            gen_ws(buf, cap, n);
        }
        put(buf, cap, n, "]");
        break;
    }
    default: {
        put(buf, cap, n, "{");
        int k = (int)(next_rand() % 4);
        for (int i = 0; i < k; i++) {
            if (i)
                put(buf, cap, n, ",");
            gen_ws(buf, cap, n);
            if (next_rand() % 3)
                put(buf, cap, n, next_rand() % 2 ? "\"x\"" : "\"label\"");   /* duplicates now and then */
            else
                gen_string(buf, cap, n);
            gen_ws(buf, cap, n);
            put(buf, cap, n, ":");
            gen_ws(buf, cap, n);
            gen_value(buf, cap, n, depth + 1);
        }
        put(buf, cap, n, "}");
    }
    }
}

static void test_generated_and_mutated(void **state)
{
    (void)state;
    static const char alphabet[] = "{}[],:\"\\u0123456789.eE+-tfnral \n\x01\xc3\xa9\xff";
    char buf[4096];
    int accepted = 0, refused = 0;
    for (int i = 0; i < 40000; i++) {
        size_t n = 0;
        buf[0] = 0;
        gen_ws(buf, sizeof buf, &n);
        gen_value(buf, sizeof buf, &n, 0);
        gen_ws(buf, sizeof buf, &n);
        if (i % 2 && n) {   /* mutate: replace, delete or insert a byte or two */
            for (int m = 0; m < 1 + (int)(next_rand() % 2); m++) {
                size_t at = next_rand() % n;
                char c = alphabet[next_rand() % (sizeof alphabet - 1)];
                switch (next_rand() % 3) {
                case 0: buf[at] = c; break;
                case 1: memmove(buf + at, buf + at + 1, n - at), n--; break;
                default:
                    if (n + 1 < sizeof buf) {
                        memmove(buf + at + 1, buf + at, n - at + 1);
                        buf[at] = c;
                        n++;
                    }
                }
                buf[n] = 0;
                if (!n)
                    break;
            }
        }
        if (agree(buf))
            accepted++;
        else
            refused++;
    }
    /* Both sides of the line were exercised. */
    assert_true(accepted > 10000);
    assert_true(refused > 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_reading),
        cmocka_unit_test(test_numbers_are_strtods),
        cmocka_unit_test(test_generated_and_mutated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
