/* work.c -- `tally work PROJECT`: the interactive labeling loop, and the command's
 * option parsing (the scripted --answers mode lives in work_script.c).
 *
 * Loop: fetch a task (POST work/next; 204 ends the session), show it on stdout (item,
 * media size, where to see it, the guidelines the first time, and for each control
 * what it expects), read one line per control from stdin with getline, submit, show
 * the result, repeat. Prompts go to stderr, and only when stdin is a terminal, so a
 * pipe can feed answers ("printf '1\n2\n' | tally work 3"). At any prompt:
 *   s  skip this task      q  skip it and quit (end of input does the same)
 *   g  show the guidelines ?  help
 *   =  take the pre-labeling suggestion for this control (when there is one)
 * A line starting with a backslash is taken literally without it ("\s" is the text s).
 * A 422 shows the server's message and asks the same task again; an expired lease
 * moves on to the next task. The session owns the getline buffer and the guidelines
 * text; each task owns its reply (task.c).
 */
#include "tools/tally/answer.h"
#include "tools/tally/work.h"

#include "core/fsutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DOWNLOAD (4ull << 30) /* far above the server's largest accepted file */

static const tc_help work_help = {
    "work", "PROJECT_ID [--answers FILE.jsonl] [--limit N] [--download DIR]",
    "Label a project's items as a worker, one task at a time.\n"
    "\n"
    "Interactive (the default): shows each task -- item id, media size, the media URL,\n"
    "the project's guidelines (the first time) and every control of the template with\n"
    "what it expects -- and reads one line per control from stdin:\n"
    "  choice          a number from the list or the option's text\n"
    "  multi_choice    comma-separated numbers or texts (1,3); [] for none\n"
    "  text, transcription   one line of text\n"
    "  bbox, polygon, keypoints, audio_segments   a JSON array as in the example shown\n"
    "An optional control may be left empty. At any prompt: s skips the task, q skips it\n"
    "and quits (so the slot is not held; end of input does the same), g shows the\n"
    "guidelines, = takes the pre-labeling suggestion, ? prints help. Start a line with\n"
    "a backslash to type one of these letters as an answer (\\s). An answer the server\n"
    "rejects (422) shows its message and asks the task again; an expired lease moves on.\n"
    "Prompts are printed (on stderr) only when stdin is a terminal, so answers can be\n"
    "piped in. Ends with 0 when no task is left (or after q).\n"
    "\n"
    "--download DIR  also save each task's media as DIR/item-ID.EXT and print the path.\n"
    "--limit N       stop after N submitted answers.\n"
    "\n"
    "Scripted (--answers FILE.jsonl): every line is a JSON object\n"
    "  {\"answer\":{...}}                 used for the next task, whatever it is\n"
    "  {\"item_id\":N,\"answer\":{...}}     used only for the task on item N\n"
    "with an optional \"duration_ms\". Tasks no line applies to are skipped. Items are\n"
    "matched by id only: workers never see file names, so {\"name\":...} is refused.\n"
    "Runs until nothing is left to do, no line applies any more, or --limit; prints\n"
    "a summary (submitted, skipped, rejected with the server's message per rejection;\n"
    "a rejected task is released). Exit 0 unless a request failed outright (network,\n"
    "authentication, server error) or the file is malformed.",
};

typedef enum { ACT_NONE, ACT_SKIP, ACT_QUIT } action;

typedef struct {
    tc_ctx *ctx;
    int64_t project;
    const char *download_dir;
    int64_t limit;
    int tty;
    char *line;          /* getline buffer, owned */
    size_t linecap;
    char *guidelines;    /* owned; NULL until known */
    int guidelines_known;
    int64_t submitted, skipped, rejected;
} session;

static void print_help_keys(void)
{
    fprintf(stderr, "answer the prompt, or type: s = skip this task, q = skip and quit, "
                    "g = guidelines,\n= take the suggestion (if shown), ? = this help; "
                    "\\ at the start of a line makes it literal.\n");
}

