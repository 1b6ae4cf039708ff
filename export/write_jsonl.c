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
 * - Object-detection lines are written straight from the stored answer's text
 *   (export/jsonview.h) with the fixed parts escaped once at the start: building a
 *   jansson tree per line and serialising it was most of the export's time. The
 *   bytes are the ones that tree would give; the other shapes still build one.
 * - "human-annotated":"yes"; Tally's provenance in the metadata: "tally-method",
 *   "tally-judgments" (trusted judgments) and "tally-annotators" (worker pseudonyms,
 *   never ids).
 */
#include "export/writer.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
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
    size_t *boxes;           /* detection: per control, boxes in the current image */
    double *conf;            /* detection: per control, its confidence in the current image */
    /* Detection: the text every line repeats, escaped once (see detection_line). */
    char *frag_attr;         /* ,"<attr>":{"image_size":[{"width": */
    char *frag_meta;         /* ]},"<attr>-metadata":{"objects":[ */
    char *frag_type;         /* },"type":...,"job-name":"...","human-annotated":"yes","creation-date": */
    char **class_entry;      /* per class: "<id>":"<name>" */
    json_t *media;           /* detection: the media object media_text was made from (a */
    char media_text[192];    /* reference held, so its address cannot come back as another */
    size_t media_len;        /* one): <width>,"height":<height>,"depth":<depth>}],"annotations":[ */
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

/* asprintf that gives NULL on failure (its pointer is undefined then). */
static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dup_printf(const char *fmt, ...)
{
    char *out = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&out, fmt, ap) < 0)
        out = NULL;
    va_end(ap);
    return out;
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
        if (!(s->used = calloc(json_array_size(s->classes) + 1, 1)) || !(s->boxes = calloc(n, sizeof *s->boxes)) ||
            !(s->conf = calloc(n, sizeof *s->conf)) ||
            !(s->class_entry = calloc(json_array_size(s->classes) + 1, sizeof *s->class_entry)))
            return tly_export_oom(err);
        char *attr = tly_export_json_quote(s->attr), *meta = tly_export_json_quote(s->meta_key),
             *job = tly_export_json_quote(s->job_name);
        int bad = !attr || !meta || !job ||
                  !(s->frag_attr = dup_printf(",%s:{\"image_size\":[{\"width\":", attr)) ||
                  !(s->frag_meta = dup_printf("]},%s:{\"objects\":[", meta)) ||
                  !(s->frag_type = dup_printf("},\"type\":\"groundtruth/object-detection\",\"job-name\":%s,"
                                              "\"human-annotated\":\"yes\",\"creation-date\":",
                                              job));
        free(attr);
        free(meta);
        free(job);
        for (size_t c = 0; !bad && c < json_array_size(s->classes); c++) {
            char *name = tly_export_json_quote(json_string_value(json_array_get(s->classes, c)));
            bad = !name || !(s->class_entry[c] = dup_printf("\"%zu\":%s", c, name));
            free(name);
        }
        if (bad)
            return tly_export_oom(err);
    }
    return (s->f = tly_export_open(out, "output.manifest.jsonl", err)) ? 0 : -1;
}

/* The classification label: sets *attr (the class index) and the metadata's
 * class-name and confidence. */
static int classification(jsonl_state *s, const tly_export_item *it, json_t *answer, json_t **attr, json_t *meta,
                          int *bad, tly_error *err)
{
    const char *control = json_string_value(json_object_get(s->choice_def, "name"));
    const char *value = json_string_value(json_object_get(answer, control));
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

/* A string literal to f, with the caller's err. */
#define PUT(f, lit) tly_export_write((f), (lit), sizeof(lit) - 1, err)

static int put_str(tly_export_file *f, const char *str, tly_error *err)
{
    return tly_export_json_string(f, str, strlen(str), err);
}

/* "2026-11-22T04:30:00.000000" in quotes, by hand: snprintf per line was a tenth
 * of a JSON-lines export. The same text as creation_date(). */
static int put_creation_date(tly_export_file *f, int64_t ms, tly_error *err)
{
    int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int frac = (int)(ms - sec * 1000);
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
        char date[48];
        creation_date(ms, date, sizeof date);
        return put_str(f, date, err);
    }
    char b[32] = "\"0000-00-00T00:00:00.000000\"";
    int year = tm.tm_year + 1900;
    int fields[6][2] = {{1, year / 100}, {3, year % 100}, {6, tm.tm_mon + 1}, {9, tm.tm_mday}, {12, tm.tm_hour},
                        {15, tm.tm_min}};
    for (int k = 0; k < 6; k++) {
        b[fields[k][0]] = (char)('0' + fields[k][1] / 10);
        b[fields[k][0] + 1] = (char)('0' + fields[k][1] % 10);
    }
    b[18] = (char)('0' + tm.tm_sec / 10), b[19] = (char)('0' + tm.tm_sec % 10);
    b[21] = (char)('0' + frac / 100), b[22] = (char)('0' + frac / 10 % 10), b[23] = (char)('0' + frac % 10);
    return tly_export_write(f, b, 28, err);
}

