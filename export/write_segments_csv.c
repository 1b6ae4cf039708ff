/* write_segments_csv.c -- the labelled time spans of audio items as a CSV table, one
 * row per segment.
 *
 * A plain table for pandas, spreadsheets and sound-event tooling; no standard governs
 * it beyond CSV itself, so its columns are the ones listed below. CSV per RFC 4180
 * (https://www.rfc-editor.org/rfc/rfc4180): a header row, CRLF line ends, fields
 * quoted when they hold a comma, quote, CR or LF (tly_export_csv_field), quotes
 * doubled.
 *
 * Choices:
 * - One file, "segments.csv" (with a split too: the split is a column, so one table
 *   serves every split). Header:
 *     item_id,file,start,end,duration,label,confidence[,split]
 *   the "split" column only when the export has a split.
 * - One row per segment of the template's first "audio_segments" control, in item
 *   and answer order (the same spans as the rttm format); items without segments add
 *   no row.
 * - item_id = the item's id; file = its media path in the dataset
 *   ("audio[/<split>]/<stem>.<ext>"); start, end in seconds as answered; duration =
 *   end - start; numbers printed with tly_export_num (0.5, 2, 0.3333333333).
 * - confidence = the result detail's confidence for that control, else the result's.
 */
#include "export/writer.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    tly_export_file *f;
    const char *control;   /* the first audio_segments control's name (borrowed), or NULL */
} seg_state;

static int put_num(tly_export_file *f, double v, tly_error *err)
{
    char b[32];
    tly_export_num(v, b, sizeof b);
    return tly_export_puts(f, b, err);
}

static int seg_begin(void **state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    seg_state *s = calloc(1, sizeof *s);
    if (!s)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    *state = s;
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(ctx->template_json, "controls"), i, def) {
        const char *type = json_string_value(json_object_get(def, "type"));
        const char *name = json_string_value(json_object_get(def, "name"));
        if (type && name && strcmp(type, "audio_segments") == 0) {
            s->control = name;
            break;
        }
    }
    if (!(s->f = tly_export_open(out, "segments.csv", err)))
        return -1;
    return tly_export_puts(s->f, ctx->has_split ? "item_id,file,start,end,duration,label,confidence,split\r\n"
                                                : "item_id,file,start,end,duration,label,confidence\r\n",
                           err);
}

static int seg_item(void *state, const tly_export_context *ctx, const tly_export_item *it, tly_export_out *out,
                    int pass, tly_error *err)
{
    seg_state *s = state;
    tly_export_file *f = s->f;
    if (!s->control)
        return 0;
    double confidence = tly_export_confidence_of(it, s->control);
    size_t i;
    json_t *seg;
    json_array_foreach(json_object_get(it->answer, s->control), i, seg) {
        double start = json_number_value(json_object_get(seg, "start"));
        double end = json_number_value(json_object_get(seg, "end"));
        const char *label = json_string_value(json_object_get(seg, "label"));
        if (tly_export_printf(f, err, "%lld,", (long long)it->item_id) < 0 ||
            tly_export_csv_field(f, it->media_path, err) < 0 || tly_export_puts(f, ",", err) < 0 ||
            put_num(f, start, err) < 0 || tly_export_puts(f, ",", err) < 0 || put_num(f, end, err) < 0 ||
            tly_export_puts(f, ",", err) < 0 || put_num(f, end - start, err) < 0 || tly_export_puts(f, ",", err) < 0 ||
            tly_export_csv_field(f, label, err) < 0 || tly_export_puts(f, ",", err) < 0 ||
            put_num(f, confidence, err) < 0 ||
            (ctx->has_split &&
             (tly_export_puts(f, ",", err) < 0 || tly_export_csv_field(f, it->split, err) < 0)) ||
            tly_export_puts(f, "\r\n", err) < 0)
            return -1;
    }
    return 0;
}

static int seg_end(void *state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    seg_state *s = state;
    tly_export_file *f = s->f;
    s->f = NULL;
    return tly_export_close(f, err);
}

static void seg_free(void *state)
{
    seg_state *s = state;
    if (!s)
        return;
    tly_error ignore;
    tly_export_close(s->f, &ignore);
    free(s);
}

const tly_export_writer tly_writer_segments_csv = {
    .name = "segments_csv", .media = "audio", .passes = 1, .begin = seg_begin, .item = seg_item, .end = seg_end,
    .free_state = seg_free,
};
