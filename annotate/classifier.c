/* classifier.c -- see classifier.h: image features, softmax regression, temperature
 * scaling, and the model's byte form.
 *
 * Everything is bounded by the caller's sizes: features write exactly TLY_CLS_DIM
 * floats, training allocates the model plus one scratch row of k doubles per
 * mini-batch position, JPEG decoding keeps one scanline of the (DCT-scaled) image.
 */
#include "annotate/classifier.h"

#include <stdio.h>   /* before jpeglib.h, which uses FILE */

#include <jpeglib.h>
#include <math.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#define HOG_CELL 4
#define HOG_CELLS (TLY_CLS_SIDE / HOG_CELL)   /* 7 */
#define HOG_BINS 9
#define HOG_BLOCKS (HOG_CELLS - 1)            /* 6 */

/* ---- features ----------------------------------------------------------------------------- */

/* Area-average resampling of a w x h gray image to side x side, values in [0,1]. */
static void resample(const unsigned char *gray, int w, int h, float *out, int side)
{
    for (int oy = 0; oy < side; oy++) {
        double y0 = (double)oy * h / side, y1 = (double)(oy + 1) * h / side;
        for (int ox = 0; ox < side; ox++) {
            double x0 = (double)ox * w / side, x1 = (double)(ox + 1) * w / side;
            double sum = 0, area = 0;
            for (int y = (int)y0; y < h && y < y1; y++) {
                double wy = fmin(y + 1, y1) - fmax(y, y0);
                for (int x = (int)x0; x < w && x < x1; x++) {
                    double wx = fmin(x + 1, x1) - fmax(x, x0);
                    sum += wy * wx * gray[(size_t)y * (size_t)w + (size_t)x];
                    area += wy * wx;
                }
            }
            out[oy * side + ox] = area > 0 ? (float)(sum / area / 255.0) : 0.0f;
        }
    }
}

void tly_cls_features_gray(const unsigned char *gray, int w, int h, float *out)
{
    float img[TLY_CLS_SIDE * TLY_CLS_SIDE];
    const int S = TLY_CLS_SIDE;
    if (w < 1 || h < 1) {
        memset(out, 0, TLY_CLS_DIM * sizeof *out);
        return;
    }
    resample(gray, w, h, img, S);
    /* Pixels, 2 x 2 averaged. */
    for (int y = 0; y < S / 2; y++)
        for (int x = 0; x < S / 2; x++)
            out[y * (S / 2) + x] = 0.25f * (img[2 * y * S + 2 * x] + img[2 * y * S + 2 * x + 1] +
                                            img[(2 * y + 1) * S + 2 * x] + img[(2 * y + 1) * S + 2 * x + 1]);
    /* Cell histograms of gradient orientation. */
    float cells[HOG_CELLS][HOG_CELLS][HOG_BINS];
    memset(cells, 0, sizeof cells);
    for (int y = 0; y < S; y++) {
        for (int x = 0; x < S; x++) {
            float gx = img[y * S + (x + 1 < S ? x + 1 : x)] - img[y * S + (x > 0 ? x - 1 : x)];
            float gy = img[(y + 1 < S ? y + 1 : y) * S + x] - img[(y > 0 ? y - 1 : y) * S + x];
            float mag = sqrtf(gx * gx + gy * gy);
            if (mag <= 0)
                continue;
            double angle = atan2(gy, gx);   /* unsigned orientation: [0, pi) */
            if (angle < 0)
                angle += M_PI;
            double pos = angle / M_PI * HOG_BINS - 0.5;
            int b0 = (int)floor(pos);
            double frac = pos - b0;
            int lo = (b0 + HOG_BINS) % HOG_BINS, hi = (b0 + 1) % HOG_BINS;
            cells[y / HOG_CELL][x / HOG_CELL][lo] += (float)(mag * (1 - frac));
            cells[y / HOG_CELL][x / HOG_CELL][hi] += (float)(mag * frac);
        }
    }
    float *hog = out + TLY_CLS_PIXELS;
    for (int by = 0; by < HOG_BLOCKS; by++) {
        for (int bx = 0; bx < HOG_BLOCKS; bx++) {
            float *blk = hog + (by * HOG_BLOCKS + bx) * 4 * HOG_BINS;
            int k = 0;
            for (int cy = 0; cy < 2; cy++)
                for (int cx = 0; cx < 2; cx++)
                    for (int b = 0; b < HOG_BINS; b++)
                        blk[k++] = cells[by + cy][bx + cx][b];
            for (int pass = 0; pass < 2; pass++) {   /* L2, clip, L2 again */
                double ss = 1e-6;
                for (int i = 0; i < 4 * HOG_BINS; i++)
                    ss += (double)blk[i] * blk[i];
                float inv = (float)(1.0 / sqrt(ss));
                for (int i = 0; i < 4 * HOG_BINS; i++) {
                    blk[i] *= inv;
                    if (pass == 0 && blk[i] > 0.2f)
                        blk[i] = 0.2f;
                }
            }
        }
    }
}

