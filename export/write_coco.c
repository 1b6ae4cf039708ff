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
 * - Two passes, memory O(1) per file: pass 0 writes the head and the "images" array
 *   of every file, pass 1 the "annotations"; the files stay open in between.
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
    int64_t images;      /* written so far (for the commas) */
    int64_t next_ann;    /* the next annotation id */
} coco_file;

typedef struct {
    json_t *categories;   /* the "categories" array */
    category *by_name;    /* sorted by name */
    size_t ncat;
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

/* The category id of a shape of control def (0 with err set if unknown). */
static int64_t category_of(const coco_state *s, json_t *def, json_t *shape, const tly_export_item *it,
                           tly_error *err)
{
    const char *name = json_is_array(json_object_get(def, "labels"))
                           ? json_string_value(json_object_get(shape, "label"))
                           : json_string_value(json_object_get(def, "name"));
    category key = {name, 0}, *hit = NULL;
    if (name && s->ncat)
        hit = bsearch(&key, s->by_name, s->ncat, sizeof *s->by_name, cmp_category);
    if (!hit) {
        tly_fail(err, TLY_E_UNPROCESSABLE, "unknown_label",
                 "item %lld: control '%s': label '%s' is not in the template",
                 (long long)it->item_id, json_string_value(json_object_get(def, "name")), name ? name : "(none)");
        return 0;
    }
    return hit->id;
}

static int put_num(tly_export_file *f, double v, tly_error *err)
{
    char b[32];
    tly_export_num(v, b, sizeof b);
    return tly_export_puts(f, b, err);
}

static int put_string(tly_export_file *f, const char *s, tly_error *err)
{
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
    if (!(cf->f = tly_export_open(out, path, err)))
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
    return ctx->has_split ? 0 : open_file(s, ctx, out, NULL, &s->files[0], err);
}

static int write_image(coco_file *cf, const tly_export_item *it, tly_error *err)
{
    double w = json_number_value(json_object_get(it->media, "width"));
    double h = json_number_value(json_object_get(it->media, "height"));
    return tly_export_puts(cf->f, cf->images++ ? ",\n{\"id\":" : "\n{\"id\":", err) < 0 ||
                   put_num(cf->f, (double)(it->index + 1), err) < 0 ||
                   tly_export_puts(cf->f, ",\"file_name\":", err) < 0 || put_string(cf->f, it->media_path, err) < 0 ||
                   tly_export_puts(cf->f, ",\"width\":", err) < 0 || put_num(cf->f, w, err) < 0 ||
                   tly_export_puts(cf->f, ",\"height\":", err) < 0 || put_num(cf->f, h, err) < 0 ||
                   tly_export_puts(cf->f, "}", err) < 0
               ? -1
               : 0;
}

/* The start of an annotation, up to and including "category_id". */
static int ann_head(coco_file *cf, const tly_export_item *it, int64_t cat, tly_error *err)
{
    return tly_export_puts(cf->f, cf->next_ann > 1 ? ",\n{\"id\":" : "\n{\"id\":", err) < 0 ||
                   put_num(cf->f, (double)cf->next_ann++, err) < 0 ||
                   tly_export_puts(cf->f, ",\"image_id\":", err) < 0 ||
                   put_num(cf->f, (double)(it->index + 1), err) < 0 ||
                   tly_export_puts(cf->f, ",\"category_id\":", err) < 0 || put_num(cf->f, (double)cat, err) < 0
               ? -1
               : 0;
}

/* ,"bbox":[x,y,w,h],"area":a,"iscrowd":0 */
static int ann_box(coco_file *cf, double x, double y, double w, double h, double area, tly_error *err)
{
    return tly_export_puts(cf->f, ",\"bbox\":[", err) < 0 || put_num(cf->f, x, err) < 0 ||
                   tly_export_puts(cf->f, ",", err) < 0 || put_num(cf->f, y, err) < 0 ||
                   tly_export_puts(cf->f, ",", err) < 0 || put_num(cf->f, w, err) < 0 ||
                   tly_export_puts(cf->f, ",", err) < 0 || put_num(cf->f, h, err) < 0 ||
                   tly_export_puts(cf->f, "],\"area\":", err) < 0 || put_num(cf->f, area, err) < 0 ||
                   tly_export_puts(cf->f, ",\"iscrowd\":0", err) < 0
               ? -1
               : 0;
}

/* ,"score":c} */
static int ann_tail(coco_file *cf, const tly_export_item *it, tly_error *err)
{
    return tly_export_puts(cf->f, ",\"score\":", err) < 0 || put_num(cf->f, it->confidence, err) < 0 ||
                   tly_export_puts(cf->f, "}", err) < 0
               ? -1
               : 0;
}

static int bad_shape(const tly_export_item *it, json_t *def, size_t i, tly_error *err)
{
    return tly_export_bad_shape(it, json_string_value(json_object_get(def, "name")), i, err);
}

/* [x, y] into *x, *y; 0 or -1. */
static int point_xy(json_t *pt, double *x, double *y)
{
    if (!json_is_array(pt) || json_array_size(pt) != 2 || !json_is_number(json_array_get(pt, 0)) ||
        !json_is_number(json_array_get(pt, 1)))
        return -1;
    *x = json_number_value(json_array_get(pt, 0));
    *y = json_number_value(json_array_get(pt, 1));
    return 0;
}

static int write_bbox(coco_file *cf, const tly_export_item *it, json_t *shape, int64_t cat, tly_error *err)
{
    double x = json_number_value(json_object_get(shape, "x")), y = json_number_value(json_object_get(shape, "y"));
    double w = json_number_value(json_object_get(shape, "w")), h = json_number_value(json_object_get(shape, "h"));
    return ann_head(cf, it, cat, err) < 0 || ann_box(cf, x, y, w, h, w * h, err) < 0 ||
                   tly_export_puts(cf->f, ",\"segmentation\":[]", err) < 0 || ann_tail(cf, it, err) < 0
               ? -1
               : 0;
}

static int write_polygon(coco_file *cf, const tly_export_item *it, json_t *def, size_t i, json_t *shape, int64_t cat,
                         tly_error *err)
{
    json_t *pts = json_object_get(shape, "points");
    size_t n = json_array_size(pts);
    double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY, twice = 0;
    if (n < 3)
        return bad_shape(it, def, i, err);
    for (size_t k = 0; k < n; k++) {
        double x, y, xn, yn;
        if (point_xy(json_array_get(pts, k), &x, &y) < 0 || point_xy(json_array_get(pts, (k + 1) % n), &xn, &yn) < 0)
            return bad_shape(it, def, i, err);
        twice += x * yn - xn * y;   /* shoelace */
        x0 = fmin(x0, x), y0 = fmin(y0, y), x1 = fmax(x1, x), y1 = fmax(y1, y);
    }
    if (ann_head(cf, it, cat, err) < 0 || ann_box(cf, x0, y0, x1 - x0, y1 - y0, fabs(twice) / 2, err) < 0 ||
        tly_export_puts(cf->f, ",\"segmentation\":[[", err) < 0)
        return -1;
    for (size_t k = 0; k < n; k++) {
        double x, y;
        point_xy(json_array_get(pts, k), &x, &y);
        if ((k && tly_export_puts(cf->f, ",", err) < 0) || put_num(cf->f, x, err) < 0 ||
            tly_export_puts(cf->f, ",", err) < 0 || put_num(cf->f, y, err) < 0)
            return -1;
    }
    return tly_export_puts(cf->f, "]]", err) < 0 || ann_tail(cf, it, err) < 0 ? -1 : 0;
}

static int write_keypoints(coco_file *cf, const tly_export_item *it, json_t *def, size_t i, json_t *shape,
                           int64_t cat, tly_error *err)
{
    json_t *pts = json_object_get(shape, "points");
    size_t n = json_array_size(pts);
    double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
    int64_t visible = 0;
    if (!json_is_array(pts))
        return bad_shape(it, def, i, err);
    for (size_t k = 0; k < n; k++) {
        json_t *pt = json_array_get(pts, k);
        double x, y;
        if (json_is_null(pt))
            continue;
        if (point_xy(pt, &x, &y) < 0)
            return bad_shape(it, def, i, err);
        visible++;
        x0 = fmin(x0, x), y0 = fmin(y0, y), x1 = fmax(x1, x), y1 = fmax(y1, y);
    }
    if (!visible)
        x0 = y0 = x1 = y1 = 0;
    if (ann_head(cf, it, cat, err) < 0 || ann_box(cf, x0, y0, x1 - x0, y1 - y0, (x1 - x0) * (y1 - y0), err) < 0 ||
        tly_export_puts(cf->f, ",\"segmentation\":[],\"keypoints\":[", err) < 0)
        return -1;
    for (size_t k = 0; k < n; k++) {
        json_t *pt = json_array_get(pts, k);
        double x = 0, y = 0;
        int placed = point_xy(pt, &x, &y) == 0;
        if ((k && tly_export_puts(cf->f, ",", err) < 0) || put_num(cf->f, x, err) < 0 ||
            tly_export_puts(cf->f, ",", err) < 0 || put_num(cf->f, y, err) < 0 ||
            tly_export_puts(cf->f, placed ? ",2" : ",0", err) < 0)
            return -1;
    }
    return tly_export_puts(cf->f, "],\"num_keypoints\":", err) < 0 || put_num(cf->f, (double)visible, err) < 0 ||
                   ann_tail(cf, it, err) < 0
               ? -1
               : 0;
}

static int write_annotations(coco_state *s, coco_file *cf, const tly_export_context *ctx, const tly_export_item *it,
                             tly_error *err)
{
    size_t c, i;
    json_t *def, *shape;
    json_array_foreach(json_object_get(ctx->template_json, "controls"), c, def) {
        const char *type = json_string_value(json_object_get(def, "type"));
        const char *cname = json_string_value(json_object_get(def, "name"));
        if (!tly_export_is_shape_control(type) || !cname)
            continue;
        json_t *shapes = json_object_get(it->answer, cname);
        if (shapes && !json_is_array(shapes) && !json_is_null(shapes))
            return bad_shape(it, def, 0, err);
        json_array_foreach(shapes, i, shape) {
            if (!json_is_object(shape))
                return bad_shape(it, def, i, err);
            int64_t cat = category_of(s, def, shape, it, err);
            if (!cat)
                return -1;
            int rc = strcmp(type, "bbox") == 0      ? write_bbox(cf, it, shape, cat, err)
                     : strcmp(type, "polygon") == 0 ? write_polygon(cf, it, def, i, shape, cat, err)
                                                    : write_keypoints(cf, it, def, i, shape, cat, err);
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
    if (pass == 0) {
        if (!cf->f && open_file(s, ctx, out, it->split, cf, err) < 0)
            return -1;
        return write_image(cf, it, err);
    }
    if (!cf->f)
        return tly_fail(err, TLY_E_INTERNAL, "writer_bug", "item %lld was not in the first pass",
                        (long long)it->item_id);
    return write_annotations(s, cf, ctx, it, err);
}

static int coco_end(void *state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    coco_state *s = state;
    for (int i = 0; i < SLOTS; i++) {
        coco_file *cf = &s->files[i];
        if (!cf->f)
            continue;
        if (pass == 0) {
            if (tly_export_puts(cf->f, cf->images ? "\n],\"annotations\":[" : "],\"annotations\":[", err) < 0)
                return -1;
            continue;
        }
        if (tly_export_puts(cf->f, cf->next_ann > 1 ? "\n]}\n" : "]}\n", err) < 0)
            return -1;
        tly_export_file *f = cf->f;
        cf->f = NULL;
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
    for (int i = 0; i < SLOTS; i++)
        tly_export_close_all(&s->files[i].f, 1, NULL);
    json_decref(s->categories);
    free(s->by_name);
    free(s);
}

const tly_export_writer tly_writer_coco = {
    .name = "coco", .media = "image", .passes = 2, .answerless_passes = 1u, .begin = coco_begin, .item = coco_item, .end = coco_end,
    .free_state = coco_free,
};