/* An object-detection line, written straight from the answer's text: the same
 * bytes as building it with jansson and serialising it (the shape described at the
 * top: "<attr>" = {"image_size","annotations"}, its metadata's "objects" (one per
 * box) and "class-map"), without a tree per line. */
static int detection_line(jsonl_state *s, const tly_export_context *ctx, const tly_export_item *it, tly_error *err)
{
    tly_export_file *f = s->f;
    size_t ncls = json_array_size(s->classes), i;
    memset(s->used, 0, ncls + 1);
    if (!s->media || it->media != s->media) {   /* items mostly share one media object (store_exports.c) */
        json_t *channels = json_object_get(it->media, "channels");
        json_int_t depth = json_integer_value(channels) > 0 ? json_integer_value(channels) : 3;
        char *p = s->media_text;
        p = tly_export_json_num_at(p, json_number_value(json_object_get(it->media, "width")));
        TLY_EXPORT_LIT(p, ",\"height\":");
        p = tly_export_json_num_at(p, json_number_value(json_object_get(it->media, "height")));
        TLY_EXPORT_LIT(p, ",\"depth\":");
        p = tly_export_json_num_at(p, (double)depth);
        TLY_EXPORT_LIT(p, "}],\"annotations\":[");
        s->media_len = (size_t)(p - s->media_text);
        json_decref(s->media);
        s->media = it->media ? json_incref(it->media) : NULL;
    }
    if (PUT(f, "{\"source-ref\":") < 0 || put_str(f, it->media_path, err) < 0 ||
        tly_export_puts(f, s->frag_attr, err) < 0 || tly_export_write(f, s->media_text, s->media_len, err) < 0)
        return -1;
    json_t *def;
    size_t written = 0;
    json_array_foreach(json_object_get(ctx->template_json, "controls"), i, def) {
        const char *control = json_string_value(json_object_get(def, "name"));
        s->boxes[i] = 0;
        if (!control)
            continue;
        s->conf[i] = tly_export_confidence_of(it, control);
        tly_jv box, key, val;
        size_t k = 0;
        for (tly_jv_iter bi = tly_jv_iter_of(tly_jv_get(it->answer_view, control)); tly_jv_next(&bi, &box); k++) {
            static const char *const names[] = {"label", "x", "y", "w", "h"};
            tly_jv field[5] = {{0}};
            for (tly_jv_iter mi = tly_jv_iter_of(box); tly_jv_next_member(&mi, &key, &val);) {
                int m = tly_jv_key_index(key, names, 5);
                if (m >= 0)
                    field[m] = val;   /* the last of duplicate keys wins, as in jansson */
            }
            tly_jv label = field[0], x = field[1], y = field[2], w = field[3], h = field[4];
            int id = -1;
            for (size_t c = 0; label.type == TLY_JV_STRING && c < ncls && id < 0; c++)
                if (tly_jv_string_eq(label, json_string_value(json_array_get(s->classes, c))))
                    id = (int)c;
            if (id < 0) {
                char name[256] = "(none)";
                if (label.type == TLY_JV_STRING)
                    tly_jv_string(label, name, sizeof name);
                return tly_fail(err, TLY_E_UNPROCESSABLE, "unknown_label",
                                "item %lld: box %zu of control '%s' has label '%s', which the template does not list",
                                (long long)it->item_id, k, control, name);
            }
            s->used[id] = 1;
            s->boxes[i]++;
            /* Assembled here and written at once: numbers take at most 40 bytes. */
            char buf[320], *p = buf;
            if (written++)
                *p++ = ',';
            TLY_EXPORT_LIT(p, "{\"class_id\":");
            p = tly_export_json_num_at(p, (double)id);
            TLY_EXPORT_LIT(p, ",\"left\":");
            p = tly_export_json_num_at(p, tly_jv_number(x));
            TLY_EXPORT_LIT(p, ",\"top\":");
            p = tly_export_json_num_at(p, tly_jv_number(y));
            TLY_EXPORT_LIT(p, ",\"width\":");
            p = tly_export_json_num_at(p, tly_jv_number(w));
            TLY_EXPORT_LIT(p, ",\"height\":");
            p = tly_export_json_num_at(p, tly_jv_number(h));
            *p++ = '}';
            if (tly_export_write(f, buf, (size_t)(p - buf), err) < 0)
                return -1;
        }
    }
    if (tly_export_puts(f, s->frag_meta, err) < 0)
        return -1;
    written = 0;
    json_array_foreach(json_object_get(ctx->template_json, "controls"), i, def) {
        char one[64], *p = one;
        TLY_EXPORT_LIT(p, "{\"confidence\":");
        p = tly_export_json_num_at(p, s->conf[i]);
        *p++ = '}';
        for (size_t k = 0; k < s->boxes[i]; k++)
            if ((written++ && PUT(f, ",") < 0) || tly_export_write(f, one, (size_t)(p - one), err) < 0)
                return -1;
    }
    if (PUT(f, "],\"class-map\":{") < 0)
        return -1;
    written = 0;
    for (size_t c = 0; c < ncls; c++) {
        if (!s->used[c])
            continue;
        if ((written++ && PUT(f, ",") < 0) || tly_export_puts(f, s->class_entry[c], err) < 0)
            return -1;
    }
    if (tly_export_puts(f, s->frag_type, err) < 0 || put_creation_date(f, it->updated_at, err) < 0 ||
        PUT(f, ",\"tally-method\":") < 0 || put_str(f, it->method ? it->method : "", err) < 0 ||
        PUT(f, ",\"tally-judgments\":") < 0 || tly_export_json_num(f, (double)it->judgments, err) < 0 ||
        PUT(f, ",\"tally-annotators\":") < 0)
        return -1;
    if (it->annotators ? tly_export_json(f, it->annotators, err) < 0 : PUT(f, "[]") < 0)
        return -1;
    if (PUT(f, "},\"tally-item-id\":") < 0 || tly_export_json_num(f, (double)it->item_id, err) < 0)
        return -1;
    if (ctx->has_split &&
        (PUT(f, ",\"tally-split\":") < 0 || put_str(f, it->split ? it->split : "", err) < 0))
        return -1;
    return PUT(f, "}\n");
}

