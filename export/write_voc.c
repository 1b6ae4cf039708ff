/* write_voc.c -- Pascal VOC detection XML: one file per image.
 *
 * The format is the annotation XML of the PASCAL Visual Object Classes challenge
 * (development kit documentation, Everingham & Winn, "The PASCAL Visual Object
 * Classes Challenge 2012 Development Kit", section 4 "Annotation"; the same layout
 * labelImg and CVAT read and write):
 *   <annotation><folder/><filename/><path/><source><database/></source>
 *   <size><width/><height/><depth/></size><segmented>0</segmented>
 *   <object><name/><pose/><truncated/><difficult/><bndbox><xmin/>...</bndbox></object>...
 *   </annotation>
 *
 * Choices:
 * - Files: "Annotations/<stem>.xml" for every image (also one without objects: VOC
 *   lists negatives too), and the image lists "ImageSets/Main/<split>.txt" (one stem a
 *   line, in item order) or, without a split, "ImageSets/Main/default.txt" (CVAT's
 *   name for an unsplit set). The list files stay open across items, one per split,
 *   opened with their first item. VOC's per-class lists (<class>_<split>.txt) are not
 *   written. Media stay where the core puts them ("images[/<split>]/..."), named by
 *   <folder> (the media path's directory), <filename> and <path>, rather than
 *   VOC's JPEGImages/.
 * - Objects: every box of the template's bbox controls, and every polygon of its
 *   polygon controls as the polygon's enclosing box (VOC's XML has boxes only;
 *   keypoints are not exported). <name> is the shape's label, or the control's name
 *   for a polygon control without labels; <pose> Unspecified, <difficult> 0,
 *   <truncated> 1 when the box touches the image border.
 * - VOC coordinates are 1-based integer pixels, both ends inclusive: xmin =
 *   round(x) + 1 and xmax = round(x + w), clamped to [1, width] (the same for y), and
 *   xmax >= xmin so a sub-pixel box keeps one pixel.
 * - <depth> is the probed channel count (3 when unknown).
 * - All text is XML-escaped (tly_export_xml_escape).
 */
#include "export/shapes.h"
#include "core/fsutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SLOTS = TLY_EXPORT_SPLITS };

typedef struct {
    tly_export_file *lists[SLOTS];   /* ImageSets/Main/<split>.txt (slot 0 alone without a split) */
} voc_state;

static int put_xml(tly_export_file *f, const char *s, tly_error *err)
{
    size_t n = strlen(s ? s : "") * 6 + 1;   /* "&quot;" is the longest entity */
    char *buf = malloc(n);
    if (!buf)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    tly_export_xml_escape(s, buf, n);
    int rc = tly_export_puts(f, buf, err);
    free(buf);
    return rc;
}

/* <tag>escaped text</tag> with indent tabs and a newline. */
static int element(tly_export_file *f, int indent, const char *tag, const char *text, tly_error *err)
{
    return tly_export_printf(f, err, "%.*s<%s>", indent, "\t\t\t\t", tag) < 0 || put_xml(f, text, err) < 0 ||
                   tly_export_printf(f, err, "</%s>\n", tag) < 0
               ? -1
               : 0;
}

static int element_int(tly_export_file *f, int indent, const char *tag, long long v, tly_error *err)
{
    return tly_export_printf(f, err, "%.*s<%s>%lld</%s>\n", indent, "\t\t\t\t", tag, v, tag);
}

static int voc_begin(void **state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    if (!(*state = calloc(1, sizeof(voc_state))))
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    return 0;
}

/* A pixel coordinate in VOC's 1-based convention, within [1, max] (max <= 0: unknown). */
static long long clamp_px(double v, double max)
{
    if (v < 1)
        v = 1;
    if (max > 0 && v > max)
        v = max;
    if (!(v < 1e15))
        v = 1e15;   /* an unknown size and an absurd box: still a defined conversion */
    return (long long)v;
}

static int write_object(tly_export_file *f, const char *name, double x0, double y0, double x1, double y1, double iw,
                        double ih, tly_error *err)
{
    long long xmin = clamp_px(round(x0) + 1, floor(iw)), ymin = clamp_px(round(y0) + 1, floor(ih));
    long long xmax = clamp_px(round(x1), floor(iw)), ymax = clamp_px(round(y1), floor(ih));
    if (xmax < xmin)
        xmax = xmin;
    if (ymax < ymin)
        ymax = ymin;
    int truncated = x0 <= 0 || y0 <= 0 || (iw > 0 && x1 >= iw) || (ih > 0 && y1 >= ih);
    return tly_export_puts(f, "\t<object>\n", err) < 0 || element(f, 2, "name", name, err) < 0 ||
                   element(f, 2, "pose", "Unspecified", err) < 0 ||
                   element_int(f, 2, "truncated", truncated, err) < 0 || element_int(f, 2, "difficult", 0, err) < 0 ||
                   tly_export_puts(f, "\t\t<bndbox>\n", err) < 0 || element_int(f, 3, "xmin", xmin, err) < 0 ||
                   element_int(f, 3, "ymin", ymin, err) < 0 || element_int(f, 3, "xmax", xmax, err) < 0 ||
                   element_int(f, 3, "ymax", ymax, err) < 0 ||
                   tly_export_puts(f, "\t\t</bndbox>\n\t</object>\n", err) < 0
               ? -1
               : 0;
}

