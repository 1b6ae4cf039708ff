/* control.h -- the controls a labeling template is made of.
 *
 * A template is {"controls":[{"name","type",...}, ...]}. Each control type lives in
 * its own file (control_<type>.c) and exposes one tly_control_type: a table of what
 * that control knows how to do. Today that is validating its definition in a
 * template and validating an answer's value against the definition and the item;
 * comparison with gold and aggregation are added to the same table by the quality
 * round, so adding a control never means touching the dispatcher or the engine.
 *
 * Called by annotate/template.c only; other folders go through template.h.
 */
#ifndef TALLY_ANNOTATE_CONTROL_H
#define TALLY_ANNOTATE_CONTROL_H

#include "core/error.h"

#include <jansson.h>

enum { TLY_FOR_IMAGE = 1, TLY_FOR_AUDIO = 2 };

typedef struct {
    const char *name;        /* "choice", "bbox", ... */
    unsigned media;          /* TLY_FOR_IMAGE | TLY_FOR_AUDIO: project kinds it works in */
    /* Keys this type accepts beyond the common ones (name, type, required, title,
     * description); NULL-terminated. */
    const char *const *keys;
    /* Checks the type-specific keys of def; err's message should name the key. */
    int (*validate_def)(json_t *def, tly_error *err);
    /* Checks one answer value (never NULL or JSON null) against def. media is the
     * item's media object ({"width","height"} / {"duration"}) or NULL when not known
     * yet (then only the shape is checked, not the bounds). */
    int (*validate_answer)(json_t *def, json_t *value, json_t *media, tly_error *err);
} tly_control_type;

const tly_control_type *tly_control_type_find(const char *name);
/* "choice, multi_choice, ..." for error messages. */
const char *tly_control_type_names(void);

/* Shared by several control types: def[key] must be a non-empty array of distinct
 * non-empty strings (at most max entries). */
int tly_control_check_string_set(json_t *def, const char *key, int required, size_t max,
                                 tly_error *err);

/* Shared answer checks. */
/* value must be a string in def[key] (an options / labels list); what names it. */
int tly_control_check_member(json_t *def, const char *key, json_t *value, const char *what,
                             tly_error *err);
/* obj[key] must be a finite number; into *out. */
int tly_control_number(json_t *obj, const char *key, double *out, tly_error *err);
/* The item's width / height / duration from its media object, or -1 if unknown. */
double tly_control_media_dim(json_t *media, const char *key);

extern const tly_control_type tly_control_choice;
extern const tly_control_type tly_control_multi_choice;
extern const tly_control_type tly_control_text;
extern const tly_control_type tly_control_bbox;
extern const tly_control_type tly_control_polygon;
extern const tly_control_type tly_control_keypoints;
extern const tly_control_type tly_control_audio_segments;
extern const tly_control_type tly_control_transcription;

#endif
