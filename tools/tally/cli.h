/* cli.h -- what the command files share: the run context, option parsing, and
 * error reporting.
 *
 * main.c parses nothing but the command word; each command parses its own argv with
 * tc_parse_opts, which also accepts the global --url/--token flags anywhere and
 * --help. A command then calls tc_connect to resolve url/token (config.h) and open
 * the HTTP client; the context owns both and main.c frees them after the command.
 *
 * Exit codes: TC_EXIT_OK 0, TC_EXIT_FAIL 1 (HTTP, transport, local I/O errors, or a
 * batch that failed), TC_EXIT_USAGE 2 (bad command line).
 */
#ifndef TALLY_CLI_CLI_H
#define TALLY_CLI_CLI_H

#include "core/error.h"
#include "tools/tally/config.h"
#include "tools/tally/http.h"

#include <stdint.h>
#include <stdio.h>

enum { TC_EXIT_OK = 0, TC_EXIT_FAIL = 1, TC_EXIT_USAGE = 2 };

typedef struct {
    const char *flag_url;   /* from argv, borrowed */
    const char *flag_token; /* from argv, borrowed */
    tc_config cfg;          /* owned after tc_connect */
    tc_http *http;          /* owned after tc_connect */
} tc_ctx;

/* One option a command accepts. Flags (has_arg == 0) set *flag = 1; options with an
 * argument store the borrowed argv string in *value (the last occurrence wins). */
typedef struct {
    const char *name; /* without the leading "--" */
    int has_arg;
    const char **value;
    int *flag;
} tc_opt;

typedef struct {
    const char *name;    /* "project create" */
    const char *usage;   /* "--name N --media image|audio ..." */
    const char *help;    /* the paragraph under it */
} tc_help;

/* Parse argv[0..argc) (the arguments after the command words). Positional arguments
 * are collected in order into pos (argc entries are enough; pos may be argv itself,
 * which is then compacted in place) and counted in
 * *npos. Returns 0, TC_EXIT_USAGE after printing an error, or -1 when --help / -h was
 * given (help already printed; the caller exits 0). */
int tc_parse_opts(tc_ctx *ctx, int argc, char **argv, const tc_opt *opts, const tc_help *help,
                  char **pos, int *npos);

/* The usual opening of a command: parse, and return from it on --help or bad usage. */
#define TC_PARSE(ctx, argc, argv, opts, help, pos, npos)                              \
    do {                                                                              \
        int parse_rc_ = tc_parse_opts(ctx, argc, argv, opts, help, pos, npos);        \
        if (parse_rc_ != 0)                                                           \
            return parse_rc_ < 0 ? TC_EXIT_OK : parse_rc_;                            \
    } while (0)

/* Print "usage: tally <name> <usage>" and the help text to f. */
void tc_print_help(FILE *f, const tc_help *help);
int tc_usage_error(const tc_help *help, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resolve url/token and open the HTTP client. need_token: fail if none configured. */
int tc_connect(tc_ctx *ctx, int need_token, tly_error *err);
void tc_ctx_free(tc_ctx *ctx);

/* Print "tally: <code>: <message>" to stderr; returns TC_EXIT_FAIL. */
int tc_report(const tly_error *err);
int tc_fail_local(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse a positive decimal id; -1 if s is not one. */
int64_t tc_parse_id(const char *s);

/* Shorthands for reading response fields (missing -> "" / 0 / -1). */
const char *tc_jstr(const json_t *obj, const char *key);
int64_t tc_jint(const json_t *obj, const char *key);

/* Copy a list response's next_cursor (string or integer) into buf; 1 if there is a
 * further page (a cursor different from prev), else 0. */
int tc_next_cursor(const json_t *list, const char *prev, char *buf, size_t bufsz);

/* Print a batch report (counts and per-file errors) to stdout; batch.c. */
void tc_print_batch(const json_t *batch);

/* Commands (argv: the arguments after the command words). */
int cmd_login(tc_ctx *ctx, int argc, char **argv);
int cmd_whoami(tc_ctx *ctx, int argc, char **argv);
int cmd_user_create(tc_ctx *ctx, int argc, char **argv);
int cmd_project_create(tc_ctx *ctx, int argc, char **argv);
int cmd_project_list(tc_ctx *ctx, int argc, char **argv);
int cmd_project_show(tc_ctx *ctx, int argc, char **argv);
int cmd_project_stats(tc_ctx *ctx, int argc, char **argv);
int cmd_ingest(tc_ctx *ctx, int argc, char **argv);
int cmd_items(tc_ctx *ctx, int argc, char **argv);
int cmd_batch_show(tc_ctx *ctx, int argc, char **argv);
int cmd_work(tc_ctx *ctx, int argc, char **argv);  /* work.c */
int cmd_stats(tc_ctx *ctx, int argc, char **argv); /* stats.c */
int cmd_report(tc_ctx *ctx, int argc, char **argv); /* report.c */
int cmd_judgments_import(tc_ctx *ctx, int argc, char **argv); /* judgments.c */
int cmd_pull(tc_ctx *ctx, int argc, char **argv); /* pull.c */

#endif
