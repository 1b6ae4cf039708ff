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

/* What the quality round (qa/crowd.h) decided this worker gets next. */
typedef struct {
    int gold;                 /* a test question the worker has never had */
    const char *mode;         /* "quiz" | "work" (NULL = "work") */
} tly_work_plan;

/* Leases the worker's next task of project p per plan -- or the lease the worker
 * already holds in p -- and returns the API's work/next object in *out; *out = NULL
 * when nothing is eligible. Test questions look exactly like work. */
int tly_work_lease(tly_store *st, const tly_project *p, const tly_user *worker, const tly_work_plan *plan,
                   json_t **out, tly_error *err);

/* A submission on its way in: the worker's assignment with its project and item,
 * the answer (borrowed from the request body) and its canonical text. */
typedef struct {
    tly_assignment a;
    tly_project p;
    tly_item it;
    json_t *answer;
    char *canonical;
    int64_t duration_ms;
} tly_submission;
void tly_submission_clear(tly_submission *s);

/* Reads body {"answer":{...},"duration_ms"?} for the worker's assignment and checks
 * it. Returns 1 when it repeats an earlier submission of the same answer (*out is
 * the 200 reply, s is empty), 0 when it is new and valid (s filled: record it or
 * clear it), -1 on error: CONFLICT "already_submitted" for a different answer,
 * UNPROCESSABLE "invalid_answer", NOT_FOUND if the assignment is not the caller's. */
int tly_work_submission_open(tly_store *st, int64_t assignment_id, const tly_user *worker, json_t *body,
                             tly_submission *s, json_t **out, tly_error *err);
/* Records it: correct is the gold verdict on a test question (-1 for work); here =
 * inside the caller's transaction. *out = the 200 reply. CONFLICT "lease_expired",
 * "assignment_skipped". */
int tly_work_submission_record(tly_store *st, tly_submission *s, int correct, int here, json_t **out,
                               tly_error *err);
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
