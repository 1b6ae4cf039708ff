/* results.c -- see results.h.
 *
 * Dawid-Skene needs every judgment of the project (a worker's confusion matrix is
 * learned from all their work), so a run reads the project's counting judgments once
 * (streamed, a few dozen bytes kept per choice vote), fits the model per choice
 * control, and then decides the labeled items in chunks. The test questions'
 * judgments join the fit with their gold labels held fixed, which anchors each
 * worker's matrix in known truth. The same scan counts, per worker, whether they
 * ever vary their answer (the "same answer" check).
 *
 * Chunks of CHUNK items per run keep a job bounded; a run that leaves labeled items
 * behind queues the next one.
 */
#include "core/json.h"
#include "qa/results.h"
#include "annotate/prelabel.h"
#include "annotate/project.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/timeutil.h"
#include "qa/aggregate.h"
#include "qa/checks.h"
#include "qa/consensus.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 2000
#define TX_ITEMS 200

/* ---- sorted id maps -------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts and dedups ids in place; returns the new count. */
static size_t unique_ids(int64_t *ids, size_t n)
{
    if (!n)
        return 0;
    qsort(ids, n, sizeof *ids, cmp_i64);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (ids[i] != ids[k - 1])
            ids[k++] = ids[i];
    return k;
}

static long index_of(const int64_t *ids, size_t n, int64_t id)
{
    const int64_t *p = bsearch(&id, ids, n, sizeof *ids, cmp_i64);
    return p ? (long)(p - ids) : -1;
}

/* ---- workers ---------------------------------------------------------------------------- */

typedef struct {
    int64_t *ids;
    double *trust;
    unsigned char *same_answer;   /* flagged by the same-answer check */
    size_t n;
} workers;

static void workers_free(workers *w)
{
    free(w->ids);
    free(w->trust);
    free(w->same_answer);
    memset(w, 0, sizeof *w);
}

static int workers_load(tly_store *st, int64_t project_id, workers *w, tly_error *err)
{
    size_t cap = 0;
    int64_t after = 0;
    for (;;) {
        tly_project_worker *list = NULL;
        size_t n = 0;
        if (tly_store_project_worker_list(st, project_id, after, 1000, &list, &n, err) < 0)
            return -1;
        if (w->n + n > cap) {
            cap = (w->n + n) * 2;
            int64_t *ids = realloc(w->ids, cap * sizeof *ids);
            if (ids)
                w->ids = ids;
            double *t = realloc(w->trust, cap * sizeof *t);
            if (t)
                w->trust = t;
            if (!ids || !t) {
                tly_project_worker_list_free(list, n);
                return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
            }
        }
        for (size_t i = 0; i < n; i++) {
            w->ids[w->n] = list[i].worker_id;
            w->trust[w->n++] = list[i].trust;
        }
        after = n ? list[n - 1].worker_id : after;
        tly_project_worker_list_free(list, n);
        if (n < 1000)
            break;
    }
    w->same_answer = calloc(w->n ? w->n : 1, 1);
    if (!w->same_answer)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    return 0;
}

static double trust_of(const workers *w, int64_t worker_id)
{
    long i = index_of(w->ids, w->n, worker_id);
    return i >= 0 ? w->trust[i] : 0.75;
}

/* ---- choice controls: votes over the project --------------------------------------------- */

typedef struct {
    int64_t item, worker;
    int label;
    int gold;
} raw_vote;

typedef struct {
    const char *name;
    json_t *options;
    int n_labels;
    raw_vote *raw;
    size_t n, cap;
    /* After the fit: */
    int64_t *items;               /* dense index -> item id */
    size_t n_items;
    tly_consensus result;
    double *posterior;            /* n_items x n_labels: P(true label | the votes) */
    double *prior;                /* n_labels: the class prior of the fit */
    int fitted;
} choice_fit;

