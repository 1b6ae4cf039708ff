/* review.h -- the human review round and customer acceptance of lots.
 *
 * Review: items in state 'review' (a sample at review.sample_rate, every
 * low-confidence or flagged result, and the items of rejected lots) go to
 * reviewers -- managers and admins, or workers whose trust in the project reaches
 * review.reviewer_trust, who never review items they judged. A verdict:
 *   accept  the result stands; the item is done;
 *   reject  the item returns to labeling with the comment: its judgments are
 *           excluded and it is labeled afresh (by other workers);
 *   fix     the reviewer's answer (validated like any answer) becomes the result,
 *           method "review", confidence 1; the item is done.
 * Every verdict is in the item's history (GET /v1/items/{id}/history).
 *
 * Acceptance: a manager draws a lot from the done items (qa/acceptance.h gives the
 * ISO 2859-1 plan for its size and the project's AQL and inspection level), gives a
 * verdict (ok / defect) per sampled item, and the lot is decided as soon as the
 * verdicts allow: rejected at Re defects, accepted when every sampled item is
 * judged with at most Ac defects. Accepted: its items are released for export
 * (sampled defects go back to review instead). Rejected: the whole lot returns to
 * review. Called by server/ handlers.
 */
#ifndef TALLY_QA_REVIEW_H
#define TALLY_QA_REVIEW_H

#include "core/error.h"
#include "storage/store.h"

#include <jansson.h>

/* The next review task: {"review_id","item","template","result","judgments",
 * "history","lease_expires_at"}; *out NULL when there is nothing to review.
 * FORBIDDEN "not_a_reviewer" for a worker below the project's reviewer trust. */
int tly_review_next(tly_store *st, int64_t project_id, const tly_user *user, json_t **out, tly_error *err);
/* body {"verdict":"accept|reject|fix","answer"?,"comment"?}. NOT_FOUND for another
 * reviewer's review; CONFLICT "already_reviewed", "lease_expired". */
int tly_review_submit(tly_store *st, int64_t review_id, const tly_user *user, json_t *body, json_t **out,
                      tly_error *err);

/* POST /v1/projects/{id}/acceptance body {"size"?,"seed"?}: draws a lot. CONFLICT
 * "nothing_to_accept" when no item is done and outside a lot. */
int tly_lot_draw(tly_store *st, int64_t project_id, const tly_user *user, json_t *body, json_t **out,
                 tly_error *err);
/* The lot with its plan and sample (each sampled item with its result and verdict). */
int tly_lot_show(tly_store *st, int64_t lot_id, json_t **out, tly_error *err);
/* body {"verdicts":[{"item_id","verdict":"ok|defect","comment"?}]}; decides the lot
 * when the verdicts allow; replies with the lot. */
int tly_lot_judge(tly_store *st, int64_t lot_id, const tly_user *user, json_t *body, json_t **out,
                  tly_error *err);
/* A page of the project's lots as a JSON array (the handler adds the cursor). */
int tly_lot_list(tly_store *st, int64_t project_id, int64_t after_id, int limit, json_t **out, tly_error *err);

#endif
