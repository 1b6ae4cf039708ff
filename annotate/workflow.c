/* workflow.c -- the per-project workflow configuration: how many workers judge an
 * item, how much gold is mixed in, the quiz, trust floor, lease length, and the
 * review / acceptance / pre-labeling rounds, and ingest's image checks (media_checks).
 *
 * The stored workflow always has every key (defaults filled at creation), so the
 * rounds that read it never need their own defaults. Unknown keys are rejected:
 * a typo such as "overlp" must not silently become the default.
 */
#include "annotate/project.h"
#include "core/json.h"

#include <stdio.h>
#include <string.h>

/* The tables below leave `choices` out except for T_ENUM fields. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

typedef struct {
    const char *key;
    enum { T_INT, T_NUM, T_BOOL, T_ENUM } type;
    double min, max, def;
    const char *const *choices;   /* T_ENUM: allowed strings, the first is the default */
} field;

static const char *const consensus_methods[] = {"dawid_skene", "weighted_vote", "majority", NULL};
static const char *const inspection_levels[] = {"II", "I", "III", "S-1", "S-2", "S-3", "S-4", NULL};

static const field top_fields[] = {
    {"overlap", T_INT, 1, 100, 3},       {"max_overlap", T_INT, 1, 100, 5},
    {"gold_rate", T_NUM, 0, 1, 0.1},     {"min_trust", T_NUM, 0, 1, 0.7},
    {"lease_seconds", T_INT, 10, 86400, 600}, {"per_worker_cap", T_INT, 0, 1000000000, 0},
    /* Below this confidence after overlap judgments an item gets more, up to
     * max_overlap; still below it at max_overlap, it goes to review. */
    {"min_confidence", T_NUM, 0, 1, 0.7},
    {NULL, T_INT, 0, 0, 0},
};
/* Thresholds of the comparison with gold (qa/compare.h). */
static const field gold_fields[] = {
    {"bbox_iou", T_NUM, 0.01, 1, 0.5},    {"segment_iou", T_NUM, 0.01, 1, 0.5},
    {"polygon_iou", T_NUM, 0.01, 1, 0.5}, {"keypoint_dist", T_NUM, 0.0001, 1, 0.05},
    {"keypoint_px", T_NUM, 0.0001, 100000, 10}, {"max_wer", T_NUM, 0, 1, 0.1},
    {"multi_jaccard", T_NUM, 0, 1, 1.0},
    {NULL, T_INT, 0, 0, 0},
};
/* Trust = (gold correct + prior_correct) / (gold seen + prior_correct + prior_wrong). */
static const field trust_fields[] = {
    {"prior_correct", T_NUM, 0, 1000, 3}, {"prior_wrong", T_NUM, 0, 1000, 1}, {NULL, T_INT, 0, 0, 0},
};
static const field consensus_fields[] = {
    {"choice", T_ENUM, 0, 0, 0, consensus_methods}, {NULL, T_INT, 0, 0, 0},
};
/* Automatic checks (0 / false = off). */
static const field checks_fields[] = {
    {"min_box_px", T_NUM, 0, 100000, 2},      {"segments_overlap", T_BOOL, 0, 1, 1},
    {"empty_transcription", T_BOOL, 0, 1, 1}, {"min_duration_ms", T_INT, 0, 86400000, 0},
    {"same_answer_min", T_INT, 0, 1000000, 20}, {NULL, T_INT, 0, 0, 0},
};
static const field quiz_fields[] = {
    {"size", T_INT, 0, 100, 4}, {"pass", T_NUM, 0, 1, 0.75}, {NULL, T_INT, 0, 0, 0},
};
/* Reviewers: managers, and workers whose trust reaches reviewer_trust. */
static const field review_fields[] = {
    {"sample_rate", T_NUM, 0, 1, 0.0}, {"reviewer_trust", T_NUM, 0, 1, 0.9},
    {"lease_seconds", T_INT, 10, 86400, 600}, {NULL, T_INT, 0, 0, 0},
};
static const field acceptance_fields[] = {
    {"aql", T_NUM, 0.01, 1000, 1.0}, {"level", T_ENUM, 0, 0, 0, inspection_levels}, {NULL, T_INT, 0, 0, 0},
};
static const field prelabel_fields[] = {
    {"show", T_BOOL, 0, 1, 0}, {"auto_accept", T_NUM, 0, 1, 0.95}, {"verify_rate", T_NUM, 0, 1, 0.1},
    /* > 0: derive auto_accept from the items humans finished (at least min_calibration
     * of them): the lowest score down to which the model's answers are estimated to be
     * this accurate, and no less accurate than the crowd's (annotate/prelabel.c). */
    {"target_accuracy", T_NUM, 0, 1, 0}, {"min_calibration", T_INT, 1, 1000000, 30},
    /* The built-in image classifier: accepted labels before its first fit (and per
     * option), and the growth of the labelled set that makes it fit again. */
    {"min_train", T_INT, 10, 1000000, 200}, {"min_per_class", T_INT, 1, 100000, 5},
    {"retrain_growth", T_NUM, 0.01, 10, 0.2},
    /* > 0: predictions from this score up to the auto-accept threshold go to the
     * confirm step (one worker; agreeing finishes the item, disagreeing sends it to
     * normal labeling: annotate/prelabel.c route). */
    {"verify_from", T_NUM, 0, 1, 0},
    /* Active learning: people get the new items the model is least sure of first
     * (dispatch by score), except the model's calibration sample, which stays in
     * arrival order so that its pairs cover every score (annotate/prelabel.c route). */
    {"uncertain_first", T_BOOL, 0, 1, 0},
    /* The model's prediction counts as evidence in the Dawid-Skene result of items
     * outside its calibration sample (qa/results.c model_vote). */
    {"model_vote", T_BOOL, 0, 1, 0},
    {NULL, T_INT, 0, 0, 0},
};

