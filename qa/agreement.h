/* agreement.h -- how much annotators agree on nominal (choice) labels.
 *
 * Over the same (item, worker, label) triples as qa/consensus.h. Each vote is one
 * value for its item (unit); the worker index only has to be >= 0 (neither measure
 * depends on who gave which value, and a worker who votes twice on an item counts
 * twice: pass one vote per worker and item). Items with fewer than two votes hold no
 * pair of values and are skipped by both measures ("not pairable").
 *
 *   - Krippendorff's alpha, nominal metric, from the coincidence matrix (Krippendorff,
 *     "Computing Krippendorff's Alpha-Reliability", 2011): alpha = 1 - D_o / D_e,
 *     observed over expected disagreement. Copes with any number of workers per item
 *     and missing values.
 *   - Percent agreement, pairwise: per item, the share of pairs of its votes that
 *     agree; then the mean over pairable items. A fraction in [0, 1], with no
 *     correction for chance.
 */
#ifndef TALLY_QA_AGREEMENT_H
#define TALLY_QA_AGREEMENT_H

#include "core/error.h"
#include "qa/consensus.h"

#include <stddef.h>

/* alpha: 1 perfect, 0 chance, < 0 systematic disagreement. Returns 0, or -1 with
 * TLY_E_INVALID for out-of-range votes (item outside [0, n_items), label outside
 * [0, n_labels), worker < 0) or n_items < 0 / n_labels < 1. *alpha = NAN when not
 * computable: fewer than 2 pairable values, or every pairable value the same label --
 * the expected disagreement is then 0 and alpha is 0/0, which Krippendorff leaves
 * undefined (data without variation say nothing about reliability). Callers wanting
 * "all identical = perfect" can test isnan() and consult tly_percent_agreement, which
 * is 1 in that case. */
int tly_krippendorff_alpha_nominal(const tly_vote *votes, size_t n, int n_items, int n_labels, double *alpha, tly_error *err);
/* Same checks; *agreement = NAN when no item has 2 or more votes. */
int tly_percent_agreement(const tly_vote *votes, size_t n, int n_items, int n_labels, double *agreement, tly_error *err);

#endif
