/* config.c -- see config.h.
 *
 * The file is small and read whole (capped at 64 KiB). Values are copied out with
 * strdup into the tc_config, which owns them until tc_config_free. A value that
 * contains a newline cannot be saved (it would corrupt the file), so login refuses it.
 */
#include "tools/tally/config.h"

#include "core/fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONFIG_MAX (64u << 10)

int tc_config_path(char *out, size_t outsz)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(out, outsz, "%s/tally/config", xdg);
    else if (home && *home)
        n = snprintf(out, outsz, "%s/.config/tally/config", home);
    else
        return -1;
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Fill the fields still NULL in cfg from the file; a missing file is not an error. */
static int load_file(tc_config *cfg, tly_error *err)
{
    char path[4096];
    if (tc_config_path(path, sizeof path) < 0)
        return 0;
    char *text = tly_read_file(path, CONFIG_MAX, NULL);
    if (!text) {
        if (errno == ENOENT)
            return 0;
        return tly_fail(err, TLY_E_IO, "config_unreadable", "cannot read %s: %s", path,
                        strerror(errno));
    }
    int rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        line = trim(line);
        if (!eq || line[0] == '#')
            continue;
        *eq = '\0';
        char *key = trim(line), *val = trim(eq + 1);
        char **slot = strcmp(key, "url") == 0 ? &cfg->url
                    : strcmp(key, "token") == 0 ? &cfg->token : NULL;
        if (!slot || *slot || !*val)
            continue;
        if (!(*slot = strdup(val))) {
            rc = tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
            break;
        }
    }
    free(text);
    return rc;
}

static int take(char **slot, const char *val)
{
    if (*slot || !val || !*val)
        return 0;
    *slot = strdup(val);
    return *slot ? 0 : -1;
}

int tc_config_resolve(const char *flag_url, const char *flag_token, tc_config *cfg,
                      tly_error *err)
{
    cfg->url = NULL;
    cfg->token = NULL;
    if (take(&cfg->url, flag_url) < 0 || take(&cfg->token, flag_token) < 0 ||
        take(&cfg->url, getenv("TALLY_URL")) < 0 || take(&cfg->token, getenv("TALLY_TOKEN")) < 0)
        goto oom;
    if ((!cfg->url || !cfg->token) && load_file(cfg, err) < 0) {
        tc_config_free(cfg);
        return -1;
    }
    if (take(&cfg->url, TC_DEFAULT_URL) < 0)
        goto oom;
    return 0;
oom:
    tc_config_free(cfg);
    return tly_fail(err, TLY_E_INTERNAL, "out_of_memory", "out of memory");
}

void tc_config_free(tc_config *cfg)
{
    free(cfg->url);
    free(cfg->token);
    cfg->url = NULL;
    cfg->token = NULL;
}

int tc_config_save(const char *url, const char *token, tly_error *err)
{
    char path[4096];
    if (tc_config_path(path, sizeof path) < 0)
        return tly_fail(err, TLY_E_IO, "no_config_dir",
                        "neither XDG_CONFIG_HOME nor HOME is set");
    if (strpbrk(url, "\r\n") || strpbrk(token, "\r\n"))
        return tly_fail(err, TLY_E_INVALID, "invalid_value", "url and token must be one line");
    char *slash = strrchr(path, '/');
    *slash = '\0';
    if (tly_mkdirs(path, 0700) < 0)
        return tly_fail(err, TLY_E_IO, "config_unwritable", "cannot create %s: %s", path,
                        strerror(errno));
    *slash = '/';
    char text[8192];
    int n = snprintf(text, sizeof text, "# written by tally login\nurl = %s\ntoken = %s\n", url,
                     token);
    if (n < 0 || (size_t)n >= sizeof text)
        return tly_fail(err, TLY_E_INVALID, "invalid_value", "url or token too long");
    if (tly_write_file_atomic(path, text, (size_t)n, 0600) < 0)
        return tly_fail(err, TLY_E_IO, "config_unwritable", "cannot write %s: %s", path,
                        strerror(errno));
    return 0;
}