/* Ingest checks of images (ingest/imagecheck.h): flag the item, reject the file, or
 * skip the check. Thresholds: luminance standard deviation (0..255) below which an
 * image is blank, variance of the Laplacian at thumbnail scale below which it is
 * blurred, fractions of clipped pixels; 0 turns a quality flag off. */
static const char *const media_check_modes[] = {"flag", "reject", "off", NULL};
static const field media_checks_fields[] = {
    {"near_duplicate", T_ENUM, 0, 0, 0, media_check_modes}, {"near_duplicate_distance", T_INT, 0, 11, 6},
    {"quality", T_ENUM, 0, 0, 0, media_check_modes},        {"blank_stddev", T_NUM, 0, 255, 3},
    {"blur_sharpness", T_NUM, 0, 1000000, 10},              {"overexposed_fraction", T_NUM, 0, 1, 0.5},
    {"underexposed_fraction", T_NUM, 0, 1, 0.5},            {NULL, T_INT, 0, 0, 0},
};

static const struct {
    const char *key;
    const field *fields;
} sections[] = {
    {"quiz", quiz_fields}, {"review", review_fields}, {"acceptance", acceptance_fields},
    {"prelabel", prelabel_fields}, {"gold", gold_fields}, {"trust", trust_fields},
    {"consensus", consensus_fields}, {"checks", checks_fields}, {"media_checks", media_checks_fields},
    {NULL, NULL},
};

