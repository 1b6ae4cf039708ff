/* test_qa_standing.c -- the worker model's arithmetic (qa/standing.h) and the
 * automatic checks (qa/checks.h), on hand-computed cases. */
#include "qa/checks.h"
#include "qa/standing.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static int near(double a, double b)
{
    return a - b < 1e-9 && b - a < 1e-9;
}

static tly_quality_rules rules(void)
{
    json_t *wf = json_pack("{s:f,s:f,s:{s:i,s:f}}", "gold_rate", 0.25, "min_trust", 0.8, "quiz", "size", 4, "pass", 0.75);
    tly_quality_rules r;
    tly_quality_rules_of(wf, &r);   /* trust prior and cap from the defaults */
    json_decref(wf);
    return r;
}

static void test_trust_prior(void **state)
{
    (void)state;
    tly_quality_rules r = rules();
    assert_true(near(r.prior_correct, 3) && near(r.prior_wrong, 1));
    assert_true(near(tly_trust_of(0, 0, &r), 0.75));          /* (0+3)/(0+4) */
    assert_true(near(tly_trust_of(4, 4, &r), 7.0 / 8.0));
    assert_true(near(tly_trust_of(5, 10, &r), 8.0 / 14.0));
    r.prior_correct = r.prior_wrong = 0;
    assert_true(near(tly_trust_of(0, 0, &r), 1.0));            /* no prior, no evidence */
}

static void test_quiz_pass_and_fail(void **state)
{
    (void)state;
    tly_quality_rules r = rules();
    tly_project_worker w;
    tly_standing_new(1, 2, &r, &w);
    assert_string_equal(w.mode, "quiz");
    assert_string_equal(w.status, "active");
    /* 3 of 4 = 0.75 >= pass: passed; trust (3+3)/(4+4) = 0.75 < 0.8 though: stopped. */
    assert_int_equal(tly_standing_grade(&w, 1, 1, &r), TLY_STANDING_SAME);
    assert_int_equal(tly_standing_grade(&w, 1, 1, &r), TLY_STANDING_SAME);
    assert_int_equal(tly_standing_grade(&w, 1, 0, &r), TLY_STANDING_SAME);
    assert_int_equal(tly_standing_grade(&w, 1, 1, &r), TLY_STANDING_STOPPED);
    assert_string_equal(w.mode, "work");
    assert_string_equal(w.status, "stopped");
    assert_true(strstr(w.reason, "trust") != NULL);
    /* 4 of 4: passed, trust 7/8. One wrong gold in work: 7/9 = 0.778 < 0.8: stopped. */
    tly_standing_new(1, 3, &r, &w);
    for (int i = 0; i < 3; i++)
        assert_int_equal(tly_standing_grade(&w, 1, 1, &r), TLY_STANDING_SAME);
    assert_int_equal(tly_standing_grade(&w, 1, 1, &r), TLY_STANDING_QUIZ_PASSED);
    assert_string_equal(w.mode, "work");
    assert_true(near(w.trust, 7.0 / 8.0));
    assert_int_equal(tly_standing_grade(&w, 0, 0, &r), TLY_STANDING_STOPPED); /* (4+3)/(5+4) = 0.778 */
    assert_true(near(w.trust, 7.0 / 9.0));
    assert_int_equal(w.gold_seen, 5);
    assert_int_equal(w.gold_correct, 4);
    /* 2 of 4 < 0.75: failed, out of the project. */
    tly_standing_new(1, 4, &r, &w);
    tly_standing_grade(&w, 1, 0, &r);
    tly_standing_grade(&w, 1, 1, &r);
    tly_standing_grade(&w, 1, 0, &r);
    assert_int_equal(tly_standing_grade(&w, 1, 1, &r), TLY_STANDING_QUIZ_FAILED);
    assert_string_equal(w.status, "failed");
    assert_int_equal(w.quiz_seen, 4);
    assert_int_equal(w.quiz_correct, 2);
    /* No quiz: straight to work. */
    r.quiz_size = 0;
    tly_standing_new(1, 5, &r, &w);
    assert_string_equal(w.mode, "work");
}

