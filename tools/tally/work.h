/* work.h -- one crowd-work assignment as the worker commands see it, and the three
 * calls made on it (task.c); the interactive loop (work.c) and the scripted one
 * (work_script.c) are both built from these.
 *
 * A tc_task owns the parsed POST /v1/projects/{id}/work/next reply; item, media,
 * controls and prelabel point into it and live as long as the task.
 */
#ifndef TALLY_CLI_WORK_H
#define TALLY_CLI_WORK_H

#include "tools/tally/cli.h"

#include <jansson.h>
#include <stdint.h>

#define TC_MAX_DURATION_MS 86400000LL /* the API's upper bound for duration_ms */

typedef struct {
    json_t *reply;            /* owned */
    int64_t assignment_id;
    int64_t item_id;
    const json_t *item;       /* borrowed from reply */
    const json_t *media;      /* item.media, may be NULL */
    const json_t *controls;   /* template.controls (an array) */
    const json_t *prelabel;   /* suggested answer keyed by control name, or NULL */
    int64_t shown_ns;         /* monotonic time the task arrived */
} tc_task;

typedef enum {
    TC_SUBMIT_OK,        /* 200: the judgment is durable */
    TC_SUBMIT_REJECTED,  /* 422 invalid_answer (or another 4xx about the body) */
    TC_SUBMIT_EXPIRED,   /* 409 lease_expired */
    TC_SUBMIT_CONFLICT,  /* another 409: already_submitted, assignment_skipped */
    TC_SUBMIT_FAIL       /* transport, auth, server errors: stop */
} tc_submit_result;

/* 1 with *t filled, 0 when nothing is eligible (204), -1 with err. */
int tc_task_next(tc_http *h, int64_t project, tc_task *t, tly_error *err);
void tc_task_free(tc_task *t);

/* Submit answer (borrowed) with duration_ms (clamped to the API's range; < 0: the
 * time since the task arrived). On TC_SUBMIT_OK *reply (optional) gets the response
 * (new reference); on any other result err->message holds the server's message. */
tc_submit_result tc_task_submit(tc_http *h, const tc_task *t, json_t *answer,
                                int64_t duration_ms, json_t **reply, tly_error *err);
/* POST skip; 0 or -1 with err. */
int tc_task_skip(tc_http *h, const tc_task *t, tly_error *err);

/* "feedback: ..." for a submit reply that carries one (a string as is, anything
 * else as compact JSON); nothing otherwise. */
void tc_print_feedback(FILE *f, const json_t *reply);

/* The scripted mode of `tally work` (work_script.c); an exit code. */
int tc_work_script(tc_ctx *ctx, int64_t project, const char *answers_path, int64_t limit);

#endif
