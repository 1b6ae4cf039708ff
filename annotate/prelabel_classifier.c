/* prelabel_classifier.c -- the built-in "image-classifier" model: active learning on a
 * project's own accepted labels, for the first choice control of an image template.
 *
 * Life of a model (all on the prelabel job's thread, one job per model at a time):
 *   1. Until the project has prelabel.min_train accepted labels (results of done or
 *      released items that a human round made; prelabel.min_per_class per option),
 *      predict() answers "pending" and the items wait. The aggregation job calls
 *      tly_prelabel_classifier_on_results after storing results; once there are
 *      enough labels it marks the model stale and queues its job.
 *   2. A stale (or never fitted) model fits: features of every labelled item (cached
 *      per item in the store; computed from the item's JPEG thumbnail on first use),
 *      a deterministic split by item id -- 9/10 to fit softmax regression, 1/10 held
 *      out to fit the temperature that calibrates the scores (classifier.h). The
 *      weights go to the store with the label count, and the next fit is due when the
 *      labelled set has grown by prelabel.retrain_growth. So a job never refits
 *      unless there is enough new data, and a restart reuses the weights.
 *   3. Items are predicted with the calibrated probability of the best option as
 *      their score, which confidence routing compares with auto_accept (or the
 *      threshold derived for target_accuracy). Items whose label the fit was trained
 *      on get the answer without a score (-1): a score there would flatter the model
 *      in the calibration pairs. Held-out items keep honest scores, so the pairs the
 *      target_accuracy threshold needs exist as soon as the model does.
 *   4. After each refit the model's predictions on fresh items (new, never judged, not
 *      routed; confirm steps nobody has started are made fresh again) are dropped
 *      (tly_store_classifier_forget_fresh) and a run is queued, so the better model
 *      gets another look at everything nobody has worked on yet: items the old model
 *      was unsure about are routed now if the new one is confident. Not before the
 *      fit: unpredicted fresh items are the crowd's, which would label the next ones
 *      in line in full while the fit runs.
 * Nothing here runs on the judgment submit path: the trigger rides on the
 * aggregation job, which already runs after judgments.
 */
#include "core/json.h"
#include "annotate/classifier.h"
#include "annotate/prelabel.h"
#include "annotate/project.h"
#include "core/log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIND "image-classifier"
#define MAX_WEIGHTS (256u * 1024 * 1024)
#define MAX_THUMB (16u * 1024 * 1024)
#define HELDOUT_ONE_IN 10
/* Below this many held-out labels, the temperature is not fitted (stays 1). */
#define MIN_HELDOUT 10
/* A refit is due after at least this many new labels, whatever the growth rate. */
#define MIN_NEW_LABELS 20
/* At most this many labels go into a fit (a fixed sample by item id beyond that):
 * features are TLY_CLS_DIM floats (~6 KB) per label, all in memory while fitting. */
#define MAX_FIT_LABELS 16000

/* The template's first single-choice control: its name and options (borrowed). */
static int choice_control(const tly_project *p, const char **name, json_t **options)
{
    size_t i;
    json_t *def;
    json_array_foreach(json_object_get(p->template_json, "controls"), i, def) {
        const char *type = json_string_value(json_object_get(def, "type"));
        if (type && strcmp(type, "choice") == 0) {
            *name = json_string_value(json_object_get(def, "name"));
            *options = json_object_get(def, "options");
            return *name && json_array_size(*options) >= 2;
        }
    }
    return 0;
}

