/* write_coco.c -- COCO "instances" JSON: boxes, polygons and keypoints of images.
 *
 * The format is the one of the COCO dataset's annotation files
 * (https://cocodataset.org/#format-data, "1. Object Detection" and "2. Keypoint
 * Detection"), as pycocotools' COCO() loads it:
 *   {"info":{...},"licenses":[],"categories":[...],"images":[...],"annotations":[...]}
 *
 * Choices:
 * - Files: "annotations/instances.json"; with a split, one file per split that has
 *   items, "annotations/instances_<split>.json" (a split file is opened when its
 *   first image arrives, so an empty split has no file; without a split the one file
 *   is opened up front, so an empty export is still a valid, empty COCO file).
 * - One pass, memory O(1) per file: each item's image goes into the file, its
 *   annotations into a scratch file (tly_export_scratch), appended after the last
 *   image. A second pass over the store (as this writer once did) cost more than
 *   writing the annotations twice through the page cache.
 * - "info" has no date (the bytes must not depend on when the export ran):
 *   description = the project's name, contributor "Tally", version "1.0".
 * - categories: ids 1, 2, ... in template order over the bbox, polygon and keypoints
 *   controls' "labels", deduplicated across controls (a polygon or keypoints control
 *   without labels is one category named after the control); "supercategory":"none".
 *   A category of a keypoints control that names its points carries "keypoints"
 *   (those names) and "skeleton":[] (Tally does not know the skeleton); when a label
 *   is shared by several such controls the first one's names are used.
 * - images: "id" = the item's index + 1 (unique in the export, so also across the
 *   split files), "file_name" = the item's media_path relative to the dataset root
 *   ("images/train/00000042-photo.jpg"), "width" and "height" from the probed media.
 * - annotations: "id" 1, 2, ... per file in item and template order; "iscrowd":0.
 *   Boxes: "bbox":[x,y,w,h] (top-left, pixels of the original image, as in Tally),
 *   "area" = w*h, "segmentation":[]. Polygons: "segmentation":[[x1,y1,x2,y2,...]],
 *   "bbox" = their extent, "area" by the shoelace formula. Keypoints:
 *   "keypoints":[x,y,v,...] with v = 2 for a placed point and 0 (x = y = 0) for a
 *   missing one (Tally has no "labelled but occluded", COCO's v = 1),
 *   "num_keypoints", "bbox" = the placed points' extent and "area" = its w*h (COCO
 *   uses a segment's area for the OKS scale; without a segment the box is the
 *   nearest), "segmentation":[].
 * - Every annotation also has "score" = the result's confidence: the field COCO's
 *   results files use, ignored by loaders of ground truth.
 * - Numbers are printed with tly_export_num (12, not 12.0); a label the template
 *   does not know is an error, not a silent drop.
 */
#include "export/shapes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { SLOTS = TLY_EXPORT_SPLITS };   /* train, val, test (slot 0 alone without a split) */

typedef struct {
    const char *name;   /* borrowed from the template */
    int64_t id;
} category;

typedef struct {
    tly_export_file *f;
    tly_export_file *ann;   /* the "annotations" section, until the images are done */
    int64_t images;      /* written so far (for the commas) */
    int64_t next_ann;    /* the next annotation id */
} coco_file;

enum { K_BBOX, K_POLYGON, K_KEYPOINTS };

/* A shape control of the template, looked up once rather than per item. */
typedef struct {
    json_t *def;          /* borrowed from the template */
    const char *name;
    int kind;             /* K_* */
    int by_label;         /* has "labels": a shape's category is its label, else the control */
} control;

typedef struct {
    json_t *categories;   /* the "categories" array */
    category *by_name;    /* sorted by name */
    size_t ncat;
    control *controls;    /* the template's shape controls, in order */
    size_t ncontrols;
    json_t *media;        /* the media object media_text was made from (a reference held, */
    char media_text[128]; /* so its address cannot come back as another): ,"width":W,"height":H} */
    size_t media_len;
    coco_file files[SLOTS];
} coco_state;

