/* app.h -- tallyd's process-wide context, shared by the HTTP handlers and the job
 * runner. Built once in main.c and read-only afterwards (every member is itself
 * thread-safe), so handlers need no locking to use it.
 */
#ifndef TALLY_SERVER_APP_H
#define TALLY_SERVER_APP_H

#include "ingest/ingest.h"
#include "storage/blob.h"
#include "storage/store.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define TALLY_VERSION "0.1.0"
#define MAX_IMPORT_ROOTS 16

typedef struct {
    char data_dir[PATH_MAX];
    char listen_host[256];
    int listen_port;
    char db_url[PATH_MAX + 16];       /* "" = DATA/tally.db */
    char blobs_url[PATH_MAX + 16];    /* "" = DATA/blobs */
    const char *import_roots[MAX_IMPORT_ROOTS];
    size_t n_import_roots;
    int job_threads;
    int http_threads;                 /* 0: a thread per connection; N: a pool of N */
    int max_connections;
    size_t max_json_body;             /* bytes of a JSON request body */
    uint64_t max_file_size;           /* bytes of one ingested file */
    int url_allow_private;            /* URL ingest may reach internal addresses */
    char public_url[512];             /* --public-url, "" = http://listen address */
    char web_root[PATH_MAX];          /* --web: the browser client's files (static.c), "" = none */
    int media_redirect_s;             /* --media-redirect: media GETs answer 302 to a presigned
                                       * blob URL valid this long (S3); 0 = serve the bytes */
    int job_lease_s;                  /* --job-lease: seconds a claimed job stays leased without
                                       * a heartbeat (jobrunner.c renews running jobs' leases) */
    int log_level;
} tly_config;

/* Parses argv into cfg (defaults first). Returns 0 to run, 1 if it printed help or
 * the version (exit 0), -1 on a bad argument (message printed; exit 2). */
int tly_config_parse(int argc, char **argv, tly_config *cfg);

typedef struct tly_jobrunner tly_jobrunner;

typedef struct {
    tly_config cfg;
    tly_store *store;
    tly_blob_store *blobs;
    tly_ingest *ingest;
    tly_jobrunner *jobs;
    char node_id[40];                 /* owner name for job leases, stable per data dir */
    char base_url[600];               /* how model servers reach us (set once listening) */
} tly_app;

/* auth.c */
/* First start: creates the admin user and writes DATA/admin.token (0600). */
int tly_auth_bootstrap(tly_app *app, tly_error *err);
/* A fresh API token ("tly_" + 48 hex chars) and its SHA-256 hex. */
int tly_auth_new_token(char *token, size_t tokensz, char sha256_hex[65]);
/* Resolves "Bearer <token>" to a user. TLY_E_UNAUTHORIZED if missing or unknown. */
int tly_auth_user(tly_app *app, const char *authorization, tly_user *out, tly_error *err);

/* jobrunner.c: background threads that claim and run jobs from the store. */
int tly_jobrunner_start(tly_app *app, int threads, tly_jobrunner **out, tly_error *err);
void tly_jobrunner_wake(void *runner);        /* matches tly_ingest_config.on_enqueue */
void tly_jobrunner_stop(tly_jobrunner *jr);   /* finishes running jobs, joins threads */

#endif
