/* compare.c -- see compare.h.
 *
 * Dispatch is by the control's "type" string (tly_control_kind_of), one branch per
 * type; region values are first parsed into plain structs (tly_shapes) so matching
 * and aggregation work on doubles, not on JSON lookups in inner loops.
 *
 * Matching of region shapes (boxes, polygons, segments, keypoint instances) is one
 * routine: every candidate (gold, answer) pair is put in an array with a sort key
 * (-IoU, or the mean keypoint distance), the array is sorted (key, then gold index,
 * then answer index, so the result never depends on qsort's instability), and pairs
 * are taken greedily while both ends are free. Greedy is not the optimal assignment,
 * but with a threshold of 0.5 or more a box can overlap two others at IoU >= 0.5 only
 * in contrived layouts, and the outcome is deterministic and easy to explain.
 *
 * Ownership: parsed shapes borrow strings and objects from the JSON values, which the
 * caller keeps alive for the call; pair arrays and flags are freed before return.
 */
#include "qa/compare.h"

#include "qa/text.h"

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SHAPES 100000       /* per value (audio segments allow 100,000) */
#define MAX_POINTS_TOTAL 1000000 /* polygon / keypoint points per value */
#define SLACK 1e-9

static int oom(tly_error *err)
{
    return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
}

/* ---- options ----------------------------------------------------------------------- */

void tly_compare_opts_default(tly_compare_opts *o)
{
    o->bbox_iou = 0.5;
    o->segment_iou = 0.5;
    o->polygon_iou = 0.5;
    o->keypoint_dist = 0.05;
    o->keypoint_px = 10;
    o->max_wer = 0.1;
    o->multi_jaccard = 1.0;
}

static const struct {
    const char *key;
    size_t off;
    double min, max;
    int open_min;   /* min itself is not allowed */
} opt_fields[] = {
    {"bbox_iou", offsetof(tly_compare_opts, bbox_iou), 0, 1, 1},
    {"segment_iou", offsetof(tly_compare_opts, segment_iou), 0, 1, 1},
    {"polygon_iou", offsetof(tly_compare_opts, polygon_iou), 0, 1, 1},
    {"keypoint_dist", offsetof(tly_compare_opts, keypoint_dist), 0, 1, 1},
    {"keypoint_px", offsetof(tly_compare_opts, keypoint_px), 0, 100000, 1},
    {"max_wer", offsetof(tly_compare_opts, max_wer), 0, 1, 0},
    {"multi_jaccard", offsetof(tly_compare_opts, multi_jaccard), 0, 1, 0},
};

int tly_compare_opts_from_json(json_t *obj, tly_compare_opts *o, tly_error *err)
{
    tly_compare_opts_default(o);
    if (!obj || json_is_null(obj))
        return 0;
    if (!json_is_object(obj))
        return tly_fail(err, TLY_E_INVALID, "invalid_workflow", "workflow.gold must be an object");
    tly_compare_opts tmp = *o;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        size_t f = 0, nf = sizeof opt_fields / sizeof opt_fields[0];
        while (f < nf && strcmp(opt_fields[f].key, key) != 0)
            f++;
        if (f == nf)
            return tly_fail(err, TLY_E_INVALID, "invalid_workflow", "workflow.gold: unknown field '%s'", key);
        if (json_is_null(v))
            continue;
        double x = json_is_number(v) ? json_number_value(v) : NAN;
        if (!isfinite(x) || x < opt_fields[f].min || x > opt_fields[f].max ||
            (opt_fields[f].open_min && x <= opt_fields[f].min))
            return tly_fail(err, TLY_E_INVALID, "invalid_workflow", "workflow.gold: '%s' must be a number %s %g and <= %g",
                            key, opt_fields[f].open_min ? ">" : ">=", opt_fields[f].min, opt_fields[f].max);
        *(double *)((char *)&tmp + opt_fields[f].off) = x;
    }
    *o = tmp;
    return 0;
}

/* ---- kinds and parsing ------------------------------------------------------------- */

static const struct {
    const char *name;
    tly_control_kind kind;
} kinds[] = {
    {"choice", TLY_KIND_CHOICE},
    {"multi_choice", TLY_KIND_MULTI_CHOICE},
    {"text", TLY_KIND_TEXT},
    {"bbox", TLY_KIND_BBOX},
    {"polygon", TLY_KIND_POLYGON},
    {"keypoints", TLY_KIND_KEYPOINTS},
    {"audio_segments", TLY_KIND_AUDIO_SEGMENTS},
    {"transcription", TLY_KIND_TRANSCRIPTION},
};

