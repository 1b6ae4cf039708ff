/* write_csv.c -- an Appen-style (Figure Eight) aggregated results CSV.
 *
 * One row per item, one column per template control and its confidence, after the
 * row's metadata columns whose names start with "_", as in Appen's aggregated
 * report ("Guide to: Reports Page and Options Page",
 * https://success.figure-eight.com/hc/en-us/articles/202703075; confidence as in
 * https://success.figure-eight.com/hc/en-us/articles/201855939): _unit_id,
 * _trusted_judgments, then for every field "<field>" and "<field>:confidence".
 * CSV per RFC 4180 (https://www.rfc-editor.org/rfc/rfc4180):
 * CRLF line ends, a header row, fields quoted when they hold a comma, quote, CR or LF
 * (tly_export_csv_field), quotes doubled.
 *
 * Choices:
 * - One file, "results.csv", for image and audio projects alike. Header:
 *   _unit_id,_file,_trusted_judgments,_confidence,_method[,_split],<field>,
 *   <field>:confidence,... for every control of the template in template order
 *   (the "_split" column only when the export has a split).
 * - _unit_id = the item's id; _file = the item's media path in the dataset; _confidence
 *   = the result's; _method = how it was reached ("dawid_skene", "review", ...).
 * - Field values: a choice, text or transcription as its string; a multi_choice as its
 *   options joined with "\n" (Appen's multi-checkbox convention, inside a quoted
 *   field); any other control (boxes, polygons, keypoints, audio segments) as its
 *   compact JSON; an unanswered control as an empty field.
 * - <field>:confidence = the result detail's per-control confidence, else the
 *   result's confidence. Numbers via tly_export_num.
 */
#include "export/writer.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    tly_export_file *f;
} csv_state;

static int put_num(tly_export_file *f, double v, tly_error *err)
{
    char b[32];
    tly_export_num(v, b, sizeof b);
    return tly_export_puts(f, b, err);
}

static int csv_begin(void **state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    csv_state *s = calloc(1, sizeof *s);
    if (!s)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    *state = s;
    if (!(s->f = tly_export_open(out, "results.csv", err)))
        return -1;
    if (tly_export_puts(s->f, "_unit_id,_file,_trusted_judgments,_confidence,_method", err) < 0 ||
        (ctx->has_split && tly_export_puts(s->f, ",_split", err) < 0))
        return -1;
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(ctx->template_json, "controls"), i, def) {
        const char *name = json_string_value(json_object_get(def, "name"));
        if (!name)
            continue;
        char *conf = NULL;
        if (asprintf(&conf, "%s:confidence", name) < 0)
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        int rc = tly_export_puts(s->f, ",", err) < 0 || tly_export_csv_field(s->f, name, err) < 0 ||
                         tly_export_puts(s->f, ",", err) < 0 || tly_export_csv_field(s->f, conf, err) < 0
                     ? -1
                     : 0;
        free(conf);
        if (rc < 0)
            return -1;
    }
    return tly_export_puts(s->f, "\r\n", err);
}

/* The field text of one control's value (malloc'd; "" for none), or NULL. */
static char *field_text(const char *type, json_t *v)
{
    if (!v || json_is_null(v))
        return strdup("");
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (type && strcmp(type, "multi_choice") == 0 && json_is_array(v)) {
        size_t len = 1, i;
        json_t *e;
        json_array_foreach(v, i, e)
            len += json_string_length(e) + 1;
        char *text = malloc(len), *p = text;
        if (!text)
            return NULL;
        json_array_foreach(v, i, e) {
            if (i)
                *p++ = '\n';
            size_t n = json_string_length(e);   /* 0 for a non-string */
            memcpy(p, json_string_value(e) ? json_string_value(e) : "", n);
            p += n;
        }
        *p = 0;
        return text;
    }
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(10));
}

static int csv_item(void *state, const tly_export_context *ctx, const tly_export_item *it, tly_export_out *out,
                    int pass, tly_error *err)
{
    csv_state *s = state;
    tly_export_file *f = s->f;
    if (tly_export_printf(f, err, "%lld,", (long long)it->item_id) < 0 ||
        tly_export_csv_field(f, it->media_path, err) < 0 ||
        tly_export_printf(f, err, ",%lld,", (long long)it->judgments) < 0 || put_num(f, it->confidence, err) < 0 ||
        tly_export_puts(f, ",", err) < 0 || tly_export_csv_field(f, it->method, err) < 0 ||
        (ctx->has_split &&
         (tly_export_puts(f, ",", err) < 0 || tly_export_csv_field(f, it->split ? it->split : "", err) < 0)))
        return -1;
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(ctx->template_json, "controls"), i, def) {
        const char *name = json_string_value(json_object_get(def, "name"));
        if (!name)
            continue;
        char *text = field_text(json_string_value(json_object_get(def, "type")), json_object_get(it->answer, name));
        if (!text)
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        int rc = tly_export_puts(f, ",", err) < 0 || tly_export_csv_field(f, text, err) < 0 ||
                         tly_export_puts(f, ",", err) < 0 || put_num(f, tly_export_confidence_of(it, name), err) < 0
                     ? -1
                     : 0;
        free(text);
        if (rc < 0)
            return -1;
    }
    return tly_export_puts(f, "\r\n", err);
}

static int csv_end(void *state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    csv_state *s = state;
    tly_export_file *f = s->f;
    s->f = NULL;
    return tly_export_close(f, err);
}

static void csv_free(void *state)
{
    csv_state *s = state;
    if (!s)
        return;
    tly_error ignore;
    tly_export_close(s->f, &ignore);
    free(s);
}

const tly_export_writer tly_writer_csv = {
    .name = "csv", .media = "any", .passes = 1, .begin = csv_begin, .item = csv_item, .end = csv_end,
    .free_state = csv_free,
};
