/* aggregate.c -- see aggregate.h.
 *
 * Shape of the code: tly_aggregate_value resolves the weights and the set of workers
 * who answered (struct answering), then hands over to one function per method.
 * Region values are parsed once into tly_shapes (qa/compare.h) and clustered over a
 * flat member array; members are grouped per cluster afterwards with a counting sort,
 * so nothing is O(members x clusters) beyond the clustering search itself. Outputs are
 * collected as (sort key, JSON object) rows and sorted before being put in the result
 * array, so the fused value does not depend on the order clusters were made in.
 *
 * Ownership: every function frees what it allocated before returning, on success and
 * on failure; the fused value is built as a new JSON reference and handed to the
 * caller through tly_agg_value.value only on success. Input JSON is borrowed; polygon
 * results are deep copies of a worker's polygon.
 */
#include "qa/aggregate.h"

#include "qa/text.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS_WEIGHT 1e-6
#define SLACK 1e-9

static int oom(tly_error *err)
{
    return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
}

static double clamp01(double x)
{
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

/* x rounded to 1 / per_unit (100: 0.01 px; 1000: 1 ms). */
static double round_to(double x, double per_unit)
{
    return round(x * per_unit) / per_unit;
}

/* The workers who answered a control: their index into values and their weight. */
typedef struct {
    size_t n;
    size_t *idx;
    double *w;
    double total;
} answering;

static void answering_free(answering *an)
{
    free(an->idx);
    free(an->w);
    memset(an, 0, sizeof *an);
}

static int answering_collect(json_t *const *values, const double *weights, size_t n, answering *an, tly_error *err)
{
    memset(an, 0, sizeof *an);
    if (n && !values)
        return tly_fail(err, TLY_E_INVALID, "invalid", "no values for %zu workers", n);
    an->idx = malloc((n ? n : 1) * sizeof *an->idx);
    an->w = malloc((n ? n : 1) * sizeof *an->w);
    if (!an->idx || !an->w) {
        answering_free(an);
        return oom(err);
    }
    for (size_t i = 0; i < n; i++) {
        double w = weights ? weights[i] : 1.0;
        if (!isfinite(w)) {
            answering_free(an);
            return tly_fail(err, TLY_E_INVALID, "invalid_weight", "worker %zu has a weight that is not a finite number", i);
        }
        if (!values[i] || json_is_null(values[i]))
            continue;
        an->idx[an->n] = i;
        an->w[an->n] = w > 0 ? w : EPS_WEIGHT;
        an->total += an->w[an->n];
        an->n++;
    }
    return 0;
}

/* ---- weighted vote over strings ---------------------------------------------------- */

typedef struct {
    const char *s;   /* NULL is a candidate too (a shape without a label) */
    double w;
    size_t rank;     /* position in the definition's list, else after it by first appearance */
} vote;

/* Adds w to s's entry of v (nv entries, room for one more). */
static void vote_add(vote *v, size_t *nv, const char *s, double w, json_t *order)
{
    for (size_t i = 0; i < *nv; i++)
        if (tly_labels_equal(v[i].s, s)) {
            v[i].w += w;
            return;
        }
    size_t n_order = json_array_size(order), rank = n_order + *nv;
    for (size_t i = 0; s && i < n_order; i++)
        if (json_is_string(json_array_get(order, i)) && strcmp(json_string_value(json_array_get(order, i)), s) == 0) {
            rank = i;
            break;
        }
    v[*nv] = (vote){s, w, rank};
    (*nv)++;
}

/* The most weight; ties (within SLACK) to the lower rank. nv >= 1. */
static const vote *vote_winner(const vote *v, size_t nv)
{
    const vote *best = &v[0];
    for (size_t i = 1; i < nv; i++)
        if (v[i].w > best->w + SLACK || (fabs(v[i].w - best->w) <= SLACK && v[i].rank < best->rank))
            best = &v[i];
    return best;
}

static int bad_value(size_t worker, const char *what, tly_error *err)
{
    return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "worker %zu: the value must be %s", worker, what);
}

