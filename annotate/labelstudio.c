/* labelstudio.c -- Tally templates / answers <-> the Label Studio ML-backend protocol.
 * See labelstudio.h for the mapping. */
#include "annotate/labelstudio.h"
#include "annotate/control.h"
#include "annotate/template.h"
#include "core/buf.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 64 controls x 1000 labels x 200 bytes, escaped: far below this. */
#define MAX_CONFIG (256u << 20)

/* ---- label config ------------------------------------------------------------------ */

/* XML attribute value: the five markup characters as entities; tab, newline and CR as
 * character references (else attribute normalisation turns them into spaces); other
 * C0 controls, which XML 1.0 cannot carry at all, are left out. */
static int xml_attr(tly_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *ent = NULL;
        char ref[8];
        switch (c) {
        case '&': ent = "&amp;"; break;
        case '<': ent = "&lt;"; break;
        case '>': ent = "&gt;"; break;
        case '"': ent = "&quot;"; break;
        case '\'': ent = "&apos;"; break;
        case '\t': case '\n': case '\r':
            snprintf(ref, sizeof ref, "&#%d;", c);
            ent = ref;
            break;
        default:
            if (c < 0x20)
                continue;
        }
        if (ent ? tly_buf_append(b, ent, strlen(ent)) < 0 : tly_buf_append(b, s, 1) < 0)
            return -1;
    }
    return 0;
}

/* One control tag: <Tag name="n" toName="obj" extra> <Item value="v"/>... </Tag>; the
 * items are lists[0] then the entries of lists[1] not already in lists[0]. */
static int tag(tly_buf *b, const char *tagname, const char *name, const char *object, const char *extra,
               const char *item, json_t *list0, json_t *list1)
{
    int rc = tly_buf_appendf(b, "  <%s name=\"", tagname);
    rc |= xml_attr(b, name);
    rc |= tly_buf_appendf(b, "\" toName=\"%s\"%s", object, extra);
    if (!item)
        return rc | tly_buf_appendf(b, "/>\n");
    rc |= tly_buf_appendf(b, ">\n");
    json_t *lists[2] = {list0, list1};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *v;
        json_array_foreach(lists[l], i, v) {
            int dup = 0;
            for (size_t j = 0; l == 1 && j < json_array_size(list0) && !dup; j++)
                dup = json_equal(v, json_array_get(list0, j));
            if (dup || !json_is_string(v))
                continue;
            rc |= tly_buf_appendf(b, "    <%s value=\"", item);
            rc |= xml_attr(b, json_string_value(v));
            rc |= tly_buf_appendf(b, "\"/>\n");
        }
    }
    return rc | tly_buf_appendf(b, "  </%s>\n", tagname);
}

static json_t *find_control(json_t *tmpl, const char *name)
{
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(tmpl, "controls"), i, def) {
        const char *n = json_string_value(json_object_get(def, "name"));
        if (n && strcmp(n, name) == 0)
            return def;
    }
    return NULL;
}

