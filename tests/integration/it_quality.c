/* it_quality.c -- the quality rounds end to end against a real tallyd over HTTP
 * (docs/API.md "Quality"):
 *
 *  - test_whole_project: a project is created without test questions (warned), gets
 *    work items and gold, and simulated workers go through it: one fails the quiz
 *    and is refused; six pass it; one of them, a spammer once in work mode, is caught
 *    by trust on hidden test questions, stopped, and their judgments are excluded
 *    (their items labeled again by others); one careless worker disagrees on some
 *    items, which triggers dynamic overlap; test questions arrive at the gold rate
 *    for every worker; low-confidence and sampled results go to review, where a
 *    reject loops the item back to labeling (visible in its history) and a fix
 *    becomes the result; an acceptance lot is accepted (its results released) and
 *    another rejected (back to review). Every released result is the truth.
 *  - test_gold_shortage: no silent fallback when there are too few test questions.
 *  - test_bad_input: clear errors for bad review and lot requests, roles respected.
 *  - test_import_duck: 4,212 real crowd judgments (tests/data/crowd/duck) imported
 *    into a 108-item project are aggregated by Dawid-Skene in the background, and the
 *    results reach the accuracy the algorithm reaches offline, above majority vote.
 */
#include "harness.h"

#include <curl/curl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct {
    it_server srv;
    char *mgr;
    char *consumer;
    int seq;
    int64_t note_item;   /* an item back from review: its tasks must carry the comment */
    int notes_seen;
} g;

static const char *TEMPLATE =
    "{\"controls\":[{\"name\":\"label\",\"type\":\"choice\",\"options\":[\"cat\",\"dog\"],\"required\":true}]}";

static int group_setup(void **state)
{
    (void)state;
    memset(&g, 0, sizeof g);
    curl_global_init(CURL_GLOBAL_ALL);
    return it_server_start_users(&g.srv, NULL, &g.mgr, NULL, &g.consumer);
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = it_server_finish(&g.srv);
    free(g.mgr);
    free(g.consumer);
    curl_global_cleanup();
    return rc;
}

/* ---- the project's items and their truth ------------------------------------------- */

#define MAX_ITEMS 256

typedef struct {
    int64_t id[MAX_ITEMS];
    char name[MAX_ITEMS][32];
    int n;
} item_map;

static void load_items(int64_t project, item_map *m)
{
    m->n = 0;
    int64_t after = 0;
    for (;;) {
        it_response r;
        if (after)
            assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/projects/%lld/items?limit=100&cursor=%lld",
                                     (long long)project, (long long)after),
                             0);
        else
            assert_int_equal(it_getf(&g.srv, g.mgr, &r, "/v1/projects/%lld/items?limit=100", (long long)project), 0);
        IT_ASSERT_STATUS(r, 200);
        size_t i;
        json_t *it;
        json_t *items = json_object_get(r.json, "items");
        json_array_foreach(items, i, it) {
            assert_true(m->n < MAX_ITEMS);
            m->id[m->n] = it_json_int(it, "id");
            snprintf(m->name[m->n], sizeof m->name[m->n], "%s", it_json_str(it, "name"));
            m->n++;
        }
        json_t *next = json_object_get(r.json, "next_cursor");
        after = json_is_null(next) || !next ? 0 : json_is_integer(next) ? json_integer_value(next)
                                                                         : atoll(json_string_value(next));
        it_response_free(&r);
        if (!after)
            break;
    }
}

static const char *name_of(const item_map *m, int64_t id)
{
    for (int i = 0; i < m->n; i++)
        if (m->id[i] == id)
            return m->name[i];
    fail_msg("item %lld not in the project", (long long)id);
    return "";
}

/* "qNNNN.jpg" (work): odd numbers are dogs. "gNNNN.jpg" (test questions): dogs but
 * every fourth (g0004, g0008, ...), so that a worker who always answers "cat" is wrong
 * on most of them, whichever come first (see step 4 of test_whole_project). */
static int number_of(const char *name)
{
    return atoi(name + 1);
}

static int is_gold_name(const char *name)
{
    return name[0] == 'g';
}

static const char *truth_of(const char *name)
{
    if (is_gold_name(name))
        return number_of(name) % 4 ? "dog" : "cat";
    return number_of(name) % 2 ? "dog" : "cat";
}

static int64_t state_count(json_t *stats, const char *state)
{
    return json_integer_value(json_object_get(json_object_get(stats, "items"), state));
}

/* ---- simulated workers -------------------------------------------------------------- */

typedef enum { HONEST, CARELESS, SPAMMER, QUIZ_FAILER } behaviour;

typedef struct {
    char *token;
    int64_t id;
    behaviour kind;
    int quiz_seen;
    int work_tasks, work_gold;   /* tasks in work mode, of which test questions */
    int work_judged;             /* judgments on work items */
    int refused;                 /* last next answered 403: the code */
    char refused_code[48];
    int64_t wrong[MAX_ITEMS];    /* work items answered wrong */
    int n_wrong;
} worker;

/* What the worker answers for the item (after counting it in w's tallies). */
static const char *answer_for(const worker *w, const char *name, int in_quiz)
{
    const char *truth = truth_of(name);
    switch (w->kind) {
    case HONEST:
        return truth;
    case CARELESS:   /* wrong on its 1st, 5th, 9th ... work item, right on everything else */
        /* Counted by what it was given, not by item: which items reach a worker depends
         * on the item ids (in the order the ingest job threads committed them) and on
         * the random mixing of test questions. */
        return !in_quiz && !is_gold_name(name) && w->work_judged % 4 == 1 ? (strcmp(truth, "cat") ? "cat" : "dog")
                                                                            : truth;
    case SPAMMER:    /* careful in the quiz, then always "cat" */
        return in_quiz ? truth : "cat";
    case QUIZ_FAILER:
        return strcmp(truth, "cat") ? "cat" : "dog";
    }
    return truth;
}

