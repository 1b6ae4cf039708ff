/* thumbnail.c -- box-filter accumulation and JPEG encoding of thumbnails.
 *
 * Design: the decoders (probe_jpeg.c, probe_png.c) push source pixels in whatever
 * order they decode them; each lands in the sum of the one thumbnail pixel whose box
 * contains it. Box sums are 64-bit so no source size can overflow them. The
 * thumbnail is encoded with libjpeg straight into the caller's tly_buf through a
 * small destination manager of our own rather than jpeg_mem_dest: jpeg_mem_dest
 * reallocates behind the pointer it was given, so after an error longjmp the
 * caller's pointer may already be freed, and it would ignore the tly_buf's cap.
 * On request the encoder also keeps the luminance of the averaged rows it writes and
 * hands it to imagecheck.c's measures (hash, blank / blur / exposure), so the ingest
 * checks cost no second pass over the sums.
 */
#include "ingest/thumbnail.h"
#include "ingest/imagecheck.h"

#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE and size_t declared first */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h> /* message codes, ERREXIT */

void tly_thumb_size(int src_w, int src_h, int max_side, int *w, int *h)
{
    int longest = src_w > src_h ? src_w : src_h;
    if (max_side < 1)
        max_side = 1;
    if (longest <= max_side) {
        *w = src_w;
        *h = src_h;
        return;
    }
    /* Round the short side to nearest so e.g. 640x480 -> 256x192 exactly. */
    if (src_w >= src_h) {
        *w = max_side;
        *h = (int)(((int64_t)src_h * max_side + src_w / 2) / src_w);
    } else {
        *h = max_side;
        *w = (int)(((int64_t)src_w * max_side + src_h / 2) / src_h);
    }
    if (*w < 1)
        *w = 1;
    if (*h < 1)
        *h = 1;
}

int tly_thumb_init(tly_thumb *t, int src_w, int src_h, int w, int h, int comps, tly_error *err)
{
    memset(t, 0, sizeof *t);
    if (src_w < 1 || src_h < 1 || w < 1 || h < 1 || (comps != 1 && comps != 3))
        return tly_fail(err, TLY_E_INTERNAL, "internal", "bad thumbnail geometry %dx%d -> %dx%d",
                        src_w, src_h, w, h);
    /* Never upscale: a box must hold at least one source pixel. */
    if (w > src_w)
        w = src_w;
    if (h > src_h)
        h = src_h;
    t->src_w = src_w;
    t->src_h = src_h;
    t->w = w;
    t->h = h;
    t->comps = comps;
    t->sum = calloc((size_t)w * (size_t)h * (size_t)comps, sizeof *t->sum);
    t->col_span = calloc((size_t)w, sizeof *t->col_span);
    t->row_span = calloc((size_t)h, sizeof *t->row_span);
    t->col_of = calloc((size_t)src_w, sizeof *t->col_of);
    if (!t->sum || !t->col_span || !t->row_span || !t->col_of) {
        tly_thumb_free(t);
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory for a %dx%d thumbnail",
                        w, h);
    }
    /* floor(x * w / src_w) steps by at most 1 per source column since w <= src_w,
     * so every thumbnail column gets at least one source column. */
    for (int x = 0; x < src_w; x++) {
        t->col_of[x] = (uint32_t)((int64_t)x * w / src_w);
        t->col_span[t->col_of[x]]++;
    }
    for (int y = 0; y < src_h; y++)
        t->row_span[(int64_t)y * h / src_h]++;
    return 0;
}

void tly_thumb_add(tly_thumb *t, int y, int x0, int dx, int n, const unsigned char *px)
{
    if (y < 0 || y >= t->src_h || x0 < 0 || dx < 1)
        return;
    int ty = (int)((int64_t)y * t->h / t->src_h);
    uint64_t *row = t->sum + (size_t)ty * (size_t)t->w * (size_t)t->comps;
    int x = x0;
    /* Hot loop (every decoded pixel): a table lookup, no division. */
    if (t->comps == 3) {
        for (int i = 0; i < n && x < t->src_w; i++, x += dx, px += 3) {
            uint64_t *s = row + (size_t)t->col_of[x] * 3;
            s[0] += px[0];
            s[1] += px[1];
            s[2] += px[2];
        }
        return;
    }
    for (int i = 0; i < n && x < t->src_w; i++, x += dx)
        row[t->col_of[x]] += *px++;
}

void tly_thumb_free(tly_thumb *t)
{
    free(t->sum);
    free(t->col_span);
    free(t->row_span);
    free(t->col_of);
    t->col_of = NULL;
    t->sum = NULL;
    t->col_span = NULL;
    t->row_span = NULL;
}

/* ---- encoding -------------------------------------------------------------------- */

typedef struct {
    struct jpeg_destination_mgr pub;
    tly_buf *out;
    JOCTET chunk[4096];
} buf_dest;

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} enc_errmgr;

/* Everything the encoder owns lives here, in the caller's frame, so that after a
 * longjmp the cleanup sees defined values (locals of the function that called
 * setjmp and were changed after it would be indeterminate). */
typedef struct {
    struct jpeg_compress_struct c;
    enc_errmgr jerr;
    buf_dest dest;
    JSAMPLE *row;
    unsigned char *gray;   /* w * h luminance, when measuring */
} enc_ctx;

