/* imagecheck.c -- perceptual hash and blank / blur / exposure measures of an image.
 *
 * Input: the image as 8-bit luminance at thumbnail scale (longest side <= thumb_max,
 * 256 by default), made from the box sums the decoders already accumulate for the
 * thumbnail (thumbnail.c takes it from the averaged rows as it encodes the thumbnail
 * JPEG). Nothing is decoded a second time, and the work is O(thumbnail pixels): about
 * 50,000 for a 4:3 photo, 0.13 ms of CPU on the dev VM, against the several
 * milliseconds of decoding the photo.
 *
 * Perceptual hash (pHash, as in Zauner's thesis and pHash.org): the luminance is
 * area-averaged to 32x32 (aspect ignored: a resized copy maps to the same grid), a
 * 2-D DCT-II is taken, and the 8x8 lowest frequencies except the DC row and column
 * (u, v = 1..8) give 64 coefficients; bit (u-1)*8+(v-1), counted from the most
 * significant, is 1 when its coefficient is above their median. Low frequencies
 * survive resizing, recompression and small colour changes, so copies differ in a few
 * bits while unrelated images differ in about 32. Two images are near duplicates when
 * the Hamming distance of their hashes is at most the project's threshold (default 6).
 * Only the 8 frequencies used are computed (8 x 32 x 32 + 8 x 8 x 32 products).
 * The search for earlier items with a close hash is the store's (store_imagechecks.c,
 * a multi-index search over four 16-bit bands).
 *
 * Quality measures, all on the thumbnail-scale luminance, so they mean the same for a
 * 1 MP and a 50 MP photo (size-normalised by construction):
 *   - mean and standard deviation: blank = standard deviation below blank_stddev
 *     (default 3 of 255: a uniform frame, a lens cap, a white page);
 *   - sharpness = variance of the 4-neighbour Laplacian (Pech-Pacheco et al.'s blur
 *     measure) over interior pixels: detail left after the box reduction. A sharp photo
 *     reduced to 256 px scores in the hundreds to thousands; a photo out of focus by a
 *     few thumbnail pixels scores below ~10 (default threshold 10). Measured: a sharp
 *     synthetic scene 133, the same under a 3-pass box blur of radius 2 / 4 px at
 *     800 px 18.7 / 4.9; tests/data's photos 250-1,700; of the benchmark's 200 crops
 *     of real photos one scores 3.9 (a smooth, soft crop) and the next 14.2, most
 *     over 100 (test_ingest_imagecheck.c prints its values). Images smaller than 16 px on a
 *     side get no sharpness (null) and are never called blurred; blank images are
 *     not also called blurred;
 *   - clipped fractions: pixels with luminance >= 240 (washed-out highlights) and
 *     <= 15 (crushed shadows); not 255 / 0 exactly, since sensor noise and JPEG keep
 *     a blown-out frame just short of them. Over/under-exposed = that fraction at
 *     least overexposed_fraction / underexposed_fraction (default 0.5 of the frame).
 *     A product shot on a white background can reach that too: such projects raise
 *     the threshold or keep the default mode, flag.
 * A threshold of 0 turns its flag off.
 */
#include "ingest/imagecheck.h"

#include "annotate/project.h"
#include "storage/store.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PHASH_GRID 32   /* the luminance grid the DCT runs on */
#define PHASH_FREQS 9   /* frequencies 1..8 of each axis make the hash */
#define MIN_SHARPNESS_SIDE 16
#define PI 3.14159265358979323846

_Static_assert(TLY_IMAGE_FLAG_COUNT == TLY_IMAGE_CHECK_BITS, "the store counts every flag bit");

static const struct {
    unsigned bit;
    const char *name;
    const char *code;
} flag_table[TLY_IMAGE_FLAG_COUNT] = {
    {TLY_IMAGE_NEAR_DUPLICATE, "near_duplicate", "near_duplicate"},
    {TLY_IMAGE_BLANK, "blank", "blank_image"},
    {TLY_IMAGE_BLURRED, "blurred", "blurry_image"},
    {TLY_IMAGE_OVEREXPOSED, "overexposed", "overexposed_image"},
    {TLY_IMAGE_UNDEREXPOSED, "underexposed", "underexposed_image"},
};