static int cmp_category(const void *a, const void *b)
{
    return strcmp(((const category *)a)->name, ((const category *)b)->name);
}

static json_t *find_category(json_t *cats, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(cats, i, c)
        if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
            return c;
    return NULL;
}

/* One category (if new), and a keypoints control's point names on it. */
static int add_category(coco_state *s, const char *name, json_t *points)
{
    json_t *c = find_category(s->categories, name);
    if (!c) {
        c = json_pack("{s:I,s:s,s:s}", "id", (json_int_t)json_array_size(s->categories) + 1, "name", name,
                      "supercategory", "none");
        if (!c || json_array_append_new(s->categories, c) < 0)
            return -1;
    }
    if (points && !json_object_get(c, "keypoints") &&
        (json_object_set(c, "keypoints", points) < 0 || json_object_set_new(c, "skeleton", json_array()) < 0))
        return -1;
    return 0;
}

static int build_categories(coco_state *s, const tly_export_context *ctx, tly_error *err)
{
    if (!(s->categories = json_array()))
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    size_t i, k;
    json_t *def, *label;
    json_array_foreach(json_object_get(ctx->template_json, "controls"), i, def) {
        const char *type = json_string_value(json_object_get(def, "type"));
        const char *cname = json_string_value(json_object_get(def, "name"));
        if (!tly_export_is_shape_control(type) || !cname)
            continue;
        json_t *points = strcmp(type, "keypoints") == 0 ? json_object_get(def, "points") : NULL;
        json_t *labels = json_object_get(def, "labels");
        int rc = 0;
        if (!json_is_array(labels))
            rc = add_category(s, cname, points);
        json_array_foreach(labels, k, label)
            if (rc == 0 && json_is_string(label))
                rc = add_category(s, json_string_value(label), points);
        if (rc < 0)
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    }
    s->ncat = json_array_size(s->categories);
    if (s->ncat && !(s->by_name = calloc(s->ncat, sizeof *s->by_name)))
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    json_t *c;
    json_array_foreach(s->categories, i, c) {
        s->by_name[i].name = json_string_value(json_object_get(c, "name"));
        s->by_name[i].id = json_integer_value(json_object_get(c, "id"));
    }
    if (s->ncat)
        qsort(s->by_name, s->ncat, sizeof *s->by_name, cmp_category);
    return 0;
}

/* The category id of a shape of control ctl (0 with err set if unknown). */
static int64_t category_of(const coco_state *s, const control *ctl, tly_jv label, const tly_export_item *it,
                           tly_error *err)
{
    int by_label = ctl->by_label;
    const char *cname = ctl->name;
    if (by_label && label.type == TLY_JV_STRING) {
        size_t lo = 0, hi = s->ncat;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = tly_jv_string_cmp(label, s->by_name[mid].name);
            if (c == 0)
                return s->by_name[mid].id;
            if (c < 0)
                hi = mid;
            else
                lo = mid + 1;
        }
    } else if (!by_label && cname) {
        category key = {cname, 0};
        category *hit = s->ncat ? bsearch(&key, s->by_name, s->ncat, sizeof *s->by_name, cmp_category) : NULL;
        if (hit)
            return hit->id;
    }
    char name[256] = "(none)";
    if (by_label && label.type == TLY_JV_STRING)
        tly_jv_string(label, name, sizeof name);
    else if (!by_label && cname)
        snprintf(name, sizeof name, "%s", cname);
    tly_fail(err, TLY_E_UNPROCESSABLE, "unknown_label", "item %lld: control '%s': label '%s' is not in the template",
             (long long)it->item_id, cname, name);
    return 0;
}