static void test_gold_mixing(void **state)
{
    (void)state;
    /* rate 0.25: deficit after n tasks with g gold = 0.25 (n + 1) - g */
    assert_true(near(tly_gold_deficit(0.25, 0, 0), 0.25));
    assert_true(near(tly_gold_deficit(0.25, 3, 0), 1.0));
    assert_int_equal(tly_gold_due(0.25, 0, 0, 0.3), 0);   /* u above the deficit */
    assert_int_equal(tly_gold_due(0.25, 0, 0, 0.2), 1);   /* u below it */
    assert_int_equal(tly_gold_due(0.25, 3, 0, 0.99), 1);  /* deficit 1: due for sure */
    assert_int_equal(tly_gold_due(0.25, 3, 1, 0.0), 0);   /* deficit 0: never */
    assert_int_equal(tly_gold_due(0, 100, 0, 0.0), 0);
    /* Simulated with a worst-case u stream, the share stays within one of the rate. */
    int64_t gold = 0;
    for (int64_t n = 0; n < 1000; n++) {
        gold += tly_gold_due(0.1, n, gold, (n % 7) / 7.0);
        assert_true((double)gold >= 0.1 * (n + 1) - 1 - 1e-9 && (double)gold <= 0.1 * (n + 1) + 1 + 1e-9);
    }
    /* Supply needed: quiz 4 + ceil(24 x 0.25 / 0.75) = 12; with a cap of 8: 4 + 3 = 7. */
    tly_quality_rules r = rules();
    assert_int_equal(tly_gold_needed(&r, 24), 12);
    r.per_worker_cap = 8;
    assert_int_equal(tly_gold_needed(&r, 24), 7);
    r.gold_rate = 0;
    assert_int_equal(tly_gold_needed(&r, 24), 4);
}

static int has_flag(json_t *flags, const char *f)
{
    size_t i;
    json_t *v;
    json_array_foreach(flags, i, v)
        if (strcmp(json_string_value(v), f) == 0)
            return 1;
    return 0;
}

static void test_checks(void **state)
{
    (void)state;
    json_t *tmpl = json_loads("{\"controls\":[{\"name\":\"boxes\",\"type\":\"bbox\",\"labels\":[\"car\"]},"
                              "{\"name\":\"segs\",\"type\":\"audio_segments\",\"labels\":[\"speech\"]},"
                              "{\"name\":\"text\",\"type\":\"transcription\"}]}",
                              0, NULL);
    json_t *wf = json_pack("{s:{s:f,s:i}}", "checks", "min_box_px", 4.0, "min_duration_ms", 1000);
    tly_check_rules r;
    tly_check_rules_of(wf, &r);
    assert_true(near(r.min_box_px, 4) && r.segments_overlap && r.empty_transcription && r.min_duration_ms == 1000);
    json_t *answer = json_loads("{\"boxes\":[{\"label\":\"car\",\"x\":1,\"y\":1,\"w\":3,\"h\":10}],"
                                "\"segs\":[{\"label\":\"speech\",\"start\":0,\"end\":2},{\"label\":\"speech\",\"start\":1.5,\"end\":3}],"
                                "\"text\":\"  \"}",
                                0, NULL);
    tly_judgment js[2] = {{.duration_ms = 400}, {.duration_ms = 0}};
    json_t *flags = json_array();
    tly_checks_result(tmpl, answer, js, 2, &r, flags);
    assert_true(has_flag(flags, "box_too_small:boxes"));
    assert_true(has_flag(flags, "segments_overlap:segs"));
    assert_true(has_flag(flags, "empty_transcription:text"));
    assert_true(has_flag(flags, "too_fast"));
    assert_int_equal(json_array_size(flags), 4);
    json_decref(flags);
    /* A clean answer raises nothing; duration 0 (not reported) is not "too fast". */
    json_t *clean = json_loads("{\"boxes\":[{\"label\":\"car\",\"x\":1,\"y\":1,\"w\":30,\"h\":10}],"
                               "\"segs\":[{\"label\":\"speech\",\"start\":0,\"end\":1},{\"label\":\"speech\",\"start\":1,\"end\":3}],"
                               "\"text\":\"hello\"}",
                               0, NULL);
    flags = json_array();
    js[0].duration_ms = 5000;
    tly_checks_result(tmpl, clean, js, 2, &r, flags);
    assert_int_equal(json_array_size(flags), 0);
    json_decref(flags);
    json_decref(clean);
    json_decref(answer);
    json_decref(wf);
    json_decref(tmpl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trust_prior),
        cmocka_unit_test(test_quiz_pass_and_fail),
        cmocka_unit_test(test_gold_mixing),
        cmocka_unit_test(test_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
