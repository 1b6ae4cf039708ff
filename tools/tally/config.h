/* config.h -- where the CLI gets its server URL and token from.
 *
 * Precedence, highest first: the --url / --token flags, the TALLY_URL / TALLY_TOKEN
 * environment variables, the config file, and for the URL the built-in default
 * http://127.0.0.1:8080. The config file is $XDG_CONFIG_HOME/tally/config (default
 * ~/.config/tally/config), written by `tally login` with mode 0600 as "key = value"
 * lines (url, token); unknown keys and '#' comments are ignored.
 */
#ifndef TALLY_CLI_CONFIG_H
#define TALLY_CLI_CONFIG_H

#include "core/error.h"

#include <stddef.h>

#define TC_DEFAULT_URL "http://127.0.0.1:8080"

typedef struct {
    char *url;   /* owned; never NULL after tc_config_resolve succeeds */
    char *token; /* owned; NULL when no source supplied one */
} tc_config;

/* Path of the config file into out; -1 if neither XDG_CONFIG_HOME nor HOME is set. */
int tc_config_path(char *out, size_t outsz);

/* Resolve url/token from flags (may be NULL), environment and the config file. */
int tc_config_resolve(const char *flag_url, const char *flag_token, tc_config *cfg,
                      tly_error *err);
void tc_config_free(tc_config *cfg);

/* Save url+token to the config file (directory 0700, file 0600, atomic replace). */
int tc_config_save(const char *url, const char *token, tly_error *err);

#endif