static uint64_t item_hash(int64_t item_id)
{
    uint64_t z = (uint64_t)item_id + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Held-out for calibration: a fixed tenth of the items, by a hash of the id. A tenth,
 * not a fifth as before: with prelabel.model_vote these items are the only ones labeled
 * in full without the model's help, and at a fifth they took a third of all judgments
 * in tools/bench/prelabel-images (10,000 items still give ~1,000 pairs). */
static int held_out(int64_t item_id)
{
    return (item_hash(item_id) >> 20) % HELDOUT_ONE_IN == 0;
}

static int setup(tly_model *m, const tly_project *p, const tly_prelabel_env *env, tly_error *err)
{
    (void)env;
    const char *name;
    json_t *options;
    if (strcmp(p->media, "image") != 0)
        return tly_fail(err, TLY_E_UNPROCESSABLE, "template_unsuitable",
                        "model '" KIND "' labels images; project %lld is an %s project", (long long)p->id, p->media);
    if (!choice_control(p, &name, &options))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "template_unsuitable",
                        "model '" KIND "' needs a choice control with at least 2 options; the template has none");
    snprintf(m->version, sizeof m->version, KIND "/1 untrained");
    return 0;
}

/* ---- features ------------------------------------------------------------------------------ */

/* The item's features: cached, else computed from its thumbnail and cached. */
static int item_features(tly_store *st, int64_t item_id, float *out, tly_error *err)
{
    tly_buf b;
    tly_buf_init(&b, TLY_CLS_DIM * sizeof(float));
    int rc = tly_store_classifier_features_get(st, item_id, TLY_CLS_FEATURES_VERSION, &b, err);
    if (rc == 0 && b.len == TLY_CLS_DIM * sizeof(float)) {
        memcpy(out, b.data, b.len);
        tly_buf_free(&b);
        return 0;
    }
    tly_buf_free(&b);
    if (rc < 0)
        return -1;
    char sha[65];
    tly_buf_init(&b, MAX_THUMB);
    rc = tly_store_preview_get(st, item_id, "thumbnail", &b, sha, err);
    if (rc == 0)
        rc = tly_cls_features_jpeg(b.data, b.len, out, err);
    tly_buf_free(&b);
    if (rc < 0)
        return -1;
    return tly_store_classifier_features_put(st, item_id, TLY_CLS_FEATURES_VERSION, out, TLY_CLS_DIM * sizeof(float),
                                             err);
}

/* ---- fitting -------------------------------------------------------------------------------- */

typedef struct {
    const char *control;
    json_t *options;
    double keep;              /* share of the labels sampled into the fit (1 = all) */
    float *x;
    int *y;
    int64_t *ids;
    unsigned char *have;      /* features came from the cache */
    size_t n, cap;
    int failed;
} labels;

static void labels_free(labels *l)
{
    free(l->x);
    free(l->y);
    free(l->ids);
    free(l->have);
    memset(l, 0, sizeof *l);
}

static int collect_label(int64_t item_id, json_t *answer, const void *features, size_t len, void *ctx)
{
    labels *l = ctx;
    int y = tly_json_string_index(l->options, json_object_get(answer, l->control));
    if (y < 0)
        return 0;   /* answered without this control (or an old option) */
    if (l->keep < 1 && (double)(item_hash(item_id) % 1000000) >= l->keep * 1000000)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        float *x = realloc(l->x, cap * TLY_CLS_DIM * sizeof *x);
        if (x)
            l->x = x;
        int *ny = realloc(l->y, cap * sizeof *ny);
        if (ny)
            l->y = ny;
        int64_t *ids = realloc(l->ids, cap * sizeof *ids);
        if (ids)
            l->ids = ids;
        unsigned char *have = realloc(l->have, cap);
        if (have)
            l->have = have;
        if (!x || !ny || !ids || !have) {
            l->failed = 1;
            return -1;
        }
        l->cap = cap;
    }
    size_t i = l->n++;
    l->y[i] = y;
    l->ids[i] = item_id;
    l->have[i] = features && len == TLY_CLS_DIM * sizeof(float);
    if (l->have[i])
        memcpy(l->x + i * TLY_CLS_DIM, features, len);
    return 0;
}

