/* thumbnail.h -- the box-filter thumbnail builder and the per-format probes behind
 * tly_media_probe_file (private to ingest/; media.h is the public contract).
 *
 * Decoders hand over the pixels of the (possibly DCT-scaled) source image row by row,
 * or for Adam7-interlaced PNGs pass by pass as sparse rows; each pixel is added to the
 * box (average) of the thumbnail pixel it falls in. So a thumbnail never needs the
 * whole source image in memory: only the thumbnail-sized sums, whatever the source's
 * size or pixel order. Every source pixel is added exactly once, so each box's pixel
 * count is known in advance (columns in its span times rows in its span).
 */
#ifndef TALLY_INGEST_THUMBNAIL_H
#define TALLY_INGEST_THUMBNAIL_H

#include "core/buf.h"
#include "core/error.h"
#include "ingest/media.h"

#include <stdint.h>

typedef struct {
    int src_w, src_h;     /* pixels fed in */
    int w, h;             /* thumbnail size, w <= src_w, h <= src_h */
    int comps;            /* 1 (gray) or 3 (RGB) */
    uint64_t *sum;        /* w * h * comps sums */
    uint32_t *col_span;   /* w: how many source columns fall in each thumbnail column */
    uint32_t *row_span;   /* h: same for rows */
    uint32_t *col_of;     /* src_w: the thumbnail column of each source column */
} tly_thumb;

/* Size of a thumbnail of a src_w x src_h image: the longest side becomes max_side
 * (or stays as is if already smaller), the other keeps the aspect ratio, at least 1. */
void tly_thumb_size(int src_w, int src_h, int max_side, int *w, int *h);

/* Start a w x h thumbnail of a src_w x src_h pixel grid (w, h are clamped to the
 * source size). Returns 0, or -1 (TLY_E_INTERNAL) if out of memory. */
int tly_thumb_init(tly_thumb *t, int src_w, int src_h, int w, int h, int comps, tly_error *err);

/* Add n pixels of source row y at columns x0, x0 + dx, x0 + 2 dx, ... Pixels are
 * `comps` bytes each, packed. */
void tly_thumb_add(tly_thumb *t, int y, int x0, int dx, int n, const unsigned char *px);

/* Average the boxes and append the thumbnail, JPEG-encoded at `quality`, to out.
 * If measures is not NULL, also fill it with the perceptual hash and quality measures
 * (imagecheck.c) of the thumbnail's luminance, taken from the same averaged rows: the
 * `check` step's view of the image at no second decode and no second pass over the
 * sums. On failure out is left as it was. */
int tly_thumb_encode_jpeg(const tly_thumb *t, int quality, tly_buf *out, tly_image_measures *measures,
                          tly_error *err);

void tly_thumb_free(tly_thumb *t);

/* The per-format probes, called by tly_media_probe_file once the format is known
 * from the content. Each fully decodes the file, fills info and the preview, and
 * fails with the codes listed in media.h. */
int tly_probe_jpeg(const char *path, const tly_probe_opts *opts, tly_media_info *info,
                   tly_buf *thumb, tly_error *err);
int tly_probe_png(const char *path, const tly_probe_opts *opts, tly_media_info *info,
                  tly_buf *thumb, tly_error *err);
/* format is the sniffed "wav" / "flac" / "ogg"; libsndfile must agree with it. */
int tly_probe_audio(const char *path, const char *format, const tly_probe_opts *opts,
                    tly_media_info *info, json_t **waveform, tly_error *err);

#endif
