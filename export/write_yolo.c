/* write_yolo.c -- YOLO detection labels (the Ultralytics / darknet text format).
 *
 * The format is Ultralytics' "YOLO format" for object detection
 * (https://docs.ultralytics.com/datasets/detect/): for every image
 * images[/<split>]/<stem>.<ext> a text file labels[/<split>]/<stem>.txt (the path with
 * "images" replaced by "labels" and the extension by .txt, as the trainer looks for
 * it), one object a line: "<class> <x_center> <y_center> <width> <height>", the
 * coordinates normalised to [0, 1] by the image's width and height; and a data.yaml
 * naming the image folders and the classes.
 *
 * Choices:
 * - Classes: the template's bbox, polygon and keypoints controls' "labels" in
 *   template order, deduplicated across controls (a polygon or keypoints control
 *   without labels is one class named after the control): the same list, in the same
 *   order, as COCO's categories (class = COCO category id - 1).
 * - Objects: every box of the bbox controls and every polygon of the polygon controls
 *   as its enclosing box (YOLO detection has boxes only; keypoints are not exported),
 *   in template order, clamped to the image first; a box with nothing left inside the
 *   image is dropped. An image without objects gets an empty file (a background
 *   image for the trainer).
 * - Coordinates with 6 decimals ("%.6f"), the convention of YOLO tools.
 * - data.yaml, written at the end: train / val / test for the splits that have items
 *   (images/<split>); without a split "train: images" and "val: images" (Ultralytics
 *   requires both keys); val falls back to the train images when no item landed in
 *   val. No "path:" key: Ultralytics then takes data.yaml's folder as the dataset
 *   root, where a relative "path: ." would be resolved against the working or
 *   datasets directory. "nc" and "names" (YAML double-quoted strings).
 * - The image size comes from the probed media; an image without one cannot be
 *   normalised and fails the export.
 */
#include "export/shapes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SLOTS = TLY_EXPORT_SPLITS };

typedef struct {
    const char *name;   /* borrowed from the template */
    int index;
} yolo_class;

typedef struct {
    const char **names;    /* class order */
    yolo_class *by_name;   /* sorted by name */
    size_t n;
    int seen[SLOTS];       /* splits that had items */
} yolo_state;

static int cmp_class(const void *a, const void *b)
{
    return strcmp(((const yolo_class *)a)->name, ((const yolo_class *)b)->name);
}

/* Counts (names == NULL) or collects the class names in template order. */
static size_t walk_classes(const tly_export_context *ctx, const char **names)
{
    size_t n = 0, i, k;
    json_t *def, *label;
    json_array_foreach(json_object_get(ctx->template_json, "controls"), i, def) {
        const char *type = json_string_value(json_object_get(def, "type"));
        const char *cname = json_string_value(json_object_get(def, "name"));
        json_t *labels = json_object_get(def, "labels");
        if (!tly_export_is_shape_control(type) || !cname)
            continue;
        if (!json_is_array(labels)) {
            if (names)
                names[n] = cname;
            n++;
        }
        json_array_foreach(labels, k, label)
            if (json_is_string(label)) {
                if (names)
                    names[n] = json_string_value(label);
                n++;
            }
    }
    return n;
}

static int build_classes(yolo_state *s, const tly_export_context *ctx, tly_error *err)
{
    size_t all = walk_classes(ctx, NULL);
    if (!all)
        return 0;
    if (!(s->names = calloc(all, sizeof *s->names)) || !(s->by_name = calloc(all, sizeof *s->by_name)))
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    walk_classes(ctx, s->names);
    /* Deduplicate, keeping the first occurrence: sort (name, position), then drop the
     * later positions and compact the names in their original order. */
    for (size_t i = 0; i < all; i++)
        s->by_name[i] = (yolo_class){s->names[i], (int)i};
    qsort(s->by_name, all, sizeof *s->by_name, cmp_class);   /* ties: any order */
    for (size_t i = 0; i + 1 < all; i++)
        for (size_t j = i + 1; j < all && strcmp(s->by_name[i].name, s->by_name[j].name) == 0; j++) {
            int a = s->by_name[i].index, b = s->by_name[j].index;
            s->names[a > b ? a : b] = NULL;   /* the later duplicate */
        }
    for (size_t i = 0; i < all; i++)
        if (s->names[i])
            s->names[s->n++] = s->names[i];
    for (size_t i = 0; i < s->n; i++)
        s->by_name[i] = (yolo_class){s->names[i], (int)i};
    qsort(s->by_name, s->n, sizeof *s->by_name, cmp_class);
    return 0;
}