static int put_string(tly_export_file *f, const char *s, tly_error *err)
{
    size_t n = 0;
    while (s && s[n] && (unsigned char)s[n] < 0x80)
        n++;
    if (s && !s[n])   /* ASCII (every path Tally makes): nothing to check */
        return tly_export_json_string(f, s, n, err);
    json_t *j = json_string(s ? s : "");
    if (!j)
        return tly_fail(err, TLY_E_INVALID, "invalid_result", "a string is not valid UTF-8");
    int rc = tly_export_json(f, j, err);
    json_decref(j);
    return rc;
}

/* Opens a file and writes everything up to the first image. */
static int open_file(coco_state *s, const tly_export_context *ctx, tly_export_out *out, const char *split,
                     coco_file *cf, tly_error *err)
{
    char path[96];
    if (split)
        snprintf(path, sizeof path, "annotations/instances_%s.json", split);
    else
        snprintf(path, sizeof path, "annotations/instances.json");
    if (!(cf->f = tly_export_open(out, path, err)) || !(cf->ann = tly_export_scratch(out, err)))
        return -1;
    cf->next_ann = 1;
    json_t *info = json_pack("{s:s,s:s,s:s,s:s}", "description", ctx->project_name ? ctx->project_name : "",
                             "version", "1.0", "contributor", "Tally", "url", "");
    if (!info)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    int rc = tly_export_puts(cf->f, "{\"info\":", err) < 0 || tly_export_json(cf->f, info, err) < 0 ||
                     tly_export_puts(cf->f, ",\"licenses\":[],\"categories\":", err) < 0 ||
                     tly_export_json(cf->f, s->categories, err) < 0 || tly_export_puts(cf->f, ",\"images\":[", err) < 0
                 ? -1
                 : 0;
    json_decref(info);
    return rc;
}

static int coco_begin(void **state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    if (pass != 0)
        return 0;
    coco_state *s = calloc(1, sizeof *s);
    if (!s)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    *state = s;
    if (build_categories(s, ctx, err) < 0)
        return -1;
    json_t *controls = json_object_get(ctx->template_json, "controls"), *def;
    size_t i;
    if (json_array_size(controls) && !(s->controls = calloc(json_array_size(controls), sizeof *s->controls)))
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    json_array_foreach(controls, i, def) {
        const char *type = json_string_value(json_object_get(def, "type"));
        const char *cname = json_string_value(json_object_get(def, "name"));
        if (!tly_export_is_shape_control(type) || !cname)
            continue;
        s->controls[s->ncontrols++] = (control){
            .def = def, .name = cname, .by_label = json_is_array(json_object_get(def, "labels")),
            .kind = strcmp(type, "bbox") == 0 ? K_BBOX : strcmp(type, "polygon") == 0 ? K_POLYGON : K_KEYPOINTS};
    }
    return ctx->has_split ? 0 : open_file(s, ctx, out, NULL, &s->files[0], err);
}

static int write_image(coco_state *s, coco_file *cf, const tly_export_item *it, tly_error *err)
{
    if (!s->media || it->media != s->media) {   /* items mostly share one media object (store_exports.c) */
        char *p = s->media_text;
        TLY_EXPORT_LIT(p, ",\"width\":");
        p = tly_export_num_at(p, json_number_value(json_object_get(it->media, "width")));
        TLY_EXPORT_LIT(p, ",\"height\":");
        p = tly_export_num_at(p, json_number_value(json_object_get(it->media, "height")));
        *p++ = '}';
        s->media_len = (size_t)(p - s->media_text);
        json_decref(s->media);
        s->media = it->media ? json_incref(it->media) : NULL;
    }
    char buf[128], *p = buf;
    if (cf->images++)
        TLY_EXPORT_LIT(p, ",\n{\"id\":");
    else
        TLY_EXPORT_LIT(p, "\n{\"id\":");
    p = tly_export_num_at(p, (double)(it->index + 1));
    TLY_EXPORT_LIT(p, ",\"file_name\":");
    if (tly_export_write(cf->f, buf, (size_t)(p - buf), err) < 0 || put_string(cf->f, it->media_path, err) < 0)
        return -1;
    return tly_export_write(cf->f, s->media_text, s->media_len, err);
}

