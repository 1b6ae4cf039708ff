/* checks.c -- see checks.h. */
#include "qa/checks.h"
#include "annotate/project.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tly_check_rules_of(json_t *workflow, tly_check_rules *r)
{
    r->min_box_px = tly_workflow_number(workflow, "checks", "min_box_px");
    r->segments_overlap = tly_workflow_number(workflow, "checks", "segments_overlap") != 0;
    r->empty_transcription = tly_workflow_number(workflow, "checks", "empty_transcription") != 0;
    r->min_duration_ms = (int64_t)tly_workflow_number(workflow, "checks", "min_duration_ms");
    r->same_answer_min = (int64_t)tly_workflow_number(workflow, "checks", "same_answer_min");
}

static void flag(json_t *flags, const char *rule, const char *control)
{
    char s[160];
    if (control)
        snprintf(s, sizeof s, "%s:%s", rule, control);
    else
        snprintf(s, sizeof s, "%s", rule);
    size_t i;
    json_t *v;
    json_array_foreach(flags, i, v)
        if (strcmp(json_string_value(v), s) == 0)
            return;
    json_array_append_new(flags, json_string(s));
}

static double num(json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

static int by_start(const void *a, const void *b)
{
    const double *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

static int segments_overlap(json_t *segs)
{
    size_t n = json_array_size(segs);
    if (n < 2)
        return 0;
    double *iv = malloc(n * 2 * sizeof *iv);
    if (!iv)
        return 0;
    for (size_t i = 0; i < n; i++) {
        iv[2 * i] = num(json_array_get(segs, i), "start");
        iv[2 * i + 1] = num(json_array_get(segs, i), "end");
    }
    qsort(iv, n, 2 * sizeof *iv, by_start);
    int overlap = 0;
    for (size_t i = 1; i < n && !overlap; i++)
        overlap = iv[2 * i] < iv[2 * (i - 1) + 1] - 1e-9;
    free(iv);
    return overlap;
}

void tly_checks_result(json_t *tmpl, json_t *answer, const tly_judgment *js, size_t n, const tly_check_rules *r,
                       json_t *flags)
{
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(tmpl, "controls"), i, def) {
        const char *name = json_string_value(json_object_get(def, "name"));
        const char *type = json_string_value(json_object_get(def, "type"));
        json_t *v = name ? json_object_get(answer, name) : NULL;
        if (!type || !v)
            continue;
        if (strcmp(type, "bbox") == 0 && r->min_box_px > 0) {
            size_t k;
            json_t *box;
            json_array_foreach(v, k, box)
                if (num(box, "w") < r->min_box_px || num(box, "h") < r->min_box_px)
                    flag(flags, "box_too_small", name);
        } else if (strcmp(type, "audio_segments") == 0 && r->segments_overlap && segments_overlap(v)) {
            flag(flags, "segments_overlap", name);
        } else if ((strcmp(type, "transcription") == 0 || strcmp(type, "text") == 0) && r->empty_transcription) {
            const char *t = json_string_value(v);
            int empty = 1;
            for (; t && *t && empty; t++)
                empty = *t == ' ' || *t == '\t' || *t == '\n' || *t == '\r';
            if (empty)
                flag(flags, "empty_transcription", name);
        }
    }
    for (size_t k = 0; k < n && r->min_duration_ms > 0; k++)
        if (js[k].duration_ms > 0 && js[k].duration_ms < r->min_duration_ms)
            flag(flags, "too_fast", NULL);
}