int tly_control_kind_of(json_t *def, tly_control_kind *out, tly_error *err)
{
    const char *type = json_string_value(json_object_get(def, "type"));
    if (!json_is_object(def) || !type)
        return tly_fail(err, TLY_E_INVALID, "invalid_template", "a control needs a 'type'");
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].name, type) == 0) {
            *out = kinds[i].kind;
            return 0;
        }
    return tly_fail(err, TLY_E_INVALID, "invalid_template", "unknown control type '%s'", type);
}

int tly_labels_equal(const char *a, const char *b)
{
    if (!a || !b)
        return !a && !b;
    return strcmp(a, b) == 0;
}

void tly_shapes_free(tly_shapes *s)
{
    if (!s)
        return;
    free(s->shape);
    free(s->pts_store);
    free(s->visible_store);
    memset(s, 0, sizeof *s);
}

static int finite_number(json_t *obj, const char *key, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return isfinite(*out) ? 0 : -1;
}

/* [x, y] of finite numbers. */
static int parse_point(json_t *pt, tly_point *out)
{
    if (!json_is_array(pt) || json_array_size(pt) != 2 || !json_is_number(json_array_get(pt, 0)) ||
        !json_is_number(json_array_get(pt, 1)))
        return -1;
    out->x = json_number_value(json_array_get(pt, 0));
    out->y = json_number_value(json_array_get(pt, 1));
    return isfinite(out->x) && isfinite(out->y) ? 0 : -1;
}

static int parse_one(tly_control_kind kind, json_t *obj, size_t i, const char *code, tly_shapes *s,
                     size_t *pts_used, tly_error *err)
{
    tly_shape *sh = &s->shape[i];
    if (!json_is_object(obj))
        return tly_fail(err, TLY_E_UNPROCESSABLE, code, "shape %zu must be an object", i);
    sh->json = obj;
    json_t *label = json_object_get(obj, "label");
    if (label && !json_is_null(label) && !json_is_string(label))
        return tly_fail(err, TLY_E_UNPROCESSABLE, code, "shape %zu: 'label' must be a string", i);
    sh->label = json_string_value(label);
    if (kind == TLY_KIND_BBOX) {
        tly_box *b = &sh->box;
        if (finite_number(obj, "x", &b->x) < 0 || finite_number(obj, "y", &b->y) < 0 ||
            finite_number(obj, "w", &b->w) < 0 || finite_number(obj, "h", &b->h) < 0)
            return tly_fail(err, TLY_E_UNPROCESSABLE, code, "box %zu needs numbers 'x', 'y', 'w' and 'h'", i);
        if (!(b->w > 0) || !(b->h > 0))
            return tly_fail(err, TLY_E_UNPROCESSABLE, code, "box %zu must have a positive width and height", i);
        return 0;
    }
    if (kind == TLY_KIND_AUDIO_SEGMENTS) {
        if (finite_number(obj, "start", &sh->start) < 0 || finite_number(obj, "end", &sh->end) < 0)
            return tly_fail(err, TLY_E_UNPROCESSABLE, code, "segment %zu needs numbers 'start' and 'end'", i);
        if (sh->start < 0 || !(sh->start < sh->end))
            return tly_fail(err, TLY_E_UNPROCESSABLE, code, "segment %zu must have 0 <= start < end", i);
        return 0;
    }
    /* polygon, keypoints */
    json_t *pts = json_object_get(obj, "points");
    size_t np = json_array_size(pts);
    if (!json_is_array(pts) || np == 0 || (kind == TLY_KIND_POLYGON && np < 3))
        return tly_fail(err, TLY_E_UNPROCESSABLE, code, "%s %zu needs a 'points' array of %s",
                        kind == TLY_KIND_POLYGON ? "polygon" : "instance", i,
                        kind == TLY_KIND_POLYGON ? "3 or more [x, y]" : "[x, y] or null");
    sh->pts = s->pts_store + *pts_used;
    sh->n_pts = np;
    if (kind == TLY_KIND_KEYPOINTS)
        sh->visible = s->visible_store + *pts_used;
    *pts_used += np;
    for (size_t k = 0; k < np; k++) {
        json_t *pt = json_array_get(pts, k);
        if (kind == TLY_KIND_KEYPOINTS && json_is_null(pt)) {
            sh->pts[k].x = sh->pts[k].y = 0;
            sh->visible[k] = 0;
            continue;
        }
        if (parse_point(pt, &sh->pts[k]) < 0)
            return tly_fail(err, TLY_E_UNPROCESSABLE, code, "%s %zu point %zu must be [x, y]%s",
                            kind == TLY_KIND_POLYGON ? "polygon" : "instance", i, k,
                            kind == TLY_KIND_POLYGON ? "" : " or null");
        if (sh->visible)
            sh->visible[k] = 1;
    }
    if (kind == TLY_KIND_POLYGON)
        sh->box = tly_polygon_bounds(sh->pts, sh->n_pts);
    return 0;
}