/* One next + submit. Returns 1 if a task was done, 0 on 204, -1 on 403 (code kept). */
static int work_once(worker *w, int64_t project, const item_map *items)
{
    it_response r;
    assert_int_equal(it_requestf(&g.srv, "POST", w->token, NULL, &r, "/v1/projects/%lld/work/next", (long long)project),
                     0);
    if (r.status == 204) {
        it_response_free(&r);
        return 0;
    }
    if (r.status == 403) {
        snprintf(w->refused_code, sizeof w->refused_code, "%s", it_err_code(&r));
        w->refused = 1;
        it_response_free(&r);
        return -1;
    }
    IT_ASSERT_STATUS(r, 200);
    const char *mode = it_json_str(r.json, "mode");
    int in_quiz = strcmp(mode, "quiz") == 0;
    assert_true(in_quiz || strcmp(mode, "work") == 0);
    /* Test questions are indistinguishable: nothing in the task says gold. */
    assert_null(json_object_get(r.json, "gold"));
    assert_null(json_object_get(json_object_get(r.json, "item"), "gold"));
    assert_null(json_object_get(json_object_get(r.json, "item"), "name"));
    int64_t assignment = it_json_int(r.json, "assignment_id");
    int64_t item = it_json_int(json_object_get(r.json, "item"), "id");
    if (item == g.note_item) {
        assert_string_equal(it_json_str(r.json, "note"), "look again at the ears");
        g.notes_seen++;
    } else {
        assert_null(json_object_get(r.json, "note"));
    }
    it_response_free(&r);
    const char *name = name_of(items, item);
    if (in_quiz) {
        assert_true(is_gold_name(name));   /* the quiz is test questions only */
        w->quiz_seen++;
    } else {
        w->work_tasks++;
        w->work_gold += is_gold_name(name);
        w->work_judged += !is_gold_name(name);
    }
    const char *answer = answer_for(w, name, in_quiz);
    if (!is_gold_name(name) && strcmp(answer, truth_of(name)) != 0) {
        assert_true(w->n_wrong < MAX_ITEMS);
        w->wrong[w->n_wrong++] = item;
    }
    char body[128];
    snprintf(body, sizeof body, "{\"answer\":{\"label\":\"%s\"},\"duration_ms\":2500}", answer);
    assert_int_equal(it_requestf(&g.srv, "POST", w->token, body, &r, "/v1/assignments/%lld/submit", (long long)assignment),
                     0);
    IT_ASSERT_STATUS(r, 200);
    json_t *fb = json_object_get(r.json, "feedback");
    if (in_quiz) {
        /* Quiz feedback: right or wrong, and the correct answer. */
        assert_non_null(fb);
        assert_true(json_is_boolean(json_object_get(fb, "correct")));
        assert_string_equal(it_json_str(json_object_get(fb, "expected"), "label"), truth_of(name));
        assert_int_equal(json_is_true(json_object_get(fb, "correct")),
                         strcmp(answer_for(w, name, 1), truth_of(name)) == 0);
    } else {
        assert_null(fb);   /* work mode: a test question gets no feedback */
    }
    it_response_free(&r);
    return 1;
}

static worker make_worker(behaviour kind)
{
    worker w = {0};
    w.kind = kind;
    w.token = it_new_user(&g.srv, &g.seq, "worker");
    json_t *me = it_json_requestf(&g.srv, "GET", w.token, NULL, 200, "/v1/me");
    w.id = it_json_int(me, "id");
    json_decref(me);
    return w;
}

static json_t *worker_row(int64_t project, int64_t worker_id)
{
    json_t *list = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/workers?limit=100", (long long)project);
    size_t i;
    json_t *row, *found = NULL;
    json_array_foreach(json_object_get(list, "items"), i, row)
        if (it_json_int(row, "worker_id") == worker_id)
            found = json_incref(row);
    json_decref(list);
    assert_non_null(found);
    return found;
}

/* Workers take tasks in turn until nothing is left to label (aggregation runs in the
 * background and may hand items back for more judgments). */
static void run_crowd(worker *ws, int n, int64_t project, const item_map *items)
{
    long long deadline = it_now_ms() + 90000;
    while (it_now_ms() < deadline) {
        int did = 0;
        for (int i = 0; i < n; i++)
            if (!ws[i].refused)
                did += work_once(&ws[i], project, items) == 1;
        if (did)
            continue;
        json_t *stats = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/stats", (long long)project);
        int64_t open = state_count(stats, "new") + state_count(stats, "labeling") + state_count(stats, "labeled");
        json_decref(stats);
        if (open == 0)
            return;
        it_sleep_ms(200);
    }
    fail_msg("the crowd did not finish the project in time");
}

static json_t *history_of(int64_t item)
{
    json_t *h = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/items/%lld/history?limit=100", (long long)item);
    json_t *items = json_incref(json_object_get(h, "items"));
    json_decref(h);
    return items;
}

static int history_has(json_t *events, const char *kind, const char *key, const char *value)
{
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        if (strcmp(it_json_str(ev, "kind"), kind) != 0)
            continue;
        if (!key)
            return 1;
        const char *v = json_string_value(json_object_get(json_object_get(ev, "detail"), key));
        if (v && strcmp(v, value) == 0)
            return 1;
    }
    return 0;
}

/* Reviews everything in the review queue as the manager: the first with verdict
 * `first` (and a comment / fixed answer), the second with a fix when fix_item is not
 * NULL (its item into *fix_item), the rest accepted. Returns the item of the first
 * review (0 if the queue was empty). */