unsigned tly_image_flag_bit(int i)
{
    return i >= 0 && i < TLY_IMAGE_FLAG_COUNT ? flag_table[i].bit : 0;
}

const char *tly_image_flag_name(int i)
{
    return i >= 0 && i < TLY_IMAGE_FLAG_COUNT ? flag_table[i].name : "";
}

const char *tly_image_flag_code(int i)
{
    return i >= 0 && i < TLY_IMAGE_FLAG_COUNT ? flag_table[i].code : "";
}

static tly_check_mode mode_of(const char *s)
{
    if (strcmp(s, "reject") == 0)
        return TLY_CHECK_REJECT;
    if (strcmp(s, "off") == 0)
        return TLY_CHECK_OFF;
    return TLY_CHECK_FLAG;
}

void tly_image_check_settings_from_workflow(json_t *workflow, tly_image_check_settings *out)
{
    const char *sec = "media_checks";
    out->near_duplicate = mode_of(tly_workflow_string(workflow, sec, "near_duplicate"));
    double d = tly_workflow_number(workflow, sec, "near_duplicate_distance");
    out->near_duplicate_distance = d < 0 ? 0 : d > TLY_PHASH_MAX_DISTANCE ? TLY_PHASH_MAX_DISTANCE : (int)d;
    out->quality = mode_of(tly_workflow_string(workflow, sec, "quality"));
    out->blank_stddev = tly_workflow_number(workflow, sec, "blank_stddev");
    out->blur_sharpness = tly_workflow_number(workflow, sec, "blur_sharpness");
    out->overexposed_fraction = tly_workflow_number(workflow, sec, "overexposed_fraction");
    out->underexposed_fraction = tly_workflow_number(workflow, sec, "underexposed_fraction");
}

