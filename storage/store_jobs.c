/* store_jobs.c -- the persistent job queue with leases.
 *
 * Life of a job row:
 *   queued --claim--> running --done--> (row deleted)
 *                        |    --retry--> queued again (run_after = now + delay)
 *                        |    --fail---> failed (kept for inspection)
 *                        `--lease runs out, or release_owner--> claimable again
 * A running job's lease is renewed by its owner's heartbeat (tly_store_job_renew)
 * while the job runs, so a lease can be short (a dead node's jobs are taken over
 * soon) however long a job takes.
 * Done jobs are deleted rather than marked: the table then only holds live work
 * (and failures), so claiming never wades through history. tly_store_job_counts
 * therefore reports queued / running / failed only.
 *
 * Claiming is one atomic statement: an UPDATE whose WHERE picks the oldest
 * runnable row with a subquery, RETURNING the claimed row. On SQLite the statement
 * holds the database's single write lock throughout, so two claimers can never get
 * the same row; on PostgreSQL the driver's claim_lock ("FOR UPDATE SKIP LOCKED")
 * goes into the subquery for the same effect without serialising claimers. The text
 * is built once per store (tly_store_open) from sq_job_claim_template.
 *
 * attempts counts claims, including the current one; a crash mid-job therefore
 * counts as an attempt, which keeps a job that kills its worker from looping forever.
 */
#include "storage/sql.h"

#include "core/timeutil.h"

#include <stdlib.h>
#include <string.h>

const char sq_job_claim_template[] =
    "UPDATE jobs SET state = 'running', owner = ?, lease_until = ?, attempts = attempts + 1,"
    " updated_at = ? WHERE id = (SELECT id FROM jobs"
    " WHERE (state = 'queued' AND run_after <= ?) OR (state = 'running' AND lease_until < ?)"
    " ORDER BY id LIMIT 1 @LOCK@)"
    " RETURNING id, kind, ref_id, payload, attempts, last_error";

static int read_job(const sq_row *r, void *ctx, tly_error *err)
{
    tly_job *j = ctx;
    j->id = sq_col_i64(r, 0);
    sq_col_copy(r, 1, j->kind, sizeof j->kind);
    j->ref_id = sq_col_i64(r, 2);
    j->attempts = (int)sq_col_i64(r, 4);
    if (sq_col_json(r, 3, &j->payload, err) < 0)
        return -1;
    return sq_col_dup(r, 5, &j->last_error, err);
}

void tly_job_clear(tly_job *j)
{
    if (!j)
        return;
    json_decref(j->payload);
    free(j->last_error);
    memset(j, 0, sizeof *j);
}

static void clear_job(void *j)
{
    tly_job_clear(j);
}

int tly_store_job_enqueue(tly_store *st, const char *kind, int64_t ref_id, json_t *payload,
                          int64_t *id_out, tly_error *err)
{
    tly_job j;
    int64_t now = tly_now_ms();
    if (sq_check_str(kind, sizeof j.kind, 0, "job kind", err) < 0)
        return -1;
    return sq_insert(st,
                     "INSERT INTO jobs (kind, ref_id, payload, state, run_after, created_at,"
                     " updated_at) VALUES (?, ?, ?, 'queued', ?, ?, ?) RETURNING id",
                     id_out, err, "tijiii", kind, ref_id, payload, now, now, now);
}

int tly_store_job_claim(tly_store *st, const char *owner, int64_t lease_ms, tly_job *out,
                        tly_error *err)
{
    int64_t now = tly_now_ms();
    tly_error e;
    if (!owner || !*owner)
        return tly_fail(err, TLY_E_INVALID, "invalid", "job owner is required");
    if (sq_one(st, st->sql_job_claim, read_job, clear_job, out, sizeof *out, "job", &e,
               "tiiii", owner, now + lease_ms, now, now, now) == 0)
        return 0;
    if (e.status == TLY_E_NOT_FOUND)
        return 1;
    if (err)
        *err = e;
    return -1;
}

int tly_store_job_done(tly_store *st, int64_t id, tly_error *err)
{
    int rc = sq_int64(st, "DELETE FROM jobs WHERE id = ? RETURNING id", NULL, err, "i", id);
    return sq_found(rc, "job", id, err);
}

int tly_store_job_retry(tly_store *st, int64_t id, const char *error, int64_t delay_ms,
                        tly_error *err)
{
    int64_t now = tly_now_ms();
    int rc = sq_int64(st,
                      "UPDATE jobs SET state = 'queued', owner = NULL, lease_until = 0,"
                      " run_after = ?, last_error = ?, updated_at = ? WHERE id = ? RETURNING id",
                      NULL, err, "itii", now + (delay_ms > 0 ? delay_ms : 0), error, now, id);
    return sq_found(rc, "job", id, err);
}

int tly_store_job_fail(tly_store *st, int64_t id, const char *error, tly_error *err)
{
    int rc = sq_int64(st,
                      "UPDATE jobs SET state = 'failed', owner = NULL, lease_until = 0,"
                      " last_error = ?, updated_at = ? WHERE id = ? RETURNING id",
                      NULL, err, "tii", error, tly_now_ms(), id);
    return sq_found(rc, "job", id, err);
}

int tly_store_job_renew(tly_store *st, int64_t id, const char *owner, int64_t lease_ms, tly_error *err)
{
    int64_t now = tly_now_ms();
    int rc = sq_int64(st,
                      "UPDATE jobs SET lease_until = ?, updated_at = ? WHERE id = ? AND owner = ?"
                      " AND state = 'running' RETURNING id",
                      NULL, err, "iiit", now + lease_ms, now, id, owner ? owner : "");
    return rc;   /* sq_int64: 0 a row, 1 none, -1 error */
}

int tly_store_job_release_owner(tly_store *st, const char *owner, int64_t *released_out,
                                tly_error *err)
{
    int64_t now = tly_now_ms();
    int64_t n = sq_each(st,
                        "UPDATE jobs SET state = 'queued', owner = NULL, lease_until = 0,"
                        " run_after = ?, updated_at = ? WHERE owner = ? AND state = 'running'"
                        " RETURNING id",
                        NULL, NULL, err, "iit", now, now, owner ? owner : "");
    if (n < 0)
        return -1;
    if (released_out)
        *released_out = n;
    return 0;
}

struct job_counts {
    int64_t *queued, *running, *failed;
};

static int add_job_count(const sq_row *r, void *ctx, tly_error *err)
{
    struct job_counts *c = ctx;
    char state[16];
    sq_col_copy(r, 0, state, sizeof state);
    int64_t *slot = strcmp(state, "queued") == 0    ? c->queued
                    : strcmp(state, "running") == 0 ? c->running
                    : strcmp(state, "failed") == 0  ? c->failed
                                                    : NULL;
    if (slot)
        *slot = sq_col_i64(r, 1);
    return 0;
}

int tly_store_job_counts(tly_store *st, int64_t *queued, int64_t *running, int64_t *failed,
                         tly_error *err)
{
    int64_t q = 0, r = 0, f = 0;
    struct job_counts c = {&q, &r, &f};
    if (sq_each(st, "SELECT state, COUNT(*) FROM jobs GROUP BY state", add_job_count, &c, err,
                "") < 0)
        return -1;
    if (queued)
        *queued = q;
    if (running)
        *running = r;
    if (failed)
        *failed = f;
    return 0;
}
