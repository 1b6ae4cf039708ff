/* write_labelstudio.c -- Label Studio's JSON export: tasks with their annotations.
 *
 * The format is what Label Studio exports as "JSON" and imports back as tasks with
 * annotations ("Label Studio JSON format of annotated tasks",
 * https://labelstud.io/guide/export.html#Label-Studio-JSON-format-of-annotated-tasks;
 * the task fields in https://labelstud.io/guide/task_format; the region values per tag
 * in https://labelstud.io/tags/): a JSON array of tasks
 *   {"id", "data": {"image": url}, "annotations": [{"id", "result": [...],
 *    "ground_truth", "completed_by", "was_cancelled"}], "meta": {...}}
 * where each result region is {"id", "from_name" (the control tag), "to_name" (the
 * object tag), "type", "value"} and image coordinates are percentages of the image
 * (0-100), with "original_width" / "original_height" in pixels beside them.
 *
 * Choices:
 * - One file, "tasks.json", written as the items come: "[" in begin, one task a line
 *   with "," between, "]" in end (so memory stays O(1) however many tasks).
 * - id = the item's id (tasks and annotations alike); data = {"image" or "audio" (the
 *   project's media, which is also every result's to_name, so a labeling config with
 *   <Image name="image" value="$image"/> or <Audio name="audio" value="$audio"/> and
 *   one control tag per Tally control, named alike, loads the export as it is):
 *   the media path in the dataset (relative: serve the dataset root, e.g. as local
 *   storage), "tally_item_id"}.
 * - One annotation per task, the released result: "ground_truth": false,
 *   "was_cancelled": false, "completed_by": the worker's pseudonym when one worker's
 *   judgment made the result, else null (a consensus of several has no single
 *   author; Label Studio's import maps anything but a user id to the importing user).
 * - Results by control type, in template then answer order, ids "<item>_<n>"
 *   (n = 1, 2, ... in the task):
 *     choice / multi_choice -> "choices", {"choices":[...]};
 *     text / transcription -> "textarea", {"text":["..."]};
 *     bbox -> "rectanglelabels", {"x","y","width","height" (percent),"rotation":0,
 *       "rectanglelabels":[label]};
 *     polygon -> "polygonlabels", {"points":[[x%,y%],...],"polygonlabels":[label]};
 *     keypoints -> one "keypointlabels" region per placed point (null points are
 *       skipped), {"x","y" (percent),"width":0.5 (the point's drawn size),
 *       "keypointlabels":[name]} with name = the control's name for that point when it
 *       names its points, else the shape's label;
 *     audio_segments -> "labels", {"start","end" (seconds),"channel":0,"labels":[label]}.
 *   A shape without a label becomes Label Studio's unlabeled tag ("rectangle",
 *   "polygon", "keypoint") with no labels key. Image regions carry "original_width",
 *   "original_height" and "image_rotation":0; an image whose size is unknown cannot
 *   have percentages and is an error (media_size_unknown). Unanswered controls, empty
 *   multi_choice answers and control types unknown here add no region.
 * - meta = {"confidence","method","judgments","annotators" (pseudonyms)} and "split"
 *   when the export has one: Tally's provenance, kept by Label Studio as task meta.
 * - Numbers: integral values as integers, others as reals with up to 10 significant
 *   digits (tly_export_json), so the bytes depend only on the data.
 */
#include "export/writer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    tly_export_file *f;
    int64_t tasks;   /* written so far (for the commas) */
} ls_state;

/* What one task's results are built into. */
typedef struct {
    const tly_export_item *it;
    json_t *results;
    const char *to_name;
    int64_t n;        /* regions so far */
    double w, h;      /* the image's size (0 if unknown) */
    int bad;          /* an allocation failed */
} ls_build;

