/* jobrunner.c -- background threads that run the store's jobs.
 *
 * Each thread claims one job at a time with a lease (store.h), runs it through the
 * domain that owns its kind, and on failure puts it back with exponential backoff
 * (or, after MAX_ATTEMPTS, marks it failed for inspection). Idle threads sleep on a
 * condition variable that enqueuers signal (tly_jobrunner_wake), with a timeout so
 * that jobs whose run_after comes due, or that another node enqueued, are seen too.
 * Stopping lets running jobs finish: every job is bounded (file size caps, fetch
 * timeouts), and a job cut off by a crash is simply claimed again after restart.
 *
 * Leases are short (--job-lease, default 60 s) so that when a node dies, the others
 * take over its jobs soon after; a heartbeat thread renews the lease of every job
 * this process is running at a quarter of the lease, so a long job (a big export)
 * keeps its lease as long as its node lives. Each worker thread publishes the ids it
 * holds in its own row of `held`.
 */
#include "server/app.h"
#include "qa/results.h"
#include "export/export.h"
#include "annotate/prelabel.h"
#include <limits.h>
#include <stdio.h>
#include "core/log.h"
#include "core/metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ATTEMPTS 5
#define IDLE_WAIT_MS 500

/* ingest_file jobs a thread claims at once, to share one disk sync and one
 * transaction among them (tly_ingest_file_jobs). Small enough that a small batch
 * still spreads over the threads. */
#define FILE_GROUP 8
#define HELD_PER_THREAD (FILE_GROUP + 1)

struct tly_jobrunner {
    tly_app *app;
    pthread_t *threads;
    int nthreads;
    pthread_t heartbeat;
    int heartbeat_started;
    int64_t lease_ms;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t beat;       /* the heartbeat's sleep, cut short by stop */
    int stopping;
    unsigned pending_wakes;
    int next_slot;             /* the next worker's row of held */
    int64_t *held;             /* HELD_PER_THREAD job ids per worker, 0 = none; under lock */
};

/* Publishes (id > 0) or withdraws (id 0) the job in slot k of worker me's row. */
static void hold(tly_jobrunner *jr, int me, int k, int64_t id)
{
    pthread_mutex_lock(&jr->lock);
    jr->held[me * HELD_PER_THREAD + k] = id;
    pthread_mutex_unlock(&jr->lock);
}

static void *heartbeat_main(void *arg)
{
    tly_jobrunner *jr = arg;
    tly_store *st = jr->app->store;
    size_t cap = (size_t)jr->nthreads * HELD_PER_THREAD;
    int64_t *ids = calloc(cap ? cap : 1, sizeof *ids);
    tly_error err;
    if (!ids) {
        LOG_ERROR("jobs", "no memory for the lease heartbeat: leases run out after %lld ms", (long long)jr->lease_ms);
        return NULL;
    }
    if (tly_store_set_durability(st, TLY_DURABLE_ORDERED, &err) < 0)
        LOG_WARN("jobs", "cannot relax commit durability: %s", err.message);
    pthread_mutex_lock(&jr->lock);
    while (!jr->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + jr->lease_ms / 4 * 1000000LL;
        until.tv_sec += (time_t)(ns / 1000000000LL);
        until.tv_nsec = (long)(ns % 1000000000LL);
        while (!jr->stopping && pthread_cond_timedwait(&jr->beat, &jr->lock, &until) == 0)
            ;
        if (jr->stopping)
            break;
        size_t n = 0;
        for (size_t i = 0; i < cap; i++)
            if (jr->held[i])
                ids[n++] = jr->held[i];
        pthread_mutex_unlock(&jr->lock);
        for (size_t i = 0; i < n; i++) {
            int rc = tly_store_job_renew(st, ids[i], jr->app->node_id, jr->lease_ms, &err);
            if (rc < 0)
                LOG_WARN("jobs", "cannot renew the lease of job %lld: %s", (long long)ids[i], err.message);
            /* rc 1: it finished meanwhile, or (a heartbeat late by a whole lease)
             * another node has it now; its outcome is recorded idempotently. */
        }
        pthread_mutex_lock(&jr->lock);
    }
    pthread_mutex_unlock(&jr->lock);
    free(ids);
    return NULL;
}

void tly_jobrunner_wake(void *arg)
{
    tly_jobrunner *jr = arg;
    if (!jr)
        return;
    pthread_mutex_lock(&jr->lock);
    jr->pending_wakes++;
    pthread_cond_broadcast(&jr->wake);
    pthread_mutex_unlock(&jr->lock);
}