static int agg_choice(json_t *def, json_t *const *values, const answering *an, tly_agg_value *out, tly_error *err)
{
    vote *v = malloc(an->n * sizeof *v);
    size_t nv = 0;
    if (!v)
        return oom(err);
    for (size_t k = 0; k < an->n; k++) {
        json_t *val = values[an->idx[k]];
        if (!json_is_string(val)) {
            free(v);
            return bad_value(an->idx[k], "a string", err);
        }
        vote_add(v, &nv, json_string_value(val), an->w[k], json_object_get(def, "options"));
    }
    const vote *best = vote_winner(v, nv);
    out->value = json_string(best->s);
    out->confidence = clamp01(best->w / an->total);
    free(v);
    return out->value ? 0 : oom(err);
}

static int agg_multi_choice(json_t *def, json_t *const *values, const answering *an, tly_agg_value *out,
                            tly_error *err)
{
    json_t *options = json_object_get(def, "options");
    size_t cap = 0;
    for (size_t k = 0; k < an->n; k++) {
        json_t *val = values[an->idx[k]];
        if (!json_is_array(val))
            return bad_value(an->idx[k], "an array of options", err);
        for (size_t j = 0; j < json_array_size(val); j++)
            if (!json_is_string(json_array_get(val, j)))
                return bad_value(an->idx[k], "an array of options", err);
        cap += json_array_size(val);
    }
    vote *v = malloc((cap ? cap : 1) * sizeof *v);
    size_t nv = 0;
    if (!v)
        return oom(err);
    for (size_t k = 0; k < an->n; k++) {
        json_t *val = values[an->idx[k]];
        for (size_t j = 0; j < json_array_size(val); j++) {
            const char *s = json_string_value(json_array_get(val, j));
            int dup = 0;   /* a worker's vote counts once per option */
            for (size_t p = 0; p < j && !dup; p++)
                dup = strcmp(json_string_value(json_array_get(val, p)), s) == 0;
            if (!dup)
                vote_add(v, &nv, s, an->w[k], options);
        }
    }
    /* Result in rank order: selection sort over the few candidates. */
    json_t *arr = json_array();
    double conf = 1;
    int *done = calloc(nv ? nv : 1, sizeof *done);
    if (!arr || !done) {
        json_decref(arr);
        free(v);
        free(done);
        return oom(err);
    }
    for (size_t r = 0; r < nv; r++) {
        size_t pick = SIZE_MAX;
        for (size_t i = 0; i < nv; i++)
            if (!done[i] && (pick == SIZE_MAX || v[i].rank < v[pick].rank))
                pick = i;
        done[pick] = 1;
        double share = clamp01(v[pick].w / an->total);
        conf = fmin(conf, fmax(share, 1 - share));
        if (share > 0.5 + SLACK && json_array_append_new(arr, json_string(v[pick].s)) < 0) {
            json_decref(arr);
            free(v);
            free(done);
            return oom(err);
        }
    }
    free(v);
    free(done);
    out->value = arr;
    out->confidence = conf;
    return 0;
}

/* ---- text and transcripts ---------------------------------------------------------- */

static void words_free_all(tly_words *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tly_words_free(&w[i]);
    free(w);
}

/* Every answering worker's text split into words (*out, an->n entries). */
static int split_all(json_t *const *values, const answering *an, tly_words **out, tly_error *err)
{
    tly_words *w = calloc(an->n, sizeof *w);
    *out = NULL;
    if (!w)
        return oom(err);
    for (size_t k = 0; k < an->n; k++) {
        json_t *val = values[an->idx[k]];
        if (!json_is_string(val)) {
            words_free_all(w, an->n);
            return bad_value(an->idx[k], "a string", err);
        }
        if (tly_words_split(json_string_value(val), json_string_length(val), &w[k], err) < 0) {
            tly_error_prefix(err, "worker %zu", an->idx[k]);
            words_free_all(w, an->n);
            return -1;
        }
    }
    *out = w;
    return 0;
}

