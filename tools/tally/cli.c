/* cli.c -- option parsing, connection set-up and error reporting shared by all
 * commands (see cli.h).
 *
 * Options are long-only ("--name VALUE" or "--name=VALUE"); "--" ends options so a
 * file named "--x" can still be passed. Values are borrowed from argv, which lives
 * for the whole run, so parsing allocates nothing.
 */
#include "tools/tally/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void tc_print_help(FILE *f, const tc_help *help)
{
    fprintf(f, "usage: tally %s %s\n", help->name, help->usage);
    if (help->help && *help->help)
        fprintf(f, "\n%s\n", help->help);
    fprintf(f, "\nGlobal options: --url URL, --token TOKEN (override TALLY_URL, TALLY_TOKEN "
               "and the config file).\n");
}

int tc_usage_error(const tc_help *help, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "tally %s: ", help->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: tally %s %s\n(see: tally %s --help)\n", help->name, help->usage,
            help->name);
    return TC_EXIT_USAGE;
}

static const tc_opt *find_opt(const tc_opt *opts, const char *name, size_t len)
{
    for (const tc_opt *o = opts; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

int tc_parse_opts(tc_ctx *ctx, int argc, char **argv, const tc_opt *opts, const tc_help *help,
                  char **pos, int *npos)
{
    const tc_opt globals[] = {
        { "url", 1, &ctx->flag_url, NULL },
        { "token", 1, &ctx->flag_token, NULL },
        { NULL, 0, NULL, NULL },
    };
    int only_pos = 0;
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
            pos[(*npos)++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            tc_print_help(stdout, help);
            return -1;
        }
        if (a[1] != '-')
            return tc_usage_error(help, "unknown option '%s'", a);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const tc_opt *o = find_opt(opts, name, len);
        if (!o)
            o = find_opt(globals, name, len);
        if (!o)
            return tc_usage_error(help, "unknown option '--%.*s'", (int)len, name);
        if (!o->has_arg) {
            if (eq)
                return tc_usage_error(help, "option '--%s' takes no value", o->name);
            *o->flag = 1;
            continue;
        }
        if (eq) {
            *o->value = eq + 1;
        } else if (i + 1 < argc) {
            *o->value = argv[++i];
        } else {
            return tc_usage_error(help, "option '--%s' needs a value", o->name);
        }
    }
    return 0;
}

int tc_connect(tc_ctx *ctx, int need_token, tly_error *err)
{
    if (tc_config_resolve(ctx->flag_url, ctx->flag_token, &ctx->cfg, err) < 0)
        return -1;
    if (strncmp(ctx->cfg.url, "http://", 7) != 0 && strncmp(ctx->cfg.url, "https://", 8) != 0)
        return tly_fail(err, TLY_E_INVALID, "invalid_url",
                        "server URL '%s' must start with http:// or https://", ctx->cfg.url);
    if (need_token && !ctx->cfg.token)
        return tly_fail(err, TLY_E_UNAUTHORIZED, "no_token",
                        "no API token: run 'tally login', set TALLY_TOKEN or pass --token");
    ctx->http = tc_http_new(ctx->cfg.url, ctx->cfg.token);
    if (!ctx->http)
        return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "cannot set up the HTTP client");
    return 0;
}

void tc_ctx_free(tc_ctx *ctx)
{
    tc_http_free(ctx->http);
    ctx->http = NULL;
    tc_config_free(&ctx->cfg);
}

int tc_report(const tly_error *err)
{
    fprintf(stderr, "tally: error: %s: %s\n", err->code[0] ? err->code : "error", err->message);
    return TC_EXIT_FAIL;
}

int tc_fail_local(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "tally: error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return TC_EXIT_FAIL;
}

int64_t tc_parse_id(const char *s)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v <= 0)
        return -1;
    return (int64_t)v;
}

const char *tc_jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

int64_t tc_jint(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

int tc_next_cursor(const json_t *list, const char *prev, char *buf, size_t bufsz)
{
    json_t *c = json_object_get(list, "next_cursor");
    char tmp[256];
    if (json_is_string(c) && json_string_length(c) > 0 && json_string_length(c) < sizeof tmp)
        snprintf(tmp, sizeof tmp, "%s", json_string_value(c));
    else if (json_is_integer(c))
        snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(c));
    else
        return 0;
    if (strcmp(tmp, prev) == 0 || strlen(tmp) >= bufsz)
        return 0; /* a server repeating a cursor would loop forever */
    snprintf(buf, bufsz, "%s", tmp);
    return 1;
}
