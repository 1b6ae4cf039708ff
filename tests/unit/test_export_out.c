/* test_export_out.c -- the dataset output layer (export/out.c): the fast number
 * printer agrees with printf("%.10g") (a bug once printed 4.166667 for
 * 4.1666666667), the JSON serialiser gives jansson's own compact text, files are
 * hashed into the manifest, also through the writer thread and scratch sections. */
#include "core/hash.h"
#include "export/out.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void test_numbers_match_printf(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double mag = pow(10, (double)(x % 14) - 4);         /* 1e-4 .. 1e9 */
        double v = (double)(x >> 11) / 9007199254740992.0 * mag;
        if (i % 3 == 0)
            v = round(v * 100) / 100;                        /* pixel-like values */
        if (i % 5 == 0)
            v = -v;
        char fast[40], ref[40];
        tly_export_num(v, fast, sizeof fast);
        snprintf(ref, sizeof ref, "%.10g", v);
        if (strtod(fast, NULL) != strtod(ref, NULL))
            fail_msg("%.17g: %s, printf %s", v, fast, ref);
    }
    char out[40];
    tly_export_num(100.0 * 20 / 480, out, sizeof out);
    assert_string_equal(out, "4.166666667");
    tly_export_num(720.25, out, sizeof out);
    assert_string_equal(out, "720.25");
    tly_export_num(-0.0, out, sizeof out);
    assert_string_equal(out, "0");
    tly_export_num(1280, out, sizeof out);
    assert_string_equal(out, "1280");
}

/* An output under a fresh temp dir (mkdtemp template in dir): DIR/data, DIR/manifest.jsonl. */
/* The manifest's first line carries the SHA-256 of the len bytes at data. */
static void assert_manifest_names(const char *manifest, const void *data, size_t len)
{
    char hex[65], line[512] = "";
    tly_sha256_hex(data, len, hex);
    FILE *fp = fopen(manifest, "r");
    assert_non_null(fp);
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    assert_non_null(strstr(line, hex));
}

static void remove_tree(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static tly_export_out *new_out(char *dir, char root[64], char manifest[64])
{
    assert_non_null(mkdtemp(dir));
    snprintf(root, 64, "%s/data", dir);
    snprintf(manifest, 64, "%s/manifest.jsonl", dir);
    tly_error err;
    tly_export_out *out = tly_export_out_new(root, manifest, &err);
    assert_non_null(out);
    return out;
}

static void test_json_is_janssons_text(void **state)
{
    (void)state;
    char dir[] = "/tmp/tally-export-out-XXXXXX", root[64], manifest[64];
    tly_error err;
    tly_export_out *out = new_out(dir, root, manifest);
    tly_export_file *f = tly_export_open(out, "a/b.json", &err);
    assert_non_null(f);
    json_t *v = json_loads("{\"s\":\"a\\\"b\\\\c\\n\\u0001é\",\"i\":-42,\"r\":3.0,\"x\":0.1,\"t\":true,\"n\":null,"
                           "\"a\":[1,2.5,{\"k\":[]}],\"o\":{}}",
                           0, NULL);
    assert_non_null(v);
    assert_int_equal(tly_export_json(f, v, &err), 0);
    assert_int_equal(tly_export_close(f, &err), 0);
    char sha[65];
    int64_t files = 0, bytes = 0;
    assert_int_equal(tly_export_out_finish(out, sha, &files, &bytes, &err), 0);
    assert_int_equal(files, 1);
    char *want = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(10));
    char path[96];
    snprintf(path, sizeof path, "%s/a/b.json", root);
    FILE *fp = fopen(path, "r");
    char got[512] = "";
    size_t n = fread(got, 1, sizeof got - 1, fp);
    fclose(fp);
    got[n] = 0;
    assert_string_equal(got, want);
    assert_int_equal(bytes, (int64_t)strlen(want));
    /* The manifest line has the file's hash. */
    assert_manifest_names(manifest, want, strlen(want));
    free(want);
    json_decref(v);
    tly_export_out_free(out);
    remove_tree(dir);
}

/* Files larger than a buffer go through the writer thread (double buffering),
 * pieces larger than half a buffer straight through, and a scratch section is
 * appended at the end: the bytes and the manifest's hash must still be exactly what
 * was written, in order. 5 MB of pseudo-random pieces of every size. */
static void test_large_files_and_scratch(void **state)
{
    (void)state;
    char dir[] = "/tmp/tally-export-out-XXXXXX", root[64], manifest[64];
    tly_error err;
    tly_export_out *out = new_out(dir, root, manifest);
    tly_export_file *f = tly_export_open(out, "big.bin", &err), *scratch = tly_export_scratch(out, &err);
    assert_non_null(f);
    assert_non_null(scratch);
    size_t cap = 12u << 20, main_len = 0, scratch_len = 0;
    unsigned char *want = malloc(cap), *side = malloc(cap), *piece = malloc(400000);
    assert_non_null(want);
    assert_non_null(side);
    assert_non_null(piece);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    while (main_len < (5u << 20)) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t len = x % 7 == 0 ? 131073 + x % 200000 : x % 300;   /* now and then larger than half a buffer */
        for (size_t i = 0; i < len; i++)
            piece[i] = (unsigned char)(x >> (i % 56));
        if (x % 3 == 0) {
            assert_int_equal(tly_export_write(scratch, piece, len, &err), 0);
            memcpy(side + scratch_len, piece, len);
            scratch_len += len;
        } else {
            assert_int_equal(tly_export_write(f, piece, len, &err), 0);
            memcpy(want + main_len, piece, len);
            main_len += len;
        }
    }
    assert_int_equal(tly_export_append_scratch(f, scratch, &err), 0);
    memcpy(want + main_len, side, scratch_len);
    main_len += scratch_len;
    assert_int_equal(tly_export_write(f, "end", 3, &err), 0);
    memcpy(want + main_len, "end", 3);
    main_len += 3;
    assert_int_equal(tly_export_close(scratch, &err), 0);
    assert_int_equal(tly_export_close(f, &err), 0);
    char sha[65];
    int64_t files = 0, bytes = 0;
    assert_int_equal(tly_export_out_finish(out, sha, &files, &bytes, &err), 0);
    assert_int_equal(files, 1);   /* the scratch file is not part of the dataset */
    assert_int_equal(bytes, (int64_t)main_len);
    char path[96];
    snprintf(path, sizeof path, "%s/big.bin", root);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    unsigned char *got = malloc(main_len + 1);
    assert_non_null(got);
    assert_int_equal(fread(got, 1, main_len + 1, fp), main_len);
    fclose(fp);
    assert_memory_equal(got, want, main_len);
    assert_manifest_names(manifest, want, main_len);
    free(want);
    free(side);
    free(piece);
    free(got);
    tly_export_out_free(out);
    remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_match_printf),
        cmocka_unit_test(test_json_is_janssons_text),
        cmocka_unit_test(test_large_files_and_scratch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