static int64_t review_all(int64_t project, const item_map *items, const char *first, int64_t *reviews_done,
                          int64_t *fix_item)
{
    int64_t first_item = 0;
    for (int k = 0; k < 200; k++) {
        it_response r;
        assert_int_equal(it_requestf(&g.srv, "POST", g.mgr, NULL, &r, "/v1/projects/%lld/review/next", (long long)project),
                         0);
        if (r.status == 204) {
            it_response_free(&r);
            break;
        }
        IT_ASSERT_STATUS(r, 200);
        int64_t review = it_json_int(r.json, "review_id");
        int64_t item = it_json_int(json_object_get(r.json, "item"), "id");
        json_t *result = json_object_get(r.json, "result");
        assert_non_null(result);
        assert_true(json_array_size(json_object_get(r.json, "judgments")) >= 1);
        assert_true(json_array_size(json_object_get(r.json, "history")) >= 1);
        /* The reviewer sees workers as pseudonyms only. */
        json_t *j0 = json_array_get(json_object_get(r.json, "judgments"), 0);
        assert_true(strncmp(it_json_str(j0, "worker"), "w_", 2) == 0);
        it_response_free(&r);
        char body[256];
        const char *truth = truth_of(name_of(items, item));
        if (!first_item && strcmp(first, "reject") == 0)
            snprintf(body, sizeof body, "{\"verdict\":\"reject\",\"comment\":\"look again at the ears\"}");
        else if ((!first_item && strcmp(first, "fix") == 0) || (first_item && fix_item && !*fix_item)) {
            snprintf(body, sizeof body, "{\"verdict\":\"fix\",\"answer\":{\"label\":\"%s\"},\"comment\":\"fixed\"}",
                     truth);
            if (first_item && fix_item)
                *fix_item = item;
        }
        else
            snprintf(body, sizeof body, "{\"verdict\":\"accept\"}");
        json_t *out = it_json_requestf(&g.srv, "POST", g.mgr, body, 200, "/v1/reviews/%lld", (long long)review);
        assert_true(json_is_true(json_object_get(out, "ok")));
        json_decref(out);
        if (!first_item)
            first_item = item;
        (*reviews_done)++;
    }
    return first_item;
}