/* The transcript medoid (aggregate.h) into *best (answering index) and *conf. */
static int medoid(const tly_words *words, const answering *an, size_t *best, double *conf, tly_error *err)
{
    *best = 0;
    *conf = 1;
    if (an->n == 1)
        return 0;
    double *cost = calloc(an->n, sizeof *cost);
    if (!cost)
        return oom(err);
    for (size_t c = 0; c < an->n; c++)
        for (size_t j = c + 1; j < an->n; j++) {
            size_t dist;
            if (tly_words_distance(&words[c], &words[j], &dist, err) < 0) {
                free(cost);
                return -1;
            }
            double d = (tly_wer_from_distance(dist, words[c].n, words[j].n) +
                        tly_wer_from_distance(dist, words[j].n, words[c].n)) / 2;
            cost[c] += an->w[j] * d;
            cost[j] += an->w[c] * d;
        }
    size_t b = 0;
    for (size_t c = 1; c < an->n; c++)
        if (cost[c] < cost[b] - SLACK || (fabs(cost[c] - cost[b]) <= SLACK && an->w[c] > an->w[b] + SLACK))
            b = c;
    *best = b;
    *conf = clamp01(1 - cost[b] / (an->total - an->w[b]));
    free(cost);
    return 0;
}

static json_t *copy_string(json_t *s)
{
    return json_stringn(json_string_value(s), json_string_length(s));
}

static int agg_transcription(json_t *const *values, const answering *an, tly_agg_value *out, tly_error *err)
{
    tly_words *w;
    size_t best;
    if (split_all(values, an, &w, err) < 0)
        return -1;
    int rc = medoid(w, an, &best, &out->confidence, err);
    words_free_all(w, an->n);
    if (rc < 0)
        return -1;
    out->value = copy_string(values[an->idx[best]]);
    return out->value ? 0 : oom(err);
}

static int agg_text(json_t *const *values, const answering *an, tly_agg_value *out, tly_error *err)
{
    tly_words *w;
    if (split_all(values, an, &w, err) < 0)
        return -1;
    size_t *group = malloc(an->n * sizeof *group);   /* first member of k's group */
    double *gw = calloc(an->n, sizeof *gw);          /* weight per group (by first member) */
    if (!group || !gw) {
        free(group);
        free(gw);
        words_free_all(w, an->n);
        return oom(err);
    }
    size_t top = 0;
    for (size_t k = 0; k < an->n; k++) {
        group[k] = k;
        for (size_t j = 0; j < k; j++)
            if (group[j] == j && tly_words_equal(&w[j], &w[k])) {
                group[k] = j;
                break;
            }
        gw[group[k]] += an->w[k];
        if (gw[group[k]] > gw[top] + SLACK)
            top = group[k];
    }
    int rc = 0;
    size_t pick = 0;
    double share = gw[top] / an->total;
    if (share > 0.5 + SLACK) {
        /* The group's most trusted member, as written (ties: the earliest). */
        pick = top;
        for (size_t k = top + 1; k < an->n; k++)
            if (group[k] == top && an->w[k] > an->w[pick] + SLACK)
                pick = k;
        out->confidence = clamp01(share);
    } else {
        rc = medoid(w, an, &pick, &out->confidence, err);
    }
    free(group);
    free(gw);
    words_free_all(w, an->n);
    if (rc < 0)
        return -1;
    out->value = copy_string(values[an->idx[pick]]);
    return out->value ? 0 : oom(err);
}

/* ---- regions: parsing every worker's shapes ---------------------------------------- */

typedef struct {
    size_t worker;          /* answering index */
    const tly_shape *shape;
    double w;
    size_t cluster;
} member;

typedef struct {
    tly_control_kind kind;
    tly_shapes *shapes;     /* per answering worker */
    size_t n_workers;
    member *m;              /* in clustering order: workers by weight, then their shapes */
    size_t n_members;
} region_input;

static void region_input_free(region_input *in)
{
    for (size_t k = 0; in->shapes && k < in->n_workers; k++)
        tly_shapes_free(&in->shapes[k]);
    free(in->shapes);
    free(in->m);
    memset(in, 0, sizeof *in);
}

/* Answering indices ordered by weight (highest first), ties by index: a stable
 * insertion sort (worker counts are small). */