struct jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

static void on_jpeg_error(j_common_ptr c)
{
    struct jpeg_err *e = (struct jpeg_err *)c->err;
    c->err->format_message(c, e->message);
    longjmp(e->jump, 1);
}

static void on_jpeg_message(j_common_ptr c, int level)
{
    (void)c;
    (void)level;   /* warnings (corrupt-but-decodable data) are not errors here */
}

int tly_cls_features_jpeg(const void *jpeg, size_t len, float *out, tly_error *err)
{
    struct jpeg_decompress_struct d;
    struct jpeg_err je;
    /* Owned here, freed on both paths; volatile because of the longjmp. */
    unsigned char *volatile gray = NULL;
    memset(&d, 0, sizeof d);
    d.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = on_jpeg_error;
    je.pub.emit_message = on_jpeg_message;
    je.message[0] = 0;
    if (setjmp(je.jump)) {
        jpeg_destroy_decompress(&d);
        free(gray);
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_image", "cannot decode the image: %s", je.message);
    }
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, (const unsigned char *)jpeg, (unsigned long)len);
    jpeg_read_header(&d, TRUE);
    d.out_color_space = JCS_GRAYSCALE;
    /* The DCT can scale by 1/2, 1/4, 1/8 for free: as small as keeps both sides >= 2 x SIDE. */
    unsigned shorter = d.image_width < d.image_height ? d.image_width : d.image_height;
    d.scale_num = 1;
    d.scale_denom = 1;
    while (d.scale_denom < 8 && shorter / (d.scale_denom * 2) >= 2 * TLY_CLS_SIDE)
        d.scale_denom *= 2;
    jpeg_start_decompress(&d);
    int w = (int)d.output_width, h = (int)d.output_height;
    if (w < 1 || h < 1 || d.output_components != 1 || (size_t)w * (size_t)h > 64u * 1024 * 1024) {
        snprintf(je.message, sizeof je.message, "unsupported size %dx%d", w, h);
        longjmp(je.jump, 1);
    }
    gray = malloc((size_t)w * (size_t)h);
    if (!gray) {
        snprintf(je.message, sizeof je.message, "out of memory");
        longjmp(je.jump, 1);
    }
    while (d.output_scanline < d.output_height) {
        JSAMPROW row = gray + (size_t)d.output_scanline * (size_t)w;
        jpeg_read_scanlines(&d, &row, 1);
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    tly_cls_features_gray(gray, w, h, out);
    free(gray);
    return 0;
}

/* ---- softmax regression ------------------------------------------------------------------- */

void tly_cls_model_clear(tly_cls_model *m)
{
    if (!m)
        return;
    free(m->mean);
    free(m->scale);
    free(m->w);
    memset(m, 0, sizeof *m);
}

/* A dot product in 8 independent partial sums: without -ffast-math the compiler
 * may not reorder a float sum, and one running sum cannot use the vector unit. */
static float dot(const float *a, const float *b, int n)
{
    float s[8] = {0};
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++)
            s[l] += a[j + l] * b[j + l];
    float acc = 0;
    for (; j < n; j++)
        acc += a[j] * b[j];
    for (int l = 0; l < 8; l++)
        acc += s[l];
    return acc;
}

/* Logits of one standardised row into z[k]. */
static void logits(const tly_cls_model *m, const float *xs, double *z)
{
    int d = m->dim;
    for (int c = 0; c < m->k; c++) {
        const float *wc = m->w + (size_t)c * (size_t)(d + 1);
        z[c] = wc[d] + dot(wc, xs, d);
    }
}

static void softmax(double *z, int k, double temperature)
{
    double mx = -INFINITY, sum = 0;
    for (int c = 0; c < k; c++) {
        z[c] /= temperature;
        if (z[c] > mx)
            mx = z[c];
    }
    for (int c = 0; c < k; c++)
        sum += (z[c] = exp(z[c] - mx));
    for (int c = 0; c < k; c++)
        z[c] /= sum;
}

