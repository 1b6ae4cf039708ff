/* prelabel.c -- see prelabel.h: models, the prelabel job, and the API's shapes. */
#include "annotate/prelabel.h"
#include "annotate/project.h"
#include "annotate/template.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/timeutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A job runs at most this long, then queues its continuation: a big backlog never
 * holds a job thread for minutes. */
#define JOB_BUDGET_MS 20000
/* How long a job reuses the auto-accept threshold it derived. */
#define THRESHOLD_MS 2000

/* The built-in models, by name: one file each. */
static const tly_prelabel_backend *const builtins[] = {
    &tly_prelabel_image_classifier,
    &tly_prelabel_vad,
    &tly_prelabel_asr,
    NULL,
};

static const tly_prelabel_backend *builtin_named(const char *name)
{
    for (size_t i = 0; builtins[i]; i++)
        if (strcmp(builtins[i]->kind, name) == 0)
            return builtins[i];
    return NULL;
}

static const tly_prelabel_backend *backend_of(const tly_model *m)
{
    if (strcmp(m->kind, "remote") == 0)
        return &tly_prelabel_remote;
    if (strcmp(m->kind, "builtin") == 0)
        return builtin_named(m->builtin);
    return NULL;
}

int tly_prelabel_model_create(const tly_prelabel_env *env, int64_t project_id, json_t *body, tly_model *out,
                              tly_error *err)
{
    tly_store *st = env->store;
    static const char *const keys[] = {"name", "kind", "url", "model", NULL};
    const char *name = NULL, *kind = NULL, *url = NULL, *builtin = NULL;
    memset(out, 0, sizeof *out);
    if (tly_json_only_keys(body, "model", keys, err) < 0 || tly_json_get_string(body, "name", 1, &name, err) < 0 ||
        tly_json_get_string(body, "kind", 1, &kind, err) < 0 || tly_json_get_string(body, "url", 0, &url, err) < 0 ||
        tly_json_get_string(body, "model", 0, &builtin, err) < 0)
        return -1;
    if (!*name || strlen(name) >= sizeof out->name)
        return tly_fail(err, TLY_E_INVALID, "invalid_name", "name must be 1 to %zu bytes", sizeof out->name - 1);
    if (strcmp(kind, "builtin") == 0) {
        if (!builtin)
            return tly_fail(err, TLY_E_INVALID, "missing_field", "a built-in model needs 'model'");
        if (!builtin_named(builtin)) {
            char names[200] = "";
            for (size_t i = 0; builtins[i]; i++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", builtins[i]->kind);
            return tly_fail(err, TLY_E_INVALID, "invalid_model", "unknown built-in model '%s' (this server has: %s)",
                            builtin, names[0] ? names : "none");
        }
        url = NULL;
    } else if (strcmp(kind, "remote") != 0) {
        return tly_fail(err, TLY_E_INVALID, "invalid_kind", "kind must be remote or builtin");
    } else if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) || strlen(url) > 2000) {
        return tly_fail(err, TLY_E_INVALID, "invalid_url", "a remote model needs an http(s) 'url'");
    }
    tly_project p = {0};
    if (tly_store_project_get(st, project_id, &p, err) < 0)
        return -1;
    out->project_id = project_id;
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->kind, sizeof out->kind, "%s", kind);
    if (builtin && !url)
        snprintf(out->builtin, sizeof out->builtin, "%s", builtin);
    out->url = url ? strdup(url) : NULL;
    int rc = -1;
    /* Items that exist now are pre-labeled on an explicit run only. */
    int64_t last = 0;
    if (tly_store_item_max_id(st, project_id, &last, err) < 0)
        goto out;
    out->since_item = last;
    if (backend_of(out)->setup(out, &p, env, err) < 0) {
        /* The model's trouble is the request's problem, not this server's. */
        if (err && err->status == TLY_E_IO)
            err->status = TLY_E_UNPROCESSABLE;
        goto out;
    }
    if (tly_store_model_create(st, out, err) < 0)
        goto out;
    rc = 0;
out:
    tly_project_clear(&p);
    if (rc < 0)
        tly_model_clear(out);
    return rc;
}