/* An annotation's pieces are assembled in a local buffer and written at once (a
 * write call per token showed in profiles). Each fixed piece below needs at most
 * 256 bytes: numbers are at most 40. */
#define PIECE 256

/* The start of an annotation, up to and including "category_id", at p. */
static char *ann_head(char *p, coco_file *cf, const tly_export_item *it, int64_t cat)
{
    if (cf->next_ann > 1)
        TLY_EXPORT_LIT(p, ",\n{\"id\":");
    else
        TLY_EXPORT_LIT(p, "\n{\"id\":");
    p = tly_export_num_at(p, (double)cf->next_ann++);
    TLY_EXPORT_LIT(p, ",\"image_id\":");
    p = tly_export_num_at(p, (double)(it->index + 1));
    TLY_EXPORT_LIT(p, ",\"category_id\":");
    return tly_export_num_at(p, (double)cat);
}

/* ,"bbox":[x,y,w,h],"area":a,"iscrowd":0 at p. */
static char *ann_box(char *p, double x, double y, double w, double h, double area)
{
    TLY_EXPORT_LIT(p, ",\"bbox\":[");
    p = tly_export_num_at(p, x);
    *p++ = ',';
    p = tly_export_num_at(p, y);
    *p++ = ',';
    p = tly_export_num_at(p, w);
    *p++ = ',';
    p = tly_export_num_at(p, h);
    TLY_EXPORT_LIT(p, "],\"area\":");
    p = tly_export_num_at(p, area);
    TLY_EXPORT_LIT(p, ",\"iscrowd\":0");
    return p;
}

/* ,"score":c} at p. */
static char *ann_tail(char *p, const tly_export_item *it)
{
    TLY_EXPORT_LIT(p, ",\"score\":");
    p = tly_export_num_at(p, it->confidence);
    *p++ = '}';
    return p;
}

static int put_buf(tly_export_file *f, const char *buf, const char *end, tly_error *err)
{
    return tly_export_write(f, buf, (size_t)(end - buf), err);
}

static int bad_shape(const tly_export_item *it, json_t *def, size_t i, tly_error *err)
{
    return tly_export_bad_shape(it, json_string_value(json_object_get(def, "name")), i, err);
}

/* [x, y] into *x, *y; 0 or -1. */
static int point_xy(tly_jv pt, double *x, double *y)
{
    tly_jv_iter k = tly_jv_iter_of(pt);
    tly_jv vx, vy, more;
    if (pt.type != TLY_JV_ARRAY || !tly_jv_next(&k, &vx) || !tly_jv_next(&k, &vy) || tly_jv_next(&k, &more) ||
        !tly_jv_is_number(vx) || !tly_jv_is_number(vy))
        return -1;
    *x = tly_jv_number(vx);
    *y = tly_jv_number(vy);
    return 0;
}

enum { F_LABEL, F_X, F_Y, F_W, F_H, F_POINTS, NFIELDS };

/* The members of a shape that the writer reads, in one walk over it (the last of
 * duplicate keys, as everywhere). */
static void shape_fields(tly_jv shape, tly_jv *field)
{
    static const char *const names[NFIELDS] = {"label", "x", "y", "w", "h", "points"};
    tly_jv_iter it = tly_jv_iter_of(shape);
    tly_jv key, val;
    memset(field, 0, NFIELDS * sizeof *field);
    while (tly_jv_next_member(&it, &key, &val)) {
        int k = tly_jv_key_index(key, names, NFIELDS);
        if (k >= 0)
            field[k] = val;
    }
}

