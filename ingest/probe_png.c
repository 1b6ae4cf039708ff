/* probe_png.c -- validate a PNG by decoding it fully, and make its thumbnail.
 *
 * Design:
 *  - IHDR is read first and max_pixels checked before any pixel data is inflated.
 *  - libpng transforms every colour type to 8-bit gray, gray+alpha, RGB or RGBA
 *    (palette expanded, tRNS turned into alpha, 16-bit scaled down). Rows are read one
 *    at a time into one row buffer and box-filtered into the thumbnail (thumbnail.c),
 *    alpha composited on white, since the thumbnail is a JPEG. The thumbnail's sums
 *    also give the perceptual hash and quality measures (imagecheck.c).
 *  - Adam7-interlaced images are not de-interlaced by libpng (that needs the whole
 *    image in memory): without png_set_interlace_handling, png_read_row returns the
 *    sub-image rows of each of the 7 passes, and we know from the Adam7 pattern where
 *    each of their pixels sits, so every pixel is still added once to its thumbnail
 *    box. Memory stays one row plus the thumbnail for interlaced images too.
 *  - Every chunk's CRC is checked, ancillary ones included (default libpng would only
 *    warn and drop those), and the file is read through IEND, so a damaged file is
 *    "corrupt". Short reads are caught in our read callback, which marks the failure
 *    "truncated" before handing libpng the error. libpng's warnings (mostly about
 *    odd ancillary metadata) are ignored; they do not affect the pixels.
 *  - libpng errors longjmp back to the setjmp in decode_run. What cleanup needs is in
 *    the context struct in the caller's frame, never in locals of decode_run.
 */
#include "ingest/thumbnail.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

typedef struct {
    png_structp png;
    png_infop pinfo;
    FILE *f;
    int truncated;
    int read_error;
    char msg[256];
    tly_thumb thumb;
    int have_thumb;
    unsigned char *row;   /* one decoded row, rowbytes */
    unsigned char *px;    /* the row with alpha composited, thumbnail components */
} png_ctx;