int tly_prelabel_model_run(tly_store *st, int64_t project_id, int64_t model_id, tly_error *err)
{
    tly_model m = {0};
    if (tly_store_model_get(st, model_id, &m, err) < 0)
        return -1;
    int64_t pid = m.project_id;
    tly_model_clear(&m);
    if (pid != project_id)
        return tly_fail(err, TLY_E_NOT_FOUND, "not_found", "model %lld not found", (long long)model_id);
    if (tly_store_begin(st, err) < 0)
        return -1;
    if (tly_store_model_rerun(st, model_id, err) < 0 || tly_store_queue_prelabel(st, project_id, 0, err) < 0 ||
        tly_store_commit(st, err) < 0) {
        tly_store_rollback(st);
        return -1;
    }
    return 0;
}

/* ---- confidence routing ----------------------------------------------------------------- */

typedef struct {
    double *score;
    unsigned char *right;
    size_t n, cap;
} pairs;

/* Right when every control the model answered has the humans' value. Exact
 * comparison: calibration is meant for classification-like controls. */
static int collect_pair(double score, json_t *predicted, json_t *result, void *arg)
{
    pairs *pr = arg;
    if (pr->n == pr->cap) {
        size_t cap = pr->cap ? pr->cap * 2 : 256;
        double *sc = realloc(pr->score, cap * sizeof *sc);
        if (sc)
            pr->score = sc;
        unsigned char *rt = realloc(pr->right, cap);
        if (rt)
            pr->right = rt;
        if (!sc || !rt)
            return -1;
        pr->cap = cap;
    }
    int right = json_object_size(predicted) > 0;
    const char *key;
    json_t *v;
    json_object_foreach(predicted, key, v)
        right &= json_equal(v, json_object_get(result, key));
    pr->score[pr->n] = score;
    pr->right[pr->n++] = (unsigned char)right;
    return 0;
}

typedef struct {
    double score;
    unsigned char right;
} scored_pair;

