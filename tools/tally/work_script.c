/* work_script.c -- `tally work PROJECT --answers FILE.jsonl`: bulk labeling from a
 * file of prepared answers (see work.c's help for the line format).
 *
 * The whole file is read and checked before the first request, so a typo on line 90
 * does not leave 89 submissions behind a failure. Lines are kept in file order in one
 * owned array; each carries its answer (owned) and whether it has been used. For a
 * task on item N the line keyed to N is used, else the first unused unkeyed line;
 * with neither the task is skipped. A line the server rejects (422) is used up and
 * its task released (skipped), so the next line meets the next task; after an
 * expired lease the line stays available.
 */
#include "tools/tally/work.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINES 1000000
#define MAX_REJECTIONS_SHOWN 100

/* Print a local error and evaluate to -1. */
#define FAIL(...) (tc_fail_local(__VA_ARGS__), -1)

typedef struct {
    size_t lineno;
    int64_t item_id;     /* 0: any task */
    int64_t duration_ms; /* -1: measured */
    json_t *answer;      /* owned */
    int used;
} script_line;

typedef struct {
    script_line *v;
    size_t n, cap;
} script;

static void script_free(script *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        json_decref(sc->v[i].answer);
    free(sc->v);
    memset(sc, 0, sizeof *sc);
}

/* Check one parsed line and append it; -1 after printing why. */
static int add_line(script *sc, const char *path, size_t lineno, json_t *obj)
{
    if (!json_is_object(obj))
        return FAIL("%s:%zu: each line must be a JSON object", path, lineno);
    script_line l = { lineno, 0, -1, NULL, 0 };
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (strcmp(key, "answer") == 0) {
            if (!json_is_object(v))
                return FAIL("%s:%zu: \"answer\" must be an object keyed by control "
                                     "name, e.g. {\"label\":\"cat\"}", path, lineno);
        } else if (strcmp(key, "item_id") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) <= 0)
                return FAIL("%s:%zu: \"item_id\" must be a positive integer", path,
                                     lineno);
            l.item_id = (int64_t)json_integer_value(v);
        } else if (strcmp(key, "duration_ms") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > TC_MAX_DURATION_MS)
                return FAIL("%s:%zu: \"duration_ms\" must be an integer in 0..%lld",
                                     path, lineno, TC_MAX_DURATION_MS);
            l.duration_ms = (int64_t)json_integer_value(v);
        } else if (strcmp(key, "name") == 0 || strcmp(key, "file") == 0) {
            return FAIL("%s:%zu: \"%s\" cannot select a task: workers never see item names; "
                        "use \"item_id\" or no key at all", path, lineno, key);
        } else {
            return FAIL("%s:%zu: unknown key \"%s\" (known: answer, item_id, "
                                 "duration_ms)", path, lineno, key);
        }
    }
    json_t *ans = json_object_get(obj, "answer");
    if (!ans)
        return FAIL("%s:%zu: the line has no \"answer\"", path, lineno);
    for (size_t i = 0; l.item_id && i < sc->n; i++)
        if (sc->v[i].item_id == l.item_id)
            return FAIL("%s:%zu: item %lld already has an answer on line %zu", path,
                                 lineno, (long long)l.item_id, sc->v[i].lineno);
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 64;
        script_line *nv = realloc(sc->v, cap * sizeof *nv);
        if (!nv)
            return FAIL("out of memory");
        sc->v = nv;
        sc->cap = cap;
    }
    l.answer = json_incref(ans);
    sc->v[sc->n++] = l;
    return 0;
}

static int load_script(script *sc, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f)
        return FAIL("cannot open %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&buf, &cap, f)) >= 0) {
        lineno++;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
                         buf[n - 1] == '\t'))
            buf[--n] = '\0';
        size_t lead = strspn(buf, " \t");
        if (buf[lead] == '\0')
            continue; /* blank lines are allowed */
        if (sc->n >= MAX_LINES) {
            rc = FAIL("%s: more than %d answer lines", path, MAX_LINES);
            break;
        }
        json_error_t jerr;
        json_t *obj = json_loads(buf + lead, JSON_REJECT_DUPLICATES, &jerr);
        if (!obj) {
            rc = FAIL("%s:%zu: not valid JSON: %s (column %d)", path, lineno, jerr.text,
                               jerr.column);
            break;
        }
        rc = add_line(sc, path, lineno, obj);
        json_decref(obj);
    }
    if (rc == 0 && ferror(f))
        rc = FAIL("reading %s: %s", path, strerror(errno));
    free(buf);
    if (f != stdin)
        fclose(f);
    if (rc == 0 && sc->n == 0)
        rc = FAIL("%s: no answer lines", path);
    return rc;
}