static void standardise(const tly_cls_model *m, const float *x, float *xs)
{
    for (int j = 0; j < m->dim; j++)
        xs[j] = (x[j] - m->mean[j]) * m->scale[j];
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int tly_cls_train(const float *x, const int *y, size_t n, int dim, int k, const tly_cls_train_opts *opts,
                  tly_cls_model *m, tly_error *err)
{
    memset(m, 0, sizeof *m);
    if (n < 1 || dim < 1 || k < 2 || k > TLY_CLS_MAX_CLASSES)
        return tly_fail(err, TLY_E_INVALID, "invalid", "training needs rows, features and 2 to %d classes",
                        TLY_CLS_MAX_CLASSES);
    size_t wn = (size_t)k * (size_t)(dim + 1);
    m->dim = dim;
    m->k = k;
    m->temperature = 1.0;
    m->platt_a = 1.0;
    m->mean = calloc((size_t)dim, sizeof *m->mean);
    m->scale = calloc((size_t)dim, sizeof *m->scale);
    m->w = calloc(wn, sizeof *m->w);
    float *vel = calloc(wn, sizeof *vel), *grad = calloc(wn, sizeof *grad);
    float *xs = malloc((size_t)dim * sizeof *xs);
    double *z = malloc((size_t)k * sizeof *z);
    size_t *order = malloc(n * sizeof *order);
    double *var = calloc((size_t)dim, sizeof *var);
    int rc = -1;
    if (!m->mean || !m->scale || !m->w || !vel || !grad || !xs || !z || !order || !var) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    /* Standardisation from the training rows (constant features get scale 0). */
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < dim; j++)
            m->mean[j] += x[i * (size_t)dim + (size_t)j] / (float)n;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < dim; j++) {
            double dv = x[i * (size_t)dim + (size_t)j] - m->mean[j];
            var[j] += dv * dv / (double)n;
        }
    for (int j = 0; j < dim; j++)
        m->scale[j] = var[j] > 1e-10 ? (float)(1.0 / sqrt(var[j])) : 0.0f;

    int epochs = opts && opts->epochs > 0 ? opts->epochs : (int)fmin(30, fmax(8, 30000.0 / (double)n));
    double l2 = opts && opts->l2 > 0 ? opts->l2 : 0.2;
    uint64_t seed = opts && opts->seed ? opts->seed : 0x7a11c1a55ull;
    const size_t batch = 32;
    const double lr0 = 0.05, momentum = 0.9;
    size_t steps = ((n + batch - 1) / batch) * (size_t)epochs, step = 0;
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (int e = 0; e < epochs; e++) {
        for (size_t i = n; i > 1; i--) {   /* Fisher-Yates with the seeded generator */
            size_t j = (size_t)(splitmix(&seed) % i), t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
        for (size_t b0 = 0; b0 < n; b0 += batch, step++) {
            size_t b1 = b0 + batch < n ? b0 + batch : n;
            memset(grad, 0, wn * sizeof *grad);
            for (size_t bi = b0; bi < b1; bi++) {
                size_t row = order[bi];
                standardise(m, x + row * (size_t)dim, xs);
                logits(m, xs, z);
                softmax(z, k, 1.0);
                z[y[row]] -= 1.0;   /* d loss / d logit */
                for (int c = 0; c < k; c++) {
                    float g = (float)z[c];
                    if (g == 0)
                        continue;
                    float *gc = grad + (size_t)c * (size_t)(dim + 1);
                    for (int j = 0; j < dim; j++)
                        gc[j] += g * xs[j];
                    gc[dim] += g;
                }
            }
            /* Cosine-decayed learning rate; weight decay on weights, not biases. */
            double lr = lr0 * 0.5 * (1 + cos(M_PI * (double)step / (double)steps));
            float inv = 1.0f / (float)(b1 - b0);
            for (int c = 0; c < k; c++) {
                float *wc = m->w + (size_t)c * (size_t)(dim + 1), *vc = vel + (size_t)c * (size_t)(dim + 1);
                float *gc = grad + (size_t)c * (size_t)(dim + 1);
                for (int j = 0; j <= dim; j++) {
                    float g = gc[j] * inv + (j < dim ? (float)l2 * wc[j] : 0.0f);
                    vc[j] = (float)momentum * vc[j] - (float)lr * g;
                    wc[j] += vc[j];
                }
            }
        }
    }
    rc = 0;
out:
    free(vel);
    free(grad);
    free(xs);
    free(z);
    free(order);
    free(var);
    if (rc < 0)
        tly_cls_model_clear(m);
    return rc;
}

