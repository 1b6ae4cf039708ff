/* control_audio.c -- "audio_segments": labeled time spans of an audio item, in
 * seconds. The definition lists the labels a span may carry. */
#include "annotate/control.h"
#include "core/json.h"

static int validate_segments(json_t *def, tly_error *err)
{
    return tly_control_check_string_set(def, "labels", 1, 1000, err);
}

/* [{"label","start","end"}] in seconds: 0 <= start < end <= the item's duration. */
static int answer_segments(json_t *def, json_t *value, json_t *media, tly_error *err)
{
    static const char *const keys[] = {"label", "start", "end", NULL};
    if (!json_is_array(value) || json_array_size(value) > 100000)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "the answer must be an array of segments");
    double duration = tly_control_media_dim(media, "duration");
    size_t i;
    json_t *seg;
    json_array_foreach(value, i, seg) {
        tly_error sub;
        double start, end;
        if (!json_is_object(seg) || tly_json_only_keys(seg, "segment", keys, &sub) < 0 ||
            tly_control_check_member(def, "labels", json_object_get(seg, "label"), "label", &sub) < 0 ||
            tly_control_number(seg, "start", &start, &sub) < 0 || tly_control_number(seg, "end", &end, &sub) < 0)
            return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "segment %zu: %s", i,
                            json_is_object(seg) ? sub.message : "must be an object");
        if (start < 0 || start >= end || (duration >= 0 && end > duration + 1e-6))
            return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer",
                            "segment %zu (%g..%g s) must have 0 <= start < end <= %g", i, start, end, duration);
    }
    return 0;
}

static const char *const segment_keys[] = {"labels", NULL};

const tly_control_type tly_control_audio_segments = {
    .name = "audio_segments", .media = TLY_FOR_AUDIO, .keys = segment_keys,
    .validate_def = validate_segments, .validate_answer = answer_segments,
};