/* ["one"] */
static json_t *one(const char *s)
{
    json_t *a = json_array();
    if (a && json_array_append_new(a, json_string(s)) < 0) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/* Appends a region of control `control` with the given type and value (taken). */
static void region(ls_build *b, const char *control, const char *type, int image, json_t *value)
{
    char id[48];
    snprintf(id, sizeof id, "%lld_%lld", (long long)b->it->item_id, (long long)++b->n);
    json_t *r = json_object();
    tly_export_set(r, "id", json_string(id), &b->bad);
    tly_export_set(r, "from_name", json_string(control), &b->bad);
    tly_export_set(r, "to_name", json_string(b->to_name), &b->bad);
    tly_export_set(r, "type", json_string(type), &b->bad);
    if (image) {
        tly_export_set(r, "original_width", tly_export_num_json(b->w), &b->bad);
        tly_export_set(r, "original_height", tly_export_num_json(b->h), &b->bad);
        tly_export_set(r, "image_rotation", json_integer(0), &b->bad);
    }
    tly_export_set(r, "value", value, &b->bad);
    tly_export_append(b->results, r, &b->bad);
}

static double pct(double v, double dim)
{
    return v * 100.0 / dim;
}

static double coord(json_t *pt, size_t i)
{
    return json_number_value(json_array_get(pt, i));
}

/* A shape's label: the labelled region type and its labels key, or the plain one. */
static void labelled(ls_build *b, const char *control, const char *label, const char *plain, const char *labels,
                     json_t *value)
{
    if (label) {
        tly_export_set(value, labels, one(label), &b->bad);
        region(b, control, labels, 1, value);
    } else {
        region(b, control, plain, 1, value);
    }
}

static void boxes(ls_build *b, const char *control, json_t *v)
{
    size_t i;
    json_t *box;
    json_array_foreach(v, i, box) {
        json_t *value = json_object();
        tly_export_set(value, "x", tly_export_num_json(pct(json_number_value(json_object_get(box, "x")), b->w)), &b->bad);
        tly_export_set(value, "y", tly_export_num_json(pct(json_number_value(json_object_get(box, "y")), b->h)), &b->bad);
        tly_export_set(value, "width", tly_export_num_json(pct(json_number_value(json_object_get(box, "w")), b->w)), &b->bad);
        tly_export_set(value, "height", tly_export_num_json(pct(json_number_value(json_object_get(box, "h")), b->h)), &b->bad);
        tly_export_set(value, "rotation", json_integer(0), &b->bad);
        labelled(b, control, json_string_value(json_object_get(box, "label")), "rectangle", "rectanglelabels", value);
    }
}

static void polygons(ls_build *b, const char *control, json_t *v)
{
    size_t i, k;
    json_t *shape, *pt;
    json_array_foreach(v, i, shape) {
        json_t *value = json_object(), *points = json_array();
        json_array_foreach(json_object_get(shape, "points"), k, pt) {
            json_t *p = json_array();
            tly_export_append(p, tly_export_num_json(pct(coord(pt, 0), b->w)), &b->bad);
            tly_export_append(p, tly_export_num_json(pct(coord(pt, 1), b->h)), &b->bad);
            tly_export_append(points, p, &b->bad);
        }
        tly_export_set(value, "points", points, &b->bad);
        labelled(b, control, json_string_value(json_object_get(shape, "label")), "polygon", "polygonlabels", value);
    }
}

static void keypoints(ls_build *b, json_t *def, const char *control, json_t *v)
{
    json_t *names = json_object_get(def, "points");
    size_t i, k;
    json_t *shape, *pt;
    json_array_foreach(v, i, shape) {
        const char *label = json_string_value(json_object_get(shape, "label"));
        json_array_foreach(json_object_get(shape, "points"), k, pt) {
            if (!json_is_array(pt))
                continue;   /* not placed */
            const char *name = json_string_value(json_array_get(names, k));
            json_t *value = json_object();
            tly_export_set(value, "x", tly_export_num_json(pct(coord(pt, 0), b->w)), &b->bad);
            tly_export_set(value, "y", tly_export_num_json(pct(coord(pt, 1), b->h)), &b->bad);
            tly_export_set(value, "width", json_real(0.5), &b->bad);
            labelled(b, control, name ? name : label, "keypoint", "keypointlabels", value);
        }
    }
}

static void segments(ls_build *b, const char *control, json_t *v)
{
    size_t i;
    json_t *seg;
    json_array_foreach(v, i, seg) {
        const char *label = json_string_value(json_object_get(seg, "label"));
        json_t *value = json_object();
        tly_export_set(value, "start", tly_export_num_json(json_number_value(json_object_get(seg, "start"))), &b->bad);
        tly_export_set(value, "end", tly_export_num_json(json_number_value(json_object_get(seg, "end"))), &b->bad);
        tly_export_set(value, "channel", json_integer(0), &b->bad);
        tly_export_set(value, "labels", label ? one(label) : json_array(), &b->bad);
        region(b, control, "labels", 0, value);
    }
}

/* The regions of one control's answer. */
static int control_regions(ls_build *b, json_t *def, tly_error *err)
{
    const char *type = json_string_value(json_object_get(def, "type"));
    const char *control = json_string_value(json_object_get(def, "name"));
    json_t *v = control ? json_object_get(b->it->answer, control) : NULL;
    if (!type || !v || json_is_null(v))
        return 0;
    if (strcmp(type, "choice") == 0 || strcmp(type, "multi_choice") == 0) {
        if (json_is_string(v)) {
            json_t *value = json_object();
            tly_export_set(value, "choices", one(json_string_value(v)), &b->bad);
            region(b, control, "choices", 0, value);
        } else if (json_is_array(v) && json_array_size(v) > 0) {
            json_t *value = json_object();
            tly_export_set(value, "choices", json_deep_copy(v), &b->bad);
            region(b, control, "choices", 0, value);
        }
        return 0;
    }
    if (strcmp(type, "text") == 0 || strcmp(type, "transcription") == 0) {
        if (json_is_string(v)) {
            json_t *value = json_object();
            tly_export_set(value, "text", one(json_string_value(v)), &b->bad);
            region(b, control, "textarea", 0, value);
        }
        return 0;
    }
    if (strcmp(type, "audio_segments") == 0) {
        segments(b, control, v);
        return 0;
    }
    int shape = strcmp(type, "bbox") == 0 ? 1 : strcmp(type, "polygon") == 0 ? 2 : strcmp(type, "keypoints") == 0 ? 3 : 0;
    if (!shape || json_array_size(v) == 0)
        return 0;   /* a type this writer does not know, or no shapes */
    if (!(b->w > 0 && b->h > 0))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "media_size_unknown",
                        "item %lld: the image's size is unknown, so its regions cannot be given in percent",
                        (long long)b->it->item_id);
    if (shape == 1)
        boxes(b, control, v);
    else if (shape == 2)
        polygons(b, control, v);
    else
        keypoints(b, def, control, v);
    return 0;
}