int tly_shapes_parse(tly_control_kind kind, json_t *value, const char *code, tly_shapes *out,
                     tly_error *err)
{
    static const char *const what[] = {
        [TLY_KIND_BBOX] = "boxes", [TLY_KIND_POLYGON] = "polygons",
        [TLY_KIND_KEYPOINTS] = "instances", [TLY_KIND_AUDIO_SEGMENTS] = "segments",
    };
    memset(out, 0, sizeof *out);
    if (kind != TLY_KIND_BBOX && kind != TLY_KIND_POLYGON && kind != TLY_KIND_KEYPOINTS &&
        kind != TLY_KIND_AUDIO_SEGMENTS)
        return tly_fail(err, TLY_E_INTERNAL, "internal", "tly_shapes_parse: not a region control");
    if (!json_is_array(value))
        return tly_fail(err, TLY_E_UNPROCESSABLE, code, "the value must be an array of %s", what[kind]);
    size_t n = json_array_size(value);
    if (n > MAX_SHAPES)
        return tly_fail(err, TLY_E_UNPROCESSABLE, code, "more than %d %s", MAX_SHAPES, what[kind]);
    size_t total = 0;
    if (kind == TLY_KIND_POLYGON || kind == TLY_KIND_KEYPOINTS) {
        size_t i;
        json_t *obj;
        json_array_foreach(value, i, obj) {
            total += json_array_size(json_object_get(obj, "points"));
            if (total > MAX_POINTS_TOTAL)
                return tly_fail(err, TLY_E_UNPROCESSABLE, code, "more than %d points", MAX_POINTS_TOTAL);
        }
    }
    out->shape = calloc(n ? n : 1, sizeof *out->shape);
    out->pts_store = calloc(total ? total : 1, sizeof *out->pts_store);
    if (kind == TLY_KIND_KEYPOINTS)
        out->visible_store = calloc(total ? total : 1, 1);
    if (!out->shape || !out->pts_store || (kind == TLY_KIND_KEYPOINTS && !out->visible_store)) {
        tly_shapes_free(out);
        return oom(err);
    }
    out->n = n;
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        if (parse_one(kind, json_array_get(value, i), i, code, out, &used, err) < 0) {
            tly_shapes_free(out);
            return -1;
        }
    return 0;
}

double tly_shape_iou(tly_control_kind kind, const tly_shape *a, const tly_shape *b)
{
    switch (kind) {
    case TLY_KIND_BBOX:
        return tly_box_iou(a->box, b->box);
    case TLY_KIND_AUDIO_SEGMENTS:
        return tly_interval_iou(a->start, a->end, b->start, b->end);
    case TLY_KIND_POLYGON:
        return tly_polygon_iou(a->pts, a->n_pts, b->pts, b->n_pts);
    default:
        return 0;
    }
}

/* ---- matching ---------------------------------------------------------------------- */

typedef struct {
    double key;   /* ascending: -IoU, or a distance */
    size_t g, a;
} pair;

static int cmp_pair(const void *x, const void *y)
{
    const pair *p = x, *q = y;
    if (p->key != q->key)
        return p->key < q->key ? -1 : 1;
    if (p->g != q->g)
        return p->g < q->g ? -1 : 1;
    return p->a < q->a ? -1 : p->a > q->a;
}

/* Greedy one-to-one: *g_of[a] / a_of[g] = partner index or SIZE_MAX. */
typedef struct {
    size_t *a_of;   /* per gold shape */
    size_t *g_of;   /* per answer shape */
    pair *pairs;    /* candidates, grown as needed (most pairs of real data are not) */
    size_t n_pairs, cap;
} matching;

static void matching_free(matching *m)
{
    free(m->a_of);
    free(m->g_of);
    free(m->pairs);
    memset(m, 0, sizeof *m);
}

