/* json.c -- see json.h. */
#include "core/json.h"

#include <math.h>
#include <string.h>

int tly_json_parse_object(const char *data, size_t len, json_t **out, tly_error *err)
{
    json_error_t jerr;
    json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return tly_fail(err, TLY_E_INVALID, "invalid_json", "invalid JSON at line %d column %d: %s",
                        jerr.line, jerr.column, jerr.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return tly_fail(err, TLY_E_INVALID, "invalid_json", "the request body must be a JSON object");
    }
    *out = j;
    return 0;
}

static int absent(const char *key, int required, tly_error *err)
{
    if (required)
        return tly_fail(err, TLY_E_INVALID, "missing_field", "field '%s' is required", key);
    return 1;
}

static int wrong(const char *key, const char *want, tly_error *err)
{
    return tly_fail(err, TLY_E_INVALID, "invalid_field", "field '%s' must be %s", key, want);
}

int tly_json_get_string(json_t *obj, const char *key, int required, const char **out,
                        tly_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return absent(key, required, err);
    if (!json_is_string(v))
        return wrong(key, "a string", err);
    *out = json_string_value(v);
    return 0;
}

int tly_json_get_int(json_t *obj, const char *key, int required, int64_t min, int64_t max,
                     int64_t *out, tly_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return absent(key, required, err);
    if (!json_is_integer(v))
        return wrong(key, "an integer", err);
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return tly_fail(err, TLY_E_INVALID, "invalid_field", "field '%s' must be between %lld and %lld",
                        key, (long long)min, (long long)max);
    *out = x;
    return 0;
}

int tly_json_get_number(json_t *obj, const char *key, int required, double min, double max,
                        double *out, tly_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return absent(key, required, err);
    if (!json_is_number(v))
        return wrong(key, "a number", err);
    double x = json_number_value(v);
    if (!isfinite(x) || x < min || x > max)
        return tly_fail(err, TLY_E_INVALID, "invalid_field", "field '%s' must be between %g and %g",
                        key, min, max);
    *out = x;
    return 0;
}

int tly_json_get_bool(json_t *obj, const char *key, int required, int *out, tly_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return absent(key, required, err);
    if (!json_is_boolean(v))
        return wrong(key, "true or false", err);
    *out = json_is_true(v);
    return 0;
}

int tly_json_get_object(json_t *obj, const char *key, int required, json_t **out,
                        tly_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return absent(key, required, err);
    if (!json_is_object(v))
        return wrong(key, "an object", err);
    *out = v;
    return 0;
}

int tly_json_get_array(json_t *obj, const char *key, int required, json_t **out,
                       tly_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return absent(key, required, err);
    if (!json_is_array(v))
        return wrong(key, "an array", err);
    *out = v;
    return 0;
}

int tly_json_only_keys(json_t *obj, const char *what, const char *const *allowed,
                       tly_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int known = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0) {
                known = 1;
                break;
            }
        if (!known)
            return tly_fail(err, TLY_E_INVALID, "unknown_field", "%s: unknown field '%s'", what, key);
    }
    return 0;
}

char *tly_json_dump(const json_t *j)
{
    /* 15 significant digits: 0.1 prints as 0.1, not 0.10000000000000001. */
    return json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
}

int tly_json_string_index(json_t *arr, json_t *v)
{
    const char *s = json_string_value(v);
    size_t i;
    json_t *o;
    if (!s)
        return -1;
    json_array_foreach(arr, i, o) {
        const char *os = json_string_value(o);
        if (os && strcmp(os, s) == 0)
            return (int)i;
    }
    return -1;
}
