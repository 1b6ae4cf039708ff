/* work.h -- crowd work: handing tasks to workers and taking their judgments.
 *
 * The policy lives here (which workflow knobs apply, what a worker may see, when a
 * resubmission is the same one); the transactional mechanics (leases, slots,
 * counts) live in storage/store_work.c. Called by server/ handlers; nothing here
 * speaks HTTP. All functions return JSON in the API's shapes (new references).
 */
#ifndef TALLY_ANNOTATE_WORK_H
#define TALLY_ANNOTATE_WORK_H

#include "core/error.h"
#include "storage/store.h"

#include <jansson.h>

/* The next task for worker_id in the project: the API's work/next object in *out,
 * or *out = NULL when nothing is eligible (paused, capped, or no item left).
 * NOT_FOUND for an unknown project. */
int tly_work_next(tly_store *st, int64_t project_id, const tly_user *worker, json_t **out,
                  tly_error *err);

/* Submits body {"answer":{...},"duration_ms"?} for the worker's assignment: 200
 * object in *out. Idempotent for the same answer; CONFLICT "already_submitted" for
 * a different one, "lease_expired", "assignment_skipped"; UNPROCESSABLE
 * "invalid_answer"; NOT_FOUND if the assignment is not the caller's. */
int tly_work_submit(tly_store *st, int64_t assignment_id, const tly_user *worker, json_t *body,
                    json_t **out, tly_error *err);
int tly_work_skip(tly_store *st, int64_t assignment_id, const tly_user *worker, tly_error *err);
/* The assignment as the API shows it; NOT_FOUND for another worker's (staff may
 * read any). */
int tly_work_assignment(tly_store *st, int64_t assignment_id, const tly_user *caller, json_t **out,
                        tly_error *err);

/* "w_" + 12 hex digits: HMAC-SHA256 of the worker id under the project's secret.
 * Stable within a project, unrelated across projects. out: at least 16 bytes. */
void tly_work_pseudonym(const tly_project *p, int64_t worker_id, char *out, size_t outsz);
/* The API's judgment object with the worker as a pseudonym. */
json_t *tly_work_judgment_json(const tly_project *p, const tly_judgment *j);

/* The item as a worker holding a lease on it sees it: no name, hash, gold. */
json_t *tly_work_item_json(const tly_item *it);

/* Canonical text of an answer (sorted keys, compact): what is stored, and what
 * makes two submissions "the same answer". Caller frees. */
char *tly_work_canonical_answer(json_t *answer);

#endif
