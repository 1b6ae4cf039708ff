/* write_jsonl.c -- an Amazon SageMaker Ground Truth augmented manifest (JSON lines).
 *
 * The format is the output manifest of a Ground Truth labeling job, which SageMaker's
 * training jobs read as an "augmented manifest" ("Labeling job output data",
 * https://docs.aws.amazon.com/sagemaker/latest/dg/sms-data-output.html; "Augmented
 * Manifest Files for Training Jobs",
 * https://docs.aws.amazon.com/sagemaker/latest/dg/augmented-manifest.html): one JSON
 * object per line with "source-ref" (the object), the label attribute "<attr>" and its
 * "<attr>-metadata" ("type", "job-name", "human-annotated", "creation-date", ...).
 *
 * Choices:
 * - One file, "output.manifest.jsonl": Ground Truth names its output "output.manifest";
 *   ".jsonl" gives the file its JSON-lines media type, and the plain "manifest.jsonl" is
 *   taken by the dataset's own file list (the version manifest at the root of the tar).
 *   With a split every line also has "tally-split" (one file serves every split;
 *   consumers select lines by it); every line has "tally-item-id" to join back. Extra
 *   top-level keys are allowed: a Ground Truth output line keeps every key of its
 *   input line.
 * - <attr> = ctx->job_name ("tally-project-7"), a valid label attribute name (letters,
 *   digits, hyphens); "job-name" = "labeling-job/<attr>" as Ground Truth writes it.
 * - The shape follows the template, the same for every line:
 *   - an image project whose template is one "choice" control: image classification,
 *     "<attr>": the class index (the answer's position in the control's options) and
 *     metadata {"class-name", "confidence", "type":"groundtruth/image-classification",
 *     ...}; an item without an answer has no "<attr>" (metadata still written);
 *   - an image project whose template is only "bbox" controls: object detection,
 *     "<attr>": {"image_size":[{"width","height","depth"}],"annotations":[{"class_id",
 *     "left","top","width","height"}]} (pixels, top-left; fractions kept, Tally's boxes
 *     may have them; depth = the image's channels, else 3) and metadata {"objects":
 *     [{"confidence"}] (one per box), "class-map" (the classes of this image, id ->
 *     name, ascending), "type":"groundtruth/object-detection", ...}; class ids are the
 *     positions of the labels of all bbox controls in template order, deduplicated;
 *   - anything else (audio projects, several controls, other types): "<attr>": the
 *     answer object as Tally holds it, metadata {"confidence",
 *     "type":"groundtruth/custom", ...}, custom labeling workflows' type.
 *   A choice or box label the template does not know is an error, not a silent drop.
 * - confidence = the result detail's per-control confidence, else the result's.
 * - creation-date = when the result was made (item->updated_at, UTC) in Ground Truth's
 *   form "2026-11-22T04:30:00.000000" (milliseconds, then 000): never the export time.
 * - "human-annotated":"yes"; Tally's provenance in the metadata: "tally-method",
 *   "tally-judgments" (trusted judgments) and "tally-annotators" (worker pseudonyms,
 *   never ids).
 */
#include "export/writer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SHAPE_CUSTOM, SHAPE_CLASSIFICATION, SHAPE_DETECTION };

typedef struct {
    tly_export_file *f;
    int shape;
    const char *attr;        /* borrowed from ctx */
    char *meta_key;          /* "<attr>-metadata" */
    char *job_name;          /* "labeling-job/<attr>" */
    json_t *choice_def;      /* classification: the control (borrowed) */
    json_t *classes;         /* detection: class names by id */
    unsigned char *used;     /* detection: per class, seen in the current image */
} jsonl_state;

/* "2026-11-22T04:30:00.000000" (UTC) for ms since the epoch. */
static void creation_date(int64_t ms, char *out, size_t outsz)
{
    int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int frac = (int)(ms - sec * 1000);
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        memset(&tm, 0, sizeof tm);
    snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03d000", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

static int class_index(json_t *names, const char *name)
{
    size_t i;
    json_t *n;
    json_array_foreach(names, i, n)
        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0)
            return (int)i;
    return -1;
}

