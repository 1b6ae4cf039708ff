/* writers.c -- the table of format writers (writer.h), and the small helpers they
 * share. Adding a format is one file write_<format>.c and one line here. */
#include "export/writer.h"

#include <math.h>
#include <string.h>

static const tly_export_writer *const all[] = {
    &tly_writer_coco, &tly_writer_voc, &tly_writer_yolo, &tly_writer_csv, &tly_writer_imagenet,
    &tly_writer_nemo, &tly_writer_rttm, &tly_writer_segments_csv, &tly_writer_jsonl, &tly_writer_labelstudio,
    NULL,
};

const tly_export_writer *tly_export_writer_find(const char *name)
{
    for (int i = 0; name && all[i]; i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

const char *tly_export_writer_names(void)
{
    return "coco, voc, yolo, csv, imagenet, nemo, rttm, segments_csv, jsonl, labelstudio";
}

int tly_export_split_slot(const tly_export_context *ctx, const tly_export_item *it, const char **name, tly_error *err)
{
    static const char *const names[TLY_EXPORT_SPLITS] = {"train", "val", "test"};
    if (name)
        *name = NULL;
    if (!ctx->has_split)
        return 0;
    for (int i = 0; i < TLY_EXPORT_SPLITS; i++)
        if (it->split && strcmp(it->split, names[i]) == 0) {
            if (name)
                *name = names[i];
            return i;
        }
    return tly_fail(err, TLY_E_INTERNAL, "writer_bug", "item %lld: unknown split '%s'", (long long)it->item_id,
                    it->split ? it->split : "(none)");
}

tly_export_file *tly_export_open_once(tly_export_out *out, tly_export_file **f, const char *path, tly_error *err)
{
    if (!*f)
        *f = tly_export_open(out, path, err);
    return *f;
}

int tly_export_close_all(tly_export_file **files, size_t n, tly_error *err)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        tly_export_file *f = files[i];
        files[i] = NULL;
        tly_error later;
        if (f && tly_export_close(f, rc == 0 ? err : &later) < 0)
            rc = -1;
    }
    return rc;
}

void tly_export_set(json_t *obj, const char *key, json_t *v, int *bad)
{
    if (!v || json_object_set_new(obj, key, v) < 0)
        *bad = 1;
}

void tly_export_append(json_t *arr, json_t *v, int *bad)
{
    if (!v || json_array_append_new(arr, v) < 0)
        *bad = 1;
}

json_t *tly_export_num_json(double v)
{
    if (!isfinite(v))
        return json_integer(0);
    if (v == floor(v) && fabs(v) < 1e15)
        return json_integer((json_int_t)v);
    return json_real(v);
}

double tly_export_confidence_of(const tly_export_item *it, const char *control)
{
    if (!it->detail) {
        tly_jv c = tly_jv_get(tly_jv_get(it->detail_view, control), "confidence");
        return tly_jv_is_number(c) ? tly_jv_number(c) : it->confidence;
    }
    json_t *c = json_object_get(json_object_get(it->detail, control), "confidence");
    return json_is_number(c) ? json_number_value(c) : it->confidence;
}

int tly_export_answer_json(const tly_export_item *it, json_t **out, tly_error *err)
{
    *out = NULL;
    if (it->answer) {
        *out = json_incref(it->answer);
        return 0;
    }
    if (it->answer_view.type == TLY_JV_NONE)
        return 0;
    /* Validated text (export.c): only memory can fail here. */
    *out = json_loadb(it->answer_view.p, it->answer_view.len, JSON_DECODE_ANY, NULL);
    return *out ? 0 : tly_export_oom(err);
}

int tly_export_oom(tly_error *err)
{
    return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
}