/* Features for the labels that had none cached (one transaction for the writes). */
static int fill_missing(tly_store *st, labels *l, tly_error *err)
{
    size_t missing = 0;
    for (size_t i = 0; i < l->n; i++)
        missing += !l->have[i];
    if (!missing)
        return 0;
    if (tly_store_begin(st, err) < 0)
        return -1;
    for (size_t i = 0; i < l->n; i++) {
        if (l->have[i])
            continue;
        tly_error ferr;
        if (item_features(st, l->ids[i], l->x + i * TLY_CLS_DIM, &ferr) < 0) {
            if (ferr.status != TLY_E_UNPROCESSABLE && ferr.status != TLY_E_NOT_FOUND) {
                tly_store_rollback(st);
                *err = ferr;
                return -1;
            }
            l->y[i] = -1;   /* no usable image: left out of the fit */
        }
    }
    return tly_store_commit(st, err);
}

/* The model_version of a fit's predictions. */
static void version_of(char *out, size_t outsz, int64_t trained_on, double temperature)
{
    snprintf(out, outsz, KIND "/1 n=%lld T=%.2f", (long long)trained_on, temperature);
}

/* Honest predictions of the new weights on the held-out labelled items (their
 * labels were not fitted on), replacing older versions' predictions there. They
 * are most of the calibration pairs the target_accuracy threshold is derived from
 * (prelabel.c): without this, those pairs were the predictions each item got when
 * it was fresh, mostly from the first, weakest fits (calibrated on a few dozen
 * rows), and the threshold described models that no longer existed. The items are
 * done, so nothing is routed. One transaction. */
static int score_held_out(tly_store *st, const tly_model *m, const tly_project *p, const char *control,
                          json_t *options, const tly_cls_model *model, const labels *l, size_t from, size_t to,
                          const char *version, tly_error *err)
{
    double *prob = malloc((size_t)model->k * sizeof *prob);
    if (!prob)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    int rc = tly_store_begin(st, err);
    for (size_t i = from; i < to && rc == 0; i++) {
        double score;
        int best = tly_cls_classify(model, l->x + i * TLY_CLS_DIM, prob, &score);
        json_t *answer = json_pack("{s:O}", control, json_array_get(options, (size_t)best));
        rc = tly_store_prediction_put(st, l->ids[i], p->id, m->id, version, answer, score, NULL, err);
        json_decref(answer);
    }
    if (rc == 0)
        rc = tly_store_commit(st, err);
    else
        tly_store_rollback(st);
    free(prob);
    return rc;
}

typedef struct {
    int64_t trained_on;
    double heldout_accuracy, nll, temperature;
    size_t fit_rows, heldout_rows;
} fit_report;

/* Fits and stores the model when the labels allow it. 1 = fitted (weights in *model),
 * 0 = not enough labels yet (next_train_at moved), -1 = error. */