static void order_by_weight(const answering *an, size_t *order)
{
    for (size_t k = 0; k < an->n; k++) {
        size_t j = k;
        while (j > 0 && an->w[order[j - 1]] < an->w[k]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = k;
    }
}

static int region_input_load(tly_control_kind kind, json_t *const *values, const answering *an, size_t max_shapes,
                             region_input *in, tly_error *err)
{
    memset(in, 0, sizeof *in);
    in->kind = kind;
    in->shapes = calloc(an->n, sizeof *in->shapes);
    size_t *order = malloc(an->n * sizeof *order);
    if (!in->shapes || !order) {
        free(order);
        region_input_free(in);
        return oom(err);
    }
    in->n_workers = an->n;
    size_t total = 0;
    for (size_t k = 0; k < an->n; k++) {
        if (tly_shapes_parse(kind, values[an->idx[k]], "invalid_answer", &in->shapes[k], err) < 0) {
            tly_error_prefix(err, "worker %zu", an->idx[k]);
            free(order);
            region_input_free(in);
            return -1;
        }
        total += in->shapes[k].n;
        if (total > max_shapes) {
            free(order);
            region_input_free(in);
            return tly_fail(err, TLY_E_UNPROCESSABLE, "too_many_shapes", "more than %zu shapes to aggregate", max_shapes);
        }
    }
    in->m = malloc((total ? total : 1) * sizeof *in->m);
    if (!in->m) {
        free(order);
        region_input_free(in);
        return oom(err);
    }
    order_by_weight(an, order);
    for (size_t r = 0; r < an->n; r++) {
        size_t k = order[r];
        for (size_t s = 0; s < in->shapes[k].n; s++)
            in->m[in->n_members++] = (member){k, &in->shapes[k].shape[s], an->w[k], 0};
    }
    free(order);
    return 0;
}

/* ---- regions: clustering boxes, segments and polygons ------------------------------ */

typedef struct {
    const char *label;
    double wsum;          /* weight of the members (each worker at most once) */
    double s[4];          /* weighted sums: x, y, w, h (boxes) or start, end (segments) */
    size_t last_worker;   /* answering index of the newest member's worker */
    size_t seed;          /* member index of the first member */
    size_t first, count;  /* after grouping: members by_cluster[first .. first+count) */
} cluster;

/* The cluster's current shape: weighted mean box / segment, or the seed polygon. */
static tly_shape cluster_shape(const region_input *in, const cluster *c)
{
    tly_shape s = *in->m[c->seed].shape;
    if (in->kind == TLY_KIND_BBOX) {
        s.box = (tly_box){c->s[0] / c->wsum, c->s[1] / c->wsum, c->s[2] / c->wsum, c->s[3] / c->wsum};
    } else if (in->kind == TLY_KIND_AUDIO_SEGMENTS) {
        s.start = c->s[0] / c->wsum;
        s.end = c->s[1] / c->wsum;
    }
    return s;
}

static void cluster_add(const region_input *in, cluster *c, size_t mi)
{
    const member *m = &in->m[mi];
    c->wsum += m->w;
    c->last_worker = m->worker;
    if (in->kind == TLY_KIND_BBOX) {
        c->s[0] += m->w * m->shape->box.x;
        c->s[1] += m->w * m->shape->box.y;
        c->s[2] += m->w * m->shape->box.w;
        c->s[3] += m->w * m->shape->box.h;
    } else if (in->kind == TLY_KIND_AUDIO_SEGMENTS) {
        c->s[0] += m->w * m->shape->start;
        c->s[1] += m->w * m->shape->end;
    }
}

typedef struct {
    cluster *c;
    size_t n;
    size_t *by_cluster;   /* member indices grouped by cluster */
} clustering;

static void clustering_free(clustering *cl)
{
    free(cl->c);
    free(cl->by_cluster);
    memset(cl, 0, sizeof *cl);
}

static int cluster_members(const region_input *in, double thr, clustering *cl, tly_error *err)
{
    memset(cl, 0, sizeof *cl);
    size_t cap = in->n_members ? in->n_members : 1;
    cl->c = calloc(cap, sizeof *cl->c);   /* at most one cluster per member */
    cl->by_cluster = malloc(cap * sizeof *cl->by_cluster);
    if (!cl->c || !cl->by_cluster) {
        clustering_free(cl);
        return oom(err);
    }
    for (size_t mi = 0; mi < in->n_members; mi++) {
        member *m = &in->m[mi];
        size_t best = SIZE_MAX;
        double best_iou = 0;
        for (size_t ci = 0; ci < cl->n; ci++) {
            cluster *c = &cl->c[ci];
            if (c->last_worker == m->worker || !tly_labels_equal(c->label, m->shape->label))
                continue;
            tly_shape cs = cluster_shape(in, c);
            double iou = tly_shape_iou(in->kind, &cs, m->shape);
            if (iou >= thr - SLACK && (best == SIZE_MAX || iou > best_iou + SLACK)) {
                best = ci;
                best_iou = iou;
            }
        }
        if (best == SIZE_MAX) {
            best = cl->n++;
            cl->c[best] = (cluster){.label = m->shape->label, .seed = mi};
        }
        m->cluster = best;
        cluster_add(in, &cl->c[best], mi);
    }
    /* Group members by cluster (counting sort; insertion order kept within a cluster). */
    for (size_t mi = 0; mi < in->n_members; mi++)
        cl->c[in->m[mi].cluster].count++;
    size_t pos = 0;
    for (size_t ci = 0; ci < cl->n; ci++) {
        cl->c[ci].first = pos;
        pos += cl->c[ci].count;
        cl->c[ci].count = 0;
    }
    for (size_t mi = 0; mi < in->n_members; mi++) {
        cluster *c = &cl->c[in->m[mi].cluster];
        cl->by_cluster[c->first + c->count++] = mi;
    }
    return 0;
}

/* A fused shape with its sort key. */
typedef struct {
    double key[4];
    const char *label;
    json_t *obj;
} row;

static int cmp_row(const void *x, const void *y)
{
    const row *a = x, *b = y;
    for (int i = 0; i < 4; i++)
        if (a->key[i] != b->key[i])
            return a->key[i] < b->key[i] ? -1 : 1;
    if (!a->label || !b->label)
        return (a->label != NULL) - (b->label != NULL);
    return strcmp(a->label, b->label);
}

/* Sorts rows into a new array (the rows' objects are moved into it). */
static json_t *rows_to_array(row *rows, size_t n)
{
    qsort(rows, n, sizeof *rows, cmp_row);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (arr && json_array_append_new(arr, rows[i].obj) < 0) {
            json_decref(arr);
            arr = NULL;
        } else if (!arr) {
            json_decref(rows[i].obj);
        }
        rows[i].obj = NULL;
    }
    return arr;
}