static void test_whole_project(void **state)
{
    (void)state;
    /* 1. The project, made before it has test questions: the manager is told. */
    char body[1024];
    snprintf(body, sizeof body,
             "{\"name\":\"quality-%d\",\"media\":\"image\",\"template\":%s,\"workflow\":{\"overlap\":3,"
             "\"max_overlap\":5,\"gold_rate\":0.25,\"quiz\":{\"size\":4,\"pass\":0.75},\"min_trust\":0.8,"
             "\"min_confidence\":0.7,\"review\":{\"sample_rate\":0.5},\"consensus\":{\"choice\":\"weighted_vote\"},"
             "\"checks\":{\"same_answer_min\":0},\"acceptance\":{\"aql\":1.0}}}",
             ++g.seq, TEMPLATE);
    json_t *created = it_json_requestf(&g.srv, "POST", g.mgr, body, 201, "/v1/projects");
    int64_t project = it_json_int(created, "id");
    json_t *warn = json_array_get(json_object_get(created, "warnings"), 0);
    assert_non_null(warn);
    assert_string_equal(it_json_str(warn, "code"), "not_enough_test_questions");
    json_decref(created);

    /* 2. 24 work items and 16 test questions (gold answers set by the manager). */
    enum { WORK = 24, GOLD = 16 };
    it_add_jpegs(&g.srv, g.mgr, project, "quality-work", "q", WORK, 1);
    it_add_jpegs(&g.srv, g.mgr, project, "quality-gold", "g", GOLD, 1);
    item_map items;
    load_items(project, &items);
    assert_int_equal(items.n, WORK + GOLD);
    for (int i = 0; i < items.n; i++) {
        if (!is_gold_name(items.name[i]))
            continue;
        char gold[64];
        snprintf(gold, sizeof gold, "{\"answer\":{\"label\":\"%s\"}}", truth_of(items.name[i]));
        it_response r;
        assert_int_equal(it_requestf(&g.srv, "PUT", g.mgr, gold, &r, "/v1/items/%lld/gold", (long long)items.id[i]), 0);
        IT_ASSERT_STATUS(r, 200);
        it_response_free(&r);
    }
    json_t *stats = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/stats", (long long)project);
    json_t *tq = json_object_get(stats, "test_questions");
    assert_int_equal(it_json_int(tq, "have"), GOLD);
    /* quiz 4 + ceil(24 x 0.25 / 0.75) = 12 */
    assert_int_equal(it_json_int(tq, "needed"), 12);
    assert_true(json_is_true(json_object_get(tq, "enough")));
    assert_null(json_object_get(stats, "warnings"));
    assert_int_equal(it_json_int(stats, "items_total"), WORK);
    assert_int_equal(it_json_int(stats, "gold"), GOLD);
    json_decref(stats);
    json_t *resumed = it_json_requestf(&g.srv, "POST", g.mgr, NULL, 200, "/v1/projects/%lld/resume", (long long)project);
    assert_null(json_object_get(resumed, "warnings"));
    json_decref(resumed);

    /* 3. The quiz: a worker who gets it wrong is out of the project. */
    worker failer = make_worker(QUIZ_FAILER);
    for (int k = 0; k < 4; k++)
        assert_int_equal(work_once(&failer, project, &items), 1);
    assert_int_equal(failer.quiz_seen, 4);
    assert_int_equal(work_once(&failer, project, &items), -1);
    assert_string_equal(failer.refused_code, "quiz_failed");
    json_t *row = worker_row(project, failer.id);
    assert_string_equal(it_json_str(row, "status"), "failed");
    assert_int_equal(it_json_int(row, "quiz_correct"), 0);
    json_decref(row);

    /* 4. The spammer passes the quiz, then is caught by the hidden test questions.
     * Trust after the quiz is (4 + 3) / (4 + 4) = 0.875; below 0.8 it is stopped. Test
     * questions come to each worker in an order of their own (a hash of item ids, which
     * follow the order the ingest job threads committed the uploads in), so the spammer
     * must be caught whichever come first: with 3 dogs to 1 cat among them it is, by
     * its 6th in work mode at the latest (the 4 cats, then 2 dogs: 11 / 14 = 0.786),
     * and the gold rate brings at least 7 over the 24 work items. With half cats, a
     * spammer who drew 4 cats before 3 dogs got through (about 1 run in 100). */
    worker spammer = make_worker(SPAMMER);
    for (int k = 0; k < 200 && !spammer.refused; k++)
        work_once(&spammer, project, &items);
    if (!spammer.refused)
        fail_msg("the spammer was not stopped: %d tasks in work mode, %d of them test questions", spammer.work_tasks,
                 spammer.work_gold);
    assert_string_equal(spammer.refused_code, "worker_stopped");
    assert_int_equal(spammer.quiz_seen, 4);
    assert_true(spammer.work_gold >= 1);
    row = worker_row(project, spammer.id);
    assert_string_equal(it_json_str(row, "status"), "stopped");
    assert_string_equal(it_json_str(row, "mode"), "work");
    assert_true(json_real_value(json_object_get(row, "trust")) < 0.8);
    /* Every work judgment of theirs is excluded; none counts. */
    assert_int_equal(it_json_int(row, "excluded"), spammer.work_judged);
    assert_int_equal(it_json_int(row, "judgments"), 0);
    json_decref(row);

    /* 5. Eight workers who pass the quiz label everything; one is careless. */
    enum { CROWD = 8 };   /* enough that a reworked item finds workers who have not seen it */
    worker crowd[CROWD];
    for (int i = 0; i < CROWD; i++)
        crowd[i] = make_worker(i == 0 ? CARELESS : HONEST);
    run_crowd(crowd, CROWD, project, &items);
    for (int i = 0; i < CROWD; i++) {
        assert_false(crowd[i].refused);
        assert_int_equal(crowd[i].quiz_seen, 4);
        /* Gold at the rate: after n work tasks, 0.25 n test questions, within one. */
        int quarter = crowd[i].work_tasks / 4;   /* 0.25 n, rounded down */
        assert_true(crowd[i].work_gold >= quarter - 1 && crowd[i].work_gold <= quarter + 2);
        row = worker_row(project, crowd[i].id);
        assert_string_equal(it_json_str(row, "status"), "active");
        assert_string_equal(it_json_str(row, "mode"), "work");
        assert_int_equal(it_json_int(row, "gold_seen"), 4 + crowd[i].work_gold);
        assert_int_equal(it_json_int(row, "judgments"), crowd[i].work_judged);
        json_decref(row);
    }

    /* The spammer's items were labeled again by the others: no result uses them. */
    /* Dynamic overlap: each wrong answer of the careless worker made a 2:1 vote (trust-
     * weighted, every trust in [0.875, 1): confidence < 2 / 2.875 < 0.7), so each of
     * those items got a fourth judgment. */
    assert_true(crowd[0].n_wrong >= 1);
    for (int k = 0; k < crowd[0].n_wrong; k++) {
        json_t *h = history_of(crowd[0].wrong[k]);
        assert_true(history_has(h, "more_judgments", NULL, NULL));
        json_decref(h);
        json_t *res = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/items/%lld/result",
                                       (long long)crowd[0].wrong[k]);
        assert_true(it_json_int(res, "judgments") >= 4);
        json_decref(res);
    }

    /* 6. Review: low-confidence and sampled results wait for a reviewer; a reject
     * loops the item back to labeling, with its history showing the loop. */
    stats = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/stats", (long long)project);
    int64_t in_review = state_count(stats, "review");
    json_decref(stats);
    /* A worker trusted enough (reviewer_trust 0.9) may review, never their own items. */
    for (int i = 1; i < CROWD; i++) {
        row = worker_row(project, crowd[i].id);
        double trust = json_real_value(json_object_get(row, "trust"));
        char pseudonym[32];
        snprintf(pseudonym, sizeof pseudonym, "%s", it_json_str(row, "worker"));
        json_decref(row);
        if (trust < 0.9)
            continue;
        it_response r;
        assert_int_equal(it_requestf(&g.srv, "POST", crowd[i].token, NULL, &r, "/v1/projects/%lld/review/next",
                                     (long long)project),
                         0);
        if (r.status == 200) {
            size_t k;
            json_t *j;
            json_array_foreach(json_object_get(r.json, "judgments"), k, j)
                assert_string_not_equal(it_json_str(j, "worker"), pseudonym);
            int64_t review = it_json_int(r.json, "review_id");
            it_response_free(&r);
            json_t *ok = it_json_requestf(&g.srv, "POST", crowd[i].token, "{\"verdict\":\"accept\"}", 200, "/v1/reviews/%lld", (long long)review);
            json_decref(ok);
            in_review--;
        } else {
            IT_ASSERT_STATUS(r, 204);
            it_response_free(&r);
        }
        break;
    }
    int64_t reviews = 0, rejected_item = 0;
    /* Half the results are sampled for review (by a draw keyed on the project's secret:
     * none of 24 drawn has a chance of 6e-8). */
    assert_true(in_review > 0);
    {
        int64_t fixed_item = 0;
        rejected_item = review_all(project, &items, "reject", &reviews, &fixed_item);
        assert_true(rejected_item > 0);
        if (in_review >= 2) {   /* a fix: the reviewer's answer is the result */
            assert_true(fixed_item > 0);
            json_t *res = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/items/%lld/result", (long long)fixed_item);
            assert_string_equal(it_json_str(res, "method"), "review");
            assert_true(json_number_value(json_object_get(res, "confidence")) == 1.0);
            assert_string_equal(it_json_str(res, "state"), "done");
            json_decref(res);
        }
        json_t *h = history_of(rejected_item);
        assert_true(history_has(h, "review", "verdict", "reject"));
        assert_true(history_has(h, "rework", "comment", "look again at the ears"));
        json_decref(h);
        /* The rejected item is labeled afresh by workers who had not seen it, and
         * their tasks carry the reviewer's comment. */
        g.note_item = rejected_item;
        run_crowd(crowd, CROWD, project, &items);
        assert_true(g.notes_seen >= 3);
        g.note_item = 0;
        h = history_of(rejected_item);
        size_t done_events = 0, i;
        json_t *ev;
        json_array_foreach(h, i, ev)
            done_events += strcmp(it_json_str(ev, "kind"), "done") == 0 || strcmp(it_json_str(ev, "kind"), "to_review") == 0;
        assert_true(done_events >= 2);   /* aggregated before and after the rework */
        json_decref(h);
        review_all(project, &items, "accept", &reviews, NULL);
    }
    stats = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/stats", (long long)project);
    assert_int_equal(state_count(stats, "review"), 0);
    assert_int_equal(state_count(stats, "done"), WORK);
    assert_int_equal(it_json_int(stats, "workers_stopped"), 1);
    assert_int_equal(it_json_int(stats, "workers_failed"), 1);
    assert_true(it_json_int(stats, "excluded_judgments") >= spammer.work_judged);
    json_t *alpha = json_object_get(json_object_get(json_object_get(stats, "agreement"), "label"), "alpha");
    assert_true(json_is_number(alpha));
    assert_true(json_number_value(alpha) > 0.5);
    json_decref(stats);

    /* 7. Acceptance: a lot of 12 (code letter B, AQL 1.0 -> n 13 >= 12: every item
     * inspected, Ac 0 Re 1), all right: accepted, its results released. */
    json_t *lot = it_json_requestf(&g.srv, "POST", g.mgr, "{\"size\":12,\"seed\":7}", 201, "/v1/projects/%lld/acceptance", (long long)project);
    int64_t lot1 = it_json_int(lot, "id");
    assert_int_equal(it_json_int(lot, "lot_size"), 12);
    assert_int_equal(it_json_int(lot, "sample_size"), 12);
    assert_int_equal(it_json_int(lot, "accept_number"), 0);
    assert_int_equal(it_json_int(lot, "reject_number"), 1);
    assert_string_equal(it_json_str(lot, "code_letter"), "B");
    assert_string_equal(it_json_str(lot, "state"), "open");
    json_t *verdicts = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(lot, "sample"), i, s) {
        const char *label = it_json_str(json_object_get(s, "answer"), "label");
        int64_t item = it_json_int(s, "item_id");
        /* The customer checks each sampled result against the truth. */
        json_array_append_new(verdicts, json_pack("{s:I,s:s}", "item_id", (json_int_t)item, "verdict",
                                                  strcmp(label, truth_of(name_of(&items, item))) == 0 ? "ok" : "defect"));
    }
    json_decref(lot);
    json_t *vbody = json_pack("{s:o}", "verdicts", verdicts);
    char *vtext = json_dumps(vbody, JSON_COMPACT);
    json_decref(vbody);
    lot = it_json_requestf(&g.srv, "POST", g.consumer, vtext, 200, "/v1/lots/%lld/verdicts", (long long)lot1);
    free(vtext);
    assert_string_equal(it_json_str(lot, "state"), "accepted");
    assert_int_equal(it_json_int(lot, "defects"), 0);
    json_decref(lot);
    json_t *released = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/results?state=released&limit=100", (long long)project);
    assert_int_equal(json_array_size(json_object_get(released, "items")), 12);
    json_array_foreach(json_object_get(released, "items"), i, s) {
        assert_string_equal(it_json_str(json_object_get(s, "answer"), "label"),
                            truth_of(name_of(&items, it_json_int(s, "item_id"))));
        double c = json_number_value(json_object_get(s, "confidence"));
        assert_true(c >= 0 && c <= 1);
        assert_non_null(json_object_get(s, "method"));
    }
    json_decref(released);

    /* 8. The rest in a second lot; the customer finds one defect: rejected, and the
     * whole lot goes back to review. */
    lot = it_json_requestf(&g.srv, "POST", g.mgr, "{\"seed\":8}", 201, "/v1/projects/%lld/acceptance", (long long)project);
    int64_t lot2 = it_json_int(lot, "id");
    assert_int_equal(it_json_int(lot, "lot_size"), WORK - 12);
    int64_t defect_item = it_json_int(json_array_get(json_object_get(lot, "sample"), 0), "item_id");
    json_decref(lot);
    char dbody[160];
    snprintf(dbody, sizeof dbody, "{\"verdicts\":[{\"item_id\":%lld,\"verdict\":\"defect\",\"comment\":\"wrong\"}]}",
             (long long)defect_item);
    lot = it_json_requestf(&g.srv, "POST", g.mgr, dbody, 200, "/v1/lots/%lld/verdicts", (long long)lot2);
    assert_string_equal(it_json_str(lot, "state"), "rejected");
    json_decref(lot);
    stats = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/stats", (long long)project);
    assert_int_equal(state_count(stats, "review"), WORK - 12);
    assert_int_equal(state_count(stats, "released"), 12);
    assert_int_equal(it_json_int(json_object_get(stats, "lots"), "accepted"), 1);
    assert_int_equal(it_json_int(json_object_get(stats, "lots"), "rejected"), 1);
    assert_true(json_is_number(json_object_get(stats, "estimated_accuracy")));
    json_decref(stats);
    /* A decided lot takes no more verdicts. */
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, dbody, 409, "lot_decided", "/v1/lots/%lld/verdicts", (long long)lot2);

    /* Reviewed again and accepted in a new lot: every result released and right. */
    review_all(project, &items, "accept", &reviews, NULL);
    lot = it_json_requestf(&g.srv, "POST", g.mgr, NULL, 201, "/v1/projects/%lld/acceptance", (long long)project);
    int64_t lot3 = it_json_int(lot, "id");
    verdicts = json_array();
    json_array_foreach(json_object_get(lot, "sample"), i, s)
        json_array_append_new(verdicts, json_pack("{s:I,s:s}", "item_id", (json_int_t)it_json_int(s, "item_id"),
                                                  "verdict", "ok"));
    json_decref(lot);
    vbody = json_pack("{s:o}", "verdicts", verdicts);
    vtext = json_dumps(vbody, JSON_COMPACT);
    json_decref(vbody);
    lot = it_json_requestf(&g.srv, "POST", g.mgr, vtext, 200, "/v1/lots/%lld/verdicts", (long long)lot3);
    free(vtext);
    assert_string_equal(it_json_str(lot, "state"), "accepted");
    json_decref(lot);
    released = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/results?state=released&limit=100", (long long)project);
    assert_int_equal(json_array_size(json_object_get(released, "items")), WORK);
    json_array_foreach(json_object_get(released, "items"), i, s)
        assert_string_equal(it_json_str(json_object_get(s, "answer"), "label"),
                            truth_of(name_of(&items, it_json_int(s, "item_id"))));
    json_decref(released);
    /* Nothing left to accept. */
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, NULL, 409, "nothing_to_accept", "/v1/projects/%lld/acceptance",
                     (long long)project);

    free(failer.token);
    free(spammer.token);
    for (int k = 0; k < CROWD; k++)
        free(crowd[k].token);
}

