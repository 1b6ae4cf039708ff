/* control_audio.c -- "audio_segments": labeled time spans of an audio item, in
 * seconds. The definition lists the labels a span may carry. */
#include "annotate/control.h"

static int validate_segments(json_t *def, tly_error *err)
{
    return tly_control_check_string_set(def, "labels", 1, 1000, err);
}

static const char *const segment_keys[] = {"labels", NULL};

const tly_control_type tly_control_audio_segments = {
    .name = "audio_segments", .media = TLY_FOR_AUDIO, .keys = segment_keys,
    .validate_def = validate_segments,
};