static int yolo_begin(void **state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    yolo_state *s = calloc(1, sizeof *s);
    if (!s)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    *state = s;
    return build_classes(s, ctx, err);
}

static int write_objects(yolo_state *s, tly_export_file *f, const tly_export_context *ctx, const tly_export_item *it,
                         double iw, double ih, tly_error *err)
{
    size_t c, i;
    json_t *def, *shape;
    json_array_foreach(json_object_get(ctx->template_json, "controls"), c, def) {
        const char *type = json_string_value(json_object_get(def, "type"));
        const char *cname = json_string_value(json_object_get(def, "name"));
        int box = type && strcmp(type, "bbox") == 0, poly = type && strcmp(type, "polygon") == 0;
        if (!cname || (!box && !poly))
            continue;
        int labelled = json_is_array(json_object_get(def, "labels"));
        json_array_foreach(json_object_get(it->answer, cname), i, shape) {
            const char *name = labelled ? json_string_value(json_object_get(shape, "label")) : cname;
            yolo_class key = {name, 0}, *hit = NULL;
            if (!name)
                return tly_export_bad_shape(it, cname, i, err);
            if (s->n)
                hit = bsearch(&key, s->by_name, s->n, sizeof *s->by_name, cmp_class);
            if (!hit)
                return tly_fail(err, TLY_E_UNPROCESSABLE, "unknown_label",
                                "item %lld: control '%s': label '%s' is not in the template", (long long)it->item_id,
                                cname, name);
            double x0, y0, x1, y1;
            if (box) {
                x0 = json_number_value(json_object_get(shape, "x"));
                y0 = json_number_value(json_object_get(shape, "y"));
                x1 = x0 + json_number_value(json_object_get(shape, "w"));
                y1 = y0 + json_number_value(json_object_get(shape, "h"));
            } else if (tly_export_polygon_extent(json_object_get(shape, "points"), &x0, &y0, &x1, &y1) < 0) {
                return tly_export_bad_shape(it, cname, i, err);
            }
            x0 = fmax(x0, 0), y0 = fmax(y0, 0), x1 = fmin(x1, iw), y1 = fmin(y1, ih);
            if (!(x1 > x0 && y1 > y0))
                continue;   /* nothing of it inside the image */
            if (tly_export_printf(f, err, "%d %.6f %.6f %.6f %.6f\n", hit->index, (x0 + x1) / 2 / iw,
                                  (y0 + y1) / 2 / ih, (x1 - x0) / iw, (y1 - y0) / ih) < 0)
                return -1;
        }
    }
    return 0;
}

/* labels[/<split>]/<stem>.txt: the media path with images/ -> labels/ and .txt. */
static int label_path(const tly_export_item *it, char *path, size_t pathsz, tly_error *err)
{
    int n;
    const char *mp = it->media_path;
    if (mp && strncmp(mp, "images/", 7) == 0) {
        const char *dot = strrchr(mp, '.'), *slash = strrchr(mp, '/');
        size_t len = dot && dot > slash ? (size_t)(dot - mp) : strlen(mp);
        n = snprintf(path, pathsz, "labels/%.*s.txt", (int)(len - 7), mp + 7);
    } else if (it->split) {
        n = snprintf(path, pathsz, "labels/%s/%s.txt", it->split, it->stem);
    } else {
        n = snprintf(path, pathsz, "labels/%s.txt", it->stem);
    }
    if (n < 0 || (size_t)n >= pathsz)
        return tly_fail(err, TLY_E_INTERNAL, "writer_bug", "item %lld: path too long", (long long)it->item_id);
    return 0;
}

