/* main.c -- tallyd: the Tally server.
 *
 * Start-up order matters for crash safety: open the store (migrations run), open the
 * blob store, create the admin on first start, requeue this node's jobs that a
 * previous process left running, sweep temp files of interrupted work, and only then
 * start the job threads and the HTTP listener. Shutdown (SIGTERM / SIGINT) reverses
 * it: stop accepting requests and let those in flight finish, let running jobs finish,
 * then close the stores. Signals are blocked in every thread and taken synchronously
 * with sigwait() in the main thread, so no handler runs in async-signal context.
 */
#include "server/app.h"
#include "server/copy_cmd.h"
#include "server/http.h"
#include "core/fsutil.h"
#include "core/hash.h"
#include "core/log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SWEEP_S 300   /* housekeeping period, and the age of an upload copy it may remove */

/* A name for this node's job leases that survives restarts of the same data dir, so
 * a restarted process can take back exactly the jobs its predecessor held. */
static int load_node_id(tly_app *app, tly_error *err)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/node.id", app->cfg.data_dir);
    char *text = tly_read_file(path, 64, NULL);
    if (text) {
        text[strcspn(text, "\r\n")] = '\0';
        snprintf(app->node_id, sizeof app->node_id, "%s", text);
        free(text);
        if (app->node_id[0])
            return 0;
    }
    char hex[17], line[40];
    if (tly_random_hex(8, hex, sizeof hex) < 0)
        return tly_fail(err, TLY_E_INTERNAL, "internal", "no randomness for the node id");
    snprintf(app->node_id, sizeof app->node_id, "node-%s", hex);
    snprintf(line, sizeof line, "%s\n", app->node_id);
    if (tly_write_file_atomic(path, line, strlen(line), 0600) < 0)
        return tly_fail(err, TLY_E_IO, "io_error", "cannot write %s: %s", path, strerror(errno));
    return 0;
}

static void wake_jobs(void *arg)
{
    tly_app *app = arg;
    tly_jobrunner_wake(__atomic_load_n(&app->jobs, __ATOMIC_ACQUIRE));
}

static int open_everything(tly_app *app, tly_error *err)
{
    tly_config *cfg = &app->cfg;
    if (tly_mkdirs(cfg->data_dir, 0700) < 0)
        return tly_fail(err, TLY_E_IO, "io_error", "cannot create %s: %s", cfg->data_dir, strerror(errno));
    char real[PATH_MAX];
    if (!realpath(cfg->data_dir, real))
        return tly_fail(err, TLY_E_IO, "io_error", "cannot resolve %s: %s", cfg->data_dir, strerror(errno));
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", real);
    if (!cfg->db_url[0])
        snprintf(cfg->db_url, sizeof cfg->db_url, "sqlite:%s/tally.db", cfg->data_dir);
    if (!cfg->blobs_url[0])
        snprintf(cfg->blobs_url, sizeof cfg->blobs_url, "file:%s/blobs", cfg->data_dir);
    if (load_node_id(app, err) < 0 || tly_store_open(cfg->db_url, &app->store, err) < 0 ||
        tly_blob_open(cfg->blobs_url, &app->blobs, err) < 0 || tly_auth_bootstrap(app, err) < 0)
        return -1;

    tly_ingest_config icfg;
    tly_ingest_config_default(&icfg);
    icfg.data_dir = cfg->data_dir;
    icfg.import_roots = cfg->import_roots;
    icfg.n_import_roots = cfg->n_import_roots;
    icfg.probe.max_bytes = cfg->max_file_size;
    icfg.url_allow_private = cfg->url_allow_private;
    icfg.on_enqueue = wake_jobs;
    icfg.on_enqueue_arg = app;
    if (tly_ingest_open(app->store, app->blobs, &icfg, &app->ingest, err) < 0)
        return -1;
    int64_t released = 0;
    if (tly_store_job_release_owner(app->store, app->node_id, &released, err) < 0 ||
        tly_ingest_recover(app->ingest, err) < 0)
        return -1;
    if (released)
        LOG_INFO("tallyd", "requeued %lld jobs left running by the previous process", (long long)released);
    tly_jobrunner *jobs = NULL;
    if (cfg->job_threads > 0 && tly_jobrunner_start(app, cfg->job_threads, &jobs, err) < 0)
        return -1;
    __atomic_store_n(&app->jobs, jobs, __ATOMIC_RELEASE);
    return 0;
}

