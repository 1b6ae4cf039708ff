/* control_choice.c -- "choice" (one of the options) and "multi_choice" (a subset).
 *
 * Definition: {"options":["cat","dog"]}; multi_choice may bound how many options an
 * answer picks with "min" / "max".
 */
#include "annotate/control.h"
#include "core/json.h"

static int validate_choice(json_t *def, tly_error *err)
{
    return tly_control_check_string_set(def, "options", 1, 1000, err);
}

static int validate_multi_choice(json_t *def, tly_error *err)
{
    if (validate_choice(def, err) < 0)
        return -1;
    int64_t n = (int64_t)json_array_size(json_object_get(def, "options"));
    int64_t lo = 0, hi = n;
    if (tly_json_get_int(def, "min", 0, 0, n, &lo, err) < 0 ||
        tly_json_get_int(def, "max", 0, 1, n, &hi, err) < 0)
        return -1;
    if (lo > hi)
        return tly_fail(err, TLY_E_INVALID, "invalid_template", "'min' is greater than 'max'");
    return 0;
}

static int answer_choice(json_t *def, json_t *value, json_t *media, tly_error *err)
{
    return tly_control_check_member(def, "options", value, "the choice", err);
}

static int answer_multi_choice(json_t *def, json_t *value, json_t *media, tly_error *err)
{
    if (!json_is_array(value))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "a multi_choice answer is an array of options");
    size_t i, n = json_array_size(value);
    json_t *v;
    json_array_foreach(value, i, v) {
        if (tly_control_check_member(def, "options", v, "option", err) < 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (json_equal(v, json_array_get(value, j)))
                return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "option '%s' is picked twice",
                                json_string_value(v));
    }
    json_t *lo = json_object_get(def, "min"), *hi = json_object_get(def, "max");
    if ((lo && (json_int_t)n < json_integer_value(lo)) || (hi && (json_int_t)n > json_integer_value(hi)))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "%zu options picked; the control wants %lld to %lld",
                        n, lo ? (long long)json_integer_value(lo) : 0LL,
                        hi ? (long long)json_integer_value(hi) : (long long)json_array_size(json_object_get(def, "options")));
    return 0;
}

static const char *const choice_keys[] = {"options", NULL};
static const char *const multi_keys[] = {"options", "min", "max", NULL};

const tly_control_type tly_control_choice = {
    .name = "choice", .media = TLY_FOR_IMAGE | TLY_FOR_AUDIO, .keys = choice_keys,
    .validate_def = validate_choice, .validate_answer = answer_choice,
};

const tly_control_type tly_control_multi_choice = {
    .name = "multi_choice", .media = TLY_FOR_IMAGE | TLY_FOR_AUDIO, .keys = multi_keys,
    .validate_def = validate_multi_choice, .validate_answer = answer_multi_choice,
};