static int ls_begin(void **state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    ls_state *s = calloc(1, sizeof *s);
    if (!s)
        return tly_export_oom(err);
    *state = s;
    if (!(s->f = tly_export_open(out, "tasks.json", err)))
        return -1;
    return tly_export_puts(s->f, "[", err);
}

static int ls_item(void *state, const tly_export_context *ctx, const tly_export_item *it, tly_export_out *out,
                   int pass, tly_error *err)
{
    ls_state *s = state;
    const char *media = ctx->media && strcmp(ctx->media, "audio") == 0 ? "audio" : "image";
    ls_build b = {.it = it, .results = json_array(), .to_name = media};
    b.w = json_number_value(json_object_get(it->media, "width"));
    b.h = json_number_value(json_object_get(it->media, "height"));
    json_t *task = json_object(), *data = json_object(), *ann = json_object(), *anns = json_array();
    json_t *meta = json_object();
    int rc = 0;
    size_t i;
    json_t *def;
    if (b.results) {
        json_array_foreach(json_object_get(ctx->template_json, "controls"), i, def) {
            if ((rc = control_regions(&b, def, err)) < 0)
                break;
        }
    }
    tly_export_set(data, media, json_string(it->media_path), &b.bad);
    tly_export_set(data, "tally_item_id", json_integer(it->item_id), &b.bad);
    json_t *who = json_array_size(it->annotators) == 1 ? json_array_get(it->annotators, 0) : NULL;
    tly_export_set(ann, "id", json_integer(it->item_id), &b.bad);
    tly_export_set(ann, "result", b.results, &b.bad);
    tly_export_set(ann, "ground_truth", json_false(), &b.bad);
    tly_export_set(ann, "completed_by", who ? json_incref(who) : json_null(), &b.bad);
    tly_export_set(ann, "was_cancelled", json_false(), &b.bad);
    tly_export_append(anns, ann, &b.bad);
    tly_export_set(meta, "confidence", tly_export_num_json(it->confidence), &b.bad);
    tly_export_set(meta, "method", json_string(it->method ? it->method : ""), &b.bad);
    tly_export_set(meta, "judgments", json_integer(it->judgments), &b.bad);
    tly_export_set(meta, "annotators", it->annotators ? json_incref(it->annotators) : json_array(), &b.bad);
    if (ctx->has_split)
        tly_export_set(meta, "split", json_string(it->split ? it->split : ""), &b.bad);
    tly_export_set(task, "id", json_integer(it->item_id), &b.bad);
    tly_export_set(task, "data", data, &b.bad);
    tly_export_set(task, "annotations", anns, &b.bad);
    tly_export_set(task, "meta", meta, &b.bad);
    if (rc == 0 && b.bad)
        rc = tly_export_oom(err);
    if (rc == 0 && (tly_export_puts(s->f, s->tasks ? ",\n" : "\n", err) < 0 || tly_export_json(s->f, task, err) < 0))
        rc = -1;
    json_decref(task);
    if (rc == 0)
        s->tasks++;
    return rc;
}

static int ls_end(void *state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    ls_state *s = state;
    tly_export_file *f = s->f;
    s->f = NULL;
    if (tly_export_puts(f, s->tasks ? "\n]\n" : "]\n", err) < 0) {
        tly_error ignore;
        tly_export_close(f, &ignore);
        return -1;
    }
    return tly_export_close(f, err);
}

static void ls_free(void *state)
{
    ls_state *s = state;
    if (!s)
        return;
    tly_error ignore;
    tly_export_close(s->f, &ignore);
    free(s);
}

const tly_export_writer tly_writer_labelstudio = {
    .name = "labelstudio", .media = "any", .passes = 1, .uses_annotators = 1, .begin = ls_begin, .item = ls_item, .end = ls_end,
    .free_state = ls_free,
};
