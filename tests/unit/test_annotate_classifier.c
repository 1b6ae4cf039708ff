/* test_annotate_classifier.c -- unit tests for annotate/classifier.h, the learning code
 * of the built-in image classifier: features (deterministic, bounded, telling apart
 * what differs, decoded from JPEG or refusing bad bytes), softmax regression on
 * separable and on noisy data, temperature scaling (confidence close to accuracy on
 * held-out rows), and the model's byte form (round trip, corruption refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "annotate/classifier.h"
#include "annotate/prelabel.h"
#include "unit_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIDE 28

/* Stripes across or down with a random period / phase, plus noise. */
static void stripes(unsigned char *px, int vertical, unsigned *seed)
{
    int period = 4 + (int)(rand_r(seed) % 5), phase = (int)(rand_r(seed) % 8);
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            int on = ((vertical ? x : y) + phase) % period < period / 2;
            px[y * SIDE + x] = (unsigned char)((on ? 200 : 50) + (int)(rand_r(seed) % 41) - 20);
        }
}

static void test_features(void **state)
{
    (void)state;
    unsigned seed = 1;
    unsigned char a[SIDE * SIDE], b[SIDE * SIDE];
    stripes(a, 0, &seed);
    stripes(b, 1, &seed);
    float *fa = malloc(TLY_CLS_DIM * sizeof *fa), *fa2 = malloc(TLY_CLS_DIM * sizeof *fa2),
          *fb = malloc(TLY_CLS_DIM * sizeof *fb);
    tly_cls_features_gray(a, SIDE, SIDE, fa);
    tly_cls_features_gray(a, SIDE, SIDE, fa2);
    tly_cls_features_gray(b, SIDE, SIDE, fb);
    assert_memory_equal(fa, fa2, TLY_CLS_DIM * sizeof *fa);   /* deterministic */
    double diff = 0;
    for (int j = 0; j < TLY_CLS_DIM; j++) {
        assert_true(isfinite(fa[j]) && fa[j] >= 0.0f && fa[j] <= 1.0f);   /* pixels and normalised HOG */
        diff += fabs(fa[j] - fb[j]);
    }
    assert_true(diff > 10);   /* horizontal and vertical stripes look different */
    /* Any size goes through the same resampling; a flat image has no gradients. */
    unsigned char flat[7 * 5];
    memset(flat, 128, sizeof flat);
    tly_cls_features_gray(flat, 7, 5, fb);
    for (int j = 0; j < TLY_CLS_PIXELS; j++)
        assert_float_equal(fb[j], 128.0 / 255.0, 1e-4);
    for (int j = TLY_CLS_PIXELS; j < TLY_CLS_DIM; j++)
        assert_float_equal(fb[j], 0, 1e-6);

    /* JPEG: a real photo decodes; garbage is refused as unprocessable. */
    char path[4096];
    snprintf(path, sizeof path, "%s/photo.jpg", TALLY_TEST_DATA);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static unsigned char jpeg[4 << 20];
    size_t len = fread(jpeg, 1, sizeof jpeg, f);
    fclose(f);
    assert_true(len > 100);
    tly_error err;
    assert_int_equal(tly_cls_features_jpeg(jpeg, len, fa, &err), 0);
    double sum = 0;
    for (int j = 0; j < TLY_CLS_DIM; j++)
        sum += fa[j];
    assert_true(sum > 0 && isfinite(sum));
    assert_int_equal(tly_cls_features_jpeg("not a jpeg at all", 17, fa, &err), -1);
    assert_int_equal(err.status, TLY_E_UNPROCESSABLE);
    /* A truncated JPEG decodes what it has (libjpeg pads it with grey), like browsers show it. */
    assert_int_equal(tly_cls_features_jpeg(jpeg, len / 3, fa, &err), 0);
    free(fa);
    free(fa2);
    free(fb);
}