static void test_gold_shortage(void **state)
{
    (void)state;
    char body[512];
    snprintf(body, sizeof body, "{\"name\":\"shortage-%d\",\"media\":\"image\",\"template\":%s}", ++g.seq, TEMPLATE);
    json_t *created = it_json_requestf(&g.srv, "POST", g.mgr, body, 201, "/v1/projects");
    int64_t project = it_json_int(created, "id");
    assert_non_null(json_object_get(created, "warnings"));
    json_decref(created);
    it_add_jpegs(&g.srv, g.mgr, project, "shortage", "q", 3, 1);
    /* Default workflow: a quiz of 4, and no test question at all. */
    worker w = make_worker(HONEST);
    IT_EXPECT_ERRORF(&g.srv, "POST", w.token, NULL, 403, "not_enough_test_questions", "/v1/projects/%lld/work/next",
                     (long long)project);
    json_t *stats = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/stats", (long long)project);
    assert_false(json_is_true(json_object_get(json_object_get(stats, "test_questions"), "enough")));
    assert_string_equal(it_json_str(json_array_get(json_object_get(stats, "warnings"), 0), "code"),
                        "not_enough_test_questions");
    json_decref(stats);
    /* Resuming tells the manager again. */
    json_t *resumed = it_json_requestf(&g.srv, "POST", g.mgr, NULL, 200, "/v1/projects/%lld/resume", (long long)project);
    assert_non_null(json_object_get(resumed, "warnings"));
    json_decref(resumed);
    free(w.token);
}

