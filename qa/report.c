/* report.c -- see report.h.
 *
 * Agreement is computed over the counting work judgments (test questions left
 * out: they are not the crowd's labeling) of each choice control, streamed from
 * the store; only item and worker ids and a label are kept per judgment.
 */
#include "qa/report.h"
#include "annotate/work.h"
#include "qa/agreement.h"
#include "qa/crowd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    json_t *options;
    int64_t *items;
    int *labels;
    size_t n, cap;
    int failed;
} control_votes;

typedef struct {
    control_votes *c;
    size_t n;
} votes_scan;

static int collect(const tly_judgment *j, void *ctx)
{
    votes_scan *vs = ctx;
    if (j->gold)
        return 0;
    for (size_t k = 0; k < vs->n; k++) {
        control_votes *cv = &vs->c[k];
        const char *s = json_string_value(json_object_get(j->answer, cv->name));
        int label = -1;
        size_t i;
        json_t *o;
        json_array_foreach(cv->options, i, o)
            if (s && strcmp(s, json_string_value(o)) == 0)
                label = (int)i;
        if (label < 0)
            continue;
        if (cv->n == cv->cap) {
            size_t cap = cv->cap ? cv->cap * 2 : 256;
            int64_t *items = realloc(cv->items, cap * sizeof *items);
            if (items)
                cv->items = items;
            int *labels = realloc(cv->labels, cap * sizeof *labels);
            if (labels)
                cv->labels = labels;
            if (!items || !labels)
                return -1;
            cv->cap = cap;
        }
        cv->items[cv->n] = j->item_id;
        cv->labels[cv->n++] = label;
    }
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static json_t *number_or_null(double x)
{
    return isnan(x) ? json_null() : json_real(x);
}

/* {"<control>":{"alpha","percent","judgments"}} for every choice control. */
static json_t *agreement(tly_store *st, const tly_project *p, tly_error *err)
{
    json_t *controls = json_object_get(p->template_json, "controls");
    votes_scan vs = {calloc(json_array_size(controls) + 1, sizeof *vs.c), 0};
    json_t *out = NULL;
    if (!vs.c)
        return NULL;
    size_t i;
    json_t *def;
    json_array_foreach(controls, i, def)
        if (json_is_string(json_object_get(def, "type")) &&
            strcmp(json_string_value(json_object_get(def, "type")), "choice") == 0)
            vs.c[vs.n++] = (control_votes){json_string_value(json_object_get(def, "name")),
                                           json_object_get(def, "options"), NULL, NULL, 0, 0, 0};
    if (vs.n && tly_store_judgment_each(st, p->id, collect, &vs, err) < 0)
        goto out;
    out = json_object();
    for (size_t k = 0; k < vs.n; k++) {
        control_votes *cv = &vs.c[k];
        int64_t *ids = malloc((cv->n ? cv->n : 1) * sizeof *ids);
        tly_vote *votes = malloc((cv->n ? cv->n : 1) * sizeof *votes);
        double alpha = NAN, percent = NAN;
        if (ids && votes && cv->n) {
            memcpy(ids, cv->items, cv->n * sizeof *ids);
            qsort(ids, cv->n, sizeof *ids, cmp_i64);
            size_t n_items = 0;
            for (size_t v = 0; v < cv->n; v++)
                if (!n_items || ids[n_items - 1] != ids[v])
                    ids[n_items++] = ids[v];
            for (size_t v = 0; v < cv->n; v++) {
                int64_t *hit = bsearch(&cv->items[v], ids, n_items, sizeof *ids, cmp_i64);
                votes[v] = (tly_vote){(int)(hit - ids), 0, cv->labels[v]};
            }
            tly_error ignore;
            int n_labels = (int)json_array_size(cv->options);
            tly_krippendorff_alpha_nominal(votes, cv->n, (int)n_items, n_labels, &alpha, &ignore);
            tly_percent_agreement(votes, cv->n, (int)n_items, n_labels, &percent, &ignore);
        }
        free(ids);
        free(votes);
        json_object_set_new(out, cv->name,
                            json_pack("{s:o,s:o,s:I}", "alpha", number_or_null(alpha), "percent",
                                      number_or_null(percent), "judgments", (json_int_t)cv->n));
    }
out:
    for (size_t k = 0; k < vs.n; k++) {
        free(vs.c[k].items);
        free(vs.c[k].labels);
    }
    free(vs.c);
    return out;
}

static int results_block(tly_store *st, int64_t project_id, json_t *body, tly_error *err)
{
    static const char *const states[] = {"review", "done", "released"};
    json_t *res = json_object();
    json_object_set_new(body, "results", res);
    for (int s = 0; s < 3; s++) {
        int64_t n = 0;
        double mean = 0;
        if (tly_store_result_summary(st, project_id, states[s], &n, &mean, err) < 0)
            return -1;
        json_object_set_new(res, states[s], json_pack("{s:I,s:o}", "count", (json_int_t)n, "mean_confidence",
                                                      n ? json_real(mean) : json_null()));
        if (strcmp(states[s], "released") == 0)
            /* The model's own estimate: the mean posterior of the released labels. */
            json_object_set_new(body, "estimated_accuracy", n ? json_real(mean) : json_null());
    }
    return 0;
}

/* Verdicts of humans on results: reviews (accept = right) and acceptance samples. */
static int human_block(tly_store *st, int64_t project_id, json_t *body, tly_error *err)
{
    json_t *reviews = NULL;
    if (tly_store_review_counts(st, project_id, &reviews, err) < 0)
        return -1;
    json_int_t acc = json_integer_value(json_object_get(reviews, "accept"));
    json_int_t all = acc + json_integer_value(json_object_get(reviews, "reject")) +
                     json_integer_value(json_object_get(reviews, "fix"));
    json_object_set_new(body, "reviews", reviews);
    json_object_set_new(body, "reviewed_accuracy", all ? json_real((double)acc / (double)all) : json_null());
    json_t *lots = json_pack("{s:i,s:i,s:i}", "open", 0, "accepted", 0, "rejected", 0);
    int64_t judged = 0, defects = 0, after = 0;
    for (;;) {
        tly_lot *list = NULL;
        size_t n = 0;
        if (tly_store_lot_list(st, project_id, after, 500, &list, &n, err) < 0) {
            json_decref(lots);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *c = json_object_get(lots, list[i].state);
            if (c)
                json_integer_set(c, json_integer_value(c) + 1);
            judged += list[i].judged;
            defects += list[i].defects;
        }
        after = n ? list[n - 1].id : after;
        tly_lot_list_free(list, n);
        if (n < 500)
            break;
    }
    json_object_set_new(body, "lots", lots);
    json_object_set_new(body, "sampled_accuracy",
                        judged ? json_real(1.0 - (double)defects / (double)judged) : json_null());
    return 0;
}

int tly_report_stats(tly_store *st, int64_t project_id, json_t **out, tly_error *err)
{
    tly_project p = {0};
    json_t *counts = NULL, *body = NULL, *quality = NULL, *gold = NULL, *agree = NULL;
    if (tly_store_project_get(st, project_id, &p, err) < 0)
        return -1;
    if (tly_store_item_counts(st, project_id, &counts, err) < 0 || tly_store_quality_counts(st, project_id, &quality, err) < 0 ||
        !(gold = tly_crowd_gold_supply(st, &p, err)) || !(agree = agreement(st, &p, err)))
        goto fail;
    json_int_t total = 0;
    const char *state;
    json_t *v;
    json_object_foreach(counts, state, v)
        if (strcmp(state, "gold") != 0)
            total += json_integer_value(v);
    json_t *g = json_object_get(counts, "gold");
    body = json_pack("{s:I,s:I,s:I}", "project_id", (json_int_t)p.id, "items_total", total, "gold",
                     g ? json_integer_value(g) : 0);
    json_object_del(counts, "gold");
    json_object_set_new(body, "items", counts);
    counts = NULL;
    json_object_update(body, quality);
    json_object_set_new(body, "test_questions", gold);
    gold = NULL;
    if (!json_is_true(json_object_get(json_object_get(body, "test_questions"), "enough")))
        json_object_set_new(body, "warnings",
                            json_pack("[{s:s,s:s}]", "code", "not_enough_test_questions", "message",
                                      "the project has fewer test questions than its quiz and gold rate need; "
                                      "workers will be refused quiz or gold until more are added"));
    json_object_set_new(body, "agreement", agree);
    agree = NULL;
    if (results_block(st, project_id, body, err) < 0 || human_block(st, project_id, body, err) < 0)
        goto fail;
    json_decref(quality);
    tly_project_clear(&p);
    *out = body;
    return 0;
fail:
    json_decref(counts);
    json_decref(body);
    json_decref(quality);
    json_decref(gold);
    json_decref(agree);
    tly_project_clear(&p);
    return -1;
}

json_t *tly_report_worker_json(const tly_project *p, const tly_project_worker *w)
{
    char pseudonym[24];
    tly_work_pseudonym(p, w->worker_id, pseudonym, sizeof pseudonym);
    return json_pack("{s:I,s:s,s:s,s:s,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:s?,s:O}", "worker_id", (json_int_t)w->worker_id,
                     "worker", pseudonym, "mode", w->mode, "status", w->status, "trust", w->trust, "gold_seen",
                     (json_int_t)w->gold_seen, "gold_correct", (json_int_t)w->gold_correct, "quiz_seen",
                     (json_int_t)w->quiz_seen, "quiz_correct", (json_int_t)w->quiz_correct, "judgments",
                     (json_int_t)w->judgments, "excluded", (json_int_t)w->excluded, "reason",
                     w->reason[0] ? w->reason : NULL, "flags", w->flags ? w->flags : json_null());
}