static void idle_wait(tly_jobrunner *jr)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)IDLE_WAIT_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&jr->lock);
    while (!jr->stopping && jr->pending_wakes == 0)
        if (pthread_cond_timedwait(&jr->wake, &jr->lock, &until) != 0)
            break;
    if (jr->pending_wakes)
        jr->pending_wakes--;
    pthread_mutex_unlock(&jr->lock);
}

static int stopping(tly_jobrunner *jr)
{
    pthread_mutex_lock(&jr->lock);
    int s = jr->stopping;
    pthread_mutex_unlock(&jr->lock);
    return s;
}

static int run_one(tly_jobrunner *jr, const tly_job *job, tly_error *err)
{
    if (strcmp(job->kind, TLY_JOB_INGEST_FILE) == 0 || strcmp(job->kind, TLY_JOB_EXPAND_BATCH) == 0)
        return tly_ingest_run_job(jr->app->ingest, job, err);
    if (strcmp(job->kind, TLY_JOB_AGGREGATE) == 0)
        return tly_quality_aggregate(jr->app->store, job->ref_id, err);
    if (strcmp(job->kind, TLY_JOB_PRELABEL) == 0) {
        tly_prelabel_env env = {jr->app->store, jr->app->blobs, jr->app->base_url};
        return tly_prelabel_run_job(&env, job->ref_id, err);
    }
    if (strcmp(job->kind, TLY_JOB_EXPORT) == 0) {
        char dir[PATH_MAX + 16];
        snprintf(dir, sizeof dir, "%s/exports", jr->app->cfg.data_dir);
        return tly_export_run(jr->app->store, jr->app->blobs, dir, job->ref_id, err);
    }
    return tly_fail(err, TLY_E_INTERNAL, "unknown_job", "no runner for job kind '%s'", job->kind);
}

typedef struct {
    tly_counter *done, *retried, *failed;
} job_counters;

/* What happens to a job after it ran: nothing (its completion is recorded), back to
 * the queue with backoff, or given up on. */
static void settle(tly_jobrunner *jr, const job_counters *c, const tly_job *job, int rc, const tly_error *err)
{
    tly_store *st = jr->app->store;
    tly_error e2;
    if (rc == 0) {
        /* Ingest jobs delete their row in the transaction that records their outcome;
         * the other kinds (aggregate, export, prelabel) leave it to us. Left behind,
         * the row stayed 'running' and was claimed again, and re-run, every time its
         * lease ran out. */
        int self_done = strcmp(job->kind, TLY_JOB_INGEST_FILE) == 0 || strcmp(job->kind, TLY_JOB_EXPAND_BATCH) == 0;
        if (!self_done && tly_store_job_done(st, job->id, &e2) < 0 && e2.status != TLY_E_NOT_FOUND)
            LOG_ERROR("jobs", "cannot mark job %lld done: %s", (long long)job->id, e2.message);
        tly_counter_add(c->done, 1);
    } else if (rc == 1 || job->attempts < MAX_ATTEMPTS) {
        int64_t delay = 1000LL << (job->attempts < 6 ? job->attempts : 6);
        LOG_WARN("jobs", "job %lld (%s) attempt %d: %s; retrying in %lld ms", (long long)job->id, job->kind,
                 job->attempts, err->message, (long long)delay);
        if (tly_store_job_retry(st, job->id, err->message, delay, &e2) < 0)
            LOG_ERROR("jobs", "cannot requeue job %lld: %s", (long long)job->id, e2.message);
        tly_counter_add(c->retried, 1);
    } else {
        LOG_ERROR("jobs", "job %lld (%s) failed for good: %s", (long long)job->id, job->kind, err->message);
        if (tly_ingest_abandon_job(jr->app->ingest, job, err->message, &e2) < 0)
            LOG_ERROR("jobs", "cannot mark job %lld failed: %s", (long long)job->id, e2.message);
        tly_counter_add(c->failed, 1);
    }
}