static int yolo_item(void *state, const tly_export_context *ctx, const tly_export_item *it, tly_export_out *out,
                     int pass, tly_error *err)
{
    yolo_state *s = state;
    if (ctx->has_split) {
        int slot = tly_export_split_slot(ctx, it, NULL, err);
        if (slot < 0)
            return -1;
        s->seen[slot] = 1;
    }
    double iw = json_number_value(json_object_get(it->media, "width"));
    double ih = json_number_value(json_object_get(it->media, "height"));
    if (!(iw > 0 && ih > 0))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "media_size_unknown",
                        "item %lld: the image's size is unknown, so its boxes cannot be normalised",
                        (long long)it->item_id);
    char path[512];
    if (label_path(it, path, sizeof path, err) < 0)
        return -1;
    tly_export_file *f = tly_export_open(out, path, err);
    if (!f)
        return -1;
    int rc = write_objects(s, f, ctx, it, iw, ih, err);
    tly_error close_err;
    if (tly_export_close(f, rc < 0 ? &close_err : err) < 0)
        rc = -1;
    return rc;
}

/* A YAML double-quoted scalar (YAML 1.2, section 7.3.1). */
static int put_yaml_string(tly_export_file *f, const char *s, tly_error *err)
{
    if (tly_export_puts(f, "\"", err) < 0)
        return -1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int rc = *p == '"' || *p == '\\' ? tly_export_printf(f, err, "\\%c", *p)
                 : *p < 0x20 || *p == 0x7f ? tly_export_printf(f, err, "\\x%02x", *p)
                                           : tly_export_write(f, p, 1, err);
        if (rc < 0)
            return -1;
    }
    return tly_export_puts(f, "\"", err);
}

static int yolo_end(void *state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    yolo_state *s = state;
    tly_export_file *f = tly_export_open(out, "data.yaml", err);
    if (!f)
        return -1;
    int rc = tly_export_printf(f, err, "# YOLO dataset exported by Tally (%s)\n", ctx->job_name ? ctx->job_name : "");
    if (!ctx->has_split) {
        if (rc == 0)
            rc = tly_export_puts(f, "train: images\nval: images\n", err);
    } else if (rc == 0) {
        rc = tly_export_puts(f, "train: images/train\n", err);
        if (rc == 0 && !s->seen[1] && s->seen[0])
            rc = tly_export_puts(f, "# no item landed in val: validating on the train images\n"
                                    "val: images/train\n", err);
        else if (rc == 0)
            rc = tly_export_puts(f, "val: images/val\n", err);
        if (rc == 0 && s->seen[2])
            rc = tly_export_puts(f, "test: images/test\n", err);
    }
    if (rc == 0)
        rc = tly_export_printf(f, err, "nc: %zu\nnames: [", s->n);
    for (size_t i = 0; rc == 0 && i < s->n; i++)
        if ((i && tly_export_puts(f, ", ", err) < 0) || put_yaml_string(f, s->names[i], err) < 0)
            rc = -1;
    if (rc == 0)
        rc = tly_export_puts(f, "]\n", err);
    tly_error close_err;
    if (tly_export_close(f, rc < 0 ? &close_err : err) < 0)
        rc = -1;
    return rc;
}

static void yolo_free(void *state)
{
    yolo_state *s = state;
    if (!s)
        return;
    free(s->names);
    free(s->by_name);
    free(s);
}

const tly_export_writer tly_writer_yolo = {
    .name = "yolo", .media = "image", .passes = 1, .begin = yolo_begin, .item = yolo_item, .end = yolo_end,
    .free_state = yolo_free,
};
