/* main.c -- the `tally` command-line client: command table and dispatch.
 *
 * A command is one or two words ("whoami", "project create"); main finds the longest
 * matching entry, hands the remaining argv to its function and frees the context
 * afterwards. Commands talk to tallyd only through the public HTTP API (http.h).
 * Global --url/--token flags may appear before the command words as well as among
 * the command's own options.
 */
#include "tools/tally/cli.h"

#include <curl/curl.h>
#include <string.h>

typedef struct {
    const char *group; /* first word */
    const char *sub;   /* second word or NULL */
    int (*fn)(tc_ctx *ctx, int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    { "login", NULL, cmd_login, "check a token and save url+token to the config file" },
    { "whoami", NULL, cmd_whoami, "show the user the token belongs to" },
    { "user", "create", cmd_user_create, "create a user and print its token" },
    { "project", "create", cmd_project_create, "create a project from template files" },
    { "project", "list", cmd_project_list, "list projects" },
    { "project", "show", cmd_project_show, "show one project as JSON" },
    { "project", "stats", cmd_project_stats, "show a project's counts as JSON" },
    { "ingest", NULL, cmd_ingest, "upload files or directories as a new batch" },
    { "items", NULL, cmd_items, "list a project's items" },
    { "batch", "show", cmd_batch_show, "show a batch report" },
    { "work", NULL, cmd_work, "label a project's tasks (interactive, or --answers FILE.jsonl)" },
    { "stats", NULL, cmd_stats, "show your own work per project" },
    { "report", NULL, cmd_report, "a project's quality report: figures, workers, results" },
    { "judgments", "import", cmd_judgments_import,
      "import judgments from a CSV or JSON Lines file" },
    { "pull", NULL, cmd_pull, "download a dataset version (an export) and verify its files" },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void print_overview(FILE *f)
{
    fprintf(f, "usage: tally [--url URL] [--token TOKEN] COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s%s", commands[i].group, commands[i].sub ? " " : "",
                 commands[i].sub ? commands[i].sub : "");
        fprintf(f, "  %-16s %s\n", name, commands[i].summary);
    }
    fprintf(f, "\nRun 'tally COMMAND --help' for a command's options.\n"
               "The server URL and token come from --url/--token, then TALLY_URL/TALLY_TOKEN,\n"
               "then the config file written by 'tally login' ($XDG_CONFIG_HOME/tally/config);\n"
               "the URL defaults to %s.\n", TC_DEFAULT_URL);
}

static const command *lookup(const char *group, const char *sub, int *words)
{
    int group_known = 0;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].group, group) != 0)
            continue;
        group_known = 1;
        if (!commands[i].sub) {
            *words = 1;
            return &commands[i];
        }
        if (sub && strcmp(commands[i].sub, sub) == 0) {
            *words = 2;
            return &commands[i];
        }
    }
    *words = group_known ? -1 : 0;
    return NULL;
}

static void print_group(FILE *f, const char *group)
{
    fprintf(f, "usage: tally %s SUBCOMMAND ...\n\nsubcommands:\n", group);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].group, group) == 0 && commands[i].sub)
            fprintf(f, "  %-10s %s\n", commands[i].sub, commands[i].summary);
}

int main(int argc, char **argv)
{
    tc_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    int i = 1;
    /* global flags before the command */
    while (i < argc && argv[i][0] == '-') {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_overview(stdout);
            return TC_EXIT_OK;
        } else if ((strcmp(a, "--url") == 0 || strcmp(a, "--token") == 0) && i + 1 < argc) {
            *(a[2] == 'u' ? &ctx.flag_url : &ctx.flag_token) = argv[i + 1];
            i += 2;
        } else if (strncmp(a, "--url=", 6) == 0) {
            ctx.flag_url = a + 6;
            i++;
        } else if (strncmp(a, "--token=", 8) == 0) {
            ctx.flag_token = a + 8;
            i++;
        } else if (strcmp(a, "--url") == 0 || strcmp(a, "--token") == 0) {
            fprintf(stderr, "tally: option '%s' needs a value\n", a);
            return TC_EXIT_USAGE;
        } else {
            fprintf(stderr, "tally: unknown option '%s' (see: tally --help)\n", a);
            return TC_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        print_overview(stderr);
        return TC_EXIT_USAGE;
    }
    if (strcmp(argv[i], "help") == 0) {
        if (i + 1 >= argc) {
            print_overview(stdout);
            return TC_EXIT_OK;
        }
        /* "tally help project create" == "tally project create --help" */
        int words;
        const command *c = lookup(argv[i + 1], i + 2 < argc ? argv[i + 2] : NULL, &words);
        if (!c) {
            if (words < 0) {
                print_group(stdout, argv[i + 1]);
                return TC_EXIT_OK;
            }
            fprintf(stderr, "tally: unknown command '%s'\n", argv[i + 1]);
            return TC_EXIT_USAGE;
        }
        char help_flag[] = "--help";
        char *hargv[] = { help_flag, NULL };
        int rc = c->fn(&ctx, 1, hargv);
        tc_ctx_free(&ctx);
        return rc;
    }
    int words;
    const command *c = lookup(argv[i], i + 1 < argc ? argv[i + 1] : NULL, &words);
    if (!c) {
        if (words < 0) {
            if (i + 1 < argc && strcmp(argv[i + 1], "--help") != 0 &&
                strcmp(argv[i + 1], "-h") != 0) {
                fprintf(stderr, "tally: unknown subcommand '%s %s'\n\n", argv[i], argv[i + 1]);
                print_group(stderr, argv[i]);
                return TC_EXIT_USAGE;
            }
            print_group(i + 1 < argc ? stdout : stderr, argv[i]);
            return i + 1 < argc ? TC_EXIT_OK : TC_EXIT_USAGE;
        }
        fprintf(stderr, "tally: unknown command '%s' (see: tally help)\n", argv[i]);
        return TC_EXIT_USAGE;
    }
    i += words;
    int rc = c->fn(&ctx, argc - i, argv + i);
    tc_ctx_free(&ctx);
    curl_global_cleanup();
    return rc;
}