/* Read one line into s->line without its line end; 0 at end of input. */
static int read_line(session *s, const char *prompt)
{
    if (s->tty) {
        fprintf(stderr, "%s> ", prompt);
        fflush(stderr);
    }
    fflush(stdout);
    errno = 0;
    ssize_t n = getline(&s->line, &s->linecap, stdin);
    if (n < 0)
        return 0;
    while (n > 0 && (s->line[n - 1] == '\n' || s->line[n - 1] == '\r'))
        s->line[--n] = '\0';
    return 1;
}

/* The one-letter command a line is, or 0. */
static int command_of(const char *line)
{
    while (isspace((unsigned char)*line))
        line++;
    if (!line[0] || strchr("sqg?=", line[0]) == NULL)
        return 0;
    const char *p = line + 1;
    while (isspace((unsigned char)*p))
        p++;
    return *p ? 0 : line[0];
}

/* Guidelines from the task reply, else from GET /v1/projects/{id} (once). */
static void learn_guidelines(session *s, const tc_task *t)
{
    const char *g = json_string_value(json_object_get(t->reply, "guidelines"));
    if (g) {
        if (!s->guidelines || strcmp(s->guidelines, g) != 0) {
            free(s->guidelines);
            s->guidelines = strdup(g);
            s->guidelines_known = 0; /* new or changed: show them */
        }
        return;
    }
    if (s->guidelines)
        return;
    char path[64];
    snprintf(path, sizeof path, "/v1/projects/%lld", (long long)s->project);
    tc_resp r;
    tly_error err;
    tc_resp_init(&r);
    if (tc_http_json(s->ctx->http, "GET", path, NULL, &r, &err) == 0)
        s->guidelines = strdup(tc_jstr(r.json, "guidelines"));
    tc_resp_free(&r);
}

static void show_guidelines(session *s)
{
    if (s->guidelines && *s->guidelines)
        printf("--- guidelines ---\n%s%s------------------\n", s->guidelines,
               s->guidelines[strlen(s->guidelines) - 1] == '\n' ? "" : "\n");
    else
        printf("(this project has no guidelines)\n");
    s->guidelines_known = 1;
}

static const char *file_ext(const char *format)
{
    if (strcmp(format, "jpeg") == 0)
        return "jpg";
    if (!*format || strlen(format) > 8)
        return "bin";
    for (const char *p = format; *p; p++)
        if (!isalnum((unsigned char)*p))
            return "bin";
    return format;
}

/* GET the media into DIR/item-ID.EXT (through a .part file); prints the path. */
static void download_media(session *s, const tc_task *t, const char *media_url)
{
    char final[4096], part[4200];
    snprintf(final, sizeof final, "%s/item-%lld.%s", s->download_dir, (long long)t->item_id,
             file_ext(tc_jstr(t->media, "format")));
    snprintf(part, sizeof part, "%s.part", final);
    if (tly_mkdirs(s->download_dir, 0755) < 0) {
        fprintf(stderr, "tally: cannot create %s: %s\n", s->download_dir, strerror(errno));
        return;
    }
    FILE *f = fopen(part, "wb");
    if (!f) {
        fprintf(stderr, "tally: cannot write %s: %s\n", part, strerror(errno));
        return;
    }
    tc_resp r;
    tly_error err;
    tc_resp_init(&r);
    int rc = tc_http_download(s->ctx->http, media_url, f, MAX_DOWNLOAD, &r, NULL, &err);
    tc_resp_free(&r);
    if (fclose(f) != 0 && rc == 0) {
        rc = tly_fail(&err, TLY_E_IO, "local_write", "writing %s: %s", part, strerror(errno));
    }
    if (rc == 0 && rename(part, final) != 0)
        rc = tly_fail(&err, TLY_E_IO, "local_write", "renaming to %s: %s", final,
                      strerror(errno));
    if (rc < 0) {
        unlink(part);
        fprintf(stderr, "tally: download failed: %s: %s\n", err.code, err.message);
        return;
    }
    printf("saved:    %s\n", final);
}