char *tly_ls_label_config(json_t *tmpl, const char *media, tly_error *err)
{
    if (!media || (strcmp(media, "image") != 0 && strcmp(media, "audio") != 0)) {
        tly_fail(err, TLY_E_INVALID, "invalid_media", "media must be 'image' or 'audio', not '%s'",
                 media ? media : "(none)");
        return NULL;
    }
    if (tly_template_validate(tmpl, media, err) < 0)
        return NULL;
    int audio = strcmp(media, "audio") == 0;
    /* The object tag's name must not collide with a control's (LS names are one space). */
    char object[32];
    snprintf(object, sizeof object, "%s", media);
    for (int n = 1; find_control(tmpl, object); n++)
        snprintf(object, sizeof object, "%s%d", media, n);

    tly_buf b;
    tly_buf_init(&b, MAX_CONFIG);
    int rc = tly_buf_appendf(&b, "<View>\n  <%s name=\"%s\" value=\"$%s\"/>\n", audio ? "Audio" : "Image", object,
                             media);
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(tmpl, "controls"), i, def) {
        const char *name = json_string_value(json_object_get(def, "name"));
        const char *type = json_string_value(json_object_get(def, "type"));
        json_t *options = json_object_get(def, "options"), *labels = json_object_get(def, "labels");
        json_t *points = json_object_get(def, "points");
        int required = json_is_true(json_object_get(def, "required"));
        const char *req = required ? " required=\"true\"" : "";
        char extra[64];
        if (strcmp(type, "choice") == 0 || strcmp(type, "multi_choice") == 0) {
            snprintf(extra, sizeof extra, " choice=\"%s\"%s", type[0] == 'c' ? "single" : "multiple", req);
            rc |= tag(&b, "Choices", name, object, extra, "Choice", options, NULL);
        } else if (strcmp(type, "text") == 0) {
            snprintf(extra, sizeof extra, " maxSubmissions=\"1\"%s", req);
            rc |= tag(&b, "TextArea", name, object, extra, NULL, NULL, NULL);
        } else if (strcmp(type, "transcription") == 0) {
            snprintf(extra, sizeof extra, " maxSubmissions=\"1\" editable=\"true\" rows=\"4\"%s", req);
            rc |= tag(&b, "TextArea", name, object, extra, NULL, NULL, NULL);
        } else if (strcmp(type, "bbox") == 0) {
            rc |= tag(&b, "RectangleLabels", name, object, "", "Label", labels, NULL);
        } else if (strcmp(type, "polygon") == 0) {
            rc |= labels ? tag(&b, "PolygonLabels", name, object, "", "Label", labels, NULL)
                         : tag(&b, "Polygon", name, object, "", NULL, NULL, NULL);
        } else if (strcmp(type, "keypoints") == 0) {
            if (points)
                rc |= tag(&b, "KeyPointLabels", name, object, labels ? " choice=\"multiple\"" : "", "Label", points,
                          labels);
            else
                rc |= labels ? tag(&b, "KeyPointLabels", name, object, "", "Label", labels, NULL)
                             : tag(&b, "KeyPoint", name, object, "", NULL, NULL, NULL);
        } else if (strcmp(type, "audio_segments") == 0) {
            rc |= tag(&b, "Labels", name, object, "", "Label", labels, NULL);
        } else {
            tly_buf_free(&b);
            tly_fail(err, TLY_E_INTERNAL, "internal", "control '%s': no Label Studio tag for type '%s'", name, type);
            return NULL;
        }
    }
    rc |= tly_buf_appendf(&b, "</View>\n");
    if (rc) {
        tly_buf_free(&b);
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory building the label config");
        return NULL;
    }
    return tly_buf_detach(&b);
}

json_t *tly_ls_task_data(const char *media, const char *media_url)
{
    json_t *data = json_object();
    json_object_set_new(data, media && strcmp(media, "audio") == 0 ? "audio" : "image",
                        media_url ? json_string(media_url) : json_null());
    return data;
}

/* ---- predictions ------------------------------------------------------------------- */

typedef struct {
    json_t *out;              /* the answer being built */
    double width, height;     /* image size, or <= 0 unknown */
    double duration;          /* audio duration, or < 0 unknown */
    size_t index;             /* of the result, for messages */
    const char *name;         /* control name */
    tly_error *err;
} ctx;

#define BAD(c, ...) tly_fail((c)->err, TLY_E_UNPROCESSABLE, "invalid_prediction", __VA_ARGS__)

static int number(json_t *obj, const char *key, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return -1;
    *out = json_number_value(v);
    return 0;
}

/* tally_annotate does not link libm: the few functions needed are here. */
static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static double dmin(double a, double b)
{
    return a < b ? a : b;
}

static double dmax(double a, double b)
{
    return a > b ? a : b;
}