typedef struct {
    choice_fit *fits;
    size_t n_fits;
    tly_error err;
    int failed;
    /* Per-worker tally for the same-answer check, by raw worker id. */
    int64_t *w_ids;
    int64_t *w_count;
    int *w_first;                 /* first label seen (per fit 0 only), -2 = varied */
    size_t w_n, w_cap;
} scan;

static void tally_worker(scan *sc, int64_t worker, int label)
{
    size_t i;
    for (i = 0; i < sc->w_n && sc->w_ids[i] != worker; i++)
        ;
    /* Linear scan over workers seen: fine for the few hundred of a project, and the
     * list is short-circuited by locality (consecutive judgments share workers). */
    if (i == sc->w_n) {
        if (sc->w_n == sc->w_cap) {
            size_t cap = sc->w_cap ? sc->w_cap * 2 : 64;
            int64_t *ids = realloc(sc->w_ids, cap * sizeof *ids);
            if (ids)
                sc->w_ids = ids;
            int64_t *cnt = realloc(sc->w_count, cap * sizeof *cnt);
            if (cnt)
                sc->w_count = cnt;
            int *first = realloc(sc->w_first, cap * sizeof *first);
            if (first)
                sc->w_first = first;
            if (!ids || !cnt || !first) {
                sc->failed = 1;
                return;
            }
            sc->w_cap = cap;
        }
        sc->w_ids[i] = worker;
        sc->w_count[i] = 0;
        sc->w_first[i] = label;
        sc->w_n++;
    }
    sc->w_count[i]++;
    if (sc->w_first[i] != label)
        sc->w_first[i] = -2;
}

