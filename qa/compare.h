/* compare.h -- is a worker's answer right? Comparing answers with gold answers.
 *
 * Answers are objects keyed by control name (annotate/template.h); each control type
 * has its own notion of "the same answer":
 *   choice          exact string;
 *   multi_choice    Jaccard index of the two sets >= multi_jaccard (two empty sets: 1);
 *   text,
 *   transcription   WER of the answer (hypothesis) against the gold (reference), both
 *                   normalised (qa/text.h), <= max_wer; score 1 - WER, clamped;
 *   bbox            one-to-one matching of answer boxes to gold boxes of the same label
 *                   (no label equals no label): all candidate pairs at IoU >= bbox_iou
 *                   are taken greedily, highest IoU first (ties: lower gold index, then
 *                   lower answer index). Correct iff every gold box is matched and no
 *                   answer box is left over;
 *   polygon         the same with polygon IoU (qa/geometry.h, rasterised) and polygon_iou;
 *   audio_segments  the same on the time axis with temporal IoU and segment_iou;
 *   keypoints       instances are matched one-to-one like boxes, greedily by the mean
 *                   distance over the points visible in both (instances need the same
 *                   label and the same number of points; pairs sharing no visible point
 *                   come last). A matched instance is right when every point's
 *                   visibility agrees and every visible gold point is within the
 *                   tolerance of the answer's point: keypoint_dist x the image diagonal
 *                   when the media object gives width and height, else keypoint_px
 *                   pixels. Correct iff every gold instance is matched and right and no
 *                   answer instance is left over.
 * Scores, in [0, 1], 1 = identical:
 *   region controls: sum of the matched pairs' IoU / (gold + answer - matched), so a
 *   missed or an extra shape counts as an IoU of 0 (both empty: 1); keypoints: right
 *   points / (points of the gold instances + points of unmatched answer instances).
 * IoU thresholds are compared with a 1e-9 slack, so a pair at exactly 0.5 matches 0.5.
 *
 * Malformed values (a bbox value that is not an array, a box without "w", ...) are
 * errors, never a wrong answer: TLY_E_UNPROCESSABLE with code "invalid_answer" (the
 * worker's value) or "invalid_gold" (the gold value), the message naming the control.
 * A definition without a known "type": TLY_E_INVALID "invalid_template". Work is
 * bounded: at most TLY_COMPARE_MAX_PAIRS answer x gold shape pairs per control
 * (TLY_COMPARE_MAX_POLYGON_PAIRS for polygons), else TLY_E_UNPROCESSABLE
 * "too_many_shapes".
 *
 * Called by qa/ (gold scoring, aggregation) and server/; pure computation.
 */
#ifndef TALLY_QA_COMPARE_H
#define TALLY_QA_COMPARE_H

#include "core/error.h"
#include "qa/geometry.h"

#include <jansson.h>
#include <stddef.h>

#define TLY_COMPARE_MAX_PAIRS 1000000
#define TLY_COMPARE_MAX_POLYGON_PAIRS 40000

/* Thresholds. Defaults (tly_compare_opts_default) in brackets; the ranges are what
 * tly_compare_opts_from_json accepts. */
typedef struct {
    double bbox_iou;        /* a box matches a gold box at IoU >= this [0.5], (0, 1] */
    double segment_iou;     /* a segment matches at temporal IoU >= this [0.5], (0, 1] */
    double polygon_iou;     /* a polygon matches at polygon IoU >= this [0.5], (0, 1] */
    double keypoint_dist;   /* a point matches within this fraction of the image diagonal,
                             * when the item's width and height are known [0.05], (0, 1] */
    double keypoint_px;     /* ... else within this many pixels [10], (0, 100000] */
    double max_wer;         /* transcription / text right if WER <= this [0.1], [0, 1] */
    double multi_jaccard;   /* multi_choice right if Jaccard >= this [1.0 = set equality], [0, 1] */
} tly_compare_opts;

void tly_compare_opts_default(tly_compare_opts *o);

/* Defaults, then the overrides in obj -- the workflow's "gold" section, e.g.
 * {"bbox_iou":0.6,"max_wer":0.2}. A key given as null keeps its default. Unknown keys,
 * non-numbers and out-of-range values: TLY_E_INVALID "invalid_workflow" (o is then
 * left at the defaults). obj NULL or JSON null: defaults only. */