/* The next double below v > 0. */
static double below(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits--;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* cos and sin of deg degrees (|deg| <= 1e6): reduced to within 45 degrees of a
 * multiple of 90 (so right angles are exact), then Taylor series (error < 1e-17). */
static void turn(double deg, double *co, double *si)
{
    double r = deg - 360.0 * (double)(long long)(deg / 360.0);
    if (r < 0)
        r += 360;
    int q = (int)((r + 45) / 90);
    double a = (r - 90.0 * q) * 3.14159265358979323846 / 180, a2 = a * a;
    double s = 0, c = 0, ts = a, tc = 1;
    for (int n = 1; n <= 12; n++) {
        s += ts, c += tc;
        ts *= -a2 / ((2 * n) * (2 * n + 1));
        tc *= -a2 / ((2 * n - 1) * (2 * n));
    }
    switch (q & 3) {
    case 0: *co = c, *si = s; break;
    case 1: *co = -s, *si = c; break;
    case 2: *co = -c, *si = -s; break;
    default: *co = s, *si = -c; break;
    }
}

/* value[key] as a list of strings (absent: *out = NULL). */
static int string_list(ctx *c, json_t *value, const char *key, int required, json_t **out)
{
    json_t *list = json_object_get(value, key);
    *out = NULL;
    if (!list && !required)
        return 0;
    int ok = json_is_array(list);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
        ok = ok && json_is_string(v);
    if (!ok)
        return BAD(c, "result %zu ('%s'): value.%s must be a list of strings", c->index, c->name, key);
    *out = list;
    return 0;
}

/* The region's label: the first entry of list the control knows, else the first entry,
 * else the control's only label; NULL when none (or the control has no labels). */
static const char *region_label(json_t *def, json_t *list)
{
    json_t *labels = json_object_get(def, "labels");
    if (!labels)
        return NULL;
    size_t i, j;
    json_t *v, *l;
    json_array_foreach(list, i, v)
        json_array_foreach(labels, j, l)
            if (json_equal(v, l))
                return json_string_value(l);
    if (json_array_size(list))
        return json_string_value(json_array_get(list, 0));
    return json_array_size(labels) == 1 ? json_string_value(json_array_get(labels, 0)) : NULL;
}

/* The control's array of shapes in the answer, created on first use. */
static json_t *shapes(ctx *c)
{
    json_t *arr = json_object_get(c->out, c->name);
    if (!arr) {
        arr = json_array();
        json_object_set_new(c->out, c->name, arr);
    }
    return arr;
}

static int need_image(ctx *c, const char *type)
{
    if (c->width > 0 && c->height > 0)
        return 0;
    return BAD(c, "result %zu ('%s'): %s regions are in percent of the image, and the item's image size is not known",
               c->index, c->name, type);
}

/* Returns 1 when the result was used, 0 when dropped, -1 on a malformed one. */
static int from_choices(ctx *c, json_t *def, json_t *value, int multi)
{
    json_t *list;
    if (string_list(c, value, "choices", 1, &list) < 0)
        return -1;
    json_t *have = json_object_get(c->out, c->name);
    if (!multi) {
        if (have || json_array_size(list) == 0)
            return 0;
        json_object_set(c->out, c->name, json_array_get(list, 0));
        return 1;
    }
    if (!have) {
        have = json_array();
        json_object_set_new(c->out, c->name, have);
    }
    size_t i, j;
    json_t *v, *w;
    json_array_foreach(list, i, v) {
        int dup = 0;
        json_array_foreach(have, j, w)
            dup = dup || json_equal(v, w);
        if (!dup)
            json_array_append(have, v);
    }
    return 1;
}

static int from_textarea(ctx *c, json_t *value, const char *sep)
{
    json_t *text = json_object_get(value, "text"), *list = NULL;
    json_t *one = json_is_string(text) ? json_pack("[O]", text) : NULL;
    if (one)
        list = one;
    else if (string_list(c, value, "text", 1, &list) < 0)
        return -1;
    int used = 0;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        json_t *have = json_object_get(c->out, c->name);
        if (!have) {
            json_object_set(c->out, c->name, v);
        } else {
            size_t a = json_string_length(have), s = strlen(sep), n = json_string_length(v);
            char *joined = malloc(a + s + n + 1);
            if (!joined) {
                json_decref(one);
                return tly_fail(c->err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
            }
            memcpy(joined, json_string_value(have), a);
            memcpy(joined + a, sep, s);
            memcpy(joined + a + s, json_string_value(v), n);
            json_object_set_new(c->out, c->name, json_stringn(joined, a + s + n));
            free(joined);
        }
        used = 1;
    }
    json_decref(one);
    return used;
}

/* A rectangle: percent -> pixels, the axis-aligned box around it if rotated, clamped. */
static int from_rectangle(ctx *c, json_t *def, json_t *result, json_t *value, const char *type)
{
    double x, y, w, h, rot = 0;
    json_t *list;
    if (number(value, "x", &x) < 0 || number(value, "y", &y) < 0 || number(value, "width", &w) < 0 ||
        number(value, "height", &h) < 0)
        return BAD(c, "result %zu ('%s'): a %s needs numbers x, y, width and height", c->index, c->name, type);
    if (number(value, "rotation", &rot) < 0 && number(result, "rotation", &rot) < 0)
        rot = 0;
    if (rot < -1e6 || rot > 1e6)
        return BAD(c, "result %zu ('%s'): rotation %g is out of range", c->index, c->name, rot);
    if (string_list(c, value, "rectanglelabels", 0, &list) < 0 || need_image(c, type) < 0)
        return -1;
    double W = c->width, H = c->height;
    x = x * W / 100, y = y * H / 100, w = w * W / 100, h = h * H / 100;
    double x0 = x, y0 = y, x1 = x + w, y1 = y + h;
    if (rot != 0) {
        /* Corners turned clockwise (y points down) around the top-left one. */
        double co, si;
        turn(rot, &co, &si);
        double cx[4] = {0, w * co, -h * si, w * co - h * si}, cy[4] = {0, w * si, h * co, w * si + h * co};
        x0 = x1 = x, y0 = y1 = y;
        for (int k = 1; k < 4; k++) {
            x0 = dmin(x0, x + cx[k]), x1 = dmax(x1, x + cx[k]);
            y0 = dmin(y0, y + cy[k]), y1 = dmax(y1, y + cy[k]);
        }
    }
    x0 = clamp(x0, 0, W), x1 = clamp(x1, 0, W), y0 = clamp(y0, 0, H), y1 = clamp(y1, 0, H);
    double bw = x1 - x0, bh = y1 - y0;
    if (!(bw > 0 && bh > 0))
        return 0;
    /* x0 + (x1 - x0) may round above x1: keep the box inside the image exactly. */
    while (x0 + bw > W)
        bw = below(bw);
    while (y0 + bh > H)
        bh = below(bh);
    json_t *box = json_object();
    const char *label = region_label(def, list);
    if (label)
        json_object_set_new(box, "label", json_string(label));
    json_object_set_new(box, "x", json_real(x0));
    json_object_set_new(box, "y", json_real(y0));
    json_object_set_new(box, "w", json_real(bw));
    json_object_set_new(box, "h", json_real(bh));
    json_array_append_new(shapes(c), box);
    return 1;
}

static int from_polygon(ctx *c, json_t *def, json_t *value, const char *type)
{
    json_t *pts = json_object_get(value, "points"), *list;
    int ok = json_is_array(pts);
    size_t i;
    json_t *pt;
    json_array_foreach(pts, i, pt)
        ok = ok && json_is_array(pt) && json_array_size(pt) >= 2 && json_is_number(json_array_get(pt, 0)) &&
             json_is_number(json_array_get(pt, 1)) && isfinite(json_number_value(json_array_get(pt, 0))) &&
             isfinite(json_number_value(json_array_get(pt, 1)));
    if (!ok)
        return BAD(c, "result %zu ('%s'): a %s needs 'points' as a list of [x, y] numbers", c->index, c->name, type);
    if (string_list(c, value, "polygonlabels", 0, &list) < 0 || need_image(c, type) < 0)
        return -1;
    if (json_array_size(pts) < 3)
        return 0;
    json_t *out = json_array();
    json_array_foreach(pts, i, pt) {
        double x = json_number_value(json_array_get(pt, 0)) * c->width / 100;
        double y = json_number_value(json_array_get(pt, 1)) * c->height / 100;
        json_array_append_new(out, json_pack("[ff]", clamp(x, 0, c->width), clamp(y, 0, c->height)));
    }
    json_t *poly = json_object();
    const char *label = region_label(def, list);
    if (label)
        json_object_set_new(poly, "label", json_string(label));
    json_object_set_new(poly, "points", out);
    json_array_append_new(shapes(c), poly);
    return 1;
}

static int same_label(json_t *inst, const char *label)
{
    const char *l = json_string_value(json_object_get(inst, "label"));
    return label ? l && strcmp(l, label) == 0 : !l;
}

static json_t *new_instance(json_t *arr, const char *label)
{
    json_t *inst = json_object();
    if (label)
        json_object_set_new(inst, "label", json_string(label));
    json_object_set_new(inst, "points", json_array());
    json_array_append_new(arr, inst);
    return inst;
}

/* A keypoint: into the slot of its name (named points) or the instance of its label. */
static int from_keypoint(ctx *c, json_t *def, json_t *value, const char *type)
{
    double x, y;
    json_t *list;
    if (number(value, "x", &x) < 0 || number(value, "y", &y) < 0)
        return BAD(c, "result %zu ('%s'): a %s needs numbers x and y", c->index, c->name, type);
    if (string_list(c, value, "keypointlabels", 0, &list) < 0 || need_image(c, type) < 0)
        return -1;
    json_t *pt = json_pack("[ff]", clamp(x * c->width / 100, 0, c->width), clamp(y * c->height / 100, 0, c->height));
    json_t *names = json_object_get(def, "points");
    /* With named points the label list names the point, and may name the instance's
     * label too; region_label would take the point name for the label. */
    const char *label = NULL;
    json_t *labels = json_object_get(def, "labels");
    if (names && labels) {
        size_t i, j;
        json_t *v, *l;
        json_array_foreach(list, i, v)
            json_array_foreach(labels, j, l)
                if (!label && json_equal(v, l))
                    label = json_string_value(l);
        if (!label && json_array_size(labels) == 1)
            label = json_string_value(json_array_get(labels, 0));
    } else {
        label = region_label(def, list);
    }
    size_t i, nnames = json_array_size(names), slot = nnames;
    json_t *v, *inst;
    json_array_foreach(list, i, v)
        for (size_t k = 0; k < nnames && slot == nnames; k++)
            if (json_equal(v, json_array_get(names, k)))
                slot = k;
    if (names && slot == nnames) {
        json_decref(pt);
        return 0;
    }
    json_t *arr = shapes(c);
    if (!names) {
        json_t *found = NULL;
        json_array_foreach(arr, i, inst)
            if (!found && same_label(inst, label))
                found = inst;
        if (!found)
            found = new_instance(arr, label);
        json_array_append_new(json_object_get(found, "points"), pt);
        return 1;
    }
    json_t *found = NULL;
    json_array_foreach(arr, i, inst)
        if (!found && same_label(inst, label) && json_is_null(json_array_get(json_object_get(inst, "points"), slot)))
            found = inst;
    if (!found) {
        found = new_instance(arr, label);
        for (size_t k = 0; k < nnames; k++)
            json_array_append_new(json_object_get(found, "points"), json_null());
    }
    json_array_set_new(json_object_get(found, "points"), slot, pt);
    return 1;
}

static int from_audio(ctx *c, json_t *def, json_t *value)
{
    double start, end;
    json_t *list;
    if (number(value, "start", &start) < 0 || number(value, "end", &end) < 0)
        return BAD(c, "result %zu ('%s'): an audio region needs numbers start and end", c->index, c->name);
    if (string_list(c, value, "labels", 0, &list) < 0)
        return -1;
    start = dmax(start, 0);
    if (c->duration >= 0)
        end = dmin(end, c->duration);
    if (!(start < end))
        return 0;
    json_t *seg = json_object();
    const char *label = region_label(def, list);
    if (label)
        json_object_set_new(seg, "label", json_string(label));
    json_object_set_new(seg, "start", json_real(start));
    json_object_set_new(seg, "end", json_real(end));
    json_array_append_new(shapes(c), seg);
    return 1;
}

/* Does a result of LS type `type` fit a control of Tally type `ctype`? */
static int fits(const char *ctype, const char *type)
{
    static const char *const map[][3] = {
        {"choice", "choices", NULL},
        {"multi_choice", "choices", NULL},
        {"text", "textarea", NULL},
        {"transcription", "textarea", NULL},
        {"bbox", "rectanglelabels", "rectangle"},
        {"polygon", "polygonlabels", "polygon"},
        {"keypoints", "keypointlabels", "keypoint"},
        {"audio_segments", "labels", NULL},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], ctype) == 0)
            return strcmp(map[i][1], type) == 0 || (map[i][2] && strcmp(map[i][2], type) == 0);
    return 0;
}

