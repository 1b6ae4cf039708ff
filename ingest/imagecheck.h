/* imagecheck.h -- perceptual hash and quality measures of an image, and the project's
 * verdict on them (the image half of ingest's `check` step, after media.h's probe).
 *
 * The measures are computed from a small grayscale reduction of the image: the
 * thumbnail's box sums (thumbnail.h), which the decoders fill anyway, so no image is
 * decoded twice. imagecheck.c explains the hash and the measures; this header is
 * what ingest/pipeline.c and the tests use.
 */
#ifndef TALLY_INGEST_IMAGECHECK_H
#define TALLY_INGEST_IMAGECHECK_H

#include "core/error.h"
#include "ingest/media.h"

#include <jansson.h>
#include <stdint.h>

/* Flags, as bits of tly_image_check.flags (storage) and of tly_image_flags(). */
#define TLY_IMAGE_NEAR_DUPLICATE 0x01u
#define TLY_IMAGE_BLANK 0x02u
#define TLY_IMAGE_BLURRED 0x04u
#define TLY_IMAGE_OVEREXPOSED 0x08u
#define TLY_IMAGE_UNDEREXPOSED 0x10u
#define TLY_IMAGE_FLAG_COUNT 5

/* The flag of bit index i (0..TLY_IMAGE_FLAG_COUNT-1): its bit, its name in the API
 * ("near_duplicate", "blank", "blurred", "overexposed", "underexposed") and the
 * per-file error code of a rejection ("near_duplicate", "blank_image",
 * "blurry_image", "overexposed_image", "underexposed_image"). */
unsigned tly_image_flag_bit(int i);
const char *tly_image_flag_name(int i);
const char *tly_image_flag_code(int i);

/* What a project does about a check (workflow.media_checks.near_duplicate / quality). */
typedef enum { TLY_CHECK_FLAG = 0, TLY_CHECK_REJECT, TLY_CHECK_OFF } tly_check_mode;

/* A project's settings (workflow section "media_checks"; annotate/workflow.c holds
 * the defaults). */
typedef struct {
    tly_check_mode near_duplicate;
    int near_duplicate_distance;  /* max Hamming distance of 64 bits, 0..TLY_PHASH_MAX_DISTANCE */
    tly_check_mode quality;
    double blank_stddev;          /* blank: luminance standard deviation below this (0..255 scale) */
    double blur_sharpness;        /* blurred: sharpness below this */
    double overexposed_fraction;  /* overexposed: at least this fraction of pixels >= 240 */
    double underexposed_fraction; /* underexposed: at least this fraction of pixels <= 15 */
} tly_image_check_settings;

/* Largest near_duplicate_distance the banded search in the store supports. */
#define TLY_PHASH_MAX_DISTANCE 11

/* Reads the settings from a project's workflow (missing keys: defaults). */
void tly_image_check_settings_from_workflow(json_t *workflow, tly_image_check_settings *out);

/* Measures of a w x h 8-bit grayscale image (row-major, no padding) into out
 * (has_measures set). 0, or -1 (out of memory) with err filled. */
int tly_image_measure_gray(const unsigned char *gray, int w, int h, tly_image_measures *out,
                           tly_error *err);

/* Hamming distance of two 64-bit hashes. */
int tly_phash_distance(uint64_t a, uint64_t b);

/* The quality flags (BLANK, BLURRED, OVEREXPOSED, UNDEREXPOSED) the measures earn
 * under the settings; 0 when settings->quality is OFF. A blank image is not also
 * called blurred. */
unsigned tly_image_quality_flags(const tly_image_measures *m, const tly_image_check_settings *s);

/* The error code and a message for rejecting a file with these quality flags (the
 * first of blank, overexposed, underexposed, blurred). Returns -1 with err filled
 * (TLY_E_UNPROCESSABLE), like the probe's rejections. */
int tly_image_quality_reject(const tly_image_measures *m, unsigned flags,
                             const tly_image_check_settings *s, tly_error *err);

/* The item's media.quality object: {"phash":"16 hex digits","sharpness","mean",
 * "stddev","clipped_high","clipped_low"} plus, when the quality check is on,
 * "blank","blurred","overexposed","underexposed" booleans. New reference or NULL. */
json_t *tly_image_quality_json(const tly_image_measures *m, unsigned flags,
                               const tly_image_check_settings *s);

/* Records a near duplicate in a media object with a "quality" member (idempotent):
 * media.quality.near_duplicate = true, .near_duplicate_of = item_id,
 * .near_duplicate_distance. item_id 0 clears them (near_duplicate false if present). */
void tly_image_quality_mark_near_duplicate(json_t *media, int64_t item_id, int distance);

#endif