static int write_bbox(coco_file *cf, const tly_export_item *it, const tly_jv *field, int64_t cat, tly_error *err)
{
    double x = tly_jv_number(field[F_X]), y = tly_jv_number(field[F_Y]);
    double w = tly_jv_number(field[F_W]), h = tly_jv_number(field[F_H]);
    char buf[4 * PIECE], *p = ann_box(ann_head(buf, cf, it, cat), x, y, w, h, w * h);
    TLY_EXPORT_LIT(p, ",\"segmentation\":[]");
    return put_buf(cf->ann, buf, ann_tail(p, it), err);
}

static int write_polygon(coco_file *cf, const tly_export_item *it, json_t *def, size_t i, tly_jv pts, int64_t cat,
                         tly_error *err)
{
    double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY, twice = 0;
    double fx = 0, fy = 0, px = 0, py = 0, x, y;
    size_t n = 0;
    tly_jv pt;
    /* One walk: each point closes the previous edge; the last edge (back to the first
     * point) comes after, so the shoelace sum adds its terms in point order. */
    for (tly_jv_iter k = tly_jv_iter_of(pts); tly_jv_next(&k, &pt); n++) {
        if (point_xy(pt, &x, &y) < 0)
            return bad_shape(it, def, i, err);
        if (n)
            twice += px * y - x * py;   /* shoelace */
        else
            fx = x, fy = y;
        px = x, py = y;
        x0 = fmin(x0, x), y0 = fmin(y0, y), x1 = fmax(x1, x), y1 = fmax(y1, y);
    }
    if (pts.type != TLY_JV_ARRAY || n < 3)
        return bad_shape(it, def, i, err);
    twice += px * fy - fx * py;
    char buf[4 * PIECE], *p = ann_box(ann_head(buf, cf, it, cat), x0, y0, x1 - x0, y1 - y0, fabs(twice) / 2);
    TLY_EXPORT_LIT(p, ",\"segmentation\":[[");
    if (put_buf(cf->ann, buf, p, err) < 0)
        return -1;
    n = 0;
    for (tly_jv_iter k = tly_jv_iter_of(pts); tly_jv_next(&k, &pt); n++) {
        point_xy(pt, &x, &y);
        p = buf;
        if (n)
            *p++ = ',';
        p = tly_export_num_at(p, x);
        *p++ = ',';
        if (put_buf(cf->ann, buf, tly_export_num_at(p, y), err) < 0)
            return -1;
    }
    p = buf;
    TLY_EXPORT_LIT(p, "]]");
    return put_buf(cf->ann, buf, ann_tail(p, it), err);
}

static int write_keypoints(coco_file *cf, const tly_export_item *it, json_t *def, size_t i, tly_jv pts, int64_t cat,
                           tly_error *err)
{
    double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
    int64_t visible = 0;
    tly_jv pt;
    if (pts.type != TLY_JV_ARRAY)
        return bad_shape(it, def, i, err);
    for (tly_jv_iter k = tly_jv_iter_of(pts); tly_jv_next(&k, &pt);) {
        double x, y;
        if (pt.type == TLY_JV_NULL)
            continue;
        if (point_xy(pt, &x, &y) < 0)
            return bad_shape(it, def, i, err);
        visible++;
        x0 = fmin(x0, x), y0 = fmin(y0, y), x1 = fmax(x1, x), y1 = fmax(y1, y);
    }
    if (!visible)
        x0 = y0 = x1 = y1 = 0;
    char buf[4 * PIECE], *p = ann_box(ann_head(buf, cf, it, cat), x0, y0, x1 - x0, y1 - y0, (x1 - x0) * (y1 - y0));
    TLY_EXPORT_LIT(p, ",\"segmentation\":[],\"keypoints\":[");
    if (put_buf(cf->ann, buf, p, err) < 0)
        return -1;
    size_t n = 0;
    for (tly_jv_iter k = tly_jv_iter_of(pts); tly_jv_next(&k, &pt); n++) {
        double x = 0, y = 0;
        int placed = point_xy(pt, &x, &y) == 0;
        p = buf;
        if (n)
            *p++ = ',';
        p = tly_export_num_at(p, x);
        *p++ = ',';
        p = tly_export_num_at(p, y);
        *p++ = ',';
        *p++ = placed ? '2' : '0';
        if (put_buf(cf->ann, buf, p, err) < 0)
            return -1;
    }
    p = buf;
    TLY_EXPORT_LIT(p, "],\"num_keypoints\":");
    p = tly_export_num_at(p, (double)visible);
    return put_buf(cf->ann, buf, ann_tail(p, it), err);
}

