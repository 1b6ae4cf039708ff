/* media.h -- probing, validating and previewing one media file.
 *
 * The `check` step of ingest: given a file on local disk and the name it came with,
 * decide whether it is a good image or audio file for the project, and if so
 * describe it (format, dimensions or duration) and make its preview (a JPEG
 * thumbnail for images, waveform peaks for audio). Nothing here touches the
 * database, the blob store or HTTP; ingest/pipeline.c does that around it.
 *
 * Validation is a full read: JPEGs are entropy-decoded (with libjpeg-turbo's scaled
 * DCT, which also yields the thumbnail cheaply), PNGs are decoded row by row, audio is
 * read to the end with libsndfile. So truncated and corrupt files are caught, and
 * memory stays bounded by one image row / one audio chunk whatever the file's size.
 *
 * Rejections set err->status = TLY_E_UNPROCESSABLE and err->code to one of:
 *   empty_file          0 bytes
 *   too_large           over opts->max_bytes, or over opts->max_pixels
 *   unsupported_format  not JPEG/PNG/WAV/FLAC/OGG (e.g. a text file named .wav)
 *   extension_mismatch  content is a supported format other than the extension says
 *   wrong_media         an image in an audio project or vice versa
 *   truncated           ends early
 *   corrupt             decoder error inside the data
 * and err->message says what was wrong in words. I/O failures use TLY_E_IO.
 * Safe to call from many threads at once.
 */
#ifndef TALLY_INGEST_MEDIA_H
#define TALLY_INGEST_MEDIA_H

#include "core/buf.h"
#include "core/error.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { TLY_MEDIA_IMAGE = 1, TLY_MEDIA_AUDIO = 2 } tly_media_kind;

/* "image" / "audio" <-> kind; parse returns -1 if unknown. */
const char *tly_media_kind_name(tly_media_kind kind);
int tly_media_kind_parse(const char *name, tly_media_kind *out);

/* Images: perceptual hash and quality measures, computed from the thumbnail's box
 * sums (ingest/imagecheck.c explains them). */
typedef struct {
    uint64_t phash;           /* 64-bit DCT hash of a 32x32 luminance reduction */
    double mean;              /* mean luminance, 0..255 */
    double stddev;            /* luminance standard deviation (contrast) */
    double sharpness;         /* variance of the Laplacian at thumbnail scale */
    double clipped_high;      /* fraction of pixels with luminance >= 240 */
    double clipped_low;       /* fraction of pixels with luminance <= 15 */
} tly_image_measures;

typedef struct {
    tly_media_kind kind;
    char format[8];           /* "jpeg" "png" | "wav" "flac" "ogg" */
    int width, height;        /* images */
    int channels;             /* image components (1 gray, 3 RGB, 4 RGBA) or audio channels */
    double duration;          /* audio, seconds */
    int sample_rate;          /* audio, Hz */
    int64_t frames;           /* audio sample frames */
    int has_measures;         /* images probed with a thumbnail: measures is set */
    tly_image_measures measures;
} tly_media_info;

typedef struct {
    uint64_t max_bytes;       /* 0 = no limit */
    uint64_t max_pixels;      /* 0 = no limit; decompression-bomb guard */
    int thumb_max;            /* longest thumbnail side in pixels, e.g. 256 */
    int thumb_quality;        /* JPEG quality of thumbnails, e.g. 85 */
    int waveform_buckets;     /* number of peak pairs, e.g. 800 */
} tly_probe_opts;

void tly_probe_opts_default(tly_probe_opts *opts);

/* Format implied by content (first bytes), or NULL if none we support. */
const char *tly_media_sniff(const unsigned char *head, size_t n);
/* Format implied by a file name's extension (".jpg" -> "jpeg", ".wav" -> "wav"),
 * or NULL for no / an unknown extension. */
const char *tly_media_format_for_name(const char *name);
tly_media_kind tly_media_kind_of_format(const char *format);

/* Probe and fully validate the file at path, named `name` by its uploader, for a
 * project of media kind `expected`. On success fills info and:
 *   - images: appends a JPEG thumbnail (longest side <= opts->thumb_max, aspect kept)
 *     to thumb if thumb != NULL, and then also fills info->measures (has_measures);
 *   - audio: sets *waveform (if not NULL) to a new JSON object in audiowaveform's
 *     format: {"version":2,"channels":1,"sample_rate":R,"samples_per_pixel":S,
 *     "bits":8,"length":N,"duration":D,"data":[min0,max0,min1,max1,...]} with values
 *     in -128..127, channels mixed to their extremes.
 * Returns 0, or -1 with err filled (see the codes above). */
int tly_media_probe_file(const char *path, const char *name, tly_media_kind expected,
                         const tly_probe_opts *opts, tly_media_info *info, tly_buf *thumb,
                         json_t **waveform, tly_error *err);

/* {"format","width","height","channels"} or {"format","duration","sample_rate",
 * "channels","frames"} -- the item's "media" object. New reference. */
json_t *tly_media_info_json(const tly_media_info *info);

#endif
