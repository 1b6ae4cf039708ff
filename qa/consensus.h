/* consensus.h -- one label per item from several workers' categorical judgments.
 *
 * The building block of the quality round's aggregation for `choice` controls:
 * votes come in as (item, worker, label) triples over dense indices, and each
 * method returns, per item, the inferred label and a confidence in [0,1].
 *   - majority vote, optionally weighted per worker (trust);
 *   - Dawid-Skene: expectation-maximisation over a confusion matrix per worker,
 *     so a worker who is reliably wrong in a particular way still informs the
 *     result, and careless workers count less without any gold.
 *   - Dawid-Skene with known labels (gold questions) clamped: semi-supervised EM.
 * Weighted vote with per-worker trust (e.g. smoothed accuracy on gold) is the
 * majority vote with weights.
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
    int *label;          /* per item; -1 for an item with no votes (and no known label) */
    double *confidence;  /* per item: the share (or posterior) of that label */
    int iterations;      /* Dawid-Skene: EM rounds run */
} tly_consensus;

void tly_consensus_free(tly_consensus *c);

/* weight: per-worker weights (NULL = all 1). TLY_E_INVALID for an index out of
 * range. */
int tly_consensus_majority(const tly_vote *votes, size_t n, int n_items, int n_workers, int n_labels,
                           const double *weight, tly_consensus *out, tly_error *err);

/* Dawid-Skene options and extra outputs. A zeroed struct is valid: every field left 0
 * or NULL takes the default / is not produced. */
typedef struct {
    int max_iter;        /* EM rounds at most; <= 0: 100 */
    double tol;          /* stop when no item's posterior moves by more than tol; <= 0: 1e-6 */
    double smoothing;    /* additive (Laplace) smoothing of the confusion counts; <= 0: 0.01 */
    /* <= 0 (default): classic Dawid-Skene, each worker's confusion row smoothed by
     * `smoothing` toward uniform. > 0: each row is instead shrunk toward the pooled
     * confusion matrix of all workers, with the weight of this many judgments (e.g.
     * n_labels): a worker with little history counts as an average worker instead of
     * one who fits their few answers perfectly. Measured (tools/bench/aggregate,
     * worker_prior = n_labels): where most workers answer a handful of questions,
     * 0.840 against classic 0.785 (majority 0.840); elsewhere equal or slightly
     * better (face-sentiment 0.651 vs 0.640). Off by default so that results stay those
     * of classic Dawid-Skene. */
    double worker_prior;
    /* Known labels (gold questions), per item (n_items), optional: -1 (any negative) =
     * unknown, else the true label. A known item's posterior is held at that label in
     * every E-step (semi-supervised EM), so it teaches the workers' confusion matrices;
     * its output is that label with confidence 1 (posterior one-hot), votes or not.
     * A value >= n_labels is
     * TLY_E_INVALID. */
    const int *known;
    /* Outputs, each optional (NULL = not wanted), filled from a last M-step on the final
     * posteriors: */
    double *worker_accuracy;   /* n_workers: P(worker gives the true label), averaged over
                                * the class prior */
    double *worker_confusion;  /* n_workers * n_labels * n_labels, row-major
                                * [w][true k][given l]; each row sums to 1 */
    double *class_prior;       /* n_labels */
    double *posterior;         /* n_items * n_labels, [i][k] = P(true label of i is k); a row
                                * of zeros for an item with no votes and no known label */
} tly_ds_params;

/* Dawid-Skene by EM, started from the majority vote. p may be NULL (all defaults).
 * Single-threaded, no allocation inside the loop, deterministic: the same input gives
 * bit-identical output. Time is O(votes * n_labels) per round, plus
 * O(n_workers * n_labels^2) logarithms; memory O(votes + n_items * n_labels +
 * n_workers * n_labels^2). TLY_E_INVALID for an index or known label out of range. */
int tly_consensus_dawid_skene_ex(const tly_vote *votes, size_t n, int n_items, int n_workers,
                                 int n_labels, const tly_ds_params *p, tly_consensus *out,
                                 tly_error *err);

/* The unsupervised form, kept for existing callers: max_iter rounds at most (e.g. 50; 0
 * returns the majority vote's shares), stopping when no item's posterior moves by more
 * than tol (e.g. 1e-6). worker_accuracy (n_workers, optional) receives each worker's
 * estimated probability of giving the true label. */
int tly_consensus_dawid_skene(const tly_vote *votes, size_t n, int n_items, int n_workers,
                              int n_labels, int max_iter, double tol, tly_consensus *out,
                              double *worker_accuracy, tly_error *err);

#endif