static void show_task(session *s, const tc_task *t)
{
    const json_t *m = t->media;
    printf("\n=== task: item %lld (assignment %lld%s) ===\n", (long long)t->item_id,
           (long long)t->assignment_id,
           strcmp(tc_jstr(t->reply, "mode"), "quiz") == 0 ? ", quiz" : "");
    json_t *w = json_object_get(m, "width"), *h = json_object_get(m, "height");
    json_t *d = json_object_get(m, "duration"), *sr = json_object_get(m, "sample_rate");
    if (json_is_number(w) && json_is_number(h))
        printf("media:    image %.0fx%.0f, %s\n", json_number_value(w), json_number_value(h),
               tc_jstr(m, "format"));
    else if (json_is_number(d))
        printf("media:    audio %.3f s, %.0f Hz, %lld channel(s), %s\n", json_number_value(d),
               json_is_number(sr) ? json_number_value(sr) : 0.0,
               (long long)tc_jint(m, "channels"), tc_jstr(m, "format"));
    const char *url = tc_jstr(t->item, "media_url");
    if (*url)
        printf("see:      %s%s\n", tc_http_base_url(s->ctx->http), url);
    const char *thumb = tc_jstr(t->item, "thumbnail_url");
    if (*thumb)
        printf("preview:  %s%s\n", tc_http_base_url(s->ctx->http), thumb);
    if (*tc_jstr(t->reply, "lease_expires_at"))
        printf("answer by %s\n", tc_jstr(t->reply, "lease_expires_at"));
    if (s->download_dir && *url)
        download_media(s, t, url);
    if (strcmp(tc_jstr(t->reply, "mode"), "quiz") == 0)
        printf("(quiz: these answers are checked before you get regular work)\n");
    learn_guidelines(s, t);
    if (!s->guidelines_known && s->guidelines && *s->guidelines)
        show_guidelines(s);
}

/* Ask every control once; fills *answer (new object) unless an action interrupts. */
static action ask_controls(session *s, const tc_task *t, json_t **answer)
{
    *answer = json_object();
    if (!*answer) {
        fprintf(stderr, "tally: out of memory\n");
        return ACT_QUIT;
    }
    size_t n = json_array_size(t->controls);
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(t->controls, i);
        const char *name = tc_jstr(c, "name");
        const json_t *sugg = t->prelabel ? json_object_get(t->prelabel, name) : NULL;
        printf("\n[%zu/%zu] ", i + 1, n);
        tc_answer_describe(stdout, c, t->media);
        if (sugg && !json_is_null(sugg)) {
            printf("  suggestion (type = to take it): ");
            if (json_dumpf(sugg, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0)
                putchar('\n');
        }
        for (;;) {
            if (!read_line(s, name))
                return ACT_QUIT;
            int cmd = command_of(s->line);
            if (cmd == 's')
                return ACT_SKIP;
            if (cmd == 'q')
                return ACT_QUIT;
            if (cmd == '?') {
                print_help_keys();
                continue;
            }
            if (cmd == 'g') {
                show_guidelines(s);
                continue;
            }
            json_t *value = NULL;
            if (cmd == '=') {
                if (!sugg || json_is_null(sugg)) {
                    fprintf(stderr, "there is no suggestion for %s\n", name);
                    continue;
                }
                value = json_deep_copy(sugg);
            } else {
                const char *text = s->line[0] == '\\' ? s->line + 1 : s->line;
                char msg[512];
                int rc = tc_answer_parse(c, text, &value, msg, sizeof msg);
                if (rc < 0) {
                    fprintf(stderr, "%s: %s\n", name, msg);
                    continue;
                }
                if (rc == 0) {
                    if (tc_answer_required(c)) {
                        fprintf(stderr, "%s is required (or type s to skip the task)\n", name);
                        continue;
                    }
                    break; /* left empty */
                }
            }
            if (!value || json_object_set_new(*answer, name, value) < 0) {
                fprintf(stderr, "tally: out of memory\n");
                return ACT_QUIT;
            }
            break;
        }
    }
    return ACT_NONE;
}

/* Skip t; 0, or TC_EXIT_FAIL after reporting. */
static int skip_task(session *s, const tc_task *t)
{
    tly_error err;
    if (tc_task_skip(s->ctx->http, t, &err) < 0 && strcmp(err.code, "lease_expired") != 0)
        return tc_report(&err);
    s->skipped++;
    return 0;
}