int tly_cls_classify(const tly_cls_model *m, const float *x, double *prob, double *score)
{
    tly_cls_predict(m, x, prob);
    int best = 0;
    for (int c = 1; c < m->k; c++)
        if (prob[c] > prob[best])
            best = c;
    double q = fmin(fmax(prob[best], 1e-9), 1 - 1e-9);
    *score = 1 / (1 + exp(-(m->platt_a * log(q / (1 - q)) + m->platt_b)));
    return best;
}

void tly_cls_predict(const tly_cls_model *m, const float *x, double *prob)
{
    float xs[TLY_CLS_DIM];
    float *heap = NULL, *row = xs;
    if (m->dim > TLY_CLS_DIM) {
        heap = malloc((size_t)m->dim * sizeof *heap);
        if (!heap) {
            for (int c = 0; c < m->k; c++)
                prob[c] = 1.0 / m->k;
            return;
        }
        row = heap;
    }
    standardise(m, x, row);
    logits(m, row, prob);
    softmax(prob, m->k, m->temperature > 0 ? m->temperature : 1.0);
    free(heap);
}

/* Mean log loss of "the top class is right" on the held-out logits z (n x k) at
 * temperature t, with the top class's probability as the forecast. This calibrates
 * the score routing uses (the top probability) directly; the NLL of the full
 * distribution would not, when label noise spreads mass over the other classes. */
static double nll_at(const double *z, const int *y, size_t n, int k, double t, double *p)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, z + i * (size_t)k, (size_t)k * sizeof *p);
        softmax(p, k, t);
        int best = 0;
        for (int c = 1; c < k; c++)
            if (p[c] > p[best])
                best = c;
        double q = fmin(fmax(p[best], 1e-12), 1 - 1e-12);
        sum -= best == y[i] ? log(q) : log(1 - q);
    }
    return n ? sum / (double)n : 0;
}

double tly_cls_calibrate(tly_cls_model *m, const float *x, const int *y, size_t n, double *accuracy)
{
    m->temperature = 1.0;
    m->platt_a = 1.0;
    m->platt_b = 0.0;
    if (accuracy)
        *accuracy = 0;
    if (n == 0)
        return 0;
    double *z = malloc(n * (size_t)m->k * sizeof *z), *p = malloc((size_t)m->k * sizeof *p);
    float *xs = malloc((size_t)m->dim * sizeof *xs);
    if (!z || !p || !xs) {
        free(z);
        free(p);
        free(xs);
        return INFINITY;
    }
    size_t right = 0;
    for (size_t i = 0; i < n; i++) {
        double *zi = z + i * (size_t)m->k;
        standardise(m, x + i * (size_t)m->dim, xs);
        logits(m, xs, zi);
        int best = 0;
        for (int c = 1; c < m->k; c++)
            if (zi[c] > zi[best])
                best = c;
        right += best == y[i];
    }
    /* Golden-section search on log T over [1/20, 20] (the loss is unimodal in T in practice). */
    double a = log(0.05), b = log(20.0), g = (sqrt(5.0) - 1) / 2;
    double c1 = b - g * (b - a), c2 = a + g * (b - a);
    double f1 = nll_at(z, y, n, m->k, exp(c1), p), f2 = nll_at(z, y, n, m->k, exp(c2), p);
    for (int it = 0; it < 40; it++) {
        if (f1 < f2) {
            b = c2;
            c2 = c1;
            f2 = f1;
            c1 = b - g * (b - a);
            f1 = nll_at(z, y, n, m->k, exp(c1), p);
        } else {
            a = c1;
            c1 = c2;
            f1 = f2;
            c2 = a + g * (b - a);
            f2 = nll_at(z, y, n, m->k, exp(c2), p);
        }
    }
    m->temperature = exp((a + b) / 2);
    double nll = nll_at(z, y, n, m->k, m->temperature, p);
    /* Then Platt scaling of the top probability: score = sigmoid(A logit(p) + B),
     * fitted by Newton's method (logistic regression of "right" on logit(p)), with a
     * weak prior towards the identity (A 1, B 0) so a perfect held-out set does not
     * send A to infinity. With its intercept, the fit makes the mean score equal the
     * held-out accuracy. */
    double *lg = malloc(n * sizeof *lg);
    unsigned char *ok = malloc(n);
    if (lg && ok) {
        for (size_t i = 0; i < n; i++) {
            memcpy(p, z + i * (size_t)m->k, (size_t)m->k * sizeof *p);
            softmax(p, m->k, m->temperature);
            int best = 0;
            for (int c = 1; c < m->k; c++)
                if (p[c] > p[best])
                    best = c;
            double q = fmin(fmax(p[best], 1e-9), 1 - 1e-9);
            lg[i] = log(q / (1 - q));
            ok[i] = best == y[i];
        }
        double A = 1, B = 0;
        const double prior = 1.0;
        for (int it = 0; it < 50; it++) {
            double gA = prior * (A - 1), gB = prior * B, hAA = prior, hAB = 0, hBB = prior;
            for (size_t i = 0; i < n; i++) {
                double s = 1 / (1 + exp(-(A * lg[i] + B))), r = s - ok[i], w = s * (1 - s);
                gA += r * lg[i];
                gB += r;
                hAA += w * lg[i] * lg[i];
                hAB += w * lg[i];
                hBB += w;
            }
            double det = hAA * hBB - hAB * hAB;
            if (!(det > 1e-12))
                break;
            double dA = (hBB * gA - hAB * gB) / det, dB = (hAA * gB - hAB * gA) / det;
            A -= dA;
            B -= dB;
            if (fabs(dA) + fabs(dB) < 1e-9)
                break;
        }
        if (isfinite(A) && isfinite(B)) {
            m->platt_a = A;
            m->platt_b = B;
        }
    }
    free(lg);
    free(ok);
    if (accuracy)
        *accuracy = (double)right / (double)n;
    free(z);
    free(p);
    free(xs);
    return nll;
}