static int matching_alloc(matching *m, const tly_shapes *ans, const tly_shapes *gold, size_t max_pairs,
                          tly_error *err)
{
    memset(m, 0, sizeof *m);
    if (ans->n && gold->n > max_pairs / ans->n)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "too_many_shapes",
                        "%zu x %zu shapes to compare; at most %zu pairs", ans->n, gold->n, max_pairs);
    m->a_of = malloc((gold->n ? gold->n : 1) * sizeof *m->a_of);
    m->g_of = malloc((ans->n ? ans->n : 1) * sizeof *m->g_of);
    if (!m->a_of || !m->g_of) {
        matching_free(m);
        return oom(err);
    }
    for (size_t g = 0; g < gold->n; g++)
        m->a_of[g] = SIZE_MAX;
    for (size_t a = 0; a < ans->n; a++)
        m->g_of[a] = SIZE_MAX;
    return 0;
}

/* Appends a candidate pair (the caller bounded their number in matching_alloc). */
static int matching_add(matching *m, double key, size_t g, size_t a, tly_error *err)
{
    if (m->n_pairs == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        pair *p = realloc(m->pairs, cap * sizeof *p);
        if (!p)
            return oom(err);
        m->pairs = p;
        m->cap = cap;
    }
    m->pairs[m->n_pairs++] = (pair){key, g, a};
    return 0;
}

/* Sorts the candidate pairs and takes them greedily; returns the number matched. */
static size_t matching_run(matching *m)
{
    size_t matched = 0;
    if (m->n_pairs)
        qsort(m->pairs, m->n_pairs, sizeof *m->pairs, cmp_pair);
    for (size_t i = 0; i < m->n_pairs; i++) {
        pair *p = &m->pairs[i];
        if (m->a_of[p->g] != SIZE_MAX || m->g_of[p->a] != SIZE_MAX)
            continue;
        m->a_of[p->g] = p->a;
        m->g_of[p->a] = p->g;
        matched++;
    }
    return matched;
}

static int match_regions(tly_control_kind kind, const tly_shapes *ans, const tly_shapes *gold, double thr,
                         double *score, tly_error *err)
{
    matching m;
    if (matching_alloc(&m, ans, gold, kind == TLY_KIND_POLYGON ? TLY_COMPARE_MAX_POLYGON_PAIRS : TLY_COMPARE_MAX_PAIRS,
                       err) < 0)
        return -1;
    for (size_t g = 0; g < gold->n; g++)
        for (size_t a = 0; a < ans->n; a++) {
            if (!tly_labels_equal(gold->shape[g].label, ans->shape[a].label))
                continue;
            double iou = tly_shape_iou(kind, &gold->shape[g], &ans->shape[a]);
            if (iou >= thr - SLACK && matching_add(&m, -iou, g, a, err) < 0) {
                matching_free(&m);
                return -1;
            }
        }
    size_t matched = matching_run(&m);
    double sum = 0;
    for (size_t g = 0; g < gold->n; g++)
        if (m.a_of[g] != SIZE_MAX)
            sum += tly_shape_iou(kind, &gold->shape[g], &ans->shape[m.a_of[g]]);
    size_t denom = gold->n + ans->n - matched;
    *score = denom ? sum / (double)denom : 1.0;
    matching_free(&m);
    return matched == gold->n && matched == ans->n;
}

/* Tolerance in pixels for keypoints (compare.h). */
static double keypoint_tolerance(json_t *media, const tly_compare_opts *o)
{
    json_t *w = json_object_get(media, "width"), *h = json_object_get(media, "height");
    if (json_is_number(w) && json_is_number(h) && json_number_value(w) > 0 && json_number_value(h) > 0)
        return o->keypoint_dist * hypot(json_number_value(w), json_number_value(h));
    return o->keypoint_px;
}

