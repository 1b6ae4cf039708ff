/* gold.h -- test questions: items whose correct answer the manager knows.
 *
 * Gold answers arrive two ways: PUT /v1/items/{id}/gold, and per line of an ingest
 * manifest. Both are checked against the project's template the same way here.
 * (Mixing gold into work, the quiz and trust scores build on this in the quality
 * round.) Called by server/ and ingest/.
 */
#ifndef TALLY_QA_GOLD_H
#define TALLY_QA_GOLD_H

#include "core/error.h"
#include "storage/store.h"

#include <jansson.h>

/* Checks a gold answer against a template and, when media is not NULL, against the
 * item (boxes inside the image, segments inside the audio): the same checks as any
 * answer (template.h). TLY_E_UNPROCESSABLE (code "invalid_gold") naming the problem. */
int tly_gold_validate(json_t *tmpl, json_t *answer, json_t *media, tly_error *err);

/* Marks item_id as a test question with `answer` (NULL clears it). The item must
 * belong to a project whose template the answer fits. On success *item_out (if not
 * NULL) is the updated item (caller clears it). */
int tly_gold_set(tly_store *st, int64_t item_id, json_t *answer, tly_item *item_out,
                 tly_error *err);

#endif