static void *worker_main(void *arg)
{
    tly_jobrunner *jr = arg;
    tly_store *st = jr->app->store;
    job_counters c = {
        tly_metrics_counter("tally_jobs_total", "Jobs finished, by outcome", "outcome=\"done\""),
        tly_metrics_counter("tally_jobs_total", "Jobs finished, by outcome", "outcome=\"retry\""),
        tly_metrics_counter("tally_jobs_total", "Jobs finished, by outcome", "outcome=\"failed\""),
    };
    /* Job bookkeeping is acknowledged to no client and re-done if lost, so it need
     * not wait for the disk at every commit (see tly_durability). */
    tly_error derr;
    if (tly_store_set_durability(st, TLY_DURABLE_ORDERED, &derr) < 0)
        LOG_WARN("jobs", "cannot relax commit durability: %s", derr.message);
    pthread_mutex_lock(&jr->lock);
    int me = jr->next_slot++;
    pthread_mutex_unlock(&jr->lock);
    while (!stopping(jr)) {
        tly_job group[FILE_GROUP + 1];
        tly_error errs[FILE_GROUP];
        int results[FILE_GROUP];
        size_t n = 0;
        int other = 0;   /* group[n] is a job of another kind, claimed after the files */
        tly_error err;
        int rc = tly_store_job_claim(st, jr->app->node_id, jr->lease_ms, &group[0], &err);
        if (rc != 0) {
            if (rc < 0 && err.status != TLY_E_BUSY)
                LOG_ERROR("jobs", "claim failed: %s", err.message);
            idle_wait(jr);
            continue;
        }
        hold(jr, me, 0, group[0].id);
        if (strcmp(group[0].kind, TLY_JOB_INGEST_FILE) != 0) {
            rc = run_one(jr, &group[0], &err);
            settle(jr, &c, &group[0], rc, &err);
            hold(jr, me, 0, 0);
            tly_job_clear(&group[0]);
            continue;
        }
        for (n = 1; n < FILE_GROUP; n++) {
            memset(&group[n], 0, sizeof group[n]);
            if (tly_store_job_claim(st, jr->app->node_id, jr->lease_ms, &group[n], &err) != 0)
                break;
            hold(jr, me, (int)n, group[n].id);
            if (strcmp(group[n].kind, TLY_JOB_INGEST_FILE) != 0) {
                other = 1;
                break;
            }
        }
        tly_ingest_file_jobs(jr->app->ingest, group, n, results, errs);
        for (size_t i = 0; i < n; i++) {
            settle(jr, &c, &group[i], results[i], &errs[i]);
            hold(jr, me, (int)i, 0);
            tly_job_clear(&group[i]);
        }
        if (other) {
            rc = run_one(jr, &group[n], &err);
            settle(jr, &c, &group[n], rc, &err);
            hold(jr, me, (int)n, 0);
            tly_job_clear(&group[n]);
        }
    }
    return NULL;
}

int tly_jobrunner_start(tly_app *app, int threads, tly_jobrunner **out, tly_error *err)
{
    tly_jobrunner *jr = calloc(1, sizeof *jr);
    if (!jr || !(jr->threads = calloc((size_t)threads, sizeof *jr->threads)) ||
        !(jr->held = calloc((size_t)threads * HELD_PER_THREAD, sizeof *jr->held))) {
        if (jr)
            free(jr->threads);
        free(jr);
        return tly_fail(err, TLY_E_INTERNAL, "internal", "out of memory");
    }
    jr->app = app;
    jr->lease_ms = (int64_t)(app->cfg.job_lease_s > 0 ? app->cfg.job_lease_s : 60) * 1000;
    jr->nthreads = 0;
    pthread_mutex_init(&jr->lock, NULL);
    pthread_cond_init(&jr->wake, NULL);
    pthread_cond_init(&jr->beat, NULL);
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&jr->threads[i], NULL, worker_main, jr) != 0) {
            tly_jobrunner_stop(jr);
            return tly_fail(err, TLY_E_INTERNAL, "internal", "cannot start job threads");
        }
        jr->nthreads++;
    }
    if (pthread_create(&jr->heartbeat, NULL, heartbeat_main, jr) != 0) {
        tly_jobrunner_stop(jr);
        return tly_fail(err, TLY_E_INTERNAL, "internal", "cannot start the job lease heartbeat");
    }
    jr->heartbeat_started = 1;
    *out = jr;
    return 0;
}

void tly_jobrunner_stop(tly_jobrunner *jr)
{
    if (!jr)
        return;
    pthread_mutex_lock(&jr->lock);
    jr->stopping = 1;
    pthread_cond_broadcast(&jr->wake);
    pthread_cond_broadcast(&jr->beat);
    pthread_mutex_unlock(&jr->lock);
    for (int i = 0; i < jr->nthreads; i++)
        pthread_join(jr->threads[i], NULL);
    if (jr->heartbeat_started)
        pthread_join(jr->heartbeat, NULL);
    pthread_mutex_destroy(&jr->lock);
    pthread_cond_destroy(&jr->wake);
    pthread_cond_destroy(&jr->beat);
    free(jr->held);
    free(jr->threads);
    free(jr);
}
