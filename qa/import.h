/* import.h -- judgments collected elsewhere, brought into a project.
 *
 * A team moving from another platform brings its crowd's judgments so that Tally
 * aggregates, reviews and exports them like its own. Each line names an item (its
 * id, or its file name), a worker (any reference string: imported workers become
 * workers of the project that cannot sign in, one per reference) and an answer:
 *   {"format":"csv","data":"item,worker,answer\n..."}    answer: a JSON object, or a
 *        plain value for the template's first control (e.g. cat);
 *   {"format":"jsonl","data":"{\"item\":..,\"worker\":..,\"answer\":{..}}\n..."};
 *   {"judgments":[{"item","worker","answer"}, ...]}.
 * Every answer is validated against the template and the item like a worker's. A bad
 * line is reported (line number, code, message) and skipped; the rest is imported in
 * one transaction. A worker who already judged an item is a duplicate, skipped.
 * Items that reach their overlap are aggregated as usual. Called by server/.
 */
#ifndef TALLY_QA_IMPORT_H
#define TALLY_QA_IMPORT_H

#include "core/error.h"
#include "storage/store.h"

#include <jansson.h>

#define TLY_IMPORT_MAX_LINES 1000000

/* *out = {"imported","duplicates","rejected","errors":[{"line","code","message"}]}
 * (errors capped at 100). */
int tly_import_judgments(tly_store *st, int64_t project_id, json_t *body, json_t **out, tly_error *err);

#endif
