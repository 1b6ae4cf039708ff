/* template.h -- the template engine's public face: checking templates and the
 * answers (and gold answers) that must fit them.
 *
 * Used by annotate/project.c when a project is created, by qa/ for gold answers and
 * by ingest/ for gold answers arriving in a manifest. Errors are TLY_E_INVALID with
 * code "invalid_template" and a message naming the control and the problem.
 */
#ifndef TALLY_ANNOTATE_TEMPLATE_H
#define TALLY_ANNOTATE_TEMPLATE_H

#include "core/error.h"

#include <jansson.h>

/* media: "image" or "audio" (the project's kind). */
int tly_template_validate(json_t *tmpl, const char *media, tly_error *err);

/* An answer is an object keyed by control name. Checks that every key names a control
 * of the template, that every required control is present (a non-required one may be
 * absent or null), and each value against its control: options and labels from the
 * template, and -- when media (the item's media object) is given -- boxes and points
 * inside the image, segments inside the audio. TLY_E_UNPROCESSABLE with code
 * "invalid_answer" and a message naming the control. */
int tly_template_validate_answer(json_t *tmpl, json_t *answer, json_t *media, tly_error *err);

#endif