/* The line for a task on item, or NULL. */
static script_line *pick(script *sc, int64_t item)
{
    script_line *any = NULL;
    for (size_t i = 0; i < sc->n; i++) {
        script_line *l = &sc->v[i];
        if (l->used)
            continue;
        if (l->item_id == item)
            return l;
        if (!l->item_id && !any)
            any = l;
    }
    return any;
}

static size_t unused_lines(const script *sc)
{
    size_t k = 0;
    for (size_t i = 0; i < sc->n; i++)
        k += !sc->v[i].used;
    return k;
}

typedef struct {
    int64_t submitted, skipped, rejected, expired;
    tly_buf rejections; /* "  line L (item I): message\n" ... */
} tally_counts;

static void note_rejection(tally_counts *c, const script_line *l, int64_t item, const char *msg)
{
    c->rejected++;
    if (c->rejected <= MAX_REJECTIONS_SHOWN)
        tly_buf_appendf(&c->rejections, "  rejected line %zu (item %lld): %s\n", l->lineno,
                        (long long)item, msg);
}

int tc_work_script(tc_ctx *ctx, int64_t project, const char *answers_path, int64_t limit)
{
    script sc = { 0 };
    if (load_script(&sc, answers_path) < 0) {
        script_free(&sc);
        return TC_EXIT_FAIL;
    }
    tally_counts c;
    memset(&c, 0, sizeof c);
    tly_buf_init(&c.rejections, 1u << 20);
    const char *why = "nothing left to do";
    int rc = TC_EXIT_OK;
    tly_error err;
    for (;;) {
        if (limit && c.submitted >= limit) {
            why = "--limit reached";
            break;
        }
        if (unused_lines(&sc) == 0) {
            why = "every answer line is used";
            break;
        }
        tc_task t;
        int got = tc_task_next(ctx->http, project, &t, &err);
        if (got < 0) {
            rc = tc_report(&err);
            why = "a request failed";
            break;
        }
        if (got == 0)
            break;
        script_line *l = pick(&sc, t.item_id);
        int release = 0;
        if (!l) {
            release = 1;
            c.skipped++;
        } else {
            tc_submit_result res =
                tc_task_submit(ctx->http, &t, l->answer, l->duration_ms, NULL, &err);
            switch (res) {
            case TC_SUBMIT_OK:
                l->used = 1;
                c.submitted++;
                break;
            case TC_SUBMIT_REJECTED:
            case TC_SUBMIT_CONFLICT:
                l->used = 1;
                note_rejection(&c, l, t.item_id, err.message);
                release = res == TC_SUBMIT_REJECTED;
                break;
            case TC_SUBMIT_EXPIRED:
                c.expired++; /* the line stays available */
                break;
            case TC_SUBMIT_FAIL:
            default:
                rc = tc_report(&err);
                break;
            }
        }
        if (rc == TC_EXIT_OK && release && tc_task_skip(ctx->http, &t, &err) < 0 &&
            strcmp(err.code, "lease_expired") != 0)
            rc = tc_report(&err);
        tc_task_free(&t);
        if (rc != TC_EXIT_OK) {
            why = "a request failed";
            break;
        }
    }
    printf("submitted %lld, skipped %lld, rejected %lld", (long long)c.submitted,
           (long long)c.skipped, (long long)c.rejected);
    if (c.expired)
        printf(", lease expired %lld", (long long)c.expired);
    printf(" (%s)\n", why);
    if (c.rejections.len)
        fputs(c.rejections.data, stdout);
    if (c.rejected > MAX_REJECTIONS_SHOWN)
        printf("  ... and %lld more rejections\n", (long long)(c.rejected - MAX_REJECTIONS_SHOWN));
    size_t left = unused_lines(&sc);
    if (left)
        printf("%zu answer line(s) not used\n", left);
    tly_buf_free(&c.rejections);
    script_free(&sc);
    return rc;
}
