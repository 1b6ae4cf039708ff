/* consensus.h -- one label per item from several workers' categorical judgments.
 *
 * The building block of the quality round's aggregation for `choice` controls:
 * votes come in as (item, worker, label) triples over dense indices, and each
 * method returns, per item, the inferred label and a confidence in [0,1].
 *   - majority vote, optionally weighted per worker (trust);
 *   - Dawid-Skene: expectation-maximisation over a confusion matrix per worker,
 *     so a worker who is reliably wrong in a particular way still informs the
 *     result, and careless workers count less without any gold.
 * Pure computation: no store, no HTTP. Deterministic for the same input (ties go
 * to the lowest label index).
 */
#ifndef TALLY_QA_CONSENSUS_H
#define TALLY_QA_CONSENSUS_H

#include "core/error.h"

#include <stddef.h>

typedef struct {
    int item;    /* 0 .. n_items-1 */
    int worker;  /* 0 .. n_workers-1 */
    int label;   /* 0 .. n_labels-1 */
} tly_vote;

typedef struct {
    int n_items;
    int n_labels;
    int *label;          /* per item; -1 for an item with no votes */
    double *confidence;  /* per item: the share (or posterior) of that label */
    int iterations;      /* Dawid-Skene: EM rounds run */
} tly_consensus;

void tly_consensus_free(tly_consensus *c);

/* weight: per-worker weights (NULL = all 1). TLY_E_INVALID for an index out of
 * range. */
int tly_consensus_majority(const tly_vote *votes, size_t n, int n_items, int n_workers, int n_labels,
                           const double *weight, tly_consensus *out, tly_error *err);

/* max_iter rounds at most (e.g. 50), stopping when no item's posterior moves by more
 * than tol (e.g. 1e-6). worker_accuracy (n_workers, optional) receives each worker's
 * estimated probability of giving the true label. */
int tly_consensus_dawid_skene(const tly_vote *votes, size_t n, int n_items, int n_workers,
                              int n_labels, int max_iter, double tol, tly_consensus *out,
                              double *worker_accuracy, tly_error *err);

#endif