static int scan_judgment(const tly_judgment *j, void *ctx)
{
    scan *sc = ctx;
    for (size_t f = 0; f < sc->n_fits; f++) {
        choice_fit *fit = &sc->fits[f];
        int label = tly_json_string_index(fit->options, json_object_get(j->answer, fit->name));
        if (label < 0)
            continue;
        if (fit->n == fit->cap) {
            size_t cap = fit->cap ? fit->cap * 2 : 1024;
            raw_vote *raw = realloc(fit->raw, cap * sizeof *raw);
            if (!raw) {
                tly_fail(&sc->err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
                sc->failed = 1;
                return -1;
            }
            fit->raw = raw;
            fit->cap = cap;
        }
        fit->raw[fit->n++] = (raw_vote){j->item_id, j->worker_id, label, j->gold};
        if (f == 0 && !j->gold)
            tally_worker(sc, j->worker_id, label);
    }
    return sc->failed ? -1 : 0;
}

static void scan_free(scan *sc)
{
    for (size_t f = 0; f < sc->n_fits; f++) {
        free(sc->fits[f].raw);
        free(sc->fits[f].items);
        free(sc->fits[f].posterior);
        free(sc->fits[f].prior);
        tly_consensus_free(&sc->fits[f].result);
    }
    free(sc->fits);
    free(sc->w_ids);
    free(sc->w_count);
    free(sc->w_first);
    memset(sc, 0, sizeof *sc);
}

/* Gold labels of the test questions for one control: known[dense item] or -1. */
static int known_labels(tly_store *st, int64_t project_id, choice_fit *fit, int *known, tly_error *err)
{
    for (size_t i = 0; i < fit->n_items; i++)
        known[i] = -1;
    int64_t after = 0;
    for (;;) {
        tly_item *list = NULL;
        size_t n = 0;
        if (tly_store_item_list(st, project_id, "gold", after, 500, &list, &n, err) < 0)
            return -1;
        for (size_t i = 0; i < n; i++) {
            long d = index_of(fit->items, fit->n_items, list[i].id);
            if (d >= 0 && list[i].gold)
                known[d] = tly_json_string_index(fit->options, json_object_get(list[i].gold, fit->name));
        }
        after = n ? list[n - 1].id : after;
        tly_item_list_free(list, n);
        if (n < 500)
            return 0;
    }
}

static int fit_dawid_skene(tly_store *st, int64_t project_id, choice_fit *fit, const workers *w, tly_error *err)
{
    fit->items = malloc((fit->n ? fit->n : 1) * sizeof *fit->items);
    int64_t *wids = malloc((fit->n ? fit->n : 1) * sizeof *wids);
    tly_vote *votes = malloc((fit->n ? fit->n : 1) * sizeof *votes);
    int *known = NULL;
    int rc = -1;
    if (!fit->items || !wids || !votes) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    for (size_t v = 0; v < fit->n; v++) {
        fit->items[v] = fit->raw[v].item;
        wids[v] = fit->raw[v].worker;
    }
    fit->n_items = unique_ids(fit->items, fit->n);
    size_t n_workers = unique_ids(wids, fit->n);
    (void)w;
    for (size_t v = 0; v < fit->n; v++)
        votes[v] = (tly_vote){(int)index_of(fit->items, fit->n_items, fit->raw[v].item),
                              (int)index_of(wids, n_workers, fit->raw[v].worker), fit->raw[v].label};
    if (!(known = malloc((fit->n_items ? fit->n_items : 1) * sizeof *known))) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    if (known_labels(st, project_id, fit, known, err) < 0)
        goto out;
    fit->posterior = malloc((fit->n_items ? fit->n_items : 1) * (size_t)fit->n_labels * sizeof *fit->posterior);
    fit->prior = malloc((size_t)fit->n_labels * sizeof *fit->prior);
    if (!fit->posterior || !fit->prior) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    /* worker_prior: a worker seen a few times counts as an average one (tools/bench/aggregate: long tail). */
    tly_ds_params params = {.known = known, .worker_prior = fit->n_labels, .posterior = fit->posterior,
                            .class_prior = fit->prior};
    if (tly_consensus_dawid_skene_ex(votes, fit->n, (int)fit->n_items, (int)n_workers, fit->n_labels, &params,
                                     &fit->result, err) < 0)
        goto out;
    fit->fitted = 1;
    rc = 0;
out:
    free(wids);
    free(votes);
    free(known);
    return rc;
}

/* ---- deciding items -------------------------------------------------------------------------- */

typedef struct {
    tly_project p;
    tly_compare_opts opts;
    tly_check_rules checks;
    const char *method;           /* consensus.choice */
    int overlap, max_overlap;
    double min_confidence, sample_rate;
    workers w;
    scan sc;
    /* outcome counters */
    int64_t done, review, more;
    int model_vote;               /* prelabel.model_vote */
    tly_model vote_model;         /* the last voting model read (its calibration sample) */
} run;

/* A reproducible draw in [0,1) per item, keyed by the project's secret: which items
 * the review sample takes cannot be guessed from ids. */
static double review_draw(const tly_project *p, int64_t item_id)
{
    char msg[32], mac[65];
    int n = snprintf(msg, sizeof msg, "review:%lld", (long long)item_id);
    tly_hmac_sha256_hex(p->pseudonym_key, strlen(p->pseudonym_key), msg, (size_t)n, mac);
    unsigned long long x = strtoull((char[]){mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], mac[6], mac[7], mac[8],
                                             mac[9], mac[10], mac[11], mac[12], 0},
                                    NULL, 16);
    return (double)x / 4503599627370496.0;   /* 13 hex digits = 52 bits */
}

/* The most a model's score counts for in model_vote: a calibrated score of 0.999
 * would outweigh three agreeing people, whose Dawid-Skene posterior is itself
 * overconfident (in tools/bench/prelabel-images, results at 0.99+ were 96% right);
 * capped, the model decides where people split, not against a clear majority. */
#define MODEL_VOTE_CAP 0.95