static void rows_free(row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        json_decref(rows[i].obj);
    free(rows);
}

/* The member of a polygon cluster with the highest weighted mean IoU to the others. */
static size_t polygon_medoid(const region_input *in, const clustering *cl, const cluster *c)
{
    size_t best = cl->by_cluster[c->first];
    double best_score = -1;
    for (size_t i = 0; i < c->count && c->count > 1; i++) {
        const member *mi = &in->m[cl->by_cluster[c->first + i]];
        double sum = 0, wsum = 0;
        for (size_t j = 0; j < c->count; j++) {
            if (j == i)
                continue;
            const member *mj = &in->m[cl->by_cluster[c->first + j]];
            sum += mj->w * tly_shape_iou(in->kind, mi->shape, mj->shape);
            wsum += mj->w;
        }
        double score = sum / wsum;
        if (score > best_score + SLACK) {
            best_score = score;
            best = cl->by_cluster[c->first + i];
        }
    }
    return best;
}

/* The JSON object for a kept cluster into r (and its fused shape into *fused). */
static int fused_row(const region_input *in, const clustering *cl, const cluster *c, row *r, tly_shape *fused,
                     size_t *medoid_member)
{
    *fused = cluster_shape(in, c);
    *medoid_member = SIZE_MAX;
    r->label = c->label;
    if (in->kind == TLY_KIND_POLYGON) {
        *medoid_member = polygon_medoid(in, cl, c);
        *fused = *in->m[*medoid_member].shape;
        r->obj = json_deep_copy(fused->json);
        r->key[0] = fused->box.y;
        r->key[1] = fused->box.x;
        r->key[2] = fused->box.w;
        r->key[3] = fused->box.h;
        return r->obj ? 0 : -1;
    }
    r->obj = json_object();
    if (!r->obj)
        return -1;
    int bad = 0;
    if (c->label)
        bad |= json_object_set_new(r->obj, "label", json_string(c->label));
    if (in->kind == TLY_KIND_BBOX) {
        tly_box *b = &fused->box;
        b->x = round_to(b->x, 100);
        b->y = round_to(b->y, 100);
        b->w = round_to(b->w, 100);
        b->h = round_to(b->h, 100);
        bad |= json_object_set_new(r->obj, "x", json_real(b->x));
        bad |= json_object_set_new(r->obj, "y", json_real(b->y));
        bad |= json_object_set_new(r->obj, "w", json_real(b->w));
        bad |= json_object_set_new(r->obj, "h", json_real(b->h));
        r->key[0] = b->y;
        r->key[1] = b->x;
        r->key[2] = b->w;
        r->key[3] = b->h;
    } else {
        fused->start = round_to(fused->start, 1000);
        fused->end = round_to(fused->end, 1000);
        bad |= json_object_set_new(r->obj, "start", json_real(fused->start));
        bad |= json_object_set_new(r->obj, "end", json_real(fused->end));
        r->key[0] = fused->start;
        r->key[1] = fused->end;
        r->key[2] = r->key[3] = 0;
    }
    return bad ? -1 : 0;
}