static int fit(tly_store *st, const tly_model *m, const tly_project *p, const char *control, json_t *options,
               tly_cls_model *model, fit_report *rep, tly_error *err)
{
    int64_t min_train = (int64_t)tly_workflow_number(p->workflow, "prelabel", "min_train");
    int64_t min_per_class = (int64_t)tly_workflow_number(p->workflow, "prelabel", "min_per_class");
    double growth = tly_workflow_number(p->workflow, "prelabel", "retrain_growth");
    int k = (int)json_array_size(options);
    labels l = {.control = control, .options = options};
    int64_t *per_class = calloc((size_t)k, sizeof *per_class);
    tly_buf blob;
    tly_buf_init(&blob, MAX_WEIGHTS);
    int rc = -1;
    if (!per_class) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    int64_t available = 0;
    if (tly_store_classifier_label_count(st, p->id, &available, err) < 0)
        goto out;
    l.keep = available > MAX_FIT_LABELS ? (double)MAX_FIT_LABELS / (double)available : 1.0;
    if (tly_store_classifier_labels(st, p->id, TLY_CLS_FEATURES_VERSION, collect_label, &l, err) < 0) {
        if (l.failed)
            tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    if (fill_missing(st, &l, err) < 0)
        goto out;
    int64_t total = 0, short_classes = 0;
    for (size_t i = 0; i < l.n; i++)
        if (l.y[i] >= 0) {
            per_class[l.y[i]]++;
            total++;
        }
    for (int c = 0; c < k; c++)
        short_classes += per_class[c] < min_per_class;
    /* Options nobody ever picks must not block the model forever: past 4 x min_train
     * they are simply classes it never predicts. */
    if (total < min_train || (short_classes && total < 4 * min_train)) {
        tly_classifier_state s = {.model_id = m->id, .next_train_at = total + MIN_NEW_LABELS};
        s.info = json_pack("{s:s,s:I,s:I,s:I}", "status", "waiting", "labels", (json_int_t)total, "min_train",
                           (json_int_t)min_train, "classes_below_min", (json_int_t)short_classes);
        rc = tly_store_classifier_state_put(st, &s, NULL, 0, err) < 0 ? -1 : 0;
        json_decref(s.info);
        goto out;
    }
    /* In place (no copy of the features): usable rows first, fit rows before held-out. */
    size_t n = 0;
    for (size_t i = 0; i < l.n; i++)
        if (l.y[i] >= 0) {
            if (n != i) {
                memcpy(l.x + n * TLY_CLS_DIM, l.x + i * TLY_CLS_DIM, TLY_CLS_DIM * sizeof(float));
                l.y[n] = l.y[i];
                l.ids[n] = l.ids[i];
            }
            n++;
        }
    size_t nh = 0;
    for (size_t i = 0; i < n; i++)
        nh += held_out(l.ids[i]) != 0;
    if (nh < MIN_HELDOUT) {   /* too few to calibrate on: fit on everything, T = 1 */
        nh = 0;
    } else {
        float tmp[TLY_CLS_DIM];
        size_t a = 0, b = n;   /* [0,a) fit, [b,n) held out */
        while (a < b) {
            if (!held_out(l.ids[a])) {
                a++;
                continue;
            }
            b--;
            memcpy(tmp, l.x + a * TLY_CLS_DIM, sizeof tmp);
            memcpy(l.x + a * TLY_CLS_DIM, l.x + b * TLY_CLS_DIM, sizeof tmp);
            memcpy(l.x + b * TLY_CLS_DIM, tmp, sizeof tmp);
            int ty = l.y[a];
            l.y[a] = l.y[b];
            l.y[b] = ty;
            int64_t tid = l.ids[a];
            l.ids[a] = l.ids[b];
            l.ids[b] = tid;
        }
    }
    size_t nf = n - nh;
    tly_cls_train_opts opts = {.seed = (uint64_t)m->id};
    if (tly_cls_train(l.x, l.y, nf, TLY_CLS_DIM, k, &opts, model, err) < 0)
        goto out;
    double acc = 0;
    double nll = tly_cls_calibrate(model, l.x + nf * TLY_CLS_DIM, l.y + nf, nh, &acc);
    *rep = (fit_report){l.keep < 1 ? available : total, acc, nll, model->temperature, nf, nh};
    if (tly_cls_serialize(model, &blob, err) < 0)
        goto out;
    /* Growth is counted on all accepted labels (the trigger counts those), sampled or not. */
    int64_t counted = l.keep < 1 ? available : total;
    int64_t step = (int64_t)ceil((double)counted * growth);
    tly_classifier_state s = {.model_id = m->id, .trained_on = counted,
                              .next_train_at = counted + (step > MIN_NEW_LABELS ? step : MIN_NEW_LABELS)};
    s.info = json_pack("{s:s,s:I,s:I,s:I,s:f,s:f,s:f}", "status", "trained", "labels", (json_int_t)total, "fit_rows",
                       (json_int_t)nf, "heldout_rows", (json_int_t)nh, "heldout_accuracy", acc, "heldout_nll", nll,
                       "temperature", model->temperature);
    rc = tly_store_classifier_state_put(st, &s, blob.data, blob.len, err);
    json_decref(s.info);
    if (rc == 0 && nh > 0) {
        char version[128];
        version_of(version, sizeof version, counted, model->temperature);
        rc = score_held_out(st, m, p, control, options, model, &l, nf, n, version, err);
    }
    if (rc == 0) {
        rc = 1;
        LOG_INFO("prelabel", "model %lld (" KIND "): fitted on %lld labels (%zu fit, %zu held out), held-out accuracy %.3f, T %.2f",
                 (long long)m->id, (long long)total, nf, nh, acc, model->temperature);
    }
out:
    if (rc != 1)
        tly_cls_model_clear(model);
    labels_free(&l);
    free(per_class);
    tly_buf_free(&blob);
    return rc;
}

/* ---- predicting ------------------------------------------------------------------------------- */

/* 1 if the item's accepted label is one the stored weights were fitted on (with
 * no held-out rows, too few to calibrate on, every label was). */
static int trained_on_item(tly_store *st, const tly_item *it, int none_held_out)
{
    if ((strcmp(it->state, "done") != 0 && strcmp(it->state, "released") != 0) ||
        (held_out(it->id) && !none_held_out))
        return 0;
    tly_result r = {0};
    tly_error ignore;
    if (tly_store_result_get(st, it->id, &r, &ignore) < 0)
        return 0;
    int human = strcmp(r.method, "model") != 0;
    tly_result_clear(&r);
    return human;
}

static void all_pending(tly_prelabel_out *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i].pending = 1;
}