static void test_bad_input(void **state)
{
    (void)state;
    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"bad-%d\",\"media\":\"image\",\"template\":%s,\"workflow\":{\"overlap\":1,\"quiz\":{\"size\":0},"
             "\"gold_rate\":0,\"min_trust\":0,\"min_confidence\":0,\"review\":{\"sample_rate\":1}}}",
             ++g.seq, TEMPLATE);
    json_t *created = it_json_requestf(&g.srv, "POST", g.mgr, body, 201, "/v1/projects");
    int64_t project = it_json_int(created, "id");
    assert_null(json_object_get(created, "warnings"));   /* no quiz, no gold: nothing needed */
    json_decref(created);
    it_add_jpegs(&g.srv, g.mgr, project, "bad", "q", 2, 1);
    item_map items;
    load_items(project, &items);
    worker w = make_worker(HONEST);
    assert_int_equal(work_once(&w, project, &items), 1);
    assert_int_equal(work_once(&w, project, &items), 1);
    /* Wait for the background aggregation to put both in review (sample_rate 1). */
    long long deadline = it_now_ms() + 20000;
    for (;;) {
        json_t *stats = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/stats", (long long)project);
        int64_t n = state_count(stats, "review");
        json_decref(stats);
        if (n == 2)
            break;
        assert_true(it_now_ms() < deadline);
        it_sleep_ms(100);
    }
    /* Workers below the reviewer trust may not review; they cannot see the worker table. */
    IT_EXPECT_ERRORF(&g.srv, "POST", w.token, NULL, 403, "not_a_reviewer", "/v1/projects/%lld/review/next",
                     (long long)project);
    IT_EXPECT_STATUSF(&g.srv, "GET", w.token, NULL, 404, "/v1/projects/%lld/workers", (long long)project);
    IT_EXPECT_STATUSF(&g.srv, "GET", w.token, NULL, 404, "/v1/projects/%lld/results", (long long)project);
    json_t *task = it_json_requestf(&g.srv, "POST", g.mgr, NULL, 200, "/v1/projects/%lld/review/next", (long long)project);
    int64_t review = it_json_int(task, "review_id");
    json_decref(task);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{\"verdict\":\"maybe\"}", 400, "invalid_verdict", "/v1/reviews/%lld",
                     (long long)review);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{\"verdict\":\"fix\"}", 400, "missing_field", "/v1/reviews/%lld",
                     (long long)review);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{\"verdict\":\"fix\",\"answer\":{\"label\":\"horse\"}}", 422,
                     "invalid_answer", "/v1/reviews/%lld", (long long)review);
    IT_EXPECT_STATUSF(&g.srv, "POST", g.mgr, "{\"verdict\":\"accept\",\"extra\":1}", 400, "/v1/reviews/%lld",
                     (long long)review);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{\"verdict\":", 400, "invalid_json", "/v1/reviews/%lld", (long long)review);
    /* Another user's review is not found. */
    char *mgr2 = it_new_user(&g.srv, &g.seq, "manager");
    IT_EXPECT_ERRORF(&g.srv, "POST", mgr2, "{\"verdict\":\"accept\"}", 404, "not_found", "/v1/reviews/%lld",
                     (long long)review);
    json_t *ok = it_json_requestf(&g.srv, "POST", g.mgr, "{\"verdict\":\"accept\"}", 200, "/v1/reviews/%lld", (long long)review);
    json_decref(ok);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{\"verdict\":\"accept\"}", 409, "already_reviewed", "/v1/reviews/%lld",
                     (long long)review);
    /* A lot of the one done item; bad verdicts change nothing. */
    json_t *lot = it_json_requestf(&g.srv, "POST", g.mgr, "{}", 201, "/v1/projects/%lld/acceptance", (long long)project);
    int64_t lot_id = it_json_int(lot, "id");
    int64_t sampled = it_json_int(json_array_get(json_object_get(lot, "sample"), 0), "item_id");
    json_decref(lot);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{\"verdicts\":[{\"item_id\":1,\"verdict\":\"bad\"}]}", 400,
                     "invalid_verdict", "/v1/lots/%lld/verdicts", (long long)lot_id);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{\"verdicts\":[{\"item_id\":987654,\"verdict\":\"ok\"}]}", 404,
                     "not_in_sample", "/v1/lots/%lld/verdicts", (long long)lot_id);
    IT_EXPECT_STATUSF(&g.srv, "POST", g.mgr, "{\"verdicts\":3}", 400, "/v1/lots/%lld/verdicts", (long long)lot_id);
    IT_EXPECT_STATUSF(&g.srv, "POST", g.mgr, "{\"size\":-1}", 400, "/v1/projects/%lld/acceptance",
                     (long long)project);
    IT_EXPECT_STATUSF(&g.srv, "GET", g.mgr, NULL, 404, "/v1/lots/987654");
    lot = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/lots/%lld", (long long)lot_id);
    assert_string_equal(it_json_str(lot, "state"), "open");
    assert_int_equal(it_json_int(lot, "judged"), 0);
    assert_int_equal(it_json_int(json_array_get(json_object_get(lot, "sample"), 0), "item_id"), sampled);
    json_decref(lot);
    /* Bad imports. */
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{\"format\":\"xml\",\"data\":\"x\"}", 400, "invalid_format",
                     "/v1/projects/%lld/judgments/import", (long long)project);
    IT_EXPECT_ERRORF(&g.srv, "POST", g.mgr, "{}", 400, "missing_field", "/v1/projects/%lld/judgments/import",
                     (long long)project);
    free(mgr2);
    free(w.token);
}