/* ---- bytes ------------------------------------------------------------------------------------ */

#define MAGIC "TLYCLS02"

typedef struct {
    char magic[8];
    int32_t dim, k;
    double temperature, platt_a, platt_b;
} header;

int tly_cls_serialize(const tly_cls_model *m, tly_buf *out, tly_error *err)
{
    header h;
    memcpy(h.magic, MAGIC, 8);
    h.dim = m->dim;
    h.k = m->k;
    h.temperature = m->temperature;
    h.platt_a = m->platt_a;
    h.platt_b = m->platt_b;
    size_t wn = (size_t)m->k * (size_t)(m->dim + 1);
    if (tly_buf_append(out, &h, sizeof h) < 0 || tly_buf_append(out, m->mean, (size_t)m->dim * sizeof(float)) < 0 ||
        tly_buf_append(out, m->scale, (size_t)m->dim * sizeof(float)) < 0 ||
        tly_buf_append(out, m->w, wn * sizeof(float)) < 0)
        return tly_fail(err, TLY_E_INTERNAL, "too_large", "the model does not fit its buffer");
    return 0;
}

int tly_cls_deserialize(const void *data, size_t len, tly_cls_model *m, tly_error *err)
{
    memset(m, 0, sizeof *m);
    header h;
    if (len < sizeof h)
        return tly_fail(err, TLY_E_IO, "corrupt_model", "stored classifier is truncated");
    memcpy(&h, data, sizeof h);
    if (memcmp(h.magic, MAGIC, 8) != 0 || h.dim < 1 || h.dim > 1000000 || h.k < 2 || h.k > TLY_CLS_MAX_CLASSES)
        return tly_fail(err, TLY_E_IO, "corrupt_model", "stored classifier has a bad header");
    size_t wn = (size_t)h.k * (size_t)(h.dim + 1);
    if (len != sizeof h + (2 * (size_t)h.dim + wn) * sizeof(float))
        return tly_fail(err, TLY_E_IO, "corrupt_model", "stored classifier has the wrong size");
    m->dim = h.dim;
    m->k = h.k;
    m->temperature = h.temperature;
    m->platt_a = h.platt_a;
    m->platt_b = h.platt_b;
    m->mean = malloc((size_t)h.dim * sizeof(float));
    m->scale = malloc((size_t)h.dim * sizeof(float));
    m->w = malloc(wn * sizeof(float));
    if (!m->mean || !m->scale || !m->w) {
        tly_cls_model_clear(m);
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    const char *p = (const char *)data + sizeof h;
    memcpy(m->mean, p, (size_t)h.dim * sizeof(float));
    p += (size_t)h.dim * sizeof(float);
    memcpy(m->scale, p, (size_t)h.dim * sizeof(float));
    p += (size_t)h.dim * sizeof(float);
    memcpy(m->w, p, wn * sizeof(float));
    return 0;
}