/* Rows from k Gaussian blobs in dim dimensions; with noise_rate, that share of labels
 * replaced by a random class (what a sloppy crowd does). */
static void blobs(float *x, int *y, size_t n, int dim, int k, double spread, double noise_rate, unsigned *seed)
{
    for (size_t i = 0; i < n; i++) {
        int c = (int)(i % (size_t)k);
        for (int j = 0; j < dim; j++) {
            double u1 = (rand_r(seed) + 1.0) / (RAND_MAX + 2.0), u2 = (rand_r(seed) + 1.0) / (RAND_MAX + 2.0);
            double gauss = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
            x[i * (size_t)dim + (size_t)j] = (float)((j % k == c ? 1.0 : 0.0) + spread * gauss);
        }
        y[i] = c;
        if (rand_r(seed) / (RAND_MAX + 1.0) < noise_rate)
            y[i] = (int)(rand_r(seed) % (unsigned)k);
    }
}

static double accuracy(const tly_cls_model *m, const float *x, const int *y, size_t n, double *mean_conf)
{
    double p[16];
    size_t right = 0;
    double conf = 0;
    for (size_t i = 0; i < n; i++) {
        double score;
        int best = tly_cls_classify(m, x + i * (size_t)m->dim, p, &score);
        double total = 0;
        for (int c = 0; c < m->k; c++) {
            total += p[c];
            assert_true(p[c] <= p[best]);
        }
        assert_float_equal(total, 1.0, 1e-9);
        assert_true(score > 0 && score < 1);
        right += best == y[i];
        conf += score;
    }
    if (mean_conf)
        *mean_conf = conf / (double)n;
    return (double)right / (double)n;
}

static void test_train_separable(void **state)
{
    (void)state;
    enum { N = 600, D = 20, K = 3 };
    float *x = malloc(N * D * sizeof *x);
    int *y = malloc(N * sizeof *y);
    unsigned seed = 7;
    blobs(x, y, N, D, K, 0.3, 0, &seed);
    tly_cls_model m;
    tly_error err;
    assert_int_equal(tly_cls_train(x, y, 400, D, K, NULL, &m, &err), 0);
    assert_float_equal(m.temperature, 1.0, 0);
    assert_true(accuracy(&m, x + 400 * D, y + 400, 200, NULL) > 0.98);
    /* Same data, same seed: the same weights. */
    tly_cls_model again;
    assert_int_equal(tly_cls_train(x, y, 400, D, K, NULL, &again, &err), 0);
    assert_memory_equal(m.w, again.w, (size_t)K * (D + 1) * sizeof *m.w);
    tly_cls_model_clear(&again);
    tly_cls_model_clear(&m);
    /* Bad shapes are refused. */
    assert_int_equal(tly_cls_train(x, y, 400, D, 1, NULL, &m, &err), -1);
    assert_int_equal(tly_cls_train(x, y, 0, D, K, NULL, &m, &err), -1);
    free(x);
    free(y);
}

/* Overlapping classes and 20% noisy labels (which cap how often even a sure answer
 * agrees): after calibration on held-out rows, the mean score on new rows is close
 * to the accuracy actually reached, closer than the raw top probability. */