/* One task until it is submitted, skipped or gone. Returns -1 to go on, or an exit
 * code to end the session with. */
static int do_task(session *s, const tc_task *t)
{
    for (;;) {
        json_t *answer = NULL;
        action act = ask_controls(s, t, &answer);
        if (act != ACT_NONE) {
            json_decref(answer);
            int rc = skip_task(s, t);
            if (rc)
                return rc;
            printf("skipped item %lld\n", (long long)t->item_id);
            return act == ACT_QUIT ? TC_EXIT_OK : -1;
        }
        tly_error err;
        json_t *reply = NULL;
        tc_submit_result res = tc_task_submit(s->ctx->http, t, answer, -1, &reply, &err);
        json_decref(answer);
        switch (res) {
        case TC_SUBMIT_OK:
            s->submitted++;
            printf("submitted (judgment %lld)\n", (long long)tc_jint(reply, "judgment_id"));
            tc_print_feedback(stdout, reply);
            json_decref(reply);
            return -1;
        case TC_SUBMIT_REJECTED:
            s->rejected++;
            fprintf(stderr, "rejected by the server: %s\n", err.message);
            printf("please answer this task again\n");
            continue;
        case TC_SUBMIT_EXPIRED:
            fprintf(stderr, "the lease on this task expired (%s); fetching the next one\n",
                    err.message);
            return -1;
        case TC_SUBMIT_CONFLICT:
            fprintf(stderr, "not submitted: %s: %s\n", err.code, err.message);
            return -1;
        case TC_SUBMIT_FAIL:
        default:
            return tc_report(&err);
        }
    }
}

static int interactive(session *s)
{
    int rc = TC_EXIT_OK;
    for (;;) {
        if (s->limit && s->submitted >= s->limit) {
            printf("\nreached --limit %lld\n", (long long)s->limit);
            break;
        }
        tc_task t;
        tly_error err;
        int got = tc_task_next(s->ctx->http, s->project, &t, &err);
        if (got < 0) {
            rc = tc_report(&err);
            break;
        }
        if (got == 0) {
            printf("\nnothing to do in project %lld right now\n", (long long)s->project);
            break;
        }
        show_task(s, &t);
        int r = do_task(s, &t);
        tc_task_free(&t);
        if (r >= 0) {
            rc = r;
            break;
        }
    }
    printf("session: %lld submitted, %lld skipped, %lld answers rejected\n",
           (long long)s->submitted, (long long)s->skipped, (long long)s->rejected);
    return rc;
}

int cmd_work(tc_ctx *ctx, int argc, char **argv)
{
    const char *answers = NULL, *limit_s = NULL, *download = NULL;
    const tc_opt opts[] = {
        { "answers", 1, &answers, NULL },
        { "limit", 1, &limit_s, NULL },
        { "download", 1, &download, NULL },
        { NULL, 0, NULL, NULL },
    };
    int npos;
    TC_PARSE(ctx, argc, argv, opts, &work_help, argv, &npos);
    int64_t project = npos == 1 ? tc_parse_id(argv[0]) : -1;
    if (project < 0)
        return tc_usage_error(&work_help, "expected one PROJECT_ID (a positive integer)");
    int64_t limit = limit_s ? tc_parse_id(limit_s) : 0;
    if (limit < 0)
        return tc_usage_error(&work_help, "--limit must be a positive integer");
    if (answers && download)
        return tc_usage_error(&work_help, "--download is for the interactive mode only");
    if (download && !*download)
        return tc_usage_error(&work_help, "--download needs a directory");

    tly_error err;
    if (tc_connect(ctx, 1, &err) < 0)
        return tc_report(&err);
    if (answers)
        return tc_work_script(ctx, project, answers, limit);

    session s;
    memset(&s, 0, sizeof s);
    s.ctx = ctx;
    s.project = project;
    s.download_dir = download;
    s.limit = limit;
    s.tty = isatty(STDIN_FILENO);
    if (s.tty)
        print_help_keys();
    int rc = interactive(&s);
    free(s.line);
    free(s.guidelines);
    return rc;
}