/* The model's prediction (option k of the fit, calibrated score) as one more piece of
 * evidence, independent of the votes given the true label: P(k | votes, model) is
 * proportional to P(k | votes) q(k) / prior(k), with q the model's distribution (its
 * score on k, the rest spread evenly). 1 with the new label and confidence, 0 when the
 * item has no posterior. */
static int model_vote(const choice_fit *fit, long d, int k, double score, int *label, double *confidence)
{
    int n = fit->n_labels;
    const double *post = fit->posterior + (size_t)d * (size_t)n;
    double s = fmin(fmax(score, 1.0 - MODEL_VOTE_CAP), MODEL_VOTE_CAP);
    double sum = 0, best = -1;
    int arg = -1;
    for (int c = 0; c < n && n > 1; c++) {
        double q = c == k ? s : (1 - s) / (n - 1);
        double w = post[c] * q / fmax(fit->prior[c], 1e-9);
        sum += w;
        if (w > best) {
            best = w;
            arg = c;
        }
    }
    if (sum <= 0 || arg < 0)
        return 0;
    *label = arg;
    *confidence = best / sum;
    return 1;
}

/* Replaces the trust-weighted choice values by the Dawid-Skene ones for the item; with
 * vote (the model's best prediction, prelabel.model_vote), by Dawid-Skene with the
 * model's answer as evidence (method "model_assisted"). */
static void apply_dawid_skene(run *r, int64_t item_id, json_t *answer, json_t *detail, const tly_prediction *vote)
{
    for (size_t f = 0; f < r->sc.n_fits; f++) {
        choice_fit *fit = &r->sc.fits[f];
        long d = fit->fitted ? index_of(fit->items, fit->n_items, item_id) : -1;
        if (d < 0 || fit->result.label[d] < 0)
            continue;
        int label = fit->result.label[d];
        double confidence = fit->result.confidence[d];
        const char *method = "dawid_skene";
        int k = vote && vote->answer && vote->score >= 0
                    ? tly_json_string_index(fit->options, json_object_get(vote->answer, fit->name))
                    : -1;
        if (k >= 0 && model_vote(fit, d, k, vote->score, &label, &confidence))
            method = "model_assisted";
        json_object_set(answer, fit->name, json_array_get(fit->options, (size_t)label));
        json_object_set_new(detail, fit->name, json_pack("{s:s,s:f}", "method", method, "confidence", confidence));
    }
}

/* The item's best prediction when prelabel.model_vote asks for it and the item is not
 * in its model's calibration sample (whose results must stay independent of the
 * model), into *out (cleared by the caller); 0 = none, 1 = one, -1 = error. */
static int vote_of(tly_store *st, run *r, int64_t item_id, tly_prediction *out, tly_error *err)
{
    if (!r->model_vote)
        return 0;
    tly_prediction *list = NULL;
    size_t n = 0;
    if (tly_store_prediction_list(st, item_id, &list, &n, err) < 0)
        return -1;
    int rc = 0;
    if (n > 0 && list[0].answer && list[0].score >= 0) {
        /* One model read per run, not per item: a project has one or two models. */
        if (r->vote_model.id != list[0].model_id) {
            tly_model_clear(&r->vote_model);
            if (tly_store_model_get(st, list[0].model_id, &r->vote_model, err) < 0)
                rc = -1;
        }
        if (rc == 0 && !tly_prelabel_calibration_item(&r->p, &r->vote_model, item_id)) {
            *out = list[0];
            memset(&list[0], 0, sizeof list[0]);
            rc = 1;
        }
    }
    tly_prediction_list_free(list, n);
    return rc;
}

static double min_confidence_of(json_t *detail, const char **method)
{
    double c = 1.0;
    const char *m = NULL;
    int mixed = 0;
    const char *key;
    json_t *v;
    json_object_foreach(detail, key, v) {
        double x = json_number_value(json_object_get(v, "confidence"));
        if (x < c)
            c = x;
        const char *vm = json_string_value(json_object_get(v, "method"));
        if (vm && m && strcmp(vm, m) != 0)
            mixed = 1;
        if (vm && !m)
            m = vm;
    }
    *method = mixed ? "mixed" : m ? m : "none";
    return c;
}

