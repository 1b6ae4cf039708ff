/* project.h -- creating and describing projects (the unit a manager sets up: media
 * kind, labeling template, workflow of quality rounds, guidelines).
 *
 * Called by server/ route handlers. Requests arrive here as parsed JSON; this file
 * validates them (template via template.h, workflow with defaults filled in) and
 * stores them via storage/store.h. Output JSON is the API's project object.
 */
#ifndef TALLY_ANNOTATE_PROJECT_H
#define TALLY_ANNOTATE_PROJECT_H

#include "core/error.h"
#include "storage/store.h"

#include <jansson.h>

/* Validates workflow (may be NULL = all defaults) and returns a new object with every
 * default filled in, or NULL with err set (TLY_E_INVALID naming the field). */
json_t *tly_workflow_normalize(json_t *workflow, tly_error *err);
/* A workflow setting (section NULL = top level), or its default when the stored
 * workflow predates the setting. Booleans read as 0 / 1. */
double tly_workflow_number(json_t *workflow, const char *section, const char *key);
const char *tly_workflow_string(json_t *workflow, const char *section, const char *key);

/* body: {"name","media","template","workflow"?,"guidelines"?}. On success *out is the
 * stored project (caller clears it). */
int tly_project_create(tly_store *st, json_t *body, int64_t created_by, tly_project *out,
                       tly_error *err);

/* body {"name"?,"guidelines"?,"workflow"?}: the workflow is merged key by key into
 * the current one (sections too) and validated as at creation. *out is the result. */
int tly_project_update(tly_store *st, int64_t id, json_t *body, tly_project *out, tly_error *err);
/* "active" (hand out tasks) or "paused" (hand out none; leases given stay valid). */
int tly_project_set_state(tly_store *st, int64_t id, const char *state, tly_project *out,
                          tly_error *err);

/* The API representation of a project. New reference. */
json_t *tly_project_json(const tly_project *p);

#endif