int tly_phash_distance(uint64_t a, uint64_t b)
{
    return __builtin_popcountll(a ^ b);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* cos(pi (2n + 1) k / 64) for the frequencies the hash uses; filled once. */
static double dct_cos[PHASH_FREQS][PHASH_GRID];
static pthread_once_t dct_once = PTHREAD_ONCE_INIT;

static void dct_init(void)
{
    for (int k = 0; k < PHASH_FREQS; k++)
        for (int n = 0; n < PHASH_GRID; n++)
            dct_cos[k][n] = cos(PI * (2 * n + 1) * k / (2.0 * PHASH_GRID));
}

/* The 64-bit DCT hash of the 32x32 grid of cell sums (any common scale). */
static uint64_t phash_of_grid(const double grid[PHASH_GRID][PHASH_GRID])
{
    pthread_once(&dct_once, dct_init);
    /* Separable DCT-II, only the frequencies the hash uses (scale factors dropped:
     * they are the same for every coefficient with u, v >= 1, so the median split
     * does not change). */
    double rows[PHASH_GRID][PHASH_FREQS];   /* each grid row, transformed along x */
    for (int v = 0; v < PHASH_GRID; v++)
        for (int k = 1; k < PHASH_FREQS; k++) {
            double sum = 0;
            for (int n = 0; n < PHASH_GRID; n++)
                sum += grid[v][n] * dct_cos[k][n];
            rows[v][k] = sum;
        }
    double coef[64], sorted[64];
    for (int ky = 1; ky < PHASH_FREQS; ky++)
        for (int kx = 1; kx < PHASH_FREQS; kx++) {
            double sum = 0;
            for (int n = 0; n < PHASH_GRID; n++)
                sum += rows[n][kx] * dct_cos[ky][n];
            coef[(ky - 1) * 8 + (kx - 1)] = sum;
        }
    memcpy(sorted, coef, sizeof sorted);
    qsort(sorted, 64, sizeof sorted[0], cmp_double);
    double median = (sorted[31] + sorted[32]) / 2;
    uint64_t hash = 0;
    for (int i = 0; i < 64; i++)
        if (coef[i] > median)
            hash |= 1ULL << (63 - i);
    return hash;
}

int tly_image_measure_gray(const unsigned char *gray, int w, int h, tly_image_measures *out,
                           tly_error *err)
{
    memset(out, 0, sizeof *out);
    if (!gray || w < 1 || h < 1)
        return tly_fail(err, TLY_E_INTERNAL, "internal", "no pixels to measure (%dx%d)", w, h);
    size_t n = (size_t)w * (size_t)h;

    /* The statistics in one pass (which the compiler vectorises), then the 32x32 grid
     * of area averages, each cell summing its own rectangle (contiguous runs of a
     * row). An image smaller than the grid on a side repeats pixels: each cell takes
     * at least one. */
    uint64_t sum = 0, sum_sq = 0, high = 0, low = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned g = gray[i];
        sum += g;
        sum_sq += g * g;
        high += g >= 240;
        low += g <= 15;
    }
    double grid[PHASH_GRID][PHASH_GRID];
    int x0[PHASH_GRID], x1[PHASH_GRID];
    for (int u = 0; u < PHASH_GRID; u++) {
        x0[u] = (int)((int64_t)u * w / PHASH_GRID);
        x1[u] = (int)((int64_t)(u + 1) * w / PHASH_GRID);
        if (x1[u] <= x0[u])
            x1[u] = x0[u] + 1;
    }
    for (int v = 0; v < PHASH_GRID; v++) {
        int y0 = (int)((int64_t)v * h / PHASH_GRID), y1 = (int)((int64_t)(v + 1) * h / PHASH_GRID);
        if (y1 <= y0)
            y1 = y0 + 1;
        for (int u = 0; u < PHASH_GRID; u++) {
            uint32_t cell = 0;   /* a cell of a thumbnail-sized image: far below 2^32 / 255 px */
            for (int y = y0; y < y1; y++) {
                const unsigned char *row = gray + (size_t)y * (size_t)w;
                for (int x = x0[u]; x < x1[u]; x++)
                    cell += row[x];
            }
            grid[v][u] = (double)cell / ((double)(y1 - y0) * (double)(x1[u] - x0[u]));
        }
    }
    out->mean = (double)sum / (double)n;
    double var = (double)sum_sq / (double)n - out->mean * out->mean;
    out->stddev = var > 0 ? sqrt(var) : 0;
    out->clipped_high = (double)high / (double)n;
    out->clipped_low = (double)low / (double)n;
    out->phash = phash_of_grid((const double(*)[PHASH_GRID])grid);

    out->sharpness = -1;   /* too small to judge */
    if (w >= MIN_SHARPNESS_SIDE && h >= MIN_SHARPNESS_SIDE) {
        int64_t lsum = 0;
        uint64_t lsq = 0;
        for (int y = 1; y < h - 1; y++) {
            const unsigned char *row = gray + (size_t)y * (size_t)w;
            int32_t row_sum = 0;
            uint64_t row_sq = 0;
            for (int x = 1; x < w - 1; x++) {
                int32_t lap = 4 * row[x] - row[x - 1] - row[x + 1] - row[x - w] - row[x + w];
                row_sum += lap;
                row_sq += (uint32_t)(lap * lap);
            }
            lsum += row_sum;
            lsq += row_sq;
        }
        double m = (double)(w - 2) * (double)(h - 2);
        double lmean = (double)lsum / m;
        double lvar = (double)lsq / m - lmean * lmean;
        out->sharpness = lvar > 0 ? lvar : 0;
    }
    return 0;
}