static int agg_regions(tly_control_kind kind, json_t *const *values, const answering *an, const tly_compare_opts *o,
                       tly_agg_value *out, tly_error *err)
{
    region_input in;
    clustering cl;
    double thr = kind == TLY_KIND_BBOX ? o->bbox_iou : kind == TLY_KIND_POLYGON ? o->polygon_iou : o->segment_iou;
    if (region_input_load(kind, values, an, kind == TLY_KIND_POLYGON ? TLY_AGG_MAX_POLYGONS : TLY_AGG_MAX_SHAPES, &in,
                          err) < 0)
        return -1;
    if (cluster_members(&in, thr, &cl, err) < 0) {
        region_input_free(&in);
        return -1;
    }
    row *rows = calloc(cl.n ? cl.n : 1, sizeof *rows);
    if (!rows) {
        clustering_free(&cl);
        region_input_free(&in);
        return oom(err);
    }
    size_t n_rows = 0, fit_n = 0;
    double margin = 0, fit = 0;
    for (size_t ci = 0; ci < cl.n; ci++) {
        const cluster *c = &cl.c[ci];
        double support = clamp01(c->wsum / an->total);
        int kept = support > 0.5 + SLACK;
        margin += kept ? support : 1 - support;
        if (!kept)
            continue;
        tly_shape fused;
        size_t med;
        if (fused_row(&in, &cl, c, &rows[n_rows], &fused, &med) < 0) {
            rows_free(rows, n_rows + 1);
            clustering_free(&cl);
            region_input_free(&in);
            return oom(err);
        }
        n_rows++;
        if (kind == TLY_KIND_POLYGON && c->count == 1) {
            fit += 1;
            fit_n++;
            continue;
        }
        for (size_t j = 0; j < c->count; j++) {
            size_t mj = cl.by_cluster[c->first + j];
            if (mj == med)
                continue;
            fit += tly_shape_iou(kind, in.m[mj].shape, &fused);
            fit_n++;
        }
    }
    out->confidence = cl.n ? clamp01(margin / (double)cl.n * (fit_n ? fit / (double)fit_n : 1)) : 1;
    out->value = rows_to_array(rows, n_rows);
    free(rows);
    clustering_free(&cl);
    region_input_free(&in);
    return out->value ? 0 : oom(err);
}

/* ---- keypoints --------------------------------------------------------------------- */

