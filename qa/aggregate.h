/* aggregate.h -- one result per item from several workers' answers (answer fusion).
 *
 * Each worker's answer counts with a weight, their trust in [0, 1]; a weight <= 0
 * counts as 1e-6, so an untrusted worker still breaks ties among nobody else; NaN or
 * infinite weights are errors (TLY_E_INVALID "invalid_weight"). weights NULL = all 1.
 * A worker whose value for a control is absent or JSON null did not answer it and
 * takes no part in that control; "the answering weight" W below is the sum of the
 * weights of those who did (including those who answered with an empty list).
 * Comparisons of near-equal quantities use a 1e-9 slack ("> 0.5" means > 0.5 + 1e-9).
 *
 * Methods by control type (method name in quotes):
 *   choice "weighted_vote": the option with the most weight; confidence = its share
 *     of W; ties go to the option listed first in the definition's "options" (values
 *     not listed there come after, in order of first appearance).
 *   multi_choice "per_option_vote": an option is in the result when the weight of the
 *     workers who picked it is > 0.5 of W; confidence = the minimum, over options
 *     anybody picked, of max(share, 1 - share) (nobody picked any: 1). Result in
 *     "options" order.
 *   text "text_vote": workers' texts are grouped by their normalised form
 *     (qa/text.h); a group with > 0.5 of W wins and its most trusted member's original
 *     text is the result, confidence = the group's share. Otherwise the transcript
 *     medoid below (method name stays "text_vote").
 *   transcription "transcript_medoid": the distance between two transcripts is the
 *     symmetric WER, the mean of WER(a, b) and WER(b, a) over normalised words. The
 *     result is the transcript c with the lowest sum over the others j of w_j * d(c, j)
 *     (ties: higher weight, then earlier worker), as its worker wrote it; confidence =
 *     1 - that sum / the others' weight, clamped to [0, 1] (a single answer: 1).
 *   bbox "box_fusion": boxes are clustered across workers, greedily: workers in order
 *     of weight (highest first, ties by index), each worker's boxes in order; a box
 *     joins the cluster of the same label (clusters never mix labels) holding no other
 *     box of the same worker whose weighted mean box has the highest IoU with it, if
 *     that IoU >= o->bbox_iou (ties: the older cluster), else starts a new cluster.
 *     A cluster's support = the weight of its workers / W; clusters with support > 0.5
 *     are kept, as their weighted mean box rounded to 0.01 px, sorted by (y, x, w, h,
 *     label). Confidence = margin x fit, where margin = the mean over all clusters of
 *     support (kept) or 1 - support (dropped), and fit = the mean IoU of the kept
 *     clusters' members to their fused box (1 when nothing is kept). Nobody drew a
 *     box: [] with confidence 1.
 *   audio_segments "segment_fusion": the same on the time axis (temporal IoU,
 *     o->segment_iou, weighted mean start / end rounded to 0.001 s, sorted by (start,
 *     end, label)).
 *   polygon "polygon_medoid": clustered like boxes, except that a cluster is stood for
 *     by its first polygon (from its most trusted worker) and IoU is polygon IoU
 *     (o->polygon_iou). A kept cluster yields its member with the highest weighted mean
 *     IoU to the cluster's other members (ties: earlier in cluster order), unchanged.
 *     fit = the mean IoU of the kept clusters' other members to that polygon (a
 *     cluster of one counts 1). Sorted by the polygons' bounding boxes (y, x).
 *   keypoints "keypoint_fusion": instances are matched by position in the workers'
 *     lists (instance k with instance k -- workers are expected to keep one order;
 *     exact for one instance per item). Slot k is kept when the workers having an
 *     instance k carry > 0.5 of W; its label is their weighted vote (ties: the
 *     definition's "labels" order); it has as many points as the definition names (or
 *     the longest contributed list); point j is visible when the contributors marking
 *     it visible carry > 0.5 of the contributors' weight, at the weighted mean of their
 *     coordinates rounded to 0.01 px. Confidence = margin x agreement: margin as for
 *     boxes over the slots, agreement = the mean over the kept slots' points of
 *     max(visible share, 1 - visible share) (no kept slot: 1). Spatial spread is not
 *     part of it: without the item's size a pixel tolerance has no scale.
 * Nobody answered the control: value JSON null, with confidence 1 when there were
 * workers (n > 0: they all agree on leaving it empty, as an optional control may be)
 * and 0 when there were none (n == 0: nothing is known).
 *
 * Malformed values: TLY_E_UNPROCESSABLE "invalid_answer" naming the worker (index) and
 * the control. Work bounds: at most TLY_AGG_MAX_SHAPES boxes / segments / instances
 * and TLY_AGG_MAX_POLYGONS polygons over all workers for one control, else
 * TLY_E_UNPROCESSABLE "too_many_shapes".
 *
 * Called by qa/ and server/ (the aggregation job); pure computation, deterministic.
 */
#ifndef TALLY_QA_AGGREGATE_H
#define TALLY_QA_AGGREGATE_H

#include "core/error.h"
#include "qa/compare.h"

#include <jansson.h>
#include <stddef.h>

#define TLY_AGG_MAX_SHAPES 20000
#define TLY_AGG_MAX_POLYGONS 2000

typedef struct {
    json_t *value;          /* new reference: the fused value for the control (JSON null if nothing) */
    double confidence;      /* in [0,1] */
    const char *method;     /* static string: "weighted_vote", "per_option_vote", "box_fusion", "segment_fusion",
                             * "polygon_medoid", "keypoint_fusion", "transcript_medoid", "text_vote" */
} tly_agg_value;

/* values[i] = one worker's value for this control (may be NULL/JSON null = did not
 * answer), weights[i] their trust (weights may be NULL: all 1). o NULL = defaults
 * (only the IoU thresholds are used). On success out->value is a new reference the
 * caller releases; on failure out->value is NULL. */
int tly_aggregate_value(json_t *def, json_t *const *values, const double *weights, size_t n,
                        const tly_compare_opts *o, tly_agg_value *out, tly_error *err);

/* Whole answers (answers[i] an object, or NULL / JSON null for a worker with no
 * answer), per control of tmpl. *answer_out = {"<control>": value, ...} (controls whose
 * fused value is null are left out), *confidence_out = the minimum confidence over all
 * controls (so 0 when n == 0), *detail_out = {"<control>":{"method":...,
 * "confidence":..., "workers":<how many answered it>}} for every control,
 * *method_out = a static string: the single method name when all controls use one
 * method, otherwise "mixed". answer_out and detail_out are new references (NULL on
 * failure); detail_out and method_out may be NULL. */
int tly_aggregate_answer(json_t *tmpl, json_t *const *answers, const double *weights, size_t n,
                         const tly_compare_opts *o, json_t **answer_out, double *confidence_out,
                         json_t **detail_out, const char **method_out, tly_error *err);

#endif