static int event(tly_store *st, const tly_project *p, int64_t item_id, const char *kind, json_t *detail,
                 tly_error *err)
{
    int rc = tly_store_item_event(st, item_id, p->id, 0, kind, detail, err);
    json_decref(detail);
    return rc;
}

/* The confirm step of confidence routing (annotate/prelabel.c route): an item routed
 * to one worker's check of a prediction. It is recognised by its history: the last
 * event is to_confirm (any decision since would have added one), whose need / overlap
 * give the item's extra (need - overlap, < 0). 0 = not such an
 * item; 1 = every judgment equals the best prediction on the controls it answered
 * (*score = its score); 2 = someone disagreed; -1 = error. */
static int confirm_step(tly_store *st, int64_t item_id, const tly_judgment *js, size_t n, int64_t *extra,
                        double *score, tly_error *err)
{
    json_t *events = NULL;
    if (n == 0)
        return 0;
    if (tly_store_item_events(st, item_id, 0, 1000, &events, err) < 0)
        return -1;
    json_t *list = json_object_get(events, "items");
    json_t *last = json_array_get(list, json_array_size(list) - 1);
    json_t *detail = json_object_get(last, "detail");
    const char *kind = json_string_value(json_object_get(last, "kind"));
    int marked = kind && strcmp(kind, "to_confirm") == 0;
    *extra = json_integer_value(json_object_get(detail, "need")) - json_integer_value(json_object_get(detail, "overlap"));
    json_decref(events);
    if (!marked || *extra >= 0)
        return 0;
    tly_prediction *preds = NULL;
    size_t np = 0;
    if (tly_store_prediction_list(st, item_id, &preds, &np, err) < 0)
        return -1;
    const tly_prediction *best = NULL;
    for (size_t k = 0; k < np && !best; k++)   /* best score first */
        if (preds[k].answer && json_object_size(preds[k].answer) > 0)
            best = &preds[k];
    int agree = best != NULL;
    for (size_t j = 0; j < n && agree; j++) {
        const char *key;
        json_t *v;
        json_object_foreach(best->answer, key, v)
            agree &= json_equal(v, json_object_get(js[j].answer, key));
    }
    *score = best ? best->score : 0;
    tly_prediction_list_free(preds, np);
    return agree ? 1 : 2;
}

/* Decides one labeled item inside the caller's transaction. 0, or -1 on error; an
 * item that changed state meanwhile is skipped (0). */
