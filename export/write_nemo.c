/* write_nemo.c -- an NVIDIA NeMo ASR manifest: JSON lines of audio file, duration and
 * transcript.
 *
 * The format is the one NeMo's ASR datasets read ("Preparing Custom ASR Data",
 * https://docs.nvidia.com/nemo-framework/user-guide/latest/nemotoolkit/asr/datasets.html):
 * one JSON object per line,
 *   {"audio_filepath": "/path/to/audio.wav", "duration": 23.147, "text": "the transcription"}
 * with the duration in seconds. NeMo resolves a relative audio_filepath against the
 * manifest's own directory, which is the dataset root here.
 *
 * Choices:
 * - Files: "manifest.json" without a split (opened up front, so an empty export is
 *   still an empty, valid manifest); with a split, one file per split that has items,
 *   "manifest_<split>.json" (NeMo's train_ds / validation_ds / test_ds each take a
 *   manifest), opened when the split's first item arrives; all closed in end() in
 *   train, val, test order.
 * - Keys in the order audio_filepath, duration, text. audio_filepath = the item's
 *   media path in the dataset ("audio[/<split>]/<stem>.<ext>"); duration = the probed
 *   media's "duration" (omitted when the media has none: NeMo then cannot filter the
 *   line by length, but no made-up value is written); text = the answer of the
 *   template's first "transcription" control. An item without one (no such control,
 *   or no answer for it) gets "": the line still carries its audio and duration,
 *   which is what NeMo does with a missing text too.
 * - One line per item; nothing is kept between items but the open files.
 */
#include "export/writer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { SLOTS = TLY_EXPORT_SPLITS };   /* train, val, test (slot 0 alone without a split) */

typedef struct {
    tly_export_file *f[SLOTS];
    const char *text_control;   /* the first transcription control's name (borrowed), or NULL */
} nemo_state;

static int nemo_begin(void **state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    nemo_state *s = calloc(1, sizeof *s);
    if (!s)
        return tly_export_oom(err);
    *state = s;
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(ctx->template_json, "controls"), i, def) {
        const char *type = json_string_value(json_object_get(def, "type"));
        const char *name = json_string_value(json_object_get(def, "name"));
        if (type && name && strcmp(type, "transcription") == 0) {
            s->text_control = name;
            break;
        }
    }
    if (!ctx->has_split && !(s->f[0] = tly_export_open(out, "manifest.json", err)))
        return -1;
    return 0;
}

static int nemo_item(void *state, const tly_export_context *ctx, const tly_export_item *it, tly_export_out *out,
                     int pass, tly_error *err)
{
    nemo_state *s = state;
    const char *split = NULL;
    int slot = tly_export_split_slot(ctx, it, &split, err);
    if (slot < 0)
        return -1;
    char path[64];   /* without a split, the one file was opened by begin */
    snprintf(path, sizeof path, "manifest_%s.json", split ? split : "");
    if (!tly_export_open_once(out, &s->f[slot], path, err))
        return -1;
    const char *text = s->text_control ? json_string_value(json_object_get(it->answer, s->text_control)) : NULL;
    json_t *duration = json_object_get(it->media, "duration");
    json_t *line = json_object();
    int bad = !line || json_object_set_new(line, "audio_filepath", json_string(it->media_path)) < 0 ||
              (json_is_number(duration) &&
               json_object_set_new(line, "duration", tly_export_num_json(json_number_value(duration))) < 0) ||
              json_object_set_new(line, "text", json_string(text ? text : "")) < 0;
    int rc = bad ? tly_export_oom(err) : tly_export_json(s->f[slot], line, err) < 0 ? -1 : tly_export_puts(s->f[slot], "\n", err);
    json_decref(line);
    return rc;
}

static int nemo_end(void *state, const tly_export_context *ctx, tly_export_out *out, int pass, tly_error *err)
{
    nemo_state *s = state;
    return tly_export_close_all(s->f, SLOTS, err);
}

static void nemo_free(void *state)
{
    nemo_state *s = state;
    if (!s)
        return;
    tly_export_close_all(s->f, SLOTS, NULL);
    free(s);
}

const tly_export_writer tly_writer_nemo = {
    .name = "nemo", .media = "audio", .passes = 1, .begin = nemo_begin, .item = nemo_item, .end = nemo_end,
    .free_state = nemo_free,
};