static int translate(ctx *c, json_t *def, const char *ctype, json_t *result, json_t *value, const char *type)
{
    if (strcmp(ctype, "choice") == 0 || strcmp(ctype, "multi_choice") == 0)
        return from_choices(c, def, value, ctype[0] == 'm');
    if (strcmp(ctype, "text") == 0)
        return from_textarea(c, value, "\n");
    if (strcmp(ctype, "transcription") == 0)
        return from_textarea(c, value, " ");
    if (strcmp(ctype, "bbox") == 0)
        return from_rectangle(c, def, result, value, type);
    if (strcmp(ctype, "polygon") == 0)
        return from_polygon(c, def, value, type);
    if (strcmp(ctype, "keypoints") == 0)
        return from_keypoint(c, def, value, type);
    return from_audio(c, def, value);
}

int tly_ls_answer_from_prediction(json_t *tmpl, json_t *media, json_t *prediction, json_t **answer,
                                  double *score, int *ignored, tly_error *err)
{
    *answer = NULL;
    if (score)
        *score = -1;
    if (ignored)
        *ignored = 0;
    if (!json_is_object(prediction))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_prediction", "a prediction must be an object");
    json_t *results = json_object_get(prediction, "result");
    if (!json_is_array(results))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_prediction", "a prediction's 'result' must be a list");
    ctx c = {
        .out = json_object(),
        .width = tly_control_media_dim(media, "width"),
        .height = tly_control_media_dim(media, "height"),
        .duration = tly_control_media_dim(media, "duration"),
        .err = err,
    };
    double sum = 0;
    int scored = 0, dropped = 0;
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r) {
        if (!json_is_object(r)) {
            json_decref(c.out);
            return tly_fail(err, TLY_E_UNPROCESSABLE, "invalid_prediction", "result %zu must be an object", i);
        }
        const char *from = json_string_value(json_object_get(r, "from_name"));
        const char *type = json_string_value(json_object_get(r, "type"));
        json_t *def = from ? find_control(tmpl, from) : NULL;
        const char *ctype = json_string_value(json_object_get(def, "type"));
        if (!ctype || !type || !fits(ctype, type)) {
            dropped++;
            continue;
        }
        c.index = i;
        c.name = from;
        json_t *value = json_object_get(r, "value");
        int rc = json_is_object(value) ? translate(&c, def, ctype, r, value, type)
                                       : BAD(&c, "result %zu ('%s'): 'value' must be an object", i, from);
        if (rc < 0) {
            json_decref(c.out);
            return -1;
        }
        if (rc == 0) {
            dropped++;
            continue;
        }
        double s;
        if (number(r, "score", &s) == 0)
            sum += s, scored++;
    }
    double s;
    if (score) {
        if (number(prediction, "score", &s) == 0)
            *score = clamp(s, 0, 1);
        else if (scored)
            *score = clamp(sum / scored, 0, 1);
    }
    if (ignored)
        *ignored = dropped;
    *answer = c.out;
    return 0;
}