static json_t *keypoint_slot(json_t *def, const region_input *in, const answering *an, size_t slot, double cw,
                             double *agree, size_t *agree_n)
{
    json_t *names = json_object_get(def, "points");
    size_t n_pts = json_array_size(names);
    vote *v = malloc(an->n * sizeof *v);
    size_t nv = 0;
    if (!v)
        return NULL;
    for (size_t k = 0; k < an->n; k++) {
        if (in->shapes[k].n <= slot)
            continue;
        const tly_shape *s = &in->shapes[k].shape[slot];
        vote_add(v, &nv, s->label, an->w[k], json_object_get(def, "labels"));
        if (!json_is_array(names) && s->n_pts > n_pts)
            n_pts = s->n_pts;
    }
    json_t *inst = json_object(), *pts = json_array();
    const char *label = vote_winner(v, nv)->s;
    free(v);
    int bad = !inst || !pts;
    if (!bad && label)
        bad |= json_object_set_new(inst, "label", json_string(label));
    for (size_t p = 0; p < n_pts && !bad; p++) {
        double vw = 0, sx = 0, sy = 0;
        for (size_t k = 0; k < an->n; k++) {
            if (in->shapes[k].n <= slot)
                continue;
            const tly_shape *s = &in->shapes[k].shape[slot];
            if (p < s->n_pts && s->visible[p]) {
                vw += an->w[k];
                sx += an->w[k] * s->pts[p].x;
                sy += an->w[k] * s->pts[p].y;
            }
        }
        double share = clamp01(vw / cw);
        *agree += fmax(share, 1 - share);
        (*agree_n)++;
        json_t *pt = share > 0.5 + SLACK ? json_pack("[ff]", round_to(sx / vw, 100), round_to(sy / vw, 100))
                                         : json_null();
        bad |= json_array_append_new(pts, pt) < 0;
    }
    if (!bad && json_object_set(inst, "points", pts) < 0)
        bad = 1;
    json_decref(pts);
    if (bad) {
        json_decref(inst);
        return NULL;
    }
    return inst;
}

