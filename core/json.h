/* json.h -- small helpers over jansson for reading untrusted JSON.
 *
 * Every request body and stored JSON column goes through jansson. These helpers
 * turn "field missing / wrong type / out of range" into a tly_error with status
 * TLY_E_INVALID and a message naming the field, so handlers never hand-roll checks.
 * Getters return 0 on success, 1 when an optional field is absent (out untouched),
 * and -1 (err filled) when the field is present but wrong.
 */
#ifndef TALLY_CORE_JSON_H
#define TALLY_CORE_JSON_H

#include "core/error.h"

#include <jansson.h>
#include <stdint.h>

/* Parse a complete JSON text; the top level must be an object. */
int tly_json_parse_object(const char *data, size_t len, json_t **out, tly_error *err);

int tly_json_get_string(json_t *obj, const char *key, int required, const char **out,
                        tly_error *err);
int tly_json_get_int(json_t *obj, const char *key, int required, int64_t min, int64_t max,
                     int64_t *out, tly_error *err);
int tly_json_get_number(json_t *obj, const char *key, int required, double min, double max,
                        double *out, tly_error *err);
int tly_json_get_bool(json_t *obj, const char *key, int required, int *out, tly_error *err);
/* Borrowed reference to an object / array member. */
int tly_json_get_object(json_t *obj, const char *key, int required, json_t **out,
                        tly_error *err);
int tly_json_get_array(json_t *obj, const char *key, int required, json_t **out,
                       tly_error *err);

/* Fail with TLY_E_INVALID naming the first key of obj not in the NULL-terminated list. */
int tly_json_only_keys(json_t *obj, const char *what, const char *const *allowed,
                       tly_error *err);

/* Compact, key-order-preserving dump; caller frees. NULL on out-of-memory. */
char *tly_json_dump(const json_t *j);
/* The index of the string value v in arr (an array of strings, e.g. a choice
 * control's options), or -1 when v is not a string or not there. */
int tly_json_string_index(json_t *arr, json_t *v);

#endif