static void test_calibration(void **state)
{
    (void)state;
    enum { N = 6000, D = 30, K = 4 };
    float *x = malloc(N * D * sizeof *x);
    int *y = malloc(N * sizeof *y);
    unsigned seed = 11;
    blobs(x, y, N, D, K, 0.9, 0.2, &seed);
    tly_cls_model m;
    tly_error err;
    tly_cls_train_opts opts = {.l2 = 1e-6, .epochs = 40, .seed = 3};
    assert_int_equal(tly_cls_train(x, y, 1000, D, K, &opts, &m, &err), 0);
    double conf_raw, acc_raw = accuracy(&m, x + 3000 * D, y + 3000, 3000, &conf_raw);
    double held_acc = 0;
    double nll = tly_cls_calibrate(&m, x + 1000 * D, y + 1000, 2000, &held_acc);
    assert_true(isfinite(nll) && nll > 0);
    assert_true(held_acc > 0.4);
    double conf, acc = accuracy(&m, x + 3000 * D, y + 3000, 3000, &conf);
    assert_float_equal(acc, acc_raw, 1e-12);   /* a temperature never changes the argmax */
    double hconf, hacc = accuracy(&m, x + 1000 * D, y + 1000, 2000, &hconf);
    print_message("raw: acc %.3f conf %.3f; calibrated (T %.2f): conf %.3f acc %.3f held %.3f/%.3f/%.3f\n", acc_raw, conf_raw, m.temperature, conf, acc, held_acc, hacc, hconf);
    assert_true(fabs(conf - acc) < 0.04);
    assert_true(fabs(conf - acc) < fabs(conf_raw - acc_raw));
    /* No held-out rows: T stays 1. */
    assert_float_equal(tly_cls_calibrate(&m, x, y, 0, NULL), 0, 0);
    assert_float_equal(m.temperature, 1.0, 0);
    tly_cls_model_clear(&m);
    free(x);
    free(y);
}

static void test_bytes(void **state)
{
    (void)state;
    enum { N = 200, D = 12, K = 3 };
    float x[N * D];
    int y[N];
    unsigned seed = 5;
    blobs(x, y, N, D, K, 0.6, 0.1, &seed);
    tly_cls_model m, back;
    tly_error err;
    assert_int_equal(tly_cls_train(x, y, 150, D, K, NULL, &m, &err), 0);
    tly_cls_calibrate(&m, x + 150 * D, y + 150, 50, NULL);
    tly_buf b;
    tly_buf_init(&b, 1 << 20);
    assert_int_equal(tly_cls_serialize(&m, &b, &err), 0);
    assert_int_equal(tly_cls_deserialize(b.data, b.len, &back, &err), 0);
    assert_int_equal(back.dim, D);
    assert_int_equal(back.k, K);
    assert_float_equal(back.temperature, m.temperature, 0);
    double p1[K], p2[K];
    tly_cls_predict(&m, x, p1);
    tly_cls_predict(&back, x, p2);
    assert_memory_equal(p1, p2, sizeof p1);
    tly_cls_model_clear(&back);
    /* Truncated, wrong size, bad magic: refused. */
    assert_int_equal(tly_cls_deserialize(b.data, 10, &back, &err), -1);
    assert_int_equal(tly_cls_deserialize(b.data, b.len - 4, &back, &err), -1);
    b.data[0] ^= 0x55;
    assert_int_equal(tly_cls_deserialize(b.data, b.len, &back, &err), -1);
    assert_string_equal(err.code, "corrupt_model");
    tly_buf_free(&b);
    /* A tiny cap: serialising reports it instead of writing half a model. */
    tly_buf_init(&b, 16);
    assert_int_equal(tly_cls_serialize(&m, &b, &err), -1);
    tly_buf_free(&b);
    tly_cls_model_clear(&m);
}

/* ---- tly_prelabel_threshold: the auto-accept threshold for a target accuracy ---------- */

static double unit_draw(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

/* n pairs with scores uniform in [lo, hi); the model is right with probability equal
 * to its score (calibrated), the crowd with probability crowd; a pair agrees when both
 * are right (wrong answers are taken to differ). */
static void make_pairs(double *score, unsigned char *right, size_t n, double lo, double hi, double crowd,
                       uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        score[i] = lo + (hi - lo) * unit_draw(&seed);
        int model_right = unit_draw(&seed) < score[i];
        int crowd_right = unit_draw(&seed) < crowd;
        right[i] = (unsigned char)(model_right && crowd_right);
    }
}

