/* checks.h -- automatic checks: the QC round with no human in it.
 *
 * Rules per project (workflow "checks") that flag a result for review rather than
 * change it: boxes too small to be real, overlapping segments, an empty
 * transcription, judgments made faster than a floor, and contributions from a
 * worker who gives the same answer to everything (that rule is decided over the
 * project's judgments by qa/results.c, which passes the verdict in). A flag is a
 * string "<rule>" or "<rule>:<control>". Called by qa/results.c.
 */
#ifndef TALLY_QA_CHECKS_H
#define TALLY_QA_CHECKS_H

#include "storage/store.h"

#include <jansson.h>

typedef struct {
    double min_box_px;        /* a fused box narrower or lower than this (0 = off) */
    int segments_overlap;     /* fused segments that overlap each other */
    int empty_transcription;  /* a transcription or text control fused to "" */
    int64_t min_duration_ms;  /* a judgment reported faster than this (0 = off) */
    int64_t same_answer_min;  /* judgments after which an unvarying worker is flagged (0 = off) */
} tly_check_rules;

void tly_check_rules_of(json_t *workflow, tly_check_rules *r);

/* Appends to flags (an array) the flags of one aggregated answer made from the
 * judgments js[0..n). */
void tly_checks_result(json_t *tmpl, json_t *answer, const tly_judgment *js, size_t n, const tly_check_rules *r,
                       json_t *flags);

#endif