static int match_keypoints(const tly_shapes *ans, const tly_shapes *gold, double tol, double *score,
                           tly_error *err)
{
    matching m;
    if (matching_alloc(&m, ans, gold, TLY_COMPARE_MAX_PAIRS, err) < 0)
        return -1;
    for (size_t g = 0; g < gold->n; g++)
        for (size_t a = 0; a < ans->n; a++) {
            const tly_shape *gs = &gold->shape[g], *as = &ans->shape[a];
            if (!tly_labels_equal(gs->label, as->label) || gs->n_pts != as->n_pts)
                continue;
            double sum = 0;
            size_t common = 0;
            for (size_t k = 0; k < gs->n_pts; k++)
                if (gs->visible[k] && as->visible[k]) {
                    sum += tly_point_distance(gs->pts[k], as->pts[k]);
                    common++;
                }
            if (matching_add(&m, common ? sum / (double)common : DBL_MAX, g, a, err) < 0) {
                matching_free(&m);
                return -1;
            }
        }
    size_t matched = matching_run(&m);
    int all_right = matched == gold->n && matched == ans->n;
    size_t good = 0, total = 0;
    for (size_t g = 0; g < gold->n; g++) {
        const tly_shape *gs = &gold->shape[g];
        total += gs->n_pts;
        if (m.a_of[g] == SIZE_MAX)
            continue;
        const tly_shape *as = &ans->shape[m.a_of[g]];
        for (size_t k = 0; k < gs->n_pts; k++) {
            int ok = gs->visible[k] == as->visible[k] &&
                     (!gs->visible[k] || tly_point_distance(gs->pts[k], as->pts[k]) <= tol + SLACK);
            good += (size_t)ok;
            if (!ok)
                all_right = 0;
        }
    }
    for (size_t a = 0; a < ans->n; a++)
        if (m.g_of[a] == SIZE_MAX)
            total += ans->shape[a].n_pts;
    *score = total ? (double)good / (double)total : 1.0;
    matching_free(&m);
    return all_right;
}

/* ---- per-type comparisons ---------------------------------------------------------- */

static int need_string(json_t *v, const char *code, tly_error *err)
{
    if (!json_is_string(v))
        return tly_fail(err, TLY_E_UNPROCESSABLE, code, "the value must be a string");
    return 0;
}

/* Distinct strings of a multi_choice value: 0, or -1 when v is not an array of strings. */
static int check_string_array(json_t *v, const char *code, tly_error *err)
{
    if (!json_is_array(v))
        return tly_fail(err, TLY_E_UNPROCESSABLE, code, "the value must be an array of options");
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s)
        if (!json_is_string(s))
            return tly_fail(err, TLY_E_UNPROCESSABLE, code, "option %zu must be a string", i);
    return 0;
}

static int in_array_before(json_t *arr, size_t before, const char *s)
{
    for (size_t j = 0; j < before; j++)
        if (strcmp(json_string_value(json_array_get(arr, j)), s) == 0)
            return 1;
    return 0;
}

/* Jaccard index of two arrays of strings taken as sets (duplicates count once). */
static double jaccard(json_t *a, json_t *b)
{
    size_t na = 0, nb = 0, both = 0;
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (in_array_before(a, i, s))
            continue;
        na++;
        both += (size_t)in_array_before(b, json_array_size(b), s);
    }
    for (size_t i = 0; i < json_array_size(b); i++)
        nb += (size_t)!in_array_before(b, i, json_string_value(json_array_get(b, i)));
    size_t uni = na + nb - both;
    return uni ? (double)both / (double)uni : 1.0;
}

static int compare_text(json_t *value, json_t *gold, const tly_compare_opts *o, double *score, tly_error *err)
{
    if (need_string(value, "invalid_answer", err) < 0 || need_string(gold, "invalid_gold", err) < 0)
        return -1;
    tly_words ref, hyp;
    size_t dist;
    if (tly_words_split(json_string_value(gold), json_string_length(gold), &ref, err) < 0)
        return -1;
    if (tly_words_split(json_string_value(value), json_string_length(value), &hyp, err) < 0 ||
        tly_words_distance(&ref, &hyp, &dist, err) < 0) {
        tly_words_free(&ref);
        tly_words_free(&hyp);
        return -1;
    }
    double wer = tly_wer_from_distance(dist, ref.n, hyp.n);
    tly_words_free(&ref);
    tly_words_free(&hyp);
    *score = wer >= 1 ? 0 : 1 - wer;
    return wer <= o->max_wer + SLACK;
}

static int compare_regions(tly_control_kind kind, json_t *value, json_t *gold, json_t *media,
                           const tly_compare_opts *o, double *score, tly_error *err)
{
    tly_shapes a, g;
    if (tly_shapes_parse(kind, value, "invalid_answer", &a, err) < 0) {
        tly_error_prefix(err, "answer");
        return -1;
    }
    if (tly_shapes_parse(kind, gold, "invalid_gold", &g, err) < 0) {
        tly_error_prefix(err, "gold");
        tly_shapes_free(&a);
        return -1;
    }
    int rc;
    switch (kind) {
    case TLY_KIND_BBOX:
        rc = match_regions(kind, &a, &g, o->bbox_iou, score, err);
        break;
    case TLY_KIND_POLYGON:
        rc = match_regions(kind, &a, &g, o->polygon_iou, score, err);
        break;
    case TLY_KIND_AUDIO_SEGMENTS:
        rc = match_regions(kind, &a, &g, o->segment_iou, score, err);
        break;
    default:
        rc = match_keypoints(&a, &g, keypoint_tolerance(media, o), score, err);
        break;
    }
    tly_shapes_free(&a);
    tly_shapes_free(&g);
    return rc;
}