/* Automatic checks: a worker who always answers "cat" and judges too fast. */
static void test_automatic_checks(void **state)
{
    (void)state;
    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"checks-%d\",\"media\":\"image\",\"template\":%s,\"workflow\":{\"overlap\":1,"
             "\"quiz\":{\"size\":0},\"gold_rate\":0,\"min_trust\":0,\"min_confidence\":0,"
             "\"checks\":{\"same_answer_min\":3,\"min_duration_ms\":1000}}}",
             ++g.seq, TEMPLATE);
    int64_t project = it_post_project(&g.srv, g.mgr, body);
    it_add_jpegs(&g.srv, g.mgr, project, "checks", "q", 4, 1);
    worker w = make_worker(HONEST);
    for (int k = 0; k < 4; k++) {
        int64_t item = 0;
        int64_t a = it_take(&g.srv, w.token, project, &item);
        /* Always "cat"; the last one in 200 ms, under the 1,000 ms floor. */
        const char *answer = k == 3 ? "{\"answer\":{\"label\":\"cat\"},\"duration_ms\":200}"
                                    : "{\"answer\":{\"label\":\"cat\"},\"duration_ms\":3000}";
        json_t *ok = it_json_requestf(&g.srv, "POST", w.token, answer, 200, "/v1/assignments/%lld/submit", (long long)a);
        json_decref(ok);
        if (k == 2)
            it_sleep_ms(800);   /* let the first three be aggregated before the fourth */
    }
    long long deadline = it_now_ms() + 20000;
    json_t *results = NULL;
    for (;;) {
        results = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/results?limit=10", (long long)project);
        if (json_array_size(json_object_get(results, "items")) == 4)
            break;
        json_decref(results);
        assert_true(it_now_ms() < deadline);
        it_sleep_ms(100);
    }
    /* The worker is flagged; results made with their judgments are flagged for review,
     * and the fast judgment's result says so. */
    json_t *row = worker_row(project, w.id);
    json_t *flags = json_object_get(row, "flags");
    assert_true(json_is_array(flags));
    assert_string_equal(json_string_value(json_array_get(flags, 0)), "same_answer");
    json_decref(row);
    int flagged = 0, too_fast = 0;
    size_t i, k;
    json_t *res, *f;
    json_array_foreach(json_object_get(results, "items"), i, res) {
        json_t *fl = json_object_get(res, "flags");
        if (!json_is_array(fl))
            continue;
        flagged++;
        assert_string_equal(it_json_str(res, "state"), "review");
        json_array_foreach(fl, k, f)
            too_fast += strcmp(json_string_value(f), "too_fast") == 0;
    }
    assert_true(flagged >= 1);
    assert_int_equal(too_fast, 1);
    json_decref(results);
    free(w.token);
}