static int jsonl_item(void *state, const tly_export_context *ctx, const tly_export_item *it, tly_export_out *out,
                      int pass, tly_error *err)
{
    jsonl_state *s = state;
    if (s->shape == SHAPE_DETECTION)
        return detection_line(s, ctx, it, err);
    int bad = 0, rc = 0;
    json_t *line = json_object(), *meta = json_object(), *attr = NULL;
    const char *type = "groundtruth/custom";
    if (!line || !meta) {
        json_decref(line);
        json_decref(meta);
        return tly_export_oom(err);
    }
    json_t *answer = NULL;
    if (tly_export_answer_json(it, &answer, err) < 0) {
        json_decref(line);
        json_decref(meta);
        return -1;
    }
    if (s->shape == SHAPE_CLASSIFICATION) {
        type = "groundtruth/image-classification";
        rc = classification(s, it, answer, &attr, meta, &bad, err);
    } else {
        attr = answer ? json_incref(answer) : json_null();
        tly_export_set(meta, "confidence", tly_export_num_json(it->confidence), &bad);
    }
    json_decref(answer);
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
    free(s->boxes);
    free(s->conf);
    json_decref(s->media);
    free(s->frag_attr);
    free(s->frag_meta);
    free(s->frag_type);
    for (size_t c = 0; s->class_entry && s->class_entry[c]; c++)
        free(s->class_entry[c]);
    free(s->class_entry);
    free(s);
}

const tly_export_writer tly_writer_jsonl = {
    .name = "jsonl", .media = "any", .passes = 1, .raw_answers = 1, .uses_annotators = 1, .begin = jsonl_begin,
    .item = jsonl_item, .end = jsonl_end, .free_state = jsonl_free,
};