static int compare_value(tly_control_kind kind, json_t *value, json_t *gold, json_t *media,
                         const tly_compare_opts *o, double *score, tly_error *err)
{
    switch (kind) {
    case TLY_KIND_CHOICE:
        if (need_string(value, "invalid_answer", err) < 0 || need_string(gold, "invalid_gold", err) < 0)
            return -1;
        *score = strcmp(json_string_value(value), json_string_value(gold)) == 0;
        return *score == 1;
    case TLY_KIND_MULTI_CHOICE:
        if (check_string_array(value, "invalid_answer", err) < 0 || check_string_array(gold, "invalid_gold", err) < 0)
            return -1;
        *score = jaccard(value, gold);
        return *score >= o->multi_jaccard - SLACK;
    case TLY_KIND_TEXT:
    case TLY_KIND_TRANSCRIPTION:
        return compare_text(value, gold, o, score, err);
    default:
        return compare_regions(kind, value, gold, media, o, score, err);
    }
}

int tly_compare_value(json_t *def, json_t *value, json_t *gold, json_t *media, const tly_compare_opts *o,
                      double *score, tly_error *err)
{
    tly_compare_opts dflt;
    double s = 0;
    tly_control_kind kind;
    if (!o) {
        tly_compare_opts_default(&dflt);
        o = &dflt;
    }
    if (!score)
        score = &s;
    *score = 0;
    if (tly_control_kind_of(def, &kind, err) < 0)
        return -1;
    int given = value && !json_is_null(value);
    if (!gold || json_is_null(gold)) {
        *score = given ? 0 : 1;
        return !given;
    }
    if (!given)
        return 0;
    int rc = compare_value(kind, value, gold, media, o, score, err);
    if (rc < 0) {
        *score = 0;
        const char *name = json_string_value(json_object_get(def, "name"));
        tly_error_prefix(err, "control '%s'", name ? name : "?");
    }
    return rc;
}

int tly_compare_answer(json_t *tmpl, json_t *answer, json_t *gold, json_t *media, const tly_compare_opts *o,
                       double *score, json_t **detail_out, tly_error *err)
{
    if (score)
        *score = 0;
    if (detail_out)
        *detail_out = NULL;
    json_t *controls = json_object_get(tmpl, "controls");
    if (!json_is_array(controls))
        return tly_fail(err, TLY_E_INVALID, "invalid_template", "the template needs a 'controls' array");
    if (!json_is_object(gold))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_gold", "the gold answer must be an object");
    if (answer && json_is_null(answer))
        answer = NULL;
    if (answer && !json_is_object(answer))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "the answer must be an object");
    json_t *detail = json_object();
    if (!detail)
        return oom(err);
    int all_right = 1;
    size_t compared = 0;
    double sum = 0;
    size_t i;
    json_t *def;
    json_array_foreach(controls, i, def) {
        const char *name = json_string_value(json_object_get(def, "name"));
        if (!name) {
            json_decref(detail);
            return tly_fail(err, TLY_E_INVALID, "invalid_template", "control %zu needs a 'name'", i);
        }
        json_t *g = json_object_get(gold, name);
        if (!g || json_is_null(g))
            continue;
        double s;
        int rc = tly_compare_value(def, answer ? json_object_get(answer, name) : NULL, g, media, o, &s, err);
        if (rc < 0) {
            json_decref(detail);
            return -1;
        }
        all_right &= rc;
        sum += s;
        compared++;
        json_t *d = json_pack("{s:b,s:f}", "correct", rc, "score", s);
        if (!d || json_object_set_new(detail, name, d) < 0) {
            json_decref(detail);
            return oom(err);
        }
    }
    if (compared == 0) {
        json_decref(detail);
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_gold", "the gold answer answers no control of the template");
    }
    if (score)
        *score = sum / (double)compared;
    if (detail_out)
        *detail_out = detail;
    else
        json_decref(detail);
    return all_right;
}