static int decide_item(tly_store *st, run *r, int64_t item_id, tly_error *err)
{
    tly_judgment *js = NULL;
    size_t n = 0;
    json_t *answer = NULL, *detail = NULL, *flags = json_array();
    json_t **answers = NULL;
    double *weights = NULL;
    tly_prediction vote = {0};
    int rc = -1;
    if (tly_store_item_judgments(st, item_id, &js, &n, err) < 0)
        goto out;
    answers = malloc((n ? n : 1) * sizeof *answers);
    weights = malloc((n ? n : 1) * sizeof *weights);
    if (!answers || !weights) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    int same_answer = 0;
    for (size_t i = 0; i < n; i++) {
        answers[i] = js[i].answer;
        weights[i] = strcmp(r->method, "majority") == 0 ? 1.0 : trust_of(&r->w, js[i].worker_id);
        long wi = index_of(r->w.ids, r->w.n, js[i].worker_id);
        same_answer |= wi >= 0 && r->w.same_answer[wi];
    }
    double confidence = 0;
    const char *method = NULL;
    if (tly_aggregate_answer(r->p.template_json, answers, weights, n, &r->opts, &answer, &confidence, &detail,
                             &method, err) < 0)
        goto out;
    int64_t extra = 0;
    double score = 0;
    int confirm = confirm_step(st, item_id, js, n, &extra, &score, err);
    if (confirm < 0)
        goto out;
    int voted = 0;
    if (strcmp(r->method, "dawid_skene") == 0) {
        /* In a confirm step whose people agree with the model, the vote is what the
         * step weighs (below); a rejected step is decided by people. */
        voted = confirm != 2 ? vote_of(st, r, item_id, &vote, err) : 0;
        if (voted < 0)
            goto out;
        apply_dawid_skene(r, item_id, answer, detail, voted ? &vote : NULL);
    }
    confidence = min_confidence_of(detail, &method);
    /* Any control decided with the model's vote makes it a model-assisted result as a
     * whole: such results are not calibration pairs (store_models.c), "mixed" ones are. */
    const char *ckey;
    json_t *cval;
    json_object_foreach(detail, ckey, cval) {
        const char *m = json_string_value(json_object_get(cval, "method"));
        if (m && strcmp(m, "model_assisted") == 0)
            method = "model_assisted";
    }
    tly_checks_result(r->p.template_json, answer, js, n, &r->checks, flags);
    if (same_answer)
        json_array_append_new(flags, json_string("same_answer_worker"));

    tly_error move_err;
    if (confirm == 1) {
        /* Model and person agree: wrong only if both are, taken as independent. Below
         * min_confidence even so (a weak worker, a low score), people label it. The
         * result is a human one (method "confirmed", the worker's answer): it counts
         * as an accepted label for the classifier and as a calibration pair, like any
         * crowd result. */
        /* With prelabel.model_vote, the vote's posterior: the formula below is a
         * bound that ignores the class prior, and sent one in four agreeing items of
         * tools/bench/prelabel-images to a second check. */
        double both = voted ? confidence : 1 - (1 - score) * (1 - confidence);
        if (both + 1e-9 >= r->min_confidence) {
            confidence = both;
            method = "confirmed";
        } else if (extra < -1) {
            /* Agreed, not sure enough yet (one weak worker): one more check, still
             * short of the normal overlap (n judgments now, n - extra the overlap). */
            if (tly_store_item_move(st, item_id, "labeled", "labeling", 1, &move_err) < 0) {
                rc = move_err.status == TLY_E_CONFLICT ? 0 : (*err = move_err, -1);
                goto out;
            }
            r->more++;
            rc = event(st, &r->p, item_id, "to_confirm",
                       json_pack("{s:I,s:I,s:f,s:f}", "need", (json_int_t)n + 1, "overlap",
                                 (json_int_t)((int64_t)n - extra), "score", score, "confidence", both),
                       err);
            goto out;
        } else {
            confirm = 2;
        }
    }
    if (confirm == 2) {
        /* Rejected: normal labeling from here (the item's overlap restored). */
        if (tly_store_item_move(st, item_id, "labeled", "labeling", (int)-extra, &move_err) < 0) {
            rc = move_err.status == TLY_E_CONFLICT ? 0 : (*err = move_err, -1);
            goto out;
        }
        r->more++;
        rc = event(st, &r->p, item_id, "verify_rejected",
                   json_pack("{s:f,s:f,s:I}", "score", score, "confidence", confidence, "judgments", (json_int_t)n), err);
        goto out;
    }
    if (confirm == 0 && confidence + 1e-9 < r->min_confidence && (int64_t)n < r->max_overlap) {
        /* Dynamic overlap: one more judgment, then aggregate again. */
        if (tly_store_item_move(st, item_id, "labeled", "labeling", 1, &move_err) < 0) {
            rc = move_err.status == TLY_E_CONFLICT ? 0 : (*err = move_err, -1);
            goto out;
        }
        r->more++;
        rc = event(st, &r->p, item_id, "more_judgments",
                   json_pack("{s:f,s:I,s:f}", "confidence", confidence, "judgments", (json_int_t)n, "min_confidence",
                             r->min_confidence),
                   err);
        goto out;
    }
    const char *reason = json_array_size(flags)                        ? "flagged"
                         : confidence + 1e-9 < r->min_confidence        ? "low_confidence"
                         : review_draw(&r->p, item_id) < r->sample_rate ? "sampled"
                                                                        : NULL;
    if (tly_store_item_move(st, item_id, "labeled", reason ? "review" : "done", 0, &move_err) < 0) {
        rc = move_err.status == TLY_E_CONFLICT ? 0 : (*err = move_err, -1);
        goto out;
    }
    tly_result res = {.item_id = item_id, .project_id = r->p.id, .answer = answer, .confidence = confidence,
                      .detail = detail, .judgments = (int64_t)n, .flags = flags};
    snprintf(res.method, sizeof res.method, "%s", method);
    if (tly_store_result_put(st, &res, err) < 0)
        goto out;
    json_t *ev = json_pack("{s:f,s:s,s:I}", "confidence", confidence, "method", method, "judgments", (json_int_t)n);
    if (reason) {
        json_object_set_new(ev, "reason", json_string(reason));
        if (json_array_size(flags))
            json_object_set(ev, "flags", flags);
        r->review++;
    } else {
        r->done++;
    }
    rc = event(st, &r->p, item_id, reason ? "to_review" : "done", ev, err);
out:
    tly_judgment_list_free(js, n);
    tly_prediction_clear(&vote);
    free(answers);
    free(weights);
    json_decref(answer);
    json_decref(detail);
    json_decref(flags);
    return rc;
}