static void enc_error_exit(j_common_ptr cinfo)
{
    enc_errmgr *e = (enc_errmgr *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    longjmp(e->jb, 1);
}

static void enc_output_message(j_common_ptr cinfo)
{
    (void)cinfo; /* never print to stderr from a server */
}

static void dest_init(j_compress_ptr c)
{
    buf_dest *d = (buf_dest *)c->dest;
    d->pub.next_output_byte = d->chunk;
    d->pub.free_in_buffer = sizeof d->chunk;
}

static boolean dest_empty(j_compress_ptr c)
{
    buf_dest *d = (buf_dest *)c->dest;
    /* libjpeg calls this only when the chunk is full, whatever free_in_buffer says. */
    if (tly_buf_append(d->out, d->chunk, sizeof d->chunk) != 0)
        ERREXIT(c, JERR_OUT_OF_MEMORY);
    d->pub.next_output_byte = d->chunk;
    d->pub.free_in_buffer = sizeof d->chunk;
    return TRUE;
}

static void dest_term(j_compress_ptr c)
{
    buf_dest *d = (buf_dest *)c->dest;
    size_t n = sizeof d->chunk - d->pub.free_in_buffer;
    if (n && tly_buf_append(d->out, d->chunk, n) != 0)
        ERREXIT(c, JERR_OUT_OF_MEMORY);
}

static int encode_run(enc_ctx *ctx, const tly_thumb *t, int quality, tly_buf *out, int measure)
{
    if (setjmp(ctx->jerr.jb))
        return -1;
    jpeg_create_compress(&ctx->c);
    ctx->dest.pub.init_destination = dest_init;
    ctx->dest.pub.empty_output_buffer = dest_empty;
    ctx->dest.pub.term_destination = dest_term;
    ctx->dest.out = out;
    ctx->c.dest = &ctx->dest.pub;
    ctx->c.image_width = (JDIMENSION)t->w;
    ctx->c.image_height = (JDIMENSION)t->h;
    ctx->c.input_components = t->comps;
    ctx->c.in_color_space = t->comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ctx->c);
    jpeg_set_quality(&ctx->c, quality < 1 ? 1 : quality > 100 ? 100 : quality, TRUE);
    ctx->row = malloc((size_t)t->w * (size_t)t->comps);
    if (!ctx->row)
        ERREXIT(&ctx->c, JERR_OUT_OF_MEMORY);
    if (measure && !(ctx->gray = malloc((size_t)t->w * (size_t)t->h)))
        ERREXIT(&ctx->c, JERR_OUT_OF_MEMORY);
    jpeg_start_compress(&ctx->c, TRUE);
    size_t stride = (size_t)t->w * (size_t)t->comps;
    for (int y = 0; y < t->h; y++) {
        const uint64_t *s = t->sum + (size_t)y * stride;
        for (int x = 0; x < t->w; x++) {
            /* One reciprocal per box instead of a 64-bit division per sample. */
            double inv = 1.0 / ((double)t->col_span[x] * (double)t->row_span[y]);
            for (int c = 0; c < t->comps; c++) {
                size_t i = (size_t)x * (size_t)t->comps + (size_t)c;
                double v = (double)s[i] * inv + 0.5;
                ctx->row[i] = (JSAMPLE)(v > 255.0 ? 255.0 : v);
            }
        }
        if (ctx->gray) {   /* luminance, BT.601 weights in 8.8 fixed point */
            unsigned char *g = ctx->gray + (size_t)y * (size_t)t->w;
            const JSAMPLE *p = ctx->row;
            if (t->comps == 1)
                memcpy(g, p, (size_t)t->w);
            else
                for (int x = 0; x < t->w; x++, p += 3)
                    g[x] = (unsigned char)((77u * p[0] + 150u * p[1] + 29u * p[2] + 128u) >> 8);
        }
        JSAMPROW rp = ctx->row;
        jpeg_write_scanlines(&ctx->c, &rp, 1);
    }
    jpeg_finish_compress(&ctx->c);
    return 0;
}

int tly_thumb_encode_jpeg(const tly_thumb *t, int quality, tly_buf *out, tly_image_measures *measures,
                          tly_error *err)
{
    enc_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.c.err = jpeg_std_error(&ctx.jerr.pub);
    ctx.jerr.pub.error_exit = enc_error_exit;
    ctx.jerr.pub.output_message = enc_output_message;
    size_t start = out->len;
    int rc = encode_run(&ctx, t, quality, out, measures != NULL);
    jpeg_destroy_compress(&ctx.c); /* safe on a zeroed struct: checks cinfo->mem */
    free(ctx.row);
    if (rc == 0 && measures && tly_image_measure_gray(ctx.gray, t->w, t->h, measures, err) != 0) {
        free(ctx.gray);
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return -1;
    }
    free(ctx.gray);
    if (rc != 0) {
        /* Drop a partial thumbnail so out is as the caller gave it. */
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return tly_fail(err, TLY_E_INTERNAL, "thumbnail_failed", "cannot encode thumbnail: %s",
                        ctx.jerr.msg);
    }
    return 0;
}