/* ---- import of a real crowd: the duck dataset ------------------------------------- */

static char *read_text(const char *rel)
{
    size_t len;
    unsigned char *data = it_load_test_data(rel, &len);
    assert_non_null(data);
    char *s = realloc(data, len + 1);
    assert_non_null(s);
    s[len] = 0;
    return s;
}

static void test_import_duck(void **state)
{
    (void)state;
    char *answers = read_text("crowd/duck/answer.csv");
    char *truth = read_text("crowd/duck/truth.csv");
    /* The questions, in order of first appearance. */
    static long questions[200];
    int nq = 0;
    char *save = NULL, *copy = strdup(truth);
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        long q;
        int t;
        if (sscanf(l, "%ld,%d", &q, &t) == 2 && nq < 200)
            questions[nq++] = q;
    }
    free(copy);
    assert_int_equal(nq, 108);
    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"duck-%d\",\"media\":\"image\",\"template\":{\"controls\":[{\"name\":\"duck\",\"type\":"
             "\"choice\",\"options\":[\"0\",\"1\"]}]},\"workflow\":{\"overlap\":1,\"quiz\":{\"size\":0},"
             "\"gold_rate\":0,\"min_trust\":0,\"min_confidence\":0}}",
             ++g.seq);
    int64_t project = it_post_project(&g.srv, g.mgr, body);
    /* One item per question, named d<question>.jpg. */
    size_t len;
    unsigned char *base = it_load_test_data("photo.jpg", &len);
    int64_t batch = it_create_batch(&g.srv, g.mgr, project, "duck", NULL);
    for (int i = 0; i < nq; i++) {
        size_t vl;
        unsigned char *v = it_jpeg_variant(base, len, "duck", (int)questions[i], &vl);
        char name[48];
        snprintf(name, sizeof name, "d%ld.jpg", questions[i]);
        it_response r;
        assert_int_equal(it_upload_bytes(&g.srv, g.mgr, batch, name, v, vl, &r), 0);
        IT_ASSERT_STATUS(r, 201);
        it_response_free(&r);
        free(v);
    }
    free(base);
    it_finish_batch(&g.srv, g.mgr, batch, nq);
    /* answer.csv "question,worker,answer" -> "d<question>.jpg,<worker>,<answer>". */
    size_t cap = strlen(answers) * 2 + 64, off = 0;
    char *csv = malloc(cap);
    off += (size_t)snprintf(csv, cap, "item,worker,answer\n");
    int lines = 0;
    copy = strdup(answers);
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        long q, w;
        int a;
        if (sscanf(l, "%ld,%ld,%d", &q, &w, &a) != 3)
            continue;
        off += (size_t)snprintf(csv + off, cap - off, "d%ld.jpg,%ld,%d\n", q, w, a);
        lines++;
    }
    free(copy);
    /* And one bad line: an option the template does not have. */
    off += (size_t)snprintf(csv + off, cap - off, "d%ld.jpg,999999,7\n", questions[0]);
    json_t *req = json_pack("{s:s,s:s}", "format", "csv", "data", csv);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    free(csv);
    json_t *out = it_json_requestf(&g.srv, "POST", g.mgr, text, 200, "/v1/projects/%lld/judgments/import", (long long)project);
    free(text);
    assert_int_equal(it_json_int(out, "imported"), lines);
    assert_int_equal(it_json_int(out, "rejected"), 1);
    json_t *e0 = json_array_get(json_object_get(out, "errors"), 0);
    assert_int_equal(it_json_int(e0, "line"), lines + 2);
    assert_string_equal(it_json_str(e0, "code"), "invalid_answer");
    json_decref(out);
    /* Aggregated in the background. */
    long long deadline = it_now_ms() + 30000;
    json_t *results = NULL;
    for (;;) {
        results = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/results?limit=200", (long long)project);
        if (json_array_size(json_object_get(results, "items")) == (size_t)nq)
            break;
        json_decref(results);
        assert_true(it_now_ms() < deadline);
        it_sleep_ms(200);
    }
    item_map items;
    load_items(project, &items);
    int right = 0;
    size_t i;
    json_t *res;
    json_array_foreach(json_object_get(results, "items"), i, res) {
        const char *name = name_of(&items, it_json_int(res, "item_id"));
        long q = atol(name + 1);
        char key[32];
        snprintf(key, sizeof key, "\n%ld,", q);
        const char *t = strstr(truth, key);
        assert_non_null(t);
        int want = atoi(t + strlen(key));
        const char *got = it_json_str(json_object_get(res, "answer"), "duck");
        right += atoi(got) == want;
        assert_string_equal(it_json_str(res, "method"), "dawid_skene");
    }
    json_decref(results);
    double accuracy = (double)right / nq;
    /* Published: majority vote 0.7593, Dawid-Skene 0.8981 on this dataset. */
    fprintf(stderr, "duck imported and aggregated: accuracy %.4f\n", accuracy);
    assert_true(accuracy > 0.85);
    json_t *stats = it_json_requestf(&g.srv, "GET", g.mgr, NULL, 200, "/v1/projects/%lld/stats", (long long)project);
    assert_int_equal(it_json_int(stats, "judgments"), lines);
    json_decref(stats);
    free(answers);
    free(truth);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gold_shortage),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_automatic_checks),
        cmocka_unit_test(test_import_duck),
        cmocka_unit_test(test_whole_project),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