static int by_score_desc(const void *a, const void *b)
{
    double x = ((const scored_pair *)a)->score, y = ((const scored_pair *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Scores at or above this are where the model says it is nearly always right; the
 * crowd's accuracy is estimated from its agreement with the model there. */
#define SURE_SCORE 0.95

/* One-sided 99% lower confidence bound of a proportion (Wilson score interval).
 * 99%, not 95%: a running prelabel job derives its threshold again every
 * THRESHOLD_MS and after every refit, so over a project a 95% bound is passed by luck
 * somewhere -- and a threshold, once passed, accepts thousands of fresh items for
 * good. In the benchmark, a model with 70% held-out accuracy had its top 55 pairs
 * all agree with the crowd once, and auto-accepted 4,546 items that were 94% right. */
static double wilson_lower(double right, double n)
{
    const double z = 2.326;
    if (n <= 0)
        return 0;
    double p = right / n, z2 = z * z / n;
    return (p + z2 / 2 - z * sqrt(p * (1 - p) / n + z2 / (4 * n))) / (1 + z2);
}

/* The auto-accept threshold derived for prelabel.target_accuracy (prelabel.h) from the
 * calibration pairs (the model's score and whether its answer equals the humans'
 * result on items humans finished) of the model version being routed (older
 * versions' scores mean other things; the built-in classifier scores its held-out
 * labelled items again after every fit, so a new version has pairs at once), from
 * min_calibration of them; 2 (never) until there are enough.
 *
 * The pairs measure agreement with the crowd, not accuracy: the crowd's results are
 * themselves wrong a few percent of the time, so a perfect model agrees only as often
 * as the crowd is right (~0.94-0.96 in tools/bench/prelabel-images), and asking for
 * agreement >= 0.95 accepted only scores above ~0.99 -- items the model gets right
 * 98-99% of the time, better than the crowd would. Instead:
 *   - c, the crowd's accuracy, is estimated as the agreement on the pairs the model
 *     is surest of (score >= SURE_SCORE, once min_calibration / 2 of them exist), where
 *     disagreements are mostly the crowd's mistakes; never below the target: lower
 *     agreement there is read as the model's fault, not the crowd's (a crowd less
 *     accurate than the target could not tell whether a model reaches it), and a
 *     young model's sure pairs hold its own mistakes (in the benchmark a floor of 0.93
 *     let a level the model got 90% right pass as 95%). If
 *     they all agree, c = 1 (no correction: the plain agreement rule). Without the
 *     correction a noisy crowd keeps agreement below any target near its own accuracy
 *     and nothing is ever accepted.
 *   - With crowd errors independent of the model's, agreement = p c + (rare both-wrong-
 *     alike), so the model's accuracy at a score is p ~= agreement / c.
 *   - Agreement is fitted as a non-decreasing function of the score (isotonic
 *     regression, pool-adjacent-violators), and the threshold walks down from the top
 *     while the fitted p of each score level stays >= target: every accepted item is
 *     at least as likely right as the target asks. This is a per-level (marginal)
 *     rule, not "the precision of everything at or above t": a cumulative rule lets
 *     the lowest accepted items be much worse than the target, balanced by easy ones.
 *     (Without the correction, c = 1: each level's agreement must reach the target.)
 *     Not >= max(target, c), as before: c is the crowd's accuracy on the items the
 *     model is surest of -- the easiest, ~0.98 in the benchmark -- and asking that of
 *     every level accepted nothing once the correction began.
 *   - Statistical guards: everything accepted must hold at least min_calibration
 *     pairs, and its agreement's lower bound (wilson_lower) over c's upper bound must
 *     reach the target too.
 * The estimate of c leans conservative when crowd errors concentrate on hard items
 * (the sure pairs are the easy items, where the crowd errs least, so c is high and p
 * low on hard levels); it leans optimistic when model and crowd make the same
 * mistakes, which the floor bounds. */
double tly_prelabel_threshold(const double *score, const unsigned char *right, size_t n, double target,
                              int64_t need)
{
    double t = 2;
    scored_pair *pr = NULL;
    double *sum = NULL, *cnt = NULL;
    size_t *lo = NULL;
    if ((int64_t)n < need || n == 0)
        return t;
    pr = malloc(n * sizeof *pr);
    sum = malloc(n * sizeof *sum);
    cnt = malloc(n * sizeof *cnt);
    lo = malloc(n * sizeof *lo);
    if (!pr || !sum || !cnt || !lo)
        goto out;
    for (size_t i = 0; i < n; i++)
        pr[i] = (scored_pair){score[i], right[i]};
    qsort(pr, n, sizeof *pr, by_score_desc);
    /* c from the sure pairs (the first `sure` in descending order), once at least
     * min_calibration / 2 pairs score SURE_SCORE. Not from "the best min_calibration
     * pairs" whatever their scores, as before: a young model's best pairs hold many of
     * its own mistakes, read as the crowd's they made c low and every p high -- in the
     * benchmark, the first threshold of a model fitted on ~400 labels was 0.84 and
     * auto-accepted 5,190 items that were 95.5% right in 7 seconds. */
    size_t sure = 0, agree = 0;
    while (sure < n && pr[sure].score >= SURE_SCORE) {
        agree += pr[sure].right;
        sure++;
    }
    int corrected = (int64_t)sure * 2 >= need && agree < sure;
    double c = corrected ? fmax((double)agree / (double)sure, target) : 1;
    double want = target;
    /* Pool adjacent violators from the lowest score up: blocks [lo[b], ...) of the
     * descending order, merged while a lower block agrees more than the one above. */
    size_t nb = 0;
    for (size_t k = n; k-- > 0;) {
        sum[nb] = pr[k].right;
        cnt[nb] = 1;
        lo[nb] = k;   /* the block's highest-scored index in pr */
        nb++;
        while (nb > 1 && sum[nb - 2] / cnt[nb - 2] > sum[nb - 1] / cnt[nb - 1]) {
            sum[nb - 2] += sum[nb - 1];
            cnt[nb - 2] += cnt[nb - 1];
            lo[nb - 2] = lo[nb - 1];
            nb--;
        }
    }
    /* Blocks from the top down: accept a level while its fitted accuracy suffices,
     * and while a cautious reading of everything accepted so far does too: at least
     * min_calibration pairs, and the lower bound of their agreement (wilson_lower)
     * over c reaches the target -- also without the correction, where a top block of a
     * few dozen agreeing pairs would otherwise pass on its own. Not over c's upper
     * bound: the sure pairs are the top of the accepted ones, so the two estimates
     * move together, and dividing one bound by the other accepted nothing even where
     * the model agreed with the crowd exactly as often as the crowd is right. The young
     * model's trap -- its sure pairs hold its own mistakes, so c is low and p high; a
     * threshold from the first ~100 such pairs was once 0.70 -- is closed by asking
     * for min_calibration / 2 sure pairs before correcting at all, and by c's floor. A
     * block ends (lowest score) where the next block below starts. */
    double cum_right = 0, cum_n = 0;
    for (size_t b = nb; b-- > 0;) {
        double p_fit = sum[b] / cnt[b] / c;
        cum_right += sum[b];
        cum_n += cnt[b];
        if (p_fit + 1e-12 < want)
            break;
        /* The top levels are single pairs at first (PAV leaves equal means apart): the
         * bound is checked where the threshold would go, it does not end the walk. */
        if (wilson_lower(cum_right, cum_n) / c + 1e-12 < want || cum_n < (double)need)
            continue;
        size_t last = b > 0 ? lo[b - 1] - 1 : n - 1;   /* the block's lowest-scored index */
        t = pr[last].score;
    }
out:
    free(pr);
    free(sum);
    free(cnt);
    free(lo);
    return t;
}

/* The auto-accept thresholds for the model's version: the workflow's, or ones derived
 * for prelabel.target_accuracy from the calibration pairs (tly_prelabel_threshold):
 * *first for items no derived threshold has passed over yet, and *again, for a target
 * halfway between it and 1, for items one has (route says why). */
typedef struct {
    double first, again;
    int calibrated;   /* the version has min_calibration pairs (or a fixed threshold) */
} thresholds;

static thresholds auto_accept_thresholds(tly_store *st, const tly_model *m, const tly_project *p,
                                         const char *version, tly_error *err)
{
    double target = tly_workflow_number(p->workflow, "prelabel", "target_accuracy");
    if (target <= 0) {
        double t = tly_workflow_number(p->workflow, "prelabel", "auto_accept");
        return (thresholds){t, t, 1};
    }
    pairs pr = {0};
    thresholds t = {2, 2, 0};
    if (tly_store_prediction_pairs(st, m->id, version, collect_pair, &pr, err) >= 0) {
        int64_t need = (int64_t)tly_workflow_number(p->workflow, "prelabel", "min_calibration");
        t.calibrated = (int64_t)pr.n >= need;
        t.first = tly_prelabel_threshold(pr.score, pr.right, pr.n, target, need);
        t.again = tly_prelabel_threshold(pr.score, pr.right, pr.n, 1 - (1 - target) * 0.75, need);
    }
    free(pr.score);
    free(pr.right);
    return t;
}

/* A reproducible draw in [0,1) per item for the verification sample. */
static double verify_draw(const tly_project *p, int64_t item_id)
{
    char msg[32], mac[65], head[14];
    int n = snprintf(msg, sizeof msg, "verify:%lld", (long long)item_id);
    tly_hmac_sha256_hex(p->pseudonym_key, strlen(p->pseudonym_key), msg, (size_t)n, mac);
    memcpy(head, mac, 13);
    head[13] = 0;
    return (double)strtoull(head, NULL, 16) / 4503599627370496.0;
}

/* The calibration sample: the backend's, else the verification draw. */
int tly_prelabel_calibration_item(const tly_project *p, const tly_model *m, int64_t item_id)
{
    const tly_prelabel_backend *be = backend_of(m);
    return be && be->calibration_item
               ? be->calibration_item(item_id)
               : verify_draw(p, item_id) < tly_workflow_number(p->workflow, "prelabel", "verify_rate");
}

/* prelabel.model_vote: a fresh item left to people starts one judgment short of the
 * overlap (history to_assist), outside the model's calibration sample. Its result counts the model's answer as evidence
 * (qa/results.c model_vote), and dynamic overlap adds people while that result is
 * short of min_confidence: two people who agree with each other and with the model
 * are enough, anything less gets the third and more. */
static int assist(tly_store *st, const tly_project *p, const tly_model *m, const tly_item *it, double score,
                  thresholds th, tly_error *err)
{
    int overlap = (int)tly_workflow_number(p->workflow, NULL, "overlap");
    /* Once the model's version is calibrated (min_calibration pairs), and before
     * there is a threshold only below verify_from: an item the model is fairly sure of
     * waits for the threshold, which may accept or confirm it (an assisted start is
     * kept across fits: in the benchmark, assisting from the first fit on left ~2,800
     * items assisted that later fits would have confirmed, +2,400 judgments). */
    if (!tly_workflow_number(p->workflow, "prelabel", "model_vote") || !th.calibrated ||
        overlap < 3 || (th.first > 1 && score >= tly_workflow_number(p->workflow, "prelabel", "verify_from")) ||
        tly_prelabel_calibration_item(p, m, it->id))
        return 0;
    tly_error move_err;
    if (tly_store_item_route_verify(st, it->id, overlap, overlap - 1, &move_err) < 0)
        return move_err.status == TLY_E_CONFLICT ? 0 : (*err = move_err, -1);
    json_t *ev = json_pack("{s:s,s:f,s:i,s:i}", "model", m->name, "score", score, "need", overlap - 1, "overlap",
                           overlap);
    int rc = tly_store_item_event(st, it->id, p->id, 0, "to_assist", ev, err);
    json_decref(ev);
    return rc;
}

/* A confident prediction on a fresh item: straight to a result (method "model"), or,
 * for the verification sample, one worker's check instead of full overlap.
 * A fairly confident one (prelabel.verify_from <= score < threshold, once there is a
 * threshold: until then people label everything, and those independent results are
 * the calibration pairs the threshold is derived from) goes to the confirm step --
 * and back to fresh at the next fit if nobody started it (the built-in classifier:
 * tly_store_classifier_forget_fresh) -- one worker, whose agreement with the model
 * finishes the item (result method "confirmed") and whose disagreement sends it to
 * normal labeling at no extra cost (that judgment is the first of `overlap`); decided
 * by the aggregation, qa/results.c, which finds the step by its to_confirm event.
 * The model and an independent person rarely pick the same wrong option, so an
 * agreeing pair is more often right than a crowd of `overlap`, at one judgment
 * instead of `overlap`. */
static int route(tly_store *st, const tly_project *p, const tly_model *m, const tly_item *it, json_t *answer,
                 double score, thresholds th, tly_error *err)
{
    double threshold = th.first;
    if (strcmp(it->state, "new") != 0)
        return 0;
    tly_error move_err;
    if (tly_workflow_number(p->workflow, "prelabel", "uncertain_first")) {
        /* Active learning: the least sure first, so that while the model learns, people
         * label what it would not accept anyway (and what teaches it most), and the
         * items it is sure of are still fresh when a threshold exists. The
         * calibration sample gets a draw instead of its score: spread evenly through
         * the order, whatever the model thinks of it, so the pairs the threshold is
         * derived from keep covering every score. */
        if (tly_store_item_set_priority(st, it->id, tly_prelabel_calibration_item(p, m, it->id) ? verify_draw(p, it->id) : score,
                                        err) < 0)
            return -1;
    }
    /* A second look is stricter: an item a derived threshold passed over is
     * auto-accepted later only at the threshold for a target halfway to 1 (th.again).
     * The calibration pairs describe items at large, and after a first harvest the
     * fresh items are what earlier fits would not accept; a later fit sure of one is
     * sure where fits disagree, and in the benchmark those second harvests were
     * 93-96% right against 98-99% for first looks. */
    if (threshold <= 1 && tly_workflow_number(p->workflow, "prelabel", "target_accuracy") > 0) {
        int passed_over = tly_store_item_screen(st, it->id, score < threshold, err);
        if (passed_over < 0)
            return -1;
        if (passed_over)
            threshold = th.again;
    }
    if (score < threshold) {
        double verify_from = tly_workflow_number(p->workflow, "prelabel", "verify_from");
        int overlap = (int)tly_workflow_number(p->workflow, NULL, "overlap");
        /* The verification sample's share of the band is labeled normally instead:
         * the confirmed items are no independent check of the model (they are left out
         * of the calibration pairs), these are, so the threshold keeps learning here. */
        if (verify_from <= 0 || score < verify_from || th.first > 1 || overlap < 2 ||
            verify_draw(p, it->id) < tly_workflow_number(p->workflow, "prelabel", "verify_rate"))
            return assist(st, p, m, it, score, th, err);
        if (tly_store_item_route_verify(st, it->id, overlap, 1, &move_err) < 0)
            return move_err.status == TLY_E_CONFLICT ? 0 : (*err = move_err, -1);
        json_t *ev = json_pack("{s:s,s:f,s:f,s:i,s:i}", "model", m->name, "score", score, "threshold", threshold,
                               "need", 1, "overlap", overlap);
        int rc = tly_store_item_event(st, it->id, p->id, 0, "to_confirm", ev, err);
        json_decref(ev);
        return rc;
    }
    double verify_rate = tly_workflow_number(p->workflow, "prelabel", "verify_rate");
    int overlap = (int)tly_workflow_number(p->workflow, NULL, "overlap");
    if (verify_draw(p, it->id) < verify_rate) {
        if (tly_store_item_route_verify(st, it->id, overlap, 1, &move_err) < 0)
            return move_err.status == TLY_E_CONFLICT ? 0 : (*err = move_err, -1);
        json_t *ev = json_pack("{s:s,s:f,s:f}", "model", m->name, "score", score, "threshold", threshold);
        int rc = tly_store_item_event(st, it->id, p->id, 0, "to_verify", ev, err);
        json_decref(ev);
        return rc;
    }
    if (tly_store_item_move(st, it->id, "new", "done", 0, &move_err) < 0)
        return move_err.status == TLY_E_CONFLICT ? 0 : (*err = move_err, -1);
    tly_result res = {.item_id = it->id, .project_id = p->id, .answer = answer, .confidence = score, .judgments = 0};
    snprintf(res.method, sizeof res.method, "model");
    if (tly_store_result_put(st, &res, err) < 0)
        return -1;
    json_t *ev = json_pack("{s:s,s:s,s:f,s:f}", "method", "model", "model", m->name, "confidence", score, "threshold",
                           threshold);
    int rc = tly_store_item_event(st, it->id, p->id, 0, "done", ev, err);
    json_decref(ev);
    return rc;
}

/* Records one batch's outcome: predictions (validated like any answer) or errors,
 * routed against threshold (auto_accept_threshold, which the job refreshes every
 * THRESHOLD_MS: it reads every calibration pair, too much for each batch of 8). */
static int record(tly_store *st, const tly_model *m, const tly_project *p, const tly_item *items, size_t n,
                  tly_prelabel_out *out, const char *version, thresholds threshold, tly_error *err)
{
    if (tly_store_begin(st, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        tly_error verr;
        if (!out[i].answer && !out[i].error[0]) {
            if (out[i].pending)
                continue;   /* asked again on a later run */
            snprintf(out[i].error, sizeof out[i].error, "model '%s' returned nothing for this item", m->name);
        }
        const char *error = out[i].error[0] ? out[i].error : NULL;
        json_t *answer = out[i].answer;
        char why[240];
        if (answer && tly_template_validate_answer(p->template_json, answer, items[i].media, &verr) < 0) {
            snprintf(why, sizeof why, "the model's answer does not fit the template: %s", verr.message);
            error = why;
            answer = NULL;
        }
        if (tly_store_prediction_put(st, items[i].id, p->id, m->id, version, error ? NULL : answer, out[i].score, error,
                                     err) < 0 ||
            (!error && out[i].score >= 0 &&
             route(st, p, m, &items[i], answer, out[i].score, threshold, err) < 0)) {
            tly_store_rollback(st);
            return -1;
        }
    }
    return tly_store_commit(st, err);
}

/* Models being run by this process: one job per model at a time, so an item is never
 * sent (and routed) twice by two jobs racing over the same pending list. */
#define MAX_RUNNING 32
static int64_t running[MAX_RUNNING];
static pthread_mutex_t running_mu = PTHREAD_MUTEX_INITIALIZER;

static int claim_model(int64_t id)
{
    int ok = 1, slot = -1;
    pthread_mutex_lock(&running_mu);
    for (int i = 0; i < MAX_RUNNING; i++) {
        if (running[i] == id)
            ok = 0;
        if (!running[i] && slot < 0)
            slot = i;
    }
    if (ok && slot >= 0)
        running[slot] = id;
    pthread_mutex_unlock(&running_mu);
    return ok;
}

static void release_model(int64_t id)
{
    pthread_mutex_lock(&running_mu);
    for (int i = 0; i < MAX_RUNNING; i++)
        if (running[i] == id)
            running[i] = 0;
    pthread_mutex_unlock(&running_mu);
}

static int run_job(const tly_prelabel_env *env, int64_t model_id, tly_error *err);

int tly_prelabel_run_job(const tly_prelabel_env *env, int64_t model_id, tly_error *err)
{
    tly_store *st = env->store;
    if (!claim_model(model_id)) {
        /* Another job of this model is running: come back just after it. */
        tly_model m = {0};
        if (tly_store_model_get(st, model_id, &m, err) < 0)
            return -1;
        int rc = tly_store_queue_prelabel(st, m.project_id, tly_now_ms() + 500, err);
        tly_model_clear(&m);
        return rc;
    }
    int rc = run_job(env, model_id, err);
    release_model(model_id);
    return rc;
}

static int run_job(const tly_prelabel_env *env, int64_t model_id, tly_error *err)
{
    tly_store *st = env->store;
    tly_model m = {0};
    tly_project p = {0};
    int rc = -1;
    if (tly_store_model_get(st, model_id, &m, err) < 0)
        return -1;
    const tly_prelabel_backend *be = backend_of(&m);
    int64_t start = tly_now_ms();
    if (!be || strcmp(m.state, "active") != 0) {
        rc = 0;
        goto out;
    }
    if (tly_store_project_get(st, m.project_id, &p, err) < 0)
        goto out;
    thresholds threshold = {-1, -1, 0};
    int64_t threshold_at = 0;
    char threshold_version[128] = "";   /* the model version the threshold was derived for */
    for (;;) {
        int64_t now = tly_now_ms();
        if (m.open_until > now) {   /* circuit open: come back when it closes */
            rc = tly_store_queue_prelabel(st, m.project_id, m.open_until, err);
            goto out;
        }
        if (now - start > JOB_BUDGET_MS) {
            rc = tly_store_queue_prelabel(st, m.project_id, 0, err);
            goto out;
        }
        int64_t *ids = NULL;
        size_t n = 0;
        /* In-process models take bigger batches: fewer transactions per item. */
        int batch = be->batch > 0 && be->batch <= TLY_PRELABEL_MAX_BATCH ? be->batch : TLY_PRELABEL_BATCH;
        if (tly_store_model_pending(st, &m, batch, &ids, &n, err) < 0)
            goto out;
        if (n == 0) {
            free(ids);
            rc = 0;
            goto out;
        }
        tly_item items[TLY_PRELABEL_MAX_BATCH];
        tly_prelabel_out outs[TLY_PRELABEL_MAX_BATCH];
        memset(items, 0, sizeof items);
        memset(outs, 0, sizeof outs);
        size_t got = 0;
        for (size_t i = 0; i < n; i++)
            if (tly_store_item_get(st, ids[i], &items[got], err) == 0)
                got++;
        free(ids);
        char version[128] = "";
        tly_error call_err;
        int ok = be->predict(&m, &p, items, got, env, outs, version, sizeof version, &call_err) == 0;
        size_t waiting = 0;
        for (size_t i = 0; i < got; i++) {
            if (!ok) {
                json_decref(outs[i].answer);
                memset(&outs[i], 0, sizeof outs[i]);
                snprintf(outs[i].error, sizeof outs[i].error, "model '%s' failed: %s", m.name, call_err.message);
            }
            waiting += outs[i].pending && !outs[i].answer && !outs[i].error[0];
        }
        int64_t open_until = tly_now_ms() + TLY_PRELABEL_OPEN_MS;
        int r = 0;
        const char *batch_version = version[0] ? version : m.version;
        if (threshold.first < 0 || tly_now_ms() - threshold_at > THRESHOLD_MS ||
            strcmp(threshold_version, batch_version) != 0) {
            threshold_at = tly_now_ms();
            snprintf(threshold_version, sizeof threshold_version, "%s", batch_version);
            threshold = auto_accept_thresholds(st, &m, &p, batch_version, err);
            r = threshold.first < 0 ? -1 : 0;
        }
        if (r == 0)
            r = record(st, &m, &p, items, got, outs, batch_version, threshold, err);
        if (r == 0)
            r = tly_store_model_called(st, m.id, ok, version, ok ? NULL : call_err.message, TLY_PRELABEL_TRIP,
                                       open_until, err);
        for (size_t i = 0; i < got; i++) {
            tly_item_clear(&items[i]);
            json_decref(outs[i].answer);
        }
        if (r < 0)
            goto out;
        if (waiting) {
            /* The model is not ready for these items: they stay pending until a
             * later run (the model's own trigger queues it). */
            rc = 0;
            goto out;
        }
        tly_counter_add(tly_metrics_counter("tally_prelabel_items_total", "Items sent to pre-labeling models", ""),
                        got);
        if (!ok)
            LOG_WARN("prelabel", "model %lld (%s): %s", (long long)m.id, m.name, call_err.message);
        tly_model_clear(&m);
        if (tly_store_model_get(st, model_id, &m, err) < 0)   /* the breaker's new state */
            goto out;
    }
out:
    tly_model_clear(&m);
    tly_project_clear(&p);
    return rc;
}

json_t *tly_model_json(const tly_model *m)
{
    char created[32], open_until[32];
    tly_format_rfc3339(m->created_at, created, sizeof created);
    tly_format_rfc3339(m->open_until, open_until, sizeof open_until);
    int open = m->open_until > tly_now_ms();
    return json_pack("{s:I,s:I,s:s,s:s,s:s?,s:s?,s:s,s:s,s:I,s:I,s:i,s:s?,s:s?,s:s}", "id", (json_int_t)m->id,
                     "project_id", (json_int_t)m->project_id, "name", m->name, "kind", m->kind, "url", m->url,
                     "model", m->builtin[0] ? m->builtin : NULL, "state", m->state, "model_version", m->version,
                     "predicted", (json_int_t)m->predicted, "errors", (json_int_t)m->errors, "failures", m->failures,
                     "last_error", m->last_error, "circuit_open_until", open ? open_until : NULL, "created_at",
                     created);
}

json_t *tly_prediction_json(const tly_prediction *p)
{
    char created[32];
    tly_format_rfc3339(p->created_at, created, sizeof created);
    json_t *j = json_pack("{s:s,s:I,s:s,s:O,s:s}", "model", p->model_name, "model_id", (json_int_t)p->model_id,
                          "model_version", p->model_version, "answer", p->answer ? p->answer : json_null(),
                          "created_at", created);
    json_object_set_new(j, "score", p->score >= 0 ? json_real(p->score) : json_null());
    if (p->error)
        json_object_set_new(j, "error", json_string(p->error));
    return j;
}

json_t *tly_prelabel_for_task(tly_store *st, int64_t item_id)
{
    tly_prediction *list = NULL;
    size_t n = 0;
    tly_error ignore;
    if (tly_store_prediction_list(st, item_id, &list, &n, &ignore) < 0 || n == 0 || !list[0].answer) {
        tly_prediction_list_free(list, n);
        return NULL;
    }
    json_t *j = json_pack("{s:s,s:s,s:O}", "model", list[0].model_name, "model_version", list[0].model_version,
                          "answer", list[0].answer);
    json_object_set_new(j, "score", list[0].score >= 0 ? json_real(list[0].score) : json_null());
    tly_prediction_list_free(list, n);
    return j;
}