static int jsonl_begin(void **state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    jsonl_state *s = calloc(1, sizeof *s);
    if (!s)
        return tly_export_oom(err);
    *state = s;
    s->attr = ctx->job_name && ctx->job_name[0] ? ctx->job_name : "tally";
    if (asprintf(&s->meta_key, "%s-metadata", s->attr) < 0) {
        s->meta_key = NULL;
        return tly_export_oom(err);
    }
    if (asprintf(&s->job_name, "labeling-job/%s", s->attr) < 0) {
        s->job_name = NULL;
        return tly_export_oom(err);
    }
    json_t *controls = json_object_get(ctx->template_json, "controls");
    size_t n = json_array_size(controls), bboxes = 0, i, k;
    json_t *def, *label;
    json_array_foreach(controls, i, def) {
        const char *type = json_string_value(json_object_get(def, "type"));
        bboxes += type && strcmp(type, "bbox") == 0;
    }
    int image = ctx->media && strcmp(ctx->media, "image") == 0;
    const char *type0 = json_string_value(json_object_get(json_array_get(controls, 0), "type"));
    if (image && n == 1 && type0 && strcmp(type0, "choice") == 0 &&
        json_string_value(json_object_get(json_array_get(controls, 0), "name"))) {
        s->shape = SHAPE_CLASSIFICATION;
        s->choice_def = json_array_get(controls, 0);
    } else if (image && n > 0 && bboxes == n) {
        s->shape = SHAPE_DETECTION;
        if (!(s->classes = json_array()))
            return tly_export_oom(err);
        json_array_foreach(controls, i, def) {
            json_array_foreach(json_object_get(def, "labels"), k, label) {
                if (json_is_string(label) && class_index(s->classes, json_string_value(label)) < 0 &&
                    json_array_append(s->classes, label) < 0)
                    return tly_export_oom(err);
            }
        }
        if (!(s->used = calloc(json_array_size(s->classes) + 1, 1)))
            return tly_export_oom(err);
    }
    return (s->f = tly_export_open(out, "output.manifest.jsonl", err)) ? 0 : -1;
}

/* The classification label: sets *attr (the class index) and the metadata's
 * class-name and confidence. */
static int classification(jsonl_state *s, const tly_export_item *it, json_t **attr, json_t *meta, int *bad,
                          tly_error *err)
{
    const char *control = json_string_value(json_object_get(s->choice_def, "name"));
    const char *value = json_string_value(json_object_get(it->answer, control));
    if (value) {
        int idx = class_index(json_object_get(s->choice_def, "options"), value);
        if (idx < 0)
            return tly_fail(err, TLY_E_UNPROCESSABLE, "unknown_label",
                            "item %lld: '%s' is not an option of control '%s'", (long long)it->item_id, value,
                            control);
        *attr = json_integer(idx);
        *bad |= !*attr;
        tly_export_set(meta, "class-name", json_string(value), bad);
    }
    tly_export_set(meta, "confidence", tly_export_num_json(tly_export_confidence_of(it, control)), bad);
    return 0;
}

/* The object-detection label: *attr and the metadata's objects and class-map. */
static int detection(jsonl_state *s, const tly_export_context *ctx, const tly_export_item *it, json_t **attr,
                     json_t *meta, int *bad, tly_error *err)
{
    size_t ncls = json_array_size(s->classes), i, k;
    memset(s->used, 0, ncls + 1);
    json_t *channels = json_object_get(it->media, "channels");
    json_t *size = json_object(), *anns = json_array(), *objects = json_array(), *map = json_object();
    *attr = json_object();
    tly_export_set(size, "width", tly_export_num_json(json_number_value(json_object_get(it->media, "width"))), bad);
    tly_export_set(size, "height", tly_export_num_json(json_number_value(json_object_get(it->media, "height"))), bad);
    tly_export_set(size, "depth", json_integer(json_integer_value(channels) > 0 ? json_integer_value(channels) : 3), bad);
    json_t *def, *box;
    int rc = 0;
    json_array_foreach(json_object_get(ctx->template_json, "controls"), i, def) {
        const char *control = json_string_value(json_object_get(def, "name"));
        if (!control)
            continue;
        double conf = tly_export_confidence_of(it, control);
        json_array_foreach(json_object_get(it->answer, control), k, box) {
            const char *label = json_string_value(json_object_get(box, "label"));
            int id = label ? class_index(s->classes, label) : -1;
            if (id < 0) {
                rc = tly_fail(err, TLY_E_UNPROCESSABLE, "unknown_label",
                              "item %lld: box %zu of control '%s' has label '%s', which the template does not list",
                              (long long)it->item_id, k, control, label ? label : "(none)");
                break;
            }
            s->used[id] = 1;
            json_t *a = json_object(), *o = json_object();
            tly_export_set(a, "class_id", json_integer(id), bad);
            tly_export_set(a, "left", tly_export_num_json(json_number_value(json_object_get(box, "x"))), bad);
            tly_export_set(a, "top", tly_export_num_json(json_number_value(json_object_get(box, "y"))), bad);
            tly_export_set(a, "width", tly_export_num_json(json_number_value(json_object_get(box, "w"))), bad);
            tly_export_set(a, "height", tly_export_num_json(json_number_value(json_object_get(box, "h"))), bad);
            tly_export_append(anns, a, bad);
            tly_export_set(o, "confidence", tly_export_num_json(conf), bad);
            tly_export_append(objects, o, bad);
        }
        if (rc < 0)
            break;
    }
    for (size_t c = 0; c < ncls; c++) {
        if (!s->used[c])
            continue;
        char key[24];
        snprintf(key, sizeof key, "%zu", c);
        tly_export_set(map, key, json_incref(json_array_get(s->classes, c)), bad);
    }
    json_t *sizes = json_array();
    tly_export_append(sizes, size, bad);
    if (*attr) {
        tly_export_set(*attr, "image_size", sizes, bad);
        tly_export_set(*attr, "annotations", anns, bad);
    } else {
        *bad = 1;
        json_decref(sizes);
        json_decref(anns);
    }
    tly_export_set(meta, "objects", objects, bad);
    tly_export_set(meta, "class-map", map, bad);
    return rc;
}

