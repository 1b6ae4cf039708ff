/* prelabel.h -- pre-labeling: models that propose answers for humans to verify.
 *
 * A model is attached to a project (POST /v1/projects/{id}/models). Its backend is a
 * table of functions (like the store's SQL drivers): today the remote backend speaks
 * the Label Studio ML-backend protocol over HTTP (prelabel_remote.c), so existing
 * detectors, segmenters and speech recognisers plug in unchanged; built-in models
 * run in-process, reading media straight from the blob store (the table `builtins`
 * in prelabel.c lists them; one file per model).
 *
 * Predictions are made in the background by the job "prelabel" (one per model,
 * queued when new items arrive or on an explicit run): items are sent in batches;
 * answers come back in the template's shape (annotate/labelstudio.h translates),
 * are validated like any answer, and are stored as predictions -- never as
 * judgments. A failure is recorded on each item of the batch (GET
 * /v1/items/{id}/predictions shows it) and counted by the model's circuit breaker:
 * after TLY_PRELABEL_TRIP consecutive failures the model is not called for
 * TLY_PRELABEL_OPEN_MS, and its job comes back then. The calls run on job threads
 * with timeouts, so a slow or dead model never holds up ingest or dispatch beyond
 * one bounded call. Called by server/ (handlers, job runner).
 */
#ifndef TALLY_ANNOTATE_PRELABEL_H
#define TALLY_ANNOTATE_PRELABEL_H

#include "core/error.h"
#include "storage/blob.h"
#include "storage/store.h"

#include <jansson.h>

#define TLY_JOB_PRELABEL "prelabel"
#define TLY_PRELABEL_BATCH 8
/* A backend may ask for bigger batches (tly_prelabel_backend.batch), up to this. */
#define TLY_PRELABEL_MAX_BATCH 64
#define TLY_PRELABEL_TRIP 3
#define TLY_PRELABEL_OPEN_MS 30000

/* What a backend returns per item: an answer (new reference) and score, or an error. */
typedef struct {
    json_t *answer;
    double score;             /* [0,1], or -1 unknown */
    char error[200];          /* "" when answer is set */
    int pending;              /* neither: not ready for this item yet, ask again later */
} tly_prelabel_out;

/* What a backend may use: the store (a learning model reads the project's results),
 * the blob store (built-in models read media bytes), and this server's public base
 * URL ("http://host:port", remote models fetch media from it). */
typedef struct {
    tly_store *store;
    tly_blob_store *blobs;
    const char *media_base;
} tly_prelabel_env;

/* A backend may leave an item without answer or error (out[i].pending = 1): it is
 * not ready for it yet (a classifier still learning); the item stays pending and is
 * offered again on the model's next run. */
typedef struct {
    const char *kind;         /* "remote", or the built-in model's name ("vad", ...) */
    int batch;                /* items per predict call; 0 = TLY_PRELABEL_BATCH (at most _MAX_BATCH) */
    /* Checks the model can serve the project (reachable, accepts the label config,
     * fits the template); may fill m->version. */
    int (*setup)(tly_model *m, const tly_project *p, const tly_prelabel_env *env, tly_error *err);
    /* Predicts items[0..n): out[i] per item. -1 (err) when the whole call failed. */
    int (*predict)(const tly_model *m, const tly_project *p, const tly_item *items, size_t n,
                   const tly_prelabel_env *env, tly_prelabel_out *out, char *version, size_t versionsz,
                   tly_error *err);
    /* Optional: 1 if people's labels on this item calibrate the model (a learning
     * model's held-out share), so that prelabel.uncertain_first leaves it in arrival
     * order. NULL: the project's verification sample (prelabel.verify_rate) is. */
    int (*calibration_item)(int64_t item_id);
} tly_prelabel_backend;

/* The auto-accept threshold for a target accuracy, from calibration pairs: score[i]
 * of a prediction and right[i] whether humans' result equals it, n pairs, at least
 * `need` of them (else 2: never). The lowest score down to which every level of the
 * model's answers is estimated to be `target` accurate (the crowd's own errors
 * allowed for, with statistical bounds; prelabel.c says how). Pure: no store. */
double tly_prelabel_threshold(const double *score, const unsigned char *right, size_t n, double target,
                              int64_t need);

/* Whether people's labels on item_id calibrate model m (its backend's calibration
 * sample, else the project's verify_rate draw): such items are labeled without the
 * model's help, so their results stay an independent check of it. 1 or 0. */
int tly_prelabel_calibration_item(const tly_project *p, const tly_model *m, int64_t item_id);

extern const tly_prelabel_backend tly_prelabel_remote;
/* Built-in "vad" (prelabel_vad.c): speech / non-speech audio_segments; built-in "asr"
 * (prelabel_asr.c): PocketSphinx transcription. Their internals: audio_models.h. */
extern const tly_prelabel_backend tly_prelabel_vad;
extern const tly_prelabel_backend tly_prelabel_asr;
/* Built-in "image-classifier" (prelabel_classifier.c): learns a project's choice
 * control from its accepted labels. */
extern const tly_prelabel_backend tly_prelabel_image_classifier;
/* Called by the aggregation job after it stored results: when an image classifier of
 * the project has enough new accepted labels to fit (again), its fresh predictions are
 * dropped and its job queued. Cheap otherwise (a model list and a count). */
int tly_prelabel_classifier_on_results(tly_store *st, int64_t project_id, tly_error *err);

/* POST /v1/projects/{id}/models: {"name","kind":"remote","url"} or
 * {"name","kind":"builtin","model"}. Checks the backend (setup) before saving. */
int tly_prelabel_model_create(const tly_prelabel_env *env, int64_t project_id, json_t *body, tly_model *out,
                              tly_error *err);
/* POST /v1/projects/{id}/models/{m}/run: pre-label every item again. */
int tly_prelabel_model_run(tly_store *st, int64_t project_id, int64_t model_id, tly_error *err);
/* The job: pre-labels the model's pending items, a batch at a time, for a bounded
 * time; queues itself again when work is left. media_base: "http://host:port". */
int tly_prelabel_run_job(const tly_prelabel_env *env, int64_t model_id, tly_error *err);

json_t *tly_model_json(const tly_model *m);
json_t *tly_prediction_json(const tly_prediction *p);
/* The best prediction of an item as a worker's task shows it, or NULL. */
json_t *tly_prelabel_for_task(tly_store *st, int64_t item_id);

#endif