static int predict(const tly_model *m, const tly_project *p, const tly_item *items, size_t n,
                   const tly_prelabel_env *env, tly_prelabel_out *out, char *version, size_t versionsz,
                   tly_error *err)
{
    tly_store *st = env->store;
    const char *control;
    json_t *options;
    if (!choice_control(p, &control, &options))
        return tly_fail(err, TLY_E_UNPROCESSABLE, "template_unsuitable", "the template has no choice control");
    tly_classifier_state s;
    tly_cls_model model = {0};
    tly_buf blob;
    tly_buf_init(&blob, MAX_WEIGHTS);
    int rc = tly_store_classifier_state_get(st, m->id, &s, &blob, err);
    if (rc < 0) {
        tly_buf_free(&blob);
        return -1;
    }
    int have = rc == 0 && s.has_weights && tly_cls_deserialize(blob.data, blob.len, &model, err) == 0 &&
               model.k == (int)json_array_size(options);
    int64_t trained_on = have ? s.trained_on : 0;
    int none_held_out = have && json_integer_value(json_object_get(s.info, "heldout_rows")) == 0;
    tly_buf_free(&blob);
    rc = -1;
    if (!have || s.stale) {
        /* Fit only with enough labels: when never fitted, a count decides first. */
        int64_t labelled = 0, due = s.next_train_at;
        if (!s.stale) {
            int64_t min_train = (int64_t)tly_workflow_number(p->workflow, "prelabel", "min_train");
            if (tly_store_classifier_label_count(st, p->id, &labelled, err) < 0)
                goto out;
            due = due > min_train ? due : min_train;
        }
        if (s.stale || labelled >= due) {
            tly_cls_model fresh = {0};
            fit_report rep = {0};
            int f = fit(st, m, p, control, options, &fresh, &rep, err);
            if (f < 0)
                goto out;
            if (f == 1) {
                tly_cls_model_clear(&model);
                model = fresh;
                have = 1;
                trained_on = rep.trained_on;
                none_held_out = rep.heldout_rows == 0;
                /* The new weights get another look at everything nobody has started
                 * (step 4 above): their old predictions go, and a run is queued for
                 * them (this one's list of items was taken before the fit). */
                if (tly_store_begin(st, err) < 0)
                    goto out;
                if (tly_store_classifier_forget_fresh(st, m->id, p->id, err) < 0 ||
                    tly_store_queue_prelabel(st, p->id, 0, err) < 0 || tly_store_commit(st, err) < 0) {
                    tly_store_rollback(st);
                    goto out;
                }
            }
        }
    }
    if (!have) {   /* still learning: the items wait for a later run */
        all_pending(out, n);
        rc = 0;
        goto out;
    }
    version_of(version, versionsz, trained_on, model.temperature);
    double *prob = malloc((size_t)model.k * sizeof *prob);
    float *x = malloc(TLY_CLS_DIM * sizeof *x);
    if (!prob || !x) {
        free(prob);
        free(x);
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        tly_error ferr;
        if (item_features(st, items[i].id, x, &ferr) < 0) {
            if (ferr.status != TLY_E_UNPROCESSABLE && ferr.status != TLY_E_NOT_FOUND) {
                free(prob);
                free(x);
                *err = ferr;
                goto out;
            }
            snprintf(out[i].error, sizeof out[i].error, "no usable image: %s", ferr.message);
            continue;
        }
        double score;
        int best = tly_cls_classify(&model, x, prob, &score);
        out[i].answer = json_pack("{s:O}", control, json_array_get(options, (size_t)best));
        out[i].score = trained_on_item(st, &items[i], none_held_out) ? -1 : score;
    }
    free(prob);
    free(x);
    rc = 0;
out:
    tly_cls_model_clear(&model);
    tly_classifier_state_clear(&s);
    return rc;
}