static int write_annotations(coco_state *s, coco_file *cf, const tly_export_context *ctx, const tly_export_item *it,
                             tly_error *err)
{
    size_t i;
    tly_jv shape, field[NFIELDS];
    (void)ctx;
    for (const control *ctl = s->controls; ctl < s->controls + s->ncontrols; ctl++) {
        json_t *def = ctl->def;
        tly_jv shapes = tly_jv_get(it->answer_view, ctl->name);
        if (shapes.type != TLY_JV_NONE && shapes.type != TLY_JV_ARRAY && shapes.type != TLY_JV_NULL)
            return bad_shape(it, def, 0, err);
        i = 0;
        for (tly_jv_iter k = tly_jv_iter_of(shapes); tly_jv_next(&k, &shape); i++) {
            if (shape.type != TLY_JV_OBJECT)
                return bad_shape(it, def, i, err);
            shape_fields(shape, field);
            int64_t cat = category_of(s, ctl, field[F_LABEL], it, err);
            if (!cat)
                return -1;
            int rc = ctl->kind == K_BBOX      ? write_bbox(cf, it, field, cat, err)
                     : ctl->kind == K_POLYGON ? write_polygon(cf, it, def, i, field[F_POINTS], cat, err)
                                              : write_keypoints(cf, it, def, i, field[F_POINTS], cat, err);
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

static int coco_item(void *state, const tly_export_context *ctx, const tly_export_item *it, tly_export_out *out,
                     int pass, tly_error *err)
{
    coco_state *s = state;
    int slot = tly_export_split_slot(ctx, it, NULL, err);
    if (slot < 0)
        return -1;
    coco_file *cf = &s->files[slot];
    (void)pass;
    if (!cf->f && open_file(s, ctx, out, it->split, cf, err) < 0)
        return -1;
    return write_image(s, cf, it, err) < 0 ? -1 : write_annotations(s, cf, ctx, it, err);
}

static int coco_end(void *state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    coco_state *s = state;
    for (int i = 0; i < SLOTS; i++) {
        coco_file *cf = &s->files[i];
        if (!cf->f)
            continue;
        if (tly_export_puts(cf->f, cf->images ? "\n],\"annotations\":[" : "],\"annotations\":[", err) < 0 ||
            tly_export_append_scratch(cf->f, cf->ann, err) < 0 ||
            tly_export_puts(cf->f, cf->next_ann > 1 ? "\n]}\n" : "]}\n", err) < 0)
            return -1;
        tly_export_file *f = cf->f;
        cf->f = NULL;
        tly_export_close_all(&cf->ann, 1, NULL);
        if (tly_export_close(f, err) < 0)
            return -1;
    }
    return 0;
}

static void coco_free(void *state)
{
    coco_state *s = state;
    if (!s)
        return;
    for (int i = 0; i < SLOTS; i++) {
        tly_export_close_all(&s->files[i].ann, 1, NULL);
        tly_export_close_all(&s->files[i].f, 1, NULL);
    }
    json_decref(s->categories);
    json_decref(s->media);
    free(s->by_name);
    free(s->controls);
    free(s);
}

const tly_export_writer tly_writer_coco = {
    .name = "coco", .media = "image", .passes = 1, .raw_answers = 1, .begin = coco_begin, .item = coco_item,
    .end = coco_end, .free_state = coco_free,
};
