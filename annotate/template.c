/* template.c -- validates templates by delegating each control to its type. */
#include "annotate/template.h"
#include "annotate/control.h"
#include "core/json.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define MAX_CONTROLS 64

static int valid_control_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || !isalpha((unsigned char)s[0]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

static int validate_control(json_t *def, size_t index, unsigned media_bit, tly_error *err)
{
    if (!json_is_object(def))
        return tly_fail(err, TLY_E_INVALID, "invalid_template", "template: control %zu must be an object", index);
    const char *name = NULL, *type = NULL;
    int required = 0;
    tly_error sub;   /* details from helpers, re-issued under this control's name */
    if (tly_json_get_string(def, "name", 1, &name, &sub) < 0 ||
        tly_json_get_string(def, "type", 1, &type, &sub) < 0 ||
        tly_json_get_bool(def, "required", 0, &required, &sub) < 0)
        return tly_fail(err, TLY_E_INVALID, "invalid_template", "template: control %zu: %s", index,
                        sub.message);
    if (!valid_control_name(name))
        return tly_fail(err, TLY_E_INVALID, "invalid_template",
                        "template: control %zu: name '%s' must start with a letter and use only letters, digits, '_' or '-' (at most 64)",
                        index, name);
    const tly_control_type *ct = tly_control_type_find(type);
    if (!ct)
        return tly_fail(err, TLY_E_INVALID, "invalid_template",
                        "template: control '%s': unknown type '%s' (known: %s)", name, type,
                        tly_control_type_names());
    if (!(ct->media & media_bit))
        return tly_fail(err, TLY_E_INVALID, "invalid_template",
                        "template: control '%s': type '%s' does not apply to %s projects", name, type,
                        media_bit == TLY_FOR_IMAGE ? "image" : "audio");
    const char *key;
    json_t *v;
    json_object_foreach(def, key, v) {
        static const char *const common[] = {"name", "type", "required", "title", "description", NULL};
        int known = 0;
        for (const char *const *k = common; *k && !known; k++)
            known = strcmp(*k, key) == 0;
        for (const char *const *k = ct->keys; *k && !known; k++)
            known = strcmp(*k, key) == 0;
        if (!known)
            return tly_fail(err, TLY_E_INVALID, "invalid_template",
                            "template: control '%s': unknown key '%s' for type '%s'", name, key, type);
    }
    if (ct->validate_def(def, &sub) < 0)
        return tly_fail(err, TLY_E_INVALID, "invalid_template", "template: control '%s': %s", name,
                        sub.message);
    return 0;
}

int tly_template_validate(json_t *tmpl, const char *media, tly_error *err)
{
    unsigned media_bit = strcmp(media, "audio") == 0 ? TLY_FOR_AUDIO : TLY_FOR_IMAGE;
    if (!json_is_object(tmpl))
        return tly_fail(err, TLY_E_INVALID, "invalid_template", "template must be an object with a 'controls' array");
    static const char *const keys[] = {"controls", "title", NULL};
    tly_error sub;
    if (tly_json_only_keys(tmpl, "template", keys, &sub) < 0)
        return tly_fail(err, TLY_E_INVALID, "invalid_template", "%s", sub.message);
    json_t *controls = json_object_get(tmpl, "controls");
    if (!json_is_array(controls) || json_array_size(controls) == 0)
        return tly_fail(err, TLY_E_INVALID, "invalid_template", "template: 'controls' must be a non-empty array");
    if (json_array_size(controls) > MAX_CONTROLS)
        return tly_fail(err, TLY_E_INVALID, "invalid_template", "template: more than %d controls", MAX_CONTROLS);
    size_t i;
    json_t *def;
    json_array_foreach(controls, i, def) {
        if (validate_control(def, i, media_bit, err) < 0)
            return -1;
        const char *name = json_string_value(json_object_get(def, "name"));
        for (size_t j = 0; j < i; j++)
            if (strcmp(name, json_string_value(json_object_get(json_array_get(controls, j), "name"))) == 0)
                return tly_fail(err, TLY_E_INVALID, "invalid_template", "template: two controls are named '%s'", name);
    }
    return 0;
}

static json_t *find_control(json_t *tmpl, const char *name)
{
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(tmpl, "controls"), i, def)
        if (strcmp(json_string_value(json_object_get(def, "name")), name) == 0)
            return def;
    return NULL;
}

int tly_template_validate_answer(json_t *tmpl, json_t *answer, json_t *media, tly_error *err)
{
    if (!json_is_object(answer))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "an answer must be an object keyed by control name");
    const char *key;
    json_t *v;
    json_object_foreach(answer, key, v)
        if (!find_control(tmpl, key))
            return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "answer has no control named '%s'", key);
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(tmpl, "controls"), i, def) {
        const char *name = json_string_value(json_object_get(def, "name"));
        json_t *value = json_object_get(answer, name);
        if (!value || json_is_null(value)) {
            if (json_is_true(json_object_get(def, "required")))
                return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "control '%s' is required", name);
            continue;
        }
        const tly_control_type *ct = tly_control_type_find(json_string_value(json_object_get(def, "type")));
        tly_error sub;
        if (ct && ct->validate_answer(def, value, media, &sub) < 0)
            return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "control '%s': %s", name, sub.message);
    }
    return 0;
}