int tly_compare_opts_from_json(json_t *obj, tly_compare_opts *o, tly_error *err);

/* One control: 1 if value matches gold, 0 if not, -1 on error. *score (score may be
 * NULL) gets the similarity in [0, 1] described above (0 on error). value NULL or
 * JSON null (not answered) is wrong with score 0; gold NULL or JSON null means "no
 * answer expected": right (score 1) only when value is absent too. media is the
 * item's media object ({"width","height"}) or NULL; o NULL means the defaults. */
int tly_compare_value(json_t *def, json_t *value, json_t *gold, json_t *media,
                      const tly_compare_opts *o, double *score, tly_error *err);

/* Whole answers against tmpl ({"controls":[...]}): every control of the template whose
 * gold value is present and not null is compared; a control missing (or null) in the
 * answer counts as wrong with score 0; controls absent from gold are ignored, and so
 * are gold keys the template does not name. 1 if every compared control is right, 0
 * if not, -1 on error. *score (may be NULL) = the mean of the compared controls'
 * scores. A gold answer that compares no control is TLY_E_UNPROCESSABLE
 * "invalid_gold" (a test question everyone would pass). answer NULL counts as {}.
 * If detail_out != NULL, *detail_out = {"<control>":{"correct":bool,"score":x}, ...}
 * over the compared controls (new reference; NULL on error). */
int tly_compare_answer(json_t *tmpl, json_t *answer, json_t *gold, json_t *media,
                       const tly_compare_opts *o, double *score, json_t **detail_out,
                       tly_error *err);

/* ---- shared with qa/aggregate.c: control kinds and parsed region values ---------- */

typedef enum {
    TLY_KIND_CHOICE,
    TLY_KIND_MULTI_CHOICE,
    TLY_KIND_TEXT,
    TLY_KIND_BBOX,
    TLY_KIND_POLYGON,
    TLY_KIND_KEYPOINTS,
    TLY_KIND_AUDIO_SEGMENTS,
    TLY_KIND_TRANSCRIPTION,
} tly_control_kind;

/* The kind named by def's "type". TLY_E_INVALID "invalid_template" when def is not an
 * object or names no known type. */
int tly_control_kind_of(json_t *def, tly_control_kind *out, tly_error *err);

/* One shape of a region value. Pointers are borrowed from the parsed JSON value or
 * owned by the tly_shapes holding the shape. */
typedef struct {
    json_t *json;            /* the shape's object in the value */
    const char *label;       /* its "label"; NULL when it has none */
    tly_box box;             /* bbox: the box; polygon: the bounding box of the points */
    double start, end;       /* audio_segments */
    tly_point *pts;          /* polygon, keypoints: n_pts points (invisible ones 0, 0) */
    unsigned char *visible;  /* keypoints: per point, 1 = visible, 0 = null */
    size_t n_pts;
} tly_shape;

typedef struct {
    tly_shape *shape;
    size_t n;
    tly_point *pts_store;          /* storage of every shape's pts (owned) */
    unsigned char *visible_store;  /* storage of every shape's visible (owned) */
} tly_shapes;

/* Parses a region value (kind bbox, polygon, keypoints or audio_segments) with the
 * shapes described in annotate/control_shapes.c and control_audio.c: boxes need
 * finite x, y and positive w, h; segments 0 <= start < end; polygons 3+ [x, y]
 * points; keypoint instances a non-empty "points" array of [x, y] or null. Labels, if
 * present, must be strings (null = none). Checks shape only, not the template's
 * labels or the image bounds. On failure TLY_E_UNPROCESSABLE with the given code
 * ("invalid_answer", "invalid_gold") and a message naming the shape; *out is then
 * empty. Release with tly_shapes_free; value must outlive *out. */
int tly_shapes_parse(tly_control_kind kind, json_t *value, const char *code, tly_shapes *out,
                     tly_error *err);
void tly_shapes_free(tly_shapes *s);

/* 1 when both labels are absent or both are equal strings. */
int tly_labels_equal(const char *a, const char *b);

/* IoU of two parsed shapes of a region kind: box IoU (bbox), temporal IoU
 * (audio_segments), polygon IoU (polygon); 0 for any other kind. Labels are not
 * looked at. */
double tly_shape_iou(tly_control_kind kind, const tly_shape *a, const tly_shape *b);

#endif