const tly_prelabel_backend tly_prelabel_image_classifier = {
    .kind = KIND,
    /* A batch is a few ms of work; after a refit thousands of fresh items are
     * predicted again, and one transaction per 8 of them fell behind the crowd. */
    .batch = TLY_PRELABEL_MAX_BATCH,
    .setup = setup,
    .predict = predict,
    .calibration_item = held_out,
};

/* ---- the trigger -------------------------------------------------------------------------------- */

int tly_prelabel_classifier_on_results(tly_store *st, int64_t project_id, tly_error *err)
{
    tly_model *models = NULL;
    size_t n = 0;
    if (tly_store_model_list(st, project_id, &models, &n, err) < 0)
        return -1;
    int rc = 0;
    int64_t labelled = -1, min_train = -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        tly_model *m = &models[i];
        if (strcmp(m->kind, "builtin") != 0 || strcmp(m->builtin, KIND) != 0 || strcmp(m->state, "active") != 0)
            continue;
        tly_classifier_state s;
        int got = tly_store_classifier_state_get(st, m->id, &s, NULL, err);
        if (got < 0) {
            rc = -1;
            break;
        }
        int stale = got == 0 && s.stale;
        int64_t due = got == 0 ? s.next_train_at : 0;
        tly_classifier_state_clear(&s);
        if (stale)
            continue;   /* its job is queued already */
        if (min_train < 0) {
            tly_project p = {0};
            if (tly_store_project_get(st, project_id, &p, err) < 0) {
                rc = -1;
                break;
            }
            min_train = (int64_t)tly_workflow_number(p.workflow, "prelabel", "min_train");
            tly_project_clear(&p);
            if (tly_store_classifier_label_count(st, project_id, &labelled, err) < 0) {
                rc = -1;
                break;
            }
        }
        if (labelled < (due > min_train ? due : min_train))
            continue;
        if (tly_store_begin(st, err) < 0) {
            rc = -1;
            break;
        }
        if (tly_store_classifier_refresh(st, m->id, project_id, err) < 0 ||
            tly_store_queue_prelabel(st, project_id, 0, err) < 0 || tly_store_commit(st, err) < 0) {
            tly_store_rollback(st);
            rc = -1;
        }
    }
    tly_model_list_free(models, n);
    return rc;
}