static int jsonl_item(void *state, const tly_export_context *ctx, const tly_export_item *it, tly_export_out *out,
                      int pass, tly_error *err)
{
    jsonl_state *s = state;
    int bad = 0, rc = 0;
    json_t *line = json_object(), *meta = json_object(), *attr = NULL;
    const char *type = "groundtruth/custom";
    if (!line || !meta) {
        json_decref(line);
        json_decref(meta);
        return tly_export_oom(err);
    }
    if (s->shape == SHAPE_CLASSIFICATION) {
        type = "groundtruth/image-classification";
        rc = classification(s, it, &attr, meta, &bad, err);
    } else if (s->shape == SHAPE_DETECTION) {
        type = "groundtruth/object-detection";
        rc = detection(s, ctx, it, &attr, meta, &bad, err);
    } else {
        attr = it->answer ? json_incref(it->answer) : json_null();
        tly_export_set(meta, "confidence", tly_export_num_json(it->confidence), &bad);
    }
    char date[48];
    creation_date(it->updated_at, date, sizeof date);
    tly_export_set(meta, "type", json_string(type), &bad);
    tly_export_set(meta, "job-name", json_string(s->job_name), &bad);
    tly_export_set(meta, "human-annotated", json_string("yes"), &bad);
    tly_export_set(meta, "creation-date", json_string(date), &bad);
    tly_export_set(meta, "tally-method", json_string(it->method ? it->method : ""), &bad);
    tly_export_set(meta, "tally-judgments", json_integer(it->judgments), &bad);
    tly_export_set(meta, "tally-annotators", it->annotators ? json_incref(it->annotators) : json_array(), &bad);
    tly_export_set(line, "source-ref", json_string(it->media_path), &bad);
    if (attr)
        tly_export_set(line, s->attr, attr, &bad);
    tly_export_set(line, s->meta_key, meta, &bad);
    tly_export_set(line, "tally-item-id", json_integer(it->item_id), &bad);
    if (ctx->has_split)
        tly_export_set(line, "tally-split", json_string(it->split ? it->split : ""), &bad);
    if (rc == 0)
        rc = bad ? tly_export_oom(err) : tly_export_json(s->f, line, err) < 0 ? -1 : tly_export_puts(s->f, "\n", err);
    json_decref(line);
    return rc;
}

static int jsonl_end(void *state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    jsonl_state *s = state;
    tly_export_file *f = s->f;
    s->f = NULL;
    return tly_export_close(f, err);
}

static void jsonl_free(void *state)
{
    jsonl_state *s = state;
    if (!s)
        return;
    tly_error ignore;
    tly_export_close(s->f, &ignore);
    free(s->meta_key);
    free(s->job_name);
    json_decref(s->classes);
    free(s->used);
    free(s);
}

const tly_export_writer tly_writer_jsonl = {
    .name = "jsonl", .media = "any", .passes = 1, .uses_annotators = 1, .begin = jsonl_begin, .item = jsonl_item, .end = jsonl_end,
    .free_state = jsonl_free,
};