unsigned tly_image_quality_flags(const tly_image_measures *m, const tly_image_check_settings *s)
{
    if (s->quality == TLY_CHECK_OFF)
        return 0;
    unsigned flags = 0;
    if (m->stddev < s->blank_stddev)
        flags |= TLY_IMAGE_BLANK;
    if (!(flags & TLY_IMAGE_BLANK) && m->sharpness >= 0 && m->sharpness < s->blur_sharpness)
        flags |= TLY_IMAGE_BLURRED;
    if (s->overexposed_fraction > 0 && m->clipped_high >= s->overexposed_fraction)
        flags |= TLY_IMAGE_OVEREXPOSED;
    if (s->underexposed_fraction > 0 && m->clipped_low >= s->underexposed_fraction)
        flags |= TLY_IMAGE_UNDEREXPOSED;
    return flags;
}

int tly_image_quality_reject(const tly_image_measures *m, unsigned flags,
                             const tly_image_check_settings *s, tly_error *err)
{
    if (flags & TLY_IMAGE_BLANK)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "blank_image",
                        "image is blank: luminance standard deviation %.2f is below %.2f", m->stddev,
                        s->blank_stddev);
    if (flags & TLY_IMAGE_OVEREXPOSED)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "overexposed_image",
                        "image is over-exposed: %.0f%% of its pixels are clipped white (limit %.0f%%)",
                        m->clipped_high * 100, s->overexposed_fraction * 100);
    if (flags & TLY_IMAGE_UNDEREXPOSED)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "underexposed_image",
                        "image is under-exposed: %.0f%% of its pixels are clipped black (limit %.0f%%)",
                        m->clipped_low * 100, s->underexposed_fraction * 100);
    if (flags & TLY_IMAGE_BLURRED)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "blurry_image",
                        "image is blurred: sharpness %.1f is below %.1f", m->sharpness, s->blur_sharpness);
    return tly_fail(err, TLY_E_INTERNAL, "internal", "no quality flag to reject for");
}

/* Rounded to 4 decimals: readable JSON, and no false precision. */
static json_t *measure_json(double v)
{
    return json_real(round(v * 10000.0) / 10000.0);
}

json_t *tly_image_quality_json(const tly_image_measures *m, unsigned flags,
                               const tly_image_check_settings *s)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)m->phash);
    json_t *q = json_object();
    if (!q)
        return NULL;
    int bad = json_object_set_new(q, "phash", json_string(hex));
    bad |= json_object_set_new(q, "sharpness", m->sharpness >= 0 ? measure_json(m->sharpness) : json_null());
    bad |= json_object_set_new(q, "mean", measure_json(m->mean));
    bad |= json_object_set_new(q, "stddev", measure_json(m->stddev));
    bad |= json_object_set_new(q, "clipped_high", measure_json(m->clipped_high));
    bad |= json_object_set_new(q, "clipped_low", measure_json(m->clipped_low));
    if (s->quality != TLY_CHECK_OFF)
        for (int i = 0; i < TLY_IMAGE_FLAG_COUNT; i++)
            if (flag_table[i].bit != TLY_IMAGE_NEAR_DUPLICATE)
                bad |= json_object_set_new(q, flag_table[i].name, json_boolean(flags & flag_table[i].bit));
    if (s->near_duplicate != TLY_CHECK_OFF)
        bad |= json_object_set_new(q, "near_duplicate", json_false());
    if (bad) {
        json_decref(q);
        return NULL;
    }
    return q;
}

void tly_image_quality_mark_near_duplicate(json_t *media, int64_t item_id, int distance)
{
    json_t *q = json_object_get(media, "quality");
    if (!json_is_object(q))
        return;
    if (item_id == 0) {
        if (json_object_get(q, "near_duplicate"))
            json_object_set_new(q, "near_duplicate", json_false());
        json_object_del(q, "near_duplicate_of");
        json_object_del(q, "near_duplicate_distance");
        return;
    }
    json_object_set_new(q, "near_duplicate", json_true());
    json_object_set_new(q, "near_duplicate_of", json_integer(item_id));
    json_object_set_new(q, "near_duplicate_distance", json_integer(distance));
}