static void test_threshold_needs_evidence(void **state)
{
    (void)state;
    double score[50];
    unsigned char right[50];
    for (int i = 0; i < 50; i++) {
        score[i] = 0.99;
        right[i] = 1;
    }
    /* Fewer pairs than min_calibration: never. */
    assert_true(tly_prelabel_threshold(score, right, 50, 0.95, 100) > 1);
    assert_true(tly_prelabel_threshold(score, right, 0, 0.95, 0) > 1);
    /* 50 of 50 agreeing pairs are not evidence for 0.95 (their one-sided 99% lower
     * bound is 0.90), but are for 0.85. */
    assert_true(tly_prelabel_threshold(score, right, 50, 0.95, 50) > 1);
    assert_true(fabs(tly_prelabel_threshold(score, right, 50, 0.85, 50) - 0.99) < 1e-12);
}

/* A lucky streak at the top does not make a threshold: the bug was a young model
 * whose top 55 pairs all agreed auto-accepting thousands of items 94% right. */
static void test_threshold_streak(void **state)
{
    (void)state;
    enum { N = 120 };
    double score[N];
    unsigned char right[N];
    uint64_t seed = 7;
    for (int i = 0; i < N; i++) {
        score[i] = i < 55 ? 0.9 + 0.09 * unit_draw(&seed) : 0.3 + 0.5 * unit_draw(&seed);
        right[i] = i < 55 ? 1 : unit_draw(&seed) < 0.7;
    }
    assert_true(tly_prelabel_threshold(score, right, N, 0.95, 100) > 1);
}

/* A calibrated model and a crowd 95% right: agreement understates the model by the
 * crowd's errors, and the threshold lands where the model itself reaches 0.95,
 * not above 0.99 as the plain agreement rule would put it. */
static void test_threshold_crowd_correction(void **state)
{
    (void)state;
    enum { N = 4000 };
    double *score = malloc(N * sizeof *score);
    unsigned char *right = malloc(N);
    assert_non_null(score);
    assert_non_null(right);
    make_pairs(score, right, N, 0.5, 1.0, 0.95, 42);
    double t = tly_prelabel_threshold(score, right, N, 0.95, 100);
    assert_true(t >= 0.92);
    assert_true(t <= 0.975);
    /* A perfect crowd: the same threshold region without any correction. */
    make_pairs(score, right, N, 0.5, 1.0, 1.0, 42);
    double perfect = tly_prelabel_threshold(score, right, N, 0.95, 100);
    assert_true(perfect >= 0.92);
    assert_true(perfect <= 0.975);
    free(score);
    free(right);
}

/* The crowd is never taken to be less accurate than the target: low agreement on
 * pairs the model calls sure is the model's fault (a young model), not the crowd's.
 * With the floor at 0.93, as before, 0.91 agreement passed (the model taken to be
 * 98% right, the cautious bound 0.956); floored at the target 0.95 it does not. */
static void test_threshold_crowd_floor(void **state)
{
    (void)state;
    enum { N = 1000 };
    double score[N];
    unsigned char right[N];
    uint64_t seed = 3;
    for (int i = 0; i < N; i++) {
        score[i] = 0.955 + 0.04 * unit_draw(&seed);
        right[i] = i % 100 < 91;
    }
    assert_true(tly_prelabel_threshold(score, right, N, 0.95, 100) > 1);
    /* At 0.93 agreement the model is taken to be ~98% right (0.93 / 0.95), and 1,000
     * pairs are enough to say so: accepted. */
    for (int i = 0; i < N; i++)
        right[i] = i % 100 < 93;
    assert_true(tly_prelabel_threshold(score, right, N, 0.95, 100) < 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features),
        cmocka_unit_test(test_train_separable),
        cmocka_unit_test(test_calibration),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_threshold_needs_evidence),
        cmocka_unit_test(test_threshold_streak),
        cmocka_unit_test(test_threshold_crowd_correction),
        cmocka_unit_test(test_threshold_crowd_floor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
