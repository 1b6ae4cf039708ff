/* answer.h -- what `tally work` asks for one template control, and how it turns the
 * line a worker typed into that control's answer value.
 *
 * Per control type (shapes as in docs/API.md, "gold answers"):
 *   choice          a number from the listed options or the option's text -> "cat"
 *   multi_choice    comma-separated numbers or option texts -> ["a","b"]; "[]" for none
 *   text, transcription   the line itself -> "..."
 *   bbox, polygon, keypoints, audio_segments   a JSON array, shown by an example
 * Only the shape a person can get wrong while typing is checked here (a number out of
 * range, a JSON syntax error, an object where an array belongs); the server validates
 * the value against the template and the item and answers 422 with its own message,
 * which the caller shows.
 */
#ifndef TALLY_CLI_ANSWER_H
#define TALLY_CLI_ANSWER_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* Print how to answer control (a template control object) to f: name, type, whether
 * it is required, title/description, numbered options or an example of the JSON
 * shape with the allowed labels and, from media (the item's media object, may be
 * NULL), the bounds (image size, audio duration). */
void tc_answer_describe(FILE *f, const json_t *control, const json_t *media);

/* Parse line (no trailing newline) for control. Returns 1 with a new reference in
 * *value, 0 when the line is empty (no answer: the caller decides whether that is
 * allowed), or -1 with a one-line reason in msg (msgsz bytes). */
int tc_answer_parse(const json_t *control, const char *line, json_t **value, char *msg,
                    size_t msgsz);

/* 1 if the control is marked "required": true. */
int tc_answer_required(const json_t *control);

#endif
