/* probe_jpeg.c -- validate a JPEG by decoding it fully, and make its thumbnail.
 *
 * Design:
 *  - The header is read first and max_pixels checked before any pixel is decoded,
 *    so a decompression bomb costs only its header.
 *  - The whole image is then decoded with libjpeg-turbo's scaled DCT at M/8, the
 *    smallest M whose output is still at least thumb_max on the longest side. The
 *    entropy-coded data is read and checked in full whatever M is, so validation is
 *    complete, while the IDCT and colour conversion work on the small image. Rows
 *    are box-filtered into the thumbnail as they come (thumbnail.c): memory is one
 *    row group plus the thumbnail, whose sums also give the perceptual hash and
 *    quality measures (imagecheck.c) with no second decode. (Progressive / multi-scan JPEGs are the exception
 *    libjpeg imposes: it must buffer all DCT coefficients, 2 bytes per sample. That
 *    buffer is capped by max_memory_to_use below and the image rejected as too_large
 *    beyond it, since libjpeg-turbo has no backing store.)
 *  - libjpeg reports errors through error_exit, which must not return: ours longjmps
 *    back. Warnings (emit_message at level -1, e.g. "Corrupt JPEG data: premature end
 *    of data segment", "Premature end of JPEG file") mean libjpeg patched over bad
 *    data and carried on; for validation they are failures too, so they longjmp as
 *    well. Nothing is ever printed to stderr.
 *  - All state the cleanup needs lives in a context struct in probe's frame, not in
 *    locals of the function that calls setjmp, so nothing is indeterminate after a
 *    longjmp; libjpeg's own buffers come from its pools and go with jpeg_destroy.
 *  - CMYK / YCCK JPEGs (print workflows) are decoded as CMYK and turned into RGB
 *    here with the naive formula, as libjpeg-turbo has no CMYK->RGB conversion.
 *    Adobe's files store the inks inverted, hence the two cases.
 */
#include "ingest/thumbnail.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h> /* message codes, ERREXIT */

/* Progressive JPEGs need w*h*components*2 bytes of coefficients; 256 MiB covers any
 * 4:2:0 image up to ~89 MP and 4:4:4 up to ~44 MP. */
#define JPEG_MAX_MEMORY (256L * 1024 * 1024)

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} dec_errmgr;

typedef struct {
    struct jpeg_decompress_struct d;
    dec_errmgr jerr;
    FILE *f;
    tly_thumb thumb;
    int have_thumb;
} dec_ctx;

static void dec_fail_jump(j_common_ptr cinfo)
{
    dec_errmgr *e = (dec_errmgr *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jb, 1);
}

static void dec_emit_message(j_common_ptr cinfo, int msg_level)
{
    if (msg_level < 0) /* a warning: corrupt data libjpeg would otherwise paper over */
        dec_fail_jump(cinfo);
    /* msg_level >= 0 are trace messages: ignore. */
}

static void dec_output_message(j_common_ptr cinfo)
{
    (void)cinfo;
}

/* Convert one row of CMYK (as libjpeg gives it) to RGB in place (out may alias in:
 * it is written behind the read position). */
static void cmyk_to_rgb(JSAMPLE *px, JDIMENSION w, int inverted)
{
    JSAMPLE *out = px;
    for (JDIMENSION x = 0; x < w; x++, px += 4, out += 3) {
        unsigned c = px[0], m = px[1], y = px[2], k = px[3];
        if (!inverted) {
            c = 255 - c;
            m = 255 - m;
            y = 255 - y;
            k = 255 - k;
        }
        /* now c = 255 - C etc.: R = (1 - C)(1 - K) */
        out[0] = (JSAMPLE)((c * k + 127) / 255);
        out[1] = (JSAMPLE)((m * k + 127) / 255);
        out[2] = (JSAMPLE)((y * k + 127) / 255);
    }
}