static void png_error_fn(png_structp png, png_const_charp msg)
{
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static void png_warning_fn(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_read_fn(png_structp png, png_bytep data, size_t len)
{
    png_ctx *c = png_get_io_ptr(png);
    if (fread(data, 1, len, c->f) != len) {
        if (ferror(c->f))
            c->read_error = 1;
        else
            c->truncated = 1;
        png_error(png, "file ends early");
    }
}

/* a over white, 8-bit */
static unsigned char over_white(unsigned v, unsigned a)
{
    return (unsigned char)((v * a + 255u * (255u - a) + 127u) / 255u);
}

/* Turn n decoded pixels of `channels` components into thumbnail pixels in px. */
static const unsigned char *to_thumb_pixels(png_ctx *c, const unsigned char *in, int n,
                                            int channels)
{
    unsigned char *out = c->px;
    switch (channels) {
    case 1:
    case 3:
        return in; /* already what the thumbnail takes */
    case 2:
        for (int i = 0; i < n; i++, in += 2)
            *out++ = over_white(in[0], in[1]);
        break;
    default: /* 4 */
        for (int i = 0; i < n; i++, in += 4) {
            *out++ = over_white(in[0], in[3]);
            *out++ = over_white(in[1], in[3]);
            *out++ = over_white(in[2], in[3]);
        }
        break;
    }
    return c->px;
}

/* Returns 0; -1 after a libpng longjmp (ctx says why); -2 with err filled. */
static int decode_run(png_ctx *c, const tly_probe_opts *opts, tly_media_info *info,
                      tly_buf *thumb_out, tly_error *err)
{
    if (setjmp(png_jmpbuf(c->png)))
        return -1;
    png_set_read_fn(c->png, c, png_read_fn);
    png_set_crc_action(c->png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    /* libpng's own default cap (1e6 x 1e6) would reject a wide image as a decoding
     * error before we see IHDR; let max_pixels decide, as a too_large. */
    png_set_user_limits(c->png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(c->png, c->pinfo);

    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(c->png, c->pinfo, &w, &h, &depth, &color, &interlace, NULL, NULL);
    if (opts->max_pixels && (uint64_t)w * h > opts->max_pixels) {
        tly_fail(err, TLY_E_UNPROCESSABLE, "too_large",
                 "image is %lux%lu = %llu pixels, over the limit of %llu", (unsigned long)w,
                 (unsigned long)h, (unsigned long long)((uint64_t)w * h),
                 (unsigned long long)opts->max_pixels);
        return -2;
    }

    if (depth == 16)
        png_set_scale_16(c->png);
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(c->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(c->png);
    if (png_get_valid(c->png, c->pinfo, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(c->png);
    png_read_update_info(c->png, c->pinfo);

    int channels = png_get_channels(c->png, c->pinfo);
    if (channels < 1 || channels > 4 || png_get_bit_depth(c->png, c->pinfo) != 8) {
        tly_fail(err, TLY_E_UNPROCESSABLE, "corrupt", "PNG has an unsupported pixel layout");
        return -2;
    }
    int comps = channels <= 2 ? 1 : 3;
    c->row = malloc(png_get_rowbytes(c->png, c->pinfo));
    if (!c->row) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory for a PNG row");
        return -2;
    }
    if (thumb_out) {
        int tw, th;
        tly_thumb_size((int)w, (int)h, opts->thumb_max, &tw, &th);
        if (tly_thumb_init(&c->thumb, (int)w, (int)h, tw, th, comps, err) != 0)
            return -2;
        c->have_thumb = 1;
        c->px = malloc((size_t)w * (size_t)comps);
        if (!c->px) {
            tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory for a PNG row");
            return -2;
        }
    }

    /* One pass for plain images, Adam7's seven for interlaced ones; libpng skips
     * passes that are empty for small images, and so do we. */
    int passes = interlace == PNG_INTERLACE_ADAM7 ? 7 : 1;
    for (int pass = 0; pass < passes; pass++) {
        png_uint_32 cols = passes == 1 ? w : PNG_PASS_COLS(w, pass);
        png_uint_32 rows = passes == 1 ? h : PNG_PASS_ROWS(h, pass);
        if (cols == 0 || rows == 0)
            continue;
        int x0 = passes == 1 ? 0 : (int)PNG_PASS_START_COL(pass);
        int dx = passes == 1 ? 1 : 1 << PNG_PASS_COL_SHIFT(pass);
        for (png_uint_32 r = 0; r < rows; r++) {
            png_read_row(c->png, c->row, NULL);
            if (!c->have_thumb)
                continue;
            int y = passes == 1 ? (int)r : (int)PNG_ROW_FROM_PASS_ROW(r, pass);
            tly_thumb_add(&c->thumb, y, x0, dx, (int)cols,
                          to_thumb_pixels(c, c->row, (int)cols, channels));
        }
    }
    /* Read through IEND: checks the trailing chunks and their CRCs. */
    png_read_end(c->png, NULL);

    info->kind = TLY_MEDIA_IMAGE;
    snprintf(info->format, sizeof info->format, "png");
    info->width = (int)w;
    info->height = (int)h;
    info->channels = channels;
    if (c->have_thumb &&
        tly_thumb_encode_jpeg(&c->thumb, opts->thumb_quality, thumb_out, &info->measures, err) != 0)
        return -2;
    info->has_measures = c->have_thumb;
    return 0;
}

int tly_probe_png(const char *path, const tly_probe_opts *opts, tly_media_info *info,
                  tly_buf *thumb, tly_error *err)
{
    png_ctx c;
    memset(&c, 0, sizeof c);
    c.f = fopen(path, "rb");
    if (!c.f)
        return tly_fail(err, TLY_E_IO, "io_error", "cannot open: %s", strerror(errno));
    c.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, png_error_fn, png_warning_fn);
    if (c.png)
        c.pinfo = png_create_info_struct(c.png);
    int rc = -2;
    if (!c.png || !c.pinfo)
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "cannot create a PNG reader");
    else
        rc = decode_run(&c, opts, info, thumb, err);
    png_destroy_read_struct(&c.png, &c.pinfo, NULL); /* NULL-safe */
    fclose(c.f);
    free(c.row);
    free(c.px);
    if (c.have_thumb)
        tly_thumb_free(&c.thumb);
    if (rc != -1)
        return rc == 0 ? 0 : -1;
    if (c.read_error)
        return tly_fail(err, TLY_E_IO, "io_error", "read error");
    if (c.truncated)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "truncated", "PNG file ends early");
    return tly_fail(err, TLY_E_UNPROCESSABLE, "corrupt", "PNG data is corrupt: %s", c.msg);
}
