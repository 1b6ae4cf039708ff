/* control.c -- the registry of control types and helpers they share. */
#include "annotate/control.h"

#include <math.h>
#include <string.h>

static const tly_control_type *const registry[] = {
    &tly_control_choice,         &tly_control_multi_choice, &tly_control_text,
    &tly_control_bbox,           &tly_control_polygon,      &tly_control_keypoints,
    &tly_control_audio_segments, &tly_control_transcription,
};

const tly_control_type *tly_control_type_find(const char *name)
{
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

const char *tly_control_type_names(void)
{
    return "choice, multi_choice, text, bbox, polygon, keypoints, audio_segments, transcription";
}

int tly_control_check_string_set(json_t *def, const char *key, int required, size_t max,
                                 tly_error *err)
{
    json_t *arr = json_object_get(def, key);
    if (!arr) {
        if (required)
            return tly_fail(err, TLY_E_INVALID, "invalid_template", "'%s' is required", key);
        return 0;
    }
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return tly_fail(err, TLY_E_INVALID, "invalid_template", "'%s' must be a non-empty array of strings", key);
    if (json_array_size(arr) > max)
        return tly_fail(err, TLY_E_INVALID, "invalid_template", "'%s' has more than %zu entries", key, max);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *s = json_string_value(v);
        if (!s || !s[0] || strlen(s) > 200)
            return tly_fail(err, TLY_E_INVALID, "invalid_template",
                            "'%s'[%zu] must be a non-empty string of at most 200 bytes", key, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(s, json_string_value(json_array_get(arr, j))) == 0)
                return tly_fail(err, TLY_E_INVALID, "invalid_template", "'%s' lists '%s' twice", key, s);
    }
    return 0;
}

int tly_control_check_member(json_t *def, const char *key, json_t *value, const char *what,
                             tly_error *err)
{
    const char *v = json_string_value(value);
    if (!v)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "%s must be a string", what);
    size_t i;
    json_t *opt;
    json_array_foreach(json_object_get(def, key), i, opt)
        if (strcmp(json_string_value(opt), v) == 0)
            return 0;
    return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "%s '%.100s' is not one of the control's %s",
                    what, v, key);
}

int tly_control_number(json_t *obj, const char *key, double *out, tly_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "'%s' must be a number", key);
    *out = json_number_value(v);
    return 0;
}

double tly_control_media_dim(json_t *media, const char *key)
{
    json_t *v = media ? json_object_get(media, key) : NULL;
    return json_is_number(v) ? json_number_value(v) : -1;
}
