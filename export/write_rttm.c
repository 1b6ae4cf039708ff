/* write_rttm.c -- NIST RTTM (Rich Transcription Time Marked): the labelled time spans
 * of audio items, one per line.
 *
 * RTTM is the file format of NIST's Rich Transcription evaluations, read by md-eval,
 * dscore, pyannote.metrics and NeMo's diarization tools (field layout: NIST RT-09
 * evaluation plan, appendix A, and LDC's "RTTM format v1.3",
 * https://catalog.ldc.upenn.edu/docs/LDC2004T12/RTTM-format-v13.pdf). A line is ten
 * fields separated by single spaces:
 *   type file-id channel onset duration ortho speaker-type name confidence lookahead
 *   SPEAKER <file-id> 1 <onset> <duration> <NA> <NA> <name> <NA> <NA>
 * with onset and duration in seconds and "<NA>" for a field that does not apply.
 *
 * Choices:
 * - Files: "segments.rttm" without a split (opened up front, so an empty export is an
 *   empty RTTM file); with a split, "segments_<split>.rttm" per split that has items,
 *   opened when its first item arrives (even if that item has no segments, so every
 *   split with items has a file); all closed in end() in train, val, test order.
 * - One line per segment of the template's first "audio_segments" control (a second
 *   such control usually means a different kind of span, which a diarization
 *   reference must not mix in), in the answer's order; items without segments add
 *   nothing. Type "SPEAKER" (the type scoring tools read), channel 1.
 * - file-id = the item's stem, which is its media file's name without the extension
 *   ("00000042-meeting"), as RTTM wants.
 * - onset and duration with three decimals (milliseconds): both ends are rounded to
 *   the millisecond first and the duration is their difference, so onset + duration
 *   is exactly the rounded end.
 * - name = the segment's label; RTTM fields cannot hold white space, so any is
 *   written as '_' ("background noise" -> "background_noise"); an empty label is
 *   "<NA>". ortho, speaker type, confidence and lookahead are "<NA>" (the result's
 *   confidence is in segments_csv).
 */
#include "export/writer.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { SLOTS = TLY_EXPORT_SPLITS };   /* train, val, test (slot 0 alone without a split) */

typedef struct {
    tly_export_file *f[SLOTS];
    const char *control;   /* the first audio_segments control's name (borrowed), or NULL */
} rttm_state;

static int rttm_begin(void **state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    rttm_state *s = calloc(1, sizeof *s);
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
    if (!ctx->has_split && !(s->f[0] = tly_export_open(out, "segments.rttm", err)))
        return -1;
    return 0;
}

/* Seconds, rounded to the millisecond (negative and non-finite values as 0). */
static long long to_ms(json_t *v)
{
    double x = json_number_value(v);
    return isfinite(x) && x > 0 ? llround(x * 1000.0) : 0;
}

static int rttm_item(void *state, const tly_export_context *ctx, const tly_export_item *it, tly_export_out *out,
                     int pass, tly_error *err)
{
    rttm_state *s = state;
    const char *split = NULL;
    int slot = tly_export_split_slot(ctx, it, &split, err);
    if (slot < 0)
        return -1;
    char path[64];   /* without a split, the one file was opened by begin */
    snprintf(path, sizeof path, "segments_%s.rttm", split ? split : "");
    if (!tly_export_open_once(out, &s->f[slot], path, err))
        return -1;
    size_t i;
    json_t *seg;
    json_array_foreach(s->control ? json_object_get(it->answer, s->control) : NULL, i, seg) {
        const char *label = json_string_value(json_object_get(seg, "label"));
        char *name = strdup(label && label[0] ? label : "<NA>");
        if (!name)
            return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        for (char *p = name; *p; p++)
            if (isspace((unsigned char)*p) || (unsigned char)*p < 0x20)
                *p = '_';
        long long on = to_ms(json_object_get(seg, "start")), end = to_ms(json_object_get(seg, "end"));
        long long dur = end > on ? end - on : 0;
        int rc = tly_export_printf(s->f[slot], err, "SPEAKER %s 1 %lld.%03lld %lld.%03lld <NA> <NA> %s <NA> <NA>\n",
                                   it->stem, on / 1000, on % 1000, dur / 1000, dur % 1000, name);
        free(name);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int rttm_end(void *state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    rttm_state *s = state;
    return tly_export_close_all(s->f, SLOTS, err);
}

static void rttm_free(void *state)
{
    rttm_state *s = state;
    if (!s)
        return;
    tly_export_close_all(s->f, SLOTS, NULL);
    free(s);
}

const tly_export_writer tly_writer_rttm = {
    .name = "rttm", .media = "audio", .passes = 1, .begin = rttm_begin, .item = rttm_item, .end = rttm_end,
    .free_state = rttm_free,
};
