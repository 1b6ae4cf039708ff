/* task.c -- fetching, submitting and skipping one assignment (work.h).
 *
 * The reply of work/next is kept whole in the task; everything else borrows from it.
 * Errors keep the server's own message (without the "(HTTP n)" suffix http.c adds),
 * because a worker reads it to fix the answer.
 */
#include "tools/tally/work.h"

#include "core/timeutil.h"

#include <string.h>

int tc_task_next(tc_http *h, int64_t project, tc_task *t, tly_error *err)
{
    memset(t, 0, sizeof *t);
    char path[96];
    snprintf(path, sizeof path, "/v1/projects/%lld/work/next", (long long)project);
    tc_resp r;
    tc_resp_init(&r);
    if (tc_http_json(h, "POST", path, NULL, &r, err) < 0) {
        tc_resp_free(&r);
        return -1;
    }
    if (r.status == 204) {
        tc_resp_free(&r);
        return 0;
    }
    int64_t a = tc_jint(r.json, "assignment_id");
    const json_t *item = json_object_get(r.json, "item");
    const json_t *controls = json_object_get(json_object_get(r.json, "template"), "controls");
    if (a <= 0 || !json_is_object(item) || !json_is_array(controls)) {
        tc_resp_free(&r);
        return tly_fail(err, TLY_E_IO, "bad_reply",
                        "POST %s: the reply has no assignment_id, item or template.controls",
                        path);
    }
    t->reply = json_incref(r.json);
    t->assignment_id = a;
    t->item = item;
    t->item_id = tc_jint(item, "id");
    t->media = json_object_get(item, "media");
    t->controls = controls;
    /* the suggestion: {"answer":{...},"model",...} or the answer object itself */
    const json_t *pre = json_object_get(r.json, "prelabel");
    if (json_is_object(json_object_get(pre, "answer")))
        pre = json_object_get(pre, "answer");
    t->prelabel = json_is_object(pre) ? pre : NULL;
    t->shown_ns = tly_mono_ns();
    tc_resp_free(&r);
    return 1;
}

void tc_task_free(tc_task *t)
{
    json_decref(t->reply);
    memset(t, 0, sizeof *t);
}

/* err's message = the server's plain message when the reply carries one. */
static void plain_message(const tc_resp *r, tly_error *err)
{
    const char *m = json_string_value(
        json_object_get(json_object_get(r->json, "error"), "message"));
    if (m)
        snprintf(err->message, sizeof err->message, "%s", m);
}

tc_submit_result tc_task_submit(tc_http *h, const tc_task *t, json_t *answer,
                                int64_t duration_ms, json_t **reply, tly_error *err)
{
    if (reply)
        *reply = NULL;
    if (duration_ms < 0)
        duration_ms = (tly_mono_ns() - t->shown_ns) / 1000000;
    if (duration_ms < 0)
        duration_ms = 0;
    if (duration_ms > TC_MAX_DURATION_MS)
        duration_ms = TC_MAX_DURATION_MS;
    json_t *body = json_pack("{s:O, s:I}", "answer", answer, "duration_ms", (json_int_t)duration_ms);
    if (!body) {
        tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
        return TC_SUBMIT_FAIL;
    }
    char path[96];
    snprintf(path, sizeof path, "/v1/assignments/%lld/submit", (long long)t->assignment_id);
    tc_resp r;
    tc_resp_init(&r);
    int rc = tc_http_json(h, "POST", path, body, &r, err);
    json_decref(body);
    tc_submit_result res = TC_SUBMIT_OK;
    if (rc == 0) {
        if (reply && r.json)
            *reply = json_incref(r.json);
    } else if (r.status == 409 && strcmp(err->code, "lease_expired") == 0) {
        res = TC_SUBMIT_EXPIRED;
    } else if (r.status == 409) {
        res = TC_SUBMIT_CONFLICT;
    } else if (r.status == 422 || r.status == 400) {
        res = TC_SUBMIT_REJECTED;
    } else {
        res = TC_SUBMIT_FAIL;
    }
    if (res != TC_SUBMIT_OK && res != TC_SUBMIT_FAIL)
        plain_message(&r, err);
    tc_resp_free(&r);
    return res;
}

int tc_task_skip(tc_http *h, const tc_task *t, tly_error *err)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/assignments/%lld/skip", (long long)t->assignment_id);
    tc_resp r;
    tc_resp_init(&r);
    int rc = tc_http_json(h, "POST", path, NULL, &r, err);
    tc_resp_free(&r);
    return rc;
}

void tc_print_feedback(FILE *f, const json_t *reply)
{
    const json_t *fb = json_object_get(reply, "feedback");
    if (!fb || json_is_null(fb))
        return;
    if (json_is_string(fb)) {
        fprintf(f, "feedback: %s\n", json_string_value(fb));
        return;
    }
    fputs("feedback: ", f);
    if (json_dumpf(fb, f, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0)
        fputc('\n', f);
}
