/* synth_images.h -- synthetic test images for the ingest checks (perceptual hash,
 * blank / blur / exposure flags), shared by tests/unit/test_ingest_imagecheck.c and
 * tests/integration/it_ingest_quality.c.
 *
 * Header-only (static inline functions), like unit_util.h. A "scene" is a deterministic
 * picture from a seed: a gradient background, rectangles and ellipses of random
 * colours, and fine noise, so it has edges and texture like a photo; different seeds
 * give unrelated pictures. Helpers resize (area average), blur (three box passes,
 * close to a Gaussian), shift the brightness, and write JPEG (libjpeg) or PNG
 * (libpng) files. Images are packed RGB, 3 bytes a pixel, owned by the caller.
 * Errors abort the test program: these are fixtures, not code under test.
 */
#ifndef TALLY_TEST_SYNTH_IMAGES_H
#define TALLY_TEST_SYNTH_IMAGES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

typedef struct {
    int w, h;
    unsigned char *px;   /* w * h * 3 */
} synth_image;

static inline uint32_t synth_rand(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

static inline int synth_range(uint32_t *state, int lo, int hi)   /* lo..hi inclusive */
{
    return lo + (int)(synth_rand(state) % (uint32_t)(hi - lo + 1));
}

static inline synth_image synth_new(int w, int h)
{
    synth_image im = {w, h, calloc((size_t)w * (size_t)h, 3)};
    if (!im.px)
        abort();
    return im;
}

static inline void synth_free(synth_image *im)
{
    free(im->px);
    im->px = NULL;
}

static inline synth_image synth_scene(int w, int h, uint32_t seed)
{
    synth_image im = synth_new(w, h);
    uint32_t st = seed * 2654435761u + 12345u;
    int c0[3], c1[3];
    for (int c = 0; c < 3; c++) {
        c0[c] = synth_range(&st, 40, 200);
        c1[c] = synth_range(&st, 40, 200);
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                im.px[((size_t)y * w + x) * 3 + c] = (unsigned char)(c0[c] + (c1[c] - c0[c]) * (x + y) / (w + h));
    for (int s = 0; s < 40; s++) {
        int sw = synth_range(&st, w / 20, w / 3), sh = synth_range(&st, h / 20, h / 3);
        int x0 = synth_range(&st, 0, w - sw), y0 = synth_range(&st, 0, h - sh);
        int ellipse = s % 3 == 0;
        unsigned char col[3];
        for (int c = 0; c < 3; c++)
            col[c] = (unsigned char)synth_range(&st, 30, 220);
        for (int y = y0; y < y0 + sh; y++)
            for (int x = x0; x < x0 + sw; x++) {
                if (ellipse) {
                    double dx = (x - x0 - sw / 2.0) / (sw / 2.0), dy = (y - y0 - sh / 2.0) / (sh / 2.0);
                    if (dx * dx + dy * dy > 1)
                        continue;
                }
                memcpy(im.px + ((size_t)y * w + x) * 3, col, 3);
            }
    }
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        int v = im.px[i] + synth_range(&st, -6, 6);
        im.px[i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    return im;
}

/* Area-average resize to w x h (shrinking). */
static inline synth_image synth_resize(const synth_image *src, int w, int h)
{
    synth_image im = synth_new(w, h);
    for (int y = 0; y < h; y++) {
        int y0 = y * src->h / h, y1 = (y + 1) * src->h / h;
        if (y1 <= y0)
            y1 = y0 + 1;
        for (int x = 0; x < w; x++) {
            int x0 = x * src->w / w, x1 = (x + 1) * src->w / w;
            if (x1 <= x0)
                x1 = x0 + 1;
            for (int c = 0; c < 3; c++) {
                long sum = 0;
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++)
                        sum += src->px[((size_t)yy * src->w + xx) * 3 + c];
                im.px[((size_t)y * w + x) * 3 + c] = (unsigned char)(sum / ((y1 - y0) * (x1 - x0)));
            }
        }
    }
    return im;
}

/* In place: three passes of a (2 radius + 1) box along x then y. */
static inline void synth_blur(synth_image *im, int radius)
{
    size_t n = (size_t)(im->w > im->h ? im->w : im->h);
    int *line = malloc(n * sizeof *line);
    if (!line)
        abort();
    for (int pass = 0; pass < 3; pass++)
        for (int axis = 0; axis < 2; axis++) {
            int len = axis ? im->h : im->w, lines = axis ? im->w : im->h;
            for (int l = 0; l < lines; l++)
                for (int c = 0; c < 3; c++) {
                    for (int i = 0; i < len; i++)
                        line[i] = im->px[((axis ? (size_t)i * im->w + l : (size_t)l * im->w + i)) * 3 + c];
                    for (int i = 0; i < len; i++) {
                        int sum = 0, cnt = 0;
                        for (int k = i - radius; k <= i + radius; k++)
                            if (k >= 0 && k < len) {
                                sum += line[k];
                                cnt++;
                            }
                        im->px[((axis ? (size_t)i * im->w + l : (size_t)l * im->w + i)) * 3 + c] =
                            (unsigned char)(sum / cnt);
                    }
                }
        }
    free(line);
}

/* In place: every sample plus delta, clipped to 0..255. */
static inline void synth_shift(synth_image *im, int delta)
{
    for (size_t i = 0; i < (size_t)im->w * im->h * 3; i++) {
        int v = im->px[i] + delta;
        im->px[i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

static inline void synth_fill(synth_image *im, unsigned char r, unsigned char g, unsigned char b)
{
    for (size_t i = 0; i < (size_t)im->w * im->h; i++) {
        im->px[i * 3] = r;
        im->px[i * 3 + 1] = g;
        im->px[i * 3 + 2] = b;
    }
}

/* Luminance (BT.601 weights, as ingest), w * h bytes, caller frees. */
static inline unsigned char *synth_gray(const synth_image *im)
{
    unsigned char *g = malloc((size_t)im->w * im->h);
    if (!g)
        abort();
    for (size_t i = 0; i < (size_t)im->w * im->h; i++)
        g[i] = (unsigned char)(0.299 * im->px[i * 3] + 0.587 * im->px[i * 3 + 1] + 0.114 * im->px[i * 3 + 2] + 0.5);
    return g;
}

static inline void synth_write_jpeg(const synth_image *im, int quality, const char *path)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    c.err = jpeg_std_error(&jerr);   /* errors exit: a fixture problem */
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)im->w;
    c.image_height = (JDIMENSION)im->h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    for (int y = 0; y < im->h; y++) {
        JSAMPROW row = im->px + (size_t)y * im->w * 3;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    if (fclose(f) != 0)
        abort();
}

#endif