/* Copies each field of `fields` from in (may be NULL) to out, validated, or its default. */
static int fill(json_t *in, const field *fields, const char *where, json_t *out, tly_error *err)
{
    if (in) {
        const char *key;
        json_t *v;
        json_object_foreach(in, key, v) {
            int known = 0;
            for (const field *f = fields; f->key && !known; f++)
                known = strcmp(f->key, key) == 0;
            for (int s = 0; !known && !where[0] && sections[s].key; s++)
                known = strcmp(sections[s].key, key) == 0;
            if (!known)
                return tly_fail(err, TLY_E_INVALID, "invalid_workflow", "workflow%s%s: unknown field '%s'",
                                where[0] ? "." : "", where, key);
        }
    }
    for (const field *f = fields; f->key; f++) {
        tly_error sub;
        int rc = 1;
        json_t *val = NULL;
        if (f->type == T_INT) {
            int64_t x = (int64_t)f->def;
            rc = in ? tly_json_get_int(in, f->key, 0, (int64_t)f->min, (int64_t)f->max, &x, &sub) : 1;
            val = json_integer(x);
        } else if (f->type == T_NUM) {
            double x = f->def;
            rc = in ? tly_json_get_number(in, f->key, 0, f->min, f->max, &x, &sub) : 1;
            val = json_real(x);
        } else if (f->type == T_BOOL) {
            int x = f->def != 0;
            rc = in ? tly_json_get_bool(in, f->key, 0, &x, &sub) : 1;
            val = json_boolean(x);
        } else {
            json_t *given = in ? json_object_get(in, f->key) : NULL;
            const char *x = f->choices[0];
            rc = 1;
            if (given && !json_is_null(given)) {
                int ok = 0;
                for (int c = 0; json_is_string(given) && f->choices[c] && !ok; c++)
                    if (strcmp(f->choices[c], json_string_value(given)) == 0) {
                        x = f->choices[c];
                        ok = 1;
                    }
                if (!ok) {
                    char list[160] = "";
                    for (int c = 0; f->choices[c]; c++)
                        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", c ? ", " : "",
                                 f->choices[c]);
                    rc = tly_fail(&sub, TLY_E_INVALID, "invalid", "'%s' must be one of: %s", f->key, list);
                }
            }
            val = json_string(x);
        }
        if (rc < 0) {
            json_decref(val);
            return tly_fail(err, TLY_E_INVALID, "invalid_workflow", "workflow%s%s: %s",
                            where[0] ? "." : "", where, sub.message);
        }
        json_object_set_new(out, f->key, val);
    }
    return 0;
}

json_t *tly_workflow_normalize(json_t *workflow, tly_error *err)
{
    if (workflow && !json_is_object(workflow)) {
        tly_fail(err, TLY_E_INVALID, "invalid_workflow", "workflow must be an object");
        return NULL;
    }
    json_t *out = json_object();
    if (fill(workflow, top_fields, "", out, err) < 0)
        goto fail;
    /* max_overlap defaults to at least overlap, so "overlap":7 alone is valid. */
    int64_t overlap = json_integer_value(json_object_get(out, "overlap"));
    int64_t max_overlap = json_integer_value(json_object_get(out, "max_overlap"));
    /* null counts as absent, as everywhere in the API. */
    json_t *given_max = workflow ? json_object_get(workflow, "max_overlap") : NULL;
    int explicit_max = given_max && !json_is_null(given_max);
    if (max_overlap < overlap && explicit_max) {
        tly_fail(err, TLY_E_INVALID, "invalid_workflow", "workflow: max_overlap (%lld) is less than overlap (%lld)",
                 (long long)max_overlap, (long long)overlap);
        goto fail;
    }
    if (max_overlap < overlap)
        json_object_set_new(out, "max_overlap", json_integer(overlap));
    for (int s = 0; sections[s].key; s++) {
        json_t *in = workflow ? json_object_get(workflow, sections[s].key) : NULL;
        if (in && !json_is_object(in)) {
            tly_fail(err, TLY_E_INVALID, "invalid_workflow", "workflow.%s must be an object", sections[s].key);
            goto fail;
        }
        json_t *sec = json_object();
        json_object_set_new(out, sections[s].key, sec);
        if (fill(in, sections[s].fields, sections[s].key, sec, err) < 0)
            goto fail;
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

static const field *find_field(const char *section, const char *key)
{
    const field *fields = top_fields;
    if (section) {
        fields = NULL;
        for (int s = 0; sections[s].key && !fields; s++)
            if (strcmp(sections[s].key, section) == 0)
                fields = sections[s].fields;
    }
    for (const field *f = fields; f && f->key; f++)
        if (strcmp(f->key, key) == 0)
            return f;
    return NULL;
}

double tly_workflow_number(json_t *workflow, const char *section, const char *key)
{
    json_t *obj = section ? json_object_get(workflow, section) : workflow;
    json_t *v = json_object_get(obj, key);
    if (json_is_number(v))
        return json_number_value(v);
    if (json_is_boolean(v))
        return json_is_true(v);
    const field *f = find_field(section, key);
    return f ? f->def : 0;
}

const char *tly_workflow_string(json_t *workflow, const char *section, const char *key)
{
    json_t *obj = section ? json_object_get(workflow, section) : workflow;
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        return json_string_value(v);
    const field *f = find_field(section, key);
    return f && f->type == T_ENUM ? f->choices[0] : "";
}