static int write_objects(tly_export_file *f, const tly_export_context *ctx, const tly_export_item *it, double iw,
                         double ih, tly_error *err)
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
            double x0, y0, x1, y1;
            if (!name)
                return tly_export_bad_shape(it, cname, i, err);
            if (box) {
                x0 = json_number_value(json_object_get(shape, "x"));
                y0 = json_number_value(json_object_get(shape, "y"));
                x1 = x0 + json_number_value(json_object_get(shape, "w"));
                y1 = y0 + json_number_value(json_object_get(shape, "h"));
            } else if (tly_export_polygon_extent(json_object_get(shape, "points"), &x0, &y0, &x1, &y1) < 0) {
                return tly_export_bad_shape(it, cname, i, err);
            }
            if (write_object(f, name, x0, y0, x1, y1, iw, ih, err) < 0)
                return -1;
        }
    }
    return 0;
}

static int voc_item(void *state, const tly_export_context *ctx, const tly_export_item *it, tly_export_out *out,
                    int pass, tly_error *err)
{
    voc_state *s = state;
    const char *split;
    int slot = tly_export_split_slot(ctx, it, &split, err);
    if (slot < 0)
        return -1;
    char path[256];
    snprintf(path, sizeof path, "ImageSets/Main/%s.txt", split ? split : "default");
    if (!tly_export_open_once(out, &s->lists[slot], path, err) ||
        tly_export_printf(s->lists[slot], err, "%s\n", it->stem) < 0)
        return -1;

    if ((size_t)snprintf(path, sizeof path, "Annotations/%s.xml", it->stem) >= sizeof path)
        return tly_fail(err, TLY_E_INTERNAL, "writer_bug", "item %lld: stem too long", (long long)it->item_id);
    tly_export_file *f = tly_export_open(out, path, err);
    if (!f)
        return -1;
    char folder[256];
    const char *slash = strrchr(it->media_path, '/');
    snprintf(folder, sizeof folder, "%.*s", slash ? (int)(slash - it->media_path) : 0, it->media_path);
    double iw = json_number_value(json_object_get(it->media, "width"));
    double ih = json_number_value(json_object_get(it->media, "height"));
    json_int_t width = json_integer_value(json_object_get(it->media, "width"));
    json_int_t height = json_integer_value(json_object_get(it->media, "height"));
    json_int_t depth = json_integer_value(json_object_get(it->media, "channels"));
    int rc = tly_export_puts(f, "<annotation>\n", err) < 0 || element(f, 1, "folder", folder, err) < 0 ||
                     element(f, 1, "filename", tly_basename(it->media_path), err) < 0 ||
                     element(f, 1, "path", it->media_path, err) < 0 ||
                     tly_export_puts(f, "\t<source>\n", err) < 0 || element(f, 2, "database", "Tally", err) < 0 ||
                     tly_export_puts(f, "\t</source>\n\t<size>\n", err) < 0 ||
                     element_int(f, 2, "width", (long long)width, err) < 0 ||
                     element_int(f, 2, "height", (long long)height, err) < 0 ||
                     element_int(f, 2, "depth", depth > 0 ? (long long)depth : 3, err) < 0 ||
                     tly_export_puts(f, "\t</size>\n", err) < 0 || element_int(f, 1, "segmented", 0, err) < 0 ||
                     write_objects(f, ctx, it, iw, ih, err) < 0 || tly_export_puts(f, "</annotation>\n", err) < 0
                 ? -1
                 : 0;
    tly_error close_err;
    if (tly_export_close(f, rc < 0 ? &close_err : err) < 0)
        rc = -1;
    return rc;
}

static int voc_end(void *state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    voc_state *s = state;
    return tly_export_close_all(s->lists, SLOTS, err);
}

static void voc_free(void *state)
{
    voc_state *s = state;
    if (!s)
        return;
    tly_export_close_all(s->lists, SLOTS, NULL);
    free(s);
}

const tly_export_writer tly_writer_voc = {
    .name = "voc", .media = "image", .passes = 1, .begin = voc_begin, .item = voc_item, .end = voc_end,
    .free_state = voc_free,
};
