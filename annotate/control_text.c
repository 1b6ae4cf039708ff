/* control_text.c -- "text" (free text about any item) and "transcription" (what is
 * said in an audio item). Both may cap the answer's length with "max_length". */
#include "annotate/control.h"
#include "core/json.h"

static int validate_text(json_t *def, tly_error *err)
{
    int64_t max_len = 0;
    return tly_json_get_int(def, "max_length", 0, 1, 1000000, &max_len, err) < 0 ? -1 : 0;
}

static const char *const text_keys[] = {"max_length", "placeholder", NULL};
static const char *const transcription_keys[] = {"max_length", "language", NULL};

const tly_control_type tly_control_text = {
    .name = "text", .media = TLY_FOR_IMAGE | TLY_FOR_AUDIO, .keys = text_keys,
    .validate_def = validate_text,
};

const tly_control_type tly_control_transcription = {
    .name = "transcription", .media = TLY_FOR_AUDIO, .keys = transcription_keys,
    .validate_def = validate_text,
};