/* Returns 0; -1 after a libjpeg longjmp (ctx->jerr says why); -2 with err filled. */
static int decode_run(dec_ctx *ctx, const tly_probe_opts *opts, tly_media_info *info,
                      tly_buf *thumb_out, tly_error *err)
{
    if (setjmp(ctx->jerr.jb))
        return -1;
    jpeg_create_decompress(&ctx->d);
    ctx->d.mem->max_memory_to_use = JPEG_MAX_MEMORY;
    jpeg_stdio_src(&ctx->d, ctx->f);
    if (jpeg_read_header(&ctx->d, TRUE) != JPEG_HEADER_OK) {
        tly_fail(err, TLY_E_UNPROCESSABLE, "corrupt", "JPEG has no image (tables only)");
        return -2;
    }

    uint64_t w = ctx->d.image_width, h = ctx->d.image_height;
    if (opts->max_pixels && w * h > opts->max_pixels) {
        tly_fail(err, TLY_E_UNPROCESSABLE, "too_large",
                 "image is %llux%llu = %llu pixels, over the limit of %llu",
                 (unsigned long long)w, (unsigned long long)h, (unsigned long long)(w * h),
                 (unsigned long long)opts->max_pixels);
        return -2;
    }

    int comps, cmyk = 0;
    switch (ctx->d.jpeg_color_space) {
    case JCS_GRAYSCALE:
        ctx->d.out_color_space = JCS_GRAYSCALE;
        comps = 1;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        ctx->d.out_color_space = JCS_RGB;
        comps = 3;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        ctx->d.out_color_space = JCS_CMYK;
        comps = 3;
        cmyk = 1;
        break;
    default:
        tly_fail(err, TLY_E_UNPROCESSABLE, "corrupt",
                 "JPEG has an unsupported colour space (%d components)", ctx->d.num_components);
        return -2;
    }

    /* The largest M in 1..8 whose scaled longest side still fits thumb_max: the DCT
     * then does the whole reduction (a proper low-pass, and the cheapest decode, as
     * libjpeg-turbo skips most of the IDCT), and only images so large that even 1/8
     * is over thumb_max need a box filter after it. Without a thumbnail M = 1, the
     * cheapest full validation. */
    int thumb_max = opts->thumb_max > 0 ? opts->thumb_max : 1;
    uint64_t longest = w > h ? w : h;
    int m = 1;
    if (thumb_out)
        while (m < 8 && (longest * (uint64_t)(m + 1) + 7) / 8 <= (uint64_t)thumb_max)
            m++;
    ctx->d.scale_num = (unsigned)m;
    ctx->d.scale_denom = 8;
    jpeg_start_decompress(&ctx->d);

    JDIMENSION ow = ctx->d.output_width, oh = ctx->d.output_height;
    if (thumb_out) {
        int tw, th;
        tly_thumb_size((int)w, (int)h, thumb_max, &tw, &th);
        if (tly_thumb_init(&ctx->thumb, (int)ow, (int)oh, tw, th, comps, err) != 0)
            return -2;
        ctx->have_thumb = 1;
    }
    int rows_per_call = ctx->d.rec_outbuf_height;
    JSAMPARRAY rows = (*ctx->d.mem->alloc_sarray)((j_common_ptr)&ctx->d, JPOOL_IMAGE,
                                                  ow * (JDIMENSION)ctx->d.output_components,
                                                  (JDIMENSION)rows_per_call);
    while (ctx->d.output_scanline < oh) {
        JDIMENSION first = ctx->d.output_scanline;
        JDIMENSION n = jpeg_read_scanlines(&ctx->d, rows, (JDIMENSION)rows_per_call);
        if (n == 0) /* cannot happen with a stdio source; never spin */
            ERREXIT(&ctx->d, JERR_INPUT_EOF);
        if (!ctx->have_thumb)
            continue;
        for (JDIMENSION i = 0; i < n; i++) {
            if (cmyk)
                cmyk_to_rgb(rows[i], ow, ctx->d.saw_Adobe_marker);
            tly_thumb_add(&ctx->thumb, (int)(first + i), 0, 1, (int)ow, rows[i]);
        }
    }
    /* Reads through EOI: trailing corruption warns here. */
    jpeg_finish_decompress(&ctx->d);

    info->kind = TLY_MEDIA_IMAGE;
    snprintf(info->format, sizeof info->format, "jpeg");
    info->width = (int)w;
    info->height = (int)h;
    info->channels = ctx->d.num_components;
    if (ctx->have_thumb &&
        tly_thumb_encode_jpeg(&ctx->thumb, opts->thumb_quality, thumb_out, &info->measures, err) != 0)
        return -2;
    info->has_measures = ctx->have_thumb;
    return 0;
}

int tly_probe_jpeg(const char *path, const tly_probe_opts *opts, tly_media_info *info,
                   tly_buf *thumb, tly_error *err)
{
    dec_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.f = fopen(path, "rb");
    if (!ctx.f)
        return tly_fail(err, TLY_E_IO, "io_error", "cannot open: %s", strerror(errno));
    ctx.d.err = jpeg_std_error(&ctx.jerr.pub);
    ctx.jerr.pub.error_exit = dec_fail_jump;
    ctx.jerr.pub.emit_message = dec_emit_message;
    ctx.jerr.pub.output_message = dec_output_message;

    int rc = decode_run(&ctx, opts, info, thumb, err);
    int code = ctx.jerr.pub.msg_code;
    int read_error = ferror(ctx.f);
    jpeg_destroy_decompress(&ctx.d);
    fclose(ctx.f);
    if (ctx.have_thumb)
        tly_thumb_free(&ctx.thumb);
    if (rc != -1)
        return rc == 0 ? 0 : -1;

    /* A libjpeg error or warning: say which of our codes it is. */
    if (read_error)
        return tly_fail(err, TLY_E_IO, "io_error", "read error");
    if (code == JWRN_JPEG_EOF || code == JERR_INPUT_EOF || code == JERR_INPUT_EMPTY)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "truncated", "JPEG file ends early (%s)",
                        ctx.jerr.msg);
    if (code == JERR_NO_BACKING_STORE)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "too_large",
                        "JPEG needs more than %ld MiB to decode", JPEG_MAX_MEMORY >> 20);
    if (code == JERR_IMAGE_TOO_BIG || code == JERR_WIDTH_OVERFLOW)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "too_large", "%s", ctx.jerr.msg);
    if (code == JERR_OUT_OF_MEMORY)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "%s", ctx.jerr.msg);
    return tly_fail(err, TLY_E_UNPROCESSABLE, "corrupt", "JPEG data is corrupt: %s",
                    ctx.jerr.msg);
}