static int agg_keypoints(json_t *def, json_t *const *values, const answering *an, tly_agg_value *out, tly_error *err)
{
    region_input in;
    if (region_input_load(TLY_KIND_KEYPOINTS, values, an, TLY_AGG_MAX_SHAPES, &in, err) < 0)
        return -1;
    size_t slots = 0;
    for (size_t k = 0; k < an->n; k++)
        if (in.shapes[k].n > slots)
            slots = in.shapes[k].n;
    json_t *arr = json_array();
    double margin = 0, agree = 0;
    size_t agree_n = 0;
    for (size_t slot = 0; slot < slots && arr; slot++) {
        double cw = 0;
        for (size_t k = 0; k < an->n; k++)
            if (in.shapes[k].n > slot)
                cw += an->w[k];
        double support = clamp01(cw / an->total);
        int kept = support > 0.5 + SLACK;
        margin += kept ? support : 1 - support;
        if (!kept)
            continue;
        json_t *inst = keypoint_slot(def, &in, an, slot, cw, &agree, &agree_n);
        if (!inst || json_array_append_new(arr, inst) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    region_input_free(&in);
    if (!arr)
        return oom(err);
    out->value = arr;
    out->confidence = slots ? clamp01(margin / (double)slots * (agree_n ? agree / (double)agree_n : 1)) : 1;
    return 0;
}

/* ---- entry points ------------------------------------------------------------------ */

static const char *method_of(tly_control_kind kind)
{
    switch (kind) {
    case TLY_KIND_CHOICE: return "weighted_vote";
    case TLY_KIND_MULTI_CHOICE: return "per_option_vote";
    case TLY_KIND_TEXT: return "text_vote";
    case TLY_KIND_BBOX: return "box_fusion";
    case TLY_KIND_POLYGON: return "polygon_medoid";
    case TLY_KIND_KEYPOINTS: return "keypoint_fusion";
    case TLY_KIND_AUDIO_SEGMENTS: return "segment_fusion";
    case TLY_KIND_TRANSCRIPTION: return "transcript_medoid";
    }
    return "unknown";
}

int tly_aggregate_value(json_t *def, json_t *const *values, const double *weights, size_t n,
                        const tly_compare_opts *o, tly_agg_value *out, tly_error *err)
{
    tly_compare_opts dflt;
    tly_control_kind kind;
    answering an;
    out->value = NULL;
    out->confidence = 0;
    out->method = "unknown";
    if (!o) {
        tly_compare_opts_default(&dflt);
        o = &dflt;
    }
    if (tly_control_kind_of(def, &kind, err) < 0)
        return -1;
    out->method = method_of(kind);
    if (answering_collect(values, weights, n, &an, err) < 0)
        return -1;
    int rc;
    if (an.n == 0) {
        out->value = json_null();
        out->confidence = n > 0 ? 1 : 0;
        rc = 0;
    } else {
        switch (kind) {
        case TLY_KIND_CHOICE: rc = agg_choice(def, values, &an, out, err); break;
        case TLY_KIND_MULTI_CHOICE: rc = agg_multi_choice(def, values, &an, out, err); break;
        case TLY_KIND_TEXT: rc = agg_text(values, &an, out, err); break;
        case TLY_KIND_TRANSCRIPTION: rc = agg_transcription(values, &an, out, err); break;
        case TLY_KIND_KEYPOINTS: rc = agg_keypoints(def, values, &an, out, err); break;
        default: rc = agg_regions(kind, values, &an, o, out, err); break;
        }
    }
    answering_free(&an);
    if (rc < 0) {
        json_decref(out->value);
        out->value = NULL;
        out->confidence = 0;
        const char *name = json_string_value(json_object_get(def, "name"));
        tly_error_prefix(err, "control '%s'", name ? name : "?");
        return -1;
    }
    return 0;
}

int tly_aggregate_answer(json_t *tmpl, json_t *const *answers, const double *weights, size_t n,
                         const tly_compare_opts *o, json_t **answer_out, double *confidence_out,
                         json_t **detail_out, const char **method_out, tly_error *err)
{
    *answer_out = NULL;
    *confidence_out = 0;
    if (detail_out)
        *detail_out = NULL;
    if (method_out)
        *method_out = "mixed";
    json_t *controls = json_object_get(tmpl, "controls");
    if (!json_is_array(controls) || json_array_size(controls) == 0)
        return tly_fail(err, TLY_E_INVALID, "invalid_template", "the template needs a non-empty 'controls' array");
    if (n && !answers)
        return tly_fail(err, TLY_E_INVALID, "invalid", "no answers for %zu workers", n);
    for (size_t i = 0; i < n; i++)
        if (answers[i] && !json_is_null(answers[i]) && !json_is_object(answers[i]))
            return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_answer", "worker %zu: the answer must be an object", i);
    json_t **vals = malloc((n ? n : 1) * sizeof *vals);
    json_t *result = json_object(), *detail = json_object();
    if (!vals || !result || !detail)
        goto nomem;
    double conf = 1;
    int mixed = 0;
    const char *method = NULL;
    size_t c;
    json_t *def;
    json_array_foreach(controls, c, def) {
        const char *name = json_string_value(json_object_get(def, "name"));
        if (!name) {
            tly_fail(err, TLY_E_INVALID, "invalid_template", "control %zu needs a 'name'", c);
            goto fail;
        }
        size_t workers = 0;
        for (size_t i = 0; i < n; i++) {
            vals[i] = json_is_object(answers[i]) ? json_object_get(answers[i], name) : NULL;
            workers += vals[i] && !json_is_null(vals[i]);
        }
        tly_agg_value av;
        if (tly_aggregate_value(def, vals, weights, n, o, &av, err) < 0)
            goto fail;
        if (!json_is_null(av.value)) {
            if (json_object_set_new(result, name, av.value) < 0)
                goto nomem;
        } else {
            json_decref(av.value);
        }
        json_t *d = json_pack("{s:s,s:f,s:I}", "method", av.method, "confidence", av.confidence, "workers",
                              (json_int_t)workers);
        if (!d || json_object_set_new(detail, name, d) < 0)
            goto nomem;
        conf = fmin(conf, av.confidence);
        if (!method)
            method = av.method;
        else if (strcmp(method, av.method) != 0)
            mixed = 1;
    }
    free(vals);
    *answer_out = result;
    *confidence_out = conf;
    if (detail_out)
        *detail_out = detail;
    else
        json_decref(detail);
    if (method_out)
        *method_out = mixed ? "mixed" : method;
    return 0;
nomem:
    oom(err);
fail:
    free(vals);
    json_decref(result);
    json_decref(detail);
    return -1;
}
