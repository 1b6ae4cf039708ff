/* test_export_out.c -- the dataset output layer (export/out.c): the fast number
 * printer agrees with printf("%.10g") (a bug once printed 4.166667 for
 * 4.1666666667), the JSON serialiser gives jansson's own compact text, files are
 * hashed into the manifest. */
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

static void test_json_is_janssons_text(void **state)
{
    (void)state;
    char dir[] = "/tmp/tally-export-out-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char root[64], manifest[64];
    snprintf(root, sizeof root, "%s/data", dir);
    snprintf(manifest, sizeof manifest, "%s/manifest.jsonl", dir);
    tly_error err;
    tly_export_out *out = tly_export_out_new(root, manifest, &err);
    assert_non_null(out);
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
    char hex[65];
    tly_sha256_hex(want, strlen(want), hex);
    fp = fopen(manifest, "r");
    char line[512] = "";
    assert_non_null(fgets(line, sizeof line, fp));
    fclose(fp);
    assert_non_null(strstr(line, hex));
    free(want);
    json_decref(v);
    tly_export_out_free(out);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_match_printf),
        cmocka_unit_test(test_json_is_janssons_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