static int prepare(tly_store *st, int64_t project_id, run *r, tly_error *err)
{
    if (tly_store_project_get(st, project_id, &r->p, err) < 0)
        return -1;
    json_t *wf = r->p.workflow;
    if (tly_compare_opts_from_json(json_object_get(wf, "gold"), &r->opts, NULL) < 0)
        tly_compare_opts_default(&r->opts);
    tly_check_rules_of(wf, &r->checks);
    r->method = tly_workflow_string(wf, "consensus", "choice");
    r->overlap = (int)tly_workflow_number(wf, NULL, "overlap");
    r->max_overlap = (int)tly_workflow_number(wf, NULL, "max_overlap");
    r->min_confidence = tly_workflow_number(wf, NULL, "min_confidence");
    r->sample_rate = tly_workflow_number(wf, "review", "sample_rate");
    r->model_vote = tly_workflow_number(wf, "prelabel", "model_vote") != 0;
    if (workers_load(st, project_id, &r->w, err) < 0)
        return -1;
    /* Choice controls: one fit each. */
    json_t *controls = json_object_get(r->p.template_json, "controls");
    r->sc.fits = calloc(json_array_size(controls) + 1, sizeof *r->sc.fits);
    if (!r->sc.fits)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
    size_t i;
    json_t *def;
    json_array_foreach(controls, i, def) {
        const char *type = json_string_value(json_object_get(def, "type"));
        if (type && strcmp(type, "choice") == 0) {
            choice_fit *fit = &r->sc.fits[r->sc.n_fits++];
            fit->name = json_string_value(json_object_get(def, "name"));
            fit->options = json_object_get(def, "options");
            fit->n_labels = (int)json_array_size(fit->options);
        }
    }
    int want_scan = r->sc.n_fits && (strcmp(r->method, "dawid_skene") == 0 || r->checks.same_answer_min > 0);
    if (want_scan && tly_store_judgment_each(st, project_id, scan_judgment, &r->sc, err) < 0) {
        if (r->sc.failed && err)
            *err = r->sc.err;
        return -1;
    }
    if (strcmp(r->method, "dawid_skene") == 0)
        for (size_t f = 0; f < r->sc.n_fits; f++)
            if (r->sc.fits[f].n && fit_dawid_skene(st, project_id, &r->sc.fits[f], &r->w, err) < 0)
                return -1;
    /* Same-answer check: a worker who never varied over enough choice judgments. */
    for (size_t k = 0; k < r->sc.w_n && r->checks.same_answer_min > 0 && r->sc.n_fits &&
                       r->sc.fits[0].n_labels > 1;
         k++) {
        if (r->sc.w_count[k] < r->checks.same_answer_min || r->sc.w_first[k] < 0)
            continue;
        long wi = index_of(r->w.ids, r->w.n, r->sc.w_ids[k]);
        if (wi < 0 || r->w.same_answer[wi])
            continue;
        r->w.same_answer[wi] = 1;
        tly_project_worker pw = {0};
        if (tly_store_project_worker_get(st, project_id, r->sc.w_ids[k], &pw, err) < 0)
            return -1;
        if (!json_is_array(pw.flags)) {
            json_decref(pw.flags);
            pw.flags = json_array();
        }
        int has = 0;
        size_t fi;
        json_t *fv;
        json_array_foreach(pw.flags, fi, fv)
            has |= strcmp(json_string_value(fv), "same_answer") == 0;
        int rc = 0;
        if (!has) {
            json_array_append_new(pw.flags, json_string("same_answer"));
            rc = tly_store_project_worker_update(st, &pw, err);
        }
        tly_project_worker_clear(&pw);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int tly_quality_aggregate(tly_store *st, int64_t project_id, tly_error *err)
{
    int64_t *ids = NULL;
    size_t n = 0;
    if (tly_store_item_ids(st, project_id, "labeled", 0, CHUNK, &ids, &n, err) < 0)
        return -1;
    if (n == 0)
        return 0;
    run r;
    memset(&r, 0, sizeof r);
    int rc = -1;
    if (prepare(st, project_id, &r, err) < 0)
        goto out;
    for (size_t i = 0; i < n; i += TX_ITEMS) {
        if (tly_store_begin(st, err) < 0)
            goto out;
        for (size_t k = i; k < n && k < i + TX_ITEMS; k++)
            if (decide_item(st, &r, ids[k], err) < 0) {
                tly_store_rollback(st);
                goto out;
            }
        if (tly_store_commit(st, err) < 0)
            goto out;
    }
    LOG_INFO("quality", "project %lld: aggregated %zu items (%lld done, %lld to review, %lld need more judgments)",
             (long long)project_id, n, (long long)r.done, (long long)r.review, (long long)r.more);
    tly_counter_add(tly_metrics_counter("tally_results_total", "Items aggregated into a result", ""),
                    (uint64_t)(r.done + r.review));
    rc = 0;
    if (r.done > 0) {
        /* New accepted labels: an image classifier of the project may learn from them.
         * Its trouble is not the aggregation's. */
        tly_error cerr;
        if (tly_prelabel_classifier_on_results(st, project_id, &cerr) < 0)
            LOG_WARN("quality", "project %lld: image classifier trigger: %s", (long long)project_id, cerr.message);
    }
    if (n == CHUNK)
        rc = tly_store_queue_aggregation(st, project_id, err);
out:
    free(ids);
    tly_project_clear(&r.p);
    tly_model_clear(&r.vote_model);
    workers_free(&r.w);
    scan_free(&r.sc);
    return rc;
}

json_t *tly_result_json(const tly_result *r)
{
    char at[32];
    tly_format_rfc3339(r->updated_at, at, sizeof at);
    return json_pack("{s:I,s:O,s:f,s:s,s:I,s:s,s:O,s:O,s:s}", "item_id", (json_int_t)r->item_id, "answer",
                     r->answer ? r->answer : json_null(), "confidence", r->confidence, "method", r->method,
                     "judgments", (json_int_t)r->judgments, "state", r->item_state, "flags",
                     r->flags ? r->flags : json_null(), "detail", r->detail ? r->detail : json_null(), "updated_at",
                     at);
}
