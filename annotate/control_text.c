/* control_text.c -- "text" (free text about any item) and "transcription" (what is
 * said in an audio item). Both may cap the answer's length with "max_length". */
#include "annotate/control.h"
#include "core/json.h"

static int validate_text(json_t *def, tly_error *err)
{
    int64_t max_len = 0;
    return tly_json_get_int(def, "max_length", 0, 1, 1000000, &max_len, err) < 0 ? -1 : 0;
}

static int answer_text(json_t *def, json_t *value, json_t *media, tly_error *err)
{
    if (!json_is_string(value))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "the answer must be a string");
    json_t *max_len = json_object_get(def, "max_length");
    size_t len = json_string_length(value);
    if (max_len && (json_int_t)len > json_integer_value(max_len))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "the text is %zu bytes; at most %lld allowed", len,
                        (long long)json_integer_value(max_len));
    return 0;
}

static const char *const text_keys[] = {"max_length", "placeholder", NULL};
static const char *const transcription_keys[] = {"max_length", "language", NULL};

const tly_control_type tly_control_text = {
    .name = "text", .media = TLY_FOR_IMAGE | TLY_FOR_AUDIO, .keys = text_keys,
    .validate_def = validate_text, .validate_answer = answer_text,
};

const tly_control_type tly_control_transcription = {
    .name = "transcription", .media = TLY_FOR_AUDIO, .keys = transcription_keys,
    .validate_def = validate_text, .validate_answer = answer_text,
};