static void close_everything(tly_app *app)
{
    tly_jobrunner_stop(app->jobs);
    app->jobs = NULL;
    if (app->store && app->node_id[0]) {
        tly_error err;
        if (tly_store_job_release_owner(app->store, app->node_id, NULL, &err) < 0)
            LOG_WARN("tallyd", "cannot release jobs: %s", err.message);
    }
    tly_ingest_close(app->ingest);
    tly_blob_close(app->blobs);
    tly_store_close(app->store);
}

/* `tallyd migrate [--db URL | --data DIR]`: bring the store's schema up to date and
 * exit, for deployments that migrate explicitly before starting (new) nodes. Opening
 * the store migrates, under the driver's migration lock (sq_migrate), so a migrate
 * racing a starting node, or another migrate, waits instead of applying twice. */
static int migrate_only(tly_config *cfg)
{
    tly_error err;
    tly_store *st = NULL;
    int version = 0;
    if (!cfg->db_url[0]) {
        if (tly_mkdirs(cfg->data_dir, 0700) < 0) {
            LOG_ERROR("tallyd", "cannot create %s: %s", cfg->data_dir, strerror(errno));
            return 1;
        }
        snprintf(cfg->db_url, sizeof cfg->db_url, "sqlite:%s/tally.db", cfg->data_dir);
    }
    if (tly_store_open(cfg->db_url, &st, &err) < 0 || tly_store_schema_version(st, &version, &err) < 0) {
        LOG_ERROR("tallyd", "migrate: %s", err.message);
        tly_store_close(st);
        return 1;
    }
    printf("schema version %d (%s)\n", version, tly_store_backend_name(st));
    tly_store_close(st);
    return 0;
}

int main(int argc, char **argv)
{
    static tly_app app;
    if (argc > 1 && strcmp(argv[1], "copy") == 0)   /* its own options: server/copy_cmd.c */
        return tly_copy_main(argc - 1, argv + 1);
    int migrate = argc > 1 && strcmp(argv[1], "migrate") == 0;
    /* getopt starts at index 1: past "migrate" when it is the command. */
    int rc = migrate ? tly_config_parse(argc - 1, argv + 1, &app.cfg) : tly_config_parse(argc, argv, &app.cfg);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    tly_log_set_level((tly_log_level)app.cfg.log_level);
    umask(077);
    if (migrate)
        return migrate_only(&app.cfg);

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);   /* inherited by every thread */
    signal(SIGPIPE, SIG_IGN);

    tly_error err;
    struct MHD_Daemon *http = NULL;
    if (open_everything(&app, &err) < 0 || !(http = tly_http_start(&app, &err))) {
        LOG_ERROR("tallyd", "cannot start: %s", err.message);
        close_everything(&app);
        return 1;
    }
    LOG_INFO("tallyd", "tallyd %s ready (data %s, store %s, blobs %s)", TALLY_VERSION, app.cfg.data_dir,
             tly_store_backend_name(app.store), tly_blob_backend_name(app.blobs));
    /* Waiting for a stop signal, the main thread does the node's housekeeping:
     * copies of uploads this node received and another node ingested are only
     * removed here (and at start-up), every SWEEP_S. */
    int sig = 0;
    for (;;) {
        struct timespec every = {SWEEP_S, 0};
        sig = sigtimedwait(&stop_signals, NULL, &every);
        if (sig > 0)
            break;
        if (errno != EAGAIN && errno != EINTR)
            sigwait(&stop_signals, &sig);   /* cannot time the wait: just wait */
        if (sig > 0)
            break;
        int n = tly_ingest_sweep_uploads(app.ingest, SWEEP_S, &err);
        if (n < 0)
            LOG_WARN("tallyd", "spool sweep: %s", err.message);
        else if (n > 0)
            LOG_INFO("tallyd", "spool sweep removed %d uploads other nodes ingested", n);
    }
    LOG_INFO("tallyd", "%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    MHD_stop_daemon(http);
    close_everything(&app);
    LOG_INFO("tallyd", "stopped");
    return 0;
}
